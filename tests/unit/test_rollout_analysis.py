"""The pure half of canary analysis: durations, queries, verdicts, inherited settings.
(The same queries run against a real Prometheus in tests/analysis/.)"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from modeldeploy.api.models import Analysis, Metric, Step
from modeldeploy.rollout.analysis import (
    QueryResult,
    Target,
    evaluate,
    interval_of,
    merged,
    problem_of,
    render_query,
)
from modeldeploy.rollout.steps import describe_step, weight_at
from modeldeploy.rollout.timing import format_timestamp, parse_duration, parse_timestamp
from tests.unit.test_rollout_support import PROMETHEUS

TARGET = Target(name="sentiment", namespace="ml", revision="1b03e8aa00")
TIME = "2025-03-01T12:00:00Z"


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
        f'sum(rate(modeldeploy_requests_total{{{selector},code!~"5.."}}[60s]))'
        f" / sum(rate(modeldeploy_requests_total{{{selector}}}[60s]))"
    )


def test_latency_p99_is_a_quantile_of_the_revision_histogram() -> None:
    query = render_query(Metric(name="p99", template="latency-p99", max=0.5), TARGET, timedelta(seconds=30))
    assert query == (
        "histogram_quantile(0.99, sum by (le) (rate(modeldeploy_request_duration_seconds_bucket"
        '{namespace="ml",model="sentiment",revision="1b03e8aa00"}[30s])))'
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
