"""Properties of the rollout state machine under arbitrary histories: metric results,
readiness flips, requests, spec edits, router read-back and restarts (every tick reads the
status back from JSON), with time moving on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from modeldeploy.render.revision import revision_of
from modeldeploy.rollout.machine import IN_FLIGHT, Action, Decision, RevisionReadiness, decide
from modeldeploy.rollout.steps import waits_for_resume, weight_at
from tests.unit.test_rollout_support import PROMETHEUS, SUCCESS_RATE, Verdict, World, spec_of

VERDICTS: list[Verdict] = ["Successful", "Failed", "Inconclusive"]
ROLLOUT_STARTS = {"NewRevision", "CanaryReplaced", "CanaryCancelled"}
DRIVE_TICKS = 100


@dataclass(frozen=True)
class Advance:
    seconds: int


@dataclass(frozen=True)
class SetCanaryReady:
    ready: bool


@dataclass(frozen=True)
class Ask:
    action: Action


@dataclass(frozen=True)
class Measure:
    verdict: Verdict


@dataclass(frozen=True)
class RouterReports:
    reports: bool


@dataclass(frozen=True)
class ChangeImage:
    image: str


@dataclass(frozen=True)
class ChangeWeight:
    weight: int


Operation = Advance | SetCanaryReady | Ask | Measure | RouterReports | ChangeImage | ChangeWeight

step_strategy = st.one_of(
    st.builds(lambda w: {"weight": w}, st.sampled_from([0, 10, 25, 50, 100])),
    st.builds(lambda d: {"pause": {"duration": d}}, st.sampled_from(["30s", "2m", "1h"])),
    st.just({"pause": {}}),
    st.builds(lambda n: {"analysis": {"count": n}}, st.integers(1, 3)),
)


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    steps = draw(st.lists(step_strategy, max_size=6))
    weights = iter(sorted(step["weight"] for step in steps if "weight" in step))
    steps = [{"weight": next(weights)} if "weight" in step else step for step in steps]
    analysis: dict[str, Any] = {
        "prometheus": PROMETHEUS,
        "interval": draw(st.sampled_from(["10s", "1m"])),
        "failureLimit": draw(st.integers(0, 2)),
        "inconclusiveLimit": draw(st.integers(0, 2)),
    }
    if not steps or draw(st.booleans()) or any("analysis" in step for step in steps):
        analysis["metrics"] = [SUCCESS_RATE]
    return {"weight": draw(st.sampled_from([0, 10, 50, 100])), "steps": steps, "analysis": analysis}


operations = st.lists(
    st.one_of(
        st.builds(Advance, st.sampled_from([0, 1, 5, 10, 30, 61, 120, 600])),
        st.builds(SetCanaryReady, st.booleans()),
        st.builds(Ask, st.sampled_from(["promote", "abort", "pause", "resume"])),
        st.builds(Measure, st.sampled_from(VERDICTS)),
        st.builds(RouterReports, st.booleans()),
        st.builds(ChangeImage, st.sampled_from(["server:1", "server:2", "server:3"])),
        st.builds(ChangeWeight, st.sampled_from([0, 10, 50, 100])),
    ),
    max_size=40,
)


def apply(world: World, operation: Operation) -> int:
    """Carry out one operation; returns the seconds the next tick advances."""
    match operation:
        case Advance(seconds):
            return seconds
        case SetCanaryReady(ready):
            canary = world.status.canary_revision
            if canary is not None and canary in world.live and world.live[canary].desired:
                world.set_ready(canary, int(ready))
        case Ask(action):
            world.ask(action)
        case Measure(verdict):
            world.verdict = verdict
        case RouterReports(reports):
            world.router_reports = reports
        case ChangeImage(image):
            world.change(**{"runtime.image": image})
        case ChangeWeight(weight):
            world.change(**{"rollout.canary.weight": weight})
    return 0


def checked_tick(world: World, seconds: int) -> Decision:
    """A tick, with the invariants every decision must keep."""
    observations = world.observations()
    before = world.status
    held = before.rollout.weight if before.rollout else 0
    decision = world.tick(seconds)
    status = decision.status
    steps = world.spec.rollout.canary.steps

    if decision.canary_weight > 0:
        canary = status.canary_revision
        assert canary is not None and status.phase in IN_FLIGHT
        assert observations.live[canary].serving, "weight routed to a canary without ready replicas"
    if status.phase == "Promoting":
        bound = 100
    elif steps:
        bound = weight_at(steps, status.rollout.step)
    elif status.phase == "Paused":
        bound = held
    else:
        bound = world.spec.rollout.canary.weight
    assert decision.canary_weight <= bound, f"weight {decision.canary_weight} above {bound} in {status.phase}"

    # The tick decided on the status read back from JSON, as a restarted operator would; the
    # in-memory status must give the same decision (when no measurement came in between).
    direct = decide(world.spec, before, observations, world.now)
    if direct.analysis_due is None:
        assert direct == decision
    return decision


def steps_are_never_repeated_or_skipped(world: World) -> None:
    started: list[int] = []
    for happened in world.events:
        if happened.reason in ROLLOUT_STARTS:
            started = []
        elif happened.reason == "StepStarted":
            index = int(re.match(r"step (\d+)/", happened.message).group(1))
            assert index == (started[-1] + 1 if started else 2), f"step {index} after {started}"
            started.append(index)


def drive(world: World, nudge: bool) -> None:
    """Let time pass with a healthy cluster. Without a nudge no one types; with one, someone
    resumes every pause and promotes a manual canary (which no clock ever promotes)."""
    world.router_reports = True
    world.auto_ready = True
    manual = not world.spec.rollout.canary.steps
    for _ in range(DRIVE_TICKS):
        phase = world.status.phase
        if nudge and phase == "Paused":
            world.ask("resume")
        elif nudge and manual and phase == "Progressing":
            world.ask("promote")
        canary = world.status.canary_revision
        if canary is not None and canary in world.live and world.live[canary].desired:
            world.live[canary] = RevisionReadiness(ready=1, desired=1)
        checked_tick(world, 300)
        if world.status.phase in ("Stable", "RolledBack", "Failed"):
            return
        if not nudge and (world.status.phase == "Paused" or manual):
            return


def paused_legitimately(world: World) -> bool:
    rollout = world.status.rollout
    steps = world.spec.rollout.canary.steps
    asked = rollout.last_handled_request is not None and rollout.last_handled_request.startswith("pause@")
    return asked or (rollout.step < len(steps) and waits_for_resume(steps[rollout.step]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    canary=specs(), history=operations, verdicts=st.lists(st.sampled_from(VERDICTS), min_size=1, max_size=5)
)
def test_every_rollout_is_safe_and_ends(
    canary: dict[str, Any], history: list[Operation], verdicts: list[Verdict]
) -> None:
    world = World(spec_of(**canary))
    checked_tick(world, 0)
    world.change(**{"runtime.image": "server:2"})
    seconds = 0
    for operation in history:
        seconds += apply(world, operation)
        if not isinstance(operation, Advance):
            checked_tick(world, seconds)
            seconds = 0

    world.verdict = verdicts[0]
    drive(world, nudge=False)
    if world.status.phase == "Paused":
        assert paused_legitimately(world)
    for verdict in verdicts:
        world.verdict = verdict
        drive(world, nudge=True)
    assert world.status.phase in ("Stable", "RolledBack", "Failed")
    event(
        f"{'automated' if world.spec.rollout.canary.steps else 'manual'} rollout ended {world.status.phase}"
    )
    wanted = revision_of(world.spec)
    if world.status.phase == "Stable":
        assert world.status.stable_revision == wanted
        assert world.status.canary_revision is None
    else:
        assert world.status.canary_revision == wanted
        assert world.last is not None and world.last.canary_weight == 0
    steps_are_never_repeated_or_skipped(world)
