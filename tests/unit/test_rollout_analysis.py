"""The pure half of canary analysis: durations, queries, verdicts, inherited settings.
(The same queries run against a real Prometheus in tests/analysis/.)"""

from __future__ import annotations

import math
import pkgutil
from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from pydantic import ValidationError

from modeldeploy.api.models import (
    Analysis,
    AnalysisSource,
    Metric,
    ModelDeployment,
    ServerSource,
    Step,
    Traffic,
)
from modeldeploy.rollout import sources
from modeldeploy.rollout.analysis import (
    QueryResult,
    Target,
    evaluate,
    interval_of,
    merged,
    problem_of,
    render_query,
    target_of,
)
from modeldeploy.rollout.steps import describe_step, weight_at
from modeldeploy.rollout.timing import format_timestamp, parse_duration, parse_timestamp
from tests.unit.test_rollout_support import PROMETHEUS

TARGET = Target(name="sentiment", namespace="ml", revision="1b03e8aa00")
TIME = "2025-03-01T12:00:00Z"
MINUTE = timedelta(minutes=1)


def success_rate(source: str | None = None) -> Metric:
    return Metric(name="ok", template="success-rate", min=0.99, source=source)


def latency_p99(source: str | None = None) -> Metric:
    return Metric(name="p99", template="latency-p99", max=0.5, source=source)


