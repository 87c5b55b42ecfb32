"""Each analysis source against a real Prometheus: the built-in templates' queries, evaluated
by Prometheus over a stand-in exporter that serves that data plane's own series (a healthy
canary, a failing one, and their stable backends), give the canary's success rate and p99."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modeldeploy.api.models import Analysis, AnalysisRun
from modeldeploy.rollout.analysis import Target
from modeldeploy.rollout.prometheus import measure
from tests.analysis.data_planes import CANARY_REVISION, EXPECTED, NAMESPACE, PORT, PROVIDERS, STAND_INS


def analysis_of(address: str, source: str) -> Analysis:
    return Analysis.model_validate(
        {
            "prometheus": {"address": address},
            "interval": "5s",
            "metrics": [
                {"name": "success-rate", "template": "success-rate", "min": 0.95, "source": source},
                {"name": "latency", "template": "latency-p99", "max": 1.0, "source": source},
            ],
        }
    )


async def measure_canary(prometheus: str, source: str, model: str) -> tuple[AnalysisRun, ...]:
    target = Target(
        name=model, namespace=NAMESPACE, revision=CANARY_REVISION, port=PORT, provider=PROVIDERS[source]
    )
    return await measure(analysis_of(prometheus, source), target, datetime.now(UTC))


@pytest.mark.parametrize("source", sorted(STAND_INS))
async def test_a_healthy_canary_passes_on_its_data_planes_own_series(prometheus: str, source: str) -> None:
    success, latency = await measure_canary(prometheus, source, "healthy")
    expected_rate, expected_p99 = EXPECTED["healthy"]
    assert (success.verdict, latency.verdict) == ("Successful", "Successful"), (success, latency)
    assert success.value == pytest.approx(expected_rate, abs=1e-6)
    assert latency.value == pytest.approx(expected_p99, abs=1e-6)
    assert success.message == "success-rate = 0.99, within min 0.95"
    assert latency.message == "latency = 0.75, within max 1"


@pytest.mark.parametrize("source", sorted(STAND_INS))
async def test_a_failing_canary_fails_naming_metric_value_and_threshold(prometheus: str, source: str) -> None:
    success, latency = await measure_canary(prometheus, source, "failing")
    expected_rate, expected_p99 = EXPECTED["failing"]
    assert (success.verdict, latency.verdict) == ("Failed", "Failed"), (success, latency)
    assert success.value == pytest.approx(expected_rate, abs=1e-6)
    assert latency.value == pytest.approx(expected_p99, abs=1e-6)
    assert success.message == "success-rate = 0.8, below min 0.95"
    assert latency.message == "latency = 3, above max 1"


@pytest.mark.parametrize("source", sorted(STAND_INS))
async def test_a_canary_failing_every_request_measures_zero_not_no_data(prometheus: str, source: str) -> None:
    # No series of a good code exists at all: found by a real canary behind Traefik, whose
    # rollback waited for the inconclusive limit because the ratio had no numerator.
    success, _ = await measure_canary(prometheus, source, "broken")
    assert (success.verdict, success.value) == ("Failed", 0.0), success
    assert success.message == "success-rate = 0, below min 0.95"


@pytest.mark.parametrize("source", sorted(STAND_INS))
async def test_a_model_the_data_plane_never_saw_is_inconclusive(prometheus: str, source: str) -> None:
    success, latency = await measure_canary(prometheus, source, "absent")
    assert (success.verdict, latency.verdict) == ("Inconclusive", "Inconclusive")
    assert success.message == "no data: the query returned no series"
