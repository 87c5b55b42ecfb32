"""Stand-ins for each data plane's own series: exactly the names and label sets that Traefik,
Istio, ingress-nginx, Envoy Gateway and the model-server convention expose for one backend.

Written out literally from the data planes' sources (cited in each function), not from the
operator's modeldeploy.rollout.sources, so that a wrong selector there finds nothing or the
wrong backend here. Every model has a stable backend (all 200s, fast) beside its canary, in the
same series, so a selector that also caught the stable one would give another number.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.prometheus_server import DataPlaneSeries

NAMESPACE = "ml"
PORT = 8080
CANARY_REVISION = "c4n4ry"
STABLE_REVISION = "5t4b1e"

# The canary of model "healthy": 1% errors; p99 interpolates to 0.5 + (0.99 - 0.98) / 0.02 * 0.5
# = 0.75 s. The canary of model "failing": 20% errors; p99 = 2 + (0.99 - 0.98) / 0.02 * 2 = 3 s.
HEALTHY = {"200": 99.0, "500": 1.0}
FAILING = {"200": 80.0, "503": 20.0}
HEALTHY_LATENCY_SECONDS = (("0.1", 0.5), ("0.25", 0.9), ("0.5", 0.98), ("1", 1.0), ("+Inf", 1.0))
FAILING_LATENCY_SECONDS = (("0.5", 0.5), ("1", 0.9), ("2", 0.98), ("4", 1.0), ("+Inf", 1.0))
# The canary of model "broken" answers every request with 500: it has no series of a good code
# at all, as a server that fails on every prediction behind a real data plane.
BROKEN = {"500": 50.0}
STABLE = {"200": 300.0}
STABLE_LATENCY_SECONDS = (("0.1", 0.99), ("0.25", 1.0), ("+Inf", 1.0))
EXPECTED = {"healthy": (0.99, 0.75), "failing": (0.8, 3.0)}
"""Success rate and p99 in seconds of each model's canary."""

Shares = tuple[tuple[str, float], ...]


def _in_ms(shares: Shares) -> Shares:
    return tuple((bound if bound == "+Inf" else f"{float(bound) * 1000:g}", share) for bound, share in shares)


def traefik(model: str, role: str, codes: dict[str, float], latency: Shares) -> list[DataPlaneSeries]:
    # Traefik v3.6.12: pkg/observability/metrics/prometheus.go (labels code, method, protocol,
    # service); pkg/provider/kubernetes/gateway/httproute.go loadService (`<ns>-<svc>-http-<port>`),
    # qualified with the provider name in pkg/server/service/service.go.
    service = f"{NAMESPACE}-{model}-{role}-http-{PORT}@kubernetesgateway"
    return [
        DataPlaneSeries(
            requests="traefik_service_requests_total",
            latency="traefik_service_request_duration_seconds",
            labels=(("method", "POST"), ("protocol", "http"), ("service", service)),
            code_label="code",
            requests_per_second=codes,
            latency_shares=latency,
        )
    ]


def istio(model: str, role: str, codes: dict[str, float], latency: Shares) -> list[DataPlaneSeries]:
    # Istio standard metrics: both reporters count a request through a sidecar on each side;
    # the client's sidecar (reporter="source") sees other numbers (here: no errors, fast), so a
    # selector without reporter="destination" would be caught mixing them.
    revision = CANARY_REVISION if role == "canary" else STABLE_REVISION
    workload = (
        ("destination_workload", f"{model}-{revision}"),
        ("destination_workload_namespace", NAMESPACE),
        ("destination_service", f"{model}-{role}.{NAMESPACE}.svc.cluster.local"),
    )
    return [
        DataPlaneSeries(
            requests="istio_requests_total",
            latency="istio_request_duration_milliseconds",
            labels=(("reporter", reporter), *workload, ("request_protocol", "http")),
            code_label="response_code",
            requests_per_second=codes if reporter == "destination" else STABLE,
            latency_shares=_in_ms(latency if reporter == "destination" else STABLE_LATENCY_SECONDS),
        )
        for reporter in ("destination", "source")
    ]


