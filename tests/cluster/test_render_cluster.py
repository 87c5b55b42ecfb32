"""Rendered Deployments against the real API server: accepted as they are, and scheduled on the
KWOK nodes of hack/topology.yaml the way their GPU settings say."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modeldeploy.api.models import ModelDeployment
from modeldeploy.render.model_volume import OciMode
from modeldeploy.render.revision import RevisionPlan, RevisionSpec
from modeldeploy.render.workload import pod_spec, render_deployment

INITIALIZER = "ghcr.io/example/modeldeploy:0.1"


def model_deployment(
    namespace: str, runtime: dict[str, Any], uri: str = "s3://models/sentiment/v7/", strategy: str = "canary"
) -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            # No ModelDeployment object exists: the uid is only needed to render owner references.
            "metadata": {
                "name": "sentiment",
                "namespace": namespace,
                "uid": "0f7c6a52-1d1e-4f7e-9a57-5d0c3f1e2b7a",
            },
            "spec": {
                "model": {"uri": uri, "format": "onnx", "credentialsSecret": "model-creds"},
                "runtime": {"image": "ghcr.io/example/onnx-server:1.4", **runtime},
                "rollout": {"strategy": strategy},
            },
        }
    )


def plan_of(md: ModelDeployment, replicas: int = 1) -> RevisionPlan:
    spec = RevisionSpec.of(md.spec)
    return RevisionPlan(revision=spec.revision, role="stable", spec=spec, replicas=replicas)


def ownerless(deployment: dict[str, Any]) -> dict[str, Any]:
    """Created for real, a Deployment whose owner does not exist would be garbage collected."""
    del deployment["metadata"]["ownerReferences"]
    return deployment


@pytest.mark.parametrize(
    ("runtime", "nodes"),
    [
        ({"resources": {"cpu": "1", "gpu": 1}, "gpu": {"product": "NVIDIA-L4"}}, {"l4-1"}),
        (
            {"resources": {"cpu": "1", "gpu": 1}, "gpu": {"product": "NVIDIA-A100-SXM4-80GB"}},
            {"a100-1", "a100-2"},
        ),
        ({"resources": {"cpu": "1", "memory": "1Gi"}}, {"cpu-1", "cpu-2"}),
    ],
    ids=["l4", "a100", "cpu-only"],
)
def test_a_deployment_lands_on_the_nodes_its_gpus_ask_for(
    kubectl: Any, namespace: str, runtime: dict[str, Any], nodes: set[str]
) -> None:
    md = model_deployment(namespace, runtime)
    deployment = ownerless(render_deployment(md, plan_of(md), INITIALIZER))
    name = deployment["metadata"]["name"]

    kubectl.apply(deployment)
    kubectl.run("wait", "-n", namespace, "--for=condition=Available", "--timeout=60s", f"deployment/{name}")

    labels = ",".join(
        f"{key}={value}" for key, value in deployment["spec"]["selector"]["matchLabels"].items()
    )
    pods = kubectl.json("get", "pods", "-n", namespace, "-l", labels)["items"]
    assert len(pods) == 1
    assert pods[0]["spec"]["nodeName"] in nodes


def test_a_rolling_deployment_takes_a_new_revision_in_place(kubectl: Any, namespace: str) -> None:
    old = model_deployment(namespace, {}, strategy="rolling")
    new = model_deployment(namespace, {"image": "ghcr.io/example/onnx-server:1.5"}, strategy="rolling")

    kubectl.apply(ownerless(render_deployment(old, plan_of(old, replicas=0), INITIALIZER)))
    kubectl.apply(ownerless(render_deployment(new, plan_of(new, replicas=0), INITIALIZER)))

    applied = kubectl.json("get", "deployment", "sentiment", "-n", namespace)
    assert (
        applied["spec"]["template"]["metadata"]["labels"]["modeldeploy.io/revision"] == plan_of(new).revision
    )


POD_CASES = [
    ("s3://models/sentiment/v7/", "image-volume", {}),
    ("gs://models/sentiment/v7", "image-volume", {}),
    ("hf://org/sentiment@main", "image-volume", {"protocol": "grpc", "livenessPath": "/"}),
    ("https://models.example.com/sentiment.tar.gz", "image-volume", {"livenessPath": "/live"}),
    ("file:///opt/models/sentiment", "image-volume", {"shmSize": "1Gi"}),
    ("pvc://models/sentiment/v7", "image-volume", {}),
    ("oci://registry.example.com/models/sentiment:v7", "image-volume", {"resources": {"gpu": 1}}),
    ("oci://registry.example.com/models/sentiment:v7", "modelcar", {}),
    (
        "s3://models/sentiment/v7/",
        "image-volume",
        {"resources": {"gpu": 2}, "gpu": {"migProfile": "1g.10gb"}},
    ),
]


@pytest.mark.parametrize(
    ("uri", "oci_mode", "runtime"), POD_CASES, ids=[f"{c[0][:8]}-{c[1]}" for c in POD_CASES]
)
def test_every_model_source_is_accepted_and_stays_within_pod_security_baseline(
    kubectl: Any, namespace: str, uri: str, oci_mode: OciMode, runtime: dict[str, Any]
) -> None:
    md = model_deployment(namespace, runtime, uri=uri)
    plan = plan_of(md)
    kubectl.run("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=baseline")
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sentiment", "namespace": namespace},
        "spec": pod_spec(plan, INITIALIZER, oci_mode),
    }

    kubectl.apply(render_deployment(md, plan, INITIALIZER, oci_mode), "--dry-run=server")
    # Pod Security admission judges Pods, not Deployments.
    accepted = json.loads(kubectl.apply(pod, "--dry-run=server", "-o", "json").stdout)

    # A field behind a disabled feature gate is dropped, not refused: check that none was.
    assert [volume["name"] for volume in accepted["spec"]["volumes"]] == [
        v["name"] for v in pod["spec"]["volumes"]
    ]
    for sent, kept in zip(pod["spec"]["volumes"], accepted["spec"]["volumes"], strict=True):
        assert sent.items() <= kept.items()
    sent_containers = pod["spec"].get("initContainers", []) + pod["spec"]["containers"]
    kept_containers = accepted["spec"].get("initContainers", []) + accepted["spec"]["containers"]
    for sent, kept in zip(sent_containers, kept_containers, strict=True):
        assert sent.keys() <= kept.keys()


def test_pod_security_baseline_is_enforced_here(kubectl: Any, namespace: str) -> None:
    """Without this, the baseline test above could pass on an API server that admits anything."""
    kubectl.run("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=baseline")
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": namespace},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
    }

    refused = kubectl.apply(privileged, "--dry-run=server", check=False)

    assert refused.returncode != 0
    assert "violates PodSecurity" in refused.stderr
