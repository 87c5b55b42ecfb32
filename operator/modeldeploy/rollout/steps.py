"""What automated canary steps mean, shared by the state machine and the status table."""

from __future__ import annotations

from modeldeploy.api.models import Analysis, Step
from modeldeploy.rollout.analysis import merged


def weight_at(steps: list[Step], index: int) -> int:
    """The canary weight in force at step `index`: set by the last weight step before it."""
    return next((step.weight for step in reversed(steps[:index]) if step.weight is not None), 0)


def describe_step(step: Step, defaults: Analysis | None) -> str:
    if step.weight is not None:
        return f"weight {step.weight}%"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration else "pause until resumed"
    if step.analysis is not None:
        analysis = merged(step.analysis, defaults)
        metrics = ", ".join(metric.name for metric in analysis.metrics) or "no metrics"
        return f"analysis {metrics}: {analysis.count} x every {analysis.interval}"
    return "empty step"


def waits_for_resume(step: Step) -> bool:
    """A pause without a duration: only `modeldeploy resume` ends it."""
    return step.pause is not None and step.pause.duration is None
