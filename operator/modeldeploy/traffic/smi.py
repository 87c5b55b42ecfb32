"""SMI: a TrafficSplit `<name>` whose root (apex) Service `<name>` selects every serving pod
of the model, split by weight between `<name>-stable` and `<name>-canary`.

Meshes implementing SMI (Linkerd through its SMI extension, Open Service Mesh) rewrite
calls to the root Service by the split. The root selects every serving pod, as in the SMI
specification's example, so it has endpoints whichever revision serves; a client outside
the mesh therefore gets the plain Service balance across revisions. TrafficSplit has no
header routing (that needs an HTTPRouteGroup), mirroring or timeouts.
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
    refuse_unsupported,
    route_metadata,
)

API_VERSION = "split.smi-spec.io/v1alpha4"


class SMIRouter:
    provider: str = "smi"
    required_crds: tuple[str, ...] = ("trafficsplits.split.smi-spec.io",)
    managed_kinds: tuple[tuple[str, str], ...] = ((API_VERSION, "TrafficSplit"),)

    def desired(self, md: ModelDeployment, routing: Routing) -> list[dict[str, Any]]:
        refuse_unsupported(md.spec.traffic, self.provider, supported=())
        backends = [{"service": stable_service_name(md), "weight": 100 - routing.effective_canary_weight}]
        if routing.canary_revision:
            backends.append({"service": canary_service_name(md), "weight": routing.canary_weight})
        split = {
            "apiVersion": API_VERSION,
            "kind": "TrafficSplit",
            "metadata": route_metadata(md, common.name_of(md)),
            "spec": {"service": common.name_of(md), "backends": backends},
        }
        return [apex_service(md, common.selector_labels(md)), split]

    def routed(self, md: ModelDeployment, live: list[dict[str, Any]], routing: Routing) -> RoutedState:
        split = find(live, "TrafficSplit", common.name_of(md))
        weight = None
        if split is not None:
            backends = split.get("spec", {}).get("backends", [])
            weight = canary_share(
                ((b.get("service", ""), b.get("weight", 0)) for b in backends), canary_service_name(md)
            )
        return RoutedState(canary_weight=weight, matches_desired=matches_desired(self, md, live, routing))
