"""The GitOps canary on every provider: commits change the image and the weight; the operator
moves traffic, shows each weight in the route and in status, and promotes at 100."""

from __future__ import annotations

from typing import Any

import pytest

from modeldeploy.api.models import ModelDeployment
from modeldeploy.traffic import ROUTERS, Routing, router_for
from tests.cluster.conftest import Kubectl, restore_crd
from tests.cluster.modeldeployments import children, condition, get, manifest, wait_condition, wait_status
from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.usefixtures("operator")

TRAFFIC = {
    "gateway-api": {"gateway": {"name": "ml-gateway"}, "hosts": ["m.example.com"]},
    "istio": {"gateway": {"name": "ml-gateway"}, "hosts": ["m.example.com"]},
    "nginx": {"ingressClassName": "nginx", "hosts": ["m.example.com"]},
    "smi": {},
    "service": {},
}


def live_routing_objects(kubectl: Kubectl, namespace: str, provider: str) -> list[dict[str, Any]]:
    objects = []
    for api_version, kind in ROUTERS[provider].managed_kinds:
        group, _, version = api_version.rpartition("/")
        resource = ".".join(part for part in (kind, version, group) if part)
        objects += kubectl.json("get", resource, "-n", namespace, "-l", "modeldeploy.io/model=m")["items"]
    return [*objects, kubectl.json("get", "service", "m", "-n", namespace)]


def routed_weight(kubectl: Kubectl, namespace: str, provider: str) -> int | None:
    """The canary weight the provider's live objects route, read by the provider's own parser."""
    body = get(kubectl, namespace, "m")
    md = ModelDeployment.model_validate(body)
    readiness = {r["name"]: r["readyReplicas"] for r in body["status"].get("revisions", [])}
    routing = Routing(
        stable_revision=md.status.stable_revision,
        canary_revision=md.status.canary_revision,
        canary_weight=md.status.canary_weight,
        canary_ready_replicas=readiness.get(md.status.canary_revision or "", 0),
        stable_ready_replicas=readiness.get(md.status.stable_revision or "", 0),
    )
    return (
        router_for(provider)
        .routed(md, live_routing_objects(kubectl, namespace, provider), routing)
        .canary_weight
    )


def commit(
    kubectl: Kubectl, namespace: str, provider: str, image: str, weight: int, replicas: int = 1
) -> None:
    """What Argo CD or Flux does on sync: apply the manifest from Git."""
    spec = {
        "traffic": {"provider": provider, **TRAFFIC[provider]},
        "rollout": {"canary": {"weight": weight}},
        "replicas": replicas,
    }
    kubectl.apply(manifest("m", image=image, **spec), "-n", namespace)


@pytest.mark.parametrize("provider", sorted(ROUTERS))
def test_gitops_sequence_promotes_v2(kubectl: Kubectl, namespace: str, provider: str) -> None:
    # The service provider splits by replica ratio: 1 stable and 1 canary pod make 50%.
    commit(kubectl, namespace, provider, "ghcr.io/example/server:1", weight=0)
    v1 = wait_condition(kubectl, namespace, "m", "Ready", "True")["status"]["stableRevision"]
    assert condition(get(kubectl, namespace, "m"), "TrafficReady")["status"] == "True"

    for weight in (10, 50):
        commit(kubectl, namespace, provider, "ghcr.io/example/server:2", weight=weight)
        expected = 50 if provider == "service" else weight
        body = wait_status(kubectl, namespace, "m", canaryWeight=expected)
        assert body["status"]["stableRevision"] == v1
        assert body["status"]["phase"] == "Progressing"
        assert routed_weight(kubectl, namespace, provider) == expected
        printed = kubectl.run("get", "md", "m", "-n", namespace).stdout
        assert f" {expected} " in printed, printed

    commit(kubectl, namespace, provider, "ghcr.io/example/server:2", weight=100)
    body = wait_status(kubectl, namespace, "m", phase="Stable", canaryWeight=0, timeout=90)
    v2 = body["status"]["stableRevision"]
    assert v2 != v1
    assert "canaryRevision" not in body["status"]
    wait_for(
        "v1 to be removed",
        lambda: (
            [d["metadata"]["name"] for d in children(kubectl, namespace, "m", "deployment")] == [f"m-{v2}"]
        ),
    )
    assert routed_weight(kubectl, namespace, provider) == 0
    assert [entry["revision"] for entry in body["status"]["history"]][-2:] == [v1, v2]


