"""The built-in templates of each model server's own series against a real Prometheus: error
ratio and p99 for every server, time to first token and inter-token latency p95 for vLLM and
TGI, each read from a stand-in exporter with the server's exact series (model_servers.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modeldeploy.api.models import Analysis, AnalysisRun
from modeldeploy.rollout.analysis import Target
from modeldeploy.rollout.prometheus import measure
from modeldeploy.rollout.sources import SERVER_TEMPLATES, SOURCES
from tests.analysis.model_servers import CANARY_REVISION, EXPECTED, NAMESPACE, STAND_INS, TGI_TTFT

LIMITS = {"error-ratio": 0.05, "latency-p99": 1.0, "ttft-p95": 0.5, "inter-token-latency-p95": 0.05}
EVERY_SERVER = ("error-ratio", "latency-p99")
TOKEN_SERVERS = ("vllm", "tgi")


def expected(source: str, model: str, template: str) -> float:
    if source == "tgi" and template == "ttft-p95":
        return TGI_TTFT[model]
    return EXPECTED[model][template]


async def measure_canary(prometheus: str, source: str, model: str) -> dict[str, AnalysisRun]:
    """Every template of the source: named where the source is the traffic provider's by default
    (latency-p99), left unset where it is the runtime's metrics source."""
    analysis = Analysis.model_validate(
        {
            "prometheus": {"address": prometheus},
            "interval": "5s",
            "metrics": [
                {"name": template, "template": template, "max": LIMITS[template]}
                | ({} if template in SERVER_TEMPLATES else {"source": source})
                for template in SOURCES[source].templates
            ],
        }
    )
    target = Target(
        name=model, namespace=NAMESPACE, revision=CANARY_REVISION, provider="service", server=source
    )
    return {run.metric: run for run in await measure(analysis, target, datetime.now(UTC))}


def test_every_server_has_error_ratio_and_p99_and_the_token_servers_their_token_latencies() -> None:
    for source in STAND_INS:
        assert set(EVERY_SERVER) <= set(SOURCES[source].templates), source
    for source in TOKEN_SERVERS:
        assert set(SOURCES[source].templates) == set(LIMITS), source


@pytest.mark.parametrize("source", sorted(STAND_INS))
async def test_a_healthy_canary_passes_on_its_servers_own_series(prometheus: str, source: str) -> None:
    runs = await measure_canary(prometheus, source, "healthy")
    for template, run in runs.items():
        assert run.verdict == "Successful", run
        assert run.value == pytest.approx(expected(source, "healthy", template), rel=1e-6), run


@pytest.mark.parametrize("source", sorted(STAND_INS))
async def test_a_failing_canary_fails_on_every_template(prometheus: str, source: str) -> None:
    runs = await measure_canary(prometheus, source, "failing")
    for template, run in runs.items():
        assert run.verdict == "Failed", run
        assert run.value == pytest.approx(expected(source, "failing", template), rel=1e-6), run
        assert "above max" in run.message


async def test_an_llm_canary_is_judged_on_time_to_first_token(prometheus: str) -> None:
    analysis = Analysis.model_validate(
        {
            "prometheus": {"address": prometheus},
            "metrics": [{"name": "ttft", "template": "ttft-p95", "max": 0.5, "source": "vllm"}],
        }
    )
    target = Target(name="failing", namespace=NAMESPACE, revision=CANARY_REVISION, provider="gateway-api")
    (run,) = await measure(analysis, target, datetime.now(UTC))
    assert (run.verdict, run.message) == ("Failed", "ttft = 3, above max 0.5")
