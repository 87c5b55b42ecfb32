"""The Deployment of one model revision: the server container, its model, its GPUs.

Everything here is rendered from the revision's own RevisionSpec (`plan.spec`), never from
the current spec, so an older revision renders exactly as it did when it was new. Every
map and list comes out in a fixed order: rendering twice gives identical output, and the
controller's "differs from what is there" comparison never sees spurious changes.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from typing import Any

from modeldeploy.api.models import PLACEHOLDER_NAMES, ModelDeployment, Runtime
from modeldeploy.render import common
from modeldeploy.render.model_volume import DEFAULT_INITIALIZER_RESOURCES, OciMode, model_volume
from modeldeploy.render.revision import REVISION_SPEC_ANNOTATION, RevisionPlan

LABEL_ROLE = "modeldeploy.io/role"
_PLACEHOLDER = re.compile(r"\{\{ *\.(" + "|".join(PLACEHOLDER_NAMES) + r") *\}\}")
SERVER_CONTAINER = "server"
SERVING_PORT = "serving"
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
# The taint the NVIDIA GPU operator (and most cloud GPU node pools) put on GPU nodes.
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
SHM_VOLUME = "dshm"
REVISION_HISTORY_LIMIT = 2
PROBE_PERIOD_SECONDS = 10
# Until the server is first ready the startup probe asks often: with the 10 s period a server
# that loads in 2 s waited up to 8 s more for Ready (measured on the real node: 9 of a 12 s cold
# start). A failed startup probe is one cheap request to the pod.
STARTUP_PROBE_PERIOD_SECONDS = 2
PROBE_TIMEOUT_SECONDS = 5
# Pod Security "restricted" as far as it can go without breaking server images that run as
# root (runAsNonRoot would): users complete it with spec.runtime.(pod)securityContext.
POD_SECURITY_DEFAULTS: Mapping[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY_DEFAULTS: Mapping[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def deployment_name(md: ModelDeployment, revision: str) -> str:
    """A canary runs each revision in its own Deployment; rolling and recreate update one in place."""
    if md.spec.rollout.strategy == "canary":
        return f"{common.name_of(md)}-{revision}"
    return common.name_of(md)


def deployment_selector(md: ModelDeployment, revision: str) -> dict[str, str]:
    """The selector is immutable: a Deployment updated in place across revisions cannot select
    by revision, so only per-revision (canary) Deployments do."""
    if md.spec.rollout.strategy == "canary":
        return common.selector_labels(md, revision)
    return common.selector_labels(md)


def render_deployment(
    md: ModelDeployment,
    plan: RevisionPlan,
    initializer_image: str,
    oci_mode: OciMode = "image-volume",
    initializer_resources: Mapping[str, Any] = DEFAULT_INITIALIZER_RESOURCES,
) -> dict[str, Any]:
    metadata = common.child_metadata(md, deployment_name(md, plan.revision), plan.revision)
    # The role is on the Deployment only: on the pod template, promoting a canary would
    # restart every pod of it.
    metadata["labels"][LABEL_ROLE] = plan.role
    metadata["annotations"] = {REVISION_SPEC_ANNOTATION: plan.spec.to_annotation()}
    spec: dict[str, Any] = {}
    if plan.replicas is not None:
        spec["replicas"] = plan.replicas
    spec |= {
        "selector": {"matchLabels": deployment_selector(md, plan.revision)},
        "strategy": _strategy(md),
        "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
        # The model's own deadline: scheduling, pulling a multi-gigabyte server image and
        # fetching the model all happen before the startup probe starts counting.
        "progressDeadlineSeconds": md.spec.progress_deadline_seconds(),
        "template": {
            "metadata": _pod_metadata(md, plan),
            "spec": pod_spec(plan, initializer_image, oci_mode, initializer_resources, common.name_of(md)),
        },
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def _strategy(md: ModelDeployment) -> dict[str, Any]:
    if md.spec.rollout.strategy == "recreate":
        return {"type": "Recreate"}
    # Never below the wanted capacity while pods are replaced: GPU servers take minutes to load.
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}


def _pod_metadata(md: ModelDeployment, plan: RevisionPlan) -> dict[str, Any]:
    runtime = plan.spec.runtime
    # Ours are applied last: a pod label must never move a pod out of its Services' selectors.
    labels = {**dict(sorted(runtime.pod_labels.items())), **common.labels(md, plan.revision)}
    # `kubectl logs` and `exec` pick the server rather than asking which container.
    annotations = {
        **_scrape_annotations(runtime),
        **dict(sorted(runtime.pod_annotations.items())),
        "kubectl.kubernetes.io/default-container": SERVER_CONTAINER,
    }
    return {"labels": labels, "annotations": annotations}


def _scrape_annotations(runtime: Runtime) -> dict[str, str]:
    """The prometheus.io/* annotations of the server's own metrics, the convention of Prometheus's
    kubernetes-pods example scrape job (the pod's annotations override them)."""
    if runtime.metrics is None:
        return {}
    return {
        "prometheus.io/path": runtime.metrics.path,
        "prometheus.io/port": str(runtime.metrics.port or runtime.port),
        "prometheus.io/scrape": "true",
    }


def pod_spec(
    plan: RevisionPlan,
    initializer_image: str,
    oci_mode: OciMode = "image-volume",
    initializer_resources: Mapping[str, Any] = DEFAULT_INITIALIZER_RESOURCES,
    model_name: str = "",
) -> dict[str, Any]:
    runtime = plan.spec.runtime
    volume = model_volume(plan.spec.model, initializer_image, oci_mode, initializer_resources)
    volumes = list(volume.volumes)
    mounts = list(volume.server_volume_mounts)
    if _wants_shm(runtime):
        shm: dict[str, Any] = {"medium": "Memory"}
        if runtime.shm_size:
            shm["sizeLimit"] = runtime.shm_size
        volumes.append({"name": SHM_VOLUME, "emptyDir": shm})
        mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})

    spec: dict[str, Any] = {}
    if runtime.service_account_name:
        spec["serviceAccountName"] = runtime.service_account_name
    else:
        # Model servers do not talk to the API server; without a ServiceAccount of their own
        # they get no token at all.
        spec["automountServiceAccountToken"] = False
    # Service environment variables (SENTIMENT_PORT=tcp://...) collide with servers' own
    # settings (vLLM reads VLLM_PORT, for one); servers find Services through DNS.
    spec["enableServiceLinks"] = False
    if volume.share_process_namespace:
        spec["shareProcessNamespace"] = True
    spec["securityContext"] = _merged(POD_SECURITY_DEFAULTS, runtime.pod_security_context)
    if volume.image_pull_secrets:
        spec["imagePullSecrets"] = volume.image_pull_secrets
    init_containers = volume.init_containers + volume.sidecars
    if init_containers:
        spec["initContainers"] = init_containers
    placeholders = _placeholder_values(plan, volume.server_env, model_name)
    spec["containers"] = [_server_container(runtime, volume.server_env, mounts, placeholders)]
    spec["volumes"] = volumes
    node_selector = _node_selector(runtime)
    if node_selector:
        spec["nodeSelector"] = node_selector
    tolerations = _tolerations(runtime)
    if tolerations:
        spec["tolerations"] = tolerations
    return spec


def _placeholder_values(
    plan: RevisionPlan, model_env: list[dict[str, Any]], model_name: str
) -> dict[str, str]:
    """What each of PLACEHOLDER_NAMES stands for in this revision's pods."""
    runtime = plan.spec.runtime
    model_dir = next(variable["value"] for variable in model_env if variable["name"] == "MODEL_DIR")
    values = {
        "ModelDir": model_dir,
        "ModelName": model_name,
        "ModelFormat": plan.spec.model.format or "",
        "Port": str(runtime.port),
        "GPUs": str(runtime.resources.gpu),
    }
    assert set(values) == set(PLACEHOLDER_NAMES), "every placeholder the API accepts has a value"
    return values


def _filled(texts: list[str], values: Mapping[str, str]) -> list[str]:
    """`texts` with their placeholders replaced; the API refuses any other {{ ... }}."""
    return [_PLACEHOLDER.sub(lambda match: values[match.group(1)], text) for text in texts]


def _server_container(
    runtime: Runtime,
    model_env: list[dict[str, Any]],
    mounts: list[dict[str, Any]],
    placeholders: Mapping[str, str],
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": SERVER_CONTAINER, "image": runtime.image}
    if runtime.command:
        container["command"] = _filled(runtime.command, placeholders)
    if runtime.args or runtime.extra_args:
        container["args"] = _filled([*runtime.args, *runtime.extra_args], placeholders)
    container["env"] = _env(runtime, model_env)
    if runtime.env_from:
        container["envFrom"] = copy.deepcopy(runtime.env_from)
    container["ports"] = [{"name": SERVING_PORT, "containerPort": runtime.port, "protocol": "TCP"}]
    resources = _resources(runtime)
    if resources:
        container["resources"] = resources
    container["volumeMounts"] = mounts
    container |= _probes(runtime)
    container |= {
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": _merged(CONTAINER_SECURITY_DEFAULTS, runtime.security_context),
    }
    return container


def _merged(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` over `defaults`, key by key into nested objects (so capabilities.add keeps
    the default capabilities.drop)."""
    merged = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _env(runtime: Runtime, model_env: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The model's variables first, so the user's can refer to them as $(MODEL_DIR); a user
    variable of the same name is dropped (it would misstate where the model is, and server-side
    apply refuses duplicate names)."""
    ours = {variable["name"] for variable in model_env}
    return [
        *model_env,
        *(
            variable.model_dump(by_alias=True, exclude_none=True)
            for variable in runtime.env
            if variable.name not in ours
        ),
    ]


def _resources(runtime: Runtime) -> dict[str, Any]:
    wanted = runtime.resources
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    # No CPU limit: throttling a server costs latency and saves nothing that requests do not.
    if wanted.cpu:
        requests["cpu"] = wanted.cpu
    if wanted.memory:
        requests["memory"] = limits["memory"] = wanted.memory
    if wanted.gpu:
        # Extended resources cannot be overcommitted: requests must equal limits.
        requests[_gpu_resource(runtime)] = limits[_gpu_resource(runtime)] = str(wanted.gpu)
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources


def _gpu_resource(runtime: Runtime) -> str:
    if runtime.gpu and runtime.gpu.mig_profile:
        return f"nvidia.com/mig-{runtime.gpu.mig_profile}"
    return GPU_RESOURCE


def _wants_shm(runtime: Runtime) -> bool:
    """A memory-backed /dev/shm when its size is given, and always for GPU servers: PyTorch
    workers and NCCL exchange tensors through shared memory, and the runtime's default of
    64Mi makes them crash. Unsized, it is bounded by the pod's memory limit, which its pages
    count against."""
    return runtime.shm_size is not None or runtime.resources.gpu > 0


def _node_selector(runtime: Runtime) -> dict[str, str]:
    selector = dict(sorted(runtime.node_selector.items()))
    # The API accepts a product only with resources.gpu >= 1.
    if runtime.gpu and runtime.gpu.product:
        selector[GPU_PRODUCT_LABEL] = runtime.gpu.product
    return selector


def _tolerations(runtime: Runtime) -> list[dict[str, Any]]:
    tolerations = [dict(GPU_TOLERATION)] if runtime.resources.gpu else []
    for toleration in runtime.tolerations:
        rendered = toleration.model_dump(by_alias=True, exclude_none=True)
        if rendered not in tolerations:
            tolerations.append(rendered)
    return tolerations


def _probes(runtime: Runtime) -> dict[str, Any]:
    """Readiness says the model is loaded; the startup probe (the same check) gives the server
    startupTimeoutSeconds to get there before liveness may restart it. gRPC servers are asked
    through the standard gRPC health service, which has no path: for them livenessPath only
    switches the liveness probe on."""
    timing = {"periodSeconds": PROBE_PERIOD_SECONDS, "timeoutSeconds": PROBE_TIMEOUT_SECONDS}
    probes = {
        "readinessProbe": {**_probe_action(runtime, runtime.readiness_path), **timing, "failureThreshold": 3},
        "startupProbe": {
            **_probe_action(runtime, runtime.readiness_path),
            "periodSeconds": STARTUP_PROBE_PERIOD_SECONDS,
            "timeoutSeconds": PROBE_TIMEOUT_SECONDS,
            "failureThreshold": math.ceil(runtime.startup_timeout_seconds / STARTUP_PROBE_PERIOD_SECONDS),
        },
    }
    if runtime.liveness_path:
        probes["livenessProbe"] = {
            **_probe_action(runtime, runtime.liveness_path),
            **timing,
            "failureThreshold": 6,
        }
    return probes


def _probe_action(runtime: Runtime, path: str) -> dict[str, Any]:
    if runtime.protocol == "grpc":
        # A gRPC probe takes a port number; named ports are refused.
        return {"grpc": {"port": runtime.port}}
    return {"httpGet": {"path": path, "port": SERVING_PORT}}
