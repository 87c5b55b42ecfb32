"""Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it.

Several replicas run; the one holding the Lease watches and reconciles, the others wait to
take it over when its holder stops renewing. kopf's peering is not used for this: it pauses
kopf's own watches but not the operator's work queue, and replicas of equal priority pause
each other instead of electing one.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from modeldeploy.controller.kube import Kube

LEASE_API = ("coordination.k8s.io/v1", "Lease")
# How long a holder may go without renewing before another replica takes over, how often
# the holder renews, and how often the others try (client-go's lease and retry defaults).
LEASE_SECONDS = 15
RENEW_SECONDS = 5.0
RETRY_SECONDS = 2.0

log = logging.getLogger(__name__)


class LeadershipLost(Exception):
    """This replica could not renew its Lease in time; another may already be active."""


def _micro_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_micro_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Leadership:
    def __init__(self, kube: Kube, namespace: str, name: str, identity: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Waits until this replica holds the Lease (True), or until `stop` (False)."""
        log.info("waiting to lead: Lease %s/%s, identity %s", self.namespace, self.name, self.identity)
        while not stop.is_set():
            if await self._try_to_hold(datetime.now(UTC)):
                log.info("leading: Lease %s/%s acquired", self.namespace, self.name)
                return True
            try:
                await asyncio.wait_for(stop.wait(), timeout=RETRY_SECONDS)
            except TimeoutError:
                continue
        return False

    async def keep(self, stop: asyncio.Event) -> None:
        """Renews until `stop`; raises LeadershipLost when renewals fail for a whole lease."""
        renewed = datetime.now(UTC)
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=RENEW_SECONDS)
                return
            except TimeoutError:
                pass
            now = datetime.now(UTC)
            if await self._try_to_hold(now):
                renewed = now
            elif now - renewed > timedelta(seconds=LEASE_SECONDS - RENEW_SECONDS):
                raise LeadershipLost(
                    f"Lease {self.namespace}/{self.name} not renewed since {renewed:%H:%M:%S}"
                )

    async def release(self) -> None:
        """Hands the Lease back at once on a clean shutdown, so another replica need not wait it out."""
        lease = await self.kube.get(*LEASE_API, self.namespace, self.name)
        if lease is None or lease["spec"].get("holderIdentity") != self.identity:
            return
        lease["spec"]["holderIdentity"] = None
        lease["spec"]["leaseDurationSeconds"] = 1
        try:
            await self.kube.replace(lease)
        except ApiException as error:
            log.warning("could not release the Lease: %s", error.reason)

    async def _try_to_hold(self, now: datetime) -> bool:
        try:
            lease = await self.kube.get(*LEASE_API, self.namespace, self.name)
            if lease is None:
                await self.kube.create(self._lease(now, transitions=0, acquired=now))
                return True
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity")
            if holder and holder != self.identity and not self._expired(spec, now):
                return False
            taking_over = holder != self.identity
            lease["spec"] = self._lease(
                now,
                transitions=spec.get("leaseTransitions", 0) + (1 if taking_over else 0),
                acquired=now if taking_over else _parse_micro_time(spec["acquireTime"]),
            )["spec"]
            await self.kube.replace(lease)  # carries resourceVersion: a racing replica gets 409
            if taking_over:
                log.info("took over the Lease from %s", holder or "nobody")
            return True
        except ApiException as error:
            if error.status == 409:
                return False
            log.warning("Lease %s/%s: %s", self.namespace, self.name, error.reason)
            return False

    @staticmethod
    def _expired(spec: dict[str, Any], now: datetime) -> bool:
        renewed = spec.get("renewTime") or spec.get("acquireTime")
        if not renewed:
            return True
        return (
            _parse_micro_time(renewed) + timedelta(seconds=spec.get("leaseDurationSeconds", LEASE_SECONDS))
            < now
        )

    def _lease(self, now: datetime, transitions: int, acquired: datetime) -> dict[str, Any]:
        return {
            "apiVersion": LEASE_API[0],
            "kind": LEASE_API[1],
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": LEASE_SECONDS,
                "acquireTime": _micro_time(acquired),
                "renewTime": _micro_time(now),
                "leaseTransitions": transitions,
            },
        }
