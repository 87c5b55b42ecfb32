"""The two systems under test, behind one interface the scenario drives.

Each runs as a process on this machine against the shared API server, watches only its
own namespace, and authenticates as its own ServiceAccount so that the audit log tells
its requests apart.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from kubernetes import client
from tests.cluster.harness import Operator
from tests.loopback import free_port

from bench import workload
from bench.cluster import Identity
from bench.gate import Gate
from bench.requests import client_go_read
from bench.workload import CANARY_WEIGHTS, FLAGGER_INTERVAL_SECONDS, IMAGES, Model

CACHE = Path.home() / ".cache" / "modeldeploy"
# Flagger's client-side rate limit (default 100 requests/s, bursts of 250) would make the
# comparison measure the limiter: the operator's client has none. The cluster's own
# controllers run with these values.
FLAGGER_QPS, FLAGGER_BURST = 5000, 10000
# Flagger re-reads every Canary's objects once per interval; a resync is measured over this
# many intervals and divided.
FLAGGER_RESYNC_INTERVALS = 3
START_TIMEOUT_SECONDS = 60
# Rendering /metrics costs the operator CPU (a canary-weight series per model): ask seldom.
METRICS_POLL_SECONDS = 1.0


@dataclass
class Clients:
    """The benchmark's own API access (the admin user, not counted against either system)."""

    custom: client.CustomObjectsApi
    apps: client.AppsV1Api


class System(Protocol):
    label: str
    identity: Identity
    # The custom resource (group, version, plural) whose status says a model is deployed.
    ready_resource: tuple[str, str, str]

    @property
    def pid(self) -> int: ...

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def is_ready(self, obj: dict[str, Any]) -> bool: ...
    def create(self, model: Model) -> None: ...
    def start_canary(self, model: Model) -> None:
        """A new image, routed at CANARY_WEIGHTS[0] once ready."""

    def raise_weight(self, model: Model) -> None:
        """The canary weight to CANARY_WEIGHTS[1]."""

    def resync(self, models: list[Model], timeout: float) -> int:
        """Makes the system look at every unchanged model again; returns how many passes over
        them the time since the call covered."""

    def own_reads(self) -> Counter[str]:
        """Reads by verb the client has counted itself since it started."""


class ModelDeploySystem:
    label = "modeldeploy"
    ready_resource = ("modeldeploy.io", "v1alpha1", "modeldeployments")

    def __init__(self, identity: Identity, clients: Clients, namespace: str, log_dir: Path) -> None:
        self.identity = identity
        self.clients = clients
        self.namespace = namespace
        self.operator = Operator(str(identity.kubeconfig), log_dir, extra_args=("--namespace", namespace))

    @property
    def pid(self) -> int:
        assert self.operator.process is not None
        return self.operator.process.pid

    def start(self) -> None:
        self.operator.start()

    def stop(self) -> None:
        self.operator.stop()

    def is_ready(self, obj: dict[str, Any]) -> bool:
        conditions = obj.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def create(self, model: Model) -> None:
        self.clients.custom.create_namespaced_custom_object(
            *self.ready_resource[:2],
            self.namespace,
            self.ready_resource[2],
            workload.modeldeployment(model, self.namespace),
        )

    def _patch(self, model: Model, patch: dict[str, Any]) -> None:
        self.clients.custom.patch_namespaced_custom_object(
            *self.ready_resource[:2], self.namespace, self.ready_resource[2], model.name, patch
        )

    def start_canary(self, model: Model) -> None:
        self._patch(model, workload.modeldeployment_patch(IMAGES[1], CANARY_WEIGHTS[0]))

    def raise_weight(self, model: Model) -> None:
        self._patch(model, workload.modeldeployment_patch(IMAGES[1], CANARY_WEIGHTS[1]))

    def resync(self, models: list[Model], timeout: float) -> int:
        """What the periodic resync does to an unchanged object, started at once: an annotation
        the operator does not read wakes every ModelDeployment, each reconcile finds nothing to do."""
        before = self.operator.metric("modeldeploy_reconciles_total")
        stamp = datetime.now(UTC).isoformat()
        for model in models:
            self._patch(model, {"metadata": {"annotations": {"bench.modeldeploy.io/touched": stamp}}})
        deadline = time.monotonic() + timeout
        while self.operator.metric("modeldeploy_reconciles_total") < before + len(models):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the operator did not reconcile {len(models)} touched models in {timeout:.0f}s"
                )
            time.sleep(METRICS_POLL_SECONDS)
        return 1

    def own_reads(self) -> Counter[str]:
        return Counter(
            {
                verb: int(self.operator.metric("modeldeploy_api_reads_total", verb=verb))
                for verb in ("get", "list")
            }
        )


