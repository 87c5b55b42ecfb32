"""Argo CD's view of a ModelDeployment beside kstatus's (Flux, `kubectl wait`): the health check
and the resource actions of deploy/argocd/, run in gopher-lua as Argo CD runs them, and
cli-utils' status.Compute, both through hack/gitops-verdicts."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from modeldeploy.api.models import Condition, ModelDeploymentStatus
from modeldeploy.rollout.machine import REQUEST_ANNOTATION, Action, Request
from modeldeploy.rollout.timing import parse_timestamp
from tests.gitops_verdicts import ARGOCD_CM, enabled_actions, run_action, verdicts, verdicts_of
from tests.unit.test_rollout_support import World, spec_of

ARGOCD = ARGOCD_CM.parent
DOCS = Path(__file__).resolve().parents[2] / "docs" / "gitops.md"
HEALTH_KEY = "resource.customizations.health.modeldeploy.io_ModelDeployment"
ACTIONS_KEY = "resource.customizations.actions.modeldeploy.io_ModelDeployment"
ACTIONS: tuple[Action, ...] = get_args(Action)
GENERATION = 3


def condition(type_: str, status: str, reason: str, message: str = "") -> Condition:
    return Condition(type=type_, status=status, reason=reason, message=message)  # type: ignore[arg-type]


def dumped(*conditions: Condition) -> list[dict[str, Any]]:
    return [c.model_dump(by_alias=True, exclude_none=True) for c in conditions]


def model_deployment(status: dict[str, Any] | None, generation: int = GENERATION) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "modeldeploy.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "sentiment", "namespace": "ml", "generation": generation},
        "spec": {"rollout": {"canary": {"steps": [{"weight": 10}, {"pause": {}}]}}},
    }
    if status is not None:
        obj["status"] = status
    return obj


@dataclass(frozen=True)
class State:
    """A state of a ModelDeployment as the operator reports it (the status contract of issue 16),
    and what each tool shows for it; docs/gitops.md has the same table."""

    name: str
    phase: str
    conditions: tuple[Condition, ...]
    kstatus: str
    argocd: str
    message: str
    """Argo CD's message: the condition that decides, verbatim."""

    def status(self) -> dict[str, Any]:
        """A status as the operator writes it. The phase is passed through as given: neither tool
        reads it except for Paused."""
        status = ModelDeploymentStatus(
            observed_generation=GENERATION,
            conditions=list(self.conditions),
            stable_revision="7f9c2d0000",
            canary_revision="1b03e80000" if self.phase in ("Progressing", "Paused", "Promoting") else None,
        ).model_dump(by_alias=True, exclude_none=True, mode="json")
        return {**status, "phase": self.phase}


SERVING = condition("Ready", "True", "Serving", "2/2 replicas of 7f9c2d0000 ready; traffic routed")
NOT_STALLED = condition("Stalled", "False", "Progressing")
NOT_READY = "0/1 replicas of 7f9c2d0000 ready"


def reconciling(reason: str, message: str) -> Condition:
    return condition("Reconciling", "True", reason, message)


def settled(reason: str, message: str = "") -> Condition:
    return condition("Reconciling", "False", reason, message)


def stalled(reason: str, message: str) -> Condition:
    return condition("Stalled", "True", reason, message)


def waiting(reason: str, message: str = NOT_READY) -> Condition:
    return condition("Ready", "False", reason, message)


