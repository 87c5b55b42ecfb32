"""The operator's API client against the real API server: what the benchmark's fixes rely on."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from modeldeploy.controller.kube import Kube
from tests.cluster.harness import Kubectl
from tests.cluster.modeldeployments import get, manifest


@pytest.fixture
async def kube(kubeconfig: str) -> AsyncIterator[Kube]:
    connected = await Kube.connect(kubeconfig)
    yield connected
    await connected.close()


async def test_concurrent_first_lookups_of_a_kind_discover_it_once(kube: Kube) -> None:
    discoverer = kube.dynamic.resources
    lookups = []
    real_get = discoverer.get

    async def counted(**kind: Any) -> Any:
        lookups.append(kind)
        return await real_get(**kind)

    discoverer.get = counted
    found = await asyncio.gather(*(kube.resource("apps/v1", "Deployment") for _ in range(10)))
    assert len(lookups) == 1
    assert {resource.kind for resource in found} == {"Deployment"}


async def test_the_session_reads_no_netrc_unless_a_proxy_is_configured(
    kubeconfig: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = await Kube.connect(kubeconfig)
    try:
        assert plain.api.rest_client.pool_manager.trust_env is False
        assert await plain.list("v1", "Namespace", None, {}), "the replaced session still talks to the server"
    finally:
        await plain.close()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    proxied = await Kube.connect(kubeconfig)
    try:
        assert proxied.api.rest_client.pool_manager.trust_env is True
    finally:
        await proxied.close()


@pytest.fixture
def unwatched_namespace(kubectl: Kubectl) -> Iterator[str]:
    """Outside the test session's namespace prefix, so its operator writes nothing here."""
    name = f"kube-client-{uuid.uuid4().hex[:8]}"
    kubectl.create_namespace(name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


async def test_a_status_write_returns_the_version_its_watch_event_carries(
    kube: Kube, kubectl: Kubectl, unwatched_namespace: str, modeldeployment_crd: None
) -> None:
    """The operator skips the watch event of its own status write by this resourceVersion."""
    kubectl.apply(manifest("echo"), "-n", unwatched_namespace)
    written = await kube.patch_status(
        "modeldeploy.io/v1alpha1", "ModelDeployment", unwatched_namespace, "echo", {"phase": "Stable"}
    )
    assert (
        get(kubectl, unwatched_namespace, "echo")["metadata"]["resourceVersion"]
        == written["metadata"]["resourceVersion"]
    )
    assert written["status"]["phase"] == "Stable"


async def test_a_repeated_event_is_counted_on_one_event_and_a_new_reason_is_its_own(
    kube: Kube, kubectl: Kubectl, unwatched_namespace: str
) -> None:
    from kubernetes_asyncio.client import CoreV1Api

    from modeldeploy.controller.events import EventRecorder

    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "subject", "namespace": unwatched_namespace, "uid": str(uuid.uuid4())},
    }
    recorder = EventRecorder(CoreV1Api(kube.api), instance="test")
    for _ in range(5):
        await recorder.emit(config_map, "Warning", "ReplicaFailure", "pods are refused: exceeded quota")
    await recorder.emit(config_map, "Normal", "Serving", "revision a: 1/1 replicas ready")

    events = kubectl.json("get", "events", "-n", unwatched_namespace)["items"]
    assert sorted((e["reason"], e["count"]) for e in events) == [("ReplicaFailure", 5), ("Serving", 1)]
