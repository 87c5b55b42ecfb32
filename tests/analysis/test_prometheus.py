"""Canary analysis against a real Prometheus: the built-in templates, custom PromQL, and
every way a measurement can come back without a number."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from modeldeploy.api.models import Analysis, AnalysisRun
from modeldeploy.rollout.analysis import Target
from modeldeploy.rollout.prometheus import measure, query
from tests.analysis.conftest import GOOD_REQUESTS_PER_SECOND, MODEL, NAMESPACE
from tests.loopback import free_port

SUCCESS_RATE = {"name": "success-rate", "template": "success-rate", "min": 0.95}
LATENCY = {"name": "latency", "template": "latency-p99", "max": 1.0}


def analysis_of(address: str, *metrics: dict) -> Analysis:
    return Analysis.model_validate(
        {"prometheus": {"address": address}, "interval": "5s", "metrics": list(metrics)}
    )


async def measure_revision(analysis: Analysis, revision: str) -> tuple[AnalysisRun, ...]:
    return await measure(
        analysis, Target(name=MODEL, namespace=NAMESPACE, revision=revision), datetime.now(UTC)
    )


async def test_success_rate_and_p99_of_a_healthy_revision(prometheus: str) -> None:
    success, latency = await measure_revision(analysis_of(prometheus, SUCCESS_RATE, LATENCY), "good")
    assert (success.metric, success.verdict) == ("success-rate", "Successful")
    assert success.value == pytest.approx(0.99, abs=1e-6)
    assert (latency.metric, latency.verdict) == ("latency", "Successful")
    assert latency.value == pytest.approx(0.75, abs=1e-6)
    assert latency.message == "latency = 0.75, within max 1"


async def test_a_revision_with_errors_fails_with_value_and_threshold(prometheus: str) -> None:
    (run,) = await measure_revision(analysis_of(prometheus, SUCCESS_RATE), "bad")
    assert run.verdict == "Failed"
    assert run.value == pytest.approx(0.8, abs=1e-6)
    assert run.message == "success-rate = 0.8, below min 0.95"


async def test_p99_above_max_fails(prometheus: str) -> None:
    (run,) = await measure_revision(analysis_of(prometheus, {**LATENCY, "max": 0.5}), "good")
    assert run.verdict == "Failed"
    assert run.message == "latency = 0.75, above max 0.5"


async def test_custom_promql_gets_its_placeholders_filled(prometheus: str) -> None:
    requests_per_second = {
        "name": "throughput",
        "query": 'sum(rate(modeldeploy_requests_total{namespace="{{namespace}}", model="{{ name }}", '
        'revision="{{ revision }}"}[{{ interval }}]))',
        "min": 50,
    }
    (run,) = await measure_revision(analysis_of(prometheus, requests_per_second), "good")
    assert run.verdict == "Successful"
    assert run.value == pytest.approx(GOOD_REQUESTS_PER_SECOND, rel=0.02)


async def test_a_revision_without_data_is_inconclusive(prometheus: str) -> None:
    success, latency = await measure_revision(
        analysis_of(prometheus, SUCCESS_RATE, LATENCY), "never-deployed"
    )
    assert (success.verdict, success.value) == ("Inconclusive", None)
    assert success.message == "no data: the query returned no series"
    assert latency.verdict == "Inconclusive"


async def test_a_query_that_is_not_one_number_is_inconclusive(prometheus: str) -> None:
    by_code = {
        "name": "by-code",
        "query": 'sum by (code) (modeldeploy_requests_total{revision="{{ revision }}"})',
        "min": 0,
    }
    broken = {"name": "broken", "query": "sum(rate(modeldeploy_requests_total[5s]", "min": 0}
    several, invalid = await measure_revision(analysis_of(prometheus, by_code, broken), "good")
    assert several.verdict == "Inconclusive"
    assert several.message == "query failed: the query returned 2 series; it must return one number"
    assert invalid.verdict == "Inconclusive"
    assert invalid.message.startswith("query failed: HTTP 400: ")
    assert "parse error" in invalid.message


async def test_an_unreachable_prometheus_is_inconclusive_with_the_error() -> None:
    address = f"http://127.0.0.1:{free_port()}"
    (run,) = await measure_revision(analysis_of(address, SUCCESS_RATE), "good")
    assert run.verdict == "Inconclusive"
    assert run.message.startswith(f"query failed: {address}: ClientConnectorError")


async def test_a_silent_prometheus_times_out_inconclusive() -> None:
    # A socket that accepts connections and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"http://127.0.0.1:{silent.getsockname()[1]}"
        result = await query(address, "1", timeout=0.5)
    assert result.error == f"no answer from {address} within 0.5s"


async def test_scalars_are_numbers_too(prometheus: str) -> None:
    result = await query(prometheus, "scalar(vector(6)) * 7")
    assert (result.value, result.error) == (42.0, None)
