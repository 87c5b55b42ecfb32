"""Would applying `desired` change `live`? The one comparison that decides whether a write
is needed, used by the controller before every apply and by the routers' read-back.

Server-side apply of an unchanged object is still a write (it costs an etcd round trip and
wakes every watcher), so the operator compares first. Two questions, both needed:

1. **Is everything we set there?** `desired` is compared as a subset of `live`: fields the
   API server or other controllers add (status, a Service's clusterIP, `replicas` owned by
   an autoscaler, an annotation someone else put on) do not count, and values the server
   normalises (quantities such as "1000m" → "1", integers sent as strings) compare by
   meaning.

2. **Is anything left that we set before and no longer render?** Apply removes such a
   field, so it is a difference, although the subset test cannot see it (it is simply
   absent from `desired`). Our own entry in `metadata.managedFields` (fieldsV1) says which
   fields we set, and we walk it beside `desired` and `live`:

   - `f:name` is a field of a map, `k:{...}` an item of a list keyed by those fields
     (containers by name, a Service's ports by port and protocol), `v:...` an item of a set,
     `i:N` an item by position. A field or item we own that `desired` no longer has needs a
     write; so does one inside a keyed list item, which is where a per-map check stops short.
   - A leaf (`{}`) over a map or list means we own the value *whole*: an atomic map (a
     Service's selector, a LabelSelector) or an atomic list. Gateway API declares every list
     of an HTTPRoute atomic (`rules`, `backendRefs`, `filters`, `matches`), and Istio's
     VirtualService lists are atomic by default, so fieldsV1 says `f:rules: {}` and nothing
     about the items: it cannot tell a `filters` key we rendered last time from a key the
     server added. Apply replaces such a value with exactly what we send, so it must match
     exactly, every key of every nested map included; a removed RequestMirror filter,
     `timeouts`, `mirror`, `mirrorPercentage` or `timeout` then counts.

   Exact comparison inside atomic values holds because the routers render every key the API
   server would otherwise default there (a backendRef's `group` and `kind`, a match's path,
   a header match's type): what they render is what the server stores. A default a newer CRD
   adds and no router renders errs on the safe side, one no-op apply per pass, never a stale
   route; the cluster tests apply every router's objects under our field manager against
   the real CRDs and require them to match, which is where such a default shows.

   Without an Apply entry of ours (an object we never applied) ownership is unknown and only
   the subset test applies.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from modeldeploy.quantity import parse_quantity

# The field manager of every apply the operator makes.
FIELD_MANAGER = "modeldeploy"

Path = tuple[str, ...]


def needs_apply(
    desired: dict[str, Any], live: dict[str, Any], manager: str, ignored: Collection[Path] = ()
) -> bool:
    """Whether server-side applying `desired` as `manager` would change `live`.

    `ignored` names map paths left out on both sides (the routers' read-back leaves out
    `("metadata", "ownerReferences")`: ownership routes nothing)."""
    owned = owned_fields(live, manager)
    for path in ignored:
        desired = _without(desired, path)
        live = _without(live, path)
        owned = _without(owned, tuple(f"f:{key}" for key in path))
    return not _contains(live, desired) or _drops_owned(desired, live, owned)


def owned_fields(live: dict[str, Any], manager: str) -> dict[str, Any]:
    """The fieldsV1 tree of `manager`'s apply entry: {"f:spec": {"f:replicas": {}}, ...}."""
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            return dict(entry.get("fieldsV1") or {})
    return {}


def _without(tree: dict[str, Any], path: Path) -> dict[str, Any]:
    if not path or not isinstance(tree, dict) or path[0] not in tree:
        return tree
    if len(path) == 1:
        return {key: value for key, value in tree.items() if key != path[0]}
    return {**tree, path[0]: _without(tree[path[0]], path[1:])}


# --------------------------------------------------------------------------- 1. subset


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
    return _same_value(live, desired)


def _same_value(live: Any, desired: Any) -> bool:
    if desired is None:
        return live is None
    if isinstance(live, bool) or isinstance(desired, bool):
        return live is desired
    return bool(live == desired) or _same_quantity(live, desired)


def _same_quantity(live: Any, desired: Any) -> bool:
    if not isinstance(live, (str, int, float)) or not isinstance(desired, (str, int, float)):
        return False
    try:
        return parse_quantity(live) == parse_quantity(desired)
    except ValueError:
        return False


# --------------------------------------------------------------------------- 2. owned fields


def _drops_owned(desired: Any, live: Any, owned: dict[str, Any]) -> bool:
    """Whether `owned` (our fieldsV1 at this level) holds a field `desired` no longer sets, or
    a value we own whole that `live` does not hold exactly."""
    for key, below in owned.items():
        if key == ".":  # the list item itself, named by its parent key
            continue
        found, wanted = _member(desired, key)
        if not found:
            return True
        _, present = _member(live, key)
        if below:
            if _drops_owned(wanted, present, below):
                return True
        elif _is_filled(wanted) and not _same_whole(wanted, present):
            return True
    return False


def _member(node: Any, key: str) -> tuple[bool, Any]:
    """(found, value) of one fieldsV1 key in `node`; a prefix this code does not know counts
    as found, so that it never causes a write by itself."""
    kind, _, name = key.partition(":")
    if kind == "f":
        if isinstance(node, dict) and name in node:
            return True, node[name]
        return False, None
    if not isinstance(node, list):
        return kind not in ("k", "v", "i"), None
    if kind == "k":
        fields = json.loads(name)
        for item in node:
            if isinstance(item, dict) and _has_key(item, fields):
                return True, item
        return False, None
    if kind == "v":
        value = json.loads(name)
        for item in node:
            if _same_whole(value, item):
                return True, item
        return False, None
    if kind == "i":
        index = int(name)
        return (True, node[index]) if 0 <= index < len(node) else (False, None)
    return True, None


def _has_key(item: dict[str, Any], fields: dict[str, Any]) -> bool:
    """Whether a list item has the key `fields` of a `k:` entry. A key field the item leaves
    out (a port's protocol, defaulted to TCP by the server) does not tell items apart."""
    given = [name for name in fields if name in item]
    return bool(given) and all(_same_value(item[name], fields[name]) for name in given)


def _is_filled(value: Any) -> bool:
    """A non-empty map or list: only then can a leaf own more than the value itself. An empty
    one (`emptyDir: {}`) may be a map whose keys other managers set."""
    return isinstance(value, (dict, list)) and bool(value)


def _same_whole(wanted: Any, present: Any) -> bool:
    """`present` is exactly `wanted`: same keys in every map, same items in every list."""
    if isinstance(wanted, dict):
        return (
            isinstance(present, dict)
            and present.keys() == wanted.keys()
            and all(_same_whole(value, present[key]) for key, value in wanted.items())
        )
    if isinstance(wanted, list):
        return (
            isinstance(present, list)
            and len(present) == len(wanted)
            and all(_same_whole(w, p) for w, p in zip(wanted, present, strict=True))
        )
    return _same_value(present, wanted)


# --------------------------------------------------------------------------- hand edits


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
