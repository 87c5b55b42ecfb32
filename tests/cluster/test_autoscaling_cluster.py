"""Autoscalers and GPU capacity against the real API server: what it accepts, what it reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modeldeploy.api.models import ModelDeployment
from modeldeploy.capacity import GPURequest, gpu_capacity, pending_reason
from modeldeploy.render.autoscaler import render_autoscaler
from modeldeploy.render.revision import Role
from tests.cluster.conftest import Kubectl
from tests.cluster.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = yaml.safe_load((ROOT / "hack" / "topology.yaml").read_text())["nodes"]
KEDA_CRDS = (
    "scaledobjects.keda.sh",
    "scaledjobs.keda.sh",
    "triggerauthentications.keda.sh",
    "clustertriggerauthentications.keda.sh",
)
METRICS = ("cpu", "gpu-utilization", "concurrency", "rps", "prometheus")
REVISION = "1b03e8aa42"
DEPLOYMENT = f"sentiment-{REVISION}"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def model(namespace: str, autoscaling: dict[str, Any]) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": "sentiment", "namespace": namespace, "uid": "not-a-real-owner"},
            "spec": {
                "model": {"uri": "s3://models/sentiment/v7/"},
                "runtime": {"image": "ghcr.io/example/onnx-server:1.4", "resources": {"cpu": "1", "gpu": 1}},
                "autoscaling": autoscaling,
            },
        }
    )


def create(
    kubectl: Kubectl, md: ModelDeployment, role: Role = "stable", weight: int = 0
) -> tuple[dict, dict]:
    """Creates the rendered autoscaler (without its owner, which does not exist) and reads it back."""
    rendered = render_autoscaler(md, REVISION, DEPLOYMENT, role, weight)
    assert rendered is not None
    del rendered["metadata"]["ownerReferences"]
    kubectl.apply(rendered)
    live = kubectl.json(
        "get",
        f"{rendered['kind'].lower()}.{rendered['apiVersion'].split('/')[0]}",
        DEPLOYMENT,
        "-n",
        md.metadata["namespace"],
    )
    return rendered, live


def autoscaling(engine: str, metric: str, **extra: Any) -> dict[str, Any]:
    return {
        "engine": engine,
        "metric": metric,
        "minReplicas": 2,
        "maxReplicas": 8,
        "target": 60,
        "prometheusAddress": "http://prometheus.monitoring:9090",
        "query": 'sum(rate(gateway_requests_total{namespace="{{ namespace }}",route="{{ name }}"}[1m]))',
        **extra,
    }


@pytest.mark.parametrize("metric", METRICS)
def test_the_api_server_accepts_the_hpa_for(kubectl: Kubectl, namespace: str, metric: str) -> None:
    rendered, live = create(kubectl, model(namespace, autoscaling("hpa", metric)))
    assert live["spec"]["metrics"] == rendered["spec"]["metrics"]
    assert live["spec"]["scaleTargetRef"] == rendered["spec"]["scaleTargetRef"]
    assert (live["spec"]["minReplicas"], live["spec"]["maxReplicas"]) == (2, 8)
    assert live["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300


@pytest.mark.parametrize("metric", METRICS)
def test_the_api_server_accepts_the_scaled_object_for(
    kubectl: Kubectl, namespace: str, provider_crds: None, metric: str
) -> None:
    rendered, live = create(kubectl, model(namespace, autoscaling("keda", metric)))
    # Strict field validation refuses unknown fields, so equality also proves nothing was pruned.
    assert live["spec"] == rendered["spec"]


def test_the_api_server_accepts_a_scaled_object_that_scales_to_zero(
    kubectl: Kubectl, namespace: str, provider_crds: None
) -> None:
    rendered, live = create(kubectl, model(namespace, autoscaling("keda", "prometheus", minReplicas=0)))
    assert live["spec"] == rendered["spec"]
    assert (live["spec"]["minReplicaCount"], live["spec"]["cooldownPeriod"]) == (0, 300)


@pytest.mark.parametrize("engine", ["hpa", "keda"])
def test_the_api_server_accepts_a_canary_autoscaler(
    kubectl: Kubectl, namespace: str, provider_crds: None, engine: str
) -> None:
    _, live = create(kubectl, model(namespace, autoscaling(engine, "rps")), role="canary", weight=25)
    fields = ("minReplicas", "maxReplicas") if engine == "hpa" else ("minReplicaCount", "maxReplicaCount")
    assert tuple(live["spec"][field] for field in fields) == (1, 2)


def test_gpu_capacity_of_the_live_nodes_matches_the_topology(kubectl: Kubectl) -> None:
    nodes = kubectl.json("get", "nodes")["items"]
    pods = kubectl.json("get", "pods", "--all-namespaces")["items"]
    products = sorted({spec["product"] for spec in TOPOLOGY if spec.get("product")})
    for product in products:
        gpus = [int(spec["gpus"]) for spec in TOPOLOGY if spec.get("product") == product]
        report = gpu_capacity(nodes, pods, GPURequest(per_pod=2, product=product))
        assert report.products == tuple(products)
        assert (report.nodes_matching, report.total_allocatable) == (len(gpus), sum(gpus)), product
        assert report.replicas_that_fit_empty == sum(count // 2 for count in gpus), product
        # Other tests hold GPUs meanwhile; what they hold can only lower what fits now.
        assert 0 <= report.free <= report.total_allocatable
        assert report.replicas_that_fit_now <= report.replicas_that_fit_empty


def test_a_pending_gpu_pod_explains_itself(kubectl: Kubectl, namespace: str) -> None:
    eight = {"nvidia.com/gpu": "8"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "too-big", "namespace": namespace},
        "spec": {
            "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"},
            "tolerations": [GPU_TOLERATION],
            "containers": [{"name": "server", "image": "example/server:1", "resources": {"limits": eight}}],
        },
    }
    kubectl.apply(pod)

    def reason() -> str | None:
        return pending_reason([kubectl.json("get", "pod", "too-big", "-n", namespace)], None)

    # Every node counts, the real node (hack/cluster up --real-node) included when it runs.
    nodes = len(kubectl.json("get", "nodes")["items"])
    assert wait_for("the scheduler to refuse the pod", reason) == (
        f"InsufficientGPU: 0/{nodes} nodes can host 8 nvidia.com/gpu of NVIDIA-L4"
    )


def test_pods_refused_by_a_quota_are_explained_by_the_replica_set_event(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "gpus", "namespace": namespace},
            "spec": {"hard": {"requests.nvidia.com/gpu": "1"}},
        }
    )
    two = {"nvidia.com/gpu": "2"}
    kubectl.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": "over-quota", "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "over-quota"}},
                "template": {
                    "metadata": {"labels": {"app": "over-quota"}},
                    "spec": {
                        "tolerations": [GPU_TOLERATION],
                        "containers": [
                            {"name": "server", "image": "example/server:1", "resources": {"limits": two}}
                        ],
                    },
                },
            },
        }
    )

    def reason() -> str | None:
        return pending_reason([], kubectl.json("get", "events", "-n", namespace)["items"])

    explanation = wait_for("the ReplicaSet to report FailedCreate", reason)
    assert explanation.startswith('FailedCreate: Error creating: pods "over-quota-')
    assert "exceeded quota: gpus" in explanation