STATES = [
    State(
        "creating", "Progressing",
        (waiting("WaitingForReplicas"), reconciling("NewRevision", "revision 7f9c2d0000: 0/1 replicas ready"), NOT_STALLED),
        "InProgress", "Progressing", "revision 7f9c2d0000: 0/1 replicas ready",
    ),
    State(
        "serving", "Stable", (SERVING, settled("Serving"), NOT_STALLED),
        "Current", "Healthy", SERVING.message,
    ),
    State(
        "new revision rolling out", "Progressing",
        (SERVING, reconciling("NewRevision", "rolling out 1b03e80000: 1/2 replicas ready"), NOT_STALLED),
        "InProgress", "Progressing", "rolling out 1b03e80000: 1/2 replicas ready",
    ),
    State(
        "automated canary progressing", "Progressing",
        (SERVING, reconciling("CanaryProgressing", "step 1/2: canary 1b03e80000 at 10%"), NOT_STALLED),
        "InProgress", "Progressing", "step 1/2: canary 1b03e80000 at 10%",
    ),
    State(
        "automated canary paused", "Paused",
        (SERVING, settled("Paused", "paused at step 2/2 (weight 10%): `modeldeploy resume` continues"), NOT_STALLED),
        "Current", "Suspended", "paused at step 2/2 (weight 10%): `modeldeploy resume` continues",
    ),
    State(
        "manual canary held at weight", "Progressing",
        (SERVING, settled("CanaryHeld", "canary 1b03e80000 held at 10%"), NOT_STALLED),
        "Current", "Healthy", SERVING.message,
    ),
    State(
        "manual canary waiting for replicas", "Progressing",
        (SERVING, reconciling("WaitingForCanary", "canary 1b03e80000: 0/1 replicas ready; weight 10% waits"), NOT_STALLED),
        "InProgress", "Progressing", "canary 1b03e80000: 0/1 replicas ready; weight 10% waits",
    ),
    State(
        "promoting", "Promoting",
        (SERVING, reconciling("Promoting", "promoting 1b03e80000: waiting for the router to send it 100%"), NOT_STALLED),
        "InProgress", "Progressing", "promoting 1b03e80000: waiting for the router to send it 100%",
    ),
    State(
        "promoted", "Stable", (SERVING, settled("Serving"), NOT_STALLED),
        "Current", "Healthy", SERVING.message,
    ),
    State(
        "rolled back", "RolledBack",
        (SERVING, settled("RolledBack"), stalled("RolledBack", "success-rate 0.91 below 0.99 (3 failures); canary 1b03e80000 scaled to zero")),
        "Failed", "Degraded", "success-rate 0.91 below 0.99 (3 failures); canary 1b03e80000 scaled to zero",
    ),
    State(
        "rollout failed", "Failed",
        (SERVING, settled("RolloutFailed"), stalled("RolloutFailed", "analysis inconclusive 3 times: no data")),
        "Failed", "Degraded", "analysis inconclusive 3 times: no data",
    ),
    State(
        "apply refused", "Stalled",
        (waiting("ApplyRefused", "Deployment sentiment-7f9c2d0000: spec.template.spec.nodeSelector: Invalid value"),
         settled("Stalled"),
         stalled("ApplyRefused", "Deployment sentiment-7f9c2d0000: spec.template.spec.nodeSelector: Invalid value")),
        "Failed", "Degraded", "Deployment sentiment-7f9c2d0000: spec.template.spec.nodeSelector: Invalid value",
    ),
    State(
        "pods refused by admission", "Stalled",
        (waiting("ReplicaFailure", "revision 7f9c2d0000: pods \"x\" is forbidden: violates PodSecurity \"restricted\""),
         settled("Stalled"),
         stalled("ReplicaFailure", "revision 7f9c2d0000: pods \"x\" is forbidden: violates PodSecurity \"restricted\"")),
        "Failed", "Degraded", "revision 7f9c2d0000: pods \"x\" is forbidden: violates PodSecurity \"restricted\"",
    ),
    State(
        "unschedulable within deadline", "Progressing",
        (waiting("Unschedulable", "waiting for 8 nvidia.com/gpu; largest node has 2"),
         reconciling("Unschedulable", "waiting for 8 nvidia.com/gpu; largest node has 2 (deadline in 540s)"),
         NOT_STALLED),
        "InProgress", "Progressing", "waiting for 8 nvidia.com/gpu; largest node has 2 (deadline in 540s)",
    ),
    State(
        "progress deadline exceeded", "Stalled",
        (waiting("ProgressDeadlineExceeded", "waiting for 8 nvidia.com/gpu; largest node has 2"),
         settled("Stalled"),
         stalled("ProgressDeadlineExceeded", "revision 7f9c2d0000 not ready after 600s: waiting for 8 nvidia.com/gpu")),
        "Failed", "Degraded", "revision 7f9c2d0000 not ready after 600s: waiting for 8 nvidia.com/gpu",
    ),
    State(
        "invalid spec", "Stalled",
        (waiting("InvalidSpec", "spec.traffic.gateway: required by provider gateway-api"),
         settled("Stalled"),
         stalled("InvalidSpec", "spec.traffic.gateway: required by provider gateway-api")),
        "Failed", "Degraded", "spec.traffic.gateway: required by provider gateway-api",
    ),
]  # fmt: skip


@pytest.mark.parametrize("state", STATES, ids=lambda state: state.name)
def test_argocd_and_kstatus_agree_on_every_state(state: State) -> None:
    both = verdicts(model_deployment(state.status()))
    assert (both.kstatus.status, both.argocd.status) == (state.kstatus, state.argocd)
    assert both.argocd.message == state.message
    assert both.agree
    # kstatus's message is the deciding condition's, or its fixed one for a Ready resource.
    assert both.kstatus.message == ("Resource is Ready" if state.kstatus == "Current" else state.message)


