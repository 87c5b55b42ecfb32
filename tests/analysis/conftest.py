"""A real Prometheus (Debian's `prometheus` package) scraping a synthetic model server.

The exporter serves the metric convention the built-in analysis templates assume
(docs/rollout.md), with counters and histograms that grow at fixed rates, so every query
has one exact expected answer. Prometheus scrapes it every second from a temporary
directory on a free loopback port, for the whole session.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

PROMETHEUS_BINARY = Path("/usr/bin/prometheus")
NAMESPACE = "ml"
MODEL = "sentiment"
# Requests per second by revision and status code.
REQUEST_RATES = {"good": {"200": 99.0, "500": 1.0}, "bad": {"200": 80.0, "503": 20.0}}
# Latency of revision "good": the share of requests at or under each bucket bound, so the
# 99th percentile interpolates to 0.5 + (0.99 - 0.98) / (1.0 - 0.98) * (1.0 - 0.5) = 0.75 s.
LATENCY_SHARES = [("0.1", 0.5), ("0.25", 0.9), ("0.5", 0.98), ("1.0", 1.0), ("+Inf", 1.0)]
GOOD_REQUESTS_PER_SECOND = sum(REQUEST_RATES["good"].values())
SCRAPES_BEFORE_TESTS = 5
STARTUP_TIMEOUT_SECONDS = 30


class SyntheticModelServer(Collector):
    """Counters as linear functions of time: every rate over any window is exact."""

    def __init__(self) -> None:
        self.started = time.time()

    def collect(self) -> Iterable[Metric]:
        elapsed = time.time() - self.started
        requests = CounterMetricFamily(
            "modeldeploy_requests",
            "Requests by status code.",
            labels=["namespace", "model", "revision", "code"],
        )
        for revision, rates in REQUEST_RATES.items():
            for code, per_second in rates.items():
                requests.add_metric([NAMESPACE, MODEL, revision, code], per_second * elapsed)
        yield requests
        latency = HistogramMetricFamily(
            "modeldeploy_request_duration_seconds",
            "Request latency.",
            labels=["namespace", "model", "revision"],
        )
        count = GOOD_REQUESTS_PER_SECOND * elapsed
        latency.add_metric(
            [NAMESPACE, MODEL, "good"],
            buckets=[(bound, share * count) for bound, share in LATENCY_SHARES],
            sum_value=0.2 * count,
        )
        yield latency


@pytest.fixture(scope="session")
def exporter() -> Iterator[str]:
    registry = CollectorRegistry()
    registry.register(SyntheticModelServer())
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def free_port() -> int:
    """A loopback port nothing listens on (until someone takes it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


@pytest.fixture(scope="session")
def prometheus(exporter: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running Prometheus that has scraped the exporter a few times."""
    if not PROMETHEUS_BINARY.exists():
        reason = f"{PROMETHEUS_BINARY} is missing: apt-get install -y prometheus"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    directory = tmp_path_factory.mktemp("prometheus")
    config = directory / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
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
