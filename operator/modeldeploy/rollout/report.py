"""`modeldeploy status`: a ModelDeployment's rollout as a readable report."""

from __future__ import annotations

from modeldeploy.api.models import ModelDeployment, RevisionStatus
from modeldeploy.rollout.steps import describe_step

HISTORY_SHOWN = 5


def table(rows: list[list[str]]) -> list[str]:
    """Rows as left-aligned columns, two spaces apart, without trailing blanks."""
    widths = [
        max(len(row[column]) for row in rows if column < len(row)) for column in range(max(map(len, rows)))
    ]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in rows
    ]


def format_status(md: ModelDeployment) -> str:
    status = md.status
    rollout = status.rollout
    canary_settings = md.spec.rollout.canary
    name = f"{md.metadata.get('namespace', 'default')}/{md.metadata.get('name', '?')}"
    lines = [f"ModelDeployment {name}"]
    summary = [["Phase:", status.phase or "Unknown", rollout.message if rollout else ""]]
    summary.append(["Strategy:", md.spec.rollout.strategy, _mode(md)])
    for revision in status.revisions:
        summary.append([f"{revision.role.capitalize()}:", revision.name, _replicas(revision, md)])
    lines += table(summary)

    in_flight = status.canary_revision is not None and status.phase in ("Progressing", "Paused")
    if md.spec.rollout.strategy == "canary" and canary_settings.steps:
        current = rollout.step if rollout else 0
        rows = [["", "STEP", "ACTION"]]
        for index, step in enumerate(canary_settings.steps):
            marker = ">" if in_flight and index == current else ""
            rows.append([marker, str(index + 1), describe_step(step, canary_settings.analysis)])
        lines += ["", *table(rows)]

    if rollout and rollout.analysis_runs:
        rows = [["TIME", "STEP", "METRIC", "VALUE", "VERDICT", "MESSAGE"]]
        for run in rollout.analysis_runs:
            value = "-" if run.value is None else f"{run.value:.4g}"
            step_number = "-" if run.step is None else str(run.step + 1)
            rows.append([run.time, step_number, run.metric, value, run.verdict, run.message])
        lines += ["", *table(rows)]

    if status.conditions:
        rows = [["CONDITION", "STATUS", "REASON", "MESSAGE"]]
        rows += [[c.type, c.status, c.reason, c.message] for c in status.conditions]
        lines += ["", *table(rows)]

    if status.history:
        rows = [["REVISION", "STABLE SINCE", "IMAGE", "MODEL"]]
        rows += [
            [entry.revision, entry.promoted_at or "-", entry.image or "-", entry.model or "-"]
            for entry in reversed(status.history[-HISTORY_SHOWN:])
        ]
        lines += ["", *table(rows)]
    return "\n".join(lines) + "\n"


def _mode(md: ModelDeployment) -> str:
    if md.spec.rollout.strategy != "canary":
        return "one Deployment, replaced in place"
    canary = md.spec.rollout.canary
    if canary.steps:
        return f"automated, {len(canary.steps)} steps"
    return f"manual, weight {canary.weight}% from spec.rollout.canary.weight"


def _replicas(revision: RevisionStatus, md: ModelDeployment) -> str:
    text = f"{revision.ready_replicas}/{revision.desired_replicas} ready"
    if revision.role == "canary":
        planned = md.status.rollout.weight if md.status.rollout else 0
        text += f", weight {planned}% (router reports {md.status.canary_weight}%)"
    return text
