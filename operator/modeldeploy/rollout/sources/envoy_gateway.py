"""envoy-gateway: Envoy Gateway's proxies' upstream cluster stats, from Envoy's
/stats/prometheus: the counter `envoy_cluster_upstream_rq`, labelled `envoy_cluster_name`
and `envoy_response_code`, and the histogram `envoy_cluster_upstream_rq_time` in
milliseconds, labelled `envoy_cluster_name`.

A cluster of the canary's own is needed, and Envoy Gateway makes one only with backend
merging: by default every backendRef of a route rule shares the rule's cluster
`httproute/<ns>/<route>/rule/<n>` (one locality per backend; per-backend clusters
`.../rule/<n>/backend/<m>` appear only when a backendRef has filters: envoyproxy/gateway
internal/xds/translator/route.go buildXdsRouteAction, internal/ir NeedsClusterPerSetting,
issues 6742 and 7017), so stable and canary are counted together. With
`EnvoyProxy.spec.mergeBackends: {}` (Envoy Gateway v1.9+), each backend Service has one cluster
shared by the routes that send to it, named `service/<ns>/<svc>/<port>/<protocol>`
(internal/gatewayapi/helpers.go irBackendClusterName; testdata mergebackends-http-*:
`service/default/service-1/8080/http`, `.../grpc` for gRPC). Hence, for the canary Service
`<name>-canary` on the server port, with the default cluster stat names:

    envoy_cluster_name="service/<ns>/<name>-canary/<port>/http"

Without backend merging that series does not exist: the query finds nothing and every
measurement is inconclusive, never a success.
"""

from __future__ import annotations

from modeldeploy.rollout.sources.base import Source, Target, labels


def cluster_name(target: Target) -> str:
    """Envoy Gateway's merged cluster of the canary Service."""
    protocol = "grpc" if target.protocol == "grpc" else "http"
    return f"service/{target.namespace}/{target.canary_service}/{target.port}/{protocol}"


SOURCE = Source(
    name="envoy-gateway",
    requests="envoy_cluster_upstream_rq",
    code_label="envoy_response_code",
    latency_buckets="envoy_cluster_upstream_rq_time_bucket",
    latency_unit="ms",
    selector=lambda target: labels(envoy_cluster_name=cluster_name(target)),
    providers=("gateway-api",),
)
