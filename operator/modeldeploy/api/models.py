"""The ModelDeployment API as pydantic models.

These models are the single source of truth: the CRD schema in `crds/` is generated
from them (see `crd.py`), the field reference in `docs/api.md` too (see `docs.py`), and
the operator parses every object through them. Field names are camelCase on the wire,
snake_case in Python.

Cross-field rules sit on each model as `rules` (see `rules.py`): the same rule becomes a
CEL validation in the CRD and a check here, with one message.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializationInfo,
    field_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake

from modeldeploy.api.rules import (
    LIST_MAP_KEYS,
    LIST_TYPE,
    Rule,
    check_rules,
    check_unique_keys,
    matches,
)

GROUP = "modeldeploy.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelDeployment"
PLURAL = "modeldeployments"

URI_SCHEMES = ("s3", "gs", "hf", "http", "https", "pvc", "oci", "file")
PROVIDERS = ("gateway-api", "istio", "nginx", "smi", "service")
# Providers whose routing objects can express a header match / a mirror.
HEADER_ROUTING_PROVIDERS = ("gateway-api", "istio", "nginx")
MIRROR_PROVIDERS = ("gateway-api", "istio")

# Kubernetes resource quantity, e.g. "2", "500m", "8Gi", "1.5".
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
# Go-style duration as used by Flagger and Argo Rollouts: "30s", "5m", "1h30m", "250ms".
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
HOSTNAME_PATTERN = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
URI_PATTERN = rf"^({'|'.join(URI_SCHEMES)})://.+$"
PVC_URI_PATTERN = r"^pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?/.+$"
HF_URI_PATTERN = (
    r"^hf://[A-Za-z0-9][-A-Za-z0-9_.]*/[A-Za-z0-9][-A-Za-z0-9_.]*(@[A-Za-z0-9][-A-Za-z0-9_./]*)?$"
)
# A ModelDeployment's name is a DNS-1035 label short enough that `<name>-<revision>` (the
# Deployment, its Service and its label values) still fits in 63 characters.
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
NAME_MAX_LENGTH = 52

MAX_STEPS = 32
MAX_METRICS = 16
MAX_URI_LENGTH = 2048

# What a server's command and arguments may refer to (rendered per revision, docs/runtimes.md):
# Go-template spelling, as KServe's and KAITO's templates use, but only these names.
PLACEHOLDERS = ("{{ .ModelDir }}", "{{ .ModelName }}", "{{ .ModelFormat }}", "{{ .Port }}", "{{ .GPUs }}")
PLACEHOLDER_NAMES = tuple(p.removeprefix("{{ .").removesuffix(" }}") for p in PLACEHOLDERS)
# A text whose every "{{" opens one of the placeholders (RE2 and Python alike).
# Bounds that keep the CEL placeholder checks within the API server's cost budget.
MAX_ARGUMENTS = 64
Argument = Annotated[str, Field(max_length=1024)]
PLACEHOLDER_TEXT_PATTERN = "^([^{]|[{][^{]|[{]$|[{][{] *[.](" + "|".join(PLACEHOLDER_NAMES) + ") *[}][}])*$"

# Marks a nested object whose unset fields are taken from elsewhere: the CRD gives its own
# fields no defaults, so that "unset" survives the trip through the API server.
INHERITS_UNSET = "x-modeldeploy-inherits-unset"
INT_OR_STRING = "x-kubernetes-int-or-string"
PRESERVE_UNKNOWN_FIELDS = "x-kubernetes-preserve-unknown-fields"


def _list_map(*keys: str) -> dict[str, Any]:
    """json_schema_extra of a list whose entries are identified by `keys` (merged by key in
    server-side apply, and refused when two entries share a key)."""
    return {LIST_TYPE: "map", LIST_MAP_KEYS: list(keys)}


def _integer_as_text(value: Any) -> Any:
    # Quantities are int-or-string, as in a Pod: `cpu: 2` means "2". Booleans stay refused.
    return str(value) if type(value) is int else value


Quantity = Annotated[
    str,
    Field(
        pattern=QUANTITY_PATTERN,
        max_length=64,
        json_schema_extra={INT_OR_STRING: True, "minimum": 0},
    ),
    BeforeValidator(_integer_as_text),
]
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=32)]
# Replicas or a percentage, as a Deployment's maxSurge: 1, "1", "25%".
Surge = Annotated[
    str,
    Field(pattern=r"^[0-9]+%?$", max_length=8, json_schema_extra={INT_OR_STRING: True}),
    BeforeValidator(_integer_as_text),
]
Percent = Annotated[int, Field(ge=0, le=100, strict=True)]
Hostname = Annotated[str, Field(pattern=HOSTNAME_PATTERN, max_length=253)]


def _quoted(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def _spelled(names: tuple[str, ...]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1]


class Model(BaseModel):
    """Base of every object a user writes: camelCase on the wire, unknown fields refused,
    null taken as unset, and the class's `rules` checked."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    rules: ClassVar[tuple[Rule[Any], ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, data: Any) -> Any:
        # The API server prunes nulls from known fields and from string maps (not from
        # free-form objects, and an unknown field is refused even when null) before
        # defaulting and validation; do the same so that `weight: null` means here what it
        # means in the cluster.
        if not isinstance(data, dict):
            return data
        fields, maps = _wire_names(cls), _string_maps(cls)
        return {
            key: _without_nulls(value) if key in maps and isinstance(value, dict) else value
            for key, value in data.items()
            if value is not None or key not in fields
        }

    @model_validator(mode="after")
    def _check_rules(self) -> Model:
        check_unique_keys(self)
        check_rules(self, self.rules)
        return self


