"""Every bad case a new user meets, created on the local cluster: the condition, its reason and
message, and what Flux/`kubectl wait` (kstatus, computed by cli-utils) and Argo CD (its health
script, run in gopher-lua) make of the object as the API server returns it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cluster.harness import Kubectl
from tests.cluster.modeldeployments import condition, get, manifest, wait_condition, wait_status
from tests.cluster.waiting import wait_for
from tests.gitops_verdicts import run_action, verdicts

pytestmark = pytest.mark.usefixtures("operator")

RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"


def tools(body: dict[str, Any]) -> tuple[str, str]:
    """(kstatus, Argo CD) on the object as read from the cluster; they must agree."""
    both = verdicts(body)
    assert both.agree, both
    return both.kstatus.status, both.argocd.status


def stalled(kubectl: Kubectl, namespace: str, name: str, reason: str, timeout: float = 60) -> dict[str, Any]:
    body = wait_condition(kubectl, namespace, name, "Stalled", "True", reason, timeout=timeout)
    assert condition(body, "Reconciling")["status"] == "False"
    assert condition(body, "Ready")["status"] == "False"
    assert condition(body, "Progressing")["status"] == "False"
    assert condition(body, "Degraded")["status"] == "True"
    assert tools(body) == ("Failed", "Degraded")
    return body


def test_pods_refused_by_pod_security_say_which_rule_and_run_once_completed(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl.run("label", "namespace", namespace, RESTRICTED)
    kubectl.apply(manifest("psa"), "-n", namespace)

    body = stalled(kubectl, namespace, "psa", "ReplicaFailure")
    ready = condition(body, "Ready")
    assert ready["reason"] == "ReplicaFailure"
    assert 'violates PodSecurity "restricted:latest"' in ready["message"], ready
    assert "runAsNonRoot != true" in ready["message"], ready
    assert f"revision {body['status']['stableRevision']}" in ready["message"]

    # The defaults already drop capabilities and set seccomp: runAsNonRoot completes "restricted".
    kubectl.apply(manifest("psa", runtime={"podSecurityContext": {"runAsNonRoot": True}}), "-n", namespace)
    body = wait_condition(kubectl, namespace, "psa", "Ready", "True", timeout=90)
    assert condition(body, "Stalled")["status"] == "False"
    assert tools(body) == ("Current", "Healthy")


def test_an_exhausted_quota_is_a_stall_with_the_quota_named(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "tiny", "namespace": namespace},
            "spec": {"hard": {"requests.cpu": "50m"}},
        }
    )
    kubectl.apply(manifest("quota"), "-n", namespace)
    body = stalled(kubectl, namespace, "quota", "ReplicaFailure")
    assert "exceeded quota: tiny" in condition(body, "Stalled")["message"]


def test_a_missing_service_account_is_a_stall(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("no-sa", runtime={"serviceAccountName": "nobody"}), "-n", namespace)
    body = stalled(kubectl, namespace, "no-sa", "ReplicaFailure")
    assert 'serviceaccount "nobody" not found' in condition(body, "Ready")["message"]


def test_an_image_name_with_whitespace_is_refused_and_says_so(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("spaced", image="ghcr.io/example/server:1 "), "-n", namespace)
    body = stalled(kubectl, namespace, "spaced", "ReplicaFailure")
    assert "must not have leading or trailing whitespace" in condition(body, "Ready")["message"]


def test_a_refused_child_is_stalled_not_progressing(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("bad-selector", runtime={"nodeSelector": {"not a key!": "x"}}), "-n", namespace)
    body = stalled(kubectl, namespace, "bad-selector", "ApplyRefused")
    assert "nodeSelector" in condition(body, "Stalled")["message"]
    assert [
        c for c in get(kubectl, namespace, "bad-selector")["status"]["conditions"] if c["type"] == "Ready"
    ]


def test_an_initializer_too_big_for_the_namespace_is_refused_until_the_model_asks_for_less(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "small", "namespace": namespace},
            "spec": {"limits": [{"type": "Container", "max": {"memory": "512Mi"}}]},
        }
    )
    kubectl.apply(manifest("small-ns", runtime={"resources": {"memory": "256Mi"}}), "-n", namespace)
    body = stalled(kubectl, namespace, "small-ns", "ReplicaFailure")
    assert "maximum memory usage per Container is 512Mi" in condition(body, "Ready")["message"]

    small = {"resources": {"requests": {"memory": "64Mi"}, "limits": {"memory": "256Mi"}}}
    kubectl.apply(
        manifest("small-ns", runtime={"resources": {"memory": "256Mi"}}, model={"initializer": small}),
        "-n",
        namespace,
    )
    body = wait_condition(kubectl, namespace, "small-ns", "Ready", "True", timeout=90)
    assert tools(body) == ("Current", "Healthy")


def test_a_model_that_never_fits_stalls_at_its_deadline_and_a_new_spec_clears_it(
    kubectl: Kubectl, namespace: str
) -> None:
    eight_gpus = {"resources": {"gpu": 8}}
    kubectl.apply(
        manifest("huge", runtime=eight_gpus, rollout={"progressDeadlineSeconds": 30}), "-n", namespace
    )
    body = wait_condition(kubectl, namespace, "huge", "Reconciling", "True", "InsufficientGPU")
    assert tools(body) == ("InProgress", "Progressing")

    body = stalled(kubectl, namespace, "huge", "ProgressDeadlineExceeded", timeout=90)
    assert body["status"]["phase"] == "Stalled"
    message = condition(body, "Stalled")["message"]
    assert "did not have all replicas ready within 30s" in message, message
    assert "Insufficient nvidia.com/gpu" in message or "8 nvidia.com/gpu" in message, message

    kubectl.apply(manifest("huge", runtime={"resources": {"gpu": 1}}), "-n", namespace)
    body = wait_condition(kubectl, namespace, "huge", "Ready", "True", timeout=90)
    assert body["status"]["phase"] == "Stable"
    assert tools(body) == ("Current", "Healthy")


def test_an_automated_canary_that_never_fits_rolls_back_at_its_deadline(
    kubectl: Kubectl, namespace: str
) -> None:
    steps = {
        "canary": {"steps": [{"weight": 20}, {"pause": {"duration": "1h"}}]},
        "progressDeadlineSeconds": 30,
    }
    kubectl.apply(manifest("gpu-canary", rollout=steps), "-n", namespace)
    wait_condition(kubectl, namespace, "gpu-canary", "Ready", "True")
    kubectl.apply(manifest("gpu-canary", runtime={"resources": {"gpu": 8}}, rollout=steps), "-n", namespace)

    body = wait_status(kubectl, namespace, "gpu-canary", timeout=90, phase="RolledBack")
    assert condition(body, "Degraded")["reason"] == "ProgressDeadlineExceeded"
    assert condition(body, "Stalled")["reason"] == "ProgressDeadlineExceeded"
    assert condition(body, "Ready")["status"] == "True", "stable keeps serving"
    assert tools(body) == ("Failed", "Degraded")


def test_a_manual_canary_held_at_its_weight_is_current_and_healthy(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("held", rollout={"canary": {"weight": 20}}), "-n", namespace)
    wait_condition(kubectl, namespace, "held", "Ready", "True")
    kubectl.apply(
        manifest("held", image="ghcr.io/example/server:2", rollout={"canary": {"weight": 20}}),
        "-n",
        namespace,
    )

    body = wait_condition(kubectl, namespace, "held", "Reconciling", "False", "CanaryHeld")
    assert body["status"]["canaryWeight"] == 20
    assert tools(body) == ("Current", "Healthy")


def test_argo_cd_actions_pause_and_abort_an_automated_canary(kubectl: Kubectl, namespace: str) -> None:
    steps = {"canary": {"steps": [{"weight": 20}, {"pause": {"duration": "1h"}}, {"weight": 60}]}}
    kubectl.apply(manifest("acted", rollout=steps), "-n", namespace)
    wait_condition(kubectl, namespace, "acted", "Ready", "True")
    kubectl.apply(manifest("acted", image="ghcr.io/example/server:2", rollout=steps), "-n", namespace)
    body = wait_status(kubectl, namespace, "acted", canaryWeight=20)
    assert tools(body) == ("InProgress", "Progressing")

    def act(name: str) -> None:
        patch = run_action(get(kubectl, namespace, "acted"), name).patch
        kubectl.run(
            "patch", "modeldeployment", "acted", "-n", namespace, "--type=merge", "-p", json.dumps(patch)
        )

    act("pause")
    body = wait_status(kubectl, namespace, "acted", phase="Paused")
    assert condition(body, "Reconciling")["reason"] == "Paused"
    assert tools(body) == ("Current", "Suspended")

    act("resume")
    body = wait_status(kubectl, namespace, "acted", phase="Progressing")
    assert tools(body) == ("InProgress", "Progressing")

    act("abort")
    body = wait_status(kubectl, namespace, "acted", phase="RolledBack")
    assert condition(body, "Stalled")["reason"] == "Aborted"
    assert tools(body) == ("Failed", "Degraded")
    assert body["metadata"]["generation"] == get(kubectl, namespace, "acted")["metadata"]["generation"]


def test_argo_cd_promote_action_promotes(kubectl: Kubectl, namespace: str) -> None:
    steps = {"canary": {"steps": [{"weight": 20}, {"pause": {}}]}}
    kubectl.apply(manifest("promoted", rollout=steps), "-n", namespace)
    wait_condition(kubectl, namespace, "promoted", "Ready", "True")
    kubectl.apply(manifest("promoted", image="ghcr.io/example/server:2", rollout=steps), "-n", namespace)
    body = wait_status(kubectl, namespace, "promoted", phase="Paused")
    canary = body["status"]["canaryRevision"]

    patch = run_action(body, "promote").patch
    kubectl.run(
        "patch", "modeldeployment", "promoted", "-n", namespace, "--type=merge", "-p", json.dumps(patch)
    )
    body = wait_status(kubectl, namespace, "promoted", phase="Stable", stableRevision=canary)
    wait_for("promoted healthy", lambda: tools(get(kubectl, namespace, "promoted")) == ("Current", "Healthy"))


def test_transitions_are_events_and_repeats_are_counted(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(manifest("told", runtime={"serviceAccountName": "nobody"}), "-n", namespace)
    stalled(kubectl, namespace, "told", "ReplicaFailure")
    kubectl.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "nobody", "namespace": namespace}}
    )
    wait_condition(kubectl, namespace, "told", "Ready", "True", timeout=120)

    def reasons() -> list[tuple[str, str, int]] | None:
        events = kubectl.json(
            "get", "events", "-n", namespace, "--field-selector", "involvedObject.kind=ModelDeployment"
        )
        found = sorted((e["type"], e["reason"], e.get("count", 1)) for e in events["items"])
        return found if ("Normal", "Serving", 1) in found else None

    found = wait_for("the Ready event", reasons)
    assert [event for event in found if event[1] == "ReplicaFailure"] == [("Warning", "ReplicaFailure", 1)], (
        found
    )
