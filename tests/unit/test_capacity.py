"""GPU capacity arithmetic on cluster topologies, the GPUCapacity condition, and pending reasons."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from modeldeploy.api.models import Runtime, Toleration
from modeldeploy.capacity import (
    CapacityReport,
    GPURequest,
    capacity_condition,
    gpu_capacity,
    pending_reason,
)

HACK = Path(__file__).resolve().parents[2] / "hack"
A100 = "NVIDIA-A100-SXM4-80GB"
L4 = "NVIDIA-L4"


def load_hack_cluster() -> Any:
    """hack/cluster is a script without a .py suffix; its node_manifest is what the live cluster gets."""
    loader = importlib.machinery.SourceFileLoader("hack_cluster", str(HACK / "cluster"))
    spec = importlib.util.spec_from_loader("hack_cluster", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


node_manifest = load_hack_cluster().node_manifest


def topology(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    specs = yaml.safe_load((HACK / "topology.yaml").read_text())["nodes"]
    return [node_manifest(spec) for spec in [*specs, *extra]]


def gpu_pod(
    node: str | None, gpus: int, resource: str = "nvidia.com/gpu", phase: str = "Running"
) -> dict[str, Any]:
    amount = {resource: str(gpus)}
    return {
        "metadata": {"name": f"pod-{node}-{gpus}", "namespace": "other"},
        "spec": {
            **({"nodeName": node} if node else {}),
            "containers": [{"name": "server", "resources": {"requests": amount, "limits": amount}}],
        },
        "status": {"phase": phase},
    }


# --------------------------------------------------------------------------- gpu_capacity


def test_empty_topology_a100_single_gpu_pods() -> None:
    report = gpu_capacity(topology(), [], GPURequest(per_pod=1, product=A100))
    assert report == CapacityReport(
        nodes_matching=2,
        total_allocatable=8,
        free=8,
        replicas_that_fit_now=8,
        replicas_that_fit_empty=8,
        largest_node_allocatable=4,
        products=(A100, L4),
    )


def test_any_product_counts_every_gpu_node_and_packs_per_node() -> None:
    report = gpu_capacity(topology(), [], GPURequest(per_pod=3))
    # 4 + 4 + 2 GPUs, but a pod needs 3 on one node: one per A100 node, none on the L4 node.
    assert (report.nodes_matching, report.total_allocatable, report.replicas_that_fit_now) == (3, 10, 2)


def test_pods_holding_gpus_reduce_what_fits_now_but_not_on_an_empty_cluster() -> None:
    pods = [
        gpu_pod("a100-1", 3),
        gpu_pod("a100-2", 1),
        gpu_pod("a100-2", 2, phase="Succeeded"),  # finished: its GPUs are free again
        gpu_pod(None, 4, phase="Pending"),  # not bound: holds nothing yet
        gpu_pod("l4-1", 2),  # another product
    ]
    report = gpu_capacity(topology(), pods, GPURequest(per_pod=2, product=A100))
    assert (report.free, report.replicas_that_fit_now, report.replicas_that_fit_empty) == (4, 1, 4)


def test_pod_request_follows_the_scheduler_for_limits_init_containers_and_sidecars() -> None:
    limits_only = {
        "spec": {
            "nodeName": "a100-1",
            "containers": [{"name": "s", "resources": {"limits": {"nvidia.com/gpu": "2"}}}],
        },
        "status": {"phase": "Running"},
    }
    with_init = {
        "spec": {
            "nodeName": "a100-2",
            "initContainers": [
                {
                    "name": "sidecar",
                    "restartPolicy": "Always",
                    "resources": {"requests": {"nvidia.com/gpu": "1"}},
                },
                {"name": "warmup", "resources": {"requests": {"nvidia.com/gpu": "2"}}},
            ],
            "containers": [{"name": "s", "resources": {"requests": {"nvidia.com/gpu": "1"}}}],
        },
        "status": {"phase": "Running"},
    }
    report = gpu_capacity(topology(), [limits_only, with_init], GPURequest(per_pod=1, product=A100))
    # a100-1: 2 used; a100-2: max(sidecar 1 + server 1, sidecar 1 + warmup 2) = 3 used.
    assert report.free == (4 - 2) + (4 - 3)


def test_mig_slices_are_counted_by_profile() -> None:
    nodes = topology(
        {"name": "mig-1", "gpus": 1, "product": A100, "mig": {"1g.10gb": 7}},
        {"name": "mig-2", "gpus": 1, "product": A100, "mig": {"1g.10gb": 7, "2g.20gb": 1}},
    )
    pods = [gpu_pod("mig-1", 3, resource="nvidia.com/mig-1g.10gb")]
    report = gpu_capacity(nodes, pods, GPURequest(per_pod=2, product=A100, mig_profile="1g.10gb"))
    assert report == CapacityReport(
        nodes_matching=2,
        total_allocatable=14,
        free=11,
        replicas_that_fit_now=2 + 3,
        replicas_that_fit_empty=3 + 3,
        largest_node_allocatable=7,
        products=(A100, L4),
    )


def test_unschedulable_and_untolerated_nodes_do_not_count() -> None:
    nodes = topology()
    by_name = {node["metadata"]["name"]: node for node in nodes}
    by_name["a100-1"]["spec"]["unschedulable"] = True
    by_name["a100-2"]["spec"]["taints"].append({"key": "team", "value": "research", "effect": "NoSchedule"})
    by_name["l4-1"]["spec"]["taints"].append({"key": "spot", "effect": "PreferNoSchedule"})
    assert gpu_capacity(nodes, [], GPURequest(per_pod=1)).nodes_matching == 1
    research = GPURequest(
        per_pod=1, tolerations=(Toleration(key="team", operator="Equal", value="research"),)
    )
    assert gpu_capacity(nodes, [], research).nodes_matching == 2
    other_team = GPURequest(
        per_pod=1, tolerations=(Toleration(key="team", operator="Equal", value="vision"),)
    )
    assert gpu_capacity(nodes, [], other_team).nodes_matching == 1
    everything = GPURequest(per_pod=1, tolerations=(Toleration(operator="Exists"),))
    assert gpu_capacity(nodes, [], everything).nodes_matching == 2


def test_extra_node_selector_narrows_the_nodes() -> None:
    request = GPURequest(per_pod=1, node_selector={"kubernetes.io/hostname": "a100-2"})
    report = gpu_capacity(topology(), [], request)
    assert (report.nodes_matching, report.total_allocatable) == (1, 4)


def test_gpu_request_of_a_runtime() -> None:
    cpu_only = Runtime(image="server:1")
    assert GPURequest.of(cpu_only) is None
    runtime = Runtime.model_validate(
        {
            "image": "server:1",
            "resources": {"gpu": 2},
            "gpu": {"product": A100, "migProfile": "1g.10gb"},
            "nodeSelector": {"pool": "inference"},
            "tolerations": [{"key": "team", "operator": "Exists"}],
        }
    )
    request = GPURequest.of(runtime)
    assert request == GPURequest(
        per_pod=2,
        product=A100,
        mig_profile="1g.10gb",
        node_selector={"pool": "inference"},
        tolerations=(Toleration(key="team", operator="Exists"),),
    )
    assert request.resource == "nvidia.com/mig-1g.10gb"
    assert GPURequest(per_pod=1).resource == "nvidia.com/gpu"
    with pytest.raises(ValueError, match="at least one GPU"):
        GPURequest(per_pod=0)


# --------------------------------------------------------------------------- capacity_condition


def condition_for(max_replicas: int, request: GPURequest, pods: list[dict[str, Any]] | None = None) -> Any:
    nodes = topology({"name": "mig-1", "gpus": 1, "product": A100, "mig": {"1g.10gb": 7}})
    return capacity_condition(gpu_capacity(nodes, pods or [], request), max_replicas, request)


def test_condition_true_when_max_replicas_fit() -> None:
    condition = condition_for(8, GPURequest(per_pod=1, product=A100))
    assert (condition.type, condition.status, condition.reason) == ("GPUCapacity", "True", "SufficientGPU")
    assert (
        condition.message
        == f"maxReplicas 8 needs 8 \u00d7 1 nvidia.com/gpu of {A100}; they fit on the GPUs free now"
    )


def test_condition_true_is_the_same_whatever_else_holds_gpus() -> None:
    """Other pods coming and going must not rewrite every ModelDeployment's status."""
    request = GPURequest(per_pod=1, product=A100)
    assert condition_for(2, request) == condition_for(2, request, [gpu_pod("a100-1", 3)])


