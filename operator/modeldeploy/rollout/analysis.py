"""Canary analysis, the pure part: which PromQL to run, and what a result means.

The built-in templates (success-rate, latency-p99) read the series of one source
(modeldeploy.rollout.sources: the data plane's own series of Traefik, Istio, ingress-nginx
or Envoy Gateway, or the model-server convention), chosen per metric or by the traffic
provider. Anything else is a `custom` metric with a PromQL template.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta

from modeldeploy.api.models import Analysis, AnalysisRun, Metric, ModelDeployment
from modeldeploy.render.common import name_of, namespace_of
from modeldeploy.rollout.sources import source_of
from modeldeploy.rollout.sources.base import Target
from modeldeploy.rollout.sources.model_server import LATENCY_METRIC, REQUESTS_METRIC
from modeldeploy.rollout.timing import parse_duration

__all__ = ["LATENCY_METRIC", "REQUESTS_METRIC", "QueryResult", "Target", "render_query", "target_of"]

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
PLACEHOLDERS = ("revision", "namespace", "name", "interval")


def target_of(md: ModelDeployment, revision: str) -> Target:
    """The target of an analysis of `revision` (the canary) of `md`."""
    return Target(
        name=name_of(md),
        namespace=namespace_of(md),
        revision=revision,
        port=md.spec.runtime.port,
        protocol=md.spec.runtime.protocol,
        provider=md.spec.traffic.provider,
        server=md.spec.runtime.metrics.source if md.spec.runtime.metrics else None,
    )


@dataclass(frozen=True)
class QueryResult:
    """The outcome of one instant query: a number, nothing (no series), or an error."""

    value: float | None = None
    error: str | None = None


def merged(step_analysis: Analysis, defaults: Analysis | None) -> Analysis:
    """The analysis a step runs: the fields it sets, the canary's defaults for the rest."""
    if defaults is None:
        return step_analysis
    return defaults.model_copy(
        update={field: getattr(step_analysis, field) for field in step_analysis.model_fields_set}
    )


def interval_of(analysis: Analysis) -> timedelta:
    """Time between measurements, in whole seconds (status stores times to the second) and at
    least one, because a rate needs a window."""
    return timedelta(seconds=max(1, math.ceil(parse_duration(analysis.interval).total_seconds())))


def render_query(metric: Metric, target: Target, interval: timedelta) -> str:
    """The PromQL of a metric for one revision; raises ValueError for a custom metric without
    a query or with an unknown placeholder, and for a built-in one without a source that can
    see the canary under the target's traffic provider."""
    window = f"{int(interval.total_seconds())}s"
    if metric.template != "custom":
        source = source_of(metric.name, metric.source, target.provider, metric.template, target.server)
        return source.query(metric.template, target, window)
    if metric.query is None:
        raise ValueError(f"metric {metric.name}: template custom needs a query")
    values = {
        "revision": target.revision,
        "namespace": target.namespace,
        "name": target.name,
        "interval": window,
    }
    unknown = sorted({found for found in _PLACEHOLDER.findall(metric.query) if found not in values})
    if unknown:
        known = ", ".join(PLACEHOLDERS)
        raise ValueError(f"metric {metric.name}: unknown placeholder {', '.join(unknown)} (known: {known})")
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], metric.query)


def problem_of(analysis: Analysis, provider: str | None = None, server: str | None = None) -> str | None:
    """Why this analysis can never succeed as configured, or None. Caught before any traffic
    depends on it, so a mistake fails the rollout at once instead of after the inconclusive
    limit. (Thresholds and custom queries are already checked by the API.) With the traffic
    `provider`, also whether each built-in metric has a source that sees the canary."""
    if analysis.prometheus is None:
        return "no Prometheus address (set spec.rollout.canary.analysis.prometheus.address)"
    if not analysis.metrics:
        return "no metrics to measure"
    try:
        for metric in analysis.metrics:
            target = Target(name="x", namespace="x", revision="x", provider=provider, server=server)
            render_query(metric, target, interval_of(analysis))
    except ValueError as error:
        return str(error)
    return None


def evaluate(metric: Metric, result: QueryResult, time: str) -> AnalysisRun:
    """The verdict on one result: within [min, max] succeeds, outside fails, no number is
    inconclusive (never a success: silence must not promote a canary)."""
    if result.error is not None:
        return AnalysisRun(
            metric=metric.name, verdict="Inconclusive", message=f"query failed: {result.error}", time=time
        )
    if result.value is None:
        return AnalysisRun(
            metric=metric.name,
            verdict="Inconclusive",
            message="no data: the query returned no series",
            time=time,
        )
    value = result.value
    if math.isnan(value) or math.isinf(value):
        return AnalysisRun(
            metric=metric.name,
            verdict="Inconclusive",
            message=f"no data: the query returned {value} (no requests in the interval?)",
            time=time,
        )
    shown = f"{metric.name} = {value:.6g}"
    if metric.min is not None and value < metric.min:
        return AnalysisRun(
            metric=metric.name,
            value=value,
            verdict="Failed",
            message=f"{shown}, below min {metric.min:g}",
            time=time,
        )
    if metric.max is not None and value > metric.max:
        return AnalysisRun(
            metric=metric.name,
            value=value,
            verdict="Failed",
            message=f"{shown}, above max {metric.max:g}",
            time=time,
        )
    return AnalysisRun(
        metric=metric.name, value=value, verdict="Successful", message=f"{shown}{_bounds(metric)}", time=time
    )


def _bounds(metric: Metric) -> str:
    bounds = []
    if metric.min is not None:
        bounds.append(f"min {metric.min:g}")
    if metric.max is not None:
        bounds.append(f"max {metric.max:g}")
    return f", within {' and '.join(bounds)}" if bounds else ""