def at(provider: str, *, port: int = 8080, protocol: str = "http") -> Target:
    return Target(
        name="sentiment",
        namespace="ml",
        revision="1b03e8aa00",
        port=port,
        protocol=protocol,
        provider=provider,
    )


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25), ("1.5m", 90), ("0s", 0)],
)
def test_durations_read_like_go(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5", "5 m", "m5", "1d", "5m3"])
def test_a_non_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_timestamps_are_utc_to_the_second() -> None:
    moment = datetime(2025, 3, 1, 13, 0, 0, 999_999, tzinfo=UTC).astimezone()
    assert format_timestamp(moment) == "2025-03-01T13:00:00Z"
    assert parse_timestamp("2025-03-01T13:00:00Z") == datetime(2025, 3, 1, 13, tzinfo=UTC)


def test_intervals_are_whole_seconds_and_never_zero() -> None:
    assert interval_of(Analysis(interval="1500ms")) == timedelta(seconds=2)
    assert interval_of(Analysis(interval="0s")) == timedelta(seconds=1)


def test_success_rate_is_the_share_of_non_5xx_responses_of_the_revision() -> None:
    query = render_query(Metric(name="ok", template="success-rate", min=0.99), TARGET, timedelta(minutes=1))
    selector = 'namespace="ml",model="sentiment",revision="1b03e8aa00"'
    assert query == (
        f'(sum(rate(modeldeploy_requests_total{{{selector},code!~"5.."}}[60s])) or vector(0))'
        f" / sum(rate(modeldeploy_requests_total{{{selector}}}[60s]))"
    )


def test_latency_p99_is_a_quantile_of_the_revision_histogram() -> None:
    query = render_query(Metric(name="p99", template="latency-p99", max=0.5), TARGET, timedelta(seconds=30))
    assert query == (
        "histogram_quantile(0.99, sum by (le) (rate(modeldeploy_request_duration_seconds_bucket"
        '{namespace="ml",model="sentiment",revision="1b03e8aa00"}[30s])))'
    )


# One pair per source: the exact series and label selectors a data plane's own metrics carry
# for the canary (where each was read: the source modules' docstrings).
SOURCE_QUERIES = {
    "traefik": (
        "gateway-api",
        'service="ml-sentiment-canary-http-8080@kubernetesgateway"',
        "traefik_service_requests_total",
        "code",
        "5..",
        "traefik_service_request_duration_seconds_bucket",
        "",
    ),
    "istio": (
        "istio",
        'reporter="destination",destination_workload_namespace="ml",'
        'destination_workload="sentiment-1b03e8aa00"',
        "istio_requests_total",
        "response_code",
        "5..",
        "istio_request_duration_milliseconds_bucket",
        " / 1000",
    ),
    "nginx": (
        "nginx",
        'namespace="ml",ingress="sentiment",canary="ml-sentiment-canary-8080"',
        "nginx_ingress_controller_requests",
        "status",
        "5.*",
        "nginx_ingress_controller_request_duration_seconds_bucket",
        "",
    ),
    "envoy-gateway": (
        "gateway-api",
        'envoy_cluster_name="service/ml/sentiment-canary/8080/http"',
        "envoy_cluster_upstream_rq",
        "envoy_response_code",
        "5..",
        "envoy_cluster_upstream_rq_time_bucket",
        " / 1000",
    ),
    "model-server": (
        "gateway-api",
        'namespace="ml",model="sentiment",revision="1b03e8aa00"',
        "modeldeploy_requests_total",
        "code",
        "5..",
        "modeldeploy_request_duration_seconds_bucket",
        "",
    ),
}


@pytest.mark.parametrize("source", sorted(SOURCE_QUERIES))
def test_each_source_renders_its_data_planes_series_of_the_canary(source: str) -> None:
    provider, selector, requests, code, errors, buckets, to_seconds = SOURCE_QUERIES[source]
    assert render_query(success_rate(source), at(provider), MINUTE) == (
        f'(sum(rate({requests}{{{selector},{code}!~"{errors}"}}[60s])) or vector(0))'
        f" / sum(rate({requests}{{{selector}}}[60s]))"
    )
    assert render_query(latency_p99(source), at(provider), MINUTE) == (
        f"histogram_quantile(0.99, sum by (le) (rate({buckets}{{{selector}}}[60s]))){to_seconds}"
    )


def test_every_source_in_the_api_has_its_module_and_queries_and_nothing_else() -> None:
    allowed = set(get_args(AnalysisSource))
    modules = {info.name for info in pkgutil.iter_modules(sources.__path__)} - {"base"}
    assert {module.replace("_", "-") for module in modules} == allowed
    assert set(sources.SOURCES) == allowed
    assert set(SOURCE_QUERIES) | set(get_args(ServerSource)) == allowed
    providers = set(get_args(Traffic.model_fields["provider"].annotation))
    assert set(sources.DEFAULT_SOURCES) == providers - {"gateway-api"}
    assert set(sources.DEFAULT_SOURCES.values()) <= allowed


def test_grpc_servers_are_named_as_each_gateway_names_grpc_backends() -> None:
    grpc = at("gateway-api", port=9000, protocol="grpc")
    assert 'service="ml-sentiment-canary-9000-grpc@kubernetesgateway"' in render_query(
        success_rate("traefik"), grpc, MINUTE
    )
    assert 'envoy_cluster_name="service/ml/sentiment-canary/9000/grpc"' in render_query(
        success_rate("envoy-gateway"), grpc, MINUTE
    )


@pytest.mark.parametrize(
    ("provider", "source"),
    [("istio", "istio"), ("nginx", "nginx"), ("smi", "model-server"), ("service", "model-server")],
)
def test_an_unset_source_follows_the_traffic_provider(provider: str, source: str) -> None:
    assert render_query(success_rate(), at(provider), MINUTE) == render_query(
        success_rate(source), at(provider), MINUTE
    )


def test_gateway_api_needs_the_source_named_and_says_which_ones_fit() -> None:
    message = (
        "metric ok: traffic provider gateway-api does not say which data plane serves the route; "
        "set the metric's source (model-server, traefik, istio, envoy-gateway)"
    )
    with pytest.raises(ValueError) as raised:
        render_query(success_rate(), at("gateway-api"), MINUTE)
    assert str(raised.value) == message
    analysis = Analysis(prometheus=PROMETHEUS, metrics=[success_rate()])
    assert problem_of(analysis, "gateway-api") == message
    assert problem_of(analysis) is None  # provider unknown: the model server, as before


@pytest.mark.parametrize(
    ("source", "provider", "needed"),
    [
        ("traefik", "istio", "gateway-api"),
        ("envoy-gateway", "nginx", "gateway-api"),
        ("nginx", "gateway-api", "nginx"),
    ],
)
def test_a_source_that_cannot_see_the_canary_under_the_provider_is_refused(
    source: str, provider: str, needed: str
) -> None:
    analysis = Analysis(prometheus=PROMETHEUS, metrics=[latency_p99(source)])
    assert problem_of(analysis, provider) == (
        f"metric p99: source {source} sees the canary only with traffic provider {needed}, not {provider}"
    )


def test_istio_and_the_model_server_see_a_revision_under_any_provider() -> None:
    for provider in get_args(Traffic.model_fields["provider"].annotation):
        for source in ("istio", "model-server"):
            render_query(success_rate(source), at(provider), MINUTE)


def test_a_custom_metric_cannot_name_a_source() -> None:
    with pytest.raises(ValidationError, match="source applies to the built-in templates only"):
        Metric(name="x", query="up", min=1, source="traefik")
    with pytest.raises(ValidationError):
        Metric(name="x", template="success-rate", min=1, source="linkerd")  # type: ignore[arg-type]


def test_the_target_of_a_model_deployment_names_what_its_routes_name() -> None:
    md = ModelDeployment.model_validate(
        {
            "apiVersion": "modeldeploy.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "sentiment", "namespace": "ml"},
            "spec": {
                "model": {"uri": "s3://models/sentiment/v7/"},
                "runtime": {"image": "ghcr.io/example/server:1", "port": 9000, "protocol": "grpc"},
                "traffic": {"provider": "nginx"},
            },
        }
    )
    assert target_of(md, "1b03e8aa00") == Target(
        name="sentiment", namespace="ml", revision="1b03e8aa00", port=9000, protocol="grpc", provider="nginx"
    )


def test_custom_queries_fill_placeholders_whatever_the_spacing() -> None:
    metric = Metric(
        name="errors",
        query='sum(rate(errors{ns="{{namespace}}",app="{{ name }}",rev="{{  revision  }}"}[{{ interval }}]))',
        max=1,
    )
    assert render_query(metric, TARGET, timedelta(minutes=2)) == (
        'sum(rate(errors{ns="ml",app="sentiment",rev="1b03e8aa00"}[120s]))'
    )


def test_label_values_are_escaped_in_built_in_templates() -> None:
    odd = Target(name='a"b', namespace="ml", revision="r\\1")
    query = render_query(Metric(name="ok", template="success-rate", min=0.9), odd, timedelta(seconds=10))
    assert 'model="a\\"b"' in query
    assert 'revision="r\\\\1"' in query


def test_an_unknown_placeholder_is_a_problem_before_any_query() -> None:
    analysis = Analysis(prometheus=PROMETHEUS, metrics=[Metric(name="x", query="up{rev='{{ rev }}'}", min=1)])
    assert (
        problem_of(analysis)
        == "metric x: unknown placeholder rev (known: revision, namespace, name, interval)"
    )


def test_an_analysis_without_prometheus_or_metrics_is_a_problem() -> None:
    metric = Metric(name="ok", template="success-rate", min=0.9)
    assert "no Prometheus address" in str(problem_of(Analysis(metrics=[metric])))
    assert problem_of(Analysis(prometheus=PROMETHEUS)) == "no metrics to measure"
    assert problem_of(Analysis(prometheus=PROMETHEUS, metrics=[metric])) is None


@pytest.mark.parametrize(
    ("value", "verdict", "message"),
    [
        (0.995, "Successful", "ok = 0.995, within min 0.99 and max 1"),
        (0.98, "Failed", "ok = 0.98, below min 0.99"),
        (1.5, "Failed", "ok = 1.5, above max 1"),
    ],
)
def test_a_value_is_judged_against_min_and_max(value: float, verdict: str, message: str) -> None:
    run = evaluate(
        Metric(name="ok", template="success-rate", min=0.99, max=1), QueryResult(value=value), TIME
    )
    assert (run.metric, run.value, run.verdict, run.message, run.time) == (
        "ok",
        value,
        verdict,
        message,
        TIME,
    )


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (QueryResult(), "no data: the query returned no series"),
        (QueryResult(value=math.nan), "no data: the query returned nan (no requests in the interval?)"),
        (QueryResult(value=math.inf), "no data: the query returned inf (no requests in the interval?)"),
        (QueryResult(error="connection refused"), "query failed: connection refused"),
    ],
)
def test_no_number_is_inconclusive_never_successful(result: QueryResult, message: str) -> None:
    run = evaluate(Metric(name="ok", template="success-rate", min=0.99), result, TIME)
    assert (run.verdict, run.value, run.message) == ("Inconclusive", None, message)


