"""`make bench-real`: time from `kubectl apply` to the first correct prediction on the real node,
split into the phases the pod's status records; results in bench/results/real-serving.{json,md}.

    BENCH_RUNS=5 make bench-real

Each run applies the iris model (examples/iris-real-node.yaml's shape, from the S3 store on the
node's bridge) in a fresh namespace, polls the model's Service with predictions every 0.1 s until
one is right, then reads the pod's timestamps. Pod timestamps have one-second resolution, so a
phase is accurate to about a second; the total is measured by the client.
"""

from __future__ import annotations

import json
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
from tests.cluster.real_serving import (
    ModelStore,
    pods,
    served_model,
    service_address,
    start_phases,
    start_real_node,
    wait_for_answer,
)

RESULTS = ROOT / "bench" / "results"
KUBECONFIG = str(ROOT / ".cluster" / "kubeconfig")


def one_run(kubectl: Kubectl, store: ModelStore, namespace: str) -> dict[str, float]:
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
    answered = wait_for_answer(address, timeout=300)
    [pod] = pods(kubectl, namespace, "iris")
    phases = start_phases(pod, applied, answered)
    phases["total"] = answered - applied
    kubectl.run("delete", "namespace", namespace, "--wait=false")
    return phases


def markdown(results: dict[str, Any]) -> str:
    runs = results["runs"]
    phases = list(runs[0])
    lines = [
        "# Real serving: `kubectl apply` to the first correct prediction",
        "",
        f"{results['date']}, {results['machine']}; {len(runs)} runs, iris-v1 (scikit-learn) from S3 "
        "(moto on the node's bridge) by the project's image, MLServer on real-1 (containerd v2, runc).",
        "Phases from the pod's status (1 s resolution); total from the client.",
        "",
        "| phase | median s | min s | max s |",
        "| --- | --- | --- | --- |",
    ]
    for phase in phases:
        values = [run[phase] for run in runs]
        lines.append(f"| {phase} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    runs = int(os.environ.get("BENCH_RUNS", "5"))
    start_real_node()
    store = ModelStore.start()
    kubectl = Kubectl(str(ROOT / ".cluster" / "bin" / "kubectl"), KUBECONFIG)
    prefix = f"bench-real-{uuid.uuid4().hex[:4]}-"
    operator = Operator(KUBECONFIG, Path(tempfile.mkdtemp()), extra_args=("--namespace", f"{prefix}*"))
    operator.start()
    try:
        measured = []
        for index in range(runs):
            phases = one_run(kubectl, store, f"{prefix}{index}")
            print(" ".join(f"{phase} {seconds:.1f}s" for phase, seconds in phases.items()), flush=True)
            measured.append(phases)
    finally:
        operator.stop()
    results = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.platform()}",
        "runs": measured,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "real-serving.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "real-serving.md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
