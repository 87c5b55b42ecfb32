"""The real node, the S3 model store on its bridge, and requests to real model servers: shared by
the e2e tests and bench/real_serving.py.

`hack/cluster up --real-node` starts real-1 (containerd, runc, kubelet, kube-proxy) and imports
the images hack/images/build makes; `hack/model-store up` serves the sample server's iris models
from moto's S3 on the bridge address pods reach. Where the real node cannot run here, the e2e
tests skip with the reason, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tests.cluster.harness import ROOT, Kubectl

SAMPLE_SERVER = "localhost/modeldeploy-sample-server:dev"
# The taint hack/realnode.py puts on real-1, and the node's name.
REAL_NODE = "real-1"
REAL_NODE_TOLERATION = {"key": "modeldeploy.io/real-node", "operator": "Exists", "effect": "NoSchedule"}
# The Secret `hack/model-store secret` prints.
CREDENTIALS_SECRET = "s3-creds"
# Well-known iris rows and their classes (0 setosa, 1 versicolor, 2 virginica).
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [5.9, 3.0, 4.2, 1.5], [6.7, 3.0, 5.2, 2.3]]
IRIS_CLASSES = [0, 1, 2]


class RealNodeUnavailable(Exception):
    """The real node cannot run on this machine; the message says why, in one line."""


def start_real_node() -> None:
    result = subprocess.run(
        [str(ROOT / "hack" / "cluster"), "up", "--real-node"], capture_output=True, text=True
    )
    if result.returncode == 0:
        return
    reason = next(
        (line for line in result.stderr.splitlines() if "cannot run a real node here" in line), None
    )
    if reason:
        raise RealNodeUnavailable(reason.removeprefix("[cluster] ERROR: "))
    raise AssertionError(
        f"hack/cluster up --real-node failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )


def model_store(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "model-store"), *args], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise AssertionError(
            f"hack/model-store {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    return result.stdout


@dataclass(frozen=True)
class ModelStore:
    """What `hack/model-store up` reports: the models' URIs and their digests computed at upload."""

    models: dict[str, dict[str, str]]

    @classmethod
    def start(cls) -> ModelStore:
        return cls(json.loads(model_store("up"))["models"])

    def uri(self, model: str) -> str:
        return self.models[model]["uri"]

    def sha256(self, model: str) -> str:
        return self.models[model]["sha256"]

    def credentials(self, secret_key: str | None = None) -> dict[str, Any]:
        """The Secret the init container reads through envFrom; with `secret_key`, a wrong one."""
        secret: dict[str, Any] = json.loads(model_store("secret"))
        if secret_key:
            secret["stringData"]["AWS_SECRET_ACCESS_KEY"] = secret_key
        return secret


def served_model(name: str, store: ModelStore, model: str, **spec: Any) -> dict[str, Any]:
    """A ModelDeployment of the sample server on the real node, its model from the store."""
    body: dict[str, Any] = {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": store.uri(model), "format": "sklearn", "credentialsSecret": CREDENTIALS_SECRET},
            "runtime": {
                "image": SAMPLE_SERVER,
                "port": 8080,
                "readinessPath": "/v2/models/iris/ready",
                "resources": {"cpu": "100m", "memory": "768Mi"},
                "tolerations": [REAL_NODE_TOLERATION],
                "nodeSelector": {"kubernetes.io/hostname": REAL_NODE},
            },
            "rollout": {"canary": {"scaleDownDelaySeconds": 0}},
            "traffic": {"provider": "service"},
        },
    }
    for key, value in spec.items():
        body["spec"][key] = {**body["spec"].get(key, {}), **value}
    return body


def service_address(kubectl: Kubectl, namespace: str, service: str) -> str:
    """host:port of a Service's ClusterIP, which kube-proxy on the real node serves to the host."""
    body = kubectl.json("get", "service", service, "-n", namespace)
    return f"{body['spec']['clusterIP']}:{body['spec']['ports'][0]['port']}"


def infer(address: str, rows: list[list[float]] = IRIS_ROWS, timeout: float = 5) -> tuple[int, Any]:
    """One Open Inference Protocol v2 request for model `iris`: (HTTP status, outputs or body)."""
    payload = {"inputs": [{"name": "input-0", "shape": [len(rows), 4], "datatype": "FP32", "data": rows}]}
    request = urllib.request.Request(
        f"http://{address}/v2/models/iris/infer",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())["outputs"][0]["data"]
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def pods(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, Any]]:
    return kubectl.json("get", "pods", "-n", namespace, "-l", f"modeldeploy.io/model={name}")["items"]


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def start_phases(pod: dict[str, Any], applied_at: float, answered_at: float) -> dict[str, float]:
    """Seconds from `kubectl apply` to a correct answer, split at what the pod's status records
    (one-second resolution): scheduling, image start (sandbox, network, init container start),
    model fetch (the init container's run), server load (server start to Ready), first answer."""
    status = pod["status"]
    conditions = {c["type"]: timestamp(c["lastTransitionTime"]) for c in status["conditions"]}
    fetch = status["initContainerStatuses"][0]["state"]["terminated"]
    server_started = timestamp(status["containerStatuses"][0]["state"]["running"]["startedAt"])
    marks = [
        ("scheduling", conditions["PodScheduled"]),
        ("image start", timestamp(fetch["startedAt"])),
        ("model fetch", timestamp(fetch["finishedAt"])),
        ("server start", server_started),
        ("server load", conditions["Ready"]),
        ("first answer", answered_at),
    ]
    phases, previous = {}, applied_at
    for phase, mark in marks:
        phases[phase] = max(0.0, mark - previous)
        previous = max(previous, mark)
    return phases


def wait_for_answer(address: str, timeout: float = 120) -> float:
    """The time the first correct prediction came back."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if infer(address, timeout=2) == (200, IRIS_CLASSES):
                return time.time()
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"no correct prediction from {address} in {timeout:.0f}s")


def real_node_required() -> bool:
    """Under CI the real node must run: a skip would hide that the product was never proven."""
    return os.environ.get("CI", "").lower() == "true"
