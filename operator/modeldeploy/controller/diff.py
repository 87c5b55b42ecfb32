"""Would applying `desired` change `live`? Decides whether a write is needed at all.

Server-side apply of an unchanged object is still a write (it costs an etcd round trip and
wakes every watcher), so the operator compares first. `desired` is compared as a subset of
`live`: fields the API server or other controllers add (defaults, status, replicas owned
by an autoscaler) do not count, and values the server normalises (quantities such as
"1000m" → "1", integers sent as strings) are compared by meaning.

A field we applied before and no longer want (a selector key, a label, `replicas` once an
autoscaler takes over) is not in `desired`, so the subset test cannot see it; our entry in
`managedFields` can: applying would remove it, so that too needs a write.
"""

from __future__ import annotations

from typing import Any

from modeldeploy.quantity import parse_quantity


def needs_apply(desired: dict[str, Any], live: dict[str, Any], manager: str) -> bool:
    return not _contains(live, desired) or _drops_owned_field(desired, live, _owned_fields(live, manager))


def _owned_fields(live: dict[str, Any], manager: str) -> dict[str, Any]:
    """The fieldsV1 tree of `manager`'s apply entry: {"f:spec": {"f:replicas": {}}, ...}."""
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            return dict(entry.get("fieldsV1") or {})
    return {}


def _drops_owned_field(desired: Any, live: Any, owned: dict[str, Any]) -> bool:
    """A map key we own that `desired` leaves out. A map owned whole (atomic, such as a
    Service's selector) must match exactly. Lists are not descended: their items are
    compared whole (and by count) by the subset test."""
    if not isinstance(desired, dict) or not isinstance(live, dict):
        return False
    for key, below in owned.items():
        if not key.startswith("f:"):
            continue
        name = key[2:]
        if name not in desired:
            return True
        wanted, present = desired[name], live.get(name)
        if (
            not below
            and isinstance(wanted, dict)
            and isinstance(present, dict)
            and set(present) != set(wanted)
        ):
            return True
        if _drops_owned_field(wanted, present, below):
            return True
    return False


def _contains(live: Any, desired: Any) -> bool:
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            _contains(live.get(key), value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(_contains(item_live, item) for item_live, item in zip(live, desired, strict=True))
        )
    if desired is None:
        return live is None
    if isinstance(live, bool) or isinstance(desired, bool):
        return live is desired
    return live == desired or _same_quantity(live, desired)


def _same_quantity(live: Any, desired: Any) -> bool:
    if not isinstance(live, (str, int, float)) or not isinstance(desired, (str, int, float)):
        return False
    try:
        return parse_quantity(live) == parse_quantity(desired)
    except ValueError:
        return False


def edited_by_others(desired: dict[str, Any], live: dict[str, Any], manager: str) -> bool:
    """Someone else (`kubectl edit`, `patch`, `set image`…) took a field we apply: writing
    `desired` now puts back a hand edit, rather than carrying out a change of our own."""
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == manager or entry.get("subresource"):
            continue  # status and scale belong to the controllers that own them
        if _shares_field(desired, dict(entry.get("fieldsV1") or {})):
            return True
    return False


def _shares_field(desired: Any, owned: dict[str, Any]) -> bool:
    if not isinstance(desired, dict):
        return True  # a value, or a list owned item by item: the other manager holds part of it
    for key, below in owned.items():
        if (
            key.startswith("f:")
            and key[2:] in desired
            and (not below or _shares_field(desired[key[2:]], below))
        ):
            return True
    return False
