"""Cross-field rules, each written once and checked in two places.

A rule pairs a CEL expression (which the CRD generator puts in `x-kubernetes-validations`,
so the API server refuses a bad `kubectl apply`) with a Python predicate (which the
pydantic models run, so the operator and the CLI refuse the same objects), under one
message. Models list their rules in a `rules` class attribute; the two sides cannot
drift apart silently because a cluster test feeds generated objects to both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic.alias_generators import to_snake
from pydantic_core import PydanticCustomError

ModelT = TypeVar("ModelT")

RULE_ERROR = "rule"
DUPLICATE_KEY_ERROR = "duplicate_key"
LIST_TYPE = "x-kubernetes-list-type"
LIST_MAP_KEYS = "x-kubernetes-list-map-keys"


@dataclass(frozen=True, kw_only=True)
class Rule(Generic[ModelT]):
    """An invariant of one object: `cel` sees it as `self`, `holds` as the validated model.

    `field` is the path, relative to the object, of the field the message is about; the API
    server reports it through `fieldPath`, pydantic through the error context. A rule whose
    message names the offending value gives it twice: `message_expression` in CEL for the API
    server, `explain` in Python; `message` is the fallback for both.
    """

    cel: str
    message: str
    holds: Callable[[ModelT], bool]
    field: str = ""
    message_expression: str = ""
    explain: Callable[[ModelT], str] | None = None

    def validation(self) -> dict[str, str]:
        """The `x-kubernetes-validations` entry of this rule."""
        entry = {"rule": self.cel, "message": self.message}
        if self.message_expression:
            entry["messageExpression"] = self.message_expression
        if self.field:
            entry["fieldPath"] = "." + self.field
        return entry


def matches(pattern: str, text: str) -> bool:
    """CEL's `matches` on an anchored pattern (RE2), in Python: `re.fullmatch` keeps `$` from
    accepting a trailing newline, which RE2 would refuse."""
    return re.fullmatch(pattern, text) is not None


def check_rules(model: Any, rules: tuple[Rule[Any], ...]) -> None:
    """Raise the first broken rule as a pydantic error (the API server reports all of them;
    either way the object is refused with that rule's message)."""
    for rule in rules:
        if not rule.holds(model):
            # The message goes in as a context value, not as the template, so braces in it stay literal.
            message = rule.explain(model) if rule.explain else rule.message
            raise PydanticCustomError(RULE_ERROR, "{message}", {"message": message, "field": rule.field})


def check_unique_keys(model: Any) -> None:
    """Entries of a list declared `x-kubernetes-list-type: map` must differ in their keys, as
    the API server demands; the declaration on the field drives both checks."""
    for name, field in type(model).model_fields.items():
        extra = field.json_schema_extra
        if not isinstance(extra, dict) or extra.get(LIST_TYPE) != "map":
            continue
        keys = extra[LIST_MAP_KEYS]
        assert isinstance(keys, list)
        seen: set[tuple[Any, ...]] = set()
        for index, entry in enumerate(getattr(model, name)):
            key = tuple(getattr(entry, to_snake(k)) for k in keys)
            if key in seen:
                raise PydanticCustomError(
                    DUPLICATE_KEY_ERROR,
                    "{message}",
                    {
                        "message": f"duplicate entry: {', '.join(map(str, keys))} must be unique, "
                        f"{'/'.join(map(str, key))} appears twice",
                        "field": f"{field.alias or name}[{index}]",
                    },
                )
            seen.add(key)
