"""Automated canaries end to end: steps, analysis against a real Prometheus, rollback, an
operator killed mid-rollout, and the rollout commands of the CLI.

The model pods do not run under KWOK, so a synthetic model server in the test stands in for
their metrics: it serves the canary revision's requests with the error rate a scenario
wants, Prometheus scrapes it, and the operator queries that Prometheus with real PromQL.
Timings are scaled to seconds (analysis every 2 s, pauses of a few seconds).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from modeldeploy.api.models import GROUP, PLURAL, VERSION, ModelDeploymentSpec
from modeldeploy.render.revision import revision_of
from modeldeploy.rollout.steps import weight_at
from modeldeploy.rollout.timing import parse_timestamp
from tests.cluster.harness import Kubectl, Operator
from tests.cluster.modeldeployments import condition, get, manifest, wait_condition, wait_status
from tests.cluster.waiting import wait_for
from tests.gitops_verdicts import enabled_actions, run_action, tool_statuses
from tests.loopback import free_port
from tests.prometheus_server import (
    ServedRevision,
    SyntheticModelServer,
    exporting,
    running_prometheus,
)

pytestmark = pytest.mark.usefixtures("operator")

NAME = "m"
TRAFFIC = {"provider": "gateway-api", "gateway": {"name": "ml-gateway"}, "hosts": ["m.example.com"]}
STABLE_IMAGE = "ghcr.io/example/server:1"
CANARY_IMAGE = "ghcr.io/example/server:2"
INTERVAL_SECONDS = 2
# The synthetic model server serves the model-server convention; with gateway-api the source
# must be named (nothing here stands in for the Gateway's data plane).
SUCCESS_RATE = {"name": "success-rate", "template": "success-rate", "min": 0.95, "source": "model-server"}
HEALTHY = {"200": 50.0}
# 30% of the canary's answers are server errors: a success rate of 0.7.
ERRORS = {"200": 35.0, "503": 15.0}
MODELDEPLOY = str(Path(sys.executable).parent / "modeldeploy")


@pytest.fixture(scope="module")
def model_server() -> SyntheticModelServer:
    return SyntheticModelServer()


@pytest.fixture(scope="module")
def prometheus(model_server: SyntheticModelServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus scraping the model server; the operator queries it from its own process."""
    with (
        exporting(model_server) as exporter,
        running_prometheus(exporter, tmp_path_factory.mktemp("prometheus")) as address,
    ):
        yield address


def canary_settings(prometheus: str, steps: list[dict[str, Any]], **analysis: Any) -> dict[str, Any]:
    """spec.rollout.canary: these steps, analysis of the success rate every 2 s."""
    return {
        "steps": steps,
        "analysis": {
            "prometheus": {"address": prometheus},
            "interval": f"{INTERVAL_SECONDS}s",
            "metrics": [SUCCESS_RATE],
            **analysis,
        },
    }


def model(image: str, canary: dict[str, Any]) -> dict[str, Any]:
    return manifest(NAME, image=image, traffic=TRAFFIC, rollout={"canary": canary})


def revision_of_manifest(body: dict[str, Any]) -> str:
    return revision_of(ModelDeploymentSpec.model_validate(body["spec"]))


def deploy_stable(kubectl: Kubectl, namespace: str, canary: dict[str, Any]) -> str:
    """The first revision, stable and ready; returns its revision."""
    kubectl.apply(model(STABLE_IMAGE, canary), "-n", namespace)
    return str(wait_condition(kubectl, namespace, NAME, "Ready", "True")["status"]["stableRevision"])


def start_canary(
    kubectl: Kubectl,
    namespace: str,
    canary: dict[str, Any],
    model_server: SyntheticModelServer | None = None,
    requests_per_second: dict[str, float] | None = None,
    image: str = CANARY_IMAGE,
) -> str:
    """Commits a new image; its metrics (when given) are served before the canary exists, so
    every analysis window is full. Returns the canary revision."""
    body = model(image, canary)
    revision = revision_of_manifest(body)
    if model_server is not None and requests_per_second is not None:
        model_server.serve(ServedRevision(namespace, NAME, revision, requests_per_second))
    kubectl.apply(body, "-n", namespace)
    wait_status(kubectl, namespace, NAME, canaryRevision=revision)
    return revision


