"""Traffic routing: one Router interface, one module per provider.

Adding a provider is adding a module with a Router class and listing it in ROUTERS.
"""

from __future__ import annotations

from modeldeploy.traffic.base import RoutedState, Router, Routing
from modeldeploy.traffic.gateway_api import GatewayAPIRouter
from modeldeploy.traffic.istio import IstioRouter
from modeldeploy.traffic.nginx import NginxRouter
from modeldeploy.traffic.service import ServiceRouter
from modeldeploy.traffic.smi import SMIRouter

ROUTERS: dict[str, Router] = {
    router.provider: router
    for router in (GatewayAPIRouter(), IstioRouter(), NginxRouter(), SMIRouter(), ServiceRouter())
}

__all__ = ["ROUTERS", "RoutedState", "Router", "Routing", "router_for"]


def router_for(provider: str) -> Router:
    try:
        return ROUTERS[provider]
    except KeyError:
        raise ValueError(f"unknown traffic provider {provider!r}; known: {', '.join(ROUTERS)}") from None
