"""GPU capacity: how many replicas of a model the cluster's GPU nodes can hold, and why pods wait.

Pure functions over Node, Pod and Event dicts exactly as the API returns them; the
controller keeps them in kopf indexes and calls these on every reconcile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modeldeploy.api.models import Condition, Runtime, Toleration

GPU_RESOURCE = "nvidia.com/gpu"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
NVIDIA_RESOURCE_PREFIX = "nvidia.com/"
PRODUCT_LABEL = "nvidia.com/gpu.product"
# Server pods always tolerate the taint GPU operators put on GPU nodes.
GPU_TOLERATION = Toleration(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")

CONDITION_TYPE = "GPUCapacity"
SUFFICIENT_GPU = "SufficientGPU"
INSUFFICIENT_GPU = "InsufficientGPU"

TERMINATED_PHASES = ("Succeeded", "Failed")
BLOCKING_TAINT_EFFECTS = ("NoSchedule", "NoExecute")
CONTAINER_FAILURES = (
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "CrashLoopBackOff",
)
# Warnings about pods that never got as far as a container status.
BLOCKING_EVENT_REASONS = ("FailedCreate", "FailedMount", "FailedAttachVolume")
NO_NODE_AVAILABLE = re.compile(r"^0/(\d+) nodes are available")
MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class GPURequest:
    """What one server pod needs from a node."""

    per_pod: int
    product: str | None = None
    mig_profile: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()

    def __post_init__(self) -> None:
        if self.per_pod < 1:
            raise ValueError("a GPU request needs at least one GPU per pod")

    @classmethod
    def of(cls, runtime: Runtime) -> GPURequest | None:
        """The GPU request of a revision's pods, or None when they need no GPU."""
        if runtime.resources.gpu == 0:
            return None
        return cls(
            per_pod=runtime.resources.gpu,
            product=runtime.gpu.product if runtime.gpu else None,
            mig_profile=runtime.gpu.mig_profile if runtime.gpu else None,
            node_selector=dict(runtime.node_selector),
            tolerations=tuple(runtime.tolerations),
        )

    @property
    def resource(self) -> str:
        return f"{MIG_RESOURCE_PREFIX}{self.mig_profile}" if self.mig_profile else GPU_RESOURCE


@dataclass(frozen=True)
class CapacityReport:
    """GPUs on the nodes a pod of the request may be placed on, and how many pods fit there."""

    nodes_matching: int
    total_allocatable: int
    free: int
    replicas_that_fit_now: int
    replicas_that_fit_empty: int
    largest_node_allocatable: int
    products: tuple[str, ...]


def gpu_capacity(
    nodes: list[dict[str, Any]], pods: list[dict[str, Any]], request: GPURequest
) -> CapacityReport:
    """Capacity for `request` on `nodes`, given the GPUs that `pods` (bound, not terminated) hold.

    A pod needs all its GPUs on one node, so replicas are packed node by node. Pass the pods
    of every workload except the revision being assessed: its own pods count toward its replicas.
    """
    return capacity_given_usage(nodes, requested_by_node(pods, request.resource), request)