def wait_rollout(
    kubectl: Kubectl, namespace: str, what: str, holds: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Waits until status.rollout satisfies `holds`; returns the ModelDeployment."""

    def probe() -> dict[str, Any] | None:
        body = get(kubectl, namespace, NAME)
        return body if holds(body.get("status", {}).get("rollout") or {}) else None

    return wait_for(what, probe, timeout=30)


def route_weights(kubectl: Kubectl, namespace: str) -> dict[str, int]:
    """Weights of the HTTPRoute's split rule, by backend Service."""
    route = kubectl.json("get", "httproute", NAME, "-n", namespace)
    split = next(rule for rule in route["spec"]["rules"] if rule.get("name") == "split")
    return {ref["name"]: ref["weight"] for ref in split["backendRefs"]}


def events(kubectl: Kubectl, namespace: str, reason: str) -> list[dict[str, Any]]:
    return kubectl.json("get", "events", "-n", namespace, "--field-selector", f"reason={reason}")["items"]


def runs_of_step(body: dict[str, Any], step: int) -> list[dict[str, Any]]:
    return [run for run in body["status"]["rollout"]["analysisRuns"] if run.get("step") == step]


def canary_deployment(kubectl: Kubectl, namespace: str, revision: str) -> dict[str, Any]:
    return kubectl.json("get", "deployment", f"{NAME}-{revision}", "-n", namespace)


@dataclass(frozen=True)
class Seen:
    phase: str
    step: int
    weight: int
    """status.canaryWeight: what the route sends to the canary."""


class StatusRecorder:
    """Polls a ModelDeployment in the background and keeps each distinct (phase, step,
    weight) in the order seen. Steps that take time (analysis, pauses) last seconds, so
    polling every 0.1 s sees every one of them."""

    def __init__(self, api_client: kubernetes.client.ApiClient, namespace: str) -> None:
        self.api = kubernetes.client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.seen: list[Seen] = []
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> StatusRecorder:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        # A recording cut short would look like a rollout that stopped early.
        if self.error is not None:
            raise AssertionError(f"recording status failed after {self.seen}") from self.error

    def _poll(self) -> None:
        try:
            self._record()
        except Exception as error:
            self.error = error

    def _record(self) -> None:
        while not self._stop.wait(0.1):
            body = self.api.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, NAME)
            status = body.get("status") or {}
            seen = Seen(
                phase=status.get("phase", ""),
                step=(status.get("rollout") or {}).get("step", 0),
                weight=status.get("canaryWeight", 0),
            )
            if not self.seen or self.seen[-1] != seen:
                self.seen.append(seen)


def test_a_healthy_canary_walks_every_step_and_is_promoted(
    kubectl: Kubectl, namespace: str, prometheus: str, model_server: SyntheticModelServer
) -> None:
    steps = [
        {"weight": 20},
        {"analysis": {"count": 2}},
        {"pause": {"duration": "2s"}},
        {"weight": 60},
        {"analysis": {"count": 2}},
    ]
    canary = canary_settings(prometheus, steps, failureLimit=0)
    stable = deploy_stable(kubectl, namespace, canary)
    revision = start_canary(kubectl, namespace, canary, model_server, HEALTHY)

    for weight in (20, 60):
        body = wait_status(kubectl, namespace, NAME, canaryWeight=weight)
        assert body["status"]["phase"] == "Progressing"
        assert route_weights(kubectl, namespace) == {f"{NAME}-stable": 100 - weight, f"{NAME}-canary": weight}

    body = wait_status(kubectl, namespace, NAME, phase="Stable", stableRevision=revision, timeout=30)
    assert [entry["revision"] for entry in body["status"]["history"]] == [stable, revision]
    assert route_weights(kubectl, namespace) == {f"{NAME}-stable": 100}
    for analysis_step in (1, 4):
        runs = runs_of_step(body, analysis_step)
        assert len(runs) == 2, body["status"]["rollout"]["analysisRuns"]
        for run in runs:
            assert (run["metric"], run["verdict"]) == ("success-rate", "Successful")
            assert run["value"] == pytest.approx(1.0)
    # A 2 s pause ends as its first background measurement falls due: only the steps measured.
    # Repeats of one message are counted on one Event (as client-go's EventCorrelator does).
    assert sum(event["count"] for event in events(kubectl, namespace, "AnalysisPassed")) == 4
    assert len(events(kubectl, namespace, "Promoted")) == 1


