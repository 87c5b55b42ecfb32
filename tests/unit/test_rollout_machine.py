"""The rollout state machine, transition by transition: manual and automated canaries,
rolling and recreate, requests, and restarts."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from modeldeploy.api.models import AnalysisRun, ModelDeploymentStatus
from modeldeploy.render.revision import revision_of
from modeldeploy.rollout.machine import (
    ANALYSIS_RUNS_LIMIT,
    HISTORY_LIMIT,
    REQUEST_ANNOTATION,
    LiveRevision,
    Request,
    RevisionReadiness,
    decide,
)
from modeldeploy.rollout.timing import format_timestamp
from tests.unit.test_rollout_support import PROMETHEUS, SUCCESS_RATE, T0, World, reloaded, spec_of

AUTOMATED_STEPS = [
    {"weight": 10},
    {"pause": {"duration": "1m"}},
    {"analysis": {"count": 2}},
    {"weight": 50},
    {"pause": {}},
]
ANALYSIS = {"prometheus": PROMETHEUS, "interval": "30s", "metrics": [SUCCESS_RATE]}


def stable_world(**spec: object) -> World:
    world = World(spec_of(**spec))
    world.tick()
    return world


def automated_world(steps: list[dict] | None = None, analysis: dict | None = None, **spec: object) -> World:
    return stable_world(steps=steps or AUTOMATED_STEPS, analysis=analysis or ANALYSIS, **spec)


# --------------------------------------------------------------------------- requests


def test_a_request_round_trips_through_its_annotation() -> None:
    request = Request.issue("promote", T0)
    assert request.id == "promote@2025-03-01T12:00:00Z"
    assert request.annotation_patch() == {"metadata": {"annotations": {REQUEST_ANNOTATION: request.id}}}
    assert Request.parse(request.id) == request
    assert Request.parse(None) is None


@pytest.mark.parametrize("value", ["promote", "restart@2025-03-01T12:00:00Z", "pause@yesterday", "@"])
def test_a_malformed_request_is_refused_with_the_annotation_named(value: str) -> None:
    with pytest.raises(ValueError, match=REQUEST_ANNOTATION):
        Request.parse(value)


# --------------------------------------------------------------------------- first revision


def test_the_first_revision_is_stable_at_once() -> None:
    world = World(spec_of(weight=10), auto_ready=False)
    decision = world.tick()
    revision = revision_of(world.spec)

    assert world.status.phase == "Stable"
    assert world.status.stable_revision == revision
    assert world.status.canary_revision is None
    assert decision.canary_weight == 0
    assert decision.revisions == (LiveRevision(revision, "stable"),)
    assert [entry.revision for entry in world.status.history] == [revision]
    assert world.reasons() == ["NewRevision"]
    assert world.condition("Progressing")[:2] == ("True", "WaitingForReplicas")
    assert world.condition("Degraded")[0] == "False"

    world.set_ready(revision, 1)
    world.tick(5)
    assert world.condition("Progressing") == ("False", "Stable", f"revision {revision} is stable")


# --------------------------------------------------------------------------- rolling and recreate


@pytest.mark.parametrize("strategy", ["rolling", "recreate"])
def test_rolling_and_recreate_replace_the_revision_in_place(strategy: str) -> None:
    world = stable_world(strategy=strategy)
    old = world.status.stable_revision
    world.auto_ready = False
    new = world.change(**{"runtime.image": "server:2"})

    decision = world.tick()
    assert world.status.phase == "Progressing"
    assert world.status.stable_revision == new
    assert world.status.canary_revision is None
    assert decision.revisions == (LiveRevision(new, "stable"),)
    assert decision.canary_weight == 0
    assert world.condition("Progressing")[0] == "True"
    assert f"waiting for revision {new}" in world.status.rollout.message

    world.set_ready(new, 2, desired=3)
    world.tick(10)
    assert world.status.phase == "Progressing"

    world.set_ready(new, 3, desired=3)
    world.tick(10)
    assert world.status.phase == "Stable"
    assert [entry.revision for entry in world.status.history] == [old, new]
    assert world.events[-1].reason == "RolloutComplete"
    assert world.condition("Progressing")[0] == "False"


def test_switching_to_rolling_mid_canary_drops_the_canary() -> None:
    world = stable_world(weight=10)
    canary = world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.change(**{"rollout.strategy": "rolling"})

    decision = world.tick()
    assert world.status.canary_revision is None
    assert world.status.stable_revision == canary
    assert decision.revisions == (LiveRevision(canary, "stable"),)
    assert decision.canary_weight == 0


# --------------------------------------------------------------------------- manual canary


def test_a_manual_canary_gets_its_weight_only_once_it_has_ready_replicas() -> None:
    world = stable_world(weight=10)
    stable = world.status.stable_revision
    world.auto_ready = False
    canary = world.change(**{"runtime.image": "server:2"})

    decision = world.tick()
    assert world.status.phase == "Progressing"
    assert world.status.canary_revision == canary
    assert decision.revisions == (LiveRevision(stable, "stable"), LiveRevision(canary, "canary"))
    assert decision.canary_weight == 0
    assert (
        f"waiting for canary {canary} to have ready replicas (no Deployment yet)"
        in world.status.rollout.message
    )
    world.tick(5)
    assert f"waiting for canary {canary} to have ready replicas (0/1 ready)" in world.status.rollout.message
    assert world.condition("Progressing") == ("True", "Progressing", world.status.rollout.message)

    world.set_ready(canary, 1)
    assert world.tick(5).canary_weight == 10
    assert f"canary {canary} receives 10%" in world.status.rollout.message

    world.set_ready(canary, 0)
    assert world.tick(5).canary_weight == 0


def test_gitops_weight_edits_move_the_manual_canary() -> None:
    world = stable_world(weight=10)
    canary = world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.change(**{"rollout.canary.weight": 40})

    decision = world.tick()
    assert decision.canary_weight == 40
    assert world.events[-1].message == f"canary {canary}: weight 10% -> 40%"
    assert world.tick(1).events == ()


def test_weight_100_promotes_once_the_router_sends_it_all_traffic() -> None:
    world = stable_world(weight=10, delay=30)
    old = world.status.stable_revision
    canary = world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    world.change(**{"rollout.canary.weight": 100})

    decision = world.tick()
    assert world.status.phase == "Promoting"
    assert decision.canary_weight == 100
    assert "reports 10%" in world.status.rollout.message
    assert decision.requeue_after == 2.0

    decision = world.tick(1)
    assert world.status.phase == "Stable"
    assert world.status.stable_revision == canary
    assert world.status.canary_revision is None
    assert decision.canary_weight == 0
    assert decision.revisions == (LiveRevision(canary, "stable"), LiveRevision(old, "retiring"))
    assert decision.requeue_after == 30.0
    assert [entry.revision for entry in world.status.history] == [old, canary]
    assert world.status.history[-1].image == "server:2"
    assert world.reasons()[-3:] == ["Weight", "Promoting", "Promoted"]

    assert world.tick(29).revisions == (LiveRevision(canary, "stable"), LiveRevision(old, "retiring"))
    decision = world.tick(1)
    assert decision.revisions == (LiveRevision(canary, "stable"),)
    assert decision.requeue_after is None
    assert world.events[-1].reason == "RevisionRemoved"


def test_weight_100_waits_for_a_ready_canary() -> None:
    world = stable_world(weight=100)
    world.auto_ready = False
    canary = world.change(**{"runtime.image": "server:2"})
    world.tick()
    decision = world.tick(60)
    assert world.status.phase == "Progressing"
    assert decision.canary_weight == 0

    world.set_ready(canary, 1)
    world.tick(1)
    assert world.status.phase == "Promoting"
    world.tick(1)
    assert world.status.stable_revision == canary


def test_a_router_that_cannot_report_promotes_without_waiting() -> None:
    world = stable_world(weight=10)
    world.router_reports = False
    canary = world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.ask("promote")
    world.tick()
    assert world.status.stable_revision == canary
    assert world.reasons()[-2:] == ["Weight", "Promoted"]


def test_promote_request_promotes_and_acts_once() -> None:
    world = stable_world(weight=10)
    first = world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.ask("promote")
    world.tick()
    world.tick(1)
    assert world.status.stable_revision == first
    assert world.status.rollout.last_handled_request == world.request.id

    # The annotation stays on the object; the next canary must not be promoted by it.
    second = world.change(**{"runtime.image": "server:3"})
    world.tick(60)
    world.tick(60)
    assert world.status.phase == "Progressing"
    assert world.status.canary_revision == second


def test_abort_rolls_back_and_keeps_the_canary_scaled_to_zero_until_the_spec_changes() -> None:
    world = stable_world(weight=25)
    stable = world.status.stable_revision
    canary = world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.ask("abort")

    decision = world.tick(10)
    assert world.status.phase == "RolledBack"
    assert decision.canary_weight == 0
    assert decision.revisions == (
        LiveRevision(stable, "stable"),
        LiveRevision(canary, "canary", scaled_to_zero=True),
    )
    degraded = world.condition("Degraded")
    assert degraded[:2] == ("True", "Aborted")
    assert f"canary {canary} scaled to zero" in degraded[2]
    assert world.condition("Progressing")[:2] == ("False", "RolledBack")
    assert world.events[-1].type == "Warning"

    for _ in range(3):
        assert world.tick(600).revisions == decision.revisions
    assert world.status.phase == "RolledBack"

    third = world.change(**{"runtime.image": "server:3"})
    decision = world.tick(1)
    assert world.status.phase == "Progressing"
    assert world.status.canary_revision == third
    assert world.condition("Degraded")[0] == "False"
    # Nothing to drain: the rejected canary goes at once.
    assert decision.revisions == (LiveRevision(stable, "stable"), LiveRevision(third, "canary"))


def test_returning_the_spec_to_the_stable_revision_cancels_the_canary() -> None:
    world = stable_world(weight=10)
    stable = world.status.stable_revision
    canary = world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.change(**{"runtime.image": "server:1"})

    decision = world.tick(1)
    assert world.status.phase == "Stable"
    assert world.status.canary_revision is None
    assert decision.canary_weight == 0
    assert decision.revisions == (LiveRevision(stable, "stable"), LiveRevision(canary, "retiring"))
    assert world.events[-1].reason == "CanaryCancelled"


def test_a_third_revision_replaces_the_canary_in_flight() -> None:
    world = stable_world(weight=10)
    stable = world.status.stable_revision
    second = world.change(**{"runtime.image": "server:2"})
    world.tick()
    third = world.change(**{"runtime.image": "server:3"})

    decision = world.tick(1)
    assert world.status.canary_revision == third
    assert decision.revisions == (
        LiveRevision(stable, "stable"),
        LiveRevision(third, "canary"),
        LiveRevision(second, "retiring"),
    )
    assert "CanaryReplaced" in world.reasons()


def test_a_retiring_revision_brought_back_by_the_spec_is_not_removed() -> None:
    world = stable_world(weight=10)
    old = world.status.stable_revision
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.ask("promote")
    world.tick()
    world.tick(1)
    world.change(**{"runtime.image": "server:1"})

    decision = world.tick(1)
    assert world.status.canary_revision == old
    assert all(live.role != "retiring" for live in decision.revisions)


def test_pause_freezes_the_manual_weight_but_not_a_retreat() -> None:
    world = stable_world(weight=10)
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.ask("pause")
    world.tick()
    assert world.status.phase == "Paused"

    world.change(**{"rollout.canary.weight": 100})
    assert world.tick(60).canary_weight == 10
    assert world.status.phase == "Paused"
    world.change(**{"rollout.canary.weight": 5})
    assert world.tick(60).canary_weight == 5

    world.ask("resume")
    world.change(**{"rollout.canary.weight": 30})
    assert world.tick(1).canary_weight == 30
    assert world.status.phase == "Progressing"


@pytest.mark.parametrize(
    ("action", "why"),
    [
        ("promote", "no canary is in flight"),
        ("abort", "no canary is in flight"),
        ("pause", "no canary is in flight"),
        ("resume", "no canary is in flight"),
    ],
)
def test_requests_without_a_canary_are_ignored_with_an_event(action: str, why: str) -> None:
    world = stable_world()
    world.ask(action)
    world.tick()
    assert world.status.phase == "Stable"
    assert world.events[-1].reason == "RequestIgnored"
    assert world.events[-1].message == f"{world.request.id} ignored: {why}"


def test_requests_that_do_not_apply_to_the_phase_are_ignored() -> None:
    world = stable_world(weight=10)
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.ask("resume")
    world.tick(1)
    assert world.events[-1].message.endswith("ignored: the rollout is not paused")
    world.ask("pause")
    world.tick(1)
    world.ask("pause")
    world.tick(1)
    assert world.events[-1].message.endswith("ignored: the rollout is already paused")
    world.ask("promote")
    world.tick(1)
    world.ask("pause")
    world.tick(1)
    assert f"{world.request.id} ignored: the canary is already being promoted" in [
        e.message for e in world.events
    ]


# --------------------------------------------------------------------------- automated canary


def test_an_automated_rollout_walks_its_steps_and_promotes() -> None:
    # Metrics only on the analysis step: no background analysis during the pauses.
    world = automated_world(
        steps=[
            {**step, "analysis": {"count": 2, "metrics": [SUCCESS_RATE]}} if "analysis" in step else step
            for step in AUTOMATED_STEPS
        ],
        analysis={"prometheus": PROMETHEUS, "interval": "30s"},
    )
    old = world.status.stable_revision
    canary = world.change(**{"runtime.image": "server:2"})

    decision = world.tick()  # the canary's Deployment is created, not ready yet
    assert (world.status.phase, world.status.rollout.step, decision.canary_weight) == ("Progressing", 0, 0)
    assert "step 1/5: waiting for canary" in world.status.rollout.message

    decision = world.tick(3)  # ready: weight 10, then the pause starts
    assert (world.status.rollout.step, decision.canary_weight) == (1, 10)
    assert world.status.rollout.message == "step 2/5: pausing until 2025-03-01T12:01:03Z"
    assert decision.requeue_after == 60.0

    decision = world.tick(60)  # pause over: analysis step, first measurement due in 30 s
    assert world.status.rollout.step == 2
    assert decision.requeue_after == 30.0
    assert world.measurements_taken == 0

    decision = world.tick(30)
    assert world.measurements_taken == 1
    assert world.status.rollout.measurements == 1
    assert decision.requeue_after == 30.0
    assert world.status.rollout.analysis_runs[-1].step == 2

    decision = world.tick(30)  # second measurement: weight 50, then a pause until resumed
    assert (world.status.phase, world.status.rollout.step, decision.canary_weight) == ("Paused", 4, 50)
    assert world.status.rollout.message == "step 5/5: paused until `modeldeploy resume`"
    assert decision.requeue_after is None

    assert world.tick(3600).events == ()
    assert world.status.phase == "Paused"

    world.ask("resume")
    decision = world.tick(1)
    assert world.status.phase == "Promoting"
    assert decision.canary_weight == 100
    world.tick(1)
    assert world.status.phase == "Stable"
    assert world.status.stable_revision == canary
    assert [live.role for live in world.last.revisions] == ["stable", "retiring"]
    assert world.last.revisions[1].revision == old
    step_events = [event.message for event in world.events if event.reason == "StepStarted"]
    assert step_events == [
        "step 2/5: pause 1m",
        "step 3/5: analysis success-rate: 2 x every 30s",
        "step 4/5: weight 50%",
        "step 5/5: pause until resumed",
    ]


def test_failed_analysis_beyond_the_limit_rolls_back_at_once() -> None:
    world = automated_world(
        steps=[{"weight": 20}, {"analysis": {"count": 5}}],
        analysis={**ANALYSIS, "failureLimit": 1},
    )
    stable = world.status.stable_revision
    canary = world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    world.verdict = "Failed"

    world.tick(30)
    assert world.status.phase == "Progressing"
    assert world.events[-1].reason == "AnalysisFailed"
    assert world.events[-1].type == "Warning"

    decision = world.tick(30)
    assert world.status.phase == "RolledBack"
    assert decision.canary_weight == 0
    assert decision.revisions == (
        LiveRevision(stable, "stable"),
        LiveRevision(canary, "canary", scaled_to_zero=True),
    )
    status, reason, message = world.condition("Degraded")
    assert (status, reason) == ("True", "AnalysisFailed")
    assert "success-rate = 0.9, below min 0.99" in message
    assert "2 failed measurements, limit 1" in message
    assert (world.events[-1].type, world.events[-1].reason) == ("Warning", "RolledBack")
    assert world.tick(600).events == ()


def test_failures_within_the_limit_do_not_stop_the_rollout() -> None:
    world = automated_world(
        steps=[{"weight": 20}, {"analysis": {"count": 3}}], analysis={**ANALYSIS, "failureLimit": 1}
    )
    canary = world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    world.verdict = "Failed"
    world.tick(30)
    world.verdict = "Successful"
    world.tick(30)
    world.tick(30)
    world.tick(1)
    assert world.status.stable_revision == canary


def test_inconclusive_analysis_beyond_the_limit_fails_and_never_promotes() -> None:
    world = automated_world(
        steps=[{"weight": 20}, {"analysis": {"count": 2}}],
        analysis={**ANALYSIS, "inconclusiveLimit": 2},
    )
    stable = world.status.stable_revision
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    world.verdict = "Inconclusive"
    for _ in range(3):
        world.tick(30)

    assert world.status.phase == "Failed"
    assert world.status.stable_revision == stable
    assert world.last.canary_weight == 0
    status, reason, message = world.condition("Degraded")
    assert (status, reason) == ("True", "AnalysisInconclusive")
    assert "no data" in message
    assert "the canary is not promoted" in message
    assert world.events[-1].reason == "RolloutFailed"
    for _ in range(5):
        world.tick(600)
    assert world.status.phase == "Failed"


def test_an_analysis_step_takes_unset_fields_from_the_canary_analysis() -> None:
    world = automated_world(
        steps=[{"weight": 20}, {"analysis": {"interval": "2m"}}],
        analysis={**ANALYSIS, "count": 1},
    )
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    decision = world.tick(1)
    assert decision.requeue_after == 120.0
    world.tick(120)
    assert world.status.phase == "Promoting"


def test_every_analysis_step_takes_its_own_measurements() -> None:
    world = automated_world(
        steps=[{"weight": 10}, {"analysis": {"count": 1}}, {"weight": 20}, {"analysis": {"count": 2}}]
    )
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    for _ in range(3):
        world.tick(30)
    assert world.measurements_taken == 3
    assert [run.step for run in world.status.rollout.analysis_runs] == [1, 3, 3]
    assert world.status.phase == "Promoting"


def test_the_canary_analysis_runs_in_the_background_of_timed_pauses() -> None:
    world = automated_world(steps=[{"weight": 20}, {"pause": {"duration": "10m"}}], analysis=ANALYSIS)
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    world.verdict = "Failed"
    world.tick(30)
    assert world.status.phase == "Progressing"
    world.tick(30)
    assert world.status.phase == "RolledBack"
    assert world.measurements_taken == 2


@pytest.mark.parametrize(
    ("steps", "analysis", "problem"),
    [
        (
            [{"weight": 20}, {"pause": {"duration": "5m"}}],
            {"interval": "30s", "metrics": [SUCCESS_RATE]},
            "no Prometheus address",
        ),
        (
            [
                {
                    "analysis": {
                        "metrics": [{"name": "errors", "query": "sum(x{rev='{{ revison }}'})", "max": 1.0}]
                    }
                }
            ],
            ANALYSIS,
            "unknown placeholder revison",
        ),
        (
            # Under gateway-api the provider does not say which data plane counts the requests.
            [
                {"weight": 20},
                {"analysis": {"metrics": [{"name": "ok", "template": "success-rate", "min": 0.9}]}},
            ],
            ANALYSIS,
            "source",
        ),
    ],
)
def test_an_analysis_that_cannot_run_fails_the_rollout_at_once(
    steps: list, analysis: dict, problem: str
) -> None:
    world = automated_world(steps=steps, analysis=analysis)
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    assert world.status.phase == "Failed"
    status, reason, message = world.condition("Degraded")
    assert (status, reason) == ("True", "InvalidAnalysis")
    assert problem in message
    assert world.measurements_taken == 0


def test_steps_hold_while_the_canary_is_not_ready() -> None:
    world = automated_world(steps=[{"weight": 20}, {"pause": {"duration": "1m"}}, {"weight": 40}])
    canary = world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    assert world.status.rollout.step == 1

    world.set_ready(canary, 0)
    decision = world.tick(120)
    assert decision.canary_weight == 0
    assert world.status.rollout.step == 1
    assert "waiting for canary" in world.status.rollout.message

    world.set_ready(canary, 1)
    decision = world.tick(1)
    assert world.status.phase == "Promoting"


def test_pause_request_stops_the_clock_and_resume_restarts_the_step_timer() -> None:
    world = automated_world(steps=[{"weight": 20}, {"analysis": {"count": 2}}])
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    world.tick(30)
    assert world.status.rollout.measurements == 1

    world.ask("pause")
    decision = world.tick(10)
    assert world.status.phase == "Paused"
    assert decision.canary_weight == 20
    world.tick(600)
    assert world.measurements_taken == 1

    world.ask("resume")
    decision = world.tick(1)
    assert world.status.phase == "Progressing"
    assert world.status.rollout.measurements == 1
    assert decision.requeue_after == 30.0


def test_promote_request_skips_the_remaining_steps() -> None:
    world = automated_world()
    canary = world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    world.ask("promote")
    world.tick(1)
    world.tick(1)
    assert world.status.stable_revision == canary


def test_abort_during_an_automated_rollout_rolls_back() -> None:
    world = automated_world()
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    world.ask("abort")
    decision = world.tick(1)
    assert world.status.phase == "RolledBack"
    assert decision.canary_weight == 0


def test_measurements_older_than_the_due_time_are_not_counted() -> None:
    world = automated_world(steps=[{"weight": 20}, {"analysis": {"count": 2}}])
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    world.now += timedelta(seconds=30)
    stale = AnalysisRun(
        metric="success-rate",
        value=0.1,
        verdict="Failed",
        time=format_timestamp(world.now - timedelta(seconds=31)),
    )
    observations = replace(world.observations(), measurements=(stale,))
    decision = decide(world.spec, world.status, observations, world.now)
    assert decision.analysis_due is not None
    assert decision.status.rollout.measurements == 0


# --------------------------------------------------------------------------- restarts and bounds


def test_a_restarted_operator_carries_on_at_the_same_step() -> None:
    """Two operators: one runs straight through, the other is killed and replaced (status
    read back from JSON, nothing else kept) before every tick. They must agree exactly."""
    straight = automated_world()
    straight.change(**{"runtime.image": "server:2"})
    restarted = World(straight.spec, now=straight.now, status=straight.status, live=dict(straight.live))
    for seconds in [0, 1, 30, 30, 30, 30, 30, 5]:
        a = straight.tick(seconds)
        restarted = World(
            restarted.spec,
            now=restarted.now,
            status=ModelDeploymentStatus.model_validate_json(restarted.status.model_dump_json(by_alias=True)),
            live=dict(restarted.live),
            routed=restarted.routed,
            measurements_taken=restarted.measurements_taken,
        )
        b = restarted.tick(seconds)
        assert a == b
    assert straight.status.phase == "Paused"
    starts = [event.message for event in straight.events if event.reason == "StepStarted"]
    assert len(starts) == len(set(starts)) == 4


def test_history_and_analysis_runs_are_bounded() -> None:
    world = automated_world(
        steps=[{"weight": 20}, {"analysis": {"count": 20}}],
        analysis={**ANALYSIS, "metrics": [SUCCESS_RATE, {**SUCCESS_RATE, "name": "also-success"}]},
    )
    for image in range(2, 14):
        world.change(**{"runtime.image": f"server:{image}"})
        world.tick()
        world.ask("promote")
        world.tick(1)
        world.tick(1)
    assert len(world.status.history) == HISTORY_LIMIT
    assert world.status.history[-1].image == "server:13"

    world.change(**{"runtime.image": "server:99"})
    world.tick()
    world.tick(1)
    for _ in range(8):
        world.tick(30)
    assert world.status.rollout.measurements == 8
    assert len(world.status.rollout.analysis_runs) == ANALYSIS_RUNS_LIMIT


def test_conditions_keep_their_transition_time_while_their_status_holds() -> None:
    world = stable_world(weight=10)
    world.change(**{"runtime.image": "server:2"})
    world.tick(60)
    first = next(c for c in world.status.conditions if c.type == "Progressing")
    world.change(**{"rollout.canary.weight": 30})
    world.tick(60)
    later = next(c for c in world.status.conditions if c.type == "Progressing")
    assert first.status == later.status == "True"
    assert later.last_transition_time == first.last_transition_time
    assert later.message != first.message


def test_a_steady_state_decides_nothing_new() -> None:
    world = stable_world(weight=10)
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    settled = world.tick(1)
    again = decide(world.spec, reloaded(world.status), world.observations(), world.now)
    assert again.events == ()
    assert again.status == settled.status


def test_other_conditions_are_left_alone() -> None:
    world = stable_world()
    world.status.conditions.append(
        world.status.conditions[0].model_copy(update={"type": "Ready", "reason": "Controller"})
    )
    world.tick(1)
    assert {c.type for c in world.status.conditions} == {"Progressing", "Degraded", "Ready"}


def test_revision_status_reports_roles_and_replicas() -> None:
    world = stable_world(weight=10)
    canary = world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.live[canary] = RevisionReadiness(ready=2, desired=3)
    world.tick(1)
    assert [(r.name, r.role, r.ready_replicas, r.desired_replicas) for r in world.status.revisions] == [
        (world.status.stable_revision, "stable", 1, 1),
        (canary, "canary", 2, 3),
    ]


# --------------------------------------------------------------------------- progress deadline

DEADLINE = 600 + 600  # a Deployment's default plus the default startupTimeoutSeconds


def test_a_revision_never_ready_is_stalled_at_its_deadline_and_recovers_by_itself() -> None:
    world = World(spec_of(), auto_ready=False)
    world.tick()
    revision = revision_of(world.spec)
    world.tick(DEADLINE - 1)
    assert world.status.phase == "Stable"
    assert world.last is not None and world.last.requeue_after == pytest.approx(1)

    world.tick(1)
    assert world.status.phase == "Stalled"
    assert world.status.rollout is not None
    assert (
        world.status.rollout.message
        == f"revision {revision} did not have all replicas ready within {DEADLINE}s (0/1 ready)"
    )
    world.tick(60)
    assert world.reasons().count("ProgressDeadlineExceeded") == 1, "one event per stall"

    world.set_ready(revision, 1)
    world.tick(5)
    assert world.status.phase == "Stable"
    assert [entry.revision for entry in world.status.history] == [revision], "not recorded twice"


def test_an_automated_canary_never_ready_rolls_back_at_its_deadline() -> None:
    world = stable_world(steps=[{"weight": 20}, {"pause": {"duration": "1h"}}])
    world.auto_ready = False
    canary = world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(DEADLINE)
    assert world.status.phase == "RolledBack"
    assert world.condition("Degraded")[1] == "ProgressDeadlineExceeded"
    assert world.status.canary_revision == canary


def test_a_manual_canary_never_ready_is_stalled_and_stays_in_flight() -> None:
    world = stable_world(weight=20)
    world.auto_ready = False
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(DEADLINE)
    assert world.status.phase == "Stalled"
    world.ask("promote")
    world.tick(1)
    assert world.status.phase == "Promoting", "a stalled canary is still in flight for requests"


def test_a_new_generation_restarts_the_deadline() -> None:
    world = World(spec_of(), auto_ready=False)
    world.tick()
    world.tick(DEADLINE)
    assert world.status.phase == "Stalled"
    world.generation = 2
    world.tick(1)
    assert world.status.phase == "Stable"


def test_a_new_revision_replaces_a_stable_that_serves_nothing_instead_of_canarying_beside_it() -> None:
    world = World(spec_of(weight=20), auto_ready=False)
    world.tick()
    old = world.status.stable_revision
    new = world.change(**{"runtime.image": "server:2"})
    world.tick(1)
    assert (world.status.stable_revision, world.status.canary_revision) == (new, None)
    assert world.status.phase == "Progressing"
    assert (
        world.events[-1].message
        == f"revision {new} replaces {old} in place ({old} serves nothing (0/1 ready))"
    )
    world.set_ready(new, 1)
    world.tick(1)
    assert world.status.phase == "Stable"
