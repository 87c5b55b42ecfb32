"""Every router's objects pass the real CRD schemas, and read back as rendered.

Objects are applied directly (no operator), without their owner reference: the owner, a
ModelDeployment, is not created here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from modeldeploy.api.models import PROVIDERS, ModelDeployment
from modeldeploy.compare import FIELD_MANAGER
from modeldeploy.traffic import ROUTERS, Routing, router_for
from tests.cluster.conftest import Kubectl
from tests.cluster.modeldeployments import manifest, wait_condition, wait_status
from tests.cluster.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
STABLE = "7f9c2d0000"
CANARY = "1b03e80000"
WEIGHTS = (0, 10, 50, 100)


def model(provider: str, namespace: str, protocol: str = "http", **traffic: Any) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {
                "name": "sentiment",
                "namespace": namespace,
                "uid": "6c0ffee0-0000-4000-8000-000000000001",
            },
            "spec": {
                "model": {"uri": "s3://models/sentiment/v7/"},
                "runtime": {"image": "ghcr.io/example/onnx-server:1.4", "protocol": protocol},
                "traffic": {"provider": provider, **traffic},
            },
        }
    )


def routing(weight: int) -> Routing:
    return Routing(STABLE, CANARY, weight, canary_ready_replicas=weight, stable_ready_replicas=100 - weight)


# Every feature each provider can express, so the CRD schemas validate all of it.
FULL_TRAFFIC: dict[str, dict[str, Any]] = {
    "gateway-api": {
        "gateway": {"name": "ml-gateway", "namespace": "gateways", "sectionName": "https"},
        "hosts": ["sentiment.ml.example.com"],
        "path": "/v2",
        "headerRouting": {"name": "x-canary", "value": "always"},
        "mirror": {"percent": 20},
        "timeout": "1.5s",
    },
    "istio": {
        "gateway": {"name": "public"},
        "hosts": ["sentiment.ml.example.com"],
        "headerRouting": {"name": "X-Canary", "value": "always"},
        "mirror": {"percent": 20},
        "timeout": "1.5s",
    },
    "nginx": {
        "ingressClassName": "nginx",
        "hosts": ["sentiment.ml.example.com"],
        "headerRouting": {"name": "x-canary", "value": "always"},
        "timeout": "30s",
    },
    "smi": {},
    "service": {},
}


def without_owner(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "ownerReferences"}}
        for obj in objects
    ]


def read_back(kubectl: Kubectl, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    result = kubectl.run("get", "-f", "-", "-o", "json", input=yaml.safe_dump_all(objects))
    served = json.loads(result.stdout)
    return served["items"] if served.get("kind") == "List" else [served]


def apply_as_operator(kubectl: Kubectl, objects: list[dict[str, Any]]) -> None:
    """Server-side apply under the operator's field manager, so that the read-back compares
    the lists it owns whole exactly, as the operator does: whatever a real CRD defaults in
    them and a router does not render shows here as a mismatch."""
    kubectl.run(
        "apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "-f", "-",
        input=yaml.safe_dump_all(objects),
    )  # fmt: skip


def sweep(kubectl: Kubectl, md: ModelDeployment) -> None:
    router = router_for(md.spec.traffic.provider)
    for weight in WEIGHTS:
        objects = without_owner(router.desired(md, routing(weight)))
        apply_as_operator(kubectl, objects)

        state = router.routed(md, read_back(kubectl, objects), routing(weight))

        assert (state.canary_weight, state.matches_desired) == (weight, True), f"weight {weight}"


@pytest.mark.usefixtures("provider_crds")
@pytest.mark.parametrize("provider", PROVIDERS)
def test_weight_sweep_is_accepted_and_reads_back(kubectl: Kubectl, namespace: str, provider: str) -> None:
    sweep(kubectl, model(provider, namespace, **FULL_TRAFFIC[provider]))


@pytest.mark.usefixtures("provider_crds")
@pytest.mark.parametrize("provider", ["gateway-api", "istio", "nginx"])
def test_grpc_weight_sweep_is_accepted_and_reads_back(
    kubectl: Kubectl, namespace: str, provider: str
) -> None:
    traffic = {key: value for key, value in FULL_TRAFFIC[provider].items() if key not in ("path", "timeout")}
    sweep(kubectl, model(provider, namespace, protocol="grpc", **traffic))


def weights_patch(backends: str) -> str:
    """A JSON patch that routes 60/40 between the first two entries of the list at `backends`."""
    return json.dumps(
        [
            {"op": "replace", "path": f"{backends}/{index}/weight", "value": value}
            for index, value in enumerate((60, 40))
        ]
    )


HAND_EDITS_TO_40_PERCENT = {
    "gateway-api": (
        "httproute.gateway.networking.k8s.io/sentiment",
        weights_patch("/spec/rules/0/backendRefs"),
    ),
    "istio": ("virtualservice.networking.istio.io/sentiment", weights_patch("/spec/http/0/route")),
    "nginx": (
        "ingress.networking.k8s.io/sentiment-canary",
        json.dumps(
            [
                {
                    "op": "replace",
                    "path": "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-weight",
                    "value": "40",
                }
            ]
        ),
    ),
    "smi": ("trafficsplit.split.smi-spec.io/sentiment", weights_patch("/spec/backends")),
}


@pytest.mark.usefixtures("provider_crds")
@pytest.mark.parametrize("provider", sorted(HAND_EDITS_TO_40_PERCENT))
def test_a_hand_edit_is_read_back_and_flagged(kubectl: Kubectl, namespace: str, provider: str) -> None:
    resource, patch = HAND_EDITS_TO_40_PERCENT[provider]
    md = model(provider, namespace)
    router = router_for(provider)
    objects = without_owner(router.desired(md, routing(10)))
    kubectl.apply(objects)
    kubectl.run("patch", resource, "-n", namespace, "--type=json", "-p", patch)

    state = router.routed(md, read_back(kubectl, objects), routing(10))

    assert (state.canary_weight, state.matches_desired) == (40, False)


def served_kinds(kubectl: Kubectl, api_version: str) -> set[str]:
    path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    return {
        resource["kind"] for resource in json.loads(kubectl.run("get", "--raw", path).stdout)["resources"]
    }


@pytest.mark.usefixtures("provider_crds")
def test_required_crds_are_exactly_the_crds_of_the_managed_kinds(kubectl: Kubectl) -> None:
    installed = {crd["metadata"]["name"]: crd for crd in kubectl.json("get", "crd")["items"]}
    crd_of_kind = {
        (crd["spec"]["group"], crd["spec"]["names"]["kind"]): name for name, crd in installed.items()
    }
    for router in ROUTERS.values():
        # The controller's check: a provider whose required CRDs are not all installed is missing.
        assert set(router.required_crds) <= set(installed), router.provider
        custom_kinds = {(api_version.rpartition("/")[0], kind) for api_version, kind in router.managed_kinds}
        assert set(router.required_crds) == {crd_of_kind[k] for k in custom_kinds if k in crd_of_kind}, (
            router.provider
        )
        for api_version, kind in router.managed_kinds:
            assert kind in served_kinds(kubectl, api_version), (router.provider, api_version, kind)


# provider -> (resource of its route, what mirror and timeout look like in the route's rules).
ROUTES_WITH_MIRROR_AND_TIMEOUT = {
    "gateway-api": (
        "httproute.gateway.networking.k8s.io/m",
        lambda spec: [key for rule in spec["rules"] for key in ("filters", "timeouts") if key in rule],
    ),
    "istio": (
        "virtualservice.networking.istio.io/m",
        lambda spec: [
            key for route in spec["http"] for key in ("mirror", "mirrorPercentage", "timeout") if key in route
        ],
    ),
}


@pytest.mark.usefixtures("operator")
@pytest.mark.parametrize("provider", sorted(ROUTES_WITH_MIRROR_AND_TIMEOUT))
def test_removing_mirror_and_timeout_from_the_spec_removes_them_from_the_route(
    kubectl: Kubectl, namespace: str, provider: str
) -> None:
    """Issue 15: the route follows the spec exactly. A mirror left on an HTTPRoute makes
    Traefik, which does not implement RequestMirror, answer 500 on every request of the rule."""
    resource, features = ROUTES_WITH_MIRROR_AND_TIMEOUT[provider]
    traffic = {"provider": provider, "hosts": ["m.example.com"], "mirror": {"percent": 20}, "timeout": "5s"}

    def route_features() -> list[str]:
        return list(features(kubectl.json("get", resource, "-n", namespace)["spec"]))

    kubectl.apply(manifest("m", traffic=traffic, rollout={"canary": {"weight": 0}}), "-n", namespace)
    wait_condition(kubectl, namespace, "m", "Ready", "True")
    # The mirror targets the canary: start one.
    canary = manifest(
        "m", image="ghcr.io/example/server:2", traffic=traffic, rollout={"canary": {"weight": 10}}
    )
    kubectl.apply(canary, "-n", namespace)
    wait_status(kubectl, namespace, "m", canaryWeight=10)
    everything = {"gateway-api": ["filters", "timeouts"], "istio": ["mirror", "mirrorPercentage", "timeout"]}
    wait_for("the route to mirror and time out", lambda: route_features() == everything[provider])

    remove = [
        {"op": "remove", "path": "/spec/traffic/mirror"},
        {"op": "remove", "path": "/spec/traffic/timeout"},
    ]
    kubectl.run("patch", "modeldeployment", "m", "-n", namespace, "--type=json", "-p", json.dumps(remove))

    wait_for("the route to lose mirror and timeout", lambda: route_features() == [], timeout=10)
    assert wait_status(kubectl, namespace, "m", canaryWeight=10)