def test_a_canary_with_errors_is_rolled_back(
    kubectl: Kubectl, namespace: str, prometheus: str, model_server: SyntheticModelServer
) -> None:
    failure_limit = 1
    steps = [{"weight": 20}, {"analysis": {"count": 3}}, {"weight": 60}]
    canary = canary_settings(prometheus, steps, failureLimit=failure_limit)
    stable = deploy_stable(kubectl, namespace, canary)
    revision = start_canary(kubectl, namespace, canary, model_server, ERRORS)

    body = wait_condition(kubectl, namespace, NAME, "Degraded", "True", reason="AnalysisFailed", timeout=30)
    status = body["status"]
    assert status["phase"] == "RolledBack"
    assert status["stableRevision"] == stable
    assert status["canaryRevision"] == revision
    degraded = condition(body, "Degraded")
    assert "success-rate = 0.7, below min 0.95" in degraded["message"]

    # Rolled back by the measurement one past the limit, failureLimit+1 intervals into the step.
    failed = runs_of_step(body, 1)
    assert [run["verdict"] for run in failed] == ["Failed"] * (failure_limit + 1)
    assert all(run["value"] == pytest.approx(0.7) for run in failed)
    took = parse_timestamp(degraded["lastTransitionTime"]) - parse_timestamp(
        status["rollout"]["stepStartedAt"]
    )
    # Timestamps are whole seconds, and each measurement waits for its reconcile.
    assert took.total_seconds() <= (failure_limit + 1) * INTERVAL_SECONDS + 2, (degraded, status["rollout"])

    warnings = events(kubectl, namespace, "RolledBack")
    assert [event["type"] for event in warnings] == ["Warning"]
    assert "success-rate = 0.7" in warnings[0]["message"]
    kept = canary_deployment(kubectl, namespace, revision)
    assert kept["spec"]["replicas"] == 0
    body = wait_status(kubectl, namespace, NAME, canaryWeight=0)
    assert route_weights(kubectl, namespace) == {f"{NAME}-stable": 100, f"{NAME}-canary": 0}


def test_an_unreachable_prometheus_fails_the_rollout_without_promoting(
    kubectl: Kubectl, namespace: str
) -> None:
    inconclusive_limit = 1
    closed = f"http://127.0.0.1:{free_port()}"
    steps = [{"weight": 20}, {"analysis": {"count": 2}}, {"weight": 60}]
    canary = canary_settings(closed, steps, inconclusiveLimit=inconclusive_limit)
    stable = deploy_stable(kubectl, namespace, canary)
    revision = start_canary(kubectl, namespace, canary)

    body = wait_condition(
        kubectl, namespace, NAME, "Degraded", "True", reason="AnalysisInconclusive", timeout=30
    )
    status = body["status"]
    assert status["phase"] == "Failed"
    message = condition(body, "Degraded")["message"]
    assert f"query failed: {closed}" in message and "the canary is not promoted" in message, message
    assert condition(body, "Progressing")["status"] == "False"
    runs = runs_of_step(body, 1)
    assert [run["verdict"] for run in runs] == ["Inconclusive"] * (inconclusive_limit + 1)
    assert all("value" not in run for run in runs)

    assert status["stableRevision"] == stable
    assert [entry["revision"] for entry in status["history"]] == [stable]
    assert events(kubectl, namespace, "Promoting") == []
    assert [event["type"] for event in events(kubectl, namespace, "RolloutFailed")] == ["Warning"]
    assert canary_deployment(kubectl, namespace, revision)["spec"]["replicas"] == 0
    wait_status(kubectl, namespace, NAME, canaryWeight=0)
    assert route_weights(kubectl, namespace) == {f"{NAME}-stable": 100, f"{NAME}-canary": 0}


