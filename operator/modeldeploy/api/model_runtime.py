"""The ModelRuntime API: a server template the platform team keeps, cluster-scoped.

A ModelRuntime holds what every model served by one server shares (image, arguments with
placeholders, port, probes, default resources, shared memory, environment, metrics) and the
model formats it serves. A ModelDeployment names one in `spec.runtime.name`, or gets the one
serving `spec.model.format`; every field the ModelDeployment sets wins (modeldeploy.api.runtimes).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modeldeploy.api.models import (
    DNS_LABEL_PATTERN,
    INHERITS_UNSET,
    Model,
    Runtime,
    _list_map,
)
from modeldeploy.api.rules import Rule, check_rules, matches

RUNTIME_KIND = "ModelRuntime"
RUNTIME_PLURAL = "modelruntimes"
MAX_FORMATS = 32

UpdatePolicy = Literal["Pinned", "Rollout"]


class ModelFormat(Model):
    """A model format the server reads."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$",
        description="The format as ModelDeployments write spec.model.format, lowercase: e.g. huggingface, "
        "onnx, sklearn.",
    )
    auto_select: bool = Field(
        default=True,
        description="Chosen for a ModelDeployment that sets this format and neither runtime.name nor "
        "runtime.image, when no other ModelRuntime auto-selects the same format.",
    )


class ModelRuntimeSpec(Model):
    """A server template: the defaults of spec.runtime for the models that use it."""

    rules: ClassVar[tuple[Rule[ModelRuntimeSpec], ...]] = (
        Rule(
            cel="has(self.runtime.image)",
            message="runtime.image is required: a template must say which server it runs",
            holds=lambda spec: spec.runtime.image is not None,
            field="runtime.image",
        ),
        Rule(
            cel="!has(self.runtime.name)",
            message="runtime.name must be unset: a template cannot start from another template",
            holds=lambda spec: spec.runtime.name is None,
            field="runtime.name",
        ),
    )

    model_formats: list[ModelFormat] = Field(
        default_factory=list,
        max_length=MAX_FORMATS,
        description="Formats the server reads; spec.model.format selects among them.",
        json_schema_extra=_list_map("name"),
    )
    update_policy: UpdatePolicy = Field(
        default="Pinned",
        description="What an edit of this template does to the models using it. Pinned: nothing until "
        "their own spec changes (each revision keeps the template it was made from). Rollout: every model "
        "using it gets a new revision, which rolls out as the model's spec.rollout says.",
    )
    runtime: Runtime = Field(
        description="The server: any field of a ModelDeployment's spec.runtime except name.",
        json_schema_extra={INHERITS_UNSET: True},
    )


class ModelRuntime(BaseModel):
    """A model server template owned by the platform team (cluster-scoped)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    rules: ClassVar[tuple[Rule[ModelRuntime], ...]] = (
        Rule(
            cel=f"self.metadata.name.size() <= 63 && self.metadata.name.matches('{DNS_LABEL_PATTERN}')",
            message="metadata.name must be a DNS label (lowercase letters, digits and '-'): ModelDeployments "
            "name it in spec.runtime.name",
            holds=lambda runtime: _is_dns_label(runtime.metadata.get("name")),
        ),
    )

    api_version: Literal["modeldeploy.io/v1alpha1"] = Field(
        default="modeldeploy.io/v1alpha1", alias="apiVersion"
    )
    kind: Literal["ModelRuntime"] = "ModelRuntime"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ModelRuntimeSpec

    @model_validator(mode="after")
    def _check_rules(self) -> ModelRuntime:
        check_rules(self, self.rules)
        return self

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def generation(self) -> int:
        return int(self.metadata.get("generation") or 0)

    def serves(self, model_format: str) -> bool:
        """Whether this template is chosen automatically for `model_format` (case-insensitive)."""
        return any(f.auto_select and f.name == model_format.lower() for f in self.spec.model_formats)


def _is_dns_label(name: Any) -> bool:
    # Objects not yet named (generateName) are named by the API server, which checks them.
    return name is None or (len(str(name)) <= 63 and matches(DNS_LABEL_PATTERN, str(name)))
