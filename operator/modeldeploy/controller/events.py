"""Kubernetes Events on a ModelDeployment, so `kubectl describe md` explains every transition.

Like client-go's EventCorrelator, an event repeated (same object, type, reason and message)
within DEDUPLICATION_WINDOW updates the count and time of the Event already recorded instead
of creating another: a condition that keeps recurring reads as one line with a count, not a
storm of identical Events.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes_asyncio.client import CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from modeldeploy import metrics

REPORTING_COMPONENT = "modeldeploy"
# Events are for people; a long message is cut rather than refused by the API server.
MAX_MESSAGE = 1024
# client-go keeps its deduplication cache for as long; older repeats start a new Event.
DEDUPLICATION_WINDOW = timedelta(minutes=10)
RECENT_EVENTS_LIMIT = 4096

log = logging.getLogger(__name__)


@dataclass
class _Recorded:
    namespace: str
    name: str
    count: int
    last_seen: datetime


class EventRecorder:
    def __init__(self, core: CoreV1Api, instance: str) -> None:
        self.core = core
        self.instance = instance
        self.recent: OrderedDict[tuple[str, str, str, str], _Recorded] = OrderedDict()

    async def emit(self, obj: dict[str, Any], type: str, reason: str, message: str) -> None:
        metadata = obj["metadata"]
        now = datetime.now(UTC)
        message = message[:MAX_MESSAGE]
        log.info("[%s/%s] %s %s: %s", metadata["namespace"], metadata["name"], type, reason, message)
        key = (metadata["uid"], type, reason, message)
        recorded = self.recent.get(key)
        try:
            recent = recorded is not None and now - recorded.last_seen < DEDUPLICATION_WINDOW
            if not (recent and recorded and await self._counted_again(recorded, now)):
                await self._create(key, obj, type, reason, message, now)
        except ApiException as error:
            # An event that cannot be recorded must not fail the reconcile that caused it.
            log.warning("could not record event %s on %s: %s", reason, metadata["name"], error.reason)

    async def _create(
        self,
        key: tuple[str, str, str, str],
        obj: dict[str, Any],
        type: str,
        reason: str,
        message: str,
        now: datetime,
    ) -> None:
        metadata = obj["metadata"]
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
            "message": message,
            "source": {"component": REPORTING_COMPONENT},
            "reportingComponent": REPORTING_COMPONENT,
            "reportingInstance": self.instance,
            "firstTimestamp": now.isoformat(),
            "lastTimestamp": now.isoformat(),
            "count": 1,
        }
        created = await self.core.create_namespaced_event(metadata["namespace"], event)
        metrics.API_WRITES.labels(kind="Event", verb="create").inc()
        self._remember(key, _Recorded(metadata["namespace"], created.metadata.name, 1, now))

    async def _counted_again(self, recorded: _Recorded, now: datetime) -> bool:
        """Counts a repeat on the Event recorded; False when that Event is gone (expired by
        the API server's TTL, or deleted)."""
        patch = {"count": recorded.count + 1, "lastTimestamp": now.isoformat()}
        try:
            await self.core.patch_namespaced_event(recorded.name, recorded.namespace, patch)
        except ApiException as error:
            if error.status != 404:
                raise
            return False
        metrics.API_WRITES.labels(kind="Event", verb="patch").inc()
        recorded.count += 1
        recorded.last_seen = now
        return True

    def _remember(self, key: tuple[str, str, str, str], recorded: _Recorded) -> None:
        self.recent[key] = recorded
        self.recent.move_to_end(key)
        while len(self.recent) > RECENT_EVENTS_LIMIT:
            self.recent.popitem(last=False)