@pytest.mark.parametrize(
    ("max_replicas", "request_", "pods", "message"),
    [
        (
            8,
            GPURequest(per_pod=4, product=L4),
            [],
            f"maxReplicas 8 needs 8 \u00d7 4 nvidia.com/gpu of {L4}; the cluster has 1 node with 2 allocatable "
            "(2 free): 0 replicas fit (a pod needs 4 on one node; the largest has 2)",
        ),
        (
            2,
            GPURequest(per_pod=1, product=L4),
            [gpu_pod("l4-1", 1)],
            f"maxReplicas 2 needs 2 \u00d7 1 nvidia.com/gpu of {L4}; the cluster has 1 node with 2 allocatable "
            "(1 free): 1 replica fits (2 once other pods release their GPUs)",
        ),
        (
            1,
            GPURequest(per_pod=1, product="NVIDIA-H100-80GB-HBM3"),
            [],
            "maxReplicas 1 needs 1 \u00d7 1 nvidia.com/gpu of NVIDIA-H100-80GB-HBM3; no node has "
            f"nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3 (products in the cluster: {A100}, {L4})",
        ),
        (
            2,
            GPURequest(per_pod=1, product=L4, mig_profile="1g.10gb"),
            [],
            f"maxReplicas 2 needs 2 \u00d7 1 nvidia.com/mig-1g.10gb of {L4}; "
            f"no schedulable node of {L4} offers nvidia.com/mig-1g.10gb",
        ),
        (
            4,
            GPURequest(per_pod=2, product=A100, mig_profile="1g.10gb"),
            [],
            f"maxReplicas 4 needs 4 \u00d7 2 nvidia.com/mig-1g.10gb of {A100}; "
            "the cluster has 1 node with 7 allocatable (7 free): 3 replicas fit",
        ),
    ],
)
def test_condition_false_explains_the_shortage(
    max_replicas: int, request_: GPURequest, pods: list[dict[str, Any]], message: str
) -> None:
    condition = condition_for(max_replicas, request_, pods)
    assert (condition.status, condition.reason) == ("False", "InsufficientGPU")
    assert condition.message == message


