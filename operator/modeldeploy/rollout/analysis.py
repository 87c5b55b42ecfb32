"""Canary analysis, the pure part: which PromQL to run, and what a result means.

Built-in templates assume one metric convention for model servers (documented in
docs/rollout.md), with the labels `namespace`, `model` and `revision` added by the scrape
configuration from the pod's namespace and its `modeldeploy.io/model` and
`modeldeploy.io/revision` labels:

- `modeldeploy_requests_total{code}`: a counter of requests by HTTP status code;
- `modeldeploy_request_duration_seconds`: a histogram of request latency.

Anything else is a `custom` metric with a PromQL template.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta

from modeldeploy.api.models import Analysis, AnalysisRun, Metric
from modeldeploy.rollout.timing import parse_duration

REQUESTS_METRIC = "modeldeploy_requests_total"
LATENCY_METRIC = "modeldeploy_request_duration_seconds"

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
PLACEHOLDERS = ("revision", "namespace", "name", "interval")


@dataclass(frozen=True)
class Target:
    """What an analysis looks at: one revision of one ModelDeployment."""

    name: str
    namespace: str
    revision: str


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


def _label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _selector(target: Target) -> str:
    return (
        f'namespace="{_label_value(target.namespace)}",model="{_label_value(target.name)}",'
        f'revision="{_label_value(target.revision)}"'
    )


def render_query(metric: Metric, target: Target, interval: timedelta) -> str:
    """The PromQL of a metric for one revision; raises ValueError for a custom metric without
    a query or with an unknown placeholder."""
    window = f"{int(interval.total_seconds())}s"
    selector = _selector(target)
    if metric.template == "success-rate":
        return (
            f'sum(rate({REQUESTS_METRIC}{{{selector},code!~"5.."}}[{window}]))'
            f" / sum(rate({REQUESTS_METRIC}{{{selector}}}[{window}]))"
        )
    if metric.template == "latency-p99":
        return (
            f"histogram_quantile(0.99, sum by (le) (rate({LATENCY_METRIC}_bucket{{{selector}}}[{window}])))"
        )
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


def problem_of(analysis: Analysis) -> str | None:
    """Why this analysis can never succeed as configured, or None. Caught before any traffic
    depends on it, so a mistake fails the rollout at once instead of after the inconclusive
    limit. (Thresholds and custom queries are already checked by the API.)"""
    if analysis.prometheus is None:
        return "no Prometheus address (set spec.rollout.canary.analysis.prometheus.address)"
    if not analysis.metrics:
        return "no metrics to measure"
    try:
        for metric in analysis.metrics:
            render_query(metric, Target(name="x", namespace="x", revision="x"), interval_of(analysis))
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
