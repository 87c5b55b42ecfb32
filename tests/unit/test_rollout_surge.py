"""The replica arithmetic of GPU-budgeted canaries (rollout/surge.py), as properties over every
replica count, surge, weight and readiness, and as whole canaries simulated pass by pass."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modeldeploy.api.models import ModelDeploymentSpec, ModelDeploymentStatus, RolloutStatus
from modeldeploy.rollout.machine import Decision, Observations, RevisionReadiness, decide
from modeldeploy.rollout.surge import Split, admitted, canary_goal, routable_weight, split, surge_replicas

replicas = st.integers(min_value=1, max_value=64)
surges = st.integers(min_value=0, max_value=16)
weights = st.integers(min_value=0, max_value=100)
readiness = st.integers(min_value=0, max_value=80)


def budgets() -> st.SearchStrategy[tuple[int, int]]:
    """(replicas, surge); one replica with no surge is refused by the API (the canary could only
    start by stopping stable)."""
    return st.tuples(replicas, surges).filter(lambda budget: budget != (1, 0))


@given(budgets(), weights, readiness)
def test_the_split_never_exceeds_the_budget_nor_leaves_stable_short(
    budget: tuple[int, int], weight: int, canary_ready: int
) -> None:
    r, surge = budget
    found = split(r, surge, weight, canary_ready)
    assert found.stable + found.canary <= r + surge
    assert 0 <= found.stable <= r and found.canary >= 0
    # Stable never goes below the share of traffic it carries after this step, nor to zero
    # while it carries any (weight 0 with no surge: the canary's one replica comes out of it).
    share = math.floor(r * (100 - weight) / 100)
    assert found.stable >= (share - 1 if surge == 0 and weight == 0 else share)
    assert found.stable >= 1 or weight == 100
    # Serving capacity (stable plus the canary's ready replicas) never drops by more than the one
    # replica a zero budget needs to start the next canary replica, and not at all with a surge.
    assert found.stable + min(canary_ready, found.canary) >= r - (1 if surge == 0 else 0)


@given(budgets(), weights, readiness)
def test_the_routed_weight_never_outgrows_the_canarys_ready_replicas(
    budget: tuple[int, int], weight: int, canary_ready: int
) -> None:
    r, surge = budget
    found = split(r, surge, weight, canary_ready)
    ready = min(canary_ready, found.canary)
    routed = routable_weight(r, surge, weight, ready)
    assert routed <= weight
    # The canary's ready replicas, plus the one starting with no surge, carry what it is sent.
    assert routed * r <= 100 * (ready + (1 if surge == 0 and ready > 0 else 0))
    # What stays on stable fits its replicas: its share never exceeds theirs (rounding down).
    assert math.floor(r * (100 - routed) / 100) <= found.stable + (1 if surge == 0 else 0) or routed == 100


@given(budgets(), weights, readiness)
def test_a_canary_short_of_its_goal_gets_another_replica(
    budget: tuple[int, int], weight: int, canary_ready: int
) -> None:
    r, surge = budget
    goal = canary_goal(r, weight)
    found = split(r, surge, weight, canary_ready)
    reachable = min(goal, r + surge - (1 if weight < 100 else 0))
    if canary_ready < reachable:
        assert found.canary > canary_ready
    else:
        assert found.canary == reachable


@given(budgets(), st.lists(weights, min_size=1, max_size=6))
def test_a_whole_canary_reaches_every_weight_and_promotes_within_the_budget(
    budget: tuple[int, int], steps: list[int]
) -> None:
    """Pass by pass, as the operator runs it: pods asked for are ready at the next pass, stable's
    go at once; a weight step ends when its whole weight is routed; promotion asks for 100%."""
    r, surge = budget
    canary_ready = 0
    for weight in [*sorted(steps), 100]:
        for _ in range(2 * r + 2):
            wanted = split(r, surge, weight, canary_ready)
            assert wanted.stable + wanted.canary <= r + surge
            canary_ready = wanted.canary
            if routable_weight(r, surge, weight, canary_ready) == weight:
                break
        assert routable_weight(r, surge, weight, canary_ready) == weight, (weight, canary_ready)
    assert split(r, surge, 100, canary_ready).stable + canary_ready <= r + surge


def test_eight_gpus_on_two_replicas_with_no_surge() -> None:
    """The cluster test's case: 2 replicas of 4 GPUs, surge 0, one step at 50% then promotion."""
    assert split(2, 0, 50, 0) == Split(1, 1)
    assert split(2, 0, 50, 1) == Split(1, 1)
    assert routable_weight(2, 0, 50, 1) == 50
    assert split(2, 0, 100, 1) == Split(0, 2)
    assert routable_weight(2, 0, 100, 1) == 100  # the one-replica dip: one canary pod takes all
    assert split(2, 0, 100, 2) == Split(0, 2)