@cache
def _wire_names(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(field.alias or name for name, field in model.model_fields.items())


@cache
def _string_maps(model: type[BaseModel]) -> frozenset[str]:
    """Wire names of the fields of `model` that are maps of strings (labels, selectors)."""
    return frozenset(
        field.alias or name
        for name, field in model.model_fields.items()
        if field.annotation == dict[str, str]
    )


def _without_nulls(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


class StatusModel(BaseModel):
    """Base of the objects the operator writes: camelCase on the wire, unknown fields ignored
    (an older operator reading a newer status must not fail)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# --------------------------------------------------------------------------- spec.model

# Schemes whose models the pod mounts instead of fetching: nothing reads them before the server.
MOUNTED_URI_SCHEMES = ("pvc", "oci")
# Where `model_signing sign` writes the signature when told to put it at the model's root.
DEFAULT_SIGNATURE = "model.sig"
SIGNATURE_PATH_PATTERN = r"^[^/]([^/]*/)*[^/]+$"


class KeyReference(Model):
    """A PEM file held under one key of a Secret or a ConfigMap in the model's namespace."""

    rules: ClassVar[tuple[Rule[KeyReference], ...]] = (
        Rule(
            cel="has(self.secretName) != has(self.configMapName)",
            message="set exactly one of secretName or configMapName",
            holds=lambda ref: (ref.secret_name is None) != (ref.config_map_name is None),
        ),
    )

    secret_name: str | None = Field(
        default=None, pattern=DNS_LABEL_PATTERN, max_length=253, description="Secret holding the file."
    )
    config_map_name: str | None = Field(
        default=None, pattern=DNS_LABEL_PATTERN, max_length=253, description="ConfigMap holding the file."
    )
    key: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
        description="Key of the Secret or ConfigMap whose value is the PEM file.",
    )


class ModelVerification(Model):
    """Check the fetched model against its OpenSSF model-signing signature before it is served."""

    rules: ClassVar[tuple[Rule[ModelVerification], ...]] = (
        Rule(
            cel="has(self.publicKey) != has(self.certificateChain)",
            message="set exactly one of publicKey or certificateChain",
            holds=lambda verification: (
                (verification.public_key is None) != (verification.certificate_chain is None)
            ),
        ),
        Rule(
            cel=f"self.signature.contains('://') || (self.signature.matches('{SIGNATURE_PATH_PATTERN}') "
            "&& !self.signature.split('/').exists(part, part == '..'))",
            message="signature must be a relative path inside the model without '..', or a URI",
            holds=lambda verification: (
                "://" in verification.signature
                or (
                    matches(SIGNATURE_PATH_PATTERN, verification.signature)
                    and ".." not in verification.signature.split("/")
                )
            ),
            field="signature",
        ),
    )

    public_key: KeyReference | None = Field(
        default=None,
        description="The signer's public key (PEM; elliptic-curve P-256, P-384 or P-521, as model-signing uses).",
    )
    certificate_chain: KeyReference | None = Field(
        default=None,
        description="Certificates (PEM) the signing certificate in the signature must chain up to.",
    )
    signature: str = Field(
        default=DEFAULT_SIGNATURE,
        min_length=1,
        max_length=MAX_URI_LENGTH,
        description="The signature: a path inside the model (after unpacking an archive), or a URI of the "
        "model's own scheme. It is not served and not part of the model's digest.",
    )


def _scheme(uri: str) -> str:
    return uri.partition("://")[0]


class ContainerResources(Model):
    """Requests and limits of a container, as in a Pod."""

    requests: dict[str, Quantity] = Field(default_factory=dict, description="e.g. cpu: 100m, memory: 128Mi.")
    limits: dict[str, Quantity] = Field(default_factory=dict, description="e.g. memory: 512Mi.")


class Initializer(Model):
    """Settings of the init container that fetches the model."""

    resources: ContainerResources | None = Field(
        default=None,
        description="Replaces the operator's default resources of the fetch-model container (a namespace "
        "whose LimitRange or ResourceQuota allows less needs smaller ones).",
    )


class ModelSource(Model):
    """Where the model files come from."""

    rules: ClassVar[tuple[Rule[ModelSource], ...]] = (
        Rule(
            cel=f"self.uri.matches('{URI_PATTERN}')",
            message=f"uri must start with one of {', '.join(f'{scheme}://' for scheme in URI_SCHEMES)} "
            "followed by the location",
            holds=lambda source: matches(URI_PATTERN, source.uri),
            field="uri",
        ),
        Rule(
            cel=f"!self.uri.startsWith('pvc://') || self.uri.matches('{PVC_URI_PATTERN}')",
            message="a pvc:// uri must be pvc://<claim>/<path>: the claim a lowercase DNS name, the path "
            "inside it not empty",
            holds=lambda source: not source.uri.startswith("pvc://") or matches(PVC_URI_PATTERN, source.uri),
            field="uri",
        ),
        Rule(
            cel=f"!self.uri.startsWith('hf://') || self.uri.matches('{HF_URI_PATTERN}')",
            message="an hf:// uri must be hf://<org>/<name> or hf://<org>/<name>@<revision>",
            holds=lambda source: not source.uri.startswith("hf://") or matches(HF_URI_PATTERN, source.uri),
            field="uri",
        ),
        Rule(
            cel="!has(self.allowPatterns) || self.allowPatterns.size() == 0 || self.uri.startsWith('hf://')",
            message="allowPatterns applies to hf:// models only",
            holds=lambda source: not source.allow_patterns or source.uri.startswith("hf://"),
            field="allowPatterns",
        ),
        Rule(
            cel="!has(self.verification) || !("
            + " || ".join(f"self.uri.startsWith('{scheme}://')" for scheme in MOUNTED_URI_SCHEMES)
            + ")",
            message="verification applies to fetched models (s3, gs, hf, http(s), file): pvc:// and oci:// "
            "models are mounted, not fetched: nothing can check them before the server reads them",
            holds=lambda source: (
                source.verification is None or _scheme(source.uri) not in MOUNTED_URI_SCHEMES
            ),
            field="verification",
        ),
        Rule(
            cel="!has(self.verification) || !self.verification.signature.contains('://') "
            "|| self.verification.signature.startsWith(self.uri.split('://')[0] + '://')",
            message="verification.signature, when a URI, must use the scheme of uri (it is fetched with the "
            "same credentials)",
            holds=lambda source: (
                source.verification is None
                or "://" not in source.verification.signature
                or _scheme(source.verification.signature) == _scheme(source.uri)
            ),
            field="verification.signature",
        ),
    )

    uri: str = Field(
        max_length=MAX_URI_LENGTH,
        description="Location of the model: s3://bucket/prefix, gs://bucket/prefix, hf://org/name[@revision], "
        "http(s)://host/path (archives are unpacked), pvc://claim/path (mounted, not copied), "
        "oci://registry/repo:tag (an image holding the model), file:///path.",
    )
    format: str | None = Field(
        default=None, description="Model format passed to the server as MODEL_FORMAT (free text, e.g. onnx)."
    )
    sha256: str | None = Field(
        default=None,
        pattern=r"^[a-f0-9]{64}$",
        description="Expected SHA-256 (64 lowercase hex digits) of the model file, or of the manifest of a "
        "directory; verified after download.",
    )
    credentials_secret: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        max_length=253,
        description="Name of a Secret in the same namespace whose keys become environment variables of "
        "the model initializer (AWS_ACCESS_KEY_ID, HF_TOKEN, ...).",
    )
    allow_patterns: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="hf:// only: glob patterns of the repository files to download.",
    )
    initializer: Initializer | None = Field(
        default=None,
        description="The fetch-model init container (s3, gs, hf, http and file models); unset fields "
        "take the operator's defaults (Helm value operator.initializerResources).",
    )
    verification: ModelVerification | None = Field(
        default=None,
        description="Refuse the model unless its model-signing signature verifies (see docs/storage.md).",
    )


