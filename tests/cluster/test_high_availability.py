"""Two operator replicas elect one leader with a Lease; when the leader is killed, the other
takes over and finishes the rollout in progress; a leader frozen past its lease writes
nothing once it resumes."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from modeldeploy.controller.kube import USER_AGENT
from tests.cluster.conftest import Kubectl, Operator
from tests.cluster.harness import AuditLog, audit_time
from tests.cluster.modeldeployments import manifest, wait_condition, wait_status
from tests.cluster.waiting import wait_for

LEASE = "modeldeploy-operator"


@pytest.fixture
def ha_namespace(kubectl: Kubectl, modeldeployment_crd: None, provider_crds: None) -> Iterator[str]:
    """A namespace the session's operator does not watch (it watches its `t-…-` prefix)."""
    name = f"ha-{uuid.uuid4().hex[:8]}"
    kubectl.run("create", "namespace", name)
    wait_for(
        "the default ServiceAccount",
        lambda: kubectl.run("get", "sa", "default", "-n", name, check=False).returncode == 0,
    )
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def replica(kubeconfig: str, namespace: str, log_dir: Path, *extra_args: str) -> Operator:
    return Operator(
        kubeconfig,
        log_dir,
        extra_args=("--namespace", namespace, "--leader-election-namespace", namespace, *extra_args),
    )


def holder(kubectl: Kubectl, namespace: str) -> str | None:
    lease = kubectl.run(
        "get", "lease", LEASE, "-n", namespace, "-o", "jsonpath={.spec.holderIdentity}", check=False
    )
    return lease.stdout or None


def test_the_standby_takes_over_and_finishes_the_rollout(
    kubectl: Kubectl, kubeconfig: str, ha_namespace: str, tmp_path: Path
) -> None:
    first = replica(kubeconfig, ha_namespace, tmp_path / "first")
    second = replica(kubeconfig, ha_namespace, tmp_path / "second")
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first.start()
    leader = wait_for("a leader", lambda: holder(kubectl, ha_namespace))
    second.start()  # ready as a standby
    try:
        kubectl.apply(manifest("ha", rollout={"canary": {"weight": 0}}), "-n", ha_namespace)
        wait_condition(kubectl, ha_namespace, "ha", "Ready", "True")
        kubectl.apply(
            manifest("ha", image="ghcr.io/example/server:2", rollout={"canary": {"weight": 50}}),
            "-n",
            ha_namespace,
        )
        wait_status(kubectl, ha_namespace, "ha", canaryWeight=50)
        assert holder(kubectl, ha_namespace) == leader

        killed_at = time.time()
        first.stop(signal.SIGKILL)
        new_leader = wait_for(
            "the standby to take over",
            lambda: (h := holder(kubectl, ha_namespace)) != leader and h,
            timeout=60,
        )
        lease = kubectl.json("get", "lease", LEASE, "-n", ha_namespace)
        acquired = datetime.fromisoformat(lease["spec"]["acquireTime"].replace("Z", "+00:00")).timestamp()
        takeover = acquired - killed_at
        print(f"takeover after SIGKILL of the leader: {takeover:.1f}s")
        assert new_leader != leader
        assert lease["spec"]["leaseTransitions"] >= 1

        # The next commit of the rollout is handled by the new leader.
        kubectl.apply(
            manifest("ha", image="ghcr.io/example/server:2", rollout={"canary": {"weight": 100}}),
            "-n",
            ha_namespace,
        )
        body = wait_status(kubectl, ha_namespace, "ha", phase="Stable", canaryWeight=0, timeout=60)
        assert "canaryRevision" not in body["status"]
        assert len(body["status"]["history"]) == 2
    finally:
        first.stop()
        second.stop()


def test_a_clean_shutdown_hands_the_lease_over_at_once(
    kubectl: Kubectl, kubeconfig: str, ha_namespace: str, tmp_path: Path
) -> None:
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = replica(kubeconfig, ha_namespace, tmp_path / "first")
    second = replica(kubeconfig, ha_namespace, tmp_path / "second")
    first.start()
    leader = wait_for("a leader", lambda: holder(kubectl, ha_namespace))
    second.start()
    try:
        stopped_at = time.monotonic()
        first.stop(signal.SIGTERM)
        wait_for(
            "the standby to take over",
            lambda: holder(kubectl, ha_namespace) not in (None, leader),
            timeout=15,
        )
        handover = time.monotonic() - stopped_at
        print(f"handover after SIGTERM of the leader: {handover:.1f}s")
        assert handover < 10  # released, not waited out (15 s)
    finally:
        first.stop()
        second.stop()


def test_a_leader_frozen_past_its_lease_writes_nothing_once_it_resumes(
    kubectl: Kubectl, kubeconfig: str, ha_namespace: str, tmp_path: Path, audit_log: AuditLog
) -> None:
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first = replica(kubeconfig, ha_namespace, tmp_path / "first")
    # The replicas disagree about the init container's image, as two versions of the operator
    # do during an upgrade: whatever the frozen one still applies would be a real change.
    second = replica(
        kubeconfig, ha_namespace, tmp_path / "second", "--initializer-image", "localhost/modeldeploy:next"
    )
    first.start()
    frozen = wait_for("a leader", lambda: holder(kubectl, ha_namespace))
    second.start()
    try:
        steps = [{"weight": 20}, {"pause": {"duration": "5s"}}, {"weight": 60}, {"pause": {}}]
        kubectl.apply(manifest("ha", rollout={"canary": {"steps": steps}}), "-n", ha_namespace)
        wait_condition(kubectl, ha_namespace, "ha", "Ready", "True")
        kubectl.apply(
            manifest("ha", image="ghcr.io/example/server:2", rollout={"canary": {"steps": steps}}),
            "-n",
            ha_namespace,
        )
        # The leader's queue now holds the model until the pause ends, due while it is frozen.
        wait_status(kubectl, ha_namespace, "ha", canaryWeight=20)
        assert first.process is not None
        first.process.send_signal(signal.SIGSTOP)
        frozen_at = time.time()
        new_leader = wait_for(
            "the standby to take over",
            lambda: (h := holder(kubectl, ha_namespace)) not in (None, frozen) and h,
            timeout=60,
        )
        wait_status(kubectl, ha_namespace, "ha", canaryWeight=60, timeout=30)
        takeover = min(
            audit_time(entry)
            for entry in audit_log.writes(f"{USER_AGENT} ({new_leader})", ha_namespace, frozen_at)
        )
        print(f"first write of the new leader {takeover - frozen_at:.1f}s after the leader froze")

        first.process.send_signal(signal.SIGCONT)
        resumed_at = time.monotonic()
        # It finds it no longer leads and exits, for its pod to restart as a standby.
        assert first.process.wait(timeout=40) != 0
        print(f"the resumed leader exited after {time.monotonic() - resumed_at:.1f}s")
        late_writes = audit_log.writes(f"{USER_AGENT} ({frozen})", ha_namespace, since=takeover)
        assert not late_writes, [
            (entry["verb"], entry["objectRef"].get("resource"), entry["objectRef"].get("name"))
            for entry in late_writes
        ]
        assert "localhost/modeldeploy:next" in str(
            kubectl.json("get", "deployments", "-n", ha_namespace, "-l", "modeldeploy.io/model=ha")
        )
    finally:
        if first.process and first.process.poll() is None:
            first.process.send_signal(signal.SIGCONT)
        first.stop()
        second.stop()
