"""traefik: Traefik v3 as the Gateway API data plane (providers.kubernetesGateway), with
`metrics.prometheus.addServicesLabels: true`.

Series (pkg/observability/metrics/prometheus.go, v3.6.12): `traefik_service_requests_total`
and the histogram `traefik_service_request_duration_seconds` (seconds; default buckets
0.1, 0.3, 1.2, 5), both labelled `code`, `method`, `protocol` and `service`.

The `service` of the canary: for an HTTPRoute backendRef to the Service `<svc>` port `<port>`
in namespace `<ns>`, the kubernetesGateway provider names the load balancer
`<ns>-<svc>-http-<port>` (pkg/provider/kubernetes/gateway/httproute.go, loadService:
`Normalize(namespace + "-" + name + "-http")`, then `Normalize(serviceName + "-" + port)`);
for a GRPCRoute `<ns>-<svc>-<port>-grpc` (grpcroute.go). Normalize keeps letters, digits
and dashes, so DNS names pass unchanged. Metrics carry the name qualified by the provider,
`@kubernetesgateway` (pkg/server/service/service.go, getLoadBalancerServiceHandler:
`ServiceMetricsHandler(..., provider.GetQualifiedName(ctx, serviceName))`). The weighted
service the rule's router points at (`httproute-<ns>-<route>-gw-<gwns>-<gw>-ep-<entrypoint>-
<rule>-<hash>-wrr`) records no metrics: only load balancers do, one per backend Service, so
the canary's series are its own and include the requests of the header rule. Hence, for the
operator's `<name>-canary` on the server port:

    service="<ns>-<name>-canary-http-<port>@kubernetesgateway"

Also seen on the local cluster's Traefik v3.6.12 (hack/realnode/traefik.yml): an HTTPRoute
like the operator's, header rule plus 50/50 split, gave
`traefik_service_requests_total{code="503",method="GET",protocol="http",
service="<ns>-sentiment-canary-http-8080@kubernetesgateway"}` and the same for `-stable-`,
and no series for the weighted service.
"""

from __future__ import annotations

from modeldeploy.rollout.sources.base import Source, Target, labels

PROVIDER_SUFFIX = "@kubernetesgateway"


def service_label(target: Target) -> str:
    """Traefik's name of the canary Service's load balancer, as its metrics label it."""
    namespace, service, port = target.namespace, target.canary_service, target.port
    if target.protocol == "grpc":
        return f"{namespace}-{service}-{port}-grpc{PROVIDER_SUFFIX}"
    return f"{namespace}-{service}-http-{port}{PROVIDER_SUFFIX}"


SOURCE = Source(
    name="traefik",
    requests="traefik_service_requests_total",
    code_label="code",
    latency_buckets="traefik_service_request_duration_seconds_bucket",
    latency_unit="s",
    selector=lambda target: labels(service=service_label(target)),
    providers=("gateway-api",),
)