# --------------------------------------------------------------------------- spec.runtime


class GPU(Model):
    """Which GPUs the pods need, beyond their count."""

    product: str | None = Field(
        default=None,
        min_length=1,
        description="Value of the node label nvidia.com/gpu.product, e.g. NVIDIA-A100-SXM4-80GB.",
    )
    mig_profile: str | None = Field(
        default=None,
        pattern=r"^[1-7]g\.[0-9]+gb$",
        description="MIG profile such as 1g.10gb; the pods then request nvidia.com/mig-<profile> "
        "instead of whole GPUs.",
    )


class Resources(Model):
    """Compute resources of one server pod (requests equal limits for GPUs)."""

    cpu: Quantity | None = Field(default=None, description="CPU request, e.g. 2 or 500m.")
    memory: Quantity | None = Field(default=None, description="Memory request and limit, e.g. 8Gi.")
    gpu: int = Field(
        default=0, ge=0, le=16, strict=True, description="Number of GPUs (or MIG slices) per pod, 0 to 16."
    )


class EnvVar(Model):
    """An environment variable of the server container, as in a Pod."""

    name: str = Field(min_length=1, description="Variable name.")
    value: str | None = Field(default=None, description="Literal value.")
    value_from: dict[str, Any] | None = Field(
        default=None,
        description="Source of the value (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef), "
        "as in a Pod.",
        json_schema_extra={PRESERVE_UNKNOWN_FIELDS: True},
    )


class Toleration(Model):
    """A pod toleration, as in a Pod."""

    key: str | None = Field(default=None, description="Taint key to tolerate; empty matches all keys.")
    operator: Literal["Exists", "Equal"] | None = Field(default=None, description="Exists or Equal.")
    value: str | None = Field(default=None, description="Taint value for operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to tolerate; empty matches all effects."
    )
    toleration_seconds: int | None = Field(
        default=None, strict=True, description="For NoExecute: how long to stay."
    )


# Pod labels the operator sets on every server pod; modeldeploy.io/ keys are all reserved.
RESERVED_POD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/component",
)
RESERVED_LABEL_PREFIX = "modeldeploy.io/"
_CEL_UNRESERVED_LABEL = f"!key.startsWith('{RESERVED_LABEL_PREFIX}') && !(key in [{', '.join(repr(k) for k in RESERVED_POD_LABELS)}])"


def is_reserved_pod_label(key: str) -> bool:
    return key.startswith(RESERVED_LABEL_PREFIX) or key in RESERVED_POD_LABELS


ServerSource = Literal["vllm", "tgi", "triton", "mlserver"]
"""Model servers whose own series the built-in analysis templates read; one module each in
modeldeploy.rollout.sources."""
SERVER_SOURCES: tuple[str, ...] = get_args(ServerSource)


class ServerMetrics(Model):
    """Where a server publishes its Prometheus metrics, and whose series they are."""

    source: ServerSource = Field(
        description="The series the server exports: vllm, tgi, triton or mlserver; it names the analysis "
        "source of the runtime's built-in templates (docs/runtimes.md lists them)."
    )
    path: str = Field(default="/metrics", pattern=r"^/", description="HTTP path of the metrics.")
    port: int | None = Field(
        default=None, ge=1, le=65535, strict=True, description="Port of the metrics; unset: the serving port."
    )


def _placeholder_rule(field: str) -> Rule[Runtime]:
    return Rule(
        cel=f"!has(self.{field}) || self.{field}.all(a, a.matches('{PLACEHOLDER_TEXT_PATTERN}'))",
        message=f"{field}: a {{{{ ... }}}} placeholder must be one of {_spelled(PLACEHOLDERS)}",
        holds=lambda runtime: all(
            matches(PLACEHOLDER_TEXT_PATTERN, text) for text in getattr(runtime, to_snake(field))
        ),
        field=field,
    )