def test_an_unready_canary_receives_nothing(kubectl: Kubectl, namespace: str) -> None:
    commit(kubectl, namespace, "gateway-api", "ghcr.io/example/server:1", weight=0)
    wait_condition(kubectl, namespace, "m", "Ready", "True")
    spec = {
        "traffic": {"provider": "gateway-api", **TRAFFIC["gateway-api"]},
        "rollout": {"canary": {"weight": 50}},
        # No node has 8 L4 GPUs: the canary's pod stays Pending.
        "runtime": {"resources": {"gpu": 8}, "gpu": {"product": "NVIDIA-L4"}},
    }
    kubectl.apply(manifest("m", image="ghcr.io/example/server:2", **spec), "-n", namespace)
    body = wait_for(
        "the canary to exist",
        lambda: (b := get(kubectl, namespace, "m"))["status"].get("canaryRevision") and b,
    )
    wait_for(
        "a reconcile of the pending canary",
        lambda: get(kubectl, namespace, "m")["status"]["rollout"].get("message"),
    )
    body = get(kubectl, namespace, "m")
    assert body["status"]["canaryWeight"] == 0
    assert routed_weight(kubectl, namespace, "gateway-api") == 0
    assert "ready" in body["status"]["rollout"]["message"].lower(), body["status"]["rollout"]


def test_switching_provider_removes_the_old_providers_objects(kubectl: Kubectl, namespace: str) -> None:
    commit(kubectl, namespace, "nginx", "ghcr.io/example/server:1", weight=0)
    wait_condition(kubectl, namespace, "m", "Ready", "True")
    assert children(kubectl, namespace, "m", "ingress")
    commit(kubectl, namespace, "gateway-api", "ghcr.io/example/server:1", weight=0)
    wait_for("the Ingress to be removed", lambda: not children(kubectl, namespace, "m", "ingress"))
    assert [r["metadata"]["name"] for r in children(kubectl, namespace, "m", "httproute")] == ["m"]


def test_a_route_edited_by_hand_is_put_back(kubectl: Kubectl, namespace: str) -> None:
    commit(kubectl, namespace, "gateway-api", "ghcr.io/example/server:1", weight=0)
    wait_condition(kubectl, namespace, "m", "Ready", "True")
    commit(kubectl, namespace, "gateway-api", "ghcr.io/example/server:2", weight=10)
    wait_status(kubectl, namespace, "m", canaryWeight=10)
    kubectl.run(
        "patch", "httproute", "m", "-n", namespace, "--type=json",
        "-p", '[{"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 30}]',
    )  # fmt: skip
    wait_for("the route to be put back", lambda: routed_weight(kubectl, namespace, "gateway-api") == 10)
    events = kubectl.json("get", "events", "-n", namespace, "--field-selector", "reason=ChildRestored")[
        "items"
    ]
    assert any("HTTPRoute m" in event["message"] for event in events), events


def test_a_missing_provider_crd_is_a_condition(kubectl: Kubectl, namespace: str) -> None:
    crd = "trafficsplits.split.smi-spec.io"
    saved = kubectl.json("get", "crd", crd)
    kubectl.run("delete", "crd", crd)
    try:
        commit(kubectl, namespace, "smi", "ghcr.io/example/server:1", weight=0)
        body = wait_condition(
            kubectl, namespace, "m", "TrafficReady", "False", reason="ProviderNotInstalled", timeout=90
        )
        assert crd in condition(body, "TrafficReady")["message"]
        assert condition(body, "Ready")["status"] == "False"
    finally:
        restore_crd(kubectl, saved)
