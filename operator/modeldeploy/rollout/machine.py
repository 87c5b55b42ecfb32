"""The rollout state machine: how revisions move between stable, canary and retired.

`decide` is a pure function of (spec, status, observations, now). Every piece of state it
needs lives in the status it returns, timers included (as timestamps), so an operator that
is restarted mid-rollout calls it with the persisted status and carries on at the same
step. The controller does the I/O: it reads the observations, queries Prometheus when a
decision asks for analysis, and applies the decision (status, weights, Deployments, events).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, cast, get_args

from modeldeploy.api.conditions import set_condition
from modeldeploy.api.models import (
    Analysis,
    AnalysisRun,
    HistoryEntry,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    RevisionStatus,
    RolloutStatus,
)
from modeldeploy.render.revision import Role
from modeldeploy.rollout.analysis import interval_of, merged, problem_of
from modeldeploy.rollout.steps import describe_step, waits_for_resume
from modeldeploy.rollout.surge import routable_weight, surge_replicas
from modeldeploy.rollout.timing import format_timestamp, parse_duration, parse_timestamp

REQUEST_ANNOTATION = "modeldeploy.io/request"
HISTORY_LIMIT = 10
ANALYSIS_RUNS_LIMIT = 10
# The router's read-back is the only proof that all traffic reached the canary before the
# roles swap; a provider that lags is asked again this often.
READBACK_POLL_SECONDS = 2.0

Action = Literal["promote", "abort", "pause", "resume"]
Phase = Literal["Stable", "Progressing", "Paused", "Promoting", "RolledBack", "Failed", "Stalled"]
IN_FLIGHT: tuple[Phase, ...] = ("Progressing", "Paused", "Promoting")
REJECTED: tuple[Phase, ...] = ("RolledBack", "Failed")


@dataclass(frozen=True)
class Request:
    """A command from `modeldeploy promote|abort|pause|resume`, carried by an annotation
    `<action>@<RFC 3339 time>`; the whole value identifies it, so it acts once."""

    action: Action
    issued_at: str

    @property
    def id(self) -> str:
        return f"{self.action}@{self.issued_at}"

    @classmethod
    def issue(cls, action: Action, now: datetime) -> Request:
        return cls(action=action, issued_at=format_timestamp(now))

    def annotation_patch(self) -> dict[str, Any]:
        """A JSON merge patch that files this request: metadata only, so GitOps sees no drift."""
        return {"metadata": {"annotations": {REQUEST_ANNOTATION: self.id}}}

    @classmethod
    def parse(cls, value: str | None) -> Request | None:
        """The request an annotation value carries (None when there is none); raises ValueError
        for a value that is not a request, so the caller can tell the user."""
        if value is None:
            return None
        action, separator, issued_at = value.partition("@")
        if not separator or action not in get_args(Action):
            raise ValueError(
                f"{REQUEST_ANNOTATION}: {value!r} is not <action>@<time> with action promote, abort, pause "
                "or resume"
            )
        try:
            parse_timestamp(issued_at)
        except ValueError as error:
            raise ValueError(f"{REQUEST_ANNOTATION}: {value!r} has no valid RFC 3339 time") from error
        return cls(action=cast(Action, action), issued_at=issued_at)


@dataclass(frozen=True)
class RevisionReadiness:
    """Replicas of one revision's live Deployment."""

    ready: int
    desired: int

    @property
    def serving(self) -> bool:
        """It can take traffic."""
        return self.ready > 0

    @property
    def complete(self) -> bool:
        """Every desired replica is ready."""
        return self.ready >= self.desired


@dataclass(frozen=True)
class Observations:
    revision: str
    """revision_of(spec): the revision the spec asks for."""
    live: dict[str, RevisionReadiness]
    """Readiness of each revision that has a Deployment."""
    routed_weight: int | None
    """Canary weight the router reports; None when it cannot tell."""
    request: Request | None
    """The request annotation, if any (handled or not: the status remembers)."""
    measurements: tuple[AnalysisRun, ...] = ()
    """Results of the analysis the previous decision asked for (see Decision.analysis_due)."""
    generation: int | None = None
    """metadata.generation of the object: a new one restarts the progress deadline."""


