"""GPU-budgeted canaries: how many replicas stable and canary hold while a canary runs.

Pure arithmetic. With `spec.rollout.canary.maxSurge` unset the canary gets a full set of
replicas beside stable's (the behaviour before budgets). With a surge S over stable's R
replicas, the two together never hold more than R + S, and the canary grows towards the share
of R its next weight needs:

- goal = ceil(R x weight / 100), at least 1 (a canary at zero can neither be ready nor be
  analysed) and at most R; `weight` is the weight the rollout is heading to (the step's, or 100
  while promoting);
- the canary may hold no more than the surge plus its ready replicas: stable gives up a replica
  only once a canary replica is ready to take its place; stable keeps every replica the budget
  leaves it, so at most R, and never less than R - goal (the share of traffic it still carries
  after the step), nor less than one while it carries any;
- one exception, S = 0: the canary's next replica has to come out of stable's before it can be
  ready (the only way to start a canary on a full budget), so serving capacity dips by one
  replica while it starts; with S >= 1 it never dips;
- the weight routed to the canary follows its ready replicas (`routable_weight`): stable's share
  of traffic never outgrows its replicas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Split:
    stable: int
    canary: int


def surge_replicas(max_surge: str, replicas: int) -> int:
    """maxSurge as replicas: "2" is 2, "25%" is 25% of `replicas` rounded up (as a Deployment's)."""
    if max_surge.endswith("%"):
        return math.ceil(replicas * int(max_surge[:-1]) / 100)
    return int(max_surge)


def canary_goal(replicas: int, weight: int) -> int:
    """Replicas the canary needs to carry `weight` percent of what `replicas` carry."""
    return min(replicas, max(1, math.ceil(replicas * weight / 100)))


def split(replicas: int, surge: int, weight: int, canary_ready: int) -> Split:
    """Replicas of stable and canary while the canary heads for `weight` with `canary_ready`
    replicas ready, within `replicas` + `surge`."""
    if replicas == 0:
        return Split(0, 0)
    goal = canary_goal(replicas, weight)
    floor = max(replicas - goal, 1 if weight < 100 else 0)
    ready = min(canary_ready, goal)
    starting = 1 if surge == 0 and ready < goal else 0
    canary = max(0, min(goal, surge + ready + starting, replicas + surge - floor))
    return Split(min(replicas, replicas + surge - canary), canary)


def routable_weight(replicas: int, surge: int, weight: int, canary_ready: int) -> int:
    """The part of `weight` the canary's ready replicas carry (with no surge, also the replica
    that is starting in place of a stable one: that is the one-replica dip)."""
    if replicas == 0:
        return weight
    starting = 1 if surge == 0 and canary_ready > 0 else 0
    return min(weight, 100 * (canary_ready + starting) // replicas)


def admitted(wanted: int, budget: int, held_by_others: int) -> int:
    """Replicas a growing revision may have now: what it wants, within the budget left by the
    pods the other revisions still hold. Terminating pods count: their GPUs are not free until
    they are gone, and a pod created before would wait Pending, asking for GPUs beyond the budget."""
    return max(0, min(wanted, budget - held_by_others))