def test_a_killed_operator_resumes_the_rollout_at_the_same_step(
    kubectl: Kubectl,
    namespace: str,
    prometheus: str,
    model_server: SyntheticModelServer,
    operator: Operator,
    api_client: kubernetes.client.ApiClient,
) -> None:
    analysis_step, count = 2, 3
    steps = [
        {"weight": 20},
        {"pause": {"duration": "2s"}},
        {"analysis": {"count": count}},
        {"weight": 50},
        {"analysis": {"count": 2}},
    ]
    canary = canary_settings(prometheus, steps)
    deploy_stable(kubectl, namespace, canary)
    with StatusRecorder(api_client, namespace) as recorder:
        revision = start_canary(kubectl, namespace, canary, model_server, HEALTHY)
        # Killed in the middle of the analysis step: one measurement taken, more to come.
        wait_rollout(
            kubectl,
            namespace,
            f"a measurement in step {analysis_step}",
            lambda rollout: rollout.get("step") == analysis_step and rollout.get("measurements", 0) >= 1,
        )
        at_kill = len(recorder.seen) - 1
        operator.restart(signal.SIGKILL)
        body = wait_status(kubectl, namespace, NAME, phase="Stable", stableRevision=revision, timeout=60)

    since_kill = [seen for seen in recorder.seen[at_kill:] if seen.phase == "Progressing"]
    assert since_kill[0].step == analysis_step, recorder.seen
    observed_steps = [seen.step for seen in since_kill]
    assert observed_steps == sorted(observed_steps), f"a step went back: {recorder.seen}"
    # A weight step passes within one tick; every step that takes time was seen.
    assert {analysis_step, 4} <= set(observed_steps), recorder.seen
    spec_steps = ModelDeploymentSpec.model_validate(body["spec"]).rollout.canary.steps
    assert all(seen.weight == weight_at(spec_steps, seen.step) for seen in since_kill), recorder.seen

    # Nothing measured twice, nothing skipped: the step's count, each measurement recorded once.
    assert [run["verdict"] for run in runs_of_step(body, analysis_step)] == ["Successful"] * count
    started = [event["message"] for event in events(kubectl, namespace, "StepStarted")]
    for number in range(2, len(steps) + 1):
        assert sum(message.startswith(f"step {number}/{len(steps)}:") for message in started) == 1, started


def argocd_action(kubectl: Kubectl, namespace: str, action: str) -> None:
    """What Argo CD does when someone runs the resource action: runs it on the live object
    (it must be offered) and sends the difference as a merge patch."""
    live = get(kubectl, namespace, NAME)
    assert enabled_actions(live)[action], f"{action} not offered for phase {live['status'].get('phase')}"
    patch = run_action(live, action).patch
    kubectl.run("patch", "modeldeployment", NAME, "-n", namespace, "--type=merge", "-p", json.dumps(patch))


@pytest.mark.parametrize("via", ["cli", "argocd"])
def test_rollout_commands_act_without_touching_the_spec(
    kubectl: Kubectl, namespace: str, kubeconfig: str, via: str
) -> None:
    def modeldeploy(command: str) -> str:
        if via == "argocd" and command != "status":
            argocd_action(kubectl, namespace, command)
            return ""
        result = subprocess.run(
            [MODELDEPLOY, command, NAME, "-n", namespace, "--kubeconfig", kubeconfig],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    # The rollout would wait an hour at step 2: only the commands move it.
    canary = {"steps": [{"weight": 20}, {"pause": {"duration": "1h"}}, {"weight": 60}]}
    stable = deploy_stable(kubectl, namespace, canary)
    revision = start_canary(kubectl, namespace, canary)
    generation = wait_status(kubectl, namespace, NAME, canaryWeight=20)["metadata"]["generation"]

    modeldeploy("pause")
    body = wait_status(kubectl, namespace, NAME, phase="Paused")
    assert body["status"]["canaryWeight"] == 20
    assert tool_statuses(body) == ("Current", "Suspended")
    assert body["status"]["rollout"]["lastHandledRequest"].startswith("pause@")
    report = modeldeploy("status")
    assert re.search(r"^Phase:\s+Paused\s", report, re.MULTILINE), report
    assert re.search(r"^Canary:\s+" + revision + r"\s+1/1 ready, weight 20%", report, re.MULTILINE), report
    assert re.search(r"^>\s+2\s+pause 1h$", report, re.MULTILINE), report

    modeldeploy("resume")
    body = wait_status(kubectl, namespace, NAME, phase="Progressing", canaryWeight=20)
    assert body["status"]["rollout"]["step"] == 1
    assert body["status"]["rollout"]["lastHandledRequest"].startswith("resume@")

    modeldeploy("promote")
    body = wait_status(kubectl, namespace, NAME, phase="Stable", stableRevision=revision)
    assert [entry["revision"] for entry in body["status"]["history"]] == [stable, revision]
    assert tool_statuses(body) == ("Current", "Healthy")
    assert body["metadata"]["generation"] == generation

    third = start_canary(kubectl, namespace, canary, image="ghcr.io/example/server:3")
    generation = wait_status(kubectl, namespace, NAME, canaryWeight=20)["metadata"]["generation"]
    modeldeploy("abort")
    body = wait_condition(kubectl, namespace, NAME, "Degraded", "True", reason="Aborted")
    assert (body["status"]["phase"], body["status"]["canaryRevision"]) == ("RolledBack", third)
    assert body["metadata"]["generation"] == generation
    wait_status(kubectl, namespace, NAME, canaryWeight=0)
    assert events(kubectl, namespace, "RequestIgnored") == []
