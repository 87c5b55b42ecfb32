"""The status policy: from one pass's observations to every condition, in milliseconds."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import pytest

from modeldeploy.api.models import (
    Condition,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    RevisionStatus,
    RolloutStatus,
)
from modeldeploy.render.revision import RuntimeTemplate
from modeldeploy.rollout.machine import RevisionReadiness
from modeldeploy.status.compute import Observations, Problem, compute_status
from modeldeploy.status.conditions import REGISTRY
from modeldeploy.storage.termination import ModelState

STABLE, CANARY = "aaaaaaaaaa", "bbbbbbbbbb"
STAMP, LATER = "2026-12-04T10:00:00Z", "2026-12-04T10:05:00Z"
QUOTA = 'pods "m-aaaaaaaaaa-x" is forbidden: exceeded quota: small, requested: cpu=1, used: cpu=0, limited: cpu=100m'


def spec(**rollout: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {"model": {"uri": "s3://models/m/"}, "runtime": {"image": "server:1"}, "rollout": rollout}
    )


def decided(
    phase: str = "Stable", canary: str | None = None, *conditions: Condition, message: str = ""
) -> ModelDeploymentStatus:
    return ModelDeploymentStatus(
        phase=phase,  # type: ignore[arg-type]
        stable_revision=STABLE,
        canary_revision=canary,
        rollout=RolloutStatus(message=message),
        conditions=list(conditions),
    )


def pod(revision: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"m-{revision}-1",
            "namespace": "ml",
            "labels": {"modeldeploy.io/revision": revision},
        },
        "status": status,
    }


UNSCHEDULABLE = pod(
    STABLE,
    phase="Pending",
    conditions=[
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/2 nodes are available: 2 Insufficient nvidia.com/gpu.",
        }
    ],
)


def seen(**changes: Any) -> Observations:
    base = Observations(
        spec=spec(),
        generation=2,
        previous=ModelDeploymentStatus(),
        decided=decided(),
        revisions={STABLE: RevisionReadiness(ready=2, desired=2)},
        replica_failures={},
        pods=[],
        model=ModelState(True, "Fetched", "fetched"),
        model_uri="s3://models/m/",
        provider="gateway-api",
        routed_weight=None,
    )
    return replace(base, **changes)


def verdicts(observations: Observations) -> dict[str, tuple[str, str]]:
    status = compute_status(observations, STAMP).status
    return {c.type: (c.status, c.reason) for c in status.conditions}


def message_of(observations: Observations, kind: str) -> str:
    status = compute_status(observations, STAMP).status
    return next(c.message for c in status.conditions if c.type == kind)


def test_serving_is_ready_and_neither_reconciling_nor_stalled() -> None:
    result = verdicts(seen())
    assert result["Ready"] == ("True", "Serving")
    assert result["Reconciling"][0] == result["Stalled"][0] == "False"
    assert result["Degraded"] == ("False", "Healthy")


def test_conditions_come_in_registry_order_with_observed_generation() -> None:
    status = compute_status(seen(), STAMP).status
    assert [c.type for c in status.conditions] == [k.name for k in REGISTRY if k.name != "GPUCapacity"]
    assert status.observed_generation == 2
    assert status.ready == "True"


def test_before_the_first_deployment_exists_it_is_reconciling() -> None:
    result = verdicts(seen(revisions={}))
    assert result["Ready"] == ("False", "Creating")
    assert result["Reconciling"] == ("True", "Creating")
    assert result["Stalled"][0] == "False"


def test_pods_refused_by_admission_are_a_stall_with_the_api_servers_words() -> None:
    observations = seen(
        revisions={STABLE: RevisionReadiness(ready=0, desired=1)}, replica_failures={STABLE: QUOTA}
    )
    result = verdicts(observations)
    assert result["Ready"] == ("False", "ReplicaFailure")
    assert result["Stalled"] == ("True", "ReplicaFailure")
    assert result["Reconciling"][0] == "False"
    assert result["Degraded"] == ("True", "ReplicaFailure")
    assert result["Progressing"][0] == "False"
    assert message_of(observations, "Stalled") == f"pods of revision {STABLE} are refused: {QUOTA}"


def test_a_refused_apply_stalls_and_is_not_progressing() -> None:
    refused = Problem(
        "Ready", "ApplyRefused", "Deployment m-aaaaaaaaaa: spec.template.spec.nodeSelector: Invalid value"
    )
    waiting = Condition(type="Progressing", status="True", reason="WaitingForReplicas", message="waiting")
    result = verdicts(seen(problems=(refused,), decided=decided("Stable", None, waiting)))
    assert result["Ready"] == ("False", "ApplyRefused")
    assert result["Stalled"] == ("True", "ApplyRefused")
    assert result["Progressing"] == ("False", "ApplyRefused")
    assert result["Degraded"] == ("True", "ApplyRefused")
    assert result["Reconciling"][0] == "False"


def test_unschedulable_pods_within_the_deadline_are_reconciling_with_the_schedulers_reason() -> None:
    observations = seen(revisions={STABLE: RevisionReadiness(ready=0, desired=1)}, pods=[UNSCHEDULABLE])
    result = verdicts(observations)
    assert result["Reconciling"] == ("True", result["Ready"][1])
    assert "Insufficient nvidia.com/gpu" in message_of(observations, "Ready")
    assert result["Stalled"][0] == "False"


def test_past_the_deadline_it_is_stalled_with_the_last_reason() -> None:
    missed = f"revision {STABLE} did not have all replicas ready within 1200s (0/1 ready)"
    observations = seen(
        decided=decided("Stalled", message=missed),
        revisions={STABLE: RevisionReadiness(ready=0, desired=1)},
        pods=[UNSCHEDULABLE],
    )
    result = verdicts(observations)
    assert result["Stalled"] == ("True", "ProgressDeadlineExceeded")
    assert message_of(observations, "Stalled").startswith(missed + ": ")
    assert "Insufficient nvidia.com/gpu" in message_of(observations, "Stalled")
    assert result["Reconciling"][0] == "False"
    assert compute_status(observations, STAMP).status.phase == "Stalled"


def test_a_manual_canary_held_at_its_weight_has_reached_the_spec() -> None:
    observations = seen(
        spec=spec(canary={"weight": 20}),
        decided=decided("Progressing", CANARY),
        revisions={STABLE: RevisionReadiness(2, 2), CANARY: RevisionReadiness(1, 1)},
        routed_weight=20,
    )
    result = verdicts(observations)
    assert result["Reconciling"] == ("False", "CanaryHeld")
    assert result["Ready"][0] == "True"


def test_a_manual_canary_not_yet_routed_or_ready_is_reconciling() -> None:
    base = seen(
        spec=spec(canary={"weight": 20}),
        decided=decided("Progressing", CANARY),
        revisions={STABLE: RevisionReadiness(2, 2), CANARY: RevisionReadiness(0, 1)},
        routed_weight=0,
    )
    assert verdicts(base)["Reconciling"] == ("True", "Progressing")
    ready_not_routed = replace(
        base, revisions={STABLE: RevisionReadiness(2, 2), CANARY: RevisionReadiness(1, 1)}
    )
    assert verdicts(ready_not_routed)["Reconciling"] == ("True", "Progressing")


def test_an_automated_canary_in_flight_is_reconciling_and_paused_is_not() -> None:
    steps = {"canary": {"steps": [{"weight": 10}, {"pause": {}}]}}
    flying = seen(spec=spec(**steps), decided=decided("Progressing", CANARY), routed_weight=10)
    assert verdicts(flying)["Reconciling"] == ("True", "Progressing")
    paused = replace(
        flying, decided=decided("Paused", CANARY, message="step 2/2: paused until `modeldeploy resume`")
    )
    assert verdicts(paused)["Reconciling"] == ("False", "Paused")
    assert verdicts(paused)["Stalled"][0] == "False"


def test_a_rolled_back_canary_is_stalled_until_the_spec_changes_while_stable_serves() -> None:
    ending = Condition(
        type="Degraded", status="True", reason="AnalysisFailed", message="step 2/3: error rate 0.2"
    )
    observations = seen(decided=decided("RolledBack", CANARY, ending))
    result = verdicts(observations)
    assert result["Stalled"] == ("True", "AnalysisFailed")
    assert result["Degraded"] == ("True", "AnalysisFailed")
    assert result["Ready"][0] == "True"
    assert "a change of spec starts a new rollout" in message_of(observations, "Stalled")


def test_a_verdict_that_holds_keeps_its_transition_time() -> None:
    first = compute_status(seen(), STAMP).status
    again = compute_status(seen(previous=first), LATER).status
    assert again.conditions == first.conditions


def test_one_event_per_transition_of_ready_and_of_a_stall() -> None:
    creating = compute_status(seen(revisions={}), STAMP)
    assert creating.transitions == ()
    serving = compute_status(seen(previous=creating.status), STAMP)
    assert [(v.type.name, v.status, v.abnormal) for v in serving.transitions] == [("Ready", "True", False)]
    assert compute_status(seen(previous=serving.status), STAMP).transitions == ()
    refused = seen(
        previous=serving.status,
        revisions={STABLE: RevisionReadiness(0, 1)},
        replica_failures={STABLE: QUOTA},
    )
    told = compute_status(refused, STAMP).transitions
    assert [(v.type.name, v.status, v.reason, v.abnormal) for v in told] == [
        ("Ready", "False", "ReplicaFailure", True)
    ], "Ready fell for the reason that stalls: one Event says both"


@pytest.mark.parametrize(
    ("phase", "ready", "failure", "problem", "model_ready"),
    list(
        itertools.product(
            ["Stable", "Progressing", "Paused", "Promoting", "RolledBack", "Failed", "Stalled"],
            [0, 1],
            [None, QUOTA],
            [
                None,
                Problem("Ready", "ApplyRefused", "refused"),
                Problem("TrafficReady", "InvalidTraffic", "bad"),
            ],
            [True, False, None],
        )
    ),
)
def test_not_ready_is_always_explained_as_reconciling_stalled_or_paused(
    phase: str, ready: int, failure: str | None, problem: Problem | None, model_ready: bool | None
) -> None:
    """What Flux and Argo CD rely on: Ready=False never comes with Reconciling and Stalled
    both False (the object would look done while it is not), and the two are never both True."""
    observations = seen(
        decided=decided(phase, CANARY if phase != "Stable" else None),
        revisions={STABLE: RevisionReadiness(ready, 1), CANARY: RevisionReadiness(ready, 1)},
        replica_failures={STABLE: failure} if failure else {},
        problems=(problem,) if problem else (),
        model=ModelState(model_ready, "Fetching" if model_ready is None else "Loaded", ""),
    )
    result = verdicts(observations)
    busy, stalled = result["Reconciling"][0] == "True", result["Stalled"][0] == "True"
    assert not (busy and stalled)
    if result["Ready"][0] != "True":
        assert busy or stalled or phase == "Paused"


def test_a_stall_shows_as_the_phase_except_in_a_paused_or_promoting_rollout() -> None:
    refused = {"revisions": {STABLE: RevisionReadiness(0, 1)}, "replica_failures": {STABLE: QUOTA}}
    assert compute_status(seen(**refused), STAMP).status.phase == "Stalled"
    for phase in ("Paused", "Promoting", "RolledBack"):
        assert compute_status(seen(decided=decided(phase, CANARY), **refused), STAMP).status.phase == phase


def test_each_revision_says_which_runtime_template_and_generation_it_was_made_from() -> None:
    revisions = [RevisionStatus(name=STABLE, role="stable"), RevisionStatus(name=CANARY, role="canary")]
    status = compute_status(
        seen(
            decided=decided("Progressing", CANARY).model_copy(update={"revisions": revisions}),
            templates={CANARY: RuntimeTemplate(name="vllm", generation=3, source="cccccccccc")},
        ),
        STAMP,
    ).status
    runtimes = {r.name: (r.runtime, r.runtime_generation) for r in status.revisions}
    # The stable revision was written with its own image: no template.
    assert runtimes == {STABLE: (None, None), CANARY: ("vllm", 3)}
