"""Where the built-in analysis templates read their series: one module per source, each a
`SOURCE` (see base.Source), named as in the API's `AnalysisSource`.

A source is named per metric (`source`), or follows spec.traffic.provider: istio and nginx
have their data plane's series; smi and service, whose data plane is unknown or kube-proxy,
the model server's; gateway-api must name it, since the provider does not say whether
Traefik, Envoy Gateway or another implementation serves the Gateway. The model servers' own
series (vllm, tgi, triton, mlserver) are the default of the templates only a server measures
(SERVER_TEMPLATES), from the runtime's metrics.source.
"""

from __future__ import annotations

from modeldeploy.rollout.sources import (
    envoy_gateway,
    istio,
    mlserver,
    model_server,
    nginx,
    tgi,
    traefik,
    triton,
    vllm,
)
from modeldeploy.rollout.sources.base import ServerSource, Source, Target

SOURCES: dict[str, Source | ServerSource] = {
    module.SOURCE.name: module.SOURCE
    for module in (model_server, traefik, istio, nginx, envoy_gateway, vllm, tgi, triton, mlserver)
}

SERVER_TEMPLATES = ("error-ratio", "ttft-p95", "inter-token-latency-p95")
"""Templates whose unset source is the runtime's metrics.source."""

DEFAULT_SOURCES: dict[str, str] = {
    "istio": "istio",
    "nginx": "nginx",
    "smi": "model-server",
    "service": "model-server",
}
"""By traffic provider; a provider missing here (gateway-api) needs the source named."""


def source_of(
    metric_name: str,
    source: str | None,
    provider: str | None,
    template: str = "success-rate",
    server: str | None = None,
) -> Source | ServerSource:
    """The source a built-in metric reads under this traffic provider (None: unknown) and the
    runtime's metrics source `server`; raises ValueError, naming the metric, where there is
    none, it cannot see the canary, or it has no such template."""
    found = _source(metric_name, source, provider, template, server)
    if template not in found.templates:
        with_it = sorted(name for name, s in SOURCES.items() if template in s.templates)
        raise ValueError(
            f"metric {metric_name}: source {found.name} has no template {template} "
            f"(it has {', '.join(found.templates)}; {template} is read from {', '.join(with_it)})"
        )
    return found


def _source(
    metric_name: str, source: str | None, provider: str | None, template: str, server: str | None
) -> Source | ServerSource:
    if source is None and template in SERVER_TEMPLATES:
        if server is None:
            raise ValueError(
                f"metric {metric_name}: template {template} reads the model server's own series: set the "
                "metric's source (vllm, tgi, triton, mlserver) or use a runtime with metrics.source"
            )
        source = server
    if source is None:
        if provider is None:
            return SOURCES["model-server"]
        if provider not in DEFAULT_SOURCES:
            choices = ", ".join(
                name
                for name, s in SOURCES.items()
                if (s.providers is None or provider in s.providers) and template in s.templates
            )
            raise ValueError(
                f"metric {metric_name}: traffic provider {provider} does not say which data plane serves "
                f"the route; set the metric's source ({choices})"
            )
        source = DEFAULT_SOURCES[provider]
    found = SOURCES[source]
    if provider is not None and found.providers is not None and provider not in found.providers:
        raise ValueError(
            f"metric {metric_name}: source {source} sees the canary only with traffic provider "
            f"{' or '.join(found.providers)}, not {provider}"
        )
    return found


__all__ = ["DEFAULT_SOURCES", "SERVER_TEMPLATES", "SOURCES", "ServerSource", "Source", "Target", "source_of"]
