"""Building and observing ModelDeployments in cluster tests."""

from __future__ import annotations

import copy
from typing import Any

from tests.cluster.conftest import Kubectl
from tests.cluster.waiting import wait_for


def manifest(name: str, image: str = "ghcr.io/example/server:1", **spec: Any) -> dict[str, Any]:
    """A small CPU model; keyword arguments replace or extend top-level spec fields."""
    body: dict[str, Any] = {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "s3://models/sentiment/v1/"},
            "runtime": {"image": image, "resources": {"cpu": "100m", "memory": "128Mi"}},
            "rollout": {"canary": {"scaleDownDelaySeconds": 0}},
        },
    }
    for key, value in spec.items():
        body["spec"][key] = _merged(body["spec"].get(key), value)
    return body


def _merged(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = copy.deepcopy(base)
        for key, value in extra.items():
            merged[key] = _merged(merged.get(key), value)
        return merged
    return extra


def get(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    return kubectl.json("get", "modeldeployment", name, "-n", namespace)


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in body.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def wait_condition(
    kubectl: Kubectl,
    namespace: str,
    name: str,
    kind: str,
    status: str,
    reason: str | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        body = get(kubectl, namespace, name)
        found = condition(body, kind)
        if found.get("status") == status and reason in (None, found.get("reason")):
            return body
        return None

    try:
        return wait_for(f"{name} {kind}={status} {reason or ''}", matches, timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}; status now: {get(kubectl, namespace, name).get('status')}") from None


def wait_status(
    kubectl: Kubectl, namespace: str, name: str, timeout: float = 60, **fields: Any
) -> dict[str, Any]:
    """Waits until every given status field (camelCase) has the given value."""

    def matches() -> dict[str, Any] | None:
        body = get(kubectl, namespace, name)
        status = body.get("status", {})
        return body if all(status.get(key) == value for key, value in fields.items()) else None

    try:
        return wait_for(f"{name} status {fields}", matches, timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}; status now: {get(kubectl, namespace, name).get('status')}") from None


def children(kubectl: Kubectl, namespace: str, name: str, kind: str) -> list[dict[str, Any]]:
    return kubectl.json("get", kind, "-n", namespace, "-l", f"modeldeploy.io/model={name}")["items"]
