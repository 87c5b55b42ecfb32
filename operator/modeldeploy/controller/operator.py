"""`modeldeploy run`: kopf watching, reconcile workers, metrics and health endpoints."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from dataclasses import dataclass

import kopf
import prometheus_client
from aiohttp import web
from kubernetes_asyncio.client import CoreV1Api

from modeldeploy.controller.events import EventRecorder
from modeldeploy.controller.handlers import build_registry, work
from modeldeploy.controller.kube import USER_AGENT, Kube
from modeldeploy.controller.leader import Leadership, fence_writes
from modeldeploy.controller.reconcile import Reconciler, Settings
from modeldeploy.controller.workqueue import WorkQueue

LEASE_NAME = "modeldeploy-operator"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    namespaces: tuple[str, ...]  # empty: every namespace
    kubeconfig: str | None
    metrics_port: int
    health_port: int
    workers: int
    settings: Settings
    # Namespace of the Lease replicas elect their leader with; None runs without election.
    leader_election_namespace: str | None = None
    shutdown_grace_seconds: float = 20.0


async def run_operator(options: RunOptions) -> None:
    if options.kubeconfig:
        # kopf logs in from the environment; the reconcile client from the same file.
        os.environ["KUBECONFIG"] = options.kubeconfig
    kube = await Kube.connect(options.kubeconfig)
    identity = _identity()
    # Which replica made a request, in the API server's audit log.
    kube.api.user_agent = f"{USER_AGENT} ({identity})"
    events = EventRecorder(CoreV1Api(kube.api), instance=socket.gethostname())
    reconciler = Reconciler(kube, options.settings, events)
    queue = WorkQueue()
    stop = asyncio.Event()
    ready = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    prometheus_client.start_http_server(options.metrics_port)
    standby = asyncio.Event()
    health = await _serve_health(options.health_port, ready, standby)
    leadership = None
    if options.leader_election_namespace:
        leadership = Leadership(kube, options.leader_election_namespace, LEASE_NAME, identity)
        fence_writes(kube.api, leadership)
        standby.set()
        acquired = await leadership.acquire(stop)
        standby.clear()
        if not acquired:
            await _shut_down(health, kube)
            return
    workers = [
        asyncio.create_task(work(queue, reconciler, stop), name=f"worker-{n}") for n in range(options.workers)
    ]
    kopf_task = asyncio.create_task(
        kopf.operator(
            registry=build_registry(queue, reconciler),
            clusterwide=not options.namespaces,
            namespaces=options.namespaces,
            standalone=True,
            stop_flag=stop,
            ready_flag=ready,
        ),
        name="kopf",
    )
    log.info(
        "modeldeploy operator started: %s, %d workers, metrics :%d, health :%d",
        "namespaces " + ",".join(options.namespaces) if options.namespaces else "all namespaces",
        options.workers,
        options.metrics_port,
        options.health_port,
    )
    stopping = asyncio.create_task(stop.wait())
    # Renewing goes on through a clean shutdown's grace period: the reconciles finishing
    # then still write as the leader.
    keeping = [asyncio.create_task(leadership.keep(), name="lease")] if leadership else []
    await asyncio.wait([kopf_task, stopping, *keeping], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    if not any(task.done() for task in keeping):
        # Graceful: reconciles in flight get a moment to finish their writes, unless the Lease
        # is lost meanwhile.
        in_flight = asyncio.ensure_future(asyncio.wait([kopf_task, *workers]))
        await asyncio.wait(
            [in_flight, *keeping], timeout=options.shutdown_grace_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        in_flight.cancel()
    # Once the Lease is lost another replica may be active: what is in flight is cancelled at
    # once, not finished (and the write fence refuses whatever is still sent).
    for task in (kopf_task, *workers, *keeping):
        task.cancel()
    await asyncio.gather(kopf_task, *workers, *keeping, return_exceptions=True)
    lost = next((task.exception() for task in keeping if not task.cancelled()), None)
    if lost:
        log.error("%s: stopped at once; the pod restarts and waits for the Lease again", lost)
        await _shut_down(health, kube)
        raise lost
    if leadership:
        await leadership.release()
    await _shut_down(health, kube)


async def _shut_down(health: web.AppRunner, kube: Kube) -> None:
    await health.cleanup()
    await kube.close()
    log.info("modeldeploy operator stopped")


def _identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


async def _serve_health(port: int, ready: asyncio.Event, standby: asyncio.Event) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        # Ready once kopf has listed and started watching every resource; a replica waiting
        # for the Lease is ready too: it is healthy and takes over when the leader goes.
        if ready.is_set():
            return web.Response(text="ok")
        if standby.is_set():
            return web.Response(text="standby")
        return web.Response(status=503, text="starting")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner
