"""The models both systems deploy, and how each system is asked to deploy them.

One model in four asks for a GPU. The operator gets a ModelDeployment; Flagger gets the
Deployment the operator would render for that model's revision (same containers, model
initializer, resources, node selection; only the labels differ, as Flagger selects by
`app`) and a Canary routing through Gateway API.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.cluster import GPU_PRODUCT, NODE_LABEL, bench_toleration
from modeldeploy.api.models import ModelDeploymentSpec
from modeldeploy.render.revision import RevisionPlan, RevisionSpec, revision_of
from modeldeploy.render.workload import pod_spec

IMAGES = ("ghcr.io/example/server:1", "ghcr.io/example/server:2")
CANARY_WEIGHTS = (10, 50)
GATEWAY = "ml-gateway"
GPU_EVERY = 4
INITIALIZER_IMAGE = "ghcr.io/modeldeploy/modeldeploy:bench"
PORT = 8080
# Flagger checks a canary at most this often (10 s is the shortest interval it accepts).
FLAGGER_INTERVAL_SECONDS = 10


@dataclass(frozen=True)
class Model:
    name: str
    gpu: bool

    @property
    def host(self) -> str:
        return f"{self.name}.bench.example.com"


def models(count: int) -> list[Model]:
    return [Model(f"m{n:04d}", gpu=n % GPU_EVERY == 0) for n in range(count)]


def _runtime(model: Model, image: str) -> dict[str, Any]:
    runtime: dict[str, Any] = {
        "image": image,
        "port": PORT,
        "resources": {"cpu": "1", "memory": "4Gi", "gpu": 1}
        if model.gpu
        else {"cpu": "100m", "memory": "128Mi"},
        "nodeSelector": {NODE_LABEL: "true"},
        "tolerations": [bench_toleration()],
    }
    if model.gpu:
        runtime["gpu"] = {"product": GPU_PRODUCT}
    return runtime


def _spec(model: Model, image: str, weight: int) -> dict[str, Any]:
    return {
        "model": {"uri": f"s3://models/{model.name}/"},
        "runtime": _runtime(model, image),
        "replicas": 1,
        "rollout": {"canary": {"weight": weight}},
        "traffic": {"provider": "gateway-api", "gateway": {"name": GATEWAY}, "hosts": [model.host]},
    }


def modeldeployment(model: Model, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": model.name, "namespace": namespace},
        "spec": _spec(model, IMAGES[0], weight=0),
    }


def modeldeployment_patch(image: str, weight: int) -> dict[str, Any]:
    return {"spec": {"runtime": {"image": image}, "rollout": {"canary": {"weight": weight}}}}


def flagger_target(model: Model, namespace: str) -> dict[str, Any]:
    """The Deployment a Canary targets: the operator's pod template for the same revision."""
    spec = ModelDeploymentSpec.model_validate(_spec(model, IMAGES[0], weight=0))
    plan = RevisionPlan(revision=revision_of(spec), role="stable", spec=RevisionSpec.of(spec), replicas=1)
    labels = {"app": model.name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": model.name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec(plan, INITIALIZER_IMAGE)},
        },
    }


def flagger_target_patch(image: str) -> dict[str, Any]:
    return {"spec": {"template": {"spec": {"containers": [{"name": "server", "image": image}]}}}}


def flagger_canary(model: Model, namespace: str, gate_url: str) -> dict[str, Any]:
    """A Canary with no metrics (no Prometheus needed) whose weight steps are CANARY_WEIGHTS,
    each step held until the benchmark's gate approves it, and promotion held for good, so
    that Flagger routes exactly the weights the operator is told to."""
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": model.name, "namespace": namespace},
        "spec": {
            "provider": "gatewayapi:v1",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": model.name},
            "service": {
                "port": PORT,
                "targetPort": PORT,
                "hosts": [model.host],
                "gatewayRefs": [{"name": GATEWAY, "namespace": namespace}],
            },
            "analysis": {
                "interval": f"{FLAGGER_INTERVAL_SECONDS}s",
                "threshold": 5,
                "stepWeights": list(CANARY_WEIGHTS),
                "metrics": [],
                "webhooks": [
                    {"name": "weight", "type": "confirm-traffic-increase", "url": f"{gate_url}/weight"},
                    {"name": "promotion", "type": "confirm-promotion", "url": f"{gate_url}/promotion"},
                ],
            },
        },
    }


def canary_percent(route: dict[str, Any], name: str) -> int:
    """The share of requests an HTTPRoute sends to the Service `<name>-canary`, in percent
    (both systems name their canary Service so); 0 when no rule sends it any."""
    canary = f"{name}-canary"
    for rule in route.get("spec", {}).get("rules", []):
        backends = rule.get("backendRefs", [])
        total = sum(backend.get("weight", 1) for backend in backends)
        for backend in backends:
            if backend["name"] == canary and total:
                return round(100 * backend.get("weight", 1) / total)
    return 0
