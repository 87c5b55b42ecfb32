"""kopf wiring: watch events become keys in the work queue; workers reconcile them.

Only `kopf.on.event` handlers are used: they keep no state on the watched objects, so the
operator never writes annotations or finalizers on a user's ModelDeployment.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import kopf

from modeldeploy import metrics
from modeldeploy.api.model_runtime import RUNTIME_PLURAL
from modeldeploy.api.models import GROUP, PLURAL, VERSION
from modeldeploy.controller.reconcile import Reconciler
from modeldeploy.controller.workqueue import WorkQueue
from modeldeploy.render.autoscaler import autoscaler_kinds
from modeldeploy.render.common import LABEL_MANAGED_BY, LABEL_MODEL, MANAGER
from modeldeploy.traffic import ROUTERS

# Children change in bursts (a rollout touches pods, ReplicaSets, Deployments at once):
# wait this long so one reconcile sees the burst.
CHILD_EVENT_DELAY_SECONDS = 0.5

log = logging.getLogger(__name__)

Key = tuple[str, str]


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf builds a deep copy of every body it receives to diff it for creation and update
    handlers; the operator has none (it only watches and indexes), and the copies were a tenth
    of its CPU at 1,000 models."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return {}

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def child_kinds() -> set[tuple[str, str]]:
    """(apiVersion, kind) of every child the operator creates, whose changes wake its owner."""
    kinds = {("apps/v1", "Deployment"), ("v1", "Service"), *autoscaler_kinds()}
    for router in ROUTERS.values():
        kinds.update(router.managed_kinds)
    return kinds


def build_registry(queue: WorkQueue, reconciler: Reconciler) -> kopf.OperatorRegistry:
    cluster = reconciler.cluster
    cache = reconciler.cache
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # The operator records its own Events; kopf's would be one write per handler log line.
        settings.posting.enabled = False
        settings.persistence.diffbase_storage = NoDiffBase()

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # A registry of our own has none of kopf's default login handlers.
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
    async def model_changed(
        event: dict[str, Any], body: kopf.Body, namespace: str, name: str, meta: kopf.Meta, **_: Any
    ) -> None:
        key = (namespace, name)
        cluster.model_event(event["type"], namespace, name)
        cache.model_event(event["type"], dict(body))
        if event["type"] == "DELETED":
            # A re-created object (GitOps Replace) starts without the old one's backoff; the
            # pass this adds finds the object gone and drops what the operator kept about it.
            queue.forget(key)
            queue.add(key)
        elif not reconciler.is_own_status_write(key, meta.get("resourceVersion")):
            queue.add(key)

    async def child_changed(
        event: dict[str, Any], body: kopf.Body, labels: dict[str, str], namespace: str, **_: Any
    ) -> None:
        child = dict(body)
        echo = cache.is_echo(child)
        cache.child_event(event["type"], child)
        if echo:
            return  # our own write coming back: the pass that made it has seen it
        queue.add((namespace, labels[LABEL_MODEL]), delay=CHILD_EVENT_DELAY_SECONDS)

    for api_version, kind in sorted(child_kinds()):
        group, _, version = api_version.rpartition("/")
        labels = {LABEL_MANAGED_BY: MANAGER, LABEL_MODEL: kopf.PRESENT}
        kopf.on.event(group, version, kind, labels=labels, registry=registry, id=f"child-{kind}")(
            child_changed
        )
    # Pods carry the model label (not managed-by: they are the ReplicaSet's): their scheduling
    # and readiness explain a wait.
    kopf.on.event("", "v1", "pods", labels={LABEL_MODEL: kopf.PRESENT}, registry=registry, id="pods")(
        child_changed
    )

    # Coroutines, though they only update memory: kopf runs a plain function in a thread
    # pool, a handoff for every pod event.
    @kopf.on.event("", "v1", "nodes", registry=registry)
    async def node_changed(event: dict[str, Any], body: kopf.Body, **_: Any) -> None:
        cluster.node_event(event["type"], dict(body))

    @kopf.on.event("", "v1", "pods", registry=registry)
    async def pod_changed(event: dict[str, Any], body: kopf.Body, **_: Any) -> None:
        cluster.pod_event(event["type"], dict(body))

    # A template's edit or arrival concerns every model that names it or may select it by format.
    @kopf.on.event(GROUP, VERSION, RUNTIME_PLURAL, registry=registry)
    async def runtime_changed(event: dict[str, Any], body: kopf.Body, **_: Any) -> None:
        if cluster.runtime_event(event["type"], dict(body)):
            for key in cluster.all_models():
                queue.add(key)

    # The verification policy follows namespace labels: a change is looked at again at once.
    @kopf.on.event("", "v1", "namespaces", registry=registry)
    async def namespace_changed(event: dict[str, Any], body: kopf.Body, name: str, **_: Any) -> None:
        if cluster.namespace_event(event["type"], dict(body)):
            for model in cluster.models_in(name):
                queue.add((name, model))

    return registry


async def work(queue: WorkQueue, reconciler: Reconciler, stop: asyncio.Event) -> None:
    """Reconcile keys until `stop`; a reconcile in progress is finished, not interrupted
    (the operator cancels it instead when the Lease is lost)."""
    while not stop.is_set():
        getting = asyncio.ensure_future(queue.get())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not getting.done():
            getting.cancel()
            return
        key = getting.result()
        namespace, name = key  # type: ignore[misc]
        started = time.monotonic()
        try:
            requeue = await reconciler.reconcile(namespace, name)
        except Exception:
            delay = queue.failed(key)
            metrics.RECONCILES.labels(result="error").inc()
            log.exception("[%s/%s] reconcile failed; retrying in %.0fs", namespace, name, delay)
        else:
            queue.forget(key)
            queue.done(key, requeue)
            metrics.RECONCILES.labels(result="success").inc()
        finally:
            metrics.RECONCILE_DURATION.observe(time.monotonic() - started)
