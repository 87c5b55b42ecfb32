"""The real node, the S3 model store on its bridge, and requests to real model servers: shared by
the e2e tests and bench/real_serving.py.

`hack/cluster up --real-node` starts real-1 (containerd, runc, kubelet, kube-proxy) and imports
the images hack/images/build makes; `hack/model-store up` serves the sample server's iris models
from moto's S3 on the bridge address pods reach. Where the real node cannot run here, the e2e
tests skip with the reason, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

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


def served_model(name: str, store: ModelStore, stored: str, **spec: Any) -> dict[str, Any]:
    """A ModelDeployment of the sample server on the real node, its model from the store."""
    body: dict[str, Any] = {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": store.uri(stored), "format": "sklearn", "credentialsSecret": CREDENTIALS_SECRET},
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


@dataclass(frozen=True)
class Answer:
    """One inference response: HTTP status, the predicted classes (or the error body), and the
    model version that answered (model-settings.json's parameters.version)."""

    status: int
    outputs: Any
    version: str | None = None


INFER_PATH = "/v2/models/iris/infer"
INFER_BODY = json.dumps(
    {"inputs": [{"name": "input-0", "shape": [len(IRIS_ROWS), 4], "datatype": "FP32", "data": IRIS_ROWS}]}
).encode()


def post_infer(connection: http.client.HTTPConnection, headers: dict[str, str] | None = None) -> Answer:
    """One Open Inference Protocol v2 request for model `iris` with the well-known rows, on a
    connection that stays open for the next (as a client behind a gateway would keep it)."""
    connection.request(
        "POST", INFER_PATH, INFER_BODY, {"Content-Type": "application/json", **(headers or {})}
    )
    response = connection.getresponse()
    body = response.read()
    if response.status != 200:
        return Answer(response.status, body.decode(errors="replace"))
    answer = json.loads(body)
    return Answer(200, answer["outputs"][0]["data"], answer.get("model_version"))


def infer(address: str, timeout: float = 5) -> tuple[int, Any]:
    """One prediction from the server behind `address` (host:port): (HTTP status, outputs or body)."""
    connection = http.client.HTTPConnection(address, timeout=timeout)
    try:
        answer = post_infer(connection)
    finally:
        connection.close()
    return answer.status, answer.outputs


# Requests to the gateway go over this many kept-alive connections at once.
CONNECTIONS = 4


@dataclass
class Load:
    """What a steady stream of requests through the gateway got back, while it ran."""

    answers: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Gateway:
    """Traefik in front of the real node, as `hack/cluster up --real-node` started it: requests
    to its address with a model's host name reach that model's HTTPRoute."""

    address: str
    admin: str
    reference = {"name": "ml-gateway", "namespace": "modeldeploy-gateway"}

    @classmethod
    def local(cls) -> Gateway:
        state = ROOT / ".cluster"
        return cls((state / "gateway").read_text().strip(), (state / "gateway-admin").read_text().strip())

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.address, timeout=10)

    def predict(self, host: str) -> tuple[int, Any]:
        connection = self._connection()
        try:
            answer = post_infer(connection, {"Host": host})
        except (OSError, http.client.HTTPException):
            return 0, None
        finally:
            connection.close()
        return answer.status, answer.outputs

    def versions(self, host: str, requests: int, headers: dict[str, str] | None = None) -> Counter[str]:
        """`requests` predictions over CONNECTIONS connections, counted by the version that
        answered correctly, or `HTTP <status>` / the wrong outputs otherwise."""
        counts: Counter[str] = Counter()
        lock = threading.Lock()

        def send(share: int) -> None:
            connection = self._connection()
            try:
                for _ in range(share):
                    answer = post_infer(connection, {"Host": host, **(headers or {})})
                    with lock:
                        counts[describe(answer)] += 1
            finally:
                connection.close()

        shares = [
            requests // CONNECTIONS + (1 if i < requests % CONNECTIONS else 0) for i in range(CONNECTIONS)
        ]
        threads = [threading.Thread(target=send, args=(share,)) for share in shares]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return counts

    @contextmanager
    def load(self, host: str) -> Iterator[Load]:
        """Predictions on CONNECTIONS connections until the block ends; a failed request (an
        error status, a wrong answer, a broken connection) is recorded, never retried."""
        seen = Load()
        stop = threading.Event()
        lock = threading.Lock()

        def send() -> None:
            connection = self._connection()
            while not stop.is_set():
                try:
                    answer = describe(post_infer(connection, {"Host": host}))
                except (OSError, http.client.HTTPException) as error:
                    answer = f"{type(error).__name__}: {error}"
                    connection.close()
                    connection = self._connection()
                with lock:
                    if answer.startswith("v"):
                        seen.answers[answer] += 1
                    else:
                        seen.failures.append(answer)
            connection.close()

        threads = [threading.Thread(target=send) for _ in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        try:
            yield seen
        finally:
            stop.set()
            for thread in threads:
                thread.join()


def describe(answer: Answer) -> str:
    if answer.status != 200:
        return f"HTTP {answer.status}: {str(answer.outputs)[:200]}"
    if answer.outputs != IRIS_CLASSES:
        return f"wrong answer {answer.outputs} from {answer.version}"
    return str(answer.version)


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
    """The time the first correct prediction came back (kube-proxy and the gateway program a
    new endpoint a moment after the pod is Ready)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if infer(address, timeout=2) == (200, IRIS_CLASSES):
                return time.time()
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise AssertionError(f"no correct prediction from {address} in {timeout:.0f}s")


def real_node_or_skip() -> None:
    """The real node for a test: started, or the test skipped with the reason; under CI=true it
    must run, since a skip would hide that the product was never proven."""
    try:
        start_real_node()
    except RealNodeUnavailable as why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {why}", pytrace=False)
        pytest.skip(str(why))


def set_weight(kubectl: Kubectl, namespace: str, weight: int, name: str = "iris") -> None:
    """What a GitOps commit changes: spec.rollout.canary.weight."""
    patch = {"spec": {"rollout": {"canary": {"weight": weight}}}}
    kubectl.run("patch", "modeldeployment", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))


def main(argv: list[str]) -> int:
    """`python -m tests.cluster.real_serving split HOST N`: N predictions through the local
    gateway for HOST, counted by the model version that answered (what `make demo` shows)."""
    if len(argv) != 4 or argv[1] != "split":
        print(main.__doc__, file=sys.stderr)
        return 2
    requests = int(argv[3])
    counts = Gateway.local().versions(argv[2], requests)
    for answer, count in sorted(counts.items()):
        print(f"  {answer:10} {count:5}  {100 * count / requests:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
