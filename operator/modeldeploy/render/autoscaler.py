"""The autoscaler of one live revision: a HorizontalPodAutoscaler or a KEDA ScaledObject.

Both engines read the same series for the same pods, so switching engine never changes
what is measured. The model-server series are those of rollout/analysis.py's convention,
and every per-pod series needs the `namespace` and `pod` labels; the prometheus-adapter
rules in docs/autoscaling.md serve exactly the metric names below.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from modeldeploy.api.models import Autoscaling, ModelDeployment
from modeldeploy.render.common import child_metadata, name_of, namespace_of
from modeldeploy.render.revision import Role
from modeldeploy.rollout.surge import surge_replicas

HPA_API_VERSION = "autoscaling/v2"
HPA_KIND = "HorizontalPodAutoscaler"
KEDA_API_VERSION = "keda.sh/v1alpha1"
KEDA_KIND = "ScaledObject"

# From the DCGM exporter, one series per GPU, labelled with the namespace and pod using it.
GPU_UTILIZATION_SERIES = "DCGM_FI_DEV_GPU_UTIL"
# Exported by the model server: a gauge of requests in progress, the counter analysis uses.
INFLIGHT_REQUESTS_SERIES = "modeldeploy_inflight_requests"
REQUESTS_SERIES = "modeldeploy_requests_total"
# Custom (per pod) and external metric names under engine hpa, served by prometheus-adapter.
POD_METRICS = {
    "gpu-utilization": GPU_UTILIZATION_SERIES,
    "concurrency": INFLIGHT_REQUESTS_SERIES,
    "rps": "modeldeploy_requests_per_second",
}
EXTERNAL_METRIC = "modeldeploy_external"
# Two scrapes at the common 30s interval, and the window of the adapter's rps rule.
RATE_WINDOW = "2m"

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")


class AutoscalingError(ValueError):
    """spec.autoscaling asks for something no autoscaler can do; the message says what to change."""


@dataclass(frozen=True)
class ReplicaBounds:
    minimum: int
    maximum: int


def autoscaler_kinds() -> tuple[tuple[str, str], ...]:
    """(apiVersion, kind) of every autoscaler this module renders, for cleanup when the engine changes."""
    return ((HPA_API_VERSION, HPA_KIND), (KEDA_API_VERSION, KEDA_KIND))


def autoscaler_kind(autoscaling: Autoscaling) -> tuple[str, str]:
    """(apiVersion, kind) of the autoscaler `autoscaling.engine` makes."""
    return (HPA_API_VERSION, HPA_KIND) if autoscaling.engine == "hpa" else (KEDA_API_VERSION, KEDA_KIND)


def canary_share(md: ModelDeployment, canary_weight: int) -> int:
    """Percentage of the model's requests the canary serves: mirrored requests load it as much as routed ones."""
    mirror = md.spec.traffic.mirror
    return max(canary_weight, mirror.percent if mirror else 0)


def replica_bounds(
    autoscaling: Autoscaling, role: Role, share: int, surge: int | None = None
) -> ReplicaBounds:
    """Replica range of one revision's autoscaler.

    A canary gets the spec's range scaled by its traffic share, rounded up, so it can
    absorb its share of peak load but never holds GPUs for more; it keeps at least one
    replica, because a canary at zero can neither become ready nor be analysed. With a GPU
    budget (`surge`, while a canary runs) stable's maximum gives way to the canary's, so the
    two maxima together never exceed maxReplicas + surge.
    """
    canary_minimum = max(1, math.ceil(autoscaling.min_replicas * share / 100))
    canary_maximum = max(canary_minimum, math.ceil(autoscaling.max_replicas * share / 100))
    if role == "canary":
        return ReplicaBounds(canary_minimum, canary_maximum)
    if surge is None:
        return ReplicaBounds(autoscaling.min_replicas, autoscaling.max_replicas)
    maximum = max(1, min(autoscaling.max_replicas, autoscaling.max_replicas + surge - canary_maximum))
    return ReplicaBounds(min(autoscaling.min_replicas, maximum), maximum)


def render_autoscaler(
    md: ModelDeployment,
    revision: str,
    deployment_name: str,
    role: Role,
    canary_weight: int,
    canary_running: bool = False,
) -> dict[str, Any] | None:
    """The autoscaler of the Deployment `deployment_name`, or None when it should have none.

    Retiring revisions get none: they are scaled down by the rollout, which an autoscaler
    would undo.
    """
    autoscaling = md.spec.autoscaling
    if autoscaling is None or role == "retiring":
        return None
    max_surge = md.spec.rollout.canary.max_surge
    surge = (
        surge_replicas(max_surge, autoscaling.max_replicas)
        if max_surge is not None and canary_running
        else None
    )
    bounds = replica_bounds(autoscaling, role, canary_share(md, canary_weight), surge)
    if bounds.minimum == 0:
        _check_scale_to_zero(autoscaling)
    metadata = child_metadata(md, deployment_name, revision, component="autoscaler")
    if autoscaling.engine == "keda":
        return _scaled_object(md, revision, metadata, deployment_name, autoscaling, bounds)
    return _horizontal_pod_autoscaler(md, metadata, deployment_name, autoscaling, bounds)


def _check_scale_to_zero(autoscaling: Autoscaling) -> None:
    # The API already ties minReplicas 0 to engine keda.
    if autoscaling.metric != "prometheus":
        raise AutoscalingError(
            f"minReplicas 0 needs metric prometheus: with no pod running, metric {autoscaling.metric} "
            "has nothing to measure and would never scale the model up again; use a query that sees "
            "demand without pods (request rate at the gateway, queue length)"
        )


