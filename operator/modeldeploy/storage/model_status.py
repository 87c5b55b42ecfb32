"""What status says about the served model and its signature, and the events a change of it makes.

Pure: from the model state read back from the pods (termination.py) to `status.model`, the
signer recorded per revision in `status.history`, and the events to emit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modeldeploy.api.models import HistoryEntry, ModelDeploymentStatus, ResolvedModel
from modeldeploy.storage.termination import SIGNATURE_INVALID, SIGNATURE_MISSING, ModelState

MODEL_VERIFIED = "ModelVerified"
SIGNATURE_FAILURES = (SIGNATURE_INVALID, SIGNATURE_MISSING)


@dataclass(frozen=True)
class ModelEvent:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def resolved_model(uri: str, state: ModelState) -> ResolvedModel:
    """`status.model` of the stable revision: its digest, and its signer once verified."""
    verified = True if state.signed_by else None
    return ResolvedModel(uri=uri, resolved_digest=state.digest, verified=verified, signed_by=state.signed_by)


def history_with_signer(
    history: list[HistoryEntry], revision: str | None, model: ResolvedModel
) -> list[HistoryEntry]:
    """The history with the signer of `revision`'s model recorded in its newest entry: a revision
    enters the history when it becomes stable, before its pods report the signature."""
    if revision is None or not model.verified:
        return history
    newest = max((i for i, entry in enumerate(history) if entry.revision == revision), default=None)
    if newest is None or history[newest].signed_by == model.signed_by:
        return history
    entry = history[newest].model_copy(update={"verified": True, "signed_by": model.signed_by})
    return [*history[:newest], entry, *history[newest + 1 :]]


def model_events(before: ModelDeploymentStatus, after: ModelDeploymentStatus) -> list[ModelEvent]:
    """Events for a model that newly verified, or whose signature newly failed."""
    events = []
    old, new = before.model, after.model
    if (
        new is not None
        and new.verified
        and (old is None or (old.resolved_digest, old.signed_by) != (new.resolved_digest, new.signed_by))
    ):
        events.append(
            ModelEvent(
                "Normal",
                MODEL_VERIFIED,
                f"revision {after.stable_revision}: {new.uri} ({new.resolved_digest}) verified, signed by {new.signed_by}",
            )
        )
    failure = _model_ready_failure(after)
    if failure is not None and failure != _model_ready_failure(before):
        reason, message = failure
        events.append(ModelEvent("Warning", reason, f"revision {after.stable_revision}: {message}"))
    return events


def _model_ready_failure(status: ModelDeploymentStatus) -> tuple[str, str] | None:
    condition = next((c for c in status.conditions if c.type == "ModelReady"), None)
    if condition is None or condition.status != "False" or condition.reason not in SIGNATURE_FAILURES:
        return None
    return condition.reason, condition.message
