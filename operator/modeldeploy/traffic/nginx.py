"""ingress-nginx: an Ingress `<name>` to `<name>-stable`, and while a canary runs a second
Ingress `<name>-canary` with the same hosts and path, marked as ingress-nginx's canary.

ingress-nginx sends `canary-weight` percent of requests (and every request with the canary
header) to the canary Ingress's backend. It cannot mirror a percentage of requests.
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
    find,
    matches_desired,
    percent_of,
    refuse_unsupported,
    route_metadata,
    service_port,
    whole_seconds,
)

API_VERSION = "networking.k8s.io/v1"
ANNOTATION_PREFIX = "nginx.ingress.kubernetes.io/"
CANARY = ANNOTATION_PREFIX + "canary"
CANARY_WEIGHT = ANNOTATION_PREFIX + "canary-weight"
CANARY_WEIGHT_TOTAL = ANNOTATION_PREFIX + "canary-weight-total"
CANARY_BY_HEADER = ANNOTATION_PREFIX + "canary-by-header"
CANARY_BY_HEADER_VALUE = ANNOTATION_PREFIX + "canary-by-header-value"
# ingress-nginx's default when canary-weight-total is not set.
DEFAULT_WEIGHT_TOTAL = 100


class NginxRouter:
    provider: str = "nginx"
    required_crds: tuple[str, ...] = ()
    managed_kinds: tuple[tuple[str, str], ...] = ((API_VERSION, "Ingress"),)

    def desired(self, md: ModelDeployment, routing: Routing) -> list[dict[str, Any]]:
        traffic = md.spec.traffic
        refuse_unsupported(traffic, self.provider, supported=("headerRouting", "timeout"))
        objects = [
            apex_service(md, common.selector_labels(md, routing.stable_revision)),
            _ingress(md, common.name_of(md), stable_service_name(md), {}),
        ]
        if routing.canary_revision:
            canary = {CANARY: "true", CANARY_WEIGHT: str(routing.canary_weight)}
            if traffic.header_routing:
                canary[CANARY_BY_HEADER] = traffic.header_routing.name
                canary[CANARY_BY_HEADER_VALUE] = traffic.header_routing.value
            objects.append(_ingress(md, _canary_ingress_name(md), canary_service_name(md), canary))
        return objects

    def routed(self, md: ModelDeployment, live: list[dict[str, Any]], routing: Routing) -> RoutedState:
        stable = find(live, "Ingress", common.name_of(md))
        canary = find(live, "Ingress", _canary_ingress_name(md))
        if stable is None:
            weight = None
        elif canary is None:
            weight = 0
        else:
            weight = _canary_weight(canary)
        return RoutedState(canary_weight=weight, matches_desired=matches_desired(self, md, live, routing))


def _canary_ingress_name(md: ModelDeployment) -> str:
    return f"{common.name_of(md)}-canary"


def _ingress(md: ModelDeployment, name: str, service: str, annotations: dict[str, str]) -> dict[str, Any]:
    traffic = md.spec.traffic
    annotations = {**annotations}
    if md.spec.runtime.protocol == "grpc":
        annotations[ANNOTATION_PREFIX + "backend-protocol"] = "GRPC"
    if traffic.timeout:
        seconds = str(whole_seconds(traffic.timeout))
        annotations[ANNOTATION_PREFIX + "proxy-read-timeout"] = seconds
        annotations[ANNOTATION_PREFIX + "proxy-send-timeout"] = seconds
    http = {
        "paths": [
            {
                "path": traffic.path,
                "pathType": "Prefix",
                "backend": {"service": {"name": service, "port": {"number": service_port(md)}}},
            }
        ]
    }
    # Without hosts, one rule without a host: the Ingress answers on any host.
    rules = [{"host": host, "http": http} for host in traffic.hosts] or [{"http": http}]
    spec: dict[str, Any] = {"rules": rules}
    if traffic.ingress_class_name:
        spec = {"ingressClassName": traffic.ingress_class_name, **spec}
    return {
        "apiVersion": API_VERSION,
        "kind": "Ingress",
        "metadata": route_metadata(md, name, annotations),
        "spec": spec,
    }


def _canary_weight(canary: dict[str, Any]) -> int | None:
    """What ingress-nginx routes to a canary Ingress; None when it is not a readable canary."""
    annotations = canary.get("metadata", {}).get("annotations", {})
    if annotations.get(CANARY) != "true":
        return None
    try:
        weight = int(annotations.get(CANARY_WEIGHT, "0"))
        total = int(annotations.get(CANARY_WEIGHT_TOTAL, str(DEFAULT_WEIGHT_TOTAL)))
    except ValueError:
        return None
    return percent_of(weight, total)
