"""The one interface every traffic provider implements, and the pieces providers share.

A router turns what the rollout decided (`Routing`) into the provider's objects, and reads
the live objects back into the weight they actually route. Both directions are pure
functions over the pydantic models and plain dicts, so the controller decides when to
apply and the tests need no cluster.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from modeldeploy.api.models import ModelDeployment, Traffic
from modeldeploy.compare import FIELD_MANAGER, needs_apply
from modeldeploy.render import common

TRAFFIC_COMPONENT = "traffic"


@dataclass(frozen=True)
class Routing:
    """What the rollout decided the routers should route."""

    stable_revision: str | None
    canary_revision: str | None
    # 0..100, already clamped by the rollout (0 while the canary is not ready); ignored without a canary.
    canary_weight: int
    # Only the service provider uses these: its split is the ratio of ready pods.
    canary_ready_replicas: int = 0
    stable_ready_replicas: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.canary_weight <= 100:
            raise ValueError(f"canary_weight must be 0..100, got {self.canary_weight}")

    @property
    def effective_canary_weight(self) -> int:
        return self.canary_weight if self.canary_revision else 0


@dataclass(frozen=True)
class RoutedState:
    """What the live objects route, read back."""

    # None when the objects are missing or cannot be read as a split.
    canary_weight: int | None
    # False when an object was deleted, edited, or is left over: the controller re-applies.
    matches_desired: bool


class Router(Protocol):
    provider: str
    # Names of the CRDs that must be installed, e.g. "httproutes.gateway.networking.k8s.io".
    required_crds: tuple[str, ...]
    # (apiVersion, kind) of the routing objects it owns: the controller watches them and deletes
    # the ones no longer desired (the canary Ingress after promotion, an HTTPRoute after a
    # switch to gRPC). The Service `<name>` is rendered by every provider and is not listed.
    managed_kinds: tuple[tuple[str, str], ...]

    def desired(self, md: ModelDeployment, routing: Routing) -> list[dict[str, Any]]:
        """Every object of this provider for the model, the Service `<name>` included.

        Raises ValueError naming the spec field when the provider cannot express it."""
        ...

    def routed(self, md: ModelDeployment, live: list[dict[str, Any]], routing: Routing) -> RoutedState:
        """Reads `live` (the objects as the API server returns them) back into a RoutedState.

        Never raises for a spec `desired` refuses: the weight is still read, and nothing matches."""
        ...


# --------------------------------------------------------------------------- names and objects


def service_port(md: ModelDeployment) -> int:
    """The port of `<name>`, `<name>-stable` and `<name>-canary`: the server's own."""
    return md.spec.runtime.port


def apex_service(md: ModelDeployment, selector: dict[str, str]) -> dict[str, Any]:
    """The Service `<name>`: the address clients use."""
    return common.service(md, common.name_of(md), selector, service_port(md))


def route_metadata(
    md: ModelDeployment, name: str, annotations: Mapping[str, str] | None = None
) -> dict[str, Any]:
    metadata = common.child_metadata(md, name, component=TRAFFIC_COMPONENT)
    if annotations:
        metadata["annotations"] = dict(annotations)
    return metadata


def refuse_unsupported(traffic: Traffic, provider: str, supported: Iterable[str]) -> None:
    """Raises ValueError for the first traffic feature in use that `provider` cannot express.

    The CRD refuses these combinations at admission; this catches objects that got past it
    (an older CRD, a direct API write) with a message the controller can put in a condition."""
    in_use = {
        "headerRouting": traffic.header_routing is not None,
        "mirror": mirror_percent(traffic) > 0,
        "timeout": traffic.timeout is not None,
    }
    allowed = set(supported)
    for field, used in in_use.items():
        if used and field not in allowed:
            raise ValueError(f"spec.traffic.{field} is not supported by the {provider} traffic provider")


def mirror_percent(traffic: Traffic) -> int:
    return traffic.mirror.percent if traffic.mirror else 0


# --------------------------------------------------------------------------- durations

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_MILLISECONDS_PER_UNIT = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def milliseconds(duration: str) -> int:
    """Milliseconds of a spec Duration such as "1h30m" or "1.5s"."""
    return round(
        sum(float(number) * _MILLISECONDS_PER_UNIT[unit] for number, unit in _DURATION_PART.findall(duration))
    )


def normalized_duration(duration: str) -> str:
    """The duration in whole h/m/s/ms parts ("1.5s" -> "1s500ms").

    Gateway API accepts only integer parts (GEP-2257); Istio accepts that form as well, so
    both providers render the same string."""
    remaining = milliseconds(duration)
    parts = []
    for unit in ("h", "m", "s", "ms"):
        count, remaining = divmod(remaining, _MILLISECONDS_PER_UNIT[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def whole_seconds(duration: str) -> int:
    """At least one second, rounded up: for settings that take seconds only."""
    return max(1, math.ceil(milliseconds(duration) / 1000))


# --------------------------------------------------------------------------- read-back


def percent_of(part: float, total: float) -> int:
    """part/total as a whole percentage, halves rounded up; 0 when nothing is routed at all."""
    if total <= 0:
        return 0
    return min(100, math.floor(100 * part / total + 0.5))


def canary_share(weights: Iterable[tuple[str, float]], canary_name: str) -> int:
    """The canary's percentage of (backend name, weight) pairs."""
    pairs = list(weights)
    return percent_of(sum(w for name, w in pairs if name == canary_name), sum(w for _, w in pairs))


def find(live: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    for obj in live:
        if obj.get("kind") == kind and obj.get("metadata", {}).get("name") == name:
            return obj
    return None


# Ownership routes nothing, and objects applied without an owner (tests, a restored backup)
# would otherwise never match.
_NOT_COMPARED = (("metadata", "ownerReferences"),)


def matches_desired(
    router: Router, md: ModelDeployment, live: list[dict[str, Any]], routing: Routing
) -> bool:
    """Every object `router` renders is live as applying it would leave it, by the one
    comparison the controller uses before it applies (`modeldeploy.compare.needs_apply`: a
    field we set before and no longer render, such as a removed mirror filter, is a
    difference; server defaults are not), and no other object of its kinds is left in
    `live` (a canary Ingress after promotion, an HTTPRoute after a switch to gRPC)."""
    try:
        desired = router.desired(md, routing)
    except ValueError:
        # Nothing valid can be rendered, so nothing live matches it; desired() says why.
        return False
    for wanted in desired:
        actual = find(live, wanted["kind"], wanted["metadata"]["name"])
        if actual is None or needs_apply(wanted, actual, FIELD_MANAGER, _NOT_COMPARED):
            return False
    kinds = {kind for _, kind in router.managed_kinds}
    wanted_keys = {(obj["kind"], obj["metadata"]["name"]) for obj in desired}
    return all(
        (obj.get("kind"), obj.get("metadata", {}).get("name")) in wanted_keys
        for obj in live
        if obj.get("kind") in kinds
    )
