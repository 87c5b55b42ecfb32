"""`make bench-real`: the real node and its gateway, measured; results in
bench/results/real-serving.{json,md}.

    BENCH_RUNS=5 BENCH_SWITCHES=50 make bench-real

1. Cold start: time from `kubectl apply` to the first correct prediction, split into the phases
   the pod's status records. Each run applies the iris model in a fresh namespace, polls the
   model's Service with predictions every 0.1 s until one is right, then reads the pod's
   timestamps (one-second resolution, so a phase is accurate to about a second; the total is
   measured by the client).
2. Weight switches: a canary's weight patched between 10 and 90 %, BENCH_SWITCHES times; after
   each patch, batches of 10 predictions through Traefik until most answers come from the side
   the new weight favours: the latency from the patch to the data plane serving the new split.
3. A promotion under load: predictions on 4 connections through Traefik while the canary at
   50 % is promoted and the old revision retired; requests per second and every failed request.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.cluster.harness import ROOT, Kubectl, Operator
from tests.cluster.modeldeployments import wait_status
from tests.cluster.real_serving import (
    Gateway,
    ModelStore,
    pods,
    served_model,
    service_address,
    set_weight,
    start_phases,
    start_real_node,
    wait_for_answer,
)
from tests.cluster.waiting import wait_for

RESULTS = ROOT / "bench" / "results"
KUBECONFIG = str(ROOT / ".cluster" / "kubeconfig")
SETUP_TIMEOUT = 300


def cold_start(kubectl: Kubectl, store: ModelStore, namespace: str) -> dict[str, float]:
    kubectl.create_namespace(namespace)
    kubectl.apply(store.credentials(), "-n", namespace)
    applied = time.time()
    kubectl.apply(served_model("iris", store, "iris-v1"), "-n", namespace)
    address = None
    while address is None:
        if kubectl.run("get", "service", "iris", "-n", namespace, check=False).returncode == 0:
            address = service_address(kubectl, namespace, "iris")
        else:
            time.sleep(0.05)
    answered = wait_for_answer(address, timeout=SETUP_TIMEOUT)
    [pod] = pods(kubectl, namespace, "iris")
    phases = start_phases(pod, applied, answered)
    phases["total"] = answered - applied
    kubectl.run("delete", "namespace", namespace, "--wait=false")
    return phases


def routed(store: ModelStore, gateway: Gateway, host: str, stored: str, weight: int) -> dict[str, Any]:
    """The iris model behind the local gateway; the old revision retires 5 s after a promotion."""
    return served_model(
        "iris",
        store,
        stored,
        traffic={"provider": "gateway-api", "gateway": gateway.reference, "hosts": [host]},
        rollout={"canary": {"weight": weight, "scaleDownDelaySeconds": 5}},
    )


def canary_behind_gateway(
    kubectl: Kubectl, store: ModelStore, gateway: Gateway, namespace: str, weight: int
) -> str:
    """v1 stable and v2 its canary at `weight`, in a new namespace; returns their host name."""
    host = f"iris.{namespace}.example.com"
    kubectl.create_namespace(namespace)
    kubectl.apply(store.credentials(), "-n", namespace)
    kubectl.apply(routed(store, gateway, host, "iris-v1", weight), "-n", namespace)
    wait_for("v1 through the gateway", lambda: gateway.versions(host, 4)["v1"] == 4, SETUP_TIMEOUT)
    kubectl.apply(routed(store, gateway, host, "iris-v2", weight), "-n", namespace)
    wait_status(kubectl, namespace, "iris", timeout=SETUP_TIMEOUT, canaryWeight=weight)
    return host


def switch_latencies(
    kubectl: Kubectl, store: ModelStore, gateway: Gateway, namespace: str, switches: int
) -> list[float]:
    host = canary_behind_gateway(kubectl, store, gateway, namespace, 10)
    latencies = []
    for index in range(switches):
        weight = 90 if index % 2 == 0 else 10
        started = time.monotonic()
        set_weight(kubectl, namespace, weight)
        while (gateway.versions(host, 10)["v2"] > 5) != (weight > 50):
            pass
        latencies.append(time.monotonic() - started)
    kubectl.run("delete", "namespace", namespace, "--wait=false")
    return latencies


def promotion_under_load(
    kubectl: Kubectl, store: ModelStore, gateway: Gateway, namespace: str
) -> dict[str, Any]:
    host = canary_behind_gateway(kubectl, store, gateway, namespace, 50)
    started = time.monotonic()
    with gateway.load(host) as seen:
        set_weight(kubectl, namespace, 100)
        wait_for(
            "the old revision to be retired",
            lambda: len(pods(kubectl, namespace, "iris")) == 1,
            SETUP_TIMEOUT,
        )
    took = time.monotonic() - started
    kubectl.run("delete", "namespace", namespace, "--wait=false")
    requests = sum(seen.answers.values()) + len(seen.failures)
    return {
        "seconds": took,
        "requests": requests,
        "per_second": requests / took,
        "answers": dict(seen.answers),
        "failures": len(seen.failures),
        "failure_kinds": sorted(set(seen.failures)),
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def markdown(results: dict[str, Any]) -> str:
    runs, switches, promotion = results["runs"], results["switches"], results["promotion"]
    lines = [
        "# Real serving on the local cluster's real node",
        "",
        f"{results['date']}, {results['machine']}.",
        "",
        f"## `kubectl apply` to the first correct prediction ({len(runs)} runs)",
        "",
        "iris-v1 (scikit-learn) from S3 (moto on the node's bridge) fetched by the project's image, "
        "MLServer on real-1 (containerd v2, runc). Phases from the pod's status (1 s resolution); "
        "total from the client.",
        "",
        "| phase | median s | min s | max s |",
        "| --- | --- | --- | --- |",
    ]
    for phase in runs[0]:
        values = [run[phase] for run in runs]
        lines.append(f"| {phase} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |")
    lines += [
        "",
        f"## Weight change in the spec to Traefik serving the new split ({len(switches)} changes, 10 <-> 90 %)",
        "",
        f"p50 {percentile(switches, 0.5):.2f} s, p99 {percentile(switches, 0.99):.2f} s, "
        f"min {min(switches):.2f} s, max {max(switches):.2f} s",
        "",
        "## A promotion under load (4 connections through Traefik, 50 % -> 100 %, old revision retired 5 s later)",
        "",
        f"{promotion['requests']} requests in {promotion['seconds']:.1f} s ({promotion['per_second']:.0f}/s): "
        f"answers {promotion['answers']}, failed {promotion['failures']} {promotion['failure_kinds']}",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    runs = int(os.environ.get("BENCH_RUNS", "5"))
    switches_wanted = int(os.environ.get("BENCH_SWITCHES", "50"))
    start_real_node()
    store = ModelStore.start()
    gateway = Gateway.local()
    kubectl = Kubectl(str(ROOT / ".cluster" / "bin" / "kubectl"), KUBECONFIG)
    prefix = f"bench-real-{uuid.uuid4().hex[:4]}-"
    operator = Operator(KUBECONFIG, Path(tempfile.mkdtemp()), extra_args=("--namespace", f"{prefix}*"))
    operator.start()
    try:
        measured = []
        for index in range(runs):
            phases = cold_start(kubectl, store, f"{prefix}{index}")
            print(" ".join(f"{phase} {seconds:.1f}s" for phase, seconds in phases.items()), flush=True)
            measured.append(phases)
        switches = switch_latencies(kubectl, store, gateway, f"{prefix}switch", switches_wanted)
        print(
            f"switches: p50 {percentile(switches, 0.5):.2f}s p99 {percentile(switches, 0.99):.2f}s",
            flush=True,
        )
        promotion = promotion_under_load(kubectl, store, gateway, f"{prefix}promotion")
        print(f"promotion: {promotion}", flush=True)
    finally:
        operator.stop()
    results = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.platform()}",
        "runs": measured,
        "switches": switches,
        "promotion": promotion,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "real-serving.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "real-serving.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