class Runtime(Model):
    """The model server: image, arguments, ports, probes and resources."""

    rules: ClassVar[tuple[Rule[Runtime], ...]] = (
        *(_placeholder_rule(field) for field in ("command", "args", "extraArgs")),
        Rule(
            # With a template (name) the GPU count may come from it: checked once merged.
            cel="!has(self.gpu) || (!has(self.gpu.product) && !has(self.gpu.migProfile)) "
            "|| has(self.name) || (has(self.resources) && self.resources.gpu >= 1)",
            message="resources.gpu must be at least 1 when gpu.product or gpu.migProfile is set",
            holds=lambda runtime: (
                runtime.gpu is None
                or (runtime.gpu.product is None and runtime.gpu.mig_profile is None)
                or runtime.name is not None
                or runtime.resources.gpu >= 1
            ),
            field="resources.gpu",
        ),
        Rule(
            cel=f"!has(self.podLabels) || self.podLabels.all(key, {_CEL_UNRESERVED_LABEL})",
            message="podLabels must not set keys under modeldeploy.io/ nor "
            f"{_spelled(RESERVED_POD_LABELS)}: the operator sets them to select and describe the pods",
            message_expression="'podLabels key ' + self.podLabels.filter(key, !("
            + _CEL_UNRESERVED_LABEL
            + "))[0] + ' is reserved: keys under modeldeploy.io/ and "
            + _spelled(RESERVED_POD_LABELS)
            + " are set by the operator'",
            explain=lambda runtime: (
                f"podLabels key {next(filter(is_reserved_pod_label, runtime.pod_labels))} "
                f"is reserved: keys under modeldeploy.io/ and {_spelled(RESERVED_POD_LABELS)} are set by the "
                "operator"
            ),
            holds=lambda runtime: not any(map(is_reserved_pod_label, runtime.pod_labels)),
            field="podLabels",
        ),
    )

    name: str | None = Field(
        default=None,
        pattern=DNS_LABEL_PATTERN,
        max_length=253,
        description="The ModelRuntime (server template) to start from; every field set here overrides "
        "the template's. Unset with no image: the ModelRuntime whose modelFormats include "
        "spec.model.format, when exactly one does (docs/runtimes.md).",
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Container image of the model server; required unless a ModelRuntime provides it.",
    )
    command: list[Argument] = Field(
        default_factory=list,
        max_length=MAX_ARGUMENTS,
        description=f"Entrypoint override; placeholders {_spelled(PLACEHOLDERS)}.",
    )
    args: list[Argument] = Field(
        default_factory=list,
        max_length=MAX_ARGUMENTS,
        description=f"Arguments of the server (they replace the template's); placeholders {_spelled(PLACEHOLDERS)}.",
    )
    extra_args: list[Argument] = Field(
        default_factory=list,
        max_length=MAX_ARGUMENTS,
        description="Arguments appended after args, so a model adds flags without copying the template's "
        "arguments; same placeholders.",
    )
    env: list[EnvVar] = Field(
        default_factory=list,
        description="Environment of the server container.",
        json_schema_extra=_list_map("name"),
    )
    env_from: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Sources of environment variables (configMapRef, secretRef), as in a Pod.",
        json_schema_extra={"items": {"type": "object", PRESERVE_UNKNOWN_FIELDS: True}},
    )
    port: int = Field(default=8080, ge=1, le=65535, strict=True, description="Port the server listens on.")
    protocol: Literal["http", "grpc"] = Field(default="http", description="Wire protocol: http or grpc.")
    readiness_path: str = Field(
        default="/", pattern=r"^/", description="HTTP path of the readiness probe (http protocol)."
    )
    liveness_path: str | None = Field(
        default=None, pattern=r"^/", description="HTTP path of the liveness probe; none when unset."
    )
    startup_timeout_seconds: int = Field(
        default=600,
        ge=10,
        le=86400,
        strict=True,
        description="How long the server may take to load the model before it is restarted.",
    )
    resources: Resources = Field(default_factory=Resources, description="Resources of one pod.")
    gpu: GPU | None = Field(default=None, description="GPU product and MIG profile.")
    shm_size: Quantity | None = Field(
        default=None, description="Size of the memory-backed /dev/shm volume (needed by PyTorch servers)."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Extra tolerations; the GPU taint is tolerated automatically."
    )
    node_selector: dict[str, str] = Field(default_factory=dict, description="Extra node selector labels.")
    service_account_name: str | None = Field(
        default=None, pattern=DNS_LABEL_PATTERN, description="ServiceAccount of the server pods."
    )
    pod_annotations: dict[str, str] = Field(default_factory=dict, description="Annotations on server pods.")
    pod_labels: dict[str, str] = Field(
        default_factory=dict,
        max_length=64,
        description="Extra labels on server pods (at most 64); keys under modeldeploy.io/ and the app.kubernetes.io/ "
        "labels the operator sets are reserved.",
    )
    security_context: dict[str, Any] = Field(
        default_factory=dict,
        description="Security context of the server container, merged over the defaults "
        "(allowPrivilegeEscalation false, all capabilities dropped): e.g. runAsNonRoot, runAsUser, or "
        "capabilities.add for a server that needs one.",
        json_schema_extra={PRESERVE_UNKNOWN_FIELDS: True},
    )
    pod_security_context: dict[str, Any] = Field(
        default_factory=dict,
        description="Security context of the server pods, merged over the default (seccompProfile "
        "RuntimeDefault): e.g. runAsNonRoot, fsGroup.",
        json_schema_extra={PRESERVE_UNKNOWN_FIELDS: True},
    )
    metrics: ServerMetrics | None = Field(
        default=None,
        description="The server's own Prometheus metrics: where they are scraped and which analysis "
        "templates they enable.",
    )


# --------------------------------------------------------------------------- spec.rollout


class PrometheusRef(Model):
    """Where analysis queries go."""

    address: str = Field(
        pattern=r"^https?://.+",
        max_length=2048,
        description="Base URL of the Prometheus HTTP API, e.g. http://prometheus:9090.",
    )


