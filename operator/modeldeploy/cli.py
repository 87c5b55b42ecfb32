"""The `modeldeploy` command line."""

import asyncio
import enum
import os
import sys
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer

from modeldeploy import __version__

app = typer.Typer(help="Deploy ML models on Kubernetes: the operator and its tools.", no_args_is_help=True)
T = TypeVar("T")


class LogFormat(enum.StrEnum):
    plain = "plain"
    json = "json"


class OciModeOption(enum.StrEnum):
    image_volume = "image-volume"
    modelcar = "modelcar"


@app.callback()
def main() -> None:
    """modeldeploy: the operator (`run`), its CRD (`crd`), the model fetcher and rollout controls."""


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def crd(
    kind: Annotated[
        str, typer.Option(help="ModelDeployment or ModelRuntime.", case_sensitive=False)
    ] = "ModelDeployment",
) -> None:
    """Print a CustomResourceDefinition (ModelDeployment or ModelRuntime), generated from the API models."""
    from modeldeploy.api.crd import crd_yaml, runtime_crd_yaml

    generators = {"modeldeployment": crd_yaml, "modelruntime": runtime_crd_yaml}
    if kind.lower() not in generators:
        raise typer.BadParameter(f"--kind must be ModelDeployment or ModelRuntime, not {kind}")
    typer.echo(generators[kind.lower()](), nl=False)


@app.command("api-docs")
def api_docs() -> None:
    """Print the API field reference (docs/api.md) in Markdown."""
    from modeldeploy.api.docs import api_reference

    typer.echo(api_reference(), nl=False)


@app.command()
def validate(
    files: Annotated[
        list[typer.FileText],
        typer.Argument(help="YAML files with ModelDeployments or ModelRuntimes; - for stdin."),
    ],
) -> None:
    """Check ModelDeployment and ModelRuntime manifests as the API server will, without a cluster."""
    import yaml

    from modeldeploy.api.model_runtime import ModelRuntime
    from modeldeploy.api.models import ModelDeployment
    from modeldeploy.api.validation import InvalidModelDeployment, parse_manifest

    kinds = {"ModelDeployment": ModelDeployment, "ModelRuntime": ModelRuntime}
    invalid = 0
    for file in files:
        for document in yaml.safe_load_all(file):
            if not isinstance(document, dict) or document.get("kind") not in kinds:
                continue
            kind = document["kind"]
            name = f"{file.name}: {kind}/{document.get('metadata', {}).get('name', '?')}"
            try:
                parse_manifest(document, kinds[kind])
            except InvalidModelDeployment as error:
                invalid += 1
                typer.echo("\n".join(f"{name}: {problem}" for problem in error.problems), err=True)
            else:
                typer.echo(f"{name}: valid")
    if invalid:
        raise typer.Exit(1)


