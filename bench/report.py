"""The results as a Markdown table: each figure for both systems and as a ratio to Flagger."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PEER = "flagger"
OURS = "modeldeploy"
# Children of one model and their resource in the audit log: the target "at most one write
# per child on create" is checked per resource.
CHILDREN_PER_MODEL = {"deployments": 1, "services": 3, "httproutes": 1}
TARGET_READY_RATIO = 2.0
TARGET_PEAK_RSS_MB = 250

Row = tuple[str, Callable[[dict[str, Any]], float | None]]


def _phase(name: str, key: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda result: result["phases"][name].get(key)


ROWS: tuple[Row, ...] = (
    ("create: all Ready (s)", _phase("create", "total_seconds")),
    ("create: p50 per model (s)", _phase("create", "p50_seconds")),
    ("create: p99 per model (s)", _phase("create", "p99_seconds")),
    ("create: reads per model", _phase("create", "reads_per_object")),
    ("create: writes per model", _phase("create", "writes_per_object")),
    ("create: CPU (s)", _phase("create", "cpu_seconds")),
    ("canary at 10 %: all routed (s)", _phase("canary", "total_seconds")),
    ("canary at 10 %: reads per model", _phase("canary", "reads_per_object")),
    ("canary at 10 %: writes per model", _phase("canary", "writes_per_object")),
    ("weight 10 → 50: p50 to route (s)", _phase("weight", "p50_seconds")),
    ("weight 10 → 50: p99 to route (s)", _phase("weight", "p99_seconds")),
    ("weight 10 → 50: all routed (s)", _phase("weight", "total_seconds")),
    ("weight 10 → 50: reads per model", _phase("weight", "reads_per_object")),
    ("weight 10 → 50: writes per model", _phase("weight", "writes_per_object")),
    ("resync: reads per model", _phase("resync", "reads_per_object")),
    ("resync: writes per model", _phase("resync", "writes_per_object")),
    ("CPU, whole run (s)", lambda result: result["cpu_seconds"]),
    ("peak RSS (MB)", lambda result: result["peak_rss_mb"]),
)


def markdown(results: dict[str, Any]) -> str:
    machine, versions = results["machine"], results["versions"]
    lines = [
        f"# Benchmark: modeldeploy and Flagger, {results['date']}",
        "",
        f"Machine: {machine['nproc']} CPUs ({machine['cpu_model']}), {machine['memory_gib']} GiB. "
        + ", ".join(f"{name} {version}" for name, version in versions.items())
        + ".",
        "",
        f"Reads counted from: {results['reads_counted_from']}. Writes: the API server's audit log. "
        "Ratios are modeldeploy ÷ Flagger: below 1 modeldeploy needs less. "
        "docs/performance.md explains each figure.",
        "",
    ]
    for size, systems in results["sizes"].items():
        lines += [
            f"## {size} models",
            "",
            f"| figure | {OURS} | {PEER} | ratio |",
            "| --- | ---: | ---: | ---: |",
        ]
        for label, value in ROWS:
            ours, peer = value(systems[OURS]), (value(systems[PEER]) if PEER in systems else None)
            lines.append(f"| {label} | {_number(ours)} | {_number(peer)} | {_ratio(ours, peer)} |")
        lines += ["", _completion(systems), ""]
        for system in (name for name in (OURS, PEER) if name in systems):
            by_resource = systems[system]["phases"]["create"]["writes_per_object_by_resource"]
            by_verb = systems[system]["phases"]["create"]["reads_per_object_by_verb"]
            lines.append(
                f"- {system}, create, writes per model by resource: "
                + ", ".join(f"{resource} {count}" for resource, count in by_resource.items())
                + "; reads by verb: "
                + ", ".join(f"{verb} {count}" for verb, count in by_verb.items())
            )
        lines.append("")
    lines += ["## Targets", "", *_targets(results), ""]
    return "\n".join(lines)


def _completion(systems: dict[str, Any]) -> str:
    """Which phases did not finish for every model within their timeout."""
    missing = [
        f"{system} {phase}: {figures['completed']}/{figures['objects']}"
        for system, result in systems.items()
        for phase, figures in result["phases"].items()
        if figures.get("completed", figures.get("objects")) != figures.get("objects")
    ]
    return "Timed out: " + "; ".join(missing) if missing else "Every model reached every state."


def _targets(results: dict[str, Any]) -> list[str]:
    size = max(results["sizes"], key=int)
    systems = results["sizes"][size]
    ours = systems[OURS]
    ready = _ratio_value(
        _phase("create", "total_seconds")(ours),
        _phase("create", "total_seconds")(systems[PEER]) if PEER in systems else None,
    )
    writes = ours["phases"]["create"]["writes_per_object_by_resource"]
    per_child = {
        resource: writes.get(resource, 0) / children for resource, children in CHILDREN_PER_MODEL.items()
    }
    resync_writes = ours["phases"]["resync"]["writes_per_object"]
    return [
        f"- all {size} Ready within {TARGET_READY_RATIO:g}x Flagger's time: "
        + (f"{ready:.2f}x — {'met' if ready <= TARGET_READY_RATIO else 'not met'}" if ready else "no ratio"),
        f"- peak RSS under {TARGET_PEAK_RSS_MB} MB: {ours['peak_rss_mb']} MB — "
        + ("met" if ours["peak_rss_mb"] < TARGET_PEAK_RSS_MB else "not met"),
        "- at most one write per child on create: "
        + ", ".join(f"{resource} {value:.2f}" for resource, value in per_child.items())
        + (" — met" if all(value <= 1 for value in per_child.values()) else " — not met"),
        f"- zero writes on resync: {resync_writes} — " + ("met" if resync_writes == 0 else "not met"),
    ]


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if abs(value) >= 0.01 or value == 0 else f"{value:.3f}"


def _ratio_value(ours: float | None, peer: float | None) -> float | None:
    if ours is None or peer is None or peer == 0:
        return None
    return ours / peer


def _ratio(ours: float | None, peer: float | None) -> str:
    if ours == 0 and peer == 0:
        return "both 0"
    ratio = _ratio_value(ours, peer)
    return "-" if ratio is None else f"{ratio:.2f}x"