AnalysisSource = Literal[
    "model-server", "traefik", "istio", "nginx", "envoy-gateway", "vllm", "tgi", "triton", "mlserver"
]
"""Where the built-in analysis templates find their series; one module each in
modeldeploy.rollout.sources."""
MetricTemplate = Literal[
    "success-rate", "error-ratio", "latency-p99", "ttft-p95", "inter-token-latency-p95", "custom"
]


class Metric(Model):
    """One analysis metric: a built-in template or custom PromQL, with thresholds."""

    rules: ClassVar[tuple[Rule[Metric], ...]] = (
        Rule(
            cel="self.template != 'custom' || has(self.query)",
            message="query is required when template is custom",
            holds=lambda metric: metric.template != "custom" or metric.query is not None,
            field="query",
        ),
        Rule(
            cel="has(self.min) || has(self.max)",
            message="a metric needs min or max (or both): the bounds its result must stay within",
            holds=lambda metric: metric.min is not None or metric.max is not None,
        ),
        Rule(
            cel="!has(self.min) || !has(self.max) || self.min <= self.max",
            message="min must not be greater than max",
            holds=lambda metric: metric.min is None or metric.max is None or metric.min <= metric.max,
            field="min",
        ),
        Rule(
            cel="self.template != 'custom' || !has(self.source)",
            message="source applies to the built-in templates only: a custom query names its own series",
            holds=lambda metric: metric.template != "custom" or metric.source is None,
            field="source",
        ),
    )

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Name shown in status and events.",
    )
    template: MetricTemplate = Field(
        default="custom",
        description="success-rate: share of non-5xx responses of the canary revision (0..1); "
        "error-ratio: share of failed requests (0..1); latency-p99: 99th percentile end-to-end latency "
        "in seconds; ttft-p95 and inter-token-latency-p95: 95th percentiles of time to first token and "
        "between tokens in seconds (vllm and tgi sources); custom: the query below.",
    )
    source: AnalysisSource | None = Field(
        default=None,
        description="Whose series the built-in templates read (docs/rollout.md): the data plane's own "
        "(traefik, istio, nginx, envoy-gateway), a model server's own (vllm, tgi, triton, mlserver; "
        "docs/runtimes.md) or the modeldeploy_* convention (model-server). Unset: the runtime's "
        "metrics.source for error-ratio, ttft-p95 and inter-token-latency-p95; otherwise by "
        "spec.traffic.provider, istio -> istio, nginx -> nginx, smi and service -> model-server; "
        "gateway-api needs it set, since the provider does not say which data plane serves the Gateway.",
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        description="PromQL for template custom; {{ revision }}, {{ namespace }} and {{ name }} are "
        "replaced. It must return one number.",
    )
    min: float | None = Field(default=None, strict=True, description="The result must be at least this.")
    max: float | None = Field(default=None, strict=True, description="The result must be at most this.")


class Analysis(Model):
    """How canary health is judged."""

    prometheus: PrometheusRef | None = Field(default=None, description="The Prometheus to query.")
    interval: Duration = Field(default="1m", description="Time between two measurements.")
    count: int = Field(
        default=1, ge=1, le=100, strict=True, description="Measurements an analysis step takes."
    )
    failure_limit: int = Field(
        default=1,
        ge=0,
        le=100,
        strict=True,
        description="Failed measurements tolerated; one more rolls back.",
    )
    inconclusive_limit: int = Field(
        default=2,
        ge=0,
        le=100,
        strict=True,
        description="Measurements without data or with query errors tolerated; one more fails the rollout.",
    )
    metrics: list[Metric] = Field(
        default_factory=list,
        max_length=MAX_METRICS,
        description="Metrics every measurement evaluates.",
        json_schema_extra=_list_map("name"),
    )


class Pause(Model):
    """Wait before the next step."""

    duration: Duration | None = Field(
        default=None, description="How long to wait; unset waits until `modeldeploy resume`."
    )


class Step(Model):
    """One step of an automated canary: set exactly one of weight, pause or analysis."""

    rules: ClassVar[tuple[Rule[Step], ...]] = (
        Rule(
            cel="[has(self.weight), has(self.pause), has(self.analysis)].filter(x, x).size() == 1",
            message="a step sets exactly one of weight, pause or analysis",
            holds=lambda step: [step.weight, step.pause, step.analysis].count(None) == 2,
        ),
    )

    weight: Percent | None = Field(default=None, description="Route this percentage to the canary.")
    pause: Pause | None = Field(default=None, description="Wait, for a duration or until resumed.")
    analysis: Analysis | None = Field(
        default=None,
        description="Run analysis; fields left unset come from spec.rollout.canary.analysis.",
        json_schema_extra={INHERITS_UNSET: True},
    )

    @field_serializer("analysis")
    def _only_what_the_step_sets(self, analysis: Analysis | None, info: SerializationInfo) -> Any:
        # What the step leaves unset comes from canary.analysis; a dump that wrote the
        # defaults out would change the step's meaning when read back.
        if analysis is None:
            return None
        return analysis.model_dump(exclude_unset=True, by_alias=bool(info.by_alias), mode=info.mode)


def _weights(canary: Canary) -> list[int]:
    return [step.weight for step in canary.steps if step.weight is not None]


def _inherited(canary: Canary, step: Step, field: str) -> Any:
    """A field of an analysis step, or the canary's default when the step leaves it unset."""
    assert step.analysis is not None
    if field in step.analysis.model_fields_set:
        return getattr(step.analysis, field)
    return getattr(canary.analysis, field) if canary.analysis is not None else None


_CEL_WEIGHTS = "self.steps.filter(s, has(s.weight)).map(s, s.weight)"


