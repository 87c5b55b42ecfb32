"""One reconcile of one ModelDeployment: read, decide (pure), apply, record status.

Everything that decides lives in api/, render/, rollout/, traffic/ and capacity; this
module gathers observations from the cluster, calls them, applies what they return,
removes children they no longer want, and writes status and events.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from modeldeploy import capacity, metrics
from modeldeploy.api.models import (
    API_VERSION,
    KIND,
    Condition,
    ModelDeployment,
    ModelDeploymentStatus,
)
from modeldeploy.api.verification_policy import VERIFICATION_REQUIRED, VerificationPolicy
from modeldeploy.controller.cache import ObjectCache
from modeldeploy.controller.cluster_view import ClusterView
from modeldeploy.controller.events import EventRecorder
from modeldeploy.controller.kube import ApplyResult, KindNotServed, Kube
from modeldeploy.controller.verification import verification_refusal
from modeldeploy.render.autoscaler import (
    AutoscalingError,
    autoscaler_kind,
    autoscaler_kinds,
    render_autoscaler,
)
from modeldeploy.render.common import LABEL_MANAGED_BY, MANAGER, name_of, namespace_of, selector_labels
from modeldeploy.render.model_volume import DEFAULT_INITIALIZER_RESOURCES, OciMode, is_mounted
from modeldeploy.render.revision import REVISION_SPEC_ANNOTATION, RevisionPlan, RevisionSpec
from modeldeploy.render.runtimes import UnresolvedRuntime, resolve
from modeldeploy.render.services import render_role_services
from modeldeploy.render.workload import deployment_name, render_deployment
from modeldeploy.rollout import machine
from modeldeploy.rollout.analysis import target_of
from modeldeploy.rollout.prometheus import measure
from modeldeploy.rollout.surge import admitted, split, surge_replicas
from modeldeploy.rollout.timing import format_timestamp
from modeldeploy.status.compute import Observations, Problem, compute_status, refused_conditions
from modeldeploy.storage.model_status import model_events
from modeldeploy.storage.termination import ModelState, model_state_from_pods
from modeldeploy.traffic import ROUTERS, Router, Routing, router_for
from modeldeploy.traffic.base import RoutedState

log = logging.getLogger(__name__)

# With nothing to wait for, look again this often anyway: it repairs drift no watch reported.
RESYNC_SECONDS = 600.0
# The events that end a rollout, and the phase each ends it in.
ROLLOUT_ENDINGS = {"Promoted": "Stable", "RolledBack": "RolledBack", "RolloutFailed": "Failed"}
# Every kind of child, so that a child no longer wanted (old revision, previous traffic
# provider or autoscaling engine) is found and removed.
CHILD_KINDS: tuple[tuple[str, str], ...] = (
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    *autoscaler_kinds(),
    *sorted({kind for router in ROUTERS.values() for kind in router.managed_kinds}),
)


@dataclass(frozen=True)
class Settings:
    initializer_image: str
    oci_mode: OciMode = "image-volume"
    initializer_resources: Mapping[str, Any] = field(default_factory=lambda: DEFAULT_INITIALIZER_RESOURCES)
    verification_policy: VerificationPolicy = field(default_factory=VerificationPolicy)


@dataclass
class Reconciler:
    kube: Kube
    settings: Settings
    events: EventRecorder
    cluster: ClusterView = field(default_factory=ClusterView)
    cache: ObjectCache = field(default_factory=ObjectCache)
    phases: dict[tuple[str, str], str] = field(default_factory=dict)
    # The resourceVersion of each object's last status write by this operator: the watch
    # event that write causes is its echo, with nothing new to reconcile.
    status_writes: dict[tuple[str, str], str] = field(default_factory=dict)

    def is_own_status_write(self, key: tuple[str, str], resource_version: str | None) -> bool:
        return resource_version is not None and self.status_writes.get(key) == resource_version

    def wrote_status(self, body: dict[str, Any]) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        self.status_writes[key] = str(body["metadata"]["resourceVersion"])
        self.cache.model_event(None, body)

    async def reconcile(self, namespace: str, name: str, now: datetime | None = None) -> float | None:
        """Returns seconds until this object needs another look, or None when it is gone."""
        # The watch delivers every ModelDeployment; one not in the cache (yet) is read once.
        body = self.cache.model(namespace, name) or await self.kube.get(API_VERSION, KIND, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            # Children carry owner references: the garbage collector removes them.
            self.status_writes.pop((namespace, name), None)
            self._record_phase((namespace, name), None)
            with contextlib.suppress(KeyError):
                metrics.CANARY_WEIGHT.remove(namespace, name)
            return None
        try:
            md = ModelDeployment.model_validate(body)
        except ValidationError as error:
            await self._refuse(body, "InvalidSpec", _invalid_spec_message(error), now or datetime.now(UTC))
            return None
        refusal = await verification_refusal(self.settings.verification_policy, md, self.cluster, self.kube)
        if refusal is not None:
            await self._refuse(body, VERIFICATION_REQUIRED, refusal, now or datetime.now(UTC))
            return None
        return await _Pass(self, md, body, now or datetime.now(UTC)).run()

    def _record_phase(self, key: tuple[str, str], phase: str | None) -> None:
        """Keeps the per-phase gauge of managed ModelDeployments; None when one is gone."""
        previous = self.phases.pop(key, None)
        if previous is not None:
            metrics.MODEL_DEPLOYMENTS.labels(phase=previous).dec()
        if phase is not None:
            self.phases[key] = phase
            metrics.MODEL_DEPLOYMENTS.labels(phase=phase).inc()

    async def _refuse(self, body: dict[str, Any], reason: str, message: str, now: datetime) -> None:
        """A spec the operator refuses (the models or the verification policy): say why, and wait for a fix."""
        status = ModelDeploymentStatus.model_validate(body.get("status") or {})
        conditions = refused_conditions(status.conditions, reason, message, format_timestamp(now))
        patch = {
            "observedGeneration": body["metadata"].get("generation"),
            "ready": "False",
            "conditions": [c.model_dump(by_alias=True, exclude_none=True) for c in conditions],
        }
        if _status_changes(body.get("status") or {}, patch):
            key = (body["metadata"]["namespace"], body["metadata"]["name"])
            self.wrote_status(await self.kube.patch_status(API_VERSION, KIND, *key, patch))
            await self.events.emit(body, "Warning", reason, message)


class _Pass:
    """The state of one reconcile pass, so each step reads like the sentence describing it."""

    def __init__(
        self, reconciler: Reconciler, md: ModelDeployment, body: dict[str, Any], now: datetime
    ) -> None:
        self.r = reconciler
        self.kube = reconciler.kube
        self.md = md
        self.body = body
        self.now = now
        self.stamp = format_timestamp(now)
        self.namespace = namespace_of(md)
        self.name = name_of(md)
        self.key = (self.namespace, self.name)
        self.router: Router = router_for(md.spec.traffic.provider)
        self.problems: list[Problem] = []
        self.restored: list[str] = []
        # Set when a GPU canary is held back because it would not fit (see _budgeted_replicas).
        self.canary_capacity: Condition | None = None
        # Every child of the model in the cache when the pass began (pods apart).
        self.children: list[dict[str, Any]] = []

    async def run(self) -> float | None:
        """Seconds until the next look; None when the spec cannot be acted on until something changes."""
        if not self.r.cache.listed(self.namespace, self.name):
            await self._list_into_cache()
        # Parsed once a pass: what the pass acts on, and (every kind) what it may prune.
        held = self.r.cache.children(self.namespace, self.name, (("v1", "Pod"), *CHILD_KINDS))
        pods = [obj for obj in held if obj["kind"] == "Pod"]
        self.children = [obj for obj in held if obj["kind"] != "Pod"]
        in_use = set(self._kinds_in_use())
        live = [obj for obj in self.children if (obj["apiVersion"], obj["kind"]) in in_use]
        deployments = [obj for obj in live if obj["kind"] == "Deployment"]
        specs = _revision_specs(deployments)
        try:
            resolved = resolve(self.md.spec, self.r.cluster.runtimes, specs.values())
        except UnresolvedRuntime as error:
            # The ModelRuntime watch looks at every model again when a template comes or changes.
            await self.r._refuse(self.body, error.reason, str(error), self.now)
            return None
        # From here on, spec.runtime is the template merged with the model's own fields.
        self.md = self.md.model_copy(update={"spec": resolved.spec})
        self.revision = resolved.revision
        specs[self.revision] = resolved.revision_spec
        readiness = _readiness(deployments)

        routed = self.router.routed(
            self.md, self._routing_objects(live), _current_routing(self.md.status, readiness)
        )
        observations = machine.Observations(
            revision=self.revision,
            live=readiness,
            routed_weight=routed.canary_weight,
            request=self._request(),
            generation=self.body["metadata"].get("generation"),
        )
        decision = machine.decide(self.md.spec, self.md.status, observations, self.now)
        if decision.analysis_due is not None:
            # Decide, measure, decide: a measurement costs one pass and one status write.
            runs = await measure(
                decision.analysis_due,
                target_of(self.md, decision.status.canary_revision or self.revision),
                self.now,
            )
            for run in runs:
                metrics.ANALYSIS_RESULTS.labels(verdict=run.verdict).inc()
            observations = dataclasses.replace(observations, measurements=runs)
            decision = machine.decide(self.md.spec, self.md.status, observations, self.now)
        routing = Routing(
            stable_revision=decision.status.stable_revision,
            canary_revision=decision.status.canary_revision,
            canary_weight=decision.canary_weight,
            canary_ready_replicas=_ready(readiness, decision.status.canary_revision),
            stable_ready_replicas=_ready(readiness, decision.status.stable_revision),
        )
        plans = self._plans(decision, specs, readiness, pods)
        desired = [
            render_deployment(
                self.md,
                plan,
                self.r.settings.initializer_image,
                self.r.settings.oci_mode,
                self.r.settings.initializer_resources,
            )
            for plan in plans
        ]
        desired += render_role_services(self.md, routing.stable_revision, routing.canary_revision)
        desired += self._autoscalers(plans, routing.canary_weight)
        routes_desired = self._routes(routing)

        applied = await self._apply([*desired, *routes_desired], live)
        await self._prune([*desired, *routes_desired])

        routed_now = self.router.routed(self.md, self._routing_objects(list(applied.values())), routing)
        report = compute_status(
            self._observations(decision.status, deployments, pods, routed_now, specs), self.stamp
        )
        status = report.status
        await self._write_status(status)
        for verdict in report.transitions:
            await self.r.events.emit(
                self.body, "Warning" if verdict.abnormal else "Normal", verdict.reason, verdict.message
            )
        for event in [*decision.events, *model_events(self.md.status, status)]:
            await self.r.events.emit(self.body, event.type, event.reason, event.message)
            if event.reason == "StepStarted":
                metrics.ROLLOUT_STEP_TRANSITIONS.inc()
            elif event.reason in ROLLOUT_ENDINGS:
                metrics.ROLLOUTS.labels(phase=ROLLOUT_ENDINGS[event.reason]).inc()
        self.r._record_phase(self.key, status.phase)
        for what in self.restored:
            await self.r.events.emit(
                self.body, "Warning", "ChildRestored", f"{what} had been changed by hand; restored"
            )
        metrics.CANARY_WEIGHT.labels(namespace=self.namespace, name=self.name).set(status.canary_weight)
        if decision.analysis_due is not None:
            return 0.0  # a measurement fell due again while it was taken: take the next at once
        return decision.requeue_after if decision.requeue_after is not None else RESYNC_SECONDS

    # ------------------------------------------------------------------ observations

    def _request(self) -> machine.Request | None:
        value = (self.body["metadata"].get("annotations") or {}).get(machine.REQUEST_ANNOTATION)
        try:
            return machine.Request.parse(value)
        except ValueError as error:
            self.problems.append(Problem("Progressing", "InvalidRequest", str(error)))
            return None

    def _kinds_in_use(self) -> tuple[tuple[str, str], ...]:
        """Kinds the current spec makes children of: listed once per reconcile."""
        kinds = [("apps/v1", "Deployment"), ("v1", "Service"), *self.router.managed_kinds]
        if self.md.spec.autoscaling is not None:
            kinds.append(autoscaler_kind(self.md.spec.autoscaling))
        return tuple(kinds)

    async def _list_into_cache(self) -> None:
        """The first pass of a model since the operator started reads its children from the API
        server (sent together: one round trip), since the watches may not have delivered them
        all yet; after a spec change the kinds it no longer uses too, to find what to remove."""
        kinds = self._kinds_in_use()
        generation = self.body["metadata"].get("generation")
        if generation != 1 and self.md.status.observed_generation != generation:
            kinds = CHILD_KINDS

        async def children(api_version: str, kind: str, selector: dict[str, str]) -> list[dict[str, Any]]:
            try:
                return await self.kube.list(api_version, kind, self.namespace, selector)
            except KindNotServed:
                return []

        ours = {LABEL_MANAGED_BY: MANAGER, **selector_labels(self.md)}
        found = await asyncio.gather(
            children("v1", "Pod", selector_labels(self.md)), *(children(*kind, ours) for kind in kinds)
        )
        self.r.cache.fill(self.namespace, self.name, [obj for objects in found for obj in objects])

    def _routing_objects(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """What the router reads back: its own kinds and the Service `<name>` it renders."""
        return [
            obj
            for obj in objects
            if (obj["apiVersion"], obj["kind"]) in self.router.managed_kinds
            or (obj["kind"] == "Service" and obj["metadata"]["name"] == self.name)
        ]

    # ------------------------------------------------------------------ desired children

    def _plans(
        self,
        decision: machine.Decision,
        specs: dict[str, RevisionSpec],
        readiness: dict[str, machine.RevisionReadiness],
        pods: list[dict[str, Any]],
    ) -> list[RevisionPlan]:
        budgeted = self._budgeted_replicas(decision, specs, readiness, pods)
        plans = []
        for live in decision.revisions:
            spec = specs.get(live.revision)
            if spec is None:
                # Its Deployment (which carries its spec) was deleted by hand: nothing to render it from.
                self.problems.append(
                    Problem(
                        "Ready",
                        "RevisionLost",
                        f"revision {live.revision} was deleted and cannot be recreated",
                    )
                )
                continue
            if live.scaled_to_zero:
                replicas: int | None = 0
            elif self.md.spec.autoscaling is not None:
                replicas = None
            else:
                replicas = budgeted.get(live.revision, self.md.spec.replicas)
            plans.append(RevisionPlan(revision=live.revision, role=live.role, spec=spec, replicas=replicas))
        return plans

    def _budgeted_replicas(
        self,
        decision: machine.Decision,
        specs: dict[str, RevisionSpec],
        readiness: dict[str, machine.RevisionReadiness],
        pods: list[dict[str, Any]],
    ) -> dict[str, int]:
        """Replicas by revision where they are not simply spec.replicas: under a GPU budget
        (maxSurge) while a canary runs and while the old stable retires after a promotion, and
        for a GPU canary that would not fit (held at zero, and said so, rather than Pending)."""
        spec, status = self.md.spec, decision.status
        if (
            spec.autoscaling is not None
            or spec.rollout.strategy != "canary"
            or status.stable_revision is None
        ):
            return {}
        stable, canary, replicas = status.stable_revision, status.canary_revision, spec.replicas
        max_surge = spec.rollout.canary.max_surge
        surge = surge_replicas(max_surge, replicas) if max_surge is not None else None
        if canary is not None and status.phase in machine.IN_FLIGHT:
            if surge is None:
                wanted = {stable: replicas, canary: replicas}
            else:
                found = split(replicas, surge, decision.target_weight, _ready(readiness, canary))
                held = _pods_held(pods, exclude=canary)
                wanted = {stable: found.stable, canary: admitted(found.canary, replicas + surge, held)}
            if _ready(readiness, canary) == 0 and canary in specs:
                self.canary_capacity = self._canary_fit(
                    specs[canary], wanted[stable], wanted[canary], canary, pods
                )
                if self.canary_capacity is not None:
                    return {stable: replicas, canary: 0}
            return wanted
        retiring = status.rollout.retiring if status.rollout else []
        if surge is None or not retiring:
            return {}
        # After a promotion the new stable grows as the old one, now retiring, gives way.
        previous = status.history[-2].revision if len(status.history) >= 2 else None
        found = split(replicas, surge, 100, _ready(readiness, stable))
        held = _pods_held(pods, exclude=stable)
        return {stable: admitted(found.canary, replicas + surge, held)} | {
            revision: found.stable if revision == previous else 0 for revision in retiring
        }

    def _canary_fit(
        self, canary_spec: RevisionSpec, stable: int, canary: int, revision: str, pods: list[dict[str, Any]]
    ) -> Condition | None:
        """The GPUCapacity verdict on starting a canary: None when stable and canary fit on the
        GPUs of matching nodes once this model's own pods are counted out."""
        request = capacity.GPURequest.of(canary_spec.runtime)
        if request is None:
            return None
        report = capacity.capacity_given_usage(
            self.r.cluster.nodes, self._usage_by_others(pods, request), request
        )
        return capacity.canary_condition(report, stable, canary, request, revision)

    def _usage_by_others(self, pods: list[dict[str, Any]], request: capacity.GPURequest) -> dict[str, int]:
        """GPUs of the request's kind held on each node by pods other than this model's: its own
        pods count toward its replicas, not against the free GPUs."""
        ours = capacity.requested_by_node(
            self.r.cluster.gpu_pods_named(self.namespace, {p["metadata"]["name"] for p in pods}),
            request.resource,
        )
        return {
            node: held - ours.get(node, 0)
            for node, held in self.r.cluster.gpu_usage(request.resource).items()
        }

    def _autoscalers(self, plans: list[RevisionPlan], canary_weight: int) -> list[dict[str, Any]]:
        canary_running = any(plan.role == "canary" and plan.replicas != 0 for plan in plans)
        scalers = []
        for plan in plans:
            if plan.role == "retiring" or plan.replicas == 0:
                continue
            try:
                scaler = render_autoscaler(
                    self.md,
                    plan.revision,
                    deployment_name(self.md, plan.revision),
                    plan.role,
                    canary_weight,
                    canary_running,
                )
            except AutoscalingError as error:
                self.problems.append(Problem("Ready", "InvalidAutoscaling", str(error)))
                return []
            if scaler is not None:
                scalers.append(scaler)
        return scalers

    def _routes(self, routing: Routing) -> list[dict[str, Any]]:
        try:
            return self.router.desired(self.md, routing)
        except ValueError as error:
            self.problems.append(Problem("TrafficReady", "InvalidTraffic", str(error)))
            return []

    # ------------------------------------------------------------------ writes

    async def _apply(
        self, desired: list[dict[str, Any]], live: list[dict[str, Any]]
    ) -> dict[tuple[str, str, str], dict[str, Any]]:
        """Applies what differs from `live` (every child of the kinds desired, listed once);
        returns each desired object as it now is."""
        by_identity = {_identity(obj): obj for obj in live}

        async def apply(obj: dict[str, Any]) -> ApplyResult | Problem:
            try:
                return await self.kube.apply(obj, by_identity.get(_identity(obj)))
            except KindNotServed as missing:
                return self._not_installed(missing)
            except ApiException as error:
                if error.status is not None and 400 <= error.status < 500 and error.status not in (409, 429):
                    return Problem(
                        "Ready",
                        "ApplyRefused",
                        f"{obj['kind']} {obj['metadata']['name']}: {_api_message(error)}",
                    )
                raise

        # Sent together; the outcomes are taken in the order of `desired`, so that conditions
        # built from them read the same on every pass.
        now_live = {}
        for obj, outcome in zip(desired, await asyncio.gather(*map(apply, desired)), strict=True):
            if isinstance(outcome, Problem):
                self.problems.append(outcome)
                continue
            if outcome.restored:
                self.restored.append(f"{obj['kind']} {obj['metadata']['name']}")
            if outcome.written:
                self.r.cache.wrote(outcome.obj, own=True)
            now_live[_identity(obj)] = outcome.obj
        return now_live

    def _not_installed(self, missing: KindNotServed) -> Problem:
        crds = ", ".join(self.router.required_crds) or missing.kind
        if (missing.api_version, missing.kind) in autoscaler_kinds():
            return Problem(
                "Ready",
                "AutoscalerNotInstalled",
                f"{missing.kind}.{missing.api_version} is not served: install KEDA (CRD scaledobjects.keda.sh) "
                "or use spec.autoscaling.engine hpa",
            )
        return Problem(
            "TrafficReady",
            "ProviderNotInstalled",
            f"traffic provider {self.router.provider} needs the CRD {crds}, which this cluster does not have",
        )

    async def _prune(self, desired: list[dict[str, Any]]) -> None:
        """Deletes children no longer desired, of every kind (a previous traffic provider or
        autoscaling engine included): the cache holds them all at no cost."""
        wanted = {_identity(obj) for obj in desired}
        stale = [obj for obj in self.children if _identity(obj) not in wanted and _is_ours(obj)]
        for obj in await self.kube.delete_all(stale):
            self.r.cache.removed(obj)
            log.info("[%s/%s] removed %s %s", self.namespace, self.name, obj["kind"], obj["metadata"]["name"])

    # ------------------------------------------------------------------ status

    def _observations(
        self,
        decided: ModelDeploymentStatus,
        deployments: list[dict[str, Any]],
        pods: list[dict[str, Any]],
        routed: RoutedState,
        specs: dict[str, RevisionSpec],
    ) -> Observations:
        stable_spec = specs.get(decided.stable_revision or "", specs[self.revision])
        if is_mounted(stable_spec.model):
            model = ModelState(True, "Mounted", f"{stable_spec.model.uri} is mounted into the server pods")
        else:
            model = model_state_from_pods(_pods_of(pods, decided.stable_revision))
        return Observations(
            spec=self.md.spec,
            generation=self.body["metadata"].get("generation"),
            previous=self.md.status,
            decided=decided,
            revisions=_readiness(deployments),
            replica_failures=_replica_failures(deployments),
            pods=pods,
            model=model,
            model_uri=stable_spec.model.uri,
            provider=self.router.provider,
            routed_weight=routed.canary_weight,
            problems=tuple(self.problems),
            gpu_capacity=self._gpu_capacity(pods),
            url=_url(self.md),
            templates={
                revision: spec.template for revision, spec in specs.items() if spec.template is not None
            },
        )

    def _gpu_capacity(self, pods: list[dict[str, Any]]) -> Condition | None:
        if self.canary_capacity is not None:
            return self.canary_capacity
        request = capacity.GPURequest.of(self.md.spec.runtime)
        if request is None:
            return None
        report = capacity.capacity_given_usage(
            self.r.cluster.nodes, self._usage_by_others(pods, request), request
        )
        autoscaling = self.md.spec.autoscaling
        wanted = autoscaling.max_replicas if autoscaling else self.md.spec.replicas
        return capacity.capacity_condition(report, wanted, request)

    async def _write_status(self, status: ModelDeploymentStatus) -> None:
        new = status.model_dump(by_alias=True, exclude_none=True, mode="json")
        patch = _merge_patch(self.body.get("status") or {}, new)
        if not patch:
            return
        self.r.wrote_status(await self.kube.patch_status(API_VERSION, KIND, self.namespace, self.name, patch))


