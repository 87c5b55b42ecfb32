"""Runtime templates and GPU-budgeted canaries against the real API server and scheduler: the
shipped templates are accepted, a model naming only `vllm` gets the whole server, and an 8-GPU
stable on the two 4-GPU A100 nodes canaries with maxSurge 0 without ever asking for a ninth GPU."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from modeldeploy.render.workload import GPU_PRODUCT_LABEL
from tests.cluster.conftest import Kubectl
from tests.cluster.modeldeployments import children, condition, get, manifest, wait_condition, wait_status
from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.usefixtures("operator")

ROOT = Path(__file__).resolve().parents[2]
A100 = "NVIDIA-A100-SXM4-80GB"
A100_GPUS = 8  # hack/topology.yaml: a100-1 and a100-2, 4 each


@pytest.fixture
def vllm_runtime(kubectl: Kubectl) -> Iterator[str]:
    """The shipped vLLM template under a name of this test's own (ModelRuntimes are cluster-scoped)."""
    body = yaml.safe_load((ROOT / "examples" / "runtimes" / "vllm.yaml").read_text())
    name = f"vllm-{uuid.uuid4().hex[:6]}"
    body["metadata"]["name"] = name
    kubectl.apply(body)
    yield name
    kubectl.run("delete", "modelruntime", name, "--wait=false", check=False)


def test_the_examples_are_accepted_by_the_api_server(kubectl: Kubectl, namespace: str) -> None:
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd/modelruntimes.modeldeploy.io")
    kubectl.run("apply", "--dry-run=server", "-f", str(ROOT / "examples" / "runtimes"))
    kubectl.run(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(ROOT / "examples" / "llm-runtime.yaml")
    )


def test_the_api_server_refuses_a_template_with_an_unknown_placeholder(kubectl: Kubectl) -> None:
    body = yaml.safe_load((ROOT / "examples" / "runtimes" / "vllm.yaml").read_text())
    body["spec"]["runtime"]["args"] = ["--model={{ .ModelPath }}"]
    refused = kubectl.apply(body, "--dry-run=server", check=False)
    assert refused.returncode != 0
    assert "spec.runtime.args: Invalid value: args: a {{ ... }} placeholder must be one of" in refused.stderr


def test_a_model_naming_only_the_runtime_gets_the_whole_vllm_server(
    kubectl: Kubectl, namespace: str, vllm_runtime: str
) -> None:
    body = manifest("llm")
    # On the L4 node: the A100s are for the budget tests.
    body["spec"]["runtime"] = {"name": vllm_runtime, "resources": {"gpu": 1}, "gpu": {"product": "NVIDIA-L4"}}
    body["spec"]["traffic"] = {"provider": "service"}
    kubectl.apply(body, "-n", namespace)
    ready = wait_condition(kubectl, namespace, "llm", "Ready", "True", timeout=90)
    (revision,) = ready["status"]["revisions"]
    assert (revision["runtime"], revision["runtimeGeneration"]) == (vllm_runtime, 1)
    (deployment,) = children(kubectl, namespace, "llm", "deployment")
    pod = deployment["spec"]["template"]
    (server,) = pod["spec"]["containers"]
    assert server["image"] == "vllm/vllm-openai:v0.11.0"
    assert server["args"] == [
        "--model=/mnt/models",
        "--served-model-name=llm",
        "--port=8000",
        "--tensor-parallel-size=1",
    ]
    assert server["readinessProbe"]["httpGet"]["path"] == "/health"
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "8000"
    assert any(volume.get("emptyDir", {}).get("sizeLimit") == "8Gi" for volume in pod["spec"]["volumes"])


