"""Builders and a simulated cluster for the rollout state machine tests (no tests here).

`World` plays the controller's part: it reads observations, measures when asked (with
verdicts the test chooses; the real Prometheus path is tested in tests/analysis/), applies
decisions, and round-trips the status through JSON on every tick, as a restart would.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from modeldeploy.api.models import Analysis, AnalysisRun, ModelDeploymentSpec, ModelDeploymentStatus
from modeldeploy.render.revision import revision_of
from modeldeploy.rollout.machine import (
    Action,
    Decision,
    Event,
    Observations,
    Request,
    RevisionReadiness,
    decide,
)
from modeldeploy.rollout.timing import format_timestamp

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
PROMETHEUS = {"address": "http://prometheus.monitoring:9090"}
SUCCESS_RATE = {"name": "success-rate", "template": "success-rate", "source": "model-server", "min": 0.99}

Verdict = Literal["Successful", "Failed", "Inconclusive"]


def spec_of(
    image: str = "server:1",
    strategy: str = "canary",
    weight: int = 0,
    steps: list[dict[str, Any]] | None = None,
    analysis: dict[str, Any] | None = None,
    delay: int = 30,
) -> ModelDeploymentSpec:
    canary: dict[str, Any] = {"weight": weight, "steps": steps or [], "scaleDownDelaySeconds": delay}
    if analysis is not None:
        canary["analysis"] = analysis
    return ModelDeploymentSpec.model_validate(
        {
            "model": {"uri": "s3://models/sentiment/v1/"},
            "runtime": {"image": image},
            "rollout": {"strategy": strategy, "canary": canary},
        }
    )


def reloaded(status: ModelDeploymentStatus) -> ModelDeploymentStatus:
    """The status as the operator reads it back from the API server."""
    return ModelDeploymentStatus.model_validate_json(status.model_dump_json(by_alias=True, exclude_none=True))


def measured(analysis: Analysis, verdict: Verdict, now: datetime) -> tuple[AnalysisRun, ...]:
    value = {"Successful": 0.999, "Failed": 0.9, "Inconclusive": None}[verdict]
    message = {
        "Successful": "success-rate = 0.999, within min 0.99",
        "Failed": "success-rate = 0.9, below min 0.99",
        "Inconclusive": "no data: the query returned no series",
    }[verdict]
    return tuple(
        AnalysisRun(
            metric=metric.name, value=value, verdict=verdict, message=message, time=format_timestamp(now)
        )
        for metric in analysis.metrics
    )


@dataclass
class World:
    """One ModelDeployment and what the cluster around it reports."""

    spec: ModelDeploymentSpec
    now: datetime = T0
    status: ModelDeploymentStatus = field(default_factory=ModelDeploymentStatus)
    live: dict[str, RevisionReadiness] = field(default_factory=dict)
    routed: int | None = 0
    router_reports: bool = True
    request: Request | None = None
    verdict: Verdict = "Successful"
    auto_ready: bool = True
    events: list[Event] = field(default_factory=list)
    measurements_taken: int = 0
    last: Decision | None = None
    generation: int | None = None

    def observations(self) -> Observations:
        return Observations(
            revision=revision_of(self.spec),
            live=dict(self.live),
            routed_weight=self.routed if self.router_reports else None,
            request=self.request,
            generation=self.generation,
        )

    def tick(self, seconds: float = 0) -> Decision:
        self.now += timedelta(seconds=seconds)
        observations = self.observations()
        status = reloaded(self.status)
        decision = decide(self.spec, status, observations, self.now)
        if decision.analysis_due is not None:
            runs = measured(decision.analysis_due, self.verdict, self.now)
            self.measurements_taken += 1
            decision = decide(self.spec, status, replace(observations, measurements=runs), self.now)
        self.apply(decision)
        return decision

    def apply(self, decision: Decision) -> None:
        self.last = decision
        self.status = decision.status
        # The controller records the generation it acted on with every status.
        self.status.observed_generation = self.generation
        self.routed = decision.canary_weight
        self.events.extend(decision.events)
        wanted = {live.revision: live for live in decision.revisions}
        for revision, live in wanted.items():
            if live.scaled_to_zero:
                self.live[revision] = RevisionReadiness(ready=0, desired=0)
            elif revision not in self.live or self.live[revision].desired == 0:
                self.live[revision] = RevisionReadiness(ready=1 if self.auto_ready else 0, desired=1)
        for revision in set(self.live) - set(wanted):
            del self.live[revision]

    def ask(self, action: Action) -> None:
        self.request = Request.issue(action, self.now)

    def set_ready(self, revision: str, ready: int, desired: int = 1) -> None:
        self.live[revision] = RevisionReadiness(ready=ready, desired=desired)

    def change(self, **changes: Any) -> str:
        """Edit the spec as GitOps would; returns the new revision."""
        data = self.spec.model_dump(by_alias=True, exclude_unset=True)
        for path, value in changes.items():
            target = data
            *parents, leaf = path.split(".")
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = value
        self.spec = ModelDeploymentSpec.model_validate(data)
        return revision_of(self.spec)

    def reasons(self) -> list[str]:
        return [event.reason for event in self.events]

    def condition(self, kind: str) -> tuple[str, str, str]:
        found = next(c for c in self.status.conditions if c.type == kind)
        return found.status, found.reason, found.message