def capacity_given_usage(
    nodes: list[dict[str, Any]], used: dict[str, int], request: GPURequest
) -> CapacityReport:
    """gpu_capacity from the GPUs of the request's kind already held on each node."""
    allocatable = {
        node["metadata"]["name"]: offered for node in nodes if (offered := _offered(node, request)) > 0
    }
    free = {name: max(0, offered - used.get(name, 0)) for name, offered in allocatable.items()}
    return CapacityReport(
        nodes_matching=len(allocatable),
        total_allocatable=sum(allocatable.values()),
        free=sum(free.values()),
        replicas_that_fit_now=sum(count // request.per_pod for count in free.values()),
        replicas_that_fit_empty=sum(count // request.per_pod for count in allocatable.values()),
        largest_node_allocatable=max(allocatable.values(), default=0),
        products=tuple(sorted({product for node in nodes if (product := _labels(node).get(PRODUCT_LABEL))})),
    )


def capacity_condition(report: CapacityReport, max_replicas: int, request: GPURequest) -> Condition:
    """The GPUCapacity condition: True when `max_replicas` pods fit on the GPUs free now."""
    per_pod = _describe(request.per_pod, request.resource, request.product)
    need = f"maxReplicas {max_replicas} needs {max_replicas} \u00d7 {per_pod}"
    if report.replicas_that_fit_now >= max_replicas:
        # No counts here: they change whenever anyone's GPU pod comes or goes, and every
        # ModelDeployment's status would be rewritten with them.
        return Condition(
            type=CONDITION_TYPE,
            status="True",
            reason=SUFFICIENT_GPU,
            message=f"{need}; they fit on the GPUs free now",
        )
    return Condition(
        type=CONDITION_TYPE,
        status="False",
        reason=INSUFFICIENT_GPU,
        message=f"{need}; {_capacity_explanation(report, request)}",
    )


CANARY_DOES_NOT_FIT = "CanaryDoesNotFit"


def canary_condition(
    report: CapacityReport, stable: int, canary: int, request: GPURequest, canary_revision: str
) -> Condition | None:
    """None when `stable` + `canary` replicas fit on the GPUs free once the model's own pods are
    counted out (`report` built from every other pod); else the GPUCapacity condition saying so,
    so the canary is not started into Pending pods."""
    if report.replicas_that_fit_now >= stable + canary:
        return None
    per_pod = _describe(request.per_pod, request.resource, request.product)
    return Condition(
        type=CONDITION_TYPE,
        status="False",
        reason=CANARY_DOES_NOT_FIT,
        message=f"canary {canary_revision} not started: stable and canary need {stable + canary} \u00d7 "
        f"{per_pod} ({stable} + {canary}); {_capacity_explanation(report, request)}. Free GPUs, or set "
        "spec.rollout.canary.maxSurge so the canary's replicas come out of stable's",
    )


def pending_reason(pods: list[dict[str, Any]], events: list[dict[str, Any]] | None = None) -> str | None:
    """Why a revision's pods do not become ready, in one line for the Ready condition; None when
    nothing blocks them. Failing containers come first (the most direct to fix), then
    scheduling, then warning events about pods that could not be created or mounted."""
    ordered = sorted(pods, key=lambda pod: pod["metadata"]["name"])
    for pod in ordered:
        failure = _container_failure(pod)
        if failure:
            return failure
    for pod in ordered:
        unschedulable = _unschedulable(pod)
        if unschedulable:
            return unschedulable
    return _latest_blocking_event(events or [])


# --------------------------------------------------------------------------- capacity


def _labels(node: dict[str, Any]) -> dict[str, str]:
    return node["metadata"].get("labels") or {}


def _offered(node: dict[str, Any], request: GPURequest) -> int:
    """GPUs of the requested kind a pod of the request could use on this node; 0 when it cannot land there."""
    if node.get("spec", {}).get("unschedulable"):
        return 0
    labels = _labels(node)
    wanted = {**request.node_selector, **({PRODUCT_LABEL: request.product} if request.product else {})}
    if any(labels.get(key) != value for key, value in wanted.items()):
        return 0
    tolerations = (GPU_TOLERATION, *request.tolerations)
    for taint in node.get("spec", {}).get("taints") or []:
        if taint.get("effect") in BLOCKING_TAINT_EFFECTS and not any(
            _tolerates(t, taint) for t in tolerations
        ):
            return 0
    return int(node.get("status", {}).get("allocatable", {}).get(request.resource, 0))


def _tolerates(toleration: Toleration, taint: dict[str, Any]) -> bool:
    """The scheduler's matching rule: an empty key with Exists matches every taint, an empty effect every effect."""
    if toleration.effect and toleration.effect != taint.get("effect"):
        return False
    if toleration.key and toleration.key != taint.get("key"):
        return False
    if toleration.operator == "Exists":
        return True
    return (toleration.value or "") == (taint.get("value") or "")


def requested_by_node(pods: list[dict[str, Any]], resource: str) -> dict[str, int]:
    """GPUs of `resource` that `pods` (bound, not terminated) hold on each node."""
    used: dict[str, int] = {}
    for pod in pods:
        node = pod.get("spec", {}).get("nodeName")
        if node and pod.get("status", {}).get("phase") not in TERMINATED_PHASES:
            used[node] = used.get(node, 0) + _pod_request(pod, resource)
    return used


def _pod_request(pod: dict[str, Any], resource: str) -> int:
    """The scheduler's effective request: app containers and sidecars run together; each plain
    init container runs alone, beside only the sidecars started before it."""
    spec = pod.get("spec", {})
    sidecars_before = 0
    init_peak = 0
    for container in spec.get("initContainers") or []:
        amount = _container_request(container, resource)
        if container.get("restartPolicy") == "Always":
            sidecars_before += amount
        else:
            init_peak = max(init_peak, sidecars_before + amount)
    running = sidecars_before + sum(_container_request(c, resource) for c in spec.get("containers") or [])
    return max(running, init_peak)


def _container_request(container: dict[str, Any], resource: str) -> int:
    # Extended resources cannot be overcommitted: a limit alone implies an equal request.
    resources = container.get("resources") or {}
    amount = (resources.get("requests") or {}).get(resource) or (resources.get("limits") or {}).get(resource)
    return int(amount or 0)


def _describe(count: int, resource: str, product: str | None) -> str:
    """'4 nvidia.com/gpu of NVIDIA-L4'."""
    return f"{count} {resource}" + (f" of {product}" if product else "")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _capacity_explanation(report: CapacityReport, request: GPURequest) -> str:
    if request.product and request.product not in report.products:
        present = ", ".join(report.products) if report.products else "none"
        return f"no node has {PRODUCT_LABEL}={request.product} (products in the cluster: {present})"
    if report.nodes_matching == 0:
        kind = f" of {request.product}" if request.product else ""
        return f"no schedulable node{kind} offers {request.resource}"
    fit = report.replicas_that_fit_now
    explanation = (
        f"the cluster has {_plural(report.nodes_matching, 'node')} with {report.total_allocatable} "
        f"allocatable ({report.free} free): {_plural(fit, 'replica')} {'fits' if fit == 1 else 'fit'}"
    )
    largest = report.largest_node_allocatable
    if largest < request.per_pod:
        return f"{explanation} (a pod needs {request.per_pod} on one node; the largest has {largest})"
    if report.replicas_that_fit_empty > fit:
        return f"{explanation} ({report.replicas_that_fit_empty} once other pods release their GPUs)"
    return explanation


# --------------------------------------------------------------------------- pending reasons


def _container_failure(pod: dict[str, Any]) -> str | None:
    status = pod.get("status", {})
    statuses = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    for container in statuses:
        waiting = (container.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason not in CONTAINER_FAILURES:
            continue
        if reason == "CrashLoopBackOff":
            return _shorten(f"CrashLoopBackOff: container {container['name']} {_last_exit(container)}")
        detail = waiting.get("message") or f"image {container.get('image', '')}"
        return _shorten(f"{reason}: container {container['name']}: {detail}")
    return None


def _last_exit(container: dict[str, Any]) -> str:
    terminated = (container.get("lastState") or {}).get("terminated") or {}
    restarts = _plural(container.get("restartCount", 0), "restart")
    text = f"exited with code {terminated.get('exitCode', '?')} ({terminated.get('reason', 'Error')}) after {restarts}"
    message = (terminated.get("message") or "").strip()
    return f"{text}: {message}" if message else text


def _unschedulable(pod: dict[str, Any]) -> str | None:
    status = pod.get("status", {})
    if status.get("phase") != "Pending":
        return None
    scheduled = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
    if not scheduled or scheduled.get("status") != "False" or scheduled.get("reason") != "Unschedulable":
        return None
    # The first sentence says why each node was refused; what follows is about preemption
    # and dynamic resource claims, which a model's pods do not use.
    message = (scheduled.get("message") or "").split(". ")[0].rstrip(".")
    gpus = _gpu_requests(pod)
    nodes = NO_NODE_AVAILABLE.match(message)
    if gpus and nodes and f"Insufficient {NVIDIA_RESOURCE_PREFIX}" in message:
        product = (pod.get("spec", {}).get("nodeSelector") or {}).get(PRODUCT_LABEL)
        wanted = ", ".join(_describe(count, resource, product) for resource, count in gpus.items())
        return f"{INSUFFICIENT_GPU}: 0/{nodes.group(1)} nodes can host {wanted}"
    return _shorten(f"Unschedulable: {message}")


def holds_gpus(pod: dict[str, Any]) -> bool:
    """The pod requests GPUs or MIG slices (so it counts against capacity once bound)."""
    return any(_gpu_requests(pod).values())


def _gpu_requests(pod: dict[str, Any]) -> dict[str, int]:
    spec = pod.get("spec", {})
    resources: set[str] = set()
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for section in ("requests", "limits"):
            resources.update(
                name
                for name in ((container.get("resources") or {}).get(section) or {})
                if name.startswith(NVIDIA_RESOURCE_PREFIX)
            )
    return {resource: _pod_request(pod, resource) for resource in sorted(resources)}


def _latest_blocking_event(events: list[dict[str, Any]]) -> str | None:
    blocking = [e for e in events if e.get("type") == "Warning" and e.get("reason") in BLOCKING_EVENT_REASONS]
    if not blocking:
        return None
    latest = max(blocking, key=_event_time)
    return _shorten(f"{latest['reason']}: {latest.get('message', '').strip()}")


def _event_time(event: dict[str, Any]) -> str:
    # RFC 3339 timestamps in UTC sort as text; core/v1 events fill one of these, events.k8s.io another.
    return str(
        (event.get("series") or {}).get("lastObservedTime")
        or event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("metadata", {}).get("creationTimestamp")
        or ""
    )


def _shorten(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