def test_condition_without_any_gpu_node() -> None:
    nodes = [node_manifest({"name": "cpu-1", "cpu": "16"})]
    request = GPURequest(per_pod=1)
    condition = capacity_condition(gpu_capacity(nodes, [], request), 1, request)
    assert condition.status == "False"
    assert (
        condition.message
        == "maxReplicas 1 needs 1 \u00d7 1 nvidia.com/gpu; no schedulable node offers nvidia.com/gpu"
    )


# --------------------------------------------------------------------------- pending_reason

# Statuses as the scheduler and kubelet write them.
UNSCHEDULABLE_GPU = (
    "0/5 nodes are available: 1 Insufficient nvidia.com/gpu, 4 node(s) didn't match Pod's node "
    "affinity/selector. no new claims to deallocate, preemption: 0/5 nodes are available: 5 Preemption "
    "is not helpful for scheduling."
)
UNSCHEDULABLE_CPU = (
    "0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had untolerated taint {nvidia.com/gpu: present}. "
    "preemption: 0/5 nodes are available: 2 No preemption victims found for incoming pod, 3 Preemption is not "
    "helpful for scheduling."
)


def pending_pod(name: str, message: str, product: str | None = L4) -> dict[str, Any]:
    pod = gpu_pod(None, 8, phase="Pending")
    if product:
        pod["spec"]["nodeSelector"] = {"nvidia.com/gpu.product": product}
    pod["metadata"]["name"] = name
    pod["status"]["conditions"] = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": "2026-01-10T12:00:00Z",
        }
    ]
    return pod


def running_pod(
    name: str, container_statuses: list[dict[str, Any]], init: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    pod = gpu_pod("a100-1", 1)
    pod["metadata"]["name"] = name
    pod["status"] = {
        "phase": "Pending" if init else "Running",
        "containerStatuses": container_statuses,
        **({"initContainerStatuses": init} if init else {}),
    }
    return pod


def waiting(name: str, reason: str, message: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": "ghcr.io/example/onnx-server:9.9",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {"waiting": {"reason": reason, **({"message": message} if message else {})}},
        **extra,
    }


def test_pending_gpu_pod_is_insufficient_gpu() -> None:
    assert pending_reason([pending_pod("sentiment-1b03e8aa42-5d8f7-abcde", UNSCHEDULABLE_GPU)], None) == (
        f"InsufficientGPU: 0/5 nodes can host 8 nvidia.com/gpu of {L4}"
    )


def test_pending_mig_pod_without_product() -> None:
    pod = pending_pod(
        "p", UNSCHEDULABLE_GPU.replace("nvidia.com/gpu", "nvidia.com/mig-1g.10gb"), product=None
    )
    pod["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/mig-1g.10gb": "2"}}
    assert pending_reason([pod]) == "InsufficientGPU: 0/5 nodes can host 2 nvidia.com/mig-1g.10gb"


