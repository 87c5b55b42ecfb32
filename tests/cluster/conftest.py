"""The cluster fixtures: one real API server for the whole session.

By default the local cluster (`hack/cluster up`, KWOK nodes) is brought up once and left
running for the next session (`make cluster-down` stops it). Set
MODELDEPLOY_TEST_KUBECONFIG to run the same tests against any cluster (kind, a real one).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from tests.cluster.harness import ROOT, AuditLog, Kubectl, Operator
from tests.cluster.real_serving import Gateway, ModelStore, real_node_or_skip
from tests.cluster.waiting import wait_for

# Namespaces of one test session: its operator watches only these, so two sessions sharing a
# cluster (two developers, or a test run beside the benchmarks) never act on each other's objects.
NAMESPACE_PREFIX = f"t-{uuid.uuid4().hex[:4]}-"


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    given = os.environ.get("MODELDEPLOY_TEST_KUBECONFIG")
    if given:
        return given
    result = subprocess.run([str(ROOT / "hack" / "cluster"), "up"], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"the local cluster did not come up:\n{result.stdout}\n{result.stderr}", pytrace=False)
    return str(ROOT / ".cluster" / "kubeconfig")


@pytest.fixture(scope="session")
def kubectl(kubeconfig: str) -> Kubectl:
    local = ROOT / ".cluster" / "bin" / "kubectl"
    return Kubectl(
        os.environ.get("MODELDEPLOY_TEST_KUBECTL", str(local) if local.exists() else "kubectl"), kubeconfig
    )


@pytest.fixture(scope="session")
def provider_crds(kubectl: Kubectl) -> None:
    """Gateway API, Istio, SMI and KEDA CRDs: `hack/cluster up` installs them; another
    cluster gets the same files."""
    if os.environ.get("MODELDEPLOY_TEST_KUBECONFIG"):
        files = subprocess.run(
            [str(ROOT / "hack" / "cluster"), "crd-files"], capture_output=True, text=True, check=True
        ).stdout.split()
        for path in files:
            kubectl.run(
                "apply", "--server-side", "--force-conflicts", "--field-manager=hack-cluster", "-f", path
            )
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")


@pytest.fixture(scope="session")
def api_client(kubeconfig: str) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
    yield client
    client.close()


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards without waiting."""
    name = f"{NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}"
    kubectl.create_namespace(name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def modeldeployment_crd(kubectl: Kubectl) -> None:
    """The generated CRD from crds/, applied as `make demo` and the chart do."""
    kubectl.run(
        "apply", "--server-side", "--force-conflicts", "--field-manager=tests", "-f", str(ROOT / "crds")
    )
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd/modeldeployments.modeldeploy.io")
    # Discovery and the published OpenAPI lag Established by a moment, and kubectl caches what
    # it saw: poll until `kubectl explain` knows the kind, or tests using it may miss it.
    wait_for(
        "discovery and OpenAPI to serve modeldeployments",
        lambda: kubectl.run("explain", "modeldeployments.modeldeploy.io", check=False).returncode == 0,
    )


@pytest.fixture(scope="session")
def operator(
    kubeconfig: str,
    kubectl: Kubectl,
    modeldeployment_crd: None,
    provider_crds: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    """One operator for the session, watching this session's test namespaces; tests that run
    operators of their own use other names."""
    running = Operator(
        kubeconfig, tmp_path_factory.mktemp("operator"), extra_args=("--namespace", f"{NAMESPACE_PREFIX}*")
    )
    running.start()
    warm_up(running, kubectl)
    yield running
    running.stop()


def warm_up(operator: Operator, kubectl: Kubectl) -> None:
    """Waits until the operator has reconciled a first model: on a new cluster its watches
    start well after /readyz answers, and no test should spend its own timeout on that."""
    namespace = f"{NAMESPACE_PREFIX}warm-up"
    kubectl.create_namespace(namespace)
    model = {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "warm-up"},
        "spec": {"model": {"uri": "s3://models/warm-up/"}, "runtime": {"image": "example/warm-up:1"}},
    }
    kubectl.apply(model, "-n", namespace)
    started = time.monotonic()
    while not kubectl.json("get", "modeldeployment", "warm-up", "-n", namespace).get("status"):
        if time.monotonic() - started > 180:
            raise AssertionError(f"the operator reconciled nothing in 180s; its log: {operator.log}")
        time.sleep(0.5)
    kubectl.run("delete", "namespace", namespace, "--wait=false")


@pytest.fixture(scope="session")
def audit_log(kubeconfig: str) -> AuditLog:
    path = Path(os.environ.get("MODELDEPLOY_TEST_AUDIT_LOG", ROOT / ".cluster" / "logs" / "audit.log"))
    if not path.exists():
        pytest.skip(f"no API server audit log at {path} (set MODELDEPLOY_TEST_AUDIT_LOG for another cluster)")
    return AuditLog(path)


@pytest.fixture(scope="session")
def gateway(kubeconfig: str) -> Gateway:
    """The real node and Traefik in front of it (hack/cluster up --real-node), or a skip with the
    reason where this machine cannot run them (a failure under CI=true)."""
    real_node_or_skip()
    return Gateway.local()


@pytest.fixture(scope="session")
def store(gateway: Gateway, operator: Operator) -> ModelStore:
    """The sample models in S3 on the real node's bridge (hack/model-store), and the session's
    operator to serve them."""
    return ModelStore.start()


def restore_crd(kubectl: Kubectl, saved: dict[str, Any]) -> None:
    """Puts back a CRD a test removed to see the operator without it."""
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
        saved["metadata"].pop(key, None)
    saved.pop("status", None)
    kubectl.run(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=hack-cluster",
        "-f",
        "-",
        input=json.dumps(saved),
    )
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", f"crd/{saved['metadata']['name']}")
