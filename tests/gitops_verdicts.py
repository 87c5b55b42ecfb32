"""What kstatus (Flux, `kubectl wait`) and Argo CD make of a ModelDeployment, computed by the code
those tools run: hack/gitops-verdicts (cli-utils' status.Compute, and deploy/argocd/argocd-cm.yaml's
Lua scripts in gopher-lua), built on first use into the cache by hack/build-binaries.sh."""

from __future__ import annotations

import functools
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ARGOCD_CM = REPO / "deploy" / "argocd" / "argocd-cm.yaml"

# The Argo CD health that means the same as each kstatus status (docs/gitops.md): Argo CD shows
# a paused rollout as Suspended where kstatus, which has no such status, says Current; both tools
# call an object being deleted in progress.
ARGOCD_FOR_KSTATUS = {
    "InProgress": {"Progressing"},
    "Failed": {"Degraded"},
    "Current": {"Healthy", "Suspended"},
    "Terminating": {"Progressing"},
}


@dataclass(frozen=True)
class Verdict:
    status: str
    message: str


@dataclass(frozen=True)
class Verdicts:
    kstatus: Verdict
    argocd: Verdict

    @property
    def agree(self) -> bool:
        return self.argocd.status in ARGOCD_FOR_KSTATUS.get(self.kstatus.status, set())


@dataclass(frozen=True)
class ActionResult:
    object: dict[str, Any]
    """The object the action script returns."""
    patch: dict[str, Any]
    """The JSON merge patch Argo CD sends for it (the difference from the live object)."""


@functools.cache
def harness() -> Path:
    built = _run([str(REPO / "hack" / "build-binaries.sh"), "gitops-verdicts"])
    return Path(built.strip())


def _run(command: list[str], stdin: str = "") -> str:
    done = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _harness(*args: str, objects: Any) -> str:
    return _run([str(harness()), args[0], str(ARGOCD_CM), *args[1:]], json.dumps(objects))


def verdicts_of(objects: list[dict[str, Any]]) -> list[Verdicts]:
    """Both tools' verdicts on each object, in one run of the harness."""
    lines = _harness("verdicts", objects=objects).splitlines()
    return [
        Verdicts(kstatus=Verdict(**line["kstatus"]), argocd=Verdict(**line["argocd"]))
        for line in map(json.loads, lines)
    ]


def verdicts(obj: dict[str, Any]) -> Verdicts:
    (only,) = verdicts_of([obj])
    return only


def tool_statuses(obj: dict[str, Any]) -> tuple[str, str]:
    """(kstatus status, Argo CD health status) of an object, e.g. one read from the cluster."""
    both = verdicts(obj)
    return both.kstatus.status, both.argocd.status


def enabled_actions(obj: dict[str, Any]) -> dict[str, bool]:
    """Each action the discovery script offers, and whether Argo CD shows it enabled."""
    actions = json.loads(_harness("discover", objects=obj))["actions"]
    return {action["name"]: not action["disabled"] for action in actions}


def run_action(obj: dict[str, Any], name: str) -> ActionResult:
    result = json.loads(_harness("action", name, objects=obj))
    return ActionResult(object=result["object"], patch=result["patch"])