def test_a_step_analysis_takes_what_it_leaves_unset_from_the_canary() -> None:
    defaults = Analysis.model_validate(
        {
            "prometheus": PROMETHEUS,
            "interval": "2m",
            "failureLimit": 3,
            "metrics": [{"name": "a", "min": 1, "query": "x"}],
        }
    )
    step = Analysis.model_validate({"count": 4, "failureLimit": 0})
    result = merged(step, defaults)
    assert (result.interval, result.count, result.failure_limit) == ("2m", 4, 0)
    assert result.prometheus == defaults.prometheus
    assert [m.name for m in result.metrics] == ["a"]
    assert merged(step, None) is step


def test_steps_describe_themselves_and_carry_their_weight() -> None:
    steps = [
        Step.model_validate(data)
        for data in [{"weight": 10}, {"pause": {"duration": "5m"}}, {"weight": 40}, {"pause": {}}]
    ]
    assert [weight_at(steps, index) for index in range(5)] == [0, 10, 10, 40, 40]
    assert [describe_step(step, None) for step in steps] == [
        "weight 10%",
        "pause 5m",
        "weight 40%",
        "pause until resumed",
    ]
    analysis_step = Step.model_validate({"analysis": {"count": 3}})
    defaults = Analysis.model_validate(
        {"interval": "1m", "metrics": [{"name": "ok", "template": "success-rate", "min": 0.9}]}
    )
    assert describe_step(analysis_step, defaults) == "analysis ok: 3 x every 1m"
