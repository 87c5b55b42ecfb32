"""A real Prometheus (Debian's `prometheus` package) scraping a synthetic model server.

Shared by the analysis tests and the cluster rollout tests. The synthetic server serves the
metric convention the built-in analysis templates assume (docs/rollout.md) for whichever
revisions a test asks for. Its counters grow at fixed rates from the moment a revision is
served, so every rate over a window after that moment has one exact expected answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from tests.loopback import free_port

PROMETHEUS_BINARY = Path("/usr/bin/prometheus")
# Twice a second, so that a rate over a 2 s analysis window always has several samples.
SCRAPE_INTERVAL = "500ms"
# Six seconds of history before any test: the longest rate window a test uses (5 s) lies
# wholly inside it, so no rate is cut short by the start of the series.
SCRAPES_BEFORE_TESTS = 12
STARTUP_TIMEOUT_SECONDS = 30
# No template reads a histogram's _sum; a plausible mean latency keeps the histogram valid.
MEAN_LATENCY_SECONDS = 0.2


@dataclass(frozen=True)
class ServedRevision:
    """What one revision of one model answers, as its model server would report it."""

    namespace: str
    model: str
    revision: str
    requests_per_second: dict[str, float]
    """By HTTP status code."""
    latency_shares: tuple[tuple[str, float], ...] = ()
    """Share of requests at or under each bucket bound (ending with +Inf); empty: no histogram."""

    @property
    def labels(self) -> list[str]:
        return [self.namespace, self.model, self.revision]


class SyntheticModelServer(Collector):
    """Counters as linear functions of time since each revision was first served."""

    def __init__(self) -> None:
        self._served: list[tuple[ServedRevision, float]] = []

    def serve(self, revision: ServedRevision) -> None:
        self._served.append((revision, time.time()))

    def collect(self) -> Iterable[Metric]:
        now = time.time()
        requests = CounterMetricFamily(
            "modeldeploy_requests",
            "Requests by status code.",
            labels=["namespace", "model", "revision", "code"],
        )
        latency = HistogramMetricFamily(
            "modeldeploy_request_duration_seconds",
            "Request latency.",
            labels=["namespace", "model", "revision"],
        )
        # A copy: tests add revisions while Prometheus scrapes.
        for served, since in list(self._served):
            elapsed = now - since
            for code, per_second in served.requests_per_second.items():
                requests.add_metric([*served.labels, code], per_second * elapsed)
            if served.latency_shares:
                count = sum(served.requests_per_second.values()) * elapsed
                latency.add_metric(
                    served.labels,
                    buckets=[(bound, share * count) for bound, share in served.latency_shares],
                    sum_value=MEAN_LATENCY_SECONDS * count,
                )
        yield requests
        yield latency


@contextmanager
def exporting(server: SyntheticModelServer) -> Iterator[str]:
    """Serves `server` over HTTP on a free loopback port; yields its host:port."""
    registry = CollectorRegistry()
    registry.register(server)
    http_server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{http_server.server_port}"
    finally:
        http_server.shutdown()
        thread.join()


def _instant(address: str, promql: str) -> list[dict]:
    url = f"{address}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=2) as response:
        return list(json.load(response)["data"]["result"])


def _wait_for_scrapes(address: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode}:\n{log.read_text()}", pytrace=False)
        try:
            result = _instant(address, 'count_over_time(up{job="model-servers"}[1m])')
        except (urllib.error.URLError, ConnectionError):
            result = []
        if result and float(result[0]["value"][1]) >= SCRAPES_BEFORE_TESTS:
            return
        time.sleep(0.25)
    pytest.fail(
        f"prometheus took over {STARTUP_TIMEOUT_SECONDS}s to scrape:\n{log.read_text()}", pytrace=False
    )


@contextmanager
def running_prometheus(exporter: str, directory: Path) -> Iterator[str]:
    """A Prometheus in `directory` scraping `exporter` (host:port); yields its base URL once it
    has scraped a few times. Skips the test where the binary is missing, except in CI."""
    if not PROMETHEUS_BINARY.exists():
        reason = f"{PROMETHEUS_BINARY} is missing: apt-get install -y prometheus"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    config = directory / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {
                    "scrape_interval": SCRAPE_INTERVAL,
                    "scrape_timeout": SCRAPE_INTERVAL,
                    "evaluation_interval": SCRAPE_INTERVAL,
                },
                "scrape_configs": [
                    {"job_name": "model-servers", "static_configs": [{"targets": [exporter]}]}
                ],
            }
        )
    )
    address = f"http://127.0.0.1:{free_port()}"
    log = directory / "prometheus.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(PROMETHEUS_BINARY),
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address={address.removeprefix('http://')}",
                "--log.level=warn",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_scrapes(address, process, log)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=15)
