"""The Argo CD health check of ModelDeployment (deploy/argocd/health.lua), run in Lua 5.1.

Argo CD runs health scripts in gopher-lua, a Lua 5.1; lupa's lua51 is the same language.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa.lua51 import LuaRuntime

from modeldeploy.api.models import ModelDeploymentStatus

ARGOCD = Path(__file__).resolve().parents[2] / "deploy" / "argocd"
SCRIPT = (ARGOCD / "health.lua").read_text()
HEALTH_KEY = "resource.customizations.health.modeldeploy.io_ModelDeployment"


def health(status: dict[str, Any] | None, generation: int = 3) -> tuple[str, str]:
    """Runs the script the way Argo CD does: `obj` is a global, the result a table."""
    obj: dict[str, Any] = {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "sentiment", "generation": generation},
    }
    if status is not None:
        obj["status"] = ModelDeploymentStatus.model_validate(status).model_dump(
            by_alias=True, exclude_none=True, mode="json"
        )
    lua = LuaRuntime()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(SCRIPT)
    return result["status"], result["message"]


def condition(type_: str, status: str, message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": "Test", "message": message}


READY = condition("Ready", "True", "2/2 replicas of 7f9c2d0000 ready")
NOT_PROGRESSING = condition("Progressing", "False")
NOT_DEGRADED = condition("Degraded", "False")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(
            {
                "observedGeneration": 3,
                "phase": "Stable",
                "conditions": [READY, NOT_PROGRESSING, NOT_DEGRADED],
            },
            ("Healthy", "2/2 replicas of 7f9c2d0000 ready"),
            id="stable-and-ready",
        ),
        pytest.param(
            {
                "observedGeneration": 2,
                "phase": "Stable",
                "conditions": [READY, NOT_PROGRESSING, NOT_DEGRADED],
            },
            ("Progressing", "Waiting for the operator to observe generation 3"),
            id="generation-not-yet-observed",
        ),
        pytest.param(
            {
                "observedGeneration": 3,
                "phase": "Progressing",
                "conditions": [
                    condition("Ready", "True", "stable serving"),
                    condition("Progressing", "True", "canary 1b03e80000 at 10%"),
                    NOT_DEGRADED,
                ],
            },
            ("Progressing", "canary 1b03e80000 at 10%"),
            id="canary-in-progress",
        ),
        pytest.param(
            {"observedGeneration": 3, "phase": "Paused", "conditions": [READY, NOT_DEGRADED]},
            ("Progressing", "2/2 replicas of 7f9c2d0000 ready"),
            id="paused-without-progressing-message",
        ),
        pytest.param(
            {"observedGeneration": 3, "phase": "Promoting", "conditions": []},
            ("Progressing", "Phase Promoting"),
            id="promoting-without-conditions",
        ),
        pytest.param(
            {
                "observedGeneration": 3,
                "phase": "RolledBack",
                "conditions": [
                    READY,
                    NOT_PROGRESSING,
                    condition("Degraded", "True", "success-rate 0.91 below 0.99 (3 failures)"),
                ],
            },
            ("Degraded", "success-rate 0.91 below 0.99 (3 failures)"),
            id="rolled-back",
        ),
        pytest.param(
            {
                "observedGeneration": 3,
                "phase": "Failed",
                "conditions": [condition("Ready", "False", "image pull")],
            },
            ("Degraded", "image pull"),
            id="failed-message-from-ready",
        ),
        pytest.param(
            {
                "observedGeneration": 3,
                "phase": "Stable",
                "conditions": [condition("Degraded", "True", "traffic provider istio: CRD missing")],
            },
            ("Degraded", "traffic provider istio: CRD missing"),
            id="degraded-while-stable",
        ),
        pytest.param(
            {
                "observedGeneration": 3,
                "phase": "Stable",
                "conditions": [condition("Ready", "False", "waiting for 2 nvidia.com/gpu"), NOT_DEGRADED],
            },
            ("Progressing", "waiting for 2 nvidia.com/gpu"),
            id="stable-but-not-ready",
        ),
        pytest.param(
            {"phase": "Stable", "conditions": [READY]},
            ("Progressing", "Waiting for the operator to observe generation 3"),
            id="no-observed-generation",
        ),
        pytest.param(None, ("Progressing", "Waiting for the operator to report status"), id="no-status"),
        pytest.param(
            {
                "observedGeneration": 3,
                "phase": "RolledBack",
                "conditions": [condition("Degraded", "True", "")],
            },
            ("Degraded", "Phase RolledBack"),
            id="degraded-without-message",
        ),
    ],
)
def test_health(status: dict[str, Any] | None, expected: tuple[str, str]) -> None:
    assert health(status) == expected


def test_a_newer_generation_hides_an_old_rollback() -> None:
    rolled_back = {
        "observedGeneration": 3,
        "phase": "RolledBack",
        "conditions": [condition("Degraded", "True", "x")],
    }
    assert health(rolled_back, generation=4)[0] == "Progressing"


def test_argocd_cm_snippet_carries_the_script_unchanged() -> None:
    config_map = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    assert config_map["metadata"]["name"] == "argocd-cm"
    assert config_map["data"][HEALTH_KEY] == SCRIPT
