"""Kubernetes Events on a ModelDeployment, so `kubectl describe md` explains every transition."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client import CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from modeldeploy import metrics

REPORTING_COMPONENT = "modeldeploy"
# Events are for people; a long message is cut rather than refused by the API server.
MAX_MESSAGE = 1024

log = logging.getLogger(__name__)


class EventRecorder:
    def __init__(self, core: CoreV1Api, instance: str) -> None:
        self.core = core
        self.instance = instance

    async def emit(self, obj: dict[str, Any], type: str, reason: str, message: str) -> None:
        metadata = obj["metadata"]
        now = datetime.now(UTC)
        event = {
            "metadata": {"generateName": f"{metadata['name']}.", "namespace": metadata["namespace"]},
            "involvedObject": {
                "apiVersion": obj["apiVersion"],
                "kind": obj["kind"],
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata["uid"],
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "type": type,
            "reason": reason,
            "message": message[:MAX_MESSAGE],
            "source": {"component": REPORTING_COMPONENT},
            "reportingComponent": REPORTING_COMPONENT,
            "reportingInstance": self.instance,
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
        }
        log.info("[%s/%s] %s %s: %s", metadata["namespace"], metadata["name"], type, reason, message)
        try:
            await self.core.create_namespaced_event(metadata["namespace"], event)
        except ApiException as error:
            # An event that cannot be recorded must not fail the reconcile that caused it.
            log.warning("could not record event %s on %s: %s", reason, metadata["name"], error.reason)
            return
        metrics.API_WRITES.labels(kind="Event", verb="create").inc()