def test_every_state_is_in_the_docs_table_with_both_verdicts() -> None:
    rows = {
        cells[0]: cells
        for line in DOCS.read_text().split("## What every tool shows")[1].splitlines()
        if line.startswith("| ") and (cells := [cell.strip() for cell in line.strip("|").split("|")])
    }
    for state in STATES:
        assert state.name in rows, f"docs/gitops.md has no row for {state.name!r}"
        assert state.kstatus in rows[state.name][-2], rows[state.name]
        assert state.argocd in rows[state.name][-1], rows[state.name]


def stable_status(**overrides: Any) -> dict[str, Any]:
    return {**STATES[1].status(), **overrides}


@pytest.mark.parametrize(
    ("obj", "argocd", "kstatus"),
    [
        pytest.param(
            model_deployment(stable_status(observedGeneration=GENERATION - 1)),
            ("Progressing", f"Waiting for the operator to observe generation {GENERATION}"),
            ("InProgress", f"ModelDeployment generation is {GENERATION}, but latest observed generation is 2"),
            id="generation-not-yet-observed",
        ),
        pytest.param(
            # A status restored from a backup: kstatus only asks for equality, and so does Argo CD.
            model_deployment(stable_status(observedGeneration=GENERATION + 1)),
            ("Progressing", f"Waiting for the operator to observe generation {GENERATION}"),
            ("InProgress", f"ModelDeployment generation is {GENERATION}, but latest observed generation is 4"),
            id="observed-generation-ahead",
        ),
        pytest.param(
            # Paused, but the stable revision lost a replica: still waiting, not suspended.
            model_deployment(
                {**STATES[4].status(), "conditions": dumped(waiting("WaitingForReplicas"), settled("Paused"))}
            ),
            ("Progressing", NOT_READY),
            ("InProgress", NOT_READY),
            id="paused-with-stable-not-ready",
        ),
        pytest.param(
            # Both abnormal conditions true: Stalled decides, for kstatus only when listed first.
            model_deployment(
                stable_status(conditions=dumped(stalled("ProgressDeadlineExceeded", "stuck"), reconciling("NewRevision", "rolling")))
            ),
            ("Degraded", "stuck"),
            ("Failed", "stuck"),
            id="stalled-and-reconciling",
        ),
        pytest.param(
            {**model_deployment(stable_status()), "metadata": {"name": "sentiment", "generation": GENERATION, "deletionTimestamp": "2025-03-01T12:00:00Z"}},
            ("Progressing", "Pending deletion"),
            ("Terminating", "Resource scheduled for deletion"),
            id="being-deleted",
        ),
    ],
)  # fmt: skip
def test_edge_cases_agree(obj: dict[str, Any], argocd: tuple[str, str], kstatus: tuple[str, str]) -> None:
    both = verdicts(obj)
    assert (both.argocd.status, both.argocd.message) == argocd
    assert (both.kstatus.status, both.kstatus.message) == kstatus
    assert both.agree


@pytest.mark.parametrize(
    ("obj", "argocd", "kstatus"),
    [
        pytest.param(model_deployment(None), "Progressing", "Current", id="no-status-yet"),
        pytest.param(
            model_deployment({k: v for k, v in stable_status().items() if k != "observedGeneration"}),
            "Progressing", "Current", id="no-observed-generation",
        ),
        pytest.param(
            model_deployment(stable_status(conditions=dumped(reconciling("NewRevision", "rolling"), stalled("ProgressDeadlineExceeded", "stuck")))),
            "Degraded", "InProgress", id="reconciling-listed-before-stalled",
        ),
        pytest.param(model_deployment(stable_status(conditions=[])), "Progressing", "Current", id="no-ready-condition"),
    ],
)  # fmt: skip
def test_where_kstatus_cannot_agree(obj: dict[str, Any], argocd: str, kstatus: str) -> None:
    """kstatus calls an object Current when it finds none of its conditions and no
    observedGeneration, and reads Reconciling and Stalled in list order. The operator's first
    status write and its condition order (Stalled before Reconciling) close these gaps, except
    the moment between `kubectl apply` and that first write; Argo CD waits there instead."""
    both = verdicts(obj)
    assert (both.argocd.status, both.kstatus.status) == (argocd, kstatus)
    assert not both.agree


def test_one_run_gives_each_object_its_own_verdicts() -> None:
    objects = [model_deployment(state.status()) for state in STATES]
    assert [(v.kstatus.status, v.argocd.status) for v in verdicts_of(objects)] == [
        (state.kstatus, state.argocd) for state in STATES
    ]


