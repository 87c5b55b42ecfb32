"""nginx: the ingress-nginx controller's request metrics (internal/ingress/metric/collectors/
socket.go): the counter `nginx_ingress_controller_requests` and the histogram
`nginx_ingress_controller_request_duration_seconds`, labelled `status`, `method`, `path`,
`namespace`, `ingress`, `service` and `canary` (plus `host` with --metrics-per-host).

The canary Ingress `<name>-canary` has no location of its own: ingress-nginx merges it into
the location of the main Ingress `<name>` as an alternative backend, so `ingress` is `<name>`
for both roles. What tells them apart is `canary`: empty for the main backend, the name of
the alternative upstream for a request the balancer sent to it (rootfs/etc/nginx/lua/
balancer.lua sets `proxy_alternative_upstream_name`, monitor.lua reports it), and upstream
names are `<namespace>-<service>-<port>` (internal/ingress/controller/util.go, upstreamName).
Hence, for the canary Service `<name>-canary` on the server port:

    namespace="<ns>",ingress="<name>",canary="<ns>-<name>-canary-<port>"

`status` is the code, or its class (`5xx`) with --report-status-classes: both match `5.*`.
"""

from __future__ import annotations

from modeldeploy.rollout.sources.base import Source, Target, labels


def _selector(target: Target) -> str:
    return labels(
        namespace=target.namespace,
        ingress=target.name,
        canary=f"{target.namespace}-{target.canary_service}-{target.port}",
    )


SOURCE = Source(
    name="nginx",
    requests="nginx_ingress_controller_requests",
    code_label="status",
    server_errors="5.*",
    latency_buckets="nginx_ingress_controller_request_duration_seconds_bucket",
    latency_unit="s",
    selector=_selector,
    providers=("nginx",),
)
