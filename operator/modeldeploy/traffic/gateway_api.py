"""Gateway API: one HTTPRoute (GRPCRoute for gRPC servers) `<name>` with weighted backends.

Rules, in order: requests carrying the canary header go to `<name>-canary`; everything else
is split between `<name>-stable` and `<name>-canary` by weight, optionally mirrored to the
canary. The canary backend is listed only while there is a canary revision, so a route
never points at a Service with no pods.

Without spec.traffic.gateway the route attaches to the Service `<name>` itself (GAMMA), so
a service mesh that implements Gateway API splits in-cluster calls the same way; `<name>`
selects the stable revision, which is where calls land when no mesh is there to split.
"""

from __future__ import annotations

from typing import Any

from modeldeploy.api.models import ModelDeployment
from modeldeploy.render import common
from modeldeploy.render.services import canary_service_name, stable_service_name
from modeldeploy.traffic.base import (
    RoutedState,
    Routing,
    apex_service,
    canary_share,
    find,
    matches_desired,
    mirror_percent,
    normalized_duration,
    route_metadata,
    service_port,
)

API_VERSION = "gateway.networking.k8s.io/v1"
GROUP = "gateway.networking.k8s.io"
# A backendRef without a weight counts 1 (Gateway API spec).
DEFAULT_BACKEND_WEIGHT = 1


class GatewayAPIRouter:
    provider: str = "gateway-api"
    required_crds: tuple[str, ...] = (
        "httproutes.gateway.networking.k8s.io",
        "grpcroutes.gateway.networking.k8s.io",
    )
    managed_kinds: tuple[tuple[str, str], ...] = ((API_VERSION, "HTTPRoute"), (API_VERSION, "GRPCRoute"))

    def desired(self, md: ModelDeployment, routing: Routing) -> list[dict[str, Any]]:
        traffic = md.spec.traffic
        grpc = md.spec.runtime.protocol == "grpc"
        if grpc and traffic.path != "/":
            raise ValueError(
                "spec.traffic.path cannot be used with spec.runtime.protocol grpc: GRPCRoute has no path match"
            )
        if grpc and traffic.timeout is not None:
            raise ValueError(
                "spec.traffic.timeout cannot be used with spec.runtime.protocol grpc: GRPCRoute has no timeouts"
            )

        spec: dict[str, Any] = {"parentRefs": [self._parent_ref(md)]}
        if traffic.hosts:
            spec["hostnames"] = list(traffic.hosts)
        spec["rules"] = self._rules(md, routing, grpc)
        route = {
            "apiVersion": API_VERSION,
            "kind": _route_kind(md),
            "metadata": route_metadata(md, common.name_of(md)),
            "spec": spec,
        }
        return [apex_service(md, common.selector_labels(md, routing.stable_revision)), route]

    def routed(self, md: ModelDeployment, live: list[dict[str, Any]], routing: Routing) -> RoutedState:
        route = find(live, _route_kind(md), common.name_of(md))
        return RoutedState(
            canary_weight=None if route is None else _routed_weight(md, route),
            matches_desired=matches_desired(self, md, live, routing),
        )

    @staticmethod
    def _parent_ref(md: ModelDeployment) -> dict[str, Any]:
        gateway = md.spec.traffic.gateway
        if gateway is None:
            return {"group": "", "kind": "Service", "name": common.name_of(md), "port": service_port(md)}
        ref: dict[str, Any] = {"group": GROUP, "kind": "Gateway", "name": gateway.name}
        if gateway.namespace:
            ref["namespace"] = gateway.namespace
        if gateway.section_name:
            ref["sectionName"] = gateway.section_name
        return ref

    @staticmethod
    def _rules(md: ModelDeployment, routing: Routing, grpc: bool) -> list[dict[str, Any]]:
        traffic = md.spec.traffic
        path_match = {} if grpc else {"path": {"type": "PathPrefix", "value": traffic.path}}
        timeouts = {"timeouts": {"request": normalized_duration(traffic.timeout)}} if traffic.timeout else {}
        rules = []
        if routing.canary_revision and traffic.header_routing:
            header = {
                "type": "Exact",
                "name": traffic.header_routing.name,
                "value": traffic.header_routing.value,
            }
            rules.append(
                {
                    "name": "canary-by-header",
                    "matches": [{**path_match, "headers": [header]}],
                    "backendRefs": [_backend(md, canary_service_name(md), 1)],
                    **timeouts,
                }
            )
        split: dict[str, Any] = {"name": "split"}
        if path_match:
            split["matches"] = [path_match]
        split["backendRefs"] = [_backend(md, stable_service_name(md), 100 - routing.effective_canary_weight)]
        if routing.canary_revision:
            split["backendRefs"].append(_backend(md, canary_service_name(md), routing.canary_weight))
            if mirror_percent(traffic):
                split["filters"] = [
                    {
                        "type": "RequestMirror",
                        "requestMirror": {
                            "backendRef": _service_ref(md, canary_service_name(md)),
                            "percent": mirror_percent(traffic),
                        },
                    }
                ]
        rules.append({**split, **timeouts})
        return rules


def _route_kind(md: ModelDeployment) -> str:
    return "GRPCRoute" if md.spec.runtime.protocol == "grpc" else "HTTPRoute"


def _service_ref(md: ModelDeployment, service: str) -> dict[str, Any]:
    """A reference to a Service, with the `group` and `kind` the API server would default:
    the route is rendered as the server stores it, so that it compares exactly (its lists are
    atomic; see modeldeploy.compare)."""
    return {"group": "", "kind": "Service", "name": service, "port": service_port(md)}


def _backend(md: ModelDeployment, service: str, weight: int) -> dict[str, Any]:
    return {**_service_ref(md, service), "weight": weight}


def _routed_weight(md: ModelDeployment, route: dict[str, Any]) -> int | None:
    """The canary's share of the first rule that matches requests without the canary header."""
    for rule in route.get("spec", {}).get("rules", []):
        if any(match.get("headers") for match in rule.get("matches", [])):
            continue
        return canary_share(
            (
                (ref.get("name", ""), ref.get("weight", DEFAULT_BACKEND_WEIGHT))
                for ref in rule.get("backendRefs", [])
                if ref.get("kind", "Service") == "Service"
            ),
            canary_service_name(md),
        )
    return None
