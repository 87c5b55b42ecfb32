"""The whole status of a ModelDeployment from what one reconcile pass observed.

Pure: the controller gathers the observations (children, their conditions, pods, the
routing read back, the rollout decision, refusals) and writes what this returns. Every
condition is judged here, in one place, and its transition time kept when its status holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modeldeploy import capacity
from modeldeploy.api.conditions import set_condition
from modeldeploy.api.models import Condition, ModelDeploymentSpec, ModelDeploymentStatus
from modeldeploy.render.revision import RuntimeTemplate
from modeldeploy.rollout.machine import IN_FLIGHT, REJECTED, RevisionReadiness
from modeldeploy.status.conditions import (
    DEGRADED,
    GPU,
    MODEL_READY,
    PROGRESSING,
    READY,
    READY_DEPENDS_ON,
    RECONCILING,
    REGISTRY,
    STALLED,
    TRAFFIC_READY,
    ConditionType,
    Verdict,
)
from modeldeploy.storage.model_status import history_with_signer, resolved_model
from modeldeploy.storage.termination import ModelState

REVISION_LABEL = "modeldeploy.io/revision"


@dataclass(frozen=True)
class Problem:
    """Something the user must fix, found while applying children: `condition` is the one it
    belongs to (Ready for a child of the workload, TrafficReady for routing, Progressing for a
    request that is not one)."""

    condition: str
    reason: str
    message: str


@dataclass(frozen=True)
class Observations:
    spec: ModelDeploymentSpec
    generation: int | None
    previous: ModelDeploymentStatus
    """The status as stored before this pass (transition times are kept from it)."""
    decided: ModelDeploymentStatus
    """The rollout machine's status: phase, revisions, rollout, Progressing and Degraded."""
    revisions: dict[str, RevisionReadiness]
    """Readiness of each revision's Deployment."""
    replica_failures: dict[str, str]
    """Per revision, the message of its Deployment's ReplicaFailure condition: pods refused."""
    pods: list[dict[str, Any]]
    model: ModelState
    model_uri: str
    provider: str
    routed_weight: int | None
    problems: tuple[Problem, ...] = ()
    gpu_capacity: Condition | None = None
    url: str | None = None
    templates: Mapping[str, RuntimeTemplate] = field(default_factory=dict)
    """By revision, the ModelRuntime it was made from (revisions without one are absent)."""


@dataclass(frozen=True)
class StatusReport:
    status: ModelDeploymentStatus
    transitions: tuple[Verdict, ...] = field(default=())
    """Ready and Stalled verdicts whose status changed in this pass: one Event each."""


def compute_status(seen: Observations, stamp: str) -> StatusReport:
    status = seen.decided.model_copy(deep=True)
    status.observed_generation = seen.generation
    status.canary_weight = seen.routed_weight or 0
    status.url = seen.url
    status.model = resolved_model(seen.model_uri, seen.model)
    status.history = history_with_signer(status.history, status.stable_revision, status.model)
    for revision in status.revisions:
        template = seen.templates.get(revision.name)
        if template is not None:
            revision.runtime, revision.runtime_generation = template.name, template.generation
    verdicts = _verdicts(seen)
    status.conditions = _conditions(seen.previous.conditions, verdicts, stamp)
    if verdicts[STALLED.name].status == "True" and status.phase in ("Stable", "Progressing"):
        # Shown instead of the phase the stall interrupts; the machine reads it back as that phase.
        status.phase = "Stalled"
    ready = verdicts[READY.name]
    status.ready = ready.status
    return StatusReport(status, _transitions(seen, verdicts))


def refused_conditions(previous: list[Condition], reason: str, message: str, stamp: str) -> list[Condition]:
    """The conditions of a spec the operator refuses before acting on it (the models or the
    verification policy): not ready and stalled until the spec changes; others kept."""
    verdicts = [
        Verdict(READY, "False", reason, message),
        Verdict(STALLED, "True", reason, message),
        Verdict(RECONCILING, "False", "Stalled", message),
    ]
    for verdict in verdicts:
        previous = set_condition(
            previous, verdict.type.name, verdict.status, verdict.reason, verdict.message, stamp
        )
    return previous