# --------------------------------------------------------------------------- resource actions


def in_flight() -> dict[str, Any]:
    return model_deployment(STATES[3].status())


@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_files_the_request_the_cli_files(action: Action) -> None:
    obj = in_flight()
    obj["metadata"]["annotations"] = {"team": "ml"}
    before = datetime.now(UTC).replace(microsecond=0)
    result = run_action(obj, action)
    after = datetime.now(UTC)

    value = result.object["metadata"]["annotations"][REQUEST_ANNOTATION]
    request = Request.parse(value)
    assert request is not None and request.action == action
    assert before <= parse_timestamp(request.issued_at) <= after
    # What Argo CD sends is the CLI's merge patch: the annotation and nothing else (the empty
    # `pause: {}` of the steps survives the round trip through Lua).
    assert result.patch == request.annotation_patch()
    assert result.object["metadata"]["annotations"]["team"] == "ml"


def test_an_action_on_an_object_without_annotations_adds_them() -> None:
    result = run_action(in_flight(), "promote")
    assert set(result.patch) == {"metadata"}
    assert Request.parse(result.patch["metadata"]["annotations"][REQUEST_ANNOTATION]) is not None


def world_at(name: str) -> World:
    """A ModelDeployment taken to a state by the rollout machine itself."""
    automated = name.startswith("automated") or name == "promoting"
    world = World(
        spec_of(steps=[{"weight": 10}, {"pause": {"duration": "1h"}}] if automated else [], weight=10)
    )
    world.tick()
    if name == "stable":
        return world
    world.change(**{"runtime.image": "server:2"})
    world.tick()
    world.tick(1)
    follow_up: dict[str, Action] = {
        "automated paused": "pause",
        "promoting": "promote",
        "rolled back": "abort",
    }
    if name in follow_up:
        world.ask(follow_up[name])
        world.tick(1)
    return world


def object_of(world: World) -> dict[str, Any]:
    return model_deployment(world.status.model_dump(by_alias=True, exclude_none=True, mode="json"))


def acts_on(world: World, action: Action) -> bool:
    """Whether the rollout machine acts on the request the Argo CD action files."""
    value = run_action(object_of(world), action).object["metadata"]["annotations"][REQUEST_ANNOTATION]
    world.request = Request.parse(value)
    seen = len(world.events)
    world.tick(1)
    return all(event.reason != "RequestIgnored" for event in world.events[seen:])


@pytest.mark.parametrize(
    ("name", "phase", "enabled"),
    [
        ("stable", "Stable", set()),
        ("manual canary", "Progressing", {"promote", "abort", "pause"}),
        ("automated progressing", "Progressing", {"promote", "abort", "pause"}),
        ("automated paused", "Paused", {"promote", "abort", "resume"}),
        ("promoting", "Promoting", {"abort"}),
        ("rolled back", "RolledBack", set()),
    ],
)
def test_discovery_offers_exactly_the_actions_the_operator_acts_on(
    name: str, phase: str, enabled: set[str]
) -> None:
    world = world_at(name)
    assert world.status.phase == phase
    offered = enabled_actions(object_of(world))
    assert {action for action, on in offered.items() if on} == enabled
    assert set(offered) == set(ACTIONS)
    for action in ACTIONS:
        assert acts_on(copy.deepcopy(world), action) == (action in enabled), action


@pytest.mark.parametrize("phase", ["Stalled", "Failed"])
def test_discovery_offers_nothing_to_a_stalled_or_failed_model(phase: str) -> None:
    offered = enabled_actions(model_deployment({**in_flight()["status"], "phase": phase}))
    assert not any(offered.values())


def test_discovery_offers_nothing_before_the_first_status() -> None:
    assert not any(enabled_actions(model_deployment(None)).values())


# --------------------------------------------------------------------------- the ConfigMap


def test_argocd_cm_carries_the_scripts_unchanged() -> None:
    config_map = yaml.safe_load(ARGOCD_CM.read_text())
    assert config_map["metadata"]["name"] == "argocd-cm"
    assert config_map["data"][HEALTH_KEY] == (ARGOCD / "health.lua").read_text()
    actions = yaml.safe_load(config_map["data"][ACTIONS_KEY])
    assert actions["discovery.lua"] == (ARGOCD / "actions" / "discovery.lua").read_text()
    assert {d["name"]: d["action.lua"] for d in actions["definitions"]} == {
        action: (ARGOCD / "actions" / action / "action.lua").read_text() for action in ACTIONS
    }
