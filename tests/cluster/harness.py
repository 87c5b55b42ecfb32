"""The local cluster's processes and logs, shared by the cluster tests and bench/.

kubectl bound to a cluster, the operator run as a separate process (as in a pod), and the
API server's audit log. Nothing here depends on pytest, so the benchmark drives the same
operator and reads the same log the tests do.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.loopback import free_port

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

    def create_namespace(self, name: str) -> None:
        self.run("create", "namespace", name)
        # Pods are refused until the namespace's default ServiceAccount exists.
        deadline = time.monotonic() + 30
        while self.run("get", "serviceaccount", "default", "-n", name, check=False).returncode != 0:
            assert time.monotonic() < deadline, f"namespace {name} got no default ServiceAccount in 30s"
            time.sleep(0.2)

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
            # The project's image as hack/images/build makes it: on the real node every model
            # pod's init container is the real fetch-model.
            "--initializer-image",
            "localhost/modeldeploy:dev",
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


class AuditLog:
    """The API server's audit log (hack/audit-policy.yaml): every write, and the reads of the
    benchmark's clients; what really reached the API server."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def size(self) -> int:
        """A mark: `entries(mark)` reads only what was logged after it."""
        return self.path.stat().st_size

    def entries(self, start: int = 0, mentioning: str | None = None) -> Iterator[dict[str, Any]]:
        """Entries logged from byte `start` on; with `mentioning`, only lines containing that
        text are parsed (the log of a busy cluster holds hundreds of thousands)."""
        needle = mentioning.encode() if mentioning else b""
        if start > self.size():
            raise RuntimeError(
                f"{self.path} is shorter than the mark {start}: it was rotated, so counts from it would be wrong "
                "(hack/cluster creates clusters that never rotate it: recreate this one with hack/cluster down)"
            )
        with self.path.open("rb") as log:
            log.seek(start)
            for line in log:
                # The API server may be halfway through writing the last line.
                if line.endswith(b"\n") and needle in line:
                    yield json.loads(line)

    def writes(self, user_agent_prefix: str, namespace: str, since: float) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self.entries(mentioning=user_agent_prefix)
            if entry.get("userAgent", "").startswith(user_agent_prefix)
            and entry["verb"] in WRITE_VERBS
            and entry.get("objectRef", {}).get("namespace") == namespace
            and entry.get("responseStatus", {}).get("code", 0) < 400
            and audit_time(entry) >= since
        ]


WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def audit_time(entry: dict[str, Any]) -> float:
    stamp = entry["stageTimestamp"].replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()