class Canary(Model):
    """Canary settings: a manual weight (GitOps) or automated steps."""

    rules: ClassVar[tuple[Rule[Canary], ...]] = (
        Rule(
            cel=f"!has(self.steps) || {_CEL_WEIGHTS} == {_CEL_WEIGHTS}.sort()",
            message="step weights must not decrease: each weight step routes at least as much as the one "
            "before",
            holds=lambda canary: _weights(canary) == sorted(_weights(canary)),
            field="steps",
        ),
        Rule(
            cel="!has(self.steps) || self.steps.all(s, !has(s.analysis) || has(s.analysis.prometheus) "
            "|| (has(self.analysis) && has(self.analysis.prometheus)))",
            message="an analysis step needs a Prometheus: set prometheus.address in the step's analysis "
            "or in spec.rollout.canary.analysis",
            holds=lambda canary: all(
                step.analysis is None or _inherited(canary, step, "prometheus") is not None
                for step in canary.steps
            ),
            field="steps",
        ),
        Rule(
            cel="!has(self.steps) || self.steps.all(s, !has(s.analysis) || (has(s.analysis.metrics) "
            "? s.analysis.metrics.size() > 0 "
            ": (has(self.analysis) && has(self.analysis.metrics) && self.analysis.metrics.size() > 0)))",
            message="an analysis step needs at least one metric: set metrics in the step's analysis "
            "or in spec.rollout.canary.analysis",
            holds=lambda canary: all(
                step.analysis is None or bool(_inherited(canary, step, "metrics")) for step in canary.steps
            ),
            field="steps",
        ),
    )

    weight: Percent = Field(
        default=0,
        description="Manual mode (no steps): the percentage routed to the canary once it is ready. "
        "100 promotes it.",
    )
    steps: list[Step] = Field(
        default_factory=list,
        max_length=MAX_STEPS,
        description="Automated mode: weights, pauses and analyses run in order.",
    )
    analysis: Analysis | None = Field(
        default=None, description="Analysis defaults, and background analysis during automated steps."
    )
    max_surge: Surge | None = Field(
        default=None,
        description="GPU budget of a canary: how many replicas (or what percentage of stable's, rounded up) "
        "stable and canary may hold together beyond stable's own. 0: the canary's replicas come out of "
        "stable's as its weight grows. Unset: the canary gets a full set of replicas beside stable's "
        "(docs/rollout.md).",
    )
    scale_down_delay_seconds: int = Field(
        default=30,
        ge=0,
        le=86400,
        strict=True,
        description="How long the old revision stays up after promotion.",
    )


# A Deployment's own default progress deadline; the model's load time comes on top.
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600


class Rollout(Model):
    """How a new revision replaces the current one."""

    strategy: Literal["canary", "rolling", "recreate"] = Field(
        default="canary",
        description="canary: the new revision runs beside the stable one and receives traffic by weight; "
        "rolling: one Deployment updated in place; recreate: old pods stop before new ones start.",
    )
    canary: Canary = Field(default_factory=Canary, description="Canary settings (strategy canary).")
    progress_deadline_seconds: int | None = Field(
        default=None,
        ge=30,
        le=7 * 86400,
        strict=True,
        description="How long a revision may take to have all its replicas ready before it is Stalled "
        f"(an automated canary is then rolled back); counted from the new revision or spec change. "
        f"Default: {DEFAULT_PROGRESS_DEADLINE_SECONDS} (a Deployment's default) plus "
        "runtime.startupTimeoutSeconds.",
    )


# --------------------------------------------------------------------------- spec.traffic


class GatewayRef(Model):
    """The Gateway the HTTPRoute attaches to."""

    name: str = Field(min_length=1, max_length=253, description="Gateway name.")
    namespace: str | None = Field(
        default=None, pattern=DNS_LABEL_PATTERN, description="Gateway namespace; defaults to the model's."
    )
    section_name: str | None = Field(default=None, description="Listener name on the Gateway.")


class HeaderRouting(Model):
    """Requests with this header always go to the canary."""

    name: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9-]+$", description="Header name.")
    value: str = Field(min_length=1, max_length=4096, description="Exact header value.")


class Mirror(Model):
    """Shadow traffic: copy a share of requests to the canary, responses discarded."""

    percent: Percent = Field(default=0, description="Percentage of requests mirrored, 0 to 100.")


class Traffic(Model):
    """How requests reach the model and are split between revisions."""

    rules: ClassVar[tuple[Rule[Traffic], ...]] = (
        Rule(
            cel=f"!has(self.headerRouting) || self.provider in [{_quoted(HEADER_ROUTING_PROVIDERS)}]",
            message=f"headerRouting needs provider {_spelled(HEADER_ROUTING_PROVIDERS)}",
            holds=lambda traffic: (
                traffic.header_routing is None or traffic.provider in HEADER_ROUTING_PROVIDERS
            ),
            field="headerRouting",
        ),
        Rule(
            cel=f"!has(self.mirror) || self.provider in [{_quoted(MIRROR_PROVIDERS)}]",
            message=f"mirror needs provider {_spelled(MIRROR_PROVIDERS)}",
            holds=lambda traffic: traffic.mirror is None or traffic.provider in MIRROR_PROVIDERS,
            field="mirror",
        ),
    )

    provider: Literal["gateway-api", "istio", "nginx", "smi", "service"] = Field(
        default="gateway-api",
        description="gateway-api (HTTPRoute/GRPCRoute), istio (VirtualService), nginx (Ingress pair), "
        "smi (TrafficSplit) or service (replica-ratio split, approximate). Can be switched: the operator "
        "then removes the previous provider's routing objects.",
    )
    gateway: GatewayRef | None = Field(default=None, description="gateway-api and istio: the Gateway.")
    ingress_class_name: str | None = Field(default=None, description="nginx: the IngressClass.")
    hosts: list[Hostname] = Field(
        default_factory=list, max_length=16, description="Host names the model answers on."
    )
    path: str = Field(default="/", pattern=r"^/", description="Path prefix routed to the model.")
    header_routing: HeaderRouting | None = Field(
        default=None, description="Send requests with this header to the canary (gateway-api, istio, nginx)."
    )
    mirror: Mirror | None = Field(
        default=None, description="Mirror traffic to the canary (gateway-api, istio)."
    )
    timeout: Duration | None = Field(default=None, description="Request timeout at the router.")


