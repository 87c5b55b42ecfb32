"""Revisions: the pod-affecting part of a spec, and its hash.

A revision changes only when what runs in the pods changes (model, runtime). Traffic,
rollout and autoscaling settings apply to whatever revisions are live and never make a
new one. Each revision's Deployment carries its RevisionSpec in an annotation, so an
older revision can be rendered again after the spec has moved on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from pydantic import ConfigDict

from modeldeploy.api.models import Model, ModelDeploymentSpec, ModelSource, Runtime

REVISION_SPEC_ANNOTATION = "modeldeploy.io/revision-spec"
REVISION_LENGTH = 10

Role = Literal["stable", "canary", "retiring"]


class RuntimeTemplate(Model):
    """Which ModelRuntime a revision's server was made from, and from which spec of the model."""

    model_config = ConfigDict(frozen=True)

    name: str
    generation: int
    source: str
    """The revision hash of the ModelDeployment's own model and runtime, before the template was
    merged in: the same spec finds the same (pinned) revision again."""


class RevisionSpec(Model):
    """What a revision runs: the model and the server (after its ModelRuntime was merged in)."""

    model_config = ConfigDict(frozen=True)

    model: ModelSource
    runtime: Runtime
    # Left out of the hash when None, so models without a template keep their revisions.
    template: RuntimeTemplate | None = None

    @classmethod
    def of(cls, spec: ModelDeploymentSpec, template: RuntimeTemplate | None = None) -> RevisionSpec:
        return cls(model=spec.model, runtime=spec.runtime, template=template)

    def to_annotation(self) -> str:
        return json.dumps(
            self.model_dump(by_alias=True, exclude_defaults=True), sort_keys=True, separators=(",", ":")
        )

    @classmethod
    def from_annotation(cls, text: str) -> RevisionSpec:
        return cls.model_validate_json(text)

    @property
    def revision(self) -> str:
        """Short hash of the canonical JSON; defaults are left out so adding a defaulted field
        to the API does not roll every model."""
        return hashlib.sha256(self.to_annotation().encode()).hexdigest()[:REVISION_LENGTH]


def revision_of(spec: ModelDeploymentSpec) -> str:
    return RevisionSpec.of(spec).revision


@dataclass(frozen=True)
class RevisionPlan:
    """One live revision as the rollout wants it: its role, and its replicas.

    `replicas` is None when an autoscaler owns the Deployment's replicas, so the rendered
    Deployment leaves the field out and the autoscaler is never reverted.
    """

    revision: str
    role: Role
    spec: RevisionSpec
    replicas: int | None
