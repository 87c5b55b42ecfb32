"""The cluster fixtures: one real API server for the whole session.

By default the local cluster (`hack/cluster up`, KWOK nodes) is brought up once and left
running for the next session (`make cluster-down` stops it). Set
MODELDEPLOY_TEST_KUBECONFIG to run the same tests against any cluster (kind, a real one).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

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
    name = f"t-{uuid.uuid4().hex[:8]}"
    kubectl.run("create", "namespace", name)
    # Pods are refused until the namespace's default ServiceAccount exists.
    deadline = time.monotonic() + 30
    while kubectl.run("get", "serviceaccount", "default", "-n", name, check=False).returncode != 0:
        assert time.monotonic() < deadline, f"namespace {name} got no default ServiceAccount in 30s"
        time.sleep(0.2)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="session")
def modeldeployment_crd(kubectl: Kubectl) -> None:
    """The generated CRD from crds/, applied as `make demo` and the chart do."""
    kubectl.run(
        "apply", "--server-side", "--force-conflicts", "--field-manager=tests", "-f", str(ROOT / "crds")
    )
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd/modeldeployments.modeldeploy.io")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Operator:
    """`modeldeploy run` as a separate process, as it runs in a pod: killed and restarted at will."""

    def __init__(self, kubeconfig: str, log_dir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        self.metrics_port, self.health_port = free_port(), free_port()
        command = [
            str(Path(sys.executable).parent / "modeldeploy"),
            "run",
            "--kubeconfig",
            self.kubeconfig,
            "--metrics-port",
            str(self.metrics_port),
            "--health-port",
            str(self.health_port),
            "--initializer-image",
            "ghcr.io/modeldeploy/modeldeploy:test",
            *self.extra_args,
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while not self._ready():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the operator exited with {self.process.returncode}:\n{self.log.read_text()}"
                )
            assert time.monotonic() < deadline, (
                f"the operator did not become ready in 60s:\n{self.log.read_text()}"
            )
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def restart(self, sig: int = signal.SIGTERM) -> None:
        self.stop(sig)
        self.start()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of one metric whose labels include `labels`."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            text = response.read().decode()
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total


@pytest.fixture(scope="session")
def operator(
    kubeconfig: str, modeldeployment_crd: None, provider_crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    """One operator for the session, watching the tests' namespaces (`t-*`); tests that run
    operators of their own use other names."""
    running = Operator(kubeconfig, tmp_path_factory.mktemp("operator"), extra_args=("--namespace", "t-*"))
    running.start()
    yield running
    running.stop()


class AuditLog:
    """The API server's audit log of writes (hack/audit-policy.yaml): what really reached etcd."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def writes(self, user_agent_prefix: str, namespace: str, since: float) -> list[dict[str, Any]]:
        found = []
        for line in self.path.read_text().splitlines():
            entry = json.loads(line)
            if (
                entry.get("userAgent", "").startswith(user_agent_prefix)
                and entry.get("objectRef", {}).get("namespace") == namespace
                and entry.get("responseStatus", {}).get("code", 0) < 400
                and _audit_time(entry) >= since
            ):
                found.append(entry)
        return found


def _audit_time(entry: dict[str, Any]) -> float:
    stamp = entry["stageTimestamp"].replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


@pytest.fixture(scope="session")
def audit_log(kubeconfig: str) -> AuditLog:
    path = Path(os.environ.get("MODELDEPLOY_TEST_AUDIT_LOG", ROOT / ".cluster" / "logs" / "audit.log"))
    if not path.exists():
        pytest.skip(f"no API server audit log at {path} (set MODELDEPLOY_TEST_AUDIT_LOG for another cluster)")
    return AuditLog(path)


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
