"""A real Prometheus scraping a synthetic model server with two revisions, for the whole session.

Revision "good" answers 1% errors with a known latency histogram, revision "bad" 20% errors
(tests/prometheus_server.py has the machinery).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.prometheus_server import ServedRevision, SyntheticModelServer, exporting, running_prometheus

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
def prometheus(exporter: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running Prometheus that has scraped the exporter a few times."""
    with running_prometheus(exporter, tmp_path_factory.mktemp("prometheus")) as address:
        yield address
