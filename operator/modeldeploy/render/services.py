"""The per-role Services every traffic provider routes to."""

from __future__ import annotations

from typing import Any

from modeldeploy.api.models import ModelDeployment
from modeldeploy.render.common import name_of, selector_labels, service


def stable_service_name(md: ModelDeployment) -> str:
    return f"{name_of(md)}-stable"


def canary_service_name(md: ModelDeployment) -> str:
    return f"{name_of(md)}-canary"


def render_role_services(md: ModelDeployment, stable: str | None, canary: str | None) -> list[dict[str, Any]]:
    """`<name>-stable` and `<name>-canary`, each selecting its role's revision.

    Without a canary, `<name>-canary` selects the stable revision: routes keep a backend that
    resolves (a weight-0 reference to a missing Service marks the whole route unresolved).
    """
    if stable is None:
        return []
    port = md.spec.runtime.port
    return [
        service(md, stable_service_name(md), selector_labels(md, stable), port),
        service(md, canary_service_name(md), selector_labels(md, canary or stable), port),
    ]