@dataclass(frozen=True)
class LiveRevision:
    """A revision whose Deployment must exist, in its role."""

    revision: str
    role: Role
    scaled_to_zero: bool = False


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    status: ModelDeploymentStatus
    canary_weight: int
    """Percentage to route to the canary now."""
    revisions: tuple[LiveRevision, ...]
    """Every revision to keep; Deployments of any other revision are removed."""
    analysis_due: Analysis | None
    """When set: measure this analysis now and decide again with the results."""
    requeue_after: float | None
    """Seconds until the machine must run again though nothing else changed."""
    events: tuple[Event, ...]
    target_weight: int = 0
    """The weight the canary is being readied for (the step's, or 100 while promoting): with a
    maxSurge, its replicas follow it (rollout/surge.py)."""


def decide(
    spec: ModelDeploymentSpec, status: ModelDeploymentStatus, observations: Observations, now: datetime
) -> Decision:
    return _Tick(spec, status, observations, now).decide()


@dataclass
class _Tick:
    """One run of the machine: a working copy of the status and what the run produced."""

    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus
    observations: Observations
    now: datetime
    events: list[Event] = field(default_factory=list)
    wake_times: list[datetime] = field(default_factory=list)
    analysis_due: Analysis | None = None
    target_weight: int | None = None
    rollout: RolloutStatus = field(init=False)
    stamp: str = field(init=False)

    def __post_init__(self) -> None:
        self.status = self.status.model_copy(deep=True)
        self.rollout = self.status.rollout or RolloutStatus()
        self.status.rollout = self.rollout
        self.stamp = format_timestamp(self.now)

    # ------------------------------------------------------------------ driver

    def decide(self) -> Decision:
        if self.observations.routed_weight is not None:
            self.status.canary_weight = self.observations.routed_weight
        was_stalled = self._phase == "Stalled"
        if was_stalled:
            self.status.phase = self._phase_before_stall()
        if self.observations.generation != self.status.observed_generation:
            self.rollout.progress_since = None
        if self.status.stable_revision is None:
            self._first_revision()
        self._handle_request()
        self._follow_spec_revision()
        self._progress()
        self._check_progress_deadline(was_stalled)
        self._remove_retired()
        self._set_conditions()
        revisions = self._live_revisions()
        self.status.revisions = [self._revision_status(live) for live in revisions]
        return Decision(
            status=self.status,
            canary_weight=self._canary_weight(),
            revisions=revisions,
            analysis_due=self.analysis_due,
            requeue_after=self._requeue_after(),
            events=tuple(self.events),
            target_weight=self.rollout.weight if self.target_weight is None else self.target_weight,
        )

    # ------------------------------------------------------------------ helpers

    def _emit(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(Event("Warning" if warning else "Normal", reason, message))

    @property
    def _phase(self) -> Phase | None:
        return self.status.phase

    @property
    def _canary(self) -> str | None:
        return self.status.canary_revision

    @property
    def _stable(self) -> str:
        assert self.status.stable_revision is not None, "set by _first_revision"
        return self.status.stable_revision

    def _readiness(self, revision: str) -> RevisionReadiness:
        return self.observations.live.get(revision, RevisionReadiness(ready=0, desired=0))

    def _canary_serving(self) -> bool:
        return self._canary is not None and self._readiness(self._canary).serving

    def _replicas(self, revision: str) -> str:
        readiness = self.observations.live.get(revision)
        return f"{readiness.ready}/{readiness.desired} ready" if readiness else "no Deployment yet"

    def _wait_until(self, moment: datetime) -> None:
        self.wake_times.append(moment)

    def _routable(self, weight: int) -> int:
        """`weight`, or with a GPU budget (maxSurge, fixed replicas) the part of it the canary's
        ready replicas carry; the replicas follow `target_weight`."""
        self.target_weight = weight
        surge = self.spec.rollout.canary.max_surge
        if surge is None or self.spec.autoscaling is not None or self._canary is None:
            return weight
        replicas = self.spec.replicas
        ready = self._readiness(self._canary).ready
        return routable_weight(replicas, surge_replicas(surge, replicas), weight, ready)

    def _set_weight(self, weight: int) -> None:
        if weight != self.rollout.weight:
            self._emit("Weight", f"canary {self._canary}: weight {self.rollout.weight}% -> {weight}%")
            self.rollout.weight = weight

    def _new_rollout(self) -> None:
        """Fresh per-rollout state; what outlives a rollout (retiring revisions, the handled
        request) is carried over."""
        self.rollout = RolloutStatus(
            started_at=self.stamp,
            step_started_at=self.stamp,
            retiring=self.rollout.retiring,
            retire_after=self.rollout.retire_after,
            last_handled_request=self.rollout.last_handled_request,
        )
        self.status.rollout = self.rollout

    def _retire(self, revision: str, drained: bool) -> None:
        """Take a revision out of service. One deadline covers all retiring revisions, so a
        second retirement only ever delays the first."""
        delay = 0 if drained else self.spec.rollout.canary.scale_down_delay_seconds
        deadline = self.now + timedelta(seconds=delay)
        if self.rollout.retiring and self.rollout.retire_after is not None:
            deadline = max(deadline, parse_timestamp(self.rollout.retire_after))
        if revision not in self.rollout.retiring:
            self.rollout.retiring.append(revision)
        self.rollout.retire_after = format_timestamp(deadline)

    def _record_stable(self) -> None:
        current = self._stable == self.observations.revision
        self.status.history = [
            *self.status.history,
            HistoryEntry(
                revision=self._stable,
                promoted_at=self.stamp,
                model=self.spec.model.uri if current else None,
                image=self.spec.runtime.image if current else None,
            ),
        ][-HISTORY_LIMIT:]

    # ------------------------------------------------------------------ revisions

    def _first_revision(self) -> None:
        self.status.stable_revision = self.observations.revision
        self.status.phase = "Stable"
        self._new_rollout()
        self.rollout.promoted_at = self.stamp
        self._record_stable()
        self._emit("NewRevision", f"revision {self._stable} is the first: stable at once")

    def _follow_spec_revision(self) -> None:
        wanted = self.observations.revision
        if self.spec.rollout.strategy != "canary":
            self._replace_in_place(wanted)
        elif wanted == self._stable:
            if self._canary is not None:
                self._emit(
                    "CanaryCancelled",
                    f"spec is back at stable revision {wanted}; canary {self._canary} removed",
                )
                self._drop_canary()
                self.status.phase = "Stable"
        elif wanted != self._canary and not self._readiness(self._stable).serving:
            # A canary is compared with a stable that serves; one that serves nothing (its pods
            # refused, unschedulable, crashing, or scaled to zero) is simply replaced.
            if self._canary is not None:
                self._drop_canary()
            self._replace_stable(wanted, f"{self._stable} serves nothing ({self._replicas(self._stable)})")
        elif wanted != self._canary:
            self._start_canary(wanted)

    def _drop_canary(self) -> None:
        assert self._canary is not None
        self._retire(self._canary, drained=self._phase in REJECTED)
        self.status.canary_revision = None
        self.rollout.weight = 0

    def _replace_in_place(self, wanted: str) -> None:
        if self._canary is not None:
            self._emit(
                "CanaryCancelled", f"strategy {self.spec.rollout.strategy}: canary {self._canary} removed"
            )
            self._drop_canary()
            self.status.phase = "Stable"
        if wanted != self._stable:
            self._replace_stable(wanted, f"strategy {self.spec.rollout.strategy}")

    def _replace_stable(self, wanted: str, why: str) -> None:
        self._emit("NewRevision", f"revision {wanted} replaces {self._stable} in place ({why})")
        self.status.stable_revision = wanted
        self.status.phase = "Progressing"
        self._new_rollout()

    def _start_canary(self, wanted: str) -> None:
        if self._canary is not None:
            self._emit("CanaryReplaced", f"revision {wanted} replaces canary {self._canary}")
            self._drop_canary()
        else:
            self._emit("NewRevision", f"revision {wanted} starts as canary beside stable {self._stable}")
        self.status.canary_revision = wanted
        self.status.phase = "Progressing"
        self._new_rollout()

    # ------------------------------------------------------------------ progress deadline

    def _phase_before_stall(self) -> Phase:
        """Stalled is shown instead of the phase it interrupted: a canary in flight, the
        replacement of stable in place (not yet promoted), or stable itself."""
        if self._canary is not None or self.rollout.promoted_at is None:
            return "Progressing"
        return "Stable"

    def _awaited_revision(self) -> str | None:
        """The revision whose replicas the rollout is waiting for, if it waits for any: a
        paused or promoting rollout and a rejected canary wait for people or the router."""
        if self._phase in ("Paused", "Promoting") or self._phase in REJECTED:
            return None
        return self._canary or self._stable

    def _check_progress_deadline(self, was_stalled: bool) -> None:
        """A revision whose replicas never become ready (no node fits, pods refused, a crash
        loop) must not look busy forever: past the deadline it is Stalled, and an automated
        canary rolls back, as a Deployment reports ProgressDeadlineExceeded."""
        revision = self._awaited_revision()
        live = self.observations.live.get(revision) if revision else None
        # A canary held at zero replicas (its GPUs would not fit) is waiting, not complete.
        done = live is not None and live.complete and (revision != self._canary or live.serving)
        if revision is None or done:
            self.rollout.progress_since = None
            return
        since = parse_timestamp(self.rollout.progress_since or self.stamp)
        self.rollout.progress_since = format_timestamp(since)
        limit = self.spec.progress_deadline_seconds()
        deadline = since + timedelta(seconds=limit)
        if self.now < deadline:
            self._wait_until(deadline)
            return
        message = f"revision {revision} did not have all replicas ready within {limit}s ({self._replicas(revision)})"
        if revision == self._canary and self.spec.rollout.canary.steps:
            self._roll_back(
                "ProgressDeadlineExceeded", f"{message}; all traffic back on stable {self._stable}"
            )
            return
        self.status.phase = "Stalled"
        self.rollout.message = message
        if not was_stalled:
            self._emit("ProgressDeadlineExceeded", message, warning=True)

    # ------------------------------------------------------------------ requests

    def _handle_request(self) -> None:
        request = self.observations.request
        if request is None or request.id == self.rollout.last_handled_request:
            return
        self.rollout.last_handled_request = request.id
        phase = self._phase
        if self._canary is None or phase not in IN_FLIGHT:
            self._ignore(request, "no canary is in flight")
        elif request.action == "abort":
            self._roll_back(
                "Aborted",
                f"aborted by {request.id}: all traffic on stable {self._stable}; "
                f"canary {self._canary} scaled to zero and kept for inspection",
            )
        elif phase == "Promoting":
            self._ignore(request, "the canary is already being promoted")
        elif request.action == "promote":
            self._start_promoting(f"promoted by {request.id}")
        elif request.action == "pause":
            if phase == "Paused":
                self._ignore(request, "the rollout is already paused")
            else:
                self.status.phase = "Paused"
                self._emit("Paused", f"paused by {request.id} at weight {self.rollout.weight}%")
        elif phase != "Paused":
            self._ignore(request, "the rollout is not paused")
        else:
            self._resume(request)

    def _ignore(self, request: Request, why: str) -> None:
        self._emit("RequestIgnored", f"{request.id} ignored: {why}")

    def _resume(self, request: Request) -> None:
        self.status.phase = "Progressing"
        steps = self.spec.rollout.canary.steps
        index = self.rollout.step
        if index < len(steps) and waits_for_resume(steps[index]):
            self._emit("Resumed", f"resumed by {request.id}: step {index + 1} done")
            self._enter_step(index + 1)
        else:
            # Time paused by request does not count: the step's timers start over.
            self._emit("Resumed", f"resumed by {request.id}")
            self.rollout.step_started_at = self.stamp

    # ------------------------------------------------------------------ progress

    def _progress(self) -> None:
        if self._canary is None:
            self._progress_without_canary()
        elif self._phase in REJECTED:
            return
        elif self._phase == "Promoting":
            self._promote_when_routed()
        elif self.spec.rollout.canary.steps:
            self._run_steps()
        else:
            self._follow_manual_weight()

    def _progress_without_canary(self) -> None:
        stable = self._stable
        readiness = self.observations.live.get(stable)
        ready = readiness is not None and readiness.complete
        if self._phase != "Progressing":
            self.status.phase = "Stable"
        elif ready:
            self.status.phase = "Stable"
            self.rollout.promoted_at = self.stamp
            self._record_stable()
            self._emit("RolloutComplete", f"revision {stable} is stable")
        self.rollout.message = "" if ready else f"waiting for revision {stable}: {self._replicas(stable)}"

    def _follow_manual_weight(self) -> None:
        canary = self._canary
        if self._phase == "Paused":
            # A pause freezes progress, not a retreat: lowering the weight still applies.
            self._set_weight(min(self.rollout.weight, self.spec.rollout.canary.weight))
            self.rollout.message = f"paused at weight {self.rollout.weight}%: `modeldeploy resume` continues"
            return
        wanted = self.spec.rollout.canary.weight
        self._set_weight(self._routable(wanted))
        if not self._canary_serving():
            self.rollout.message = (
                f"waiting for canary {canary} to have ready replicas ({self._replicas(str(canary))}); "
                f"then it receives {self.rollout.weight}%"
            )
        elif self.rollout.weight == 100:
            self._start_promoting("spec.rollout.canary.weight is 100")
            self._promote_when_routed()
        elif self.rollout.weight < wanted:
            self.rollout.message = self._short_of(wanted, f"canary {canary}")
        else:
            self.rollout.message = (
                f"canary {canary} receives {self.rollout.weight}%; "
                "weight 100 or `modeldeploy promote` promotes it"
            )

    def _start_promoting(self, why: str) -> None:
        self.status.phase = "Promoting"
        self._emit(
            "Promoting", f"canary {self._canary}: {why}; sending it all traffic before it becomes stable"
        )

    def _short_of(self, wanted: int, where: str) -> str:
        canary = str(self._canary)
        return (
            f"{where}: {self.rollout.weight}% of {wanted}% routed; the rest follows as canary replicas "
            f"become ready within maxSurge {self.spec.rollout.canary.max_surge} ({self._replicas(canary)})"
        )

    def _promote_when_routed(self) -> None:
        canary = str(self._canary)
        self._set_weight(self._routable(100))
        routed = self.observations.routed_weight
        if not self._canary_serving():
            self.rollout.message = f"promoting: waiting for canary {canary} ({self._replicas(canary)})"
        elif self.rollout.weight < 100:
            self.rollout.message = self._short_of(100, "promoting")
        elif routed is not None and routed != 100:
            self.rollout.message = (
                f"promoting: waiting for the router to send 100% to {canary} (reports {routed}%)"
            )
            self._wait_until(self.now + timedelta(seconds=READBACK_POLL_SECONDS))
        else:
            retired = self._stable
            self.status.stable_revision = canary
            self.status.canary_revision = None
            self.status.phase = "Stable"
            self.rollout.weight = 0
            self.rollout.promoted_at = self.stamp
            self.rollout.message = ""
            self._record_stable()
            self._retire(retired, drained=False)
            self._emit("Promoted", f"revision {canary} is stable; {retired} retires")

    def _run_steps(self) -> None:
        steps = self.spec.rollout.canary.steps
        while True:
            index = self.rollout.step
            where = f"step {index + 1}/{len(steps)}"
            if self._phase == "Paused":
                self.rollout.message = f"{where}: paused until `modeldeploy resume`"
                return
            if index >= len(steps):
                self._start_promoting(f"all {len(steps)} steps passed")
                self._promote_when_routed()
                return
            if not self._canary_serving():
                self.rollout.message = (
                    f"{where}: waiting for canary {self._canary} to have ready replicas "
                    f"({self._replicas(str(self._canary))})"
                )
                return
            step = steps[index]
            if step.weight is not None:
                self._set_weight(self._routable(step.weight))
                if self.rollout.weight < step.weight:
                    self.rollout.message = self._short_of(step.weight, where)
                    return
            elif waits_for_resume(step):
                self.status.phase = "Paused"
                self._emit("Paused", f"{where}: paused until resumed")
                continue
            elif step.pause is not None and step.pause.duration is not None:
                if not self._pause_elapsed(step.pause.duration, where):
                    return
            elif step.analysis is not None:
                analysis = merged(step.analysis, self.spec.rollout.canary.analysis)
                if not self._analyse(analysis, where, counted=True):
                    return
            self._enter_step(index + 1)

    def _pause_elapsed(self, duration: str, where: str) -> bool:
        """Whether a timed pause is over; while it lasts, the canary's own analysis (if it has
        metrics) keeps measuring in the background."""
        deadline = parse_timestamp(str(self.rollout.step_started_at)) + parse_duration(duration)
        if self.now >= deadline:
            return True
        self.rollout.message = f"{where}: pausing until {format_timestamp(deadline)}"
        self._wait_until(deadline)
        background = self.spec.rollout.canary.analysis
        if background is not None and background.metrics:
            self._analyse(background, where, counted=False)
        return False

    def _enter_step(self, index: int) -> None:
        steps = self.spec.rollout.canary.steps
        self.rollout.step = index
        self.rollout.step_started_at = self.stamp
        self.rollout.measurements = self.rollout.failures = self.rollout.inconclusives = 0
        self.rollout.last_measured_at = None
        if index < len(steps):
            described = describe_step(steps[index], self.spec.rollout.canary.analysis)
            self._emit("StepStarted", f"step {index + 1}/{len(steps)}: {described}")

    # ------------------------------------------------------------------ analysis

    def _analyse(self, analysis: Analysis, where: str, counted: bool) -> bool:
        """Take the measurement that is due, if any. True when the step's analysis is done:
        `count` measurements within the limits (only for a counted analysis step)."""
        metrics = self.spec.runtime.metrics
        problem = problem_of(analysis, self.spec.traffic.provider, metrics.source if metrics else None)
        if problem is not None:
            self._fail("InvalidAnalysis", f"{where}: analysis cannot run: {problem}")
            return False
        if counted and self.rollout.measurements >= analysis.count:
            return True
        started = parse_timestamp(str(self.rollout.step_started_at))
        last = parse_timestamp(self.rollout.last_measured_at) if self.rollout.last_measured_at else started
        due = max(started, last) + interval_of(analysis)
        if self.now >= due:
            runs = tuple(run for run in self.observations.measurements if parse_timestamp(run.time) >= due)
            if not runs:
                self.analysis_due = analysis
                if counted:
                    self.rollout.message = (
                        f"{where}: analysis, measuring ({self.rollout.measurements}/{analysis.count} done)"
                    )
                self._wait_until(self.now)
                return False
            if not self._record_measurement(runs, analysis, where):
                return False
            if counted and self.rollout.measurements >= analysis.count:
                return True
            due = parse_timestamp(self.stamp) + interval_of(analysis)
        if counted:
            self.rollout.message = (
                f"{where}: analysis, {self.rollout.measurements}/{analysis.count} measurements, "
                f"next at {format_timestamp(due)}"
            )
        self._wait_until(due)
        return False

    def _record_measurement(self, runs: tuple[AnalysisRun, ...], analysis: Analysis, where: str) -> bool:
        """Count one measurement; False when it ended the rollout. Only conclusive measurements
        count towards the step's `count`: a step must never pass on silence."""
        rollout = self.rollout
        rollout.last_measured_at = self.stamp
        rollout.analysis_runs = [
            *rollout.analysis_runs,
            *(run.model_copy(update={"step": rollout.step}) for run in runs),
        ][-ANALYSIS_RUNS_LIMIT:]
        failed = [run for run in runs if run.verdict == "Failed"]
        inconclusive = [run for run in runs if run.verdict == "Inconclusive"]
        if failed:
            rollout.measurements += 1
            rollout.failures += 1
            details = "; ".join(run.message for run in failed)
            counts = f"{rollout.failures} failed measurements, limit {analysis.failure_limit}"
            if rollout.failures > analysis.failure_limit:
                self._roll_back(
                    "AnalysisFailed", f"{where}: {details} ({counts}); all traffic back on stable"
                )
                return False
            self._emit("AnalysisFailed", f"{where}: {details} ({counts})", warning=True)
        elif inconclusive:
            rollout.inconclusives += 1
            details = "; ".join(f"{run.metric}: {run.message}" for run in inconclusive)
            counts = f"{rollout.inconclusives} inconclusive measurements, limit {analysis.inconclusive_limit}"
            if rollout.inconclusives > analysis.inconclusive_limit:
                self._fail(
                    "AnalysisInconclusive", f"{where}: {details} ({counts}); the canary is not promoted"
                )
                return False
            self._emit("AnalysisInconclusive", f"{where}: {details} ({counts})", warning=True)
        else:
            rollout.measurements += 1
            self._emit("AnalysisPassed", f"{where}: " + "; ".join(run.message for run in runs))
        return True

    # ------------------------------------------------------------------ endings

    def _roll_back(self, reason: str, message: str) -> None:
        self._reject("RolledBack", reason, message)

    def _fail(self, reason: str, message: str) -> None:
        self._reject("Failed", reason, message)

    def _reject(self, phase: Phase, reason: str, message: str) -> None:
        """Every ending short of promotion looks the same to traffic: all of it on stable, the
        canary scaled to zero and kept until the spec changes."""
        self.status.phase = phase
        self.rollout.weight = 0
        self.rollout.message = message
        self._set_condition("Degraded", "True", reason, message)
        self._emit("RolledBack" if phase == "RolledBack" else "RolloutFailed", message, warning=True)

    # ------------------------------------------------------------------ outputs

    def _remove_retired(self) -> None:
        rollout = self.rollout
        in_role = {self._stable, self._canary}
        rollout.retiring = [revision for revision in rollout.retiring if revision not in in_role]
        if not rollout.retiring or rollout.retire_after is None:
            rollout.retiring, rollout.retire_after = [], None
            return
        deadline = parse_timestamp(rollout.retire_after)
        if self.now < deadline:
            self._wait_until(deadline)
            return
        for revision in rollout.retiring:
            self._emit("RevisionRemoved", f"revision {revision} removed")
        rollout.retiring, rollout.retire_after = [], None

    def _set_condition(self, kind: str, state: Literal["True", "False"], reason: str, message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions, kind, state, reason, message, self.stamp
        )

    def _set_conditions(self) -> None:
        phase = self._phase
        message = self.rollout.message
        if phase in IN_FLIGHT or (phase == "Stable" and message):
            self._set_condition(
                "Progressing", "True", phase if phase in IN_FLIGHT else "WaitingForReplicas", message
            )
        elif phase == "Stalled":
            self._set_condition("Progressing", "False", "ProgressDeadlineExceeded", message)
        else:
            self._set_condition(
                "Progressing", "False", str(phase), message or f"revision {self._stable} is stable"
            )
        if phase not in REJECTED:
            self._set_condition("Degraded", "False", "Healthy", "")

    def _live_revisions(self) -> tuple[LiveRevision, ...]:
        live = [LiveRevision(self._stable, "stable")]
        if self._canary is not None:
            live.append(LiveRevision(self._canary, "canary", scaled_to_zero=self._phase in REJECTED))
        live.extend(LiveRevision(revision, "retiring") for revision in self.rollout.retiring)
        return tuple(live)

    def _revision_status(self, live: LiveRevision) -> RevisionStatus:
        readiness = self._readiness(live.revision)
        return RevisionStatus(
            name=live.revision,
            role=live.role,
            desired_replicas=readiness.desired,
            ready_replicas=readiness.ready,
        )

    def _canary_weight(self) -> int:
        in_flight = self._canary is not None and self._phase in IN_FLIGHT
        return self.rollout.weight if in_flight and self._canary_serving() else 0

    def _requeue_after(self) -> float | None:
        if not self.wake_times:
            return None
        return max(0.0, (min(self.wake_times) - self.now).total_seconds())
