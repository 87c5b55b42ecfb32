"""Istio: one VirtualService `<name>` routing to the per-role Services by weight.

Its hosts are the Service `<name>` (so calls inside the mesh are split too) and
spec.traffic.hosts; with spec.traffic.gateway it binds to that Istio Gateway and to `mesh`.
Routes, in order: the canary header to `<name>-canary`; everything else split by weight,
optionally mirrored to the canary. No DestinationRule is rendered: destinations are the
per-role Services, not subsets of one Service, so there are no subsets to declare.
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

API_VERSION = "networking.istio.io/v1"
# Istio's name for "every sidecar", as opposed to an ingress Gateway.
MESH_GATEWAY = "mesh"


class IstioRouter:
    provider: str = "istio"
    required_crds: tuple[str, ...] = ("virtualservices.networking.istio.io",)
    managed_kinds: tuple[tuple[str, str], ...] = ((API_VERSION, "VirtualService"),)

    def desired(self, md: ModelDeployment, routing: Routing) -> list[dict[str, Any]]:
        traffic = md.spec.traffic
        spec: dict[str, Any] = {"hosts": [common.name_of(md), *traffic.hosts]}
        if traffic.gateway:
            namespace = traffic.gateway.namespace or common.namespace_of(md)
            spec["gateways"] = [f"{namespace}/{traffic.gateway.name}", MESH_GATEWAY]
        spec["http"] = self._routes(md, routing)
        virtual_service = {
            "apiVersion": API_VERSION,
            "kind": "VirtualService",
            "metadata": route_metadata(md, common.name_of(md)),
            "spec": spec,
        }
        return [apex_service(md, common.selector_labels(md, routing.stable_revision)), virtual_service]

    def routed(self, md: ModelDeployment, live: list[dict[str, Any]], routing: Routing) -> RoutedState:
        virtual_service = find(live, "VirtualService", common.name_of(md))
        return RoutedState(
            canary_weight=None if virtual_service is None else _routed_weight(md, virtual_service),
            matches_desired=matches_desired(self, md, live, routing),
        )

    @staticmethod
    def _routes(md: ModelDeployment, routing: Routing) -> list[dict[str, Any]]:
        traffic = md.spec.traffic
        path_match = {"uri": {"prefix": traffic.path}}
        timeout = {"timeout": normalized_duration(traffic.timeout)} if traffic.timeout else {}
        routes = []
        if routing.canary_revision and traffic.header_routing:
            # Istio matches header names in lower case only.
            header = {traffic.header_routing.name.lower(): {"exact": traffic.header_routing.value}}
            routes.append(
                {
                    "name": "canary-by-header",
                    "match": [{**path_match, "headers": header}],
                    "route": [_destination(md, canary_service_name(md), 100)],
                    **timeout,
                }
            )
        split: dict[str, Any] = {
            "name": "split",
            "match": [path_match],
            "route": [_destination(md, stable_service_name(md), 100 - routing.effective_canary_weight)],
        }
        if routing.canary_revision:
            split["route"].append(_destination(md, canary_service_name(md), routing.canary_weight))
            if mirror_percent(traffic):
                split["mirror"] = {"host": canary_service_name(md), "port": {"number": service_port(md)}}
                split["mirrorPercentage"] = {"value": mirror_percent(traffic)}
        routes.append({**split, **timeout})
        return routes


def _destination(md: ModelDeployment, service: str, weight: int) -> dict[str, Any]:
    return {"destination": {"host": service, "port": {"number": service_port(md)}}, "weight": weight}


def _service_of(host: str) -> str:
    """`name` of a destination host given as `name` or `name.namespace.svc.cluster.local`."""
    return host.split(".", 1)[0]


def _routed_weight(md: ModelDeployment, virtual_service: dict[str, Any]) -> int | None:
    """The canary's share of the first HTTP route that matches requests without the header."""
    for route in virtual_service.get("spec", {}).get("http", []):
        if any(match.get("headers") for match in route.get("match", [])):
            continue
        destinations = route.get("route", [])
        # Istio sends everything to a lone destination whatever its weight says.
        return canary_share(
            (
                (
                    _service_of(d.get("destination", {}).get("host", "")),
                    100 if len(destinations) == 1 else d.get("weight", 0),
                )
                for d in destinations
            ),
            canary_service_name(md),
        )
    return None
