"""`modeldeploy run`: kopf watching, reconcile workers, metrics and health endpoints."""

from __future__ import annotations

import asyncio
import contextlib
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
from modeldeploy.controller.kube import Kube
from modeldeploy.controller.reconcile import Reconciler, Settings
from modeldeploy.controller.workqueue import WorkQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    namespaces: tuple[str, ...]  # empty: every namespace
    kubeconfig: str | None
    metrics_port: int
    health_port: int
    workers: int
    settings: Settings
    peering: str | None  # kopf peering name for HA; None runs standalone
    shutdown_grace_seconds: float = 20.0


async def run_operator(options: RunOptions) -> None:
    if options.kubeconfig:
        # kopf logs in from the environment; the reconcile client from the same file.
        os.environ["KUBECONFIG"] = options.kubeconfig
    kube = await Kube.connect(options.kubeconfig)
    events = EventRecorder(CoreV1Api(kube.api), instance=socket.gethostname())
    reconciler = Reconciler(kube, options.settings, events)
    queue = WorkQueue()
    stop = asyncio.Event()
    ready = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    prometheus_client.start_http_server(options.metrics_port)
    health = await _serve_health(options.health_port, ready)
    workers = [
        asyncio.create_task(work(queue, reconciler, stop), name=f"worker-{n}") for n in range(options.workers)
    ]
    kopf_task = asyncio.create_task(
        kopf.operator(
            registry=build_registry(queue, reconciler.cluster),
            clusterwide=not options.namespaces,
            namespaces=options.namespaces,
            standalone=options.peering is None,
            peering_name=options.peering,
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
    await asyncio.wait([kopf_task, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    # Graceful: reconciles in flight get a moment to finish their writes, then everything stops.
    await asyncio.wait([kopf_task, *workers], timeout=options.shutdown_grace_seconds)
    for task in (kopf_task, *workers):
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(kopf_task, *workers, return_exceptions=True)
    await health.cleanup()
    await kube.close()
    log.info("modeldeploy operator stopped")


async def _serve_health(port: int, ready: asyncio.Event) -> web.AppRunner:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        # Ready once kopf has listed and started watching every resource.
        return web.Response(text="ok") if ready.is_set() else web.Response(status=503, text="starting")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner
