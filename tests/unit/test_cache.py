"""The watch-fed cache the reconcile reads instead of the API server."""

from __future__ import annotations

from typing import Any

from modeldeploy.controller.cache import ObjectCache

DEPLOYMENT = ("apps/v1", "Deployment")
POD = ("v1", "Pod")


def child(kind: tuple[str, str], name: str, version: int, model: str = "m", **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": kind[0],
        "kind": kind[1],
        "metadata": {
            "name": name,
            "namespace": "ml",
            "resourceVersion": str(version),
            "labels": {"modeldeploy.io/model": model},
        },
        **extra,
    }


def test_children_are_found_by_model_and_kind() -> None:
    cache = ObjectCache()
    cache.wrote(child(DEPLOYMENT, "m-a", 5))
    cache.wrote(child(POD, "m-a-1", 6))
    cache.wrote(child(DEPLOYMENT, "other-a", 7, model="other"))
    cache.wrote({**child(DEPLOYMENT, "unlabelled", 8), "metadata": {"name": "u", "namespace": "ml"}})

    assert [d["metadata"]["name"] for d in cache.children("ml", "m", (DEPLOYMENT,))] == ["m-a"]
    assert [p["metadata"]["name"] for p in cache.children("ml", "m", (POD,))] == ["m-a-1"]
    assert cache.children("other-namespace", "m", (DEPLOYMENT,)) == []


def test_an_event_older_than_our_own_write_is_ignored() -> None:
    cache = ObjectCache()
    cache.wrote(child(DEPLOYMENT, "m-a", 10, spec={"replicas": 2}))
    cache.child_event("MODIFIED", child(DEPLOYMENT, "m-a", 9, spec={"replicas": 1}))
    assert cache.children("ml", "m", (DEPLOYMENT,))[0]["spec"] == {"replicas": 2}
    cache.child_event("MODIFIED", child(DEPLOYMENT, "m-a", 11, spec={"replicas": 3}))
    assert cache.children("ml", "m", (DEPLOYMENT,))[0]["spec"] == {"replicas": 3}


def test_what_we_deleted_is_not_brought_back_by_a_late_event_until_the_watch_sees_the_deletion() -> None:
    cache = ObjectCache()
    cache.wrote(child(DEPLOYMENT, "m-a", 10))
    cache.removed(child(DEPLOYMENT, "m-a", 10))
    cache.child_event("MODIFIED", child(DEPLOYMENT, "m-a", 10))
    assert cache.children("ml", "m", (DEPLOYMENT,)) == []
    cache.child_event("DELETED", child(DEPLOYMENT, "m-a", 12))
    cache.child_event("ADDED", child(DEPLOYMENT, "m-a", 20))
    assert [d["metadata"]["resourceVersion"] for d in cache.children("ml", "m", (DEPLOYMENT,))] == ["20"]


def test_pods_are_kept_slim() -> None:
    cache = ObjectCache()
    pod = child(
        POD,
        "m-a-1",
        3,
        spec={
            "nodeName": "a100-1",
            "containers": [
                {"name": "server", "image": "x", "resources": {"limits": {"nvidia.com/gpu": "4"}}}
            ],
            "volumes": [{"name": "model", "emptyDir": {}}],
        },
        status={"phase": "Running"},
    )
    pod["metadata"]["managedFields"] = [{"manager": "kubelet"}]
    cache.wrote(pod)
    (kept,) = cache.children("ml", "m", (POD,))
    assert "managedFields" not in kept["metadata"]
    assert kept["spec"]["containers"] == [
        {"name": "server", "resources": {"limits": {"nvidia.com/gpu": "4"}}}
    ]
    assert "volumes" not in kept["spec"]
    assert kept["status"] == {"phase": "Running"}


def test_a_model_keeps_the_newest_body_and_goes_on_deletion() -> None:
    cache = ObjectCache()
    model = {
        "metadata": {"name": "m", "namespace": "ml", "resourceVersion": "7"},
        "status": {"phase": "Stable"},
    }
    cache.model_event(None, model)
    cache.model_event(
        "MODIFIED", {**model, "metadata": {**model["metadata"], "resourceVersion": "6"}, "status": {}}
    )
    assert cache.model("ml", "m") == model
    cache.model_event("DELETED", model)
    assert cache.model("ml", "m") is None


def test_the_echo_of_our_own_write_is_recognised_once_and_other_changes_are_not() -> None:
    cache = ObjectCache()
    cache.wrote(child(DEPLOYMENT, "m-a", 10), own=True)
    assert not cache.is_echo(child(DEPLOYMENT, "m-a", 9)), "an older event is someone else's change"
    assert cache.is_echo(child(DEPLOYMENT, "m-a", 10))
    assert not cache.is_echo(child(DEPLOYMENT, "m-a", 10)), "told once"
    cache.wrote(child(DEPLOYMENT, "m-a", 11))
    assert not cache.is_echo(child(DEPLOYMENT, "m-a", 11)), "a change seen by the watch is not ours"


def test_a_model_is_listed_once_and_again_after_it_is_deleted() -> None:
    cache = ObjectCache()
    model = {"metadata": {"name": "m", "namespace": "ml", "resourceVersion": "7"}}
    assert not cache.listed("ml", "m")
    cache.fill("ml", "m", [child(DEPLOYMENT, "m-a", 5)])
    assert cache.listed("ml", "m")
    assert [d["metadata"]["name"] for d in cache.children("ml", "m", (DEPLOYMENT,))] == ["m-a"]
    cache.model_event("DELETED", model)
    assert not cache.listed("ml", "m")


def test_what_no_pass_reads_is_not_kept() -> None:
    """A status writer's managedFields entry and a ModelDeployment's managedFields are left
    out; the operator's own apply entry (which the comparison reads) stays."""
    ours = {"manager": "modeldeploy", "operation": "Apply", "fieldsV1": {"f:spec": {}}}
    status = {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status"}
    edit = {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {}}}
    deployment = child(DEPLOYMENT, "m-a", 5)
    deployment["metadata"]["managedFields"] = [ours, status, edit]
    cache = ObjectCache()
    cache.wrote(deployment)
    (kept,) = cache.children("ml", "m", (DEPLOYMENT,))
    assert kept["metadata"]["managedFields"] == [ours, edit]

    model = {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m", "namespace": "ml", "resourceVersion": "3", "managedFields": [edit]},
        "spec": {"replicas": 1},
    }
    cache.model_event("ADDED", model)
    assert cache.model("ml", "m") == {
        **model,
        "metadata": {"name": "m", "namespace": "ml", "resourceVersion": "3"},
    }
