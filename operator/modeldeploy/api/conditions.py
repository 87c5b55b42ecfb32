"""kstatus conditions: set one, keeping its transition time unless its status changes."""

from __future__ import annotations

from typing import Literal

from modeldeploy.api.models import Condition

ConditionStatus = Literal["True", "False", "Unknown"]


def set_condition(
    conditions: list[Condition], kind: str, status: ConditionStatus, reason: str, message: str, stamp: str
) -> list[Condition]:
    """`conditions` with the one of type `kind` replaced in place (or added); `stamp` (RFC 3339)
    becomes its transition time when its status changes."""
    previous = next((condition for condition in conditions if condition.type == kind), None)
    condition = Condition(
        type=kind,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=stamp
        if previous is None or previous.status != status
        else previous.last_transition_time,
    )
    if previous is None:
        return [*conditions, condition]
    return [condition if c.type == kind else c for c in conditions]