def _transitions(seen: Observations, verdicts: dict[str, Verdict]) -> tuple[Verdict, ...]:
    """Ready and Stalled verdicts that changed status. A first pass that is not ready yet is no
    news, and stalls the rollout machine ended in were told by its own events."""
    previous = {c.type: c.status for c in seen.previous.conditions}
    machine_told = seen.decided.phase == "Stalled" or seen.decided.phase in REJECTED
    changed = []
    for kind in (READY, STALLED):
        verdict = verdicts[kind.name]
        if verdict.status == previous.get(kind.name, "False"):
            continue
        if kind is STALLED and (verdict.status != "True" or machine_told):
            continue
        if any((told.reason, told.message) == (verdict.reason, verdict.message) for told in changed):
            continue  # Ready fell for the reason that stalls: one Event says both
        changed.append(verdict)
    return tuple(changed)


def _conditions(previous: list[Condition], verdicts: dict[str, Verdict], stamp: str) -> list[Condition]:
    """The registry's conditions in its order, each stamped against the stored status (not the
    machine's working copy), so a verdict that holds keeps its transition time; conditions
    outside the registry are dropped."""
    result: list[Condition] = []
    for kind in REGISTRY:
        verdict = verdicts.get(kind.name)
        if verdict is None:
            continue
        stored = [c for c in previous if c.type == kind.name]
        result += set_condition(stored, kind.name, verdict.status, verdict.reason, verdict.message, stamp)
    return result


def _verdicts(seen: Observations) -> dict[str, Verdict]:
    decided = {c.type: c for c in seen.decided.conditions}
    model = _model_verdict(seen.model)
    traffic = _traffic_verdict(seen)
    stalled = _stalled_verdict(seen, decided)
    degraded = _degraded_verdict(seen, decided, stalled)
    ready = _ready_verdict(seen, model, traffic)
    verdicts = [
        ready,
        _reconciling_verdict(seen, ready, stalled),
        stalled,
        _progressing_verdict(seen, decided, stalled),
        degraded,
        model,
        traffic,
    ]
    if seen.gpu_capacity is not None:
        gpu = seen.gpu_capacity
        verdicts.append(Verdict(GPU, gpu.status, gpu.reason, gpu.message))
    return {verdict.type.name: verdict for verdict in verdicts}


def _from_condition(kind: ConditionType, condition: Condition | None, default: Verdict) -> Verdict:
    if condition is None:
        return default
    return Verdict(kind, condition.status, condition.reason, condition.message)


def _model_verdict(model: ModelState) -> Verdict:
    state = "Unknown" if model.ready is None else ("True" if model.ready else "False")
    return Verdict(MODEL_READY, state, model.reason, model.message)


def _traffic_verdict(seen: Observations) -> Verdict:
    problem = _first_problem(seen, TRAFFIC_READY.name)
    if problem is not None:
        return Verdict(TRAFFIC_READY, "False", problem.reason, problem.message)
    decided = seen.decided
    message = (
        f"{seen.provider}: {seen.routed_weight or 0}% to the canary"
        if decided.canary_revision
        else f"{seen.provider}: all traffic to {decided.stable_revision}"
    )
    return Verdict(TRAFFIC_READY, "True", "Routed", message)


def _first_problem(seen: Observations, *conditions: str) -> Problem | None:
    return next((p for p in seen.problems if p.condition in conditions), None)


def _replica_failure(seen: Observations) -> tuple[str, str] | None:
    """(revision, the Deployment's message) of the first revision in a role whose pods are refused."""
    for revision in (seen.decided.stable_revision, seen.decided.canary_revision):
        observed = seen.revisions.get(revision or "")
        failure = seen.replica_failures.get(revision or "")
        if observed is not None and failure and not observed.complete:
            return str(revision), failure
    return None


def _pods_of(seen: Observations, revision: str | None) -> list[dict[str, Any]]:
    return [p for p in seen.pods if (p["metadata"].get("labels") or {}).get(REVISION_LABEL) == revision]


def _stalled_verdict(seen: Observations, decided: dict[str, Condition]) -> Verdict:
    """Stalled: nothing will change until someone acts. Refusals come first (their fix is the
    most direct), then a missed deadline, then a rollout that ended short of promotion."""
    problem = _first_problem(seen, READY.name, TRAFFIC_READY.name)
    if problem is not None:
        return Verdict(STALLED, "True", problem.reason, problem.message)
    refused = _replica_failure(seen)
    if refused is not None:
        revision, message = refused
        return Verdict(
            STALLED, "True", "ReplicaFailure", f"pods of revision {revision} are refused: {message}"
        )
    phase = seen.decided.phase
    rollout = seen.decided.rollout
    if phase == "Stalled" and rollout is not None:
        revision = seen.decided.canary_revision or seen.decided.stable_revision
        why = capacity.pending_reason(_pods_of(seen, revision))
        message = f"{rollout.message}: {why}" if why else rollout.message
        return Verdict(STALLED, "True", "ProgressDeadlineExceeded", message)
    if phase in REJECTED:
        ending = decided.get(DEGRADED.name)
        reason = ending.reason if ending is not None else str(phase)
        message = ending.message if ending is not None else ""
        return Verdict(STALLED, "True", reason, f"{message}; a change of spec starts a new rollout")
    return Verdict(STALLED, "False", "Progressing" if phase in IN_FLIGHT else "Stable")


