"""Autoscalers: every metric under both engines, the canary's replica range, refused settings."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modeldeploy.api.models import Autoscaling, ModelDeployment
from modeldeploy.render.autoscaler import (
    AutoscalingError,
    ReplicaBounds,
    autoscaler_kinds,
    render_autoscaler,
    replica_bounds,
)
from modeldeploy.render.revision import Role

REVISION = "1b03e8aa42"
DEPLOYMENT = f"sentiment-{REVISION}"
PROMETHEUS = "http://prometheus.monitoring:9090"
PODS = f'namespace="ml",pod=~"{DEPLOYMENT}-[a-z0-9]+-[a-z0-9]+"'


def model(autoscaling: dict[str, Any] | None, name: str = "sentiment", **spec: Any) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": name, "namespace": "ml", "uid": "uid-1"},
            "spec": {
                "model": {"uri": "s3://models/sentiment/v7/"},
                "runtime": {"image": "ghcr.io/example/onnx-server:1.4", "resources": {"gpu": 1}},
                "autoscaling": autoscaling,
                **spec,
            },
        }
    )


def render(
    autoscaling: dict[str, Any], role: Role = "stable", weight: int = 0, **spec: Any
) -> dict[str, Any]:
    rendered = render_autoscaler(model(autoscaling, **spec), REVISION, DEPLOYMENT, role, weight)
    assert rendered is not None
    return rendered


def test_no_autoscaler_without_autoscaling_or_for_a_retiring_revision() -> None:
    assert render_autoscaler(model(None), REVISION, DEPLOYMENT, "stable", 0) is None
    assert render_autoscaler(model({"maxReplicas": 4}), REVISION, DEPLOYMENT, "retiring", 0) is None


def test_autoscaler_kinds_cover_both_engines() -> None:
    assert autoscaler_kinds() == (
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
        ("keda.sh/v1alpha1", "ScaledObject"),
    )
    for engine, (api_version, kind) in zip(("hpa", "keda"), autoscaler_kinds(), strict=True):
        rendered = render({"engine": engine, "maxReplicas": 4})
        assert (rendered["apiVersion"], rendered["kind"]) == (api_version, kind)


def test_hpa_targets_the_deployment_with_the_spec_range_and_scale_down_window() -> None:
    hpa = render(
        {
            "maxReplicas": 8,
            "minReplicas": 2,
            "metric": "gpu-utilization",
            "scaleDownStabilizationSeconds": 600,
        }
    )
    assert hpa == {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": DEPLOYMENT,
            "namespace": "ml",
            "labels": {
                "app.kubernetes.io/name": "modeldeploy",
                "app.kubernetes.io/instance": "sentiment",
                "app.kubernetes.io/managed-by": "modeldeploy",
                "app.kubernetes.io/component": "autoscaler",
                "modeldeploy.io/model": "sentiment",
                "modeldeploy.io/revision": REVISION,
            },
            "ownerReferences": [
                {
                    "apiVersion": "modeldeploy.io/v1alpha1",
                    "kind": "ModelDeployment",
                    "name": "sentiment",
                    "uid": "uid-1",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": DEPLOYMENT},
            "minReplicas": 2,
            "maxReplicas": 8,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "DCGM_FI_DEV_GPU_UTIL"},
                        "target": {"type": "AverageValue", "averageValue": "70"},
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600}},
        },
    }


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (
            "cpu",
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}},
            },
        ),
        (
            "gpu-utilization",
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "DCGM_FI_DEV_GPU_UTIL"},
                    "target": {"type": "AverageValue", "averageValue": "60"},
                },
            },
        ),
        (
            "concurrency",
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "modeldeploy_inflight_requests"},
                    "target": {"type": "AverageValue", "averageValue": "60"},
                },
            },
        ),
        (
            "rps",
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "modeldeploy_requests_per_second"},
                    "target": {"type": "AverageValue", "averageValue": "60"},
                },
            },
        ),
        (
            "prometheus",
            {
                "type": "External",
                "external": {
                    "metric": {
                        "name": "modeldeploy_external",
                        "selector": {"matchLabels": {"model": "sentiment"}},
                    },
                    "target": {"type": "AverageValue", "averageValue": "60"},
                },
            },
        ),
    ],
)
def test_hpa_metric(metric: str, expected: dict[str, Any]) -> None:
    hpa = render({"maxReplicas": 4, "metric": metric, "target": 60, "query": "sum(queue_depth)"})
    assert hpa["spec"]["metrics"] == [expected]


def test_scaled_object_targets_the_deployment_with_range_behavior_and_trigger() -> None:
    scaled_object = render(
        {
            "engine": "keda",
            "minReplicas": 1,
            "maxReplicas": 8,
            "metric": "concurrency",
            "target": 4,
            "prometheusAddress": PROMETHEUS,
            "scaleDownStabilizationSeconds": 120,
        }
    )
    assert scaled_object["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled_object["kind"] == "ScaledObject"
    assert scaled_object["metadata"]["name"] == DEPLOYMENT
    assert scaled_object["metadata"]["labels"]["app.kubernetes.io/component"] == "autoscaler"
    assert scaled_object["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": DEPLOYMENT},
        "minReplicaCount": 1,
        "maxReplicaCount": 8,
        "advanced": {
            "horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 120}}}
        },
        "triggers": [
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": PROMETHEUS,
                    "query": f"sum(modeldeploy_inflight_requests{{{PODS}}})",
                    "threshold": "4",
                },
            }
        ],
    }


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        ("cpu", {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}),
        (
            "gpu-utilization",
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": PROMETHEUS,
                    "query": f"sum(avg by (pod) (DCGM_FI_DEV_GPU_UTIL{{{PODS}}}))",
                    "threshold": "60",
                },
            },
        ),
        (
            "concurrency",
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": PROMETHEUS,
                    "query": f"sum(modeldeploy_inflight_requests{{{PODS}}})",
                    "threshold": "60",
                },
            },
        ),
        (
            "rps",
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": PROMETHEUS,
                    "query": f"sum(rate(modeldeploy_requests_total{{{PODS}}}[2m]))",
                    "threshold": "60",
                },
            },
        ),
        (
            "prometheus",
            {
                "type": "prometheus",
                "metadata": {
                    "serverAddress": PROMETHEUS,
                    "query": 'sum(rate(gateway_requests_total{namespace="ml",route="sentiment"}[1m]))',
                    "threshold": "60",
                },
            },
        ),
    ],
)
def test_keda_trigger(metric: str, expected: dict[str, Any]) -> None:
    scaled_object = render(
        {
            "engine": "keda",
            "maxReplicas": 4,
            "metric": metric,
            "target": 60,
            "prometheusAddress": PROMETHEUS,
            "query": 'sum(rate(gateway_requests_total{namespace="{{ namespace }}",route="{{name}}"}[1m]))',
        }
    )
    assert scaled_object["spec"]["triggers"] == [expected]
    assert "cooldownPeriod" not in scaled_object["spec"]


def test_keda_query_placeholders_name_the_revision() -> None:
    scaled_object = render(
        {
            "engine": "keda",
            "maxReplicas": 4,
            "metric": "prometheus",
            "prometheusAddress": PROMETHEUS,
            "query": 'sum(queue_depth{model="{{ name }}",revision="{{ revision }}",ns="{{namespace}}"})',
        }
    )
    query = scaled_object["spec"]["triggers"][0]["metadata"]["query"]
    assert query == f'sum(queue_depth{{model="sentiment",revision="{REVISION}",ns="ml"}})'


def test_keda_scale_to_zero_sets_cooldown_and_activation() -> None:
    scaled_object = render(
        {
            "engine": "keda",
            "minReplicas": 0,
            "maxReplicas": 4,
            "metric": "prometheus",
            "prometheusAddress": PROMETHEUS,
            "query": "sum(queue_depth)",
            "scaleDownStabilizationSeconds": 900,
        }
    )
    assert scaled_object["spec"]["minReplicaCount"] == 0
    assert scaled_object["spec"]["cooldownPeriod"] == 900
    assert scaled_object["spec"]["triggers"][0]["metadata"]["activationThreshold"] == "0"


@pytest.mark.parametrize(
    ("autoscaling", "complaint"),
    [
        ({"engine": "keda", "minReplicas": 0, "maxReplicas": 4, "metric": "cpu"}, "needs metric prometheus"),
        (
            {
                "engine": "keda",
                "minReplicas": 0,
                "maxReplicas": 4,
                "metric": "gpu-utilization",
                "prometheusAddress": PROMETHEUS,
            },
            "metric gpu-utilization has nothing to measure",
        ),
        ({"engine": "keda", "maxReplicas": 4, "metric": "rps"}, "needs prometheusAddress"),
        (
            {
                "engine": "keda",
                "maxReplicas": 4,
                "metric": "prometheus",
                "prometheusAddress": PROMETHEUS,
                "query": "sum(queue{route='{{ route }}'})",
            },
            r"unknown placeholder route \(known: name, namespace, revision\)",
        ),
    ],
)
def test_settings_no_autoscaler_can_honour_are_refused(autoscaling: dict[str, Any], complaint: str) -> None:
    with pytest.raises(AutoscalingError, match=complaint):
        render(autoscaling)


@pytest.mark.parametrize(
    ("minimum", "maximum", "weight", "expected"),
    [
        (2, 10, 0, ReplicaBounds(1, 1)),
        (2, 10, 10, ReplicaBounds(1, 1)),
        (2, 10, 25, ReplicaBounds(1, 3)),
        (2, 10, 50, ReplicaBounds(1, 5)),
        (4, 10, 60, ReplicaBounds(3, 6)),
        (2, 10, 100, ReplicaBounds(2, 10)),
        (0, 8, 30, ReplicaBounds(1, 3)),
    ],
)
def test_canary_range_follows_its_traffic_share(
    minimum: int, maximum: int, weight: int, expected: ReplicaBounds
) -> None:
    autoscaling = {"minReplicas": minimum, "maxReplicas": maximum, "engine": "keda", "metric": "cpu"}
    scaled_object = render(autoscaling, role="canary", weight=weight)
    assert (scaled_object["spec"]["minReplicaCount"], scaled_object["spec"]["maxReplicaCount"]) == (
        expected.minimum,
        expected.maximum,
    )


def test_stable_keeps_the_full_range_whatever_the_canary_weight() -> None:
    hpa = render({"minReplicas": 2, "maxReplicas": 10}, role="stable", weight=90)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)


def test_mirrored_traffic_counts_toward_the_canary_share() -> None:
    hpa = render(
        {"minReplicas": 2, "maxReplicas": 10}, role="canary", weight=10, traffic={"mirror": {"percent": 50}}
    )
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 5)


@given(
    replicas=st.tuples(st.integers(0, 1000), st.integers(1, 1000)).map(sorted),
    weight=st.integers(0, 100),
    more=st.integers(0, 100),
)
def test_canary_range_is_valid_and_grows_with_weight(replicas: list[int], weight: int, more: int) -> None:
    autoscaling = Autoscaling(engine="keda", min_replicas=replicas[0], max_replicas=replicas[1])
    bounds = replica_bounds(autoscaling, "canary", weight)
    larger = replica_bounds(autoscaling, "canary", min(100, weight + more))
    assert 1 <= bounds.minimum <= bounds.maximum <= autoscaling.max_replicas
    assert larger.minimum >= bounds.minimum and larger.maximum >= bounds.maximum
    assert replica_bounds(autoscaling, "canary", 100).maximum == autoscaling.max_replicas


@given(
    st.integers(min_value=1, max_value=50),
    st.integers(min_value=1, max_value=50),
    st.integers(min_value=0, max_value=20),
    st.integers(min_value=0, max_value=100),
)
def test_with_a_gpu_budget_the_two_autoscalers_maxima_stay_within_max_replicas_plus_surge(
    minimum: int, maximum: int, surge: int, share: int
) -> None:
    scaling = Autoscaling(minReplicas=min(minimum, maximum), maxReplicas=maximum)
    stable = replica_bounds(scaling, "stable", share, surge)
    canary = replica_bounds(scaling, "canary", share, surge)
    # An autoscaler cannot have a maximum below 1: with no surge and all traffic on the canary,
    # stable keeps that one.
    assert stable.maximum + canary.maximum <= maximum + surge + (
        1 if canary.maximum >= maximum + surge else 0
    )
    assert 1 <= stable.minimum <= stable.maximum <= maximum
    # Without a budget, stable keeps the spec's range.
    assert replica_bounds(scaling, "stable", share) == ReplicaBounds(scaling.min_replicas, maximum)