# --------------------------------------------------------------------------- spec.autoscaling


class Autoscaling(Model):
    """Autoscaling of each live revision."""

    rules: ClassVar[tuple[Rule[Autoscaling], ...]] = (
        Rule(
            cel="self.minReplicas <= self.maxReplicas",
            message="minReplicas must not be greater than maxReplicas",
            holds=lambda scaling: scaling.min_replicas <= scaling.max_replicas,
            field="minReplicas",
        ),
        Rule(
            cel="self.minReplicas > 0 || self.engine == 'keda'",
            message="minReplicas 0 (scale to zero) needs engine keda",
            holds=lambda scaling: scaling.min_replicas > 0 or scaling.engine == "keda",
            field="minReplicas",
        ),
        Rule(
            cel="self.metric != 'prometheus' || has(self.query)",
            message="query is required when metric is prometheus",
            holds=lambda scaling: scaling.metric != "prometheus" or scaling.query is not None,
            field="query",
        ),
        Rule(
            cel="self.metric != 'gpu-utilization' || self.target <= 100",
            message="target of metric gpu-utilization is a percentage: at most 100",
            holds=lambda scaling: scaling.metric != "gpu-utilization" or scaling.target <= 100,
            field="target",
        ),
    )

    engine: Literal["hpa", "keda"] = Field(
        default="hpa",
        description="hpa (HorizontalPodAutoscaler) or keda (ScaledObject; allows minReplicas 0).",
    )
    min_replicas: int = Field(
        default=1, ge=0, le=1000, strict=True, description="Fewest replicas; 0 only with keda."
    )
    max_replicas: int = Field(ge=1, le=1000, strict=True, description="Most replicas.")
    metric: Literal["cpu", "gpu-utilization", "concurrency", "rps", "prometheus"] = Field(
        default="cpu",
        description="cpu (% of request), gpu-utilization (% from DCGM), concurrency (in-flight requests "
        "per pod), rps (requests per second per pod) or prometheus (the query below).",
    )
    target: int = Field(default=70, ge=1, strict=True, description="Target value per pod of the metric.")
    query: str | None = Field(default=None, min_length=1, description="PromQL for metric prometheus.")
    prometheus_address: str | None = Field(
        default=None, pattern=r"^https?://.+", description="keda: Prometheus the trigger queries."
    )
    scale_down_stabilization_seconds: int = Field(
        default=300,
        ge=0,
        le=3600,
        strict=True,
        description="How long load must stay low before scaling down.",
    )


# --------------------------------------------------------------------------- spec


class ModelDeploymentSpec(Model):
    """Desired state of a served model."""

    rules: ClassVar[tuple[Rule[ModelDeploymentSpec], ...]] = (
        Rule(
            cel="has(self.runtime.image) || has(self.runtime.name) || has(self.model.format)",
            message="set runtime.image, or runtime.name (a ModelRuntime), or model.format (the ModelRuntime "
            "serving that format is chosen)",
            holds=lambda spec: (
                spec.runtime.image is not None
                or spec.runtime.name is not None
                or spec.model.format is not None
            ),
            field="runtime",
        ),
        Rule(
            cel="!has(self.rollout.canary.maxSurge) || has(self.autoscaling) || self.replicas != 1 "
            "|| !string(self.rollout.canary.maxSurge).matches('^0+%?$')",
            message="rollout.canary.maxSurge 0 needs at least 2 replicas: with one, the canary could only "
            "start by stopping stable; allow a surge of 1 or run 2 replicas",
            holds=lambda spec: (
                spec.rollout.canary.max_surge is None
                or spec.autoscaling is not None
                or spec.replicas != 1
                or not matches("^0+%?$", spec.rollout.canary.max_surge)
            ),
            field="rollout.canary.maxSurge",
        ),
    )

    model: ModelSource = Field(description="The model to serve.")
    runtime: Runtime = Field(
        default_factory=Runtime,
        description="The server that serves it; fields left unset come from the ModelRuntime it names "
        "(or selects by model format), then from the defaults.",
        json_schema_extra={INHERITS_UNSET: True},
    )
    replicas: int = Field(
        default=1, ge=0, le=1000, strict=True, description="Replicas per revision without autoscaling."
    )
    rollout: Rollout = Field(default_factory=Rollout, description="How new revisions roll out.")
    traffic: Traffic = Field(default_factory=Traffic, description="How requests reach the model.")
    autoscaling: Autoscaling | None = Field(
        default=None, description="Autoscaling; fixed replicas when unset."
    )

    def progress_deadline_seconds(self) -> int:
        return self.rollout.progress_deadline_seconds or (
            DEFAULT_PROGRESS_DEADLINE_SECONDS + self.runtime.startup_timeout_seconds
        )


# --------------------------------------------------------------------------- status


class Condition(StatusModel):
    """A kstatus-compatible condition."""

    type: str = Field(
        description="Ready, Reconciling, Stalled, Progressing, Degraded, TrafficReady, ModelReady, GPUCapacity."
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="CamelCase reason.")
    message: str = Field(default="", description="Human-readable explanation.")
    observed_generation: int | None = Field(default=None, description="Generation the condition is about.")
    last_transition_time: str | None = Field(default=None, description="When status last changed.")


class RevisionStatus(StatusModel):
    """Replicas of one live revision."""

    name: str = Field(description="Revision hash.")
    role: Literal["stable", "canary", "retiring"] = Field(description="stable, canary or retiring.")
    desired_replicas: int = Field(default=0, description="Replicas wanted.")
    ready_replicas: int = Field(default=0, description="Replicas ready.")
    runtime: str | None = Field(default=None, description="The ModelRuntime the revision was made from.")
    runtime_generation: int | None = Field(
        default=None, description="metadata.generation of that ModelRuntime when the revision was made."
    )


