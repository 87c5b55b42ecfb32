"""Checking ModelDeployment manifests the way the API server does, with messages that name
the field: what the CLI prints and what the operator reports in a condition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from modeldeploy.api.models import (
    DNS_LABEL_PATTERN,
    DURATION_PATTERN,
    HOSTNAME_PATTERN,
    QUANTITY_PATTERN,
    ModelDeployment,
)

_PATTERN_WORDS = {
    QUANTITY_PATTERN: "a quantity such as 500m, 2, 1.5, 512Mi or 8Gi",
    DURATION_PATTERN: "a duration such as 250ms, 30s, 5m or 1h30m",
    DNS_LABEL_PATTERN: "a DNS label: lowercase letters, digits and '-', starting and ending with a letter "
    "or digit",
    HOSTNAME_PATTERN: "a lowercase host name such as model.example.com or *.example.com",
}


KindT = TypeVar("KindT", bound=BaseModel)


class InvalidModelDeployment(ValueError):
    """A manifest the API server would refuse; `problems` are "field.path: message" lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid ModelDeployment:\n" + "\n".join(f"  {problem}" for problem in problems))
        self.problems = problems


def parse_model_deployment(manifest: Mapping[str, Any]) -> ModelDeployment:
    """A manifest as written (camelCase field names only, as on the wire), validated."""
    return parse_manifest(manifest, ModelDeployment)


def parse_manifest(manifest: Mapping[str, Any], kind: type[KindT]) -> KindT:
    """A manifest of `kind` (ModelDeployment or ModelRuntime) as written, validated."""
    try:
        return kind.model_validate(manifest, by_alias=True, by_name=False)
    except ValidationError as error:
        raise InvalidModelDeployment(field_errors(error)) from error


def field_errors(error: ValidationError) -> list[str]:
    """One "field.path: message" line per error, paths written as kubectl writes them."""
    problems = []
    for detail in error.errors(include_url=False):
        context = detail.get("ctx") or {}
        path = _path(detail["loc"], context.get("field", ""))
        message = context.get("message") or _plain_words(detail["type"], context) or detail["msg"]
        problems.append(f"{path}: {message}" if path else message)
    return problems


def _plain_words(error_type: str, context: dict[str, Any]) -> str | None:
    """What is allowed, where pydantic's own message would only show a regular expression."""
    if error_type == "extra_forbidden":
        return "unknown field (field names are camelCase, as in docs/api.md)"
    if error_type == "string_pattern_mismatch" and context.get("pattern") in _PATTERN_WORDS:
        return f"must be {_PATTERN_WORDS[context['pattern']]}"
    return None


def _path(loc: tuple[int | str, ...], field: str) -> str:
    path = ""
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    return _join(path, field)


def _join(path: str, field: str) -> str:
    if not field:
        return path
    return f"{path}.{field}" if path else field
