"""The ModelDeployment API as pydantic models.

These models are the single source of truth: the CRD schema in `crds/` is generated
from them (see `crd.py`), and the operator parses every object through them. Field
names are camelCase on the wire, snake_case in Python.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

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

Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN)]
Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]
Percent = Annotated[int, Field(ge=0, le=100)]


class Model(BaseModel):
    """Base for every API object: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


# --------------------------------------------------------------------------- spec.model


class ModelSource(Model):
    """Where the model files come from."""

    uri: str = Field(
        min_length=1,
        pattern=r"^(s3|gs|hf|https?|pvc|oci|file)://.+$",
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
        description="Name of a Secret in the same namespace whose keys become environment variables of "
        "the model initializer (AWS_ACCESS_KEY_ID, HF_TOKEN, ...).",
    )
    allow_patterns: list[str] = Field(
        default_factory=list, description="hf:// only: glob patterns of the repository files to download."
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
    gpu: int = Field(default=0, ge=0, le=16, description="Number of GPUs (or MIG slices) per pod, 0 to 16.")


class EnvVar(Model):
    """An environment variable of the server container, as in a Pod."""

    name: str = Field(min_length=1, description="Variable name.")
    value: str | None = Field(default=None, description="Literal value.")
    value_from: dict[str, Any] | None = Field(
        default=None,
        description="Source of the value (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef), "
        "as in a Pod.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class Toleration(Model):
    """A pod toleration, as in a Pod."""

    key: str | None = Field(default=None, description="Taint key to tolerate; empty matches all keys.")
    operator: Literal["Exists", "Equal"] | None = Field(default=None, description="Exists or Equal.")
    value: str | None = Field(default=None, description="Taint value for operator Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to tolerate; empty matches all effects."
    )
    toleration_seconds: int | None = Field(default=None, description="For NoExecute: how long to stay.")


class Runtime(Model):
    """The model server: image, arguments, ports, probes and resources."""

    image: str = Field(min_length=1, description="Container image of the model server.")
    command: list[str] = Field(default_factory=list, description="Entrypoint override.")
    args: list[str] = Field(default_factory=list, description="Arguments of the server.")
    env: list[EnvVar] = Field(default_factory=list, description="Environment of the server container.")
    env_from: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Sources of environment variables (configMapRef, secretRef), as in a Pod.",
        json_schema_extra={"items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    )
    port: int = Field(default=8080, ge=1, le=65535, description="Port the server listens on.")
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
    pod_labels: dict[str, str] = Field(default_factory=dict, description="Extra labels on server pods.")


# --------------------------------------------------------------------------- spec.rollout


class PrometheusRef(Model):
    """Where analysis queries go."""

    address: str = Field(
        pattern=r"^https?://.+", description="Base URL of the Prometheus HTTP API, e.g. http://prometheus:9090."
    )


class Metric(Model):
    """One analysis metric: a built-in template or custom PromQL, with thresholds."""

    name: str = Field(min_length=1, pattern=DNS_LABEL_PATTERN, description="Name shown in status and events.")
    template: Literal["success-rate", "latency-p99", "custom"] = Field(
        default="custom",
        description="success-rate: share of non-5xx responses of the canary revision (0..1); "
        "latency-p99: 99th percentile latency of the canary in seconds; custom: the query below.",
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        description="PromQL for template custom; {{ revision }}, {{ namespace }} and {{ name }} are "
        "replaced. It must return one number.",
    )
    min: float | None = Field(default=None, description="The result must be at least this.")
    max: float | None = Field(default=None, description="The result must be at most this.")


class Analysis(Model):
    """How canary health is judged."""

    prometheus: PrometheusRef | None = Field(default=None, description="The Prometheus to query.")
    interval: Duration = Field(default="1m", description="Time between two measurements.")
    count: int = Field(default=1, ge=1, le=100, description="Measurements an analysis step takes.")
    failure_limit: int = Field(
        default=1, ge=0, le=100, description="Failed measurements tolerated; one more rolls back."
    )
    inconclusive_limit: int = Field(
        default=2,
        ge=0,
        le=100,
        description="Measurements without data or with query errors tolerated; one more fails the rollout.",
    )
    metrics: list[Metric] = Field(default_factory=list, description="Metrics every measurement evaluates.")


class Pause(Model):
    """Wait before the next step."""

    duration: Duration | None = Field(
        default=None, description="How long to wait; unset waits until `modeldeploy resume`."
    )


class Step(Model):
    """One step of an automated canary: set exactly one of weight, pause or analysis."""

    weight: Percent | None = Field(default=None, description="Route this percentage to the canary.")
    pause: Pause | None = Field(default=None, description="Wait, for a duration or until resumed.")
    analysis: Analysis | None = Field(
        default=None, description="Run analysis; fields left unset come from spec.rollout.canary.analysis."
    )


class Canary(Model):
    """Canary settings: a manual weight (GitOps) or automated steps."""

    weight: Percent = Field(
        default=0,
        description="Manual mode (no steps): the percentage routed to the canary once it is ready. "
        "100 promotes it.",
    )
    steps: list[Step] = Field(
        default_factory=list, description="Automated mode: weights, pauses and analyses run in order."
    )
    analysis: Analysis | None = Field(
        default=None, description="Analysis defaults, and background analysis during automated steps."
    )
    scale_down_delay_seconds: int = Field(
        default=30, ge=0, le=86400, description="How long the old revision stays up after promotion."
    )


class Rollout(Model):
    """How a new revision replaces the current one."""

    strategy: Literal["canary", "rolling", "recreate"] = Field(
        default="canary",
        description="canary: the new revision runs beside the stable one and receives traffic by weight; "
        "rolling: one Deployment updated in place; recreate: old pods stop before new ones start.",
    )
    canary: Canary = Field(default_factory=Canary, description="Canary settings (strategy canary).")


# --------------------------------------------------------------------------- spec.traffic


class GatewayRef(Model):
    """The Gateway the HTTPRoute attaches to."""

    name: str = Field(min_length=1, description="Gateway name.")
    namespace: str | None = Field(default=None, description="Gateway namespace; defaults to the model's.")
    section_name: str | None = Field(default=None, description="Listener name on the Gateway.")


class HeaderRouting(Model):
    """Requests with this header always go to the canary."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9-]+$", description="Header name.")
    value: str = Field(min_length=1, description="Exact header value.")


class Mirror(Model):
    """Shadow traffic: copy a share of requests to the canary, responses discarded."""

    percent: Percent = Field(default=0, description="Percentage of requests mirrored, 0 to 100.")


class Traffic(Model):
    """How requests reach the model and are split between revisions."""

    provider: Literal["gateway-api", "istio", "nginx", "smi", "service"] = Field(
        default="gateway-api",
        description="gateway-api (HTTPRoute/GRPCRoute), istio (VirtualService), nginx (Ingress pair), "
        "smi (TrafficSplit) or service (replica-ratio split, approximate).",
    )
    gateway: GatewayRef | None = Field(default=None, description="gateway-api and istio: the Gateway.")
    ingress_class_name: str | None = Field(default=None, description="nginx: the IngressClass.")
    hosts: list[str] = Field(default_factory=list, description="Host names the model answers on.")
    path: str = Field(default="/", pattern=r"^/", description="Path prefix routed to the model.")
    header_routing: HeaderRouting | None = Field(
        default=None, description="Send requests with this header to the canary (gateway-api, istio, nginx)."
    )
    mirror: Mirror | None = Field(default=None, description="Mirror traffic to the canary (gateway-api, istio).")
    timeout: Duration | None = Field(default=None, description="Request timeout at the router.")


# --------------------------------------------------------------------------- spec.autoscaling


class Autoscaling(Model):
    """Autoscaling of each live revision."""

    engine: Literal["hpa", "keda"] = Field(
        default="hpa", description="hpa (HorizontalPodAutoscaler) or keda (ScaledObject; allows minReplicas 0)."
    )
    min_replicas: int = Field(default=1, ge=0, le=1000, description="Fewest replicas; 0 only with keda.")
    max_replicas: int = Field(ge=1, le=1000, description="Most replicas.")
    metric: Literal["cpu", "gpu-utilization", "concurrency", "rps", "prometheus"] = Field(
        default="cpu",
        description="cpu (% of request), gpu-utilization (% from DCGM), concurrency (in-flight requests "
        "per pod), rps (requests per second per pod) or prometheus (the query below).",
    )
    target: int = Field(default=70, ge=1, description="Target value per pod of the metric.")
    query: str | None = Field(default=None, min_length=1, description="PromQL for metric prometheus.")
    prometheus_address: str | None = Field(
        default=None, pattern=r"^https?://.+", description="keda: Prometheus the trigger queries."
    )
    scale_down_stabilization_seconds: int = Field(
        default=300, ge=0, le=3600, description="How long load must stay low before scaling down."
    )


# --------------------------------------------------------------------------- spec


class ModelDeploymentSpec(Model):
    """Desired state of a served model."""

    model: ModelSource = Field(description="The model to serve.")
    runtime: Runtime = Field(description="The server that serves it.")
    replicas: int = Field(default=1, ge=0, le=1000, description="Replicas per revision without autoscaling.")
    rollout: Rollout = Field(default_factory=Rollout, description="How new revisions roll out.")
    traffic: Traffic = Field(default_factory=Traffic, description="How requests reach the model.")
    autoscaling: Autoscaling | None = Field(default=None, description="Autoscaling; fixed replicas when unset.")


# --------------------------------------------------------------------------- status


class Condition(Model):
    """A kstatus-compatible condition."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    type: str = Field(description="Ready, Progressing, Degraded, TrafficReady, ModelReady, GPUCapacity, ...")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="CamelCase reason.")
    message: str = Field(default="", description="Human-readable explanation.")
    observed_generation: int | None = Field(default=None, description="Generation the condition is about.")
    last_transition_time: str | None = Field(default=None, description="When status last changed.")


class RevisionStatus(Model):
    """Replicas of one live revision."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: str = Field(description="Revision hash.")
    role: Literal["stable", "canary", "retiring"] = Field(description="stable, canary or retiring.")
    desired_replicas: int = Field(default=0, description="Replicas wanted.")
    ready_replicas: int = Field(default=0, description="Replicas ready.")


class AnalysisRun(Model):
    """One measurement of one metric."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    metric: str = Field(description="Metric name.")
    value: float | None = Field(default=None, description="Measured value; empty when there was none.")
    verdict: Literal["Successful", "Failed", "Inconclusive"] = Field(description="Verdict.")
    message: str = Field(default="", description="Detail, e.g. the query error.")
    time: str = Field(description="When it was measured.")
    step: int | None = Field(default=None, description="Step index it belonged to.")


class RolloutStatus(Model):
    """Progress of the current rollout; all state the state machine needs lives here."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    step: int = Field(default=0, description="Index of the current step.")
    step_started_at: str | None = Field(default=None, description="When the current step began.")
    started_at: str | None = Field(default=None, description="When the rollout began.")
    failures: int = Field(default=0, description="Failed measurements so far.")
    inconclusives: int = Field(default=0, description="Inconclusive measurements so far.")
    measurements: int = Field(default=0, description="Measurements taken in the current analysis step.")
    last_measured_at: str | None = Field(default=None, description="Time of the last measurement.")
    analysis_runs: list[AnalysisRun] = Field(default_factory=list, description="Recent measurements (bounded).")
    promoted_at: str | None = Field(default=None, description="When the canary became stable.")
    message: str = Field(default="", description="What the rollout waits for.")


class ResolvedModel(Model):
    """Exactly which model bytes are served."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    uri: str = Field(description="The URI.")
    resolved_digest: str | None = Field(default=None, description="sha256 of what was fetched.")


class HistoryEntry(Model):
    """A past stable revision."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    revision: str = Field(description="Revision hash.")
    promoted_at: str | None = Field(default=None, description="When it became stable.")
    model: str | None = Field(default=None, description="Model URI of that revision.")
    image: str | None = Field(default=None, description="Server image of that revision.")


class ModelDeploymentStatus(Model):
    """Observed state, written only by the operator."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    observed_generation: int | None = Field(default=None, description="Last generation acted on.")
    conditions: list[Condition] = Field(default_factory=list, description="kstatus-compatible conditions.")
    phase: Literal["Stable", "Progressing", "Paused", "Promoting", "RolledBack", "Failed"] | None = Field(
        default=None, description="Stable, Progressing, Paused, Promoting, RolledBack or Failed."
    )
    ready: str | None = Field(default=None, description="Ready condition status, for printer columns.")
    stable_revision: str | None = Field(default=None, description="Revision serving by default.")
    canary_revision: str | None = Field(default=None, description="Revision under test.")
    canary_weight: int = Field(default=0, description="Percentage actually routed to the canary, read back.")
    revisions: list[RevisionStatus] = Field(default_factory=list, description="Live revisions.")
    rollout: RolloutStatus | None = Field(default=None, description="Current rollout.")
    model: ResolvedModel | None = Field(default=None, description="Model served by the stable revision.")
    url: str | None = Field(default=None, description="Where clients send requests.")
    history: list[HistoryEntry] = Field(default_factory=list, description="Past stable revisions (bounded).")


class ModelDeployment(BaseModel):
    """A model served on Kubernetes: revisions, canary, traffic and autoscaling in one resource."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    api_version: Literal["modeldeploy.io/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["ModelDeployment"] = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = Field(default_factory=ModelDeploymentStatus)