# ---------------------------------------------------------------------------- helpers


def _merge_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) from `old` to `new`: fields that disappeared, at any
    depth, are removed explicitly with null."""
    patch: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            if value != before:
                patch[key] = _merge_patch(before, value)
        elif value != before:
            patch[key] = value
    return patch


def _invalid_spec_message(error: ValidationError) -> str:
    return "; ".join(
        f"spec.{'.'.join(str(part) for part in issue['loc'][1:])}: {issue['msg']}"
        if issue["loc"] and issue["loc"][0] == "spec"
        else f"{'.'.join(str(part) for part in issue['loc'])}: {issue['msg']}"
        for issue in error.errors()
    )


def _status_changes(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return any(old.get(key) != value for key, value in new.items()) or any(key not in new for key in old)


def _identity(obj: dict[str, Any]) -> tuple[str, str, str]:
    return (
        obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else "",
        obj["kind"],
        obj["metadata"]["name"],
    )


def _is_ours(obj: dict[str, Any]) -> bool:
    return (obj["metadata"].get("labels") or {}).get(LABEL_MANAGED_BY) == MANAGER


def _revision_specs(deployments: list[dict[str, Any]]) -> dict[str, RevisionSpec]:
    specs = {}
    for deployment in deployments:
        text = (deployment["metadata"].get("annotations") or {}).get(REVISION_SPEC_ANNOTATION)
        if text:
            spec = RevisionSpec.from_annotation(text)
            specs[spec.revision] = spec
    return specs


def _readiness(deployments: list[dict[str, Any]]) -> dict[str, machine.RevisionReadiness]:
    live = {}
    for deployment in deployments:
        revision = deployment["metadata"].get("labels", {}).get("modeldeploy.io/revision")
        if revision:
            status = deployment.get("status") or {}
            live[revision] = machine.RevisionReadiness(
                ready=status.get("readyReplicas", 0),
                desired=(deployment.get("spec") or {}).get("replicas", 0),
            )
    return live


def _replica_failures(deployments: list[dict[str, Any]]) -> dict[str, str]:
    """Per revision, why its Deployment cannot create pods (admission, quota, a missing
    ServiceAccount), verbatim from the ReplicaFailure condition the Deployment copies from its
    ReplicaSet."""
    failures = {}
    for deployment in deployments:
        revision = deployment["metadata"].get("labels", {}).get("modeldeploy.io/revision")
        for condition in (deployment.get("status") or {}).get("conditions") or []:
            if revision and condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
                failures[revision] = condition.get("message") or condition.get("reason", "")
    return failures


def _ready(readiness: dict[str, machine.RevisionReadiness], revision: str | None) -> int:
    return readiness[revision].ready if revision in readiness else 0


def _current_routing(
    status: ModelDeploymentStatus, readiness: dict[str, machine.RevisionReadiness]
) -> Routing:
    return Routing(
        stable_revision=status.stable_revision,
        canary_revision=status.canary_revision,
        canary_weight=max(0, min(100, status.canary_weight)),
        canary_ready_replicas=_ready(readiness, status.canary_revision),
        stable_ready_replicas=_ready(readiness, status.stable_revision),
    )


def _url(md: ModelDeployment) -> str:
    traffic = md.spec.traffic
    if traffic.hosts:
        return f"http://{traffic.hosts[0]}{traffic.path if traffic.path != '/' else ''}"
    return f"http://{name_of(md)}.{namespace_of(md)}.svc:{md.spec.runtime.port}"


def _api_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body).get("message", error.reason))
    except (TypeError, ValueError):
        return str(error.reason)


def _pods_held(pods: list[dict[str, Any]], exclude: str) -> int:
    """Pods of the model's other revisions that still hold their resources, terminating ones
    included."""
    return sum(
        1
        for pod in pods
        if pod["metadata"].get("labels", {}).get("modeldeploy.io/revision") != exclude
        and (pod.get("status") or {}).get("phase") not in capacity.TERMINATED_PHASES
    )


def _pods_of(pods: list[dict[str, Any]], revision: str | None) -> list[dict[str, Any]]:
    return [p for p in pods if p["metadata"].get("labels", {}).get("modeldeploy.io/revision") == revision]
