"""Would applying `desired` change `live`? Decides whether a write is needed at all.

Server-side apply of an unchanged object is still a write (it costs an etcd round trip and
wakes every watcher), so the operator compares first. `desired` is compared as a subset of
`live`: fields the API server or other controllers add (defaults, status, replicas owned
by an autoscaler) do not count, and values the server normalises (quantities such as
"1000m" → "1", integers sent as strings) are compared by meaning.
"""

from __future__ import annotations

from typing import Any

from modeldeploy.quantity import parse_quantity


def needs_apply(desired: dict[str, Any], live: dict[str, Any]) -> bool:
    return not _contains(live, desired)


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