def test_pending_for_another_resource_keeps_the_scheduler_summary() -> None:
    assert pending_reason([pending_pod("p", UNSCHEDULABLE_CPU, product=None)]) == (
        "Unschedulable: 0/5 nodes are available: 2 Insufficient cpu, "
        "3 node(s) had untolerated taint {nvidia.com/gpu: present}"
    )


def test_image_pull_failures_name_the_container() -> None:
    back_off = running_pod(
        "a",
        [waiting("server", "ImagePullBackOff", 'Back-off pulling image "ghcr.io/example/onnx-server:9.9"')],
    )
    assert pending_reason([back_off]) == (
        'ImagePullBackOff: container server: Back-off pulling image "ghcr.io/example/onnx-server:9.9"'
    )
    err = running_pod("b", [waiting("server", "ErrImagePull")])
    assert pending_reason([err]) == "ErrImagePull: container server: image ghcr.io/example/onnx-server:9.9"


def test_crash_loop_of_the_model_initializer_reports_its_last_exit() -> None:
    crashed = waiting(
        "model-init",
        "CrashLoopBackOff",
        "back-off 40s restarting failed container=model-init pod=sentiment-1b03e8aa42-5d8f7-abcde",
        restartCount=3,
        lastState={
            "terminated": {
                "exitCode": 1,
                "reason": "Error",
                "message": "sha256 mismatch: expected 3f2a..., got 9bc1...\n",
                "startedAt": "2026-01-10T12:00:00Z",
                "finishedAt": "2026-01-10T12:00:04Z",
            }
        },
    )
    pod = running_pod("a", [waiting("server", "PodInitializing")], init=[crashed])
    assert pending_reason([pod]) == (
        "CrashLoopBackOff: container model-init exited with code 1 (Error) after 3 restarts: "
        "sha256 mismatch: expected 3f2a..., got 9bc1..."
    )


def test_container_failures_come_before_scheduling_and_long_messages_are_cut() -> None:
    long_message = "rpc error: code = Unknown desc = " + "x" * 500
    pods = [
        pending_pod("a", UNSCHEDULABLE_GPU),
        running_pod("b", [waiting("server", "ErrImagePull", long_message)]),
    ]
    reason = pending_reason(pods)
    assert reason is not None and reason.startswith("ErrImagePull: container server: rpc error")
    assert len(reason) == 300 and reason.endswith("…")


def test_nothing_blocks_healthy_or_not_yet_scheduled_pods() -> None:
    healthy = running_pod(
        "a", [{"name": "server", "ready": True, "restartCount": 0, "state": {"running": {}}}]
    )
    just_created = gpu_pod(None, 1, phase="Pending")
    assert pending_reason([healthy, just_created], []) is None
    assert pending_reason([]) is None


def test_latest_blocking_warning_event_explains_pods_that_do_not_exist() -> None:
    quota = {
        "type": "Warning",
        "reason": "FailedCreate",
        "involvedObject": {"kind": "ReplicaSet", "name": "sentiment-1b03e8aa42-5d8f7"},
        "message": 'Error creating: pods "sentiment-1b03e8aa42-5d8f7-x2x9k" is forbidden: exceeded quota: gpu, '
        "requested: requests.nvidia.com/gpu=8, used: requests.nvidia.com/gpu=0, limited: requests.nvidia.com/gpu=4",
        "lastTimestamp": "2026-01-10T12:05:00Z",
    }
    older = {**quota, "message": "Error creating: an older failure", "lastTimestamp": "2026-01-10T12:00:00Z"}
    normal = {
        "type": "Normal",
        "reason": "ScalingReplicaSet",
        "message": "Scaled up",
        "eventTime": "2026-01-10T12:06:00Z",
    }
    assert pending_reason([], [older, quota, normal]) == f"FailedCreate: {quota['message']}"
