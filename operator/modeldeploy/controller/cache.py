"""Every ModelDeployment, child and server pod the watches delivered, indexed by model.

Like client-go's listers: a reconcile reads here instead of sending a GET and five LISTs to
the API server, although kopf already watches every one of those kinds. The watches feed it
(kopf event handlers), the first pass of each model after the operator starts fills it from
one LIST per kind (the watches may not have delivered everything yet), and the operator's
own writes feed it at once
(write-through), so a pass never acts on a copy older than its own last write: an event
older than what the cache holds is ignored.

Objects are held as compact JSON and parsed when read: a parsed Deployment takes about ten
times the memory of its text, and a pass reads only its own model's few objects, once. What
no pass reads is left out: a ModelDeployment's managedFields (the operator never compares
its own writes to it), and the managedFields entries of status writers (the controllers
that own a subresource), which the comparison of a child with its desired form skips anyway.

Resource versions are compared as integers. The API conventions call them opaque; every
Kubernetes API server derives them from etcd's revision, which only grows, and a version that
is not a number is simply taken as the newer.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any, NamedTuple

from modeldeploy.render.common import LABEL_MODEL

ModelKey = tuple[str, str]  # (namespace, ModelDeployment name)
Identity = tuple[str, str, str]  # (apiVersion, kind, name)
# A pod is read for why it is not ready (its status; for a GPU shortage what it requests and
# where) and what its model initializer said: the rest of its spec is most of its size.
POD_METADATA = ("name", "namespace", "labels", "resourceVersion", "creationTimestamp", "deletionTimestamp")


class _Held(NamedTuple):
    version: int | None
    text: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> _Held:
        return cls(_version(obj), json.dumps(obj, separators=(",", ":")))

    def is_newer_than(self, held: _Held | None) -> bool:
        return held is None or self.version is None or held.version is None or self.version >= held.version


def _version(obj: dict[str, Any]) -> int | None:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def _identity(obj: dict[str, Any]) -> Identity:
    return (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])


def _without_managed_fields(obj: dict[str, Any], keep: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    entries = obj["metadata"].get("managedFields")
    if not entries:
        return obj
    kept = [entry for entry in entries if keep(entry)]
    metadata = {key: value for key, value in obj["metadata"].items() if key != "managedFields"}
    return {**obj, "metadata": {**metadata, "managedFields": kept} if kept else metadata}


def _slim_model(body: dict[str, Any]) -> dict[str, Any]:
    return _without_managed_fields(body, keep=lambda entry: False)


def _slim_child(obj: dict[str, Any]) -> dict[str, Any]:
    return _without_managed_fields(obj, keep=lambda entry: not entry.get("subresource"))


def _slim_pod(pod: dict[str, Any]) -> dict[str, Any]:
    metadata, spec = pod["metadata"], pod.get("spec") or {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {key: metadata[key] for key in POD_METADATA if key in metadata},
        "spec": {
            "nodeName": spec.get("nodeName"),
            "nodeSelector": spec.get("nodeSelector") or {},
            **{
                section: [
                    {"name": c["name"], "resources": c.get("resources") or {}}
                    for c in spec.get(section) or []
                ]
                for section in ("initContainers", "containers")
            },
        },
        "status": pod.get("status") or {},
    }


class ObjectCache:
    def __init__(self) -> None:
        self._models: dict[ModelKey, _Held] = {}
        self._children: defaultdict[ModelKey, dict[Identity, _Held]] = defaultdict(dict)
        # The last version seen of objects deleted, so that a late event cannot bring one back.
        self._tombstones: dict[tuple[str, Identity], int] = {}
        # The version each of our own writes left, until its watch event (its echo) arrives.
        self._own_writes: dict[tuple[str, Identity], int] = {}
        self._listed: set[ModelKey] = set()

    # ------------------------------------------------------------------ reads

    def listed(self, namespace: str, model: str) -> bool:
        """Whether the model's children were listed since the operator started: until then the
        watches may not have delivered them all."""
        return (namespace, model) in self._listed

    def fill(self, namespace: str, model: str, objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            self.wrote(obj)
        self._listed.add((namespace, model))

    def model(self, namespace: str, name: str) -> dict[str, Any] | None:
        held = self._models.get((namespace, name))
        return json.loads(held.text) if held else None

    def children(
        self, namespace: str, model: str, kinds: tuple[tuple[str, str], ...]
    ) -> list[dict[str, Any]]:
        """The children of these (apiVersion, kind)s labelled as the model's, pods included."""
        wanted = set(kinds)
        held = self._children.get((namespace, model), {})
        return [
            json.loads(obj.text)
            for (api_version, kind, _), obj in held.items()
            if (api_version, kind) in wanted
        ]

    # ------------------------------------------------------------------ writes

    def model_event(self, event_type: str | None, body: dict[str, Any]) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        if event_type == "DELETED":
            self._models.pop(key, None)
            self._listed.discard(key)
            return
        incoming = _Held.of(_slim_model(body))
        if incoming.is_newer_than(self._models.get(key)):
            self._models[key] = incoming

    def child_event(self, event_type: str | None, obj: dict[str, Any]) -> None:
        """A watch event of a child or a pod (a DELETED one, or any other as the object now is)."""
        if event_type != "DELETED":
            self.wrote(obj)
            return
        owner = self._owner(obj)
        if owner is not None:
            # The watch is past the deletion: no older event of it can follow.
            self._forget(owner, _identity(obj))
            self._tombstones.pop((owner[0], _identity(obj)), None)
            self._own_writes.pop((owner[0], _identity(obj)), None)

    def is_echo(self, obj: dict[str, Any]) -> bool:
        """The watch event of one of our own writes: nothing new to reconcile."""
        owner = self._owner(obj)
        if owner is None:
            return False
        version = _version(obj)
        key = (owner[0], _identity(obj))
        if version is None or self._own_writes.get(key) != version:
            return False
        del self._own_writes[key]
        return True

    def wrote(self, obj: dict[str, Any], own: bool = False) -> None:
        """The object as the API server now holds it: after a write of ours (`own`), or as a
        watch saw it."""
        owner = self._owner(obj)
        if owner is None:
            return
        version = _version(obj)
        if own and version is not None:
            self._own_writes[(owner[0], _identity(obj))] = version
        obj = _slim_pod(obj) if obj["kind"] == "Pod" else _slim_child(obj)
        identity = _identity(obj)
        incoming = _Held.of(obj)
        tombstone = self._tombstones.get((owner[0], identity))
        if tombstone is not None and incoming.version is not None and incoming.version <= tombstone:
            return
        held = self._children[owner]
        if incoming.is_newer_than(held.get(identity)):
            held[identity] = incoming

    def removed(self, obj: dict[str, Any]) -> None:
        """We deleted it: events of it the watch has yet to deliver must not bring it back
        (until the watch's own DELETED event clears the tombstone)."""
        owner = self._owner(obj)
        if owner is None:
            return
        identity = _identity(obj)
        gone = self._forget(owner, identity)
        versions = [v for v in (_version(obj), gone.version if gone else None) if v is not None]
        if versions:
            self._tombstones[(owner[0], identity)] = max(versions)

    def _forget(self, owner: ModelKey, identity: Identity) -> _Held | None:
        held = self._children.get(owner, {})
        gone = held.pop(identity, None)
        if not held:
            self._children.pop(owner, None)
        return gone

    def _owner(self, obj: dict[str, Any]) -> ModelKey | None:
        metadata = obj["metadata"]
        model = (metadata.get("labels") or {}).get(LABEL_MODEL)
        return (metadata["namespace"], model) if model and metadata.get("namespace") else None
