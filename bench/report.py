"""The results as a Markdown table: each figure for both systems and as a ratio to Flagger."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

PEER = "flagger"
OURS = "modeldeploy"
# Children of one model and their resource in the audit log: the target "at most one write
# per child on create" is checked per resource.
CHILDREN_PER_MODEL = {"deployments": 1, "services": 3, "httproutes": 1}
# Issue 17's targets: at 1,000 models every figure at or below Flagger's; from 10,000 models
# (the operator alone) these.
SCALE_TARGETS_FROM = 10_000
TARGET_WEIGHT_P50_SECONDS = 10.0
TARGET_PEAK_RSS_MB = 1024

Row = tuple[str, Callable[[dict[str, Any]], float | None]]


def _phase(name: str, key: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda result: result["phases"].get(name, {}).get(key)


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
    lines = []
    for size, systems in results["sizes"].items():
        ours = systems[OURS]
        if PEER in systems:
            behind = [
                f"{label} ({_ratio(value(ours), value(systems[PEER]))})"
                for label, value in ROWS
                if _above(value(ours), value(systems[PEER]))
            ]
            lines.append(
                f"- {size} models, every figure at or below Flagger's: "
                + ("met" if not behind else "not met: " + "; ".join(behind))
            )
        if int(size) >= SCALE_TARGETS_FROM:
            lines += _scale_targets(size, ours)
    ours = results["sizes"][max(results["sizes"], key=int)][OURS]
    writes = ours["phases"]["create"]["writes_per_object_by_resource"]
    per_child = {
        resource: writes.get(resource, 0) / children for resource, children in CHILDREN_PER_MODEL.items()
    }
    resync_writes = _phase("resync", "writes_per_object")(ours)
    return [
        *lines,
        "- at most one write per child on create: "
        + ", ".join(f"{resource} {value:.2f}" for resource, value in per_child.items())
        + (" — met" if all(value <= 1 for value in per_child.values()) else " — not met"),
        f"- zero writes on resync: {resync_writes} — " + ("met" if resync_writes == 0 else "not met"),
    ]


def _scale_targets(size: str, ours: dict[str, Any]) -> list[str]:
    phases = ours["phases"]
    ready = phases["create"]["completed"]
    reads, writes = (_phase("resync", key)(ours) for key in ("reads_per_object", "writes_per_object"))
    weight = _phase("weight", "p50_seconds")(ours)
    return [
        f"- {size} models all Ready: {ready}/{size} — " + _met(ready == int(size)),
        f"- {size} models, resync reads and writes per model 0: {reads} and {writes} — "
        + _met(reads == 0 and writes == 0),
        f"- {size} models, weight change p50 under {TARGET_WEIGHT_P50_SECONDS:g} s: "
        + ("not measured" if weight is None else f"{weight} s — " + _met(weight < TARGET_WEIGHT_P50_SECONDS)),
        f"- {size} models, peak RSS under {TARGET_PEAK_RSS_MB} MB: {ours['peak_rss_mb']} MB — "
        + _met(ours["peak_rss_mb"] < TARGET_PEAK_RSS_MB),
    ]


def _met(met: bool) -> str:
    return "met" if met else "not met"


def _above(ours: float | None, peer: float | None) -> bool:
    return ours is not None and peer is not None and ours > peer


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
