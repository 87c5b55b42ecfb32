"""The local cluster is real Kubernetes: scheduling, GPUs, taints, readiness, garbage collection."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.conftest import Kubectl
from tests.cluster.harness import ROOT
from tests.cluster.waiting import wait_for

TOPOLOGY = Path(__file__).resolve().parents[2] / "hack" / "topology.yaml"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def gpu_deployment(name: str, gpus: int, product: str, init_container: bool = False) -> dict:
    pod_spec: dict[str, Any] = {
        "nodeSelector": {"nvidia.com/gpu.product": product},
        "tolerations": [GPU_TOLERATION],
        "containers": [
            {"name": "server", "image": "example/server:1", "resources": {"limits": {"nvidia.com/gpu": gpus}}}
        ],
    }
    if init_container:
        pod_spec["initContainers"] = [{"name": "fetch-model", "image": "example/fetch:1"}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        },
    }


def test_nodes_match_the_topology_file(kubectl: Kubectl) -> None:
    wanted = {node["name"]: node for node in yaml.safe_load(TOPOLOGY.read_text())["nodes"]}
    # KWOK plays the annotated nodes; a node with a real kubelet (--real-node) is not in the file.
    nodes = {
        node["metadata"]["name"]: node
        for node in kubectl.json("get", "nodes")["items"]
        if node["metadata"].get("annotations", {}).get("kwok.x-k8s.io/node") == "fake"
    }
    assert set(nodes) == set(wanted)
    for name, spec in wanted.items():
        node = nodes[name]
        gpus = node["status"]["allocatable"].get("nvidia.com/gpu")
        assert gpus == (str(spec["gpus"]) if spec.get("gpus") else None), name
        assert node["metadata"]["labels"].get("nvidia.com/gpu.product") == spec.get("product"), name
        taints = node["spec"].get("taints", [])
        assert ({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in taints) == bool(
            spec.get("gpus")
        ), name
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", name


def test_gpu_pod_lands_on_the_requested_product_and_becomes_available(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(
        gpu_deployment("l4-model", gpus=1, product="NVIDIA-L4", init_container=True), "-n", namespace
    )

    def available() -> bool:
        status = kubectl.json("get", "deployment", "l4-model", "-n", namespace).get("status", {})
        return status.get("availableReplicas") == 1

    wait_for("the L4 Deployment to become available", available)
    pods = kubectl.json("get", "pods", "-n", namespace, "-l", "app=l4-model")["items"]
    assert [pod["spec"]["nodeName"] for pod in pods] == ["l4-1"]
    init_status = pods[0]["status"]["initContainerStatuses"][0]
    assert init_status["state"].get("terminated", {}).get("exitCode") == 0


def test_pod_asking_for_more_gpus_than_any_node_has_stays_pending(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(gpu_deployment("too-big", gpus=8, product="NVIDIA-L4"), "-n", namespace)

    def scheduling_failure() -> list[dict]:
        events = kubectl.json("get", "events", "-n", namespace, "--field-selector", "reason=FailedScheduling")
        return events["items"]

    events = wait_for("a FailedScheduling event", scheduling_failure)
    assert "Insufficient nvidia.com/gpu" in events[0]["message"]
    pods = kubectl.json("get", "pods", "-n", namespace, "-l", "app=too-big")["items"]
    assert [pod["status"]["phase"] for pod in pods] == ["Pending"]


def test_gpu_pod_without_toleration_is_kept_off_gpu_nodes(kubectl: Kubectl, namespace: str) -> None:
    deployment = gpu_deployment("untolerated", gpus=1, product="NVIDIA-L4")
    deployment["spec"]["template"]["spec"]["tolerations"] = []
    kubectl.apply(deployment, "-n", namespace)

    def scheduling_failure() -> list[dict]:
        return kubectl.json("get", "events", "-n", namespace, "--field-selector", "reason=FailedScheduling")[
            "items"
        ]

    events = wait_for("a FailedScheduling event", scheduling_failure)
    assert "untolerated taint" in events[0]["message"]


def test_deleting_an_owner_garbage_collects_its_dependents(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("create", "configmap", "owner", "-n", namespace)
    owner = kubectl.json("get", "configmap", "owner", "-n", namespace)
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
            ],
        },
    }
    kubectl.apply(dependent, "-n", namespace)
    kubectl.run("delete", "configmap", "owner", "-n", namespace)

    def collected() -> bool:
        return kubectl.run("get", "configmap", "dependent", "-n", namespace, check=False).returncode != 0

    wait_for("the garbage collector to delete the dependent", collected)


def test_service_account_tokens_are_issued(kubectl: Kubectl, namespace: str) -> None:
    token = kubectl.run("create", "token", "default", "-n", namespace).stdout.strip()
    assert token.count(".") == 2  # a signed JWT
    server = kubectl.run("config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}").stdout
    # A kubeconfig of its own, so the admin's client certificate cannot stand in for the token.
    as_service_account = subprocess.run(
        [
            kubectl.binary,
            "--kubeconfig",
            "/dev/null",
            "--server",
            server,
            "--insecure-skip-tls-verify",
            "--token",
            token,
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert as_service_account.stdout == f"system:serviceaccount:{namespace}:default"


def test_hack_cluster_nodes_removes_only_stale_kwok_nodes(kubectl: Kubectl) -> None:
    suffix = uuid.uuid4().hex[:6]
    # A node with a kubelet of its own (as the real node has) and a KWOK node not in the file.
    real = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"own-kubelet-{suffix}"}}
    stale = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": f"stale-kwok-{suffix}", "annotations": {"kwok.x-k8s.io/node": "fake"}},
    }
    kubectl.apply([real, stale])
    try:
        subprocess.run([str(ROOT / "hack" / "cluster"), "nodes"], check=True, capture_output=True)
        names = {node["metadata"]["name"] for node in kubectl.json("get", "nodes")["items"]}
        assert real["metadata"]["name"] in names
        wait_for(
            "the stale KWOK node to go",
            lambda: kubectl.run("get", "node", stale["metadata"]["name"], check=False).returncode != 0,
        )
    finally:
        kubectl.run("delete", "node", real["metadata"]["name"], stale["metadata"]["name"], check=False)
