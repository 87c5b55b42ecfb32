"""One system at one size: create N models, start a canary on each, raise its weight, then
let the system look at everything again with nothing changed. Each phase is timed per
object and its API requests, CPU time are counted over the same window."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.observe import FirstSeen
from bench.process import cpu_seconds, peak_rss_bytes
from bench.requests import AuditRequests
from bench.systems import System
from bench.workload import CANARY_WEIGHTS, Model, canary_percent

# The benchmark's own creates and patches run this many at a time, as a GitOps tool's would.
ACTION_THREADS = 8
# A phase's window closes this long after the last object reached its state, so that
# requests the last reconciles or checks make in reply are counted too.
SETTLE_SECONDS = 2.0
ROUTE = ("gateway.networking.k8s.io", "v1", "httproutes")


@dataclass
class Counting:
    """Where requests come from: the audit log for writes always, for reads when the cluster's
    audit policy logs them (else each client's own count)."""

    audit: AuditRequests
    reads_from_audit: bool


class Window:
    """Requests and CPU time of one system between `open` and `close`."""

    def __init__(self, system: System, counting: Counting) -> None:
        self.system = system
        self.counting = counting
        self.mark = counting.audit.audit.size()
        self.since = time.time()
        self.cpu = cpu_seconds(system.pid)
        self.own_reads = None if counting.reads_from_audit else system.own_reads()

    def close(self, objects: int) -> dict[str, Any]:
        """Figures per object: `objects` is models times passes."""
        cpu = cpu_seconds(self.system.pid) - self.cpu
        requests = self.counting.audit.count(
            self.mark, self.since, time.time(), with_reads=self.counting.reads_from_audit
        )
        if self.own_reads is not None:
            requests.reads = self.system.own_reads() - self.own_reads
        return {"cpu_seconds": round(cpu, 2), **requests.summary(objects)}


def run(
    system: System,
    models: list[Model],
    counting: Counting,
    namespace: str,
    api: Any,
    record: Callable[[dict[str, Any]], None],
) -> None:
    """Every phase on a started system; `record` gets the figures so far after each phase
    (at 10,000 models a run takes an hour: what it measured is kept if it is cut short)."""
    started = cpu_seconds(system.pid)
    timeout = phase_timeout(len(models))
    phases: dict[str, Any] = {}

    def phase(name: str, figures: dict[str, Any]) -> None:
        phases[name] = figures
        record(
            {
                "phases": phases,
                "cpu_seconds": round(cpu_seconds(system.pid) - started, 2),
                "peak_rss_mb": round(peak_rss_bytes(system.pid) / 2**20, 1),
            }
        )

    ready = FirstSeen(api, *system.ready_resource, namespace, system.is_ready)
    phase("create", _timed(system, models, counting, system.create, timeout, ready))
    # Resync while every model is deployed and nothing waits: later, Flagger would be holding
    # canaries at its gates, which it reports with an Event every interval.
    phase("resync", _resync(system, models, counting, timeout))
    canary = _routed(api, namespace, CANARY_WEIGHTS[0])
    phase("canary", _timed(system, models, counting, system.start_canary, timeout, canary))
    weight = _routed(api, namespace, CANARY_WEIGHTS[1])
    phase("weight", _timed(system, models, counting, system.raise_weight, timeout, weight))


def phase_timeout(models: int) -> float:
    """Creating pods is the cluster's work too: 0.5 s per model on top of a minute."""
    return 60 + 0.5 * models


def _resync(system: System, models: list[Model], counting: Counting, timeout: float) -> dict[str, Any]:
    window = Window(system, counting)
    began = time.monotonic()
    passes = system.resync(models, timeout)
    elapsed = time.monotonic() - began
    return {
        "passes": passes,
        "seconds_per_pass": round(elapsed / passes, 2),
        **window.close(len(models) * passes),
    }


def _routed(api: Any, namespace: str, weight: int) -> FirstSeen:
    return FirstSeen(
        api, *ROUTE, namespace, lambda route: canary_percent(route, route["metadata"]["name"]) == weight
    )


def _timed(
    system: System,
    models: list[Model],
    counting: Counting,
    act: Callable[[Model], None],
    timeout: float,
    seen: FirstSeen,
) -> dict[str, Any]:
    """Acts on every model and waits until each reaches the state `seen` looks for; latency
    per model runs from the moment its action began."""
    acted: dict[str, float] = {}

    def act_on(model: Model) -> None:
        acted[model.name] = time.monotonic()
        act(model)

    with seen:
        window = Window(system, counting)
        with ThreadPoolExecutor(ACTION_THREADS) as pool:
            list(pool.map(act_on, models))
        reached = seen.wait([model.name for model in models], timeout)
        time.sleep(SETTLE_SECONDS)
        figures = window.close(len(models))
    latencies = sorted(reached[name] - acted[name] for name in reached)
    return {
        "objects": len(models),
        "completed": len(reached),
        "total_seconds": round(max(reached.values()) - min(acted.values()), 2) if reached else None,
        "p50_seconds": _percentile(latencies, 0.50),
        "p99_seconds": _percentile(latencies, 0.99),
        **figures,
    }


def _percentile(values: list[float], fraction: float) -> float | None:
    """Nearest rank: the smallest value at least `fraction` of the values do not exceed."""
    if not values:
        return None
    return round(values[max(0, math.ceil(fraction * len(values)) - 1)], 2)
