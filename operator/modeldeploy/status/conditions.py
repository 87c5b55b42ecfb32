"""Every condition a ModelDeployment reports, declared once.

The shape follows Knative's ConditionSet and kstatus: one summary condition (Ready, derived
from the others), the two kstatus conditions that Flux, `kubectl wait`, cli-utils and kpt
read (Reconciling and Stalled, "abnormal-true": present and True only while something is
wrong or unfinished), and the detail conditions people read in `kubectl describe`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modeldeploy.capacity import CONDITION_TYPE as GPU_CAPACITY

ConditionStatus = Literal["True", "False", "Unknown"]


@dataclass(frozen=True)
class ConditionType:
    name: str
    abnormal_true: bool
    """True means something needs attention (kstatus's "abnormal-true" polarity)."""
    meaning: str


READY = ConditionType("Ready", False, "the stable revision serves with all replicas ready and traffic routed")
RECONCILING = ConditionType(
    "Reconciling", True, "the operator is still moving the cluster toward the spec (kstatus InProgress)"
)
STALLED = ConditionType(
    "Stalled", True, "the operator cannot progress until someone changes something (kstatus Failed)"
)
PROGRESSING = ConditionType("Progressing", False, "a rollout is in flight")
DEGRADED = ConditionType("Degraded", True, "the rollout ended short of promotion, or a child is refused")
MODEL_READY = ConditionType("ModelReady", False, "the stable revision's pods have the model")
TRAFFIC_READY = ConditionType("TrafficReady", False, "the traffic provider routes as decided")
GPU = ConditionType(GPU_CAPACITY, False, "the pods' GPUs fit on the free GPUs of matching nodes")

# In the order they are written, so that status reads the same on every pass.
# kstatus takes whichever of Reconciling and Stalled comes first when both are True (never,
# by construction): Stalled first, as the more useful of the two.
REGISTRY: tuple[ConditionType, ...] = (
    READY,
    STALLED,
    RECONCILING,
    PROGRESSING,
    DEGRADED,
    MODEL_READY,
    TRAFFIC_READY,
    GPU,
)
READY_DEPENDS_ON: tuple[ConditionType, ...] = (MODEL_READY, TRAFFIC_READY)
"""Ready is False whenever one of these is False (GPUCapacity is advice, not a dependency:
pods that are already placed keep serving when the free GPUs run out)."""


@dataclass(frozen=True)
class Verdict:
    """A condition as one pass judges it, before transition times are kept."""

    type: ConditionType
    status: ConditionStatus
    reason: str
    message: str = ""

    @property
    def abnormal(self) -> bool:
        return (self.status == "True") == self.type.abnormal_true and self.status != "Unknown"
