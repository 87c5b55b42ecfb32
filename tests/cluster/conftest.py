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
import yaml

ROOT = Path(__file__).resolve().parents[2]


class Kubectl:
    """kubectl bound to the test cluster; returns parsed JSON where asked."""

    def __init__(self, binary: str, kubeconfig: str) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, "--kubeconfig", self.kubeconfig, *args], input=input, capture_output=True, text=True
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def apply(
        self, manifest: dict | list | str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        text = (
            manifest
            if isinstance(manifest, str)
            else yaml.safe_dump_all(manifest if isinstance(manifest, list) else [manifest])
        )
        return self.run(
            "apply", "--server-side", "--field-manager=tests", "-f", "-", *args, input=text, check=check
        )


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
            kubectl.run("apply", "--server-side", "--force-conflicts", "--field-manager=hack-cluster", "-f", path)
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")


@pytest.fixture(scope="session")
def api_client(kubeconfig: str) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=kubeconfig)
    yield client
    client.close()


@pytest.fixture
def namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards without waiting."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl.run("create", "namespace", name)
    # Pods are refused until the namespace's default ServiceAccount exists.
    deadline = time.monotonic() + 30
    while kubectl.run("get", "serviceaccount", "default", "-n", name, check=False).returncode != 0:
        assert time.monotonic() < deadline, f"namespace {name} got no default ServiceAccount in 30s"
        time.sleep(0.2)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)