def nginx(model: str, role: str, codes: dict[str, float], latency: Shares) -> list[DataPlaneSeries]:
    # ingress-nginx: internal/ingress/metric/collectors/socket.go (status, method, path,
    # namespace, ingress, service, canary); the canary Ingress is merged into the main one's
    # location, so `ingress` and `service` are the main Ingress's; `canary` is the alternative
    # upstream `<ns>-<svc>-<port>` for requests sent to it, empty otherwise.
    canary = f"{NAMESPACE}-{model}-canary-{PORT}" if role == "canary" else ""
    return [
        DataPlaneSeries(
            requests="nginx_ingress_controller_requests",
            latency="nginx_ingress_controller_request_duration_seconds",
            labels=(
                ("canary", canary),
                ("ingress", model),
                ("method", "POST"),
                ("namespace", NAMESPACE),
                ("path", "/"),
                ("service", f"{model}-stable"),
            ),
            code_label="status",
            requests_per_second=codes,
            latency_shares=latency,
        )
    ]


def envoy_gateway(model: str, role: str, codes: dict[str, float], latency: Shares) -> list[DataPlaneSeries]:
    # Envoy's /stats/prometheus: cluster.<name>.upstream_rq_<code> → envoy_cluster_upstream_rq
    # {envoy_cluster_name, envoy_response_code} (a counter without _total), upstream_rq_time a
    # histogram in ms without the code; Envoy Gateway v1.9 with mergeBackends names a Service's
    # cluster service/<ns>/<svc>/<port>/http (internal/gatewayapi/helpers.go irBackendClusterName).
    return [
        DataPlaneSeries(
            requests="envoy_cluster_upstream_rq",
            latency="envoy_cluster_upstream_rq_time",
            labels=(("envoy_cluster_name", f"service/{NAMESPACE}/{model}-{role}/{PORT}/http"),),
            code_label="envoy_response_code",
            requests_per_second=codes,
            latency_shares=_in_ms(latency),
            latency_by_code=False,
        )
    ]


def model_server(model: str, role: str, codes: dict[str, float], latency: Shares) -> list[DataPlaneSeries]:
    # modeldeploy's own convention (docs/rollout.md), labels added by the scrape configuration.
    revision = CANARY_REVISION if role == "canary" else STABLE_REVISION
    return [
        DataPlaneSeries(
            requests="modeldeploy_requests_total",
            latency="modeldeploy_request_duration_seconds",
            labels=(("model", model), ("namespace", NAMESPACE), ("revision", revision)),
            code_label="code",
            requests_per_second=codes,
            latency_shares=latency,
            latency_by_code=False,
        )
    ]


STAND_INS: dict[str, Callable[[str, str, dict[str, float], Shares], list[DataPlaneSeries]]] = {
    "traefik": traefik,
    "istio": istio,
    "nginx": nginx,
    "envoy-gateway": envoy_gateway,
    "model-server": model_server,
}
"""By source, as the API names it."""

PROVIDERS = {
    "traefik": "gateway-api",
    "istio": "istio",
    "nginx": "nginx",
    "envoy-gateway": "gateway-api",
    "model-server": "service",
}
"""A traffic provider each source sees the canary under."""


def all_series(source: str) -> list[DataPlaneSeries]:
    """The stand-in's whole exposition: models "healthy", "failing" and "broken", each stable and canary."""
    make = STAND_INS[source]
    return [
        *make("healthy", "canary", HEALTHY, HEALTHY_LATENCY_SECONDS),
        *make("healthy", "stable", STABLE, STABLE_LATENCY_SECONDS),
        *make("failing", "canary", FAILING, FAILING_LATENCY_SECONDS),
        *make("failing", "stable", STABLE, STABLE_LATENCY_SECONDS),
        *make("broken", "canary", BROKEN, FAILING_LATENCY_SECONDS),
        *make("broken", "stable", STABLE, STABLE_LATENCY_SECONDS),
    ]