@app.command()
def run(
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace", "-n", help="Watch only this namespace (repeatable); default: all namespaces."
        ),
    ] = None,
    kubeconfig: Annotated[
        str | None, typer.Option(envvar="KUBECONFIG", help="kubeconfig file; in a pod the in-cluster config.")
    ] = None,
    metrics_port: Annotated[int, typer.Option(help="Port of the Prometheus /metrics endpoint.")] = 8080,
    health_port: Annotated[int, typer.Option(help="Port of /healthz and /readyz.")] = 8081,
    workers: Annotated[int, typer.Option(min=1, max=64, help="ModelDeployments reconciled at once.")] = 16,
    initializer_image: Annotated[
        str,
        typer.Option(
            envvar="MODELDEPLOY_IMAGE", help="Image of the model-fetching init container (this image)."
        ),
    ] = f"ghcr.io/modeldeploy/modeldeploy:{__version__}",
    oci_mode: Annotated[
        OciModeOption,
        typer.Option(help="How oci:// models are mounted: Kubernetes image volumes or a modelcar sidecar."),
    ] = OciModeOption.image_volume,
    initializer_resources: Annotated[
        str | None,
        typer.Option(
            help="Resources of every model's fetch-model init container, as JSON "
            '(\'{"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}\'); '
            "a model's spec.model.initializer.resources replaces them.",
        ),
    ] = None,
    require_verification: Annotated[
        bool,
        typer.Option(
            "--require-verification",
            envvar="MODELDEPLOY_REQUIRE_VERIFICATION",
            help="Refuse every ModelDeployment without spec.model.verification (per namespace: label "
            "modeldeploy.io/require-verification=true).",
        ),
    ] = False,
    leader_election_namespace: Annotated[
        str | None,
        typer.Option(
            envvar="MODELDEPLOY_LEADER_ELECTION_NAMESPACE",
            help="Elect one active replica with a Lease in this namespace (for several replicas).",
        ),
    ] = None,
    log_format: Annotated[LogFormat, typer.Option(help="plain or json log lines.")] = LogFormat.plain,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the operator."""
    # kopf imports the synchronous kubernetes client whenever it is installed, only to
    # recognise its objects; the operator never hands it one, and the client with its models
    # and auth libraries is a sixth of the process's memory. (It is a test dependency: a
    # production image does not have it, a development environment does.)
    sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]
    from modeldeploy.api.verification_policy import VerificationPolicy
    from modeldeploy.controller.logs import configure_logging
    from modeldeploy.controller.operator import RunOptions, run_operator
    from modeldeploy.controller.reconcile import Settings

    configure_logging(log_format.value, verbose)
    options = RunOptions(
        namespaces=tuple(namespace or ()),
        kubeconfig=kubeconfig,
        metrics_port=metrics_port,
        health_port=health_port,
        workers=workers,
        settings=Settings(
            initializer_image=initializer_image,
            oci_mode=oci_mode.value,
            initializer_resources=_initializer_resources(initializer_resources),
            verification_policy=VerificationPolicy(required_everywhere=require_verification),
        ),
        leader_election_namespace=leader_election_namespace,
    )
    _on_cluster(run_operator(options), kubeconfig)


@app.command("fetch-model")
def fetch_model(
    uri: Annotated[
        str | None,
        typer.Option(help="Model URI: s3://, gs://, hf://org/name(@revision), http(s)://, file://."),
    ] = None,
    dest: Annotated[
        Path | None, typer.Option(help="Directory that receives the model (created if missing).")
    ] = None,
    sha256: Annotated[
        str | None,
        typer.Option(help="Expected digest, 64 hex digits: of the file, or of a directory's manifest."),
    ] = None,
    allow_pattern: Annotated[
        list[str] | None,
        typer.Option(help="hf:// only: fetch just the files matching this glob (repeatable)."),
    ] = None,
    print_digest: Annotated[
        Path | None, typer.Option(help="Print the digest of a local model file or directory, then exit.")
    ] = None,
    termination_log: Annotated[
        Path | None,
        typer.Option(
            envvar="MODELDEPLOY_TERMINATION_LOG",
            help="Where the result line goes for Kubernetes; default /dev/termination-log when it exists.",
        ),
    ] = None,
    attempts: Annotated[
        int, typer.Option(min=1, envvar="MODELDEPLOY_FETCH_ATTEMPTS", help="Tries on transient errors.")
    ] = 5,
    backoff: Annotated[
        float,
        typer.Option(min=0, envvar="MODELDEPLOY_FETCH_BACKOFF", help="First pause between tries, seconds."),
    ] = 1.0,
    progress_interval: Annotated[
        float,
        typer.Option(
            min=0.01, envvar="MODELDEPLOY_PROGRESS_INTERVAL", help="Seconds between progress lines."
        ),
    ] = 5.0,
    verify_key: Annotated[
        Path | None,
        typer.Option(
            help="Refuse the model unless its model-signing signature verifies with this public key "
            "(PEM, elliptic-curve P-256/P-384/P-521)."
        ),
    ] = None,
    verify_certificate_chain: Annotated[
        Path | None,
        typer.Option(
            help="Refuse the model unless its signing certificate chains up to these certificates (PEM)."
        ),
    ] = None,
    signature: Annotated[
        str | None,
        typer.Option(
            help="The signature: a path inside the model (default model.sig at its root) or a URI of "
            "the model's scheme. It is not part of the served model."
        ),
    ] = None,
) -> None:
    """Fetch a model into a directory (the model init container), or print a model's digest."""
    from modeldeploy.storage.main import run_fetch_model, run_print_digest

    if print_digest is not None:
        raise typer.Exit(run_print_digest(print_digest))
    if uri is None or dest is None:
        raise typer.BadParameter(
            "both --uri and --dest are needed, or --print-digest PATH", param_hint="--uri"
        )
    raise typer.Exit(
        run_fetch_model(
            uri,
            dest,
            sha256,
            allow_pattern or (),
            termination_log,
            attempts,
            backoff,
            progress_interval,
            verify_key,
            verify_certificate_chain,
            signature,
        )
    )


# --------------------------------------------------------------------------- rollout controls

KubeconfigOption = Annotated[
    str | None,
    typer.Option(
        envvar="KUBECONFIG",
        help="kubeconfig file; default: in a pod the in-cluster config, else ~/.kube/config.",
    ),
]
NamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--namespace", "-n", help="Namespace of the ModelDeployment; default: the context's namespace."
    ),
]
NameArgument = Annotated[str, typer.Argument(help="Name of the ModelDeployment.")]
IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
DEFAULT_KUBECONFIG = "~/.kube/config"
ROLLOUT_ACTIONS = {
    "promote": "Promote the canary now: it takes all traffic, then becomes stable.",
    "abort": "Abort the rollout: all traffic back to stable, the canary scaled to zero and kept.",
    "pause": "Pause the rollout where it is; the canary keeps its weight.",
    "resume": "Resume a paused rollout, or end a pause step that waits for resume.",
}


