"""A real Prometheus for the whole session, scraping a synthetic model server with two
revisions and one stand-in exporter per analysis source (tests/analysis/data_planes.py).

Revision "good" answers 1% errors with a known latency histogram, revision "bad" 20% errors
(tests/prometheus_server.py has the machinery).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.analysis import model_servers
from tests.analysis.data_planes import STAND_INS, all_series
from tests.prometheus_server import (
    DataPlaneExporter,
    ServedRevision,
    SyntheticModelServer,
    exporting,
    exporting_text,
    running_prometheus,
)

NAMESPACE = "ml"
MODEL = "sentiment"
# Requests per second by status code.
GOOD_REQUESTS = {"200": 99.0, "500": 1.0}
BAD_REQUESTS = {"200": 80.0, "503": 20.0}
GOOD_REQUESTS_PER_SECOND = sum(GOOD_REQUESTS.values())
# Latency of revision "good": the share of requests at or under each bucket bound, so the
# 99th percentile interpolates to 0.5 + (0.99 - 0.98) / (1.0 - 0.98) * (1.0 - 0.5) = 0.75 s.
LATENCY_SHARES = (("0.1", 0.5), ("0.25", 0.9), ("0.5", 0.98), ("1.0", 1.0), ("+Inf", 1.0))


@pytest.fixture(scope="session")
def exporter() -> Iterator[str]:
    server = SyntheticModelServer()
    server.serve(ServedRevision(NAMESPACE, MODEL, "good", GOOD_REQUESTS, latency_shares=LATENCY_SHARES))
    server.serve(ServedRevision(NAMESPACE, MODEL, "bad", BAD_REQUESTS))
    with exporting(server) as address:
        yield address


@pytest.fixture(scope="session")
def data_planes() -> Iterator[dict[str, str]]:
    """host:port of each source's stand-in exporter, by source."""
    with ExitStack() as stack:
        addresses = {}
        for source in STAND_INS:
            exporter = DataPlaneExporter()
            exporter.serve(*all_series(source))
            addresses[source] = stack.enter_context(exporting_text(exporter))
        yield addresses


@pytest.fixture(scope="session")
def server_metrics() -> Iterator[dict[str, str]]:
    """host:port of each model server's stand-in exporter, by source."""
    with ExitStack() as stack:
        yield {
            source: stack.enter_context(
                exporting_text(model_servers.ServerExporter(model_servers.all_samples(source)))
            )
            for source in model_servers.STAND_INS
        }


@pytest.fixture(scope="session")
def prometheus(
    exporter: str,
    data_planes: dict[str, str],
    server_metrics: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """Base URL of a running Prometheus that has scraped every exporter a few times."""
    jobs = (
        {"model-servers": exporter}
        | {f"data-plane-{source}": address for source, address in data_planes.items()}
        | {f"server-{source}": address for source, address in server_metrics.items()}
    )
    with running_prometheus(jobs, tmp_path_factory.mktemp("prometheus")) as address:
        yield address