def _degraded_verdict(seen: Observations, decided: dict[str, Condition], stalled: Verdict) -> Verdict:
    """The machine's verdict on the rollout, unless a child is refused (which degrades serving)."""
    if stalled.status == "True" and seen.decided.phase not in REJECTED:
        return Verdict(DEGRADED, "True", stalled.reason, stalled.message)
    return _from_condition(DEGRADED, decided.get(DEGRADED.name), Verdict(DEGRADED, "False", "Healthy"))


def _progressing_verdict(seen: Observations, decided: dict[str, Condition], stalled: Verdict) -> Verdict:
    """The machine's verdict on the rollout, with why a canary's pods are not ready; a stall
    stops progress (as a Deployment's Progressing turns False at its deadline)."""
    if stalled.status == "True":
        return Verdict(PROGRESSING, "False", stalled.reason, stalled.message)
    verdict = _from_condition(
        PROGRESSING, decided.get(PROGRESSING.name), Verdict(PROGRESSING, "False", "Stable")
    )
    request = _first_problem(seen, PROGRESSING.name)
    if request is not None:
        return Verdict(PROGRESSING, "True", request.reason, request.message)
    if verdict.status == "True":
        why = (
            capacity.pending_reason(_pods_of(seen, seen.decided.canary_revision))
            if seen.decided.canary_revision
            else None
        )
        if why:
            return Verdict(PROGRESSING, "True", verdict.reason, f"{verdict.message}; canary pods: {why}")
    return verdict


def _ready_verdict(seen: Observations, model: Verdict, traffic: Verdict) -> Verdict:
    problem = _first_problem(seen, READY.name)
    if problem is not None:
        return Verdict(READY, "False", problem.reason, problem.message)
    stable = seen.decided.stable_revision
    live = seen.revisions.get(stable or "")
    if stable is None or live is None:
        return Verdict(READY, "False", "Creating", "the first revision's Deployment is being created")
    for dependency in READY_DEPENDS_ON:
        verdict = model if dependency is MODEL_READY else traffic
        if verdict.status == "False":
            return Verdict(READY, "False", verdict.reason, verdict.message)
    if live.complete:
        return Verdict(
            READY, "True", "Serving", f"revision {stable}: {live.ready}/{live.desired} replicas ready"
        )
    if stable in seen.replica_failures:
        return Verdict(
            READY,
            "False",
            "ReplicaFailure",
            f"pods of revision {stable} are refused: {seen.replica_failures[stable]}",
        )
    why = capacity.pending_reason(_pods_of(seen, stable))
    if why:
        reason, _, _detail = why.partition(": ")
        return Verdict(READY, "False", reason or "PodsNotReady", why)
    return Verdict(
        READY,
        "False",
        "WaitingForReplicas",
        f"{live.ready}/{live.desired} replicas of revision {stable} ready",
    )


def _reconciling_verdict(seen: Observations, ready: Verdict, stalled: Verdict) -> Verdict:
    """kstatus reads Reconciling before Stalled, so the two are never True together. A manual
    canary held at its weight and a paused canary have reached what was asked: not Reconciling."""
    if stalled.status == "True":
        return Verdict(RECONCILING, "False", "Stalled", stalled.message)
    decided = seen.decided
    rollout = decided.rollout
    waiting = rollout.message if rollout is not None else ""
    if ready.status != "True":
        return Verdict(RECONCILING, "True", ready.reason, ready.message)
    canary = decided.canary_revision
    if decided.phase == "Paused":
        return Verdict(RECONCILING, "False", "Paused", waiting)
    if canary is not None and decided.phase == "Progressing" and not seen.spec.rollout.canary.steps:
        live = seen.revisions.get(canary)
        weight = seen.spec.rollout.canary.weight
        if live is not None and live.complete and seen.routed_weight == weight:
            return Verdict(
                RECONCILING, "False", "CanaryHeld", f"canary {canary} holds {weight}% as the spec asks"
            )
    if decided.phase in IN_FLIGHT:
        return Verdict(RECONCILING, "True", str(decided.phase), waiting)
    return Verdict(RECONCILING, "False", "Ready", ready.message)