def test_a_surge_of_one_grows_the_canary_before_stable_shrinks() -> None:
    assert split(8, 1, 25, 0) == Split(8, 1)
    assert split(8, 1, 25, 1) == Split(7, 2)
    assert split(8, 1, 25, 2) == Split(7, 2)  # the budget holds both: stable keeps its seventh


@pytest.mark.parametrize(
    ("max_surge", "replicas", "expected"),
    [("0", 8, 0), ("2", 8, 2), ("25%", 8, 2), ("10%", 8, 1), ("0%", 3, 0)],
)
def test_max_surge_is_replicas_or_a_percentage_rounded_up(
    max_surge: str, replicas: int, expected: int
) -> None:
    assert surge_replicas(max_surge, replicas) == expected


def budgeted_tick(canary_ready: int, max_surge: str = "1") -> Decision:
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"uri": "s3://models/m/"},
            "runtime": {"image": "server:2"},
            "replicas": 8,
            "rollout": {"canary": {"maxSurge": max_surge, "steps": [{"weight": 50}]}},
        }
    )
    status = ModelDeploymentStatus(
        phase="Progressing",
        stable_revision="aaaaaaaaaa",
        canary_revision="bbbbbbbbbb",
        rollout=RolloutStatus(started_at="2026-12-04T10:00:00Z", step_started_at="2026-12-04T10:00:00Z"),
    )
    live = {
        "aaaaaaaaaa": RevisionReadiness(8, 8),
        "bbbbbbbbbb": RevisionReadiness(canary_ready, canary_ready),
    }
    seen = Observations(revision="bbbbbbbbbb", live=live, routed_weight=None, request=None)
    return decide(spec, status, seen, datetime(2026, 12, 4, 10, 1, tzinfo=UTC))


def test_the_machine_routes_what_the_canarys_ready_replicas_carry_and_readies_it_for_the_step() -> None:
    partial = budgeted_tick(canary_ready=2)
    assert (partial.canary_weight, partial.target_weight) == (25, 50)
    assert partial.status.rollout is not None
    assert partial.status.rollout.message.startswith("step 1/1: 25% of 50% routed")
    # Its whole weight routed, the step is done: promotion readies the canary for 100%.
    whole = budgeted_tick(canary_ready=4)
    assert (whole.canary_weight, whole.target_weight, whole.status.phase) == (50, 100, "Promoting")


def test_without_a_budget_the_step_weight_is_routed_at_once() -> None:
    decision = decide(
        ModelDeploymentSpec.model_validate(
            {
                "model": {"uri": "s3://models/m/"},
                "runtime": {"image": "server:2"},
                "replicas": 8,
                "rollout": {"canary": {"steps": [{"weight": 50}, {"pause": {}}]}},
            }
        ),
        ModelDeploymentStatus(
            phase="Progressing",
            stable_revision="aaaaaaaaaa",
            canary_revision="bbbbbbbbbb",
            rollout=RolloutStatus(started_at="2026-12-04T10:00:00Z", step_started_at="2026-12-04T10:00:00Z"),
        ),
        Observations(
            revision="bbbbbbbbbb",
            live={"aaaaaaaaaa": RevisionReadiness(8, 8), "bbbbbbbbbb": RevisionReadiness(1, 8)},
            routed_weight=None,
            request=None,
        ),
        datetime(2026, 12, 4, 10, 1, tzinfo=UTC),
    )
    assert decision.canary_weight == 50


def test_a_canary_held_at_zero_replicas_is_waiting_and_misses_its_deadline() -> None:
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"uri": "s3://models/m/"},
            "runtime": {"image": "server:2"},
            "rollout": {"canary": {"steps": [{"weight": 50}]}, "progressDeadlineSeconds": 60},
        }
    )
    status = ModelDeploymentStatus(
        phase="Progressing",
        stable_revision="aaaaaaaaaa",
        canary_revision="bbbbbbbbbb",
        rollout=RolloutStatus(started_at="2026-12-04T10:00:00Z", progress_since="2026-12-04T10:00:00Z"),
    )
    # The operator held the canary's Deployment at zero: nothing would fit.
    live = {"aaaaaaaaaa": RevisionReadiness(1, 1), "bbbbbbbbbb": RevisionReadiness(0, 0)}
    seen = Observations(revision="bbbbbbbbbb", live=live, routed_weight=None, request=None)
    decision = decide(spec, status, seen, datetime(2026, 12, 4, 10, 2, tzinfo=UTC))
    assert decision.status.phase == "RolledBack"


@given(budgets(), weights, readiness, st.integers(min_value=0, max_value=80))
def test_a_growing_revision_waits_for_the_pods_the_other_still_holds(
    budget: tuple[int, int], weight: int, canary_ready: int, held: int
) -> None:
    r, surge = budget
    wanted = split(r, surge, weight, canary_ready)
    now = admitted(wanted.canary, r + surge, held)
    assert 0 <= now <= wanted.canary
    assert held + now <= r + surge or now == 0
    # Once the other revision is down to what the split gives it, the canary gets all it wants.
    assert admitted(wanted.canary, r + surge, wanted.stable) == wanted.canary
