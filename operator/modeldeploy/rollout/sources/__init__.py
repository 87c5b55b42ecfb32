"""Where the built-in analysis templates read their series: one module per source, each a
`SOURCE` (see base.Source), named as in the API's `AnalysisSource`.

A source is named per metric (`source`), or follows spec.traffic.provider: istio and nginx
have their data plane's series; smi and service, whose data plane is unknown or kube-proxy,
the model server's; gateway-api must name it, since the provider does not say whether
Traefik, Envoy Gateway or another implementation serves the Gateway.
"""

from __future__ import annotations

from modeldeploy.rollout.sources import envoy_gateway, istio, model_server, nginx, traefik
from modeldeploy.rollout.sources.base import Source, Target

SOURCES: dict[str, Source] = {
    module.SOURCE.name: module.SOURCE for module in (model_server, traefik, istio, nginx, envoy_gateway)
}

DEFAULT_SOURCES: dict[str, str] = {
    "istio": "istio",
    "nginx": "nginx",
    "smi": "model-server",
    "service": "model-server",
}
"""By traffic provider; a provider missing here (gateway-api) needs the source named."""


def source_of(metric_name: str, source: str | None, provider: str | None) -> Source:
    """The source a built-in metric reads under this traffic provider (None: unknown); raises
    ValueError, naming the metric, where there is none or it cannot see the canary."""
    if source is None:
        if provider is None:
            return SOURCES["model-server"]
        if provider not in DEFAULT_SOURCES:
            choices = ", ".join(
                name for name, s in SOURCES.items() if s.providers is None or provider in s.providers
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


__all__ = ["DEFAULT_SOURCES", "SOURCES", "Source", "Target", "source_of"]
