"""The benchmark's arithmetic: how requests are classified, percentiles, ratios and the
verdict on each target. The figures themselves come from `make bench` on a cluster."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from bench import report
from bench.requests import client_go_read
from bench.scenario import _percentile
from bench.workload import canary_percent


@pytest.mark.parametrize(
    ("method", "url", "verb"),
    [
        ("GET", "https://127.0.0.1:6443/api/v1/namespaces/ns/pods?watch=true&resourceVersion=5", "watch"),
        ("GET", "https://127.0.0.1:6443/api/v1/namespaces/ns/pods?labelSelector=app%3Dm", "list"),
        ("GET", "https://127.0.0.1:6443/api/v1/namespaces/ns/services/m0001-canary", "get"),
        ("GET", "https://127.0.0.1:6443/apis/flagger.app/v1beta1/namespaces/ns/canaries/m0001", "get"),
        ("GET", "https://127.0.0.1:6443/apis/flagger.app/v1beta1/canaries", "list"),
        ("GET", "https://127.0.0.1:6443/api/v1/nodes/bench-gpu-1", "get"),
        ("GET", "https://127.0.0.1:6443/version", "get"),
        ("PATCH", "https://127.0.0.1:6443/api/v1/namespaces/ns/services/m0001", None),
    ],
)
def test_client_go_requests_are_classified_as_the_api_server_would(
    method: str, url: str, verb: str | None
) -> None:
    assert client_go_read(method, url) == verb


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert _percentile(values, 0.50) == 50.0
    assert _percentile(values, 0.99) == 99.0
    assert _percentile([3.0], 0.99) == 3.0
    assert _percentile([], 0.5) is None


def test_canary_percent_reads_the_weight_of_the_canary_backend() -> None:
    route = {
        "spec": {
            "rules": [
                {"backendRefs": [{"name": "m-stable", "weight": 90}, {"name": "m-canary", "weight": 10}]},
            ]
        }
    }
    assert canary_percent(route, "m") == 10
    assert canary_percent({"spec": {"rules": [{"backendRefs": [{"name": "m-stable"}]}]}}, "m") == 0


def _system(
    ready_seconds: float, resync_writes: float, rss: float, writes: dict[str, float]
) -> dict[str, Any]:
    phase = {
        "objects": 10,
        "completed": 10,
        "total_seconds": ready_seconds,
        "p50_seconds": ready_seconds / 2,
        "p99_seconds": ready_seconds,
        "cpu_seconds": 1.0,
        "reads_per_object": 10.0,
        "reads_per_object_by_verb": {"get": 4.0, "list": 6.0, "watch": 0.0},
        "writes_per_object": sum(writes.values()),
        "writes_per_object_by_resource": writes,
        "failed_writes": 0,
    }
    resync = {**copy.deepcopy(phase), "passes": 1, "writes_per_object": resync_writes}
    return {
        "phases": {"create": phase, "resync": resync, "canary": phase, "weight": phase},
        "cpu_seconds": 3.0,
        "peak_rss_mb": rss,
    }


def _results(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    return {
        "date": "2026-11-24T00:00:00+00:00",
        "machine": {"nproc": 2, "cpu_model": "test", "memory_gib": 24},
        "versions": {"modeldeploy": "0", "flagger": "v1"},
        "reads_counted_from": "the API server's audit log",
        "sizes": {"10": {"modeldeploy": ours, "flagger": peer}},
    }


def test_the_table_gives_each_figure_as_a_ratio_to_flagger_and_judges_the_targets() -> None:
    writes = {"deployments": 1.0, "services": 3.0, "httproutes": 1.0, "modeldeployments/status": 2.0}
    table = report.markdown(
        _results(_system(10.0, 0.0, 120.0, writes), _system(20.0, 1.0, 60.0, {"deployments": 3.0}))
    )
    assert "| create: all Ready (s) | 10 | 20 | 0.50x |" in table
    assert "| peak RSS (MB) | 120 | 60 | 2.00x |" in table
    assert (
        "- 10 models, every figure at or below Flagger's: not met: create: writes per model (2.33x); "
        "canary at 10 %: writes per model (2.33x); weight 10 → 50: writes per model (2.33x); "
        "peak RSS (MB) (2.00x)" in table
    )
    assert (
        "- at most one write per child on create: deployments 1.00, services 1.00, httproutes 1.00 — met"
        in table
    )
    assert "- zero writes on resync: 0.0 — met" in table
    assert "Every model reached every state." in table


def test_missed_targets_and_unfinished_phases_are_said() -> None:
    ours = _system(50.0, 2.0, 300.0, {"deployments": 2.0, "services": 3.0, "httproutes": 1.0})
    ours["phases"]["weight"] = {**ours["phases"]["weight"], "completed": 7}
    table = report.markdown(_results(ours, _system(20.0, 0.0, 60.0, {})))
    assert "create: all Ready (s) (2.50x)" in table
    assert "deployments 2.00, services 1.00, httproutes 1.00 — not met" in table
    assert "- zero writes on resync: 2.0 — not met" in table
    assert "Timed out: modeldeploy weight: 7/10" in table


def test_the_operator_alone_at_10000_models_is_judged_on_the_scale_targets_even_if_cut_short() -> None:
    ours = _system(900.0, 0.0, 700.0, {"deployments": 1.0, "services": 3.0, "httproutes": 1.0})
    for phase in ours["phases"].values():
        phase.update(objects=10_000, completed=10_000)
    del ours["phases"]["weight"]
    results = _results(ours, {})
    results["sizes"] = {"10000": {"modeldeploy": ours}}
    table = report.markdown(results)
    assert "| weight 10 → 50: p50 to route (s) | - | - | - |" in table
    assert "- 10000 models all Ready: 10000/10000 — met" in table
    assert "- 10000 models, resync reads and writes per model 0: 10.0 and 0.0 — not met" in table
    assert "- 10000 models, weight change p50 under 10 s: not measured" in table
    assert "- 10000 models, peak RSS under 1024 MB: 700.0 MB — met" in table
