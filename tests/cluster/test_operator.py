"""The operator against the real API server: children, GPUs, readiness, revisions, deletion, writes."""

from __future__ import annotations

import time

import pytest

from tests.cluster.conftest import AuditLog, Kubectl, Operator, restore_crd
from tests.cluster.modeldeployments import children, condition, get, manifest, wait_condition, wait_status
from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.usefixtures("operator")
USER_AGENT = "modeldeploy-operator"


def test_a_cpu_model_gets_its_children_and_becomes_ready(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("cpu-model"), "-n", namespace)
    body = wait_condition(kubectl, namespace, "cpu-model", "Ready", "True")
    status = body["status"]
    revision = status["stableRevision"]
    assert status["phase"] == "Stable"
    assert status["observedGeneration"] == body["metadata"]["generation"]
    assert status["url"] == f"http://cpu-model.{namespace}.svc:8080"

    [deployment] = children(kubectl, namespace, "cpu-model", "deployment")
    assert deployment["metadata"]["name"] == f"cpu-model-{revision}"
    assert deployment["metadata"]["labels"]["modeldeploy.io/revision"] == revision
    assert deployment["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    pod = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["fetch-model"]
    services = {s["metadata"]["name"] for s in children(kubectl, namespace, "cpu-model", "service")}
    assert services == {"cpu-model", "cpu-model-stable", "cpu-model-canary"}
    [route] = children(kubectl, namespace, "cpu-model", "httproute")
    assert route["metadata"]["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
    pods = children(kubectl, namespace, "cpu-model", "pod")
    assert {p["spec"]["nodeName"] for p in pods} <= {"cpu-1", "cpu-2"}


def test_a_gpu_model_lands_on_its_product(kubectl: Kubectl, namespace: str) -> None:
    runtime = {"resources": {"gpu": 1}, "gpu": {"product": "NVIDIA-L4"}}
    kubectl.apply(manifest("l4-model", runtime=runtime), "-n", namespace)
    body = wait_condition(kubectl, namespace, "l4-model", "Ready", "True")
    assert [p["spec"]["nodeName"] for p in children(kubectl, namespace, "l4-model", "pod")] == ["l4-1"]
    capacity = condition(body, "GPUCapacity")
    assert capacity["status"] == "True", capacity


def test_a_gpu_shortage_is_the_reason_in_ready(kubectl: Kubectl, namespace: str) -> None:
    runtime = {"resources": {"gpu": 8}, "gpu": {"product": "NVIDIA-L4"}}
    kubectl.apply(manifest("too-big", runtime=runtime), "-n", namespace)
    body = wait_condition(kubectl, namespace, "too-big", "Ready", "False", reason="InsufficientGPU")
    ready = condition(body, "Ready")
    assert "8 nvidia.com/gpu of NVIDIA-L4" in ready["message"], ready
    capacity = condition(body, "GPUCapacity")
    assert (capacity["status"], capacity["reason"]) == ("False", "InsufficientGPU"), capacity


def test_a_product_no_node_has_is_reported(kubectl: Kubectl, namespace: str) -> None:
    runtime = {"resources": {"gpu": 1}, "gpu": {"product": "NVIDIA-H100-80GB-HBM3"}}
    kubectl.apply(manifest("no-h100", runtime=runtime), "-n", namespace)
    body = wait_condition(kubectl, namespace, "no-h100", "GPUCapacity", "False", reason="InsufficientGPU")
    assert "NVIDIA-H100-80GB-HBM3" in condition(body, "GPUCapacity")["message"]
    assert condition(body, "Ready")["status"] == "False"


def test_a_new_image_makes_a_new_revision_beside_the_stable_one(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("revisions"), "-n", namespace)
    first = wait_condition(kubectl, namespace, "revisions", "Ready", "True")["status"]["stableRevision"]
    kubectl.apply(manifest("revisions", image="ghcr.io/example/server:2"), "-n", namespace)
    body = wait_for(
        "the canary to become ready",
        lambda: (
            (b := get(kubectl, namespace, "revisions"))
            and b["status"].get("canaryRevision")
            and any(
                r["name"] == b["status"]["canaryRevision"] and r["readyReplicas"] == 1
                for r in b["status"]["revisions"]
            )
            and b
        ),
    )
    status = body["status"]
    assert status["stableRevision"] == first
    assert status["canaryRevision"] != first
    names = {d["metadata"]["name"] for d in children(kubectl, namespace, "revisions", "deployment")}
    assert names == {f"revisions-{first}", f"revisions-{status['canaryRevision']}"}


def test_changing_only_traffic_or_autoscaling_makes_no_new_revision(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("same-revision"), "-n", namespace)
    revision = wait_condition(kubectl, namespace, "same-revision", "Ready", "True")["status"][
        "stableRevision"
    ]
    kubectl.apply(
        manifest("same-revision", traffic={"hosts": ["same.example.com"]}, autoscaling={"maxReplicas": 3}),
        "-n",
        namespace,
    )
    body = wait_status(kubectl, namespace, "same-revision", url="http://same.example.com")
    assert body["status"]["stableRevision"] == revision
    assert "canaryRevision" not in body["status"]
    assert len(children(kubectl, namespace, "same-revision", "deployment")) == 1


def test_deleting_the_model_removes_its_children(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("short-lived"), "-n", namespace)
    wait_condition(kubectl, namespace, "short-lived", "Ready", "True")
    kubectl.run("delete", "modeldeployment", "short-lived", "-n", namespace)
    for kind in ("deployment", "service", "httproute"):
        wait_for(
            f"{kind}s to be collected",
            lambda kind=kind: not children(kubectl, namespace, "short-lived", kind),
        )


def test_a_child_edited_or_deleted_by_hand_is_restored(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("restored"), "-n", namespace)
    body = wait_condition(kubectl, namespace, "restored", "Ready", "True")
    deployment = f"restored-{body['status']['stableRevision']}"
    kubectl.run("set", "image", f"deployment/{deployment}", "server=evil:1", "-n", namespace)
    wait_for(
        "the image to be put back",
        lambda: (
            kubectl.json("get", "deployment", deployment, "-n", namespace)["spec"]["template"]["spec"][
                "containers"
            ][0]["image"]
            == "ghcr.io/example/server:1"
        ),
    )
    kubectl.run("delete", "service", "restored-stable", "-n", namespace)
    wait_for(
        "the Service to be recreated",
        lambda: (
            kubectl.run("get", "service", "restored-stable", "-n", namespace, check=False).returncode == 0
        ),
    )
    events = kubectl.json("get", "events", "-n", namespace, "--field-selector", "reason=ChildRestored")[
        "items"
    ]
    assert any(deployment in event["message"] for event in events), events


def test_replicas_owned_by_an_autoscaler_are_never_reverted(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("scaled", autoscaling={"minReplicas": 1, "maxReplicas": 4}), "-n", namespace)
    body = wait_condition(kubectl, namespace, "scaled", "Ready", "True")
    deployment = f"scaled-{body['status']['stableRevision']}"
    [hpa] = children(kubectl, namespace, "scaled", "hpa")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment
    # Scale as the HPA controller does: the scale subresource, under another field manager.
    kubectl.run("scale", f"deployment/{deployment}", "--replicas=3", "-n", namespace)
    wait_for(
        "3 ready replicas",
        lambda: (
            kubectl.json("get", "deployment", deployment, "-n", namespace)["status"].get("readyReplicas") == 3
        ),
    )
    # Any change to the model makes the operator reconcile and apply the Deployment's revision again.
    kubectl.run("annotate", "modeldeployment", "scaled", "-n", namespace, "touched=1")
    kubectl.apply(manifest("scaled", autoscaling={"minReplicas": 1, "maxReplicas": 5}), "-n", namespace)
    wait_for(
        "the new HPA bound",
        lambda: children(kubectl, namespace, "scaled", "hpa")[0]["spec"]["maxReplicas"] == 5,
    )
    live = kubectl.json("get", "deployment", deployment, "-n", namespace, "--show-managed-fields")
    assert live["spec"]["replicas"] == 3
    managers = {entry["manager"]: entry for entry in live["metadata"]["managedFields"]}
    assert "f:replicas" not in str(managers["modeldeploy"].get("fieldsV1", {}))


def test_a_resync_and_a_restart_make_no_writes(
    kubectl: Kubectl, namespace: str, operator: Operator, audit_log: AuditLog
) -> None:
    kubectl.apply(manifest("quiet", traffic={"hosts": ["quiet.example.com"]}), "-n", namespace)
    wait_condition(kubectl, namespace, "quiet", "Ready", "True")
    wait_for(
        "the operator to stop writing", lambda: not audit_log.writes(USER_AGENT, namespace, time.time() - 3)
    )
    quiet_since = time.time()
    # A resync: any change to the object makes the operator reconcile all of this model.
    kubectl.run("annotate", "modeldeployment", "quiet", "-n", namespace, "resync=1")
    # A restart: the new operator lists every ModelDeployment and reconciles each once.
    operator.restart()
    wait_for(
        "the restarted operator to reconcile",
        lambda: operator.metric("modeldeploy_reconciles_total", result="success") > 0,
    )
    time.sleep(2)  # room for a late write to reach the audit log
    writes = audit_log.writes(USER_AGENT, namespace, since=quiet_since)
    assert writes == [], [(w["verb"], w["objectRef"]) for w in writes]


def test_switching_engine_replaces_the_autoscaler(kubectl: Kubectl, namespace: str) -> None:
    hpa = {"engine": "hpa", "minReplicas": 1, "maxReplicas": 3}
    kubectl.apply(manifest("engines", autoscaling=hpa), "-n", namespace)
    wait_condition(kubectl, namespace, "engines", "Ready", "True")
    assert len(children(kubectl, namespace, "engines", "hpa")) == 1
    keda = {**hpa, "engine": "keda", "metric": "prometheus", "query": "sum(rate(x[1m]))",
            "prometheusAddress": "http://prometheus.monitoring:9090"}  # fmt: skip
    kubectl.apply(manifest("engines", autoscaling=keda), "-n", namespace)
    wait_for("the HPA to go", lambda: not children(kubectl, namespace, "engines", "hpa"))
    [scaled] = children(kubectl, namespace, "engines", "scaledobject")
    assert scaled["spec"]["maxReplicaCount"] == 3


def test_a_missing_keda_is_a_condition(kubectl: Kubectl, namespace: str) -> None:
    crd = "scaledobjects.keda.sh"
    saved = kubectl.json("get", "crd", crd)
    kubectl.run("delete", "crd", crd)
    try:
        keda = {"engine": "keda", "minReplicas": 0, "maxReplicas": 2, "metric": "prometheus",
                "query": "sum(rate(x[1m]))", "prometheusAddress": "http://prometheus.monitoring:9090"}  # fmt: skip
        kubectl.apply(manifest("no-keda", autoscaling=keda), "-n", namespace)
        body = wait_condition(
            kubectl, namespace, "no-keda", "Ready", "False", reason="AutoscalerNotInstalled", timeout=90
        )
        assert "scaledobjects.keda.sh" in condition(body, "Ready")["message"]
    finally:
        restore_crd(kubectl, saved)