class FlaggerSystem:
    label = "flagger"
    ready_resource = ("flagger.app", "v1beta1", "canaries")

    def __init__(
        self,
        identity: Identity,
        clients: Clients,
        namespace: str,
        log_dir: Path,
        version: str,
        gate: Gate,
        log_requests: bool,
    ) -> None:
        self.identity = identity
        self.clients = clients
        self.namespace = namespace
        self.binary = CACHE / f"flagger-{version}" / "bin" / "flagger"
        self.log = log_dir / "flagger.log"
        self.gate = gate
        # client-go logs each request at -v=6: how Flagger's reads are counted when the audit
        # log has none.
        self.log_requests = log_requests
        self.process: subprocess.Popen[bytes] | None = None
        self.requests_read = Counter[str]()
        self.log_offset = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        port = free_port()
        command = [
            str(self.binary),
            f"-kubeconfig={self.identity.kubeconfig}",
            "-mesh-provider=gatewayapi:v1",
            f"-namespace={self.namespace}",
            # Picks up new Canaries within a second rather than its default 10 s.
            "-control-loop-interval=1s",
            f"-kubeconfig-qps={FLAGGER_QPS}",
            f"-kubeconfig-burst={FLAGGER_BURST}",
            "-log-level=info",
            f"-port={port}",
            *(["-v=6"] if self.log_requests else []),
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _answers(f"http://127.0.0.1:{port}/healthz"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Flagger did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def is_ready(self, obj: dict[str, Any]) -> bool:
        return bool(obj.get("status", {}).get("phase") == "Initialized")

    def create(self, model: Model) -> None:
        self.clients.apps.create_namespaced_deployment(
            self.namespace, workload.flagger_target(model, self.namespace)
        )
        self.clients.custom.create_namespaced_custom_object(
            *self.ready_resource[:2],
            self.namespace,
            self.ready_resource[2],
            workload.flagger_canary(model, self.namespace, self.gate.url),
        )

    def start_canary(self, model: Model) -> None:
        self.gate.approve_step(self.namespace, model.name)
        self.clients.apps.patch_namespaced_deployment(
            model.name, self.namespace, workload.flagger_target_patch(IMAGES[1])
        )

    def raise_weight(self, model: Model) -> None:
        self.gate.approve_step(self.namespace, model.name)

    def resync(self, models: list[Model], timeout: float) -> int:
        """Flagger re-reads every Canary's objects each interval whether anything changed or not."""
        time.sleep(FLAGGER_INTERVAL_SECONDS * FLAGGER_RESYNC_INTERVALS)
        return FLAGGER_RESYNC_INTERVALS

    def own_reads(self) -> Counter[str]:
        with self.log.open("rb") as log:
            log.seek(self.log_offset)
            for line in log:
                if not line.endswith(b"\n"):
                    break
                self.log_offset += len(line)
                if b"round_trippers" in line:
                    method, url = json.loads(line)["msg"].split()[:2]
                    verb = client_go_read(method, url)
                    if verb:
                        self.requests_read[verb] += 1
        return Counter(self.requests_read)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