async def _connect(kubeconfig: str | None, namespace: str | None) -> tuple[Any, str]:
    """An API client and the namespace to use, from --kubeconfig / KUBECONFIG, else in a pod the
    in-cluster service account, else ~/.kube/config: the order `modeldeploy run` follows."""
    from kubernetes_asyncio import client, config

    if kubeconfig or not _in_cluster():
        await config.load_kube_config(config_file=kubeconfig)
        _, context = config.list_kube_config_contexts(config_file=kubeconfig)
        default_namespace = context["context"].get("namespace", "default")
    else:
        config.load_incluster_config()
        default_namespace = Path(IN_CLUSTER_NAMESPACE_FILE).read_text().strip()
    return client.ApiClient(), namespace or default_namespace


async def _file_request(name: str, namespace: str | None, kubeconfig: str | None, action: str) -> str:
    from kubernetes_asyncio import client

    from modeldeploy.api.models import GROUP, PLURAL, VERSION
    from modeldeploy.rollout.machine import Request

    request = Request.issue(cast(Any, action), datetime.now(UTC))
    api, namespace = await _connect(kubeconfig, namespace)
    async with api:
        await client.CustomObjectsApi(api).patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            request.annotation_patch(),
            _content_type="application/merge-patch+json",
        )
    return f"{namespace}/{name}: {request.id} filed; `modeldeploy status {name} -n {namespace}` shows the outcome\n"


async def _read_status(name: str, namespace: str | None, kubeconfig: str | None) -> str:
    from kubernetes_asyncio import client

    from modeldeploy.api.models import GROUP, PLURAL, VERSION, ModelDeployment
    from modeldeploy.rollout.report import format_status

    api, namespace = await _connect(kubeconfig, namespace)
    async with api:
        body = await client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name
        )
    return format_status(ModelDeployment.model_validate(body))


def _in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def _on_cluster(work: Coroutine[Any, Any, T], kubeconfig: str | None) -> T:
    """Run `work` against the cluster; without a usable way to it, end the command with one line."""
    from kubernetes_asyncio.config import ConfigException

    problem = _missing_configuration(kubeconfig)
    if problem is None:
        try:
            return asyncio.run(work)
        except ConfigException as error:
            problem = f"{_configuration_source(kubeconfig)} cannot be used: {' '.join(str(error).split())}"
    else:
        work.close()
    typer.echo(f"modeldeploy: {problem}", err=True)
    raise typer.Exit(1)


def _missing_configuration(kubeconfig: str | None) -> str | None:
    """What to do when there is no configuration to try (the client would only log a warning)."""
    if kubeconfig:
        if any(Path(path).expanduser().is_file() for path in kubeconfig.split(os.pathsep) if path):
            return None
        return (
            f"kubeconfig {kubeconfig} does not exist: point --kubeconfig or KUBECONFIG at a kubeconfig file"
        )
    if _in_cluster() or Path(DEFAULT_KUBECONFIG).expanduser().is_file():
        return None
    return (
        "no cluster to connect to: pass --kubeconfig PATH, set KUBECONFIG, or run in a pod with a"
        f" service account ({DEFAULT_KUBECONFIG} does not exist)"
    )


def _configuration_source(kubeconfig: str | None) -> str:
    """Where the connection comes from, as _connect and Kube.connect choose it."""
    if kubeconfig:
        return f"kubeconfig {kubeconfig}"
    return "the in-cluster service account" if _in_cluster() else f"kubeconfig {DEFAULT_KUBECONFIG}"


def _run_against_cluster(work: Coroutine[Any, Any, str], name: str, kubeconfig: str | None) -> None:
    from kubernetes_asyncio.client.exceptions import ApiException

    try:
        typer.echo(_on_cluster(work, kubeconfig), nl=False)
    except ApiException as error:
        reason = "not found" if error.status == 404 else f"{error.status} {error.reason}"
        typer.echo(f"modeldeploy: ModelDeployment {name}: {reason}", err=True)
        raise typer.Exit(1) from error


def _rollout_command(action: str, summary: str) -> None:
    def command(
        name: NameArgument, namespace: NamespaceOption = None, kubeconfig: KubeconfigOption = None
    ) -> None:
        _run_against_cluster(_file_request(name, namespace, kubeconfig, action), name, kubeconfig)

    command.__doc__ = summary
    app.command(action)(command)


for _action, _summary in ROLLOUT_ACTIONS.items():
    _rollout_command(_action, _summary)


@app.command()
def status(
    name: NameArgument, namespace: NamespaceOption = None, kubeconfig: KubeconfigOption = None
) -> None:
    """Show a ModelDeployment's rollout: phase, revisions, weight, steps and recent analyses."""
    _run_against_cluster(_read_status(name, namespace, kubeconfig), name, kubeconfig)


def _initializer_resources(value: str | None) -> Mapping[str, Any]:
    """--initializer-resources, checked as spec.model.initializer.resources is."""
    from pydantic import ValidationError

    from modeldeploy.api.models import ContainerResources
    from modeldeploy.render.model_volume import DEFAULT_INITIALIZER_RESOURCES

    if value is None:
        return DEFAULT_INITIALIZER_RESOURCES
    try:
        return ContainerResources.model_validate_json(value).model_dump(exclude_defaults=True)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in error.errors())
        raise typer.BadParameter(
            f"not requests/limits JSON: {problems}", param_hint="--initializer-resources"
        ) from None
