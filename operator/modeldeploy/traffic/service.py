"""Plain Service: no routing object at all; `<name>` selects the revisions that get traffic.

Weight 0 (or no canary) selects only the stable revision and weight 100 only the canary, so
those two are exact and promotion can be confirmed. In between, `<name>` selects every
revision and kube-proxy balances connections across ready endpoints, so the canary's share
is its share of ready pods: canary ready / (canary ready + stable ready). This is approximate: the
rollout's weight cannot be held (only replica counts move it), balancing is per connection
(long-lived HTTP/2 and gRPC connections stick to one pod), and pods of a retiring revision
count as well until they are gone. No header routing, mirroring or timeouts.
"""

from __future__ import annotations

from typing import Any

from modeldeploy.api.models import ModelDeployment
from modeldeploy.render import common
from modeldeploy.traffic.base import (
    RoutedState,
    Routing,
    apex_service,
    find,
    matches_desired,
    percent_of,
    refuse_unsupported,
)


class ServiceRouter:
    provider: str = "service"
    required_crds: tuple[str, ...] = ()
    managed_kinds: tuple[tuple[str, str], ...] = ()

    def desired(self, md: ModelDeployment, routing: Routing) -> list[dict[str, Any]]:
        refuse_unsupported(md.spec.traffic, self.provider, supported=())
        return [apex_service(md, common.selector_labels(md, _pinned_revision(routing)))]

    def routed(self, md: ModelDeployment, live: list[dict[str, Any]], routing: Routing) -> RoutedState:
        service = find(live, "Service", common.name_of(md))
        return RoutedState(
            canary_weight=None if service is None else _routed_weight(service, routing),
            matches_desired=matches_desired(self, md, live, routing),
        )


def _pinned_revision(routing: Routing) -> str | None:
    """The one revision `<name>` selects, or None when the split is by replica ratio."""
    weight = routing.effective_canary_weight
    if weight == 0:
        return routing.stable_revision
    if weight == 100:
        return routing.canary_revision
    return None


def _routed_weight(service: dict[str, Any], routing: Routing) -> int:
    """The replica share while `<name>` selects every revision; all or nothing when someone
    pinned its selector to one revision."""
    pinned = service.get("spec", {}).get("selector", {}).get(common.LABEL_REVISION)
    if pinned is None:
        return _replica_share(routing)
    return 100 if pinned == routing.canary_revision else 0


def _replica_share(routing: Routing) -> int:
    if not routing.canary_revision:
        return 0
    return percent_of(
        routing.canary_ready_replicas, routing.canary_ready_replicas + routing.stable_ready_replicas
    )