def gpus_of(pods: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(GPUs of the pods the scheduler placed, GPUs all live pods ask for, revisions placed),
    terminating pods (whose GPUs the scheduler counts free once they are gone) left out of the
    second."""
    placed = asked = 0
    revisions = set()
    for pod in pods:
        if pod["status"].get("phase") in ("Succeeded", "Failed"):
            continue
        gpus = sum(
            int((container.get("resources") or {}).get("requests", {}).get("nvidia.com/gpu", 0))
            for container in pod["spec"]["containers"]
        )
        if pod["spec"].get("nodeName"):
            placed += gpus
            revisions.add(pod["metadata"]["labels"]["modeldeploy.io/revision"])
        if not pod["metadata"].get("deletionTimestamp"):
            asked += gpus
    return placed, asked, len(revisions)


class GPUSampler:
    """Samples the model's pods through the rollout in the background."""

    def __init__(self, kubectl: Kubectl, namespace: str) -> None:
        self.kubectl, self.namespace = kubectl, namespace
        self.samples: list[tuple[int, int, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            pods = self.kubectl.json("get", "pods", "-n", self.namespace, "-l", "modeldeploy.io/model=llm")[
                "items"
            ]
            self.samples.append(gpus_of(pods))
            self.stop.wait(0.05)

    def __enter__(self) -> GPUSampler:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


@pytest.fixture
def a100s(kubectl: Kubectl) -> None:
    """The A100 nodes to this test alone: namespaces of earlier tests are deleted without
    waiting, and until their Deployments and ReplicaSets are gone they may re-create a pod that
    takes the GPUs a budgeted canary is about to use."""

    def wants_a100(spec: dict[str, Any]) -> bool:
        selected = (spec.get("nodeSelector") or {}).get(GPU_PRODUCT_LABEL) == A100
        return selected or spec.get("nodeName", "").startswith("a100-")

    def others() -> list[str]:
        found = kubectl.json("get", "pods,replicasets,deployments", "-A")["items"]
        return [
            f"{obj['kind']} {obj['metadata']['namespace']}/{obj['metadata']['name']}"
            for obj in found
            if wants_a100(obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"])
        ]

    wait_for(
        "no other test's pods on or waiting for the A100 nodes", lambda: not others() or None, timeout=180
    )


def eight_gpu_model(image: str, **canary: Any) -> dict[str, Any]:
    body = manifest(
        "llm",
        image=image,
        replicas=2,
        runtime={"resources": {"cpu": "1", "memory": "1Gi", "gpu": 4}, "gpu": {"product": A100}},
        traffic={"provider": "service"},
        rollout={"canary": canary},
    )
    return body


@pytest.mark.usefixtures("a100s")
def test_an_eight_gpu_stable_canaries_with_no_surge_and_never_asks_for_a_ninth_gpu(
    kubectl: Kubectl, namespace: str
) -> None:
    steps = {"maxSurge": 0, "steps": [{"weight": 50}]}
    kubectl.apply(eight_gpu_model("ghcr.io/example/llm:1", **steps), "-n", namespace)
    v1 = wait_condition(kubectl, namespace, "llm", "Ready", "True", timeout=90)["status"]["stableRevision"]
    with GPUSampler(kubectl, namespace) as sampler:
        kubectl.apply(eight_gpu_model("ghcr.io/example/llm:2", **steps), "-n", namespace)
        done = wait_for(
            "the canary promoted and the old stable removed",
            lambda: (
                body
                if (body := get(kubectl, namespace, "llm"))["status"].get("stableRevision") not in (None, v1)
                and body["status"].get("phase") == "Stable"
                and len(body["status"].get("revisions", [])) == 1
                and body["status"]["revisions"][0]["readyReplicas"] == 2
                else None
            ),
            timeout=180,
        )
    assert done["status"].get("canaryRevision") is None
    assert max(placed for placed, _, _ in sampler.samples) <= A100_GPUS, sampler.samples
    assert max(asked for _, asked, _ in sampler.samples) <= A100_GPUS, sampler.samples
    # The canary really ran beside stable, on GPUs stable gave up.
    assert max(revisions for _, _, revisions in sampler.samples) == 2, sampler.samples
    assert condition(done, "GPUCapacity").get("reason") != "CanaryDoesNotFit"


@pytest.mark.usefixtures("a100s")
def test_a_canary_that_would_not_fit_is_held_and_said_so_instead_of_pending(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(eight_gpu_model("ghcr.io/example/llm:1", weight=0), "-n", namespace)
    wait_condition(kubectl, namespace, "llm", "Ready", "True", timeout=90)
    kubectl.apply(eight_gpu_model("ghcr.io/example/llm:2", weight=10), "-n", namespace)
    held = wait_condition(kubectl, namespace, "llm", "GPUCapacity", "False", "CanaryDoesNotFit")
    message = condition(held, "GPUCapacity")["message"]
    assert "stable and canary need 4 \u00d7 4 nvidia.com/gpu of NVIDIA-A100-SXM4-80GB (2 + 2)" in message
    assert "spec.rollout.canary.maxSurge" in message
    canary = held["status"]["canaryRevision"]
    pods = children(kubectl, namespace, "llm", "pod")
    assert [p for p in pods if p["metadata"]["labels"]["modeldeploy.io/revision"] == canary] == []
    assert not [p for p in pods if p["status"].get("phase") == "Pending"]
    # Stable keeps serving with all its replicas.
    assert condition(held, "Ready")["status"] == "True"
    wait_status(kubectl, namespace, "llm", canaryRevision=canary)
