"""kstatus conditions: set one, keeping its transition time unless its status changes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from modeldeploy.api.models import Condition

ConditionStatus = Literal["True", "False", "Unknown"]


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with seconds, as Kubernetes writes times."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[Condition], kind: str, status: ConditionStatus, reason: str, message: str, now: datetime
) -> list[Condition]:
    """`conditions` with the one of type `kind` replaced (or added) in place of order."""
    previous = next((condition for condition in conditions if condition.type == kind), None)
    changed = previous is None or previous.status != status
    condition = Condition(
        type=kind,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=timestamp(now) if changed or previous is None else previous.last_transition_time,
    )
    if previous is None:
        return [*conditions, condition]
    return [condition if c.type == kind else c for c in conditions]
