"""Runtime templates: which ModelRuntime a ModelDeployment uses, and its spec with it merged in.

Pure. `resolve` picks the template (`spec.runtime.name`, or the one ModelRuntime that
auto-selects `spec.model.format`), merges it under the model's own runtime fields (every field
the model sets wins; maps and `env` merge by key, lists are replaced), and records which
template and generation were used. The revision hash covers the merged result, so a template
edit makes a new revision only when the template's `updatePolicy` is Rollout: under Pinned a
model whose own spec is unchanged keeps the revision it has (its Deployment carries the merged
spec it was made from), whatever happened to the template since.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from modeldeploy.api.model_runtime import ModelRuntime
from modeldeploy.api.models import ModelDeploymentSpec, Runtime
from modeldeploy.render.revision import RevisionSpec, RuntimeTemplate


class UnresolvedRuntime(ValueError):
    """The model's runtime cannot be made: `reason` for the condition, the message names the field."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Resolved:
    spec: ModelDeploymentSpec
    """The model's spec with the template merged into spec.runtime."""
    revision_spec: RevisionSpec

    @property
    def revision(self) -> str:
        return self.revision_spec.revision


def resolve(
    spec: ModelDeploymentSpec, runtimes: Mapping[str, ModelRuntime], live: Iterable[RevisionSpec] = ()
) -> Resolved:
    """The spec to render and its revision; `live` are the specs of the model's live revisions
    (from their Deployments), where a Pinned template's earlier content is found. Raises
    UnresolvedRuntime when no template can be used and none is pinned."""
    source = RevisionSpec.of(spec).revision
    try:
        template = choose(spec, runtimes)
    except UnresolvedRuntime:
        pinned = _pinned(live, source)
        if pinned is None:
            raise
        # The template went away (or another became ambiguous): the revision keeps what it ran.
        return _reuse(spec, pinned)
    if template is None:
        return Resolved(spec, RevisionSpec.of(spec))
    pinned = _pinned(live, source)
    if pinned is not None and template.spec.update_policy == "Pinned":
        return _reuse(spec, pinned)
    merged = spec.model_copy(update={"runtime": merge(template.spec.runtime, spec.runtime)})
    used = RuntimeTemplate(name=template.name, generation=template.generation, source=source)
    return Resolved(merged, RevisionSpec.of(merged, used))


def choose(spec: ModelDeploymentSpec, runtimes: Mapping[str, ModelRuntime]) -> ModelRuntime | None:
    """The template the spec asks for; None when it asks for none (it names its own image)."""
    name = spec.runtime.name
    if name is not None:
        if name not in runtimes:
            raise UnresolvedRuntime(
                "RuntimeNotFound",
                f"spec.runtime.name: there is no ModelRuntime {name!r} ({_known(runtimes)})",
            )
        return runtimes[name]
    if spec.runtime.image is not None or spec.model.format is None:
        return None
    model_format = spec.model.format
    serving = sorted(name for name, runtime in runtimes.items() if runtime.serves(model_format))
    if not serving:
        raise UnresolvedRuntime(
            "NoRuntimeForFormat",
            f"spec.model.format {model_format!r}: no ModelRuntime auto-selects it ({_known(runtimes)}); "
            "set spec.runtime.name or spec.runtime.image",
        )
    if len(serving) > 1:
        raise UnresolvedRuntime(
            "AmbiguousRuntime",
            f"spec.model.format {model_format!r}: ModelRuntimes {', '.join(serving)} all auto-select it; "
            "set spec.runtime.name to one of them",
        )
    return runtimes[serving[0]]


def merge(template: Runtime, own: Runtime) -> Runtime:
    """`own` over `template`: fields `own` sets win; nested objects and maps merge key by key,
    env by variable name; lists (command, args, tolerations) are replaced whole."""
    merged = _merged(template.model_dump(exclude_unset=True), own.model_dump(exclude_unset=True))
    merged.pop("name", None)
    try:
        return Runtime.model_validate(merged)
    except ValidationError as error:
        issue = error.errors()[0]
        # A rule across fields names its field in the context; a field's own check in `loc`.
        parts = [*map(str, issue["loc"]), (issue.get("ctx") or {}).get("field", "")]
        where = "".join(f".{part}" for part in parts if part)
        raise UnresolvedRuntime(
            "InvalidRuntime", f"spec.runtime{where}, merged with its ModelRuntime: {issue['msg']}"
        ) from error


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        elif key == "env" and key in result:
            names = {variable["name"] for variable in value}
            result[key] = [v for v in result[key] if v["name"] not in names] + value
        else:
            result[key] = value
    return result


def _pinned(live: Iterable[RevisionSpec], source: str) -> RevisionSpec | None:
    return next((spec for spec in live if spec.template is not None and spec.template.source == source), None)


def _reuse(spec: ModelDeploymentSpec, pinned: RevisionSpec) -> Resolved:
    return Resolved(spec.model_copy(update={"runtime": pinned.runtime}), pinned)


def _known(runtimes: Mapping[str, ModelRuntime]) -> str:
    if not runtimes:
        return "none are installed"
    return "installed: " + ", ".join(sorted(runtimes))
