"""A real Prometheus (Debian's `prometheus` package) scraping synthetic exporters.

Shared by the analysis tests and the cluster rollout tests. The synthetic model server serves
the model-server convention (docs/rollout.md) for whichever revisions a test asks for; a
data-plane exporter serves series under any exact names and labels (a stand-in for Traefik,
Istio, ingress-nginx or Envoy, which name their counters as they like: `_total` or not). Their
counters grow at fixed rates from the moment a series is served, so every rate over a window
after that moment has one exact expected answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

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


@dataclass(frozen=True)
class DataPlaneSeries:
    """One backend's requests as a data plane reports them: a counter of responses by status
    code and a latency histogram, under exactly the names and labels given."""

    requests: str
    """Exposed name of the counter, as is (no `_total` added)."""
    latency: str
    """Base name of the histogram: `<latency>_bucket`, `_sum` and `_count` are served."""
    labels: tuple[tuple[str, str], ...]
    code_label: str
    requests_per_second: dict[str, float]
    """By status code."""
    latency_shares: tuple[tuple[str, float], ...]
    """Share of requests at or under each bucket bound, in the histogram's unit, ending with +Inf."""
    latency_by_code: bool = True
    """Whether the histogram carries the code label too (Envoy's does not)."""
    mean_latency: float = MEAN_LATENCY_SECONDS


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _line(name: str, labels: Iterable[tuple[str, str]], value: float) -> str:
    body = ",".join(f'{key}="{_escape(text)}"' for key, text in labels)
    return f"{name}{{{body}}} {value!r}"


class DataPlaneExporter:
    """Serves DataPlaneSeries in the Prometheus text format, counters growing from `serve`."""

    def __init__(self) -> None:
        self._served: list[tuple[DataPlaneSeries, float]] = []

    def serve(self, *series: DataPlaneSeries) -> None:
        now = time.time()
        self._served.extend((one, now) for one in series)

    def exposition(self) -> str:
        now = time.time()
        families: dict[tuple[str, str], list[str]] = {}
        for served, since in list(self._served):
            elapsed = now - since
            total = sum(served.requests_per_second.values()) * elapsed
            counter = families.setdefault((served.requests, "counter"), [])
            by_code: list[tuple[tuple[tuple[str, str], ...], float]] = []
            for code, per_second in served.requests_per_second.items():
                labels = (*served.labels, (served.code_label, code))
                counter.append(_line(served.requests, labels, per_second * elapsed))
                by_code.append((labels, per_second * elapsed))
            histogram = families.setdefault((served.latency, "histogram"), [])
            for labels, count in by_code if served.latency_by_code else [(served.labels, total)]:
                for bound, share in served.latency_shares:
                    histogram.append(
                        _line(f"{served.latency}_bucket", (*labels, ("le", bound)), share * count)
                    )
                histogram.append(_line(f"{served.latency}_sum", labels, served.mean_latency * count))
                histogram.append(_line(f"{served.latency}_count", labels, count))
        lines = []
        for (name, kind), samples in families.items():
            lines += [f"# TYPE {name} {kind}", *samples]
        return "\n".join(lines) + "\n"


class Exposition(Protocol):
    def exposition(self) -> str: ...


@contextmanager
def exporting_text(exporter: Exposition) -> Iterator[str]:
    """Serves `exporter` at /metrics on a free loopback port; yields its host:port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exporter.exposition().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _instant(address: str, promql: str) -> list[dict]:
    url = f"{address}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=2) as response:
        return list(json.load(response)["data"]["result"])


def _wait_for_scrapes(address: str, process: subprocess.Popen[bytes], log: Path, targets: int) -> None:
    """Until every target has been scraped SCRAPES_BEFORE_TESTS times."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited with {process.returncode}:\n{log.read_text()}", pytrace=False)
        try:
            result = _instant(address, f"count(count_over_time(up[1m]) >= {SCRAPES_BEFORE_TESTS})")
        except (urllib.error.URLError, ConnectionError):
            result = []
        if result and int(float(result[0]["value"][1])) == targets:
            return
        time.sleep(0.25)
    pytest.fail(
        f"prometheus took over {STARTUP_TIMEOUT_SECONDS}s to scrape:\n{log.read_text()}", pytrace=False
    )


@contextmanager
def running_prometheus(exporter: str | dict[str, str], directory: Path) -> Iterator[str]:
    """A Prometheus in `directory` scraping `exporter` (host:port; or host:port by job name,
    one job each); yields its base URL once it has scraped each a few times. Skips the test
    where the binary is missing, except in CI."""
    jobs = {"model-servers": exporter} if isinstance(exporter, str) else exporter
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
                    {"job_name": job, "static_configs": [{"targets": [target]}]}
                    for job, target in jobs.items()
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
        _wait_for_scrapes(address, process, log, len(jobs))
        yield address
    finally:
        process.terminate()
        process.wait(timeout=15)
