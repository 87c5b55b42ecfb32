"""`make bench`: the operator and Flagger, one after the other, at each size in BENCH_SIZES
(default 10,100,1000) on the local cluster; results in bench/results/.

    BENCH_SIZES=10,100 make bench     smaller sizes only
    BENCH_PROFILE=1 make bench        also sample the operator with py-spy at the largest size
    BENCH_SYSTEMS=modeldeploy make bench   the operator alone (Flagger's columns stay empty)

Meant to run with the cluster to itself: other work on the same two cores shows up in
every figure.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from kubernetes import client, config
from tests.cluster.harness import AuditLog, Kubectl

from bench import report, scenario
from bench.cluster import (
    AUDIT_LOG,
    KUBECONFIG,
    ROOT,
    BenchNodes,
    Capacity,
    Identities,
    ServiceAddresses,
    kubectl,
)
from bench.gate import Gate
from bench.profile import Profiler
from bench.requests import AuditRequests
from bench.scenario import Counting
from bench.systems import Clients, FlaggerSystem, ModelDeploySystem, System
from bench.workload import models

RESULTS = ROOT / "bench" / "results"
DEFAULT_SIZES = "10,100,1000"
OPERATOR, FLAGGER = "modeldeploy-operator", "flagger"
# Deleting a namespace of N models waits for the garbage collector and for KWOK to let their
# pods go: at least this long, more at large sizes.
NAMESPACE_DELETE_SECONDS = 600


def main() -> int:
    sizes = sorted({int(size) for size in os.environ.get("BENCH_SIZES", DEFAULT_SIZES).split(",")})
    profile = os.environ.get("BENCH_PROFILE") == "1"
    labels = [
        label
        for label in ("modeldeploy", "flagger")
        if label in os.environ.get("BENCH_SYSTEMS", "modeldeploy,flagger")
    ]
    versions = _versions()
    _say(f"sizes {sizes}; Flagger {versions['flagger']}")
    subprocess.run([str(ROOT / "hack" / "build-binaries.sh"), "flagger"], check=True)
    _install_crds(versions["flagger"])
    # The largest size needs a stable and a canary pod per model at once.
    largest = models(max(sizes))
    capacity = Capacity(
        cpu_pods=2 * sum(not model.gpu for model in largest), gpu_pods=2 * sum(model.gpu for model in largest)
    )
    stem = RESULTS / f"results-{'-'.join(map(str, sizes))}{'' if len(labels) == 2 else '-' + labels[0]}"
    RESULTS.mkdir(exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="modeldeploy-bench-"))
    _say(f"process logs in {logs}")
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "versions": versions,
        "sizes": {},
    }
    with ExitStack() as stack:
        identities = stack.enter_context(Identities((OPERATOR, FLAGGER), logs))
        _say(f"adding {len(capacity.node_specs())} fake nodes")
        stack.enter_context(BenchNodes(capacity))
        stack.enter_context(ServiceAddresses())
        gate = stack.enter_context(Gate())
        audit = AuditLog(AUDIT_LOG)
        reads_from_audit = AuditRequests(audit, identities[OPERATOR].user).logs_reads(
            Kubectl(kubectl().binary, str(identities[OPERATOR].kubeconfig))
        )
        results["reads_counted_from"] = (
            "the API server's audit log"
            if reads_from_audit
            else "each client's own count (this cluster's audit policy predates hack/audit-policy.yaml's read rule): "
            "the operator's modeldeploy_api_reads_total (reconciles' get and list, not kopf's watches), "
            "Flagger's client-go request log (-v=6)"
        )
        api = config.new_client_from_config(str(KUBECONFIG))
        api.configuration.connection_pool_maxsize = scenario.ACTION_THREADS * 2
        clients = Clients(client.CustomObjectsApi(api), client.AppsV1Api(api))

        def make(label: str, namespace: str) -> System:
            if label == "modeldeploy":
                return ModelDeploySystem(identities[OPERATOR], clients, namespace, logs)
            return FlaggerSystem(
                identities[FLAGGER], clients, namespace, logs, versions["flagger"], gate, not reads_from_audit
            )

        for size in sizes:
            results["sizes"][str(size)] = {}
            for label in labels:
                identity = identities[OPERATOR if label == "modeldeploy" else FLAGGER]
                namespace = f"bench-{label}-{size}"
                _say(f"{label}, {size} models, namespace {namespace}")
                counting = Counting(AuditRequests(audit, identity.user), reads_from_audit)

                def record(figures: dict[str, Any], size: int = size, label: str = label) -> None:
                    # Written as they come, before the namespace is deleted (which can outlast
                    # its timeout at large sizes), so an interrupted run shows what it measured.
                    results["sizes"][str(size)][label] = figures
                    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
                    latest = list(figures["phases"])[-1]
                    _say(f"{label}, {size} models, {latest}: " + json.dumps(figures["phases"][latest]))

                with _namespace(namespace, size), _running(make(label, namespace)) as system:
                    profiling = profile and label == "modeldeploy" and size == max(sizes)
                    with _profiled(system.pid, RESULTS / f"profile-modeldeploy-{size}", profiling):
                        scenario.run(system, models(size), counting, namespace, clients.custom, record)
    stem.with_suffix(".md").write_text(report.markdown(results))
    _say(f"wrote {stem}.json and {stem}.md")
    print(report.markdown(results))
    return 0


@contextmanager
def _namespace(name: str, models: int) -> Iterator[None]:
    cluster = kubectl()
    timeout = f"--timeout={max(NAMESPACE_DELETE_SECONDS, scenario.phase_timeout(models)):.0f}s"
    # What an interrupted run left behind would be counted in this one.
    cluster.run("delete", "namespace", name, "--ignore-not-found", timeout)
    cluster.create_namespace(name)
    try:
        yield
    finally:
        _say(f"deleting namespace {name}")
        cluster.run("delete", "namespace", name, timeout)


@contextmanager
def _running(system: System) -> Iterator[System]:
    system.start()
    try:
        yield system
    finally:
        system.stop()


@contextmanager
def _profiled(pid: int, out: Path, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    with Profiler(pid, out):
        yield


def _install_crds(flagger_version: str) -> None:
    """Ours from crds/, Flagger's from its module; Gateway API's come with the cluster."""
    cluster = kubectl()
    flagger_crds = Path.home() / ".cache" / "modeldeploy" / f"flagger-{flagger_version}" / "crd.yaml"
    for path in (ROOT / "crds", flagger_crds):
        cluster.run("apply", "--server-side", "--force-conflicts", "--field-manager=bench", "-f", str(path))
    cluster.run("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")


def _versions() -> dict[str, str]:
    pinned = dict(
        line.split("=", 1)
        for line in (ROOT / "hack" / "versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "modeldeploy": f"{version('modeldeploy')} ({commit or 'no git'})",
        "flagger": pinned["FLAGGER_VERSION"],
        "kubernetes": pinned["KUBE_VERSION"],
        "kwok": pinned["KWOK_VERSION"],
        "python": platform.python_version(),
        "kopf": version("kopf"),
    }


def _machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split()
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1),
    }


def _say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