def _scale_target(deployment_name: str) -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment_name}


def _scale_down_behavior(autoscaling: Autoscaling) -> dict[str, Any]:
    return {"scaleDown": {"stabilizationWindowSeconds": autoscaling.scale_down_stabilization_seconds}}


# --------------------------------------------------------------------------- HorizontalPodAutoscaler


def _horizontal_pod_autoscaler(
    md: ModelDeployment,
    metadata: dict[str, Any],
    deployment_name: str,
    autoscaling: Autoscaling,
    bounds: ReplicaBounds,
) -> dict[str, Any]:
    return {
        "apiVersion": HPA_API_VERSION,
        "kind": HPA_KIND,
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": _scale_target(deployment_name),
            "minReplicas": bounds.minimum,
            "maxReplicas": bounds.maximum,
            "metrics": [_hpa_metric(md, autoscaling)],
            "behavior": _scale_down_behavior(autoscaling),
        },
    }


def _hpa_metric(md: ModelDeployment, autoscaling: Autoscaling) -> dict[str, Any]:
    per_pod_target = {"type": "AverageValue", "averageValue": str(autoscaling.target)}
    if autoscaling.metric == "cpu":
        return {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": autoscaling.target},
            },
        }
    if autoscaling.metric == "prometheus":
        # An AverageValue target divides the model-wide value by the replica count, so the
        # target stays "per pod" as for every other metric.
        return {
            "type": "External",
            "external": {
                # prometheus-adapter adds the namespace to the selector itself.
                "metric": {"name": EXTERNAL_METRIC, "selector": {"matchLabels": {"model": name_of(md)}}},
                "target": per_pod_target,
            },
        }
    return {
        "type": "Pods",
        "pods": {"metric": {"name": POD_METRICS[autoscaling.metric]}, "target": per_pod_target},
    }


# --------------------------------------------------------------------------- KEDA ScaledObject


def _scaled_object(
    md: ModelDeployment,
    revision: str,
    metadata: dict[str, Any],
    deployment_name: str,
    autoscaling: Autoscaling,
    bounds: ReplicaBounds,
) -> dict[str, Any]:
    trigger = _keda_trigger(md, revision, deployment_name, autoscaling)
    spec: dict[str, Any] = {
        "scaleTargetRef": _scale_target(deployment_name),
        "minReplicaCount": bounds.minimum,
        "maxReplicaCount": bounds.maximum,
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _scale_down_behavior(autoscaling)}},
        "triggers": [trigger],
    }
    if bounds.minimum == 0:
        # Both only govern the step between zero and one replica; KEDA warns about a
        # cooldownPeriod that cannot apply.
        spec["cooldownPeriod"] = autoscaling.scale_down_stabilization_seconds
        trigger["metadata"]["activationThreshold"] = "0"
    return {"apiVersion": KEDA_API_VERSION, "kind": KEDA_KIND, "metadata": metadata, "spec": spec}


def _keda_trigger(
    md: ModelDeployment, revision: str, deployment_name: str, autoscaling: Autoscaling
) -> dict[str, Any]:
    if autoscaling.metric == "cpu":
        return {"type": "cpu", "metricType": "Utilization", "metadata": {"value": str(autoscaling.target)}}
    if autoscaling.prometheus_address is None:
        raise AutoscalingError(
            f"engine keda with metric {autoscaling.metric} needs prometheusAddress, the Prometheus KEDA queries"
        )
    return {
        "type": "prometheus",
        "metadata": {
            "serverAddress": autoscaling.prometheus_address,
            "query": _keda_query(md, revision, deployment_name, autoscaling),
            "threshold": str(autoscaling.target),
        },
    }


def _keda_query(md: ModelDeployment, revision: str, deployment_name: str, autoscaling: Autoscaling) -> str:
    """PromQL whose value is the revision's total load; KEDA's default AverageValue target divides
    it by the replica count, which makes `target` a per-pod value as under engine hpa."""
    namespace = namespace_of(md)
    if autoscaling.metric == "prometheus":
        assert autoscaling.query is not None, "the API requires query for metric prometheus"
        return _fill_placeholders(
            autoscaling.query, {"name": name_of(md), "namespace": namespace, "revision": revision}
        )
    # The pods the Deployment scales, as the HPA sees them: named <deployment>-<replicaset hash>-<suffix>.
    # (Selecting by revision would miss the old pods during a rolling update.)
    pods = f'namespace="{namespace}",pod=~"{deployment_name}-[a-z0-9]+-[a-z0-9]+"'
    if autoscaling.metric == "gpu-utilization":
        # DCGM reports each GPU; a pod with several counts once, at their average.
        return f"sum(avg by (pod) ({GPU_UTILIZATION_SERIES}{{{pods}}}))"
    if autoscaling.metric == "concurrency":
        return f"sum({INFLIGHT_REQUESTS_SERIES}{{{pods}}})"
    return f"sum(rate({REQUESTS_SERIES}{{{pods}}}[{RATE_WINDOW}]))"


def _fill_placeholders(query: str, values: dict[str, str]) -> str:
    unknown = sorted({found for found in PLACEHOLDER.findall(query) if found not in values})
    if unknown:
        raise AutoscalingError(
            f"autoscaling query: unknown placeholder {', '.join(unknown)} (known: {', '.join(values)})"
        )
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], query)