class AnalysisRun(StatusModel):
    """One measurement of one metric."""

    metric: str = Field(description="Metric name.")
    value: float | None = Field(default=None, description="Measured value; empty when there was none.")
    verdict: Literal["Successful", "Failed", "Inconclusive"] = Field(description="Verdict.")
    message: str = Field(default="", description="Detail, e.g. the query error.")
    time: str = Field(description="When it was measured.")
    step: int | None = Field(default=None, description="Step index it belonged to.")


class RolloutStatus(StatusModel):
    """Progress of the current rollout; all state the state machine needs lives here."""

    step: int = Field(default=0, description="Index of the current step.")
    step_started_at: str | None = Field(default=None, description="When the current step began.")
    started_at: str | None = Field(default=None, description="When the rollout began.")
    failures: int = Field(default=0, description="Failed measurements in the current step.")
    inconclusives: int = Field(default=0, description="Inconclusive measurements in the current step.")
    measurements: int = Field(
        default=0, description="Conclusive (successful or failed) measurements taken in the current step."
    )
    last_measured_at: str | None = Field(default=None, description="Time of the last measurement.")
    analysis_runs: list[AnalysisRun] = Field(
        default_factory=list, description="Recent measurements (bounded)."
    )
    promoted_at: str | None = Field(default=None, description="When the canary became stable.")
    message: str = Field(default="", description="What the rollout waits for.")
    weight: int = Field(
        default=0,
        description="Percentage the rollout sends to the canary while the canary has ready replicas "
        "(canaryWeight is what the router reports).",
    )
    retiring: list[str] = Field(
        default_factory=list,
        description="Revisions that lost their role; their Deployments are removed at retireAfter.",
    )
    retire_after: str | None = Field(default=None, description="When the retiring revisions are removed.")
    last_handled_request: str | None = Field(
        default=None,
        description="The last modeldeploy.io/request annotation acted on (<action>@<time>), so that a "
        "request acts once.",
    )
    progress_since: str | None = Field(
        default=None,
        description="Since when the revision being rolled out has been waiting for ready replicas (reset "
        "by a spec change); the progress deadline counts from it.",
    )


class ResolvedModel(StatusModel):
    """Exactly which model bytes are served."""

    uri: str = Field(description="The URI.")
    resolved_digest: str | None = Field(default=None, description="sha256 of what was fetched.")
    verified: bool | None = Field(
        default=None, description="True when the model's signature verified before it was served."
    )
    signed_by: str | None = Field(
        default=None, description="Who signed it: key <sha256 fingerprint> or certificate <subject>."
    )


class HistoryEntry(StatusModel):
    """A past stable revision."""

    revision: str = Field(description="Revision hash.")
    promoted_at: str | None = Field(default=None, description="When it became stable.")
    model: str | None = Field(default=None, description="Model URI of that revision.")
    image: str | None = Field(default=None, description="Server image of that revision.")
    verified: bool | None = Field(
        default=None, description="True when that revision's model signature verified."
    )
    signed_by: str | None = Field(default=None, description="Who signed that revision's model.")


class ModelDeploymentStatus(StatusModel):
    """Observed state, written only by the operator."""

    observed_generation: int | None = Field(default=None, description="Last generation acted on.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="kstatus-compatible conditions.",
        json_schema_extra=_list_map("type"),
    )
    phase: (
        Literal["Stable", "Progressing", "Paused", "Promoting", "RolledBack", "Failed", "Stalled"] | None
    ) = Field(
        default=None,
        description="Stable, Progressing, Paused, Promoting, RolledBack, Failed, or Stalled (a revision "
        "missed its progress deadline; the Stalled condition says why).",
    )
    ready: str | None = Field(default=None, description="Ready condition status, for printer columns.")
    stable_revision: str | None = Field(default=None, description="Revision serving by default.")
    canary_revision: str | None = Field(default=None, description="Revision under test.")
    canary_weight: int = Field(default=0, description="Percentage actually routed to the canary, read back.")
    revisions: list[RevisionStatus] = Field(
        default_factory=list, description="Live revisions.", json_schema_extra=_list_map("name")
    )
    rollout: RolloutStatus | None = Field(default=None, description="Current rollout.")
    model: ResolvedModel | None = Field(default=None, description="Model served by the stable revision.")
    url: str | None = Field(default=None, description="Where clients send requests.")
    history: list[HistoryEntry] = Field(default_factory=list, description="Past stable revisions (bounded).")


def _name_is_valid(name: Any) -> bool:
    # Objects not yet named (generateName) are named by the API server, which checks them.
    return name is None or (len(str(name)) <= NAME_MAX_LENGTH and matches(NAME_PATTERN, str(name)))


class ModelDeployment(BaseModel):
    """A model served on Kubernetes: revisions, canary, traffic and autoscaling in one resource."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    rules: ClassVar[tuple[Rule[ModelDeployment], ...]] = (
        Rule(
            cel=f"self.metadata.name.size() <= {NAME_MAX_LENGTH} && self.metadata.name.matches('{NAME_PATTERN}')",
            message=f"metadata.name must be a DNS label of at most {NAME_MAX_LENGTH} characters (lowercase "
            "letters, digits and '-', starting with a letter), so that <name>-<revision> names fit",
            holds=lambda md: _name_is_valid(md.metadata.get("name")),
        ),
    )

    api_version: Literal["modeldeploy.io/v1alpha1"] = Field(
        default="modeldeploy.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["ModelDeployment"] = "ModelDeployment"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = Field(default_factory=ModelDeploymentStatus)

    @model_validator(mode="after")
    def _check_rules(self) -> ModelDeployment:
        check_rules(self, self.rules)
        return self
