"""Two operator replicas elect one leader with a Lease; when the leader is killed, the other
takes over and finishes the rollout in progress."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.cluster.conftest import Kubectl, Operator
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


def replica(kubeconfig: str, namespace: str, log_dir: Path) -> Operator:
    return Operator(
        kubeconfig, log_dir, extra_args=("--namespace", namespace, "--leader-election-namespace", namespace)
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
        assert time.monotonic() - stopped_at < 10  # released, not waited out (15 s)
    finally:
        first.stop()
        second.stop()
