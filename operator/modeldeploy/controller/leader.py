"""Leader election on a coordination.k8s.io Lease, as client-go's leaderelection does it.

Several replicas run; the one holding the Lease watches and reconciles, the others wait to
take it over when its holder stops renewing. kopf's peering is not used for this: it pauses
kopf's own watches but not the operator's work queue, and replicas of equal priority pause
each other instead of electing one.

No decision compares another node's clock with ours. A candidate judges the Lease expired
when its record has not changed for `leaseDurationSeconds` of *its own* monotonic clock,
counted from when it saw the record change (client-go's observedTime); `renewTime` is only
written, for people to read. The holder counts its leadership from the moment it sent its
last successful renewal and gives up after the shorter renew deadline, so it has stopped
before any candidate can count the lease out, whatever the nodes' clocks say.
(`kubernetes_asyncio.leaderelection` is not used: its renew loop keeps leading for a whole
renew deadline after it has seen another holder, it counts on the wall clock, and it
writes naive local times.)
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from modeldeploy.controller.kube import Kube

LEASE_API = ("coordination.k8s.io/v1", "Lease")

log = logging.getLogger(__name__)

# Set while this module talks to its Lease: those requests pass the write fence, as renewing
# (with resourceVersion, so a Lease someone else took is never overwritten) is how a holder
# whose leadership lapsed learns whether it still leads.
_lease_request = contextvars.ContextVar("lease_request", default=False)


@dataclass(frozen=True)
class LeaseTiming:
    """client-go's defaults: a holder renews well within its renew deadline, which ends
    before the lease duration a candidate waits out."""

    lease_seconds: int = 15
    renew_deadline_seconds: float = 10.0
    renew_seconds: float = 5.0
    retry_seconds: float = 2.0


class LeadershipLost(Exception):
    """This replica no longer holds the Lease, or cannot be sure it does: another may be active."""


def _micro_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class Leadership:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        timing: LeaseTiming = LeaseTiming(),
        wall_clock: Callable[[], datetime] = _wall_clock,
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timing = timing
        self.wall_clock = wall_clock  # only for the times written into the Lease
        self._observed_spec: dict[str, Any] | None = None
        self._observed_at = 0.0  # monotonic time at which _observed_spec was first seen
        self._leading_until = float("-inf")  # monotonic

    def leading(self) -> bool:
        """True while this replica is sure it holds the Lease: a renewal sent less than the
        renew deadline ago succeeded."""
        return time.monotonic() < self._leading_until

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Waits until this replica holds the Lease (True), or until `stop` (False)."""
        log.info("waiting to lead: Lease %s/%s, identity %s", self.namespace, self.name, self.identity)
        while not stop.is_set():
            if await self._try_to_hold(take_over=True) == self.identity:
                log.info("leading: Lease %s/%s acquired", self.namespace, self.name)
                return True
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.timing.retry_seconds)
            except TimeoutError:
                continue
        return False

    async def keep(self) -> None:
        """Renews until cancelled; raises LeadershipLost as soon as another replica holds the
        Lease or the renew deadline passes without a renewal."""
        wait = self.timing.renew_seconds
        while True:
            await asyncio.sleep(max(0.0, min(wait, self._leading_until - time.monotonic())))
            if not self.leading():
                raise LeadershipLost(
                    f"Lease {self.namespace}/{self.name} not renewed within "
                    f"{self.timing.renew_deadline_seconds:.0f}s"
                )
            holder = await self._try_to_hold(take_over=False)
            if holder == self.identity:
                wait = self.timing.renew_seconds
            elif holder is None:
                wait = self.timing.retry_seconds
            else:
                self._leading_until = float("-inf")
                raise LeadershipLost(
                    f"Lease {self.namespace}/{self.name} is now held by {holder or 'nobody'}"
                )

    async def release(self) -> None:
        """Hands the Lease back at once on a clean shutdown, so another replica need not wait it out."""
        self._leading_until = float("-inf")
        token = _lease_request.set(True)
        try:
            lease = await self.kube.get(*LEASE_API, self.namespace, self.name)
            if lease is None or lease["spec"].get("holderIdentity") != self.identity:
                return
            lease["spec"]["holderIdentity"] = None
            lease["spec"]["leaseDurationSeconds"] = 1
            await self.kube.replace(lease)
        except ApiException as error:
            log.warning("could not release the Lease: %s", error.reason)
        finally:
            _lease_request.reset(token)

    async def _try_to_hold(self, take_over: bool) -> str | None:
        """One attempt to create or renew the Lease (or, with `take_over`, to take an
        expired or released one). Returns who holds it afterwards ("" for nobody), None
        when that is unknown."""
        sent_at = time.monotonic()
        token = _lease_request.set(True)
        try:
            lease = await self.kube.get(*LEASE_API, self.namespace, self.name)
            now = _micro_time(self.wall_clock())
            if lease is None:
                written = await self.kube.create(self._lease(now, transitions=0, acquired=now))
            else:
                spec = lease.get("spec") or {}
                self._observe(spec)
                holder = spec.get("holderIdentity") or ""
                taking_over = holder != self.identity
                if taking_over and not (take_over and (not holder or self._expired(spec))):
                    return holder
                lease["spec"] = self._lease(
                    now,
                    transitions=spec.get("leaseTransitions", 0) + (1 if taking_over else 0),
                    acquired=spec.get("acquireTime", now) if not taking_over else now,
                )["spec"]
                # The PUT carries the resourceVersion just read: a racing replica gets 409.
                written = await self.kube.replace(lease)
                if taking_over:
                    log.info("took over the Lease from %s", holder or "nobody")
        except ApiException as error:
            if error.status != 409:
                log.warning("Lease %s/%s: %s", self.namespace, self.name, error.reason)
            return None
        finally:
            _lease_request.reset(token)
        self._observe(written["spec"])
        self._leading_until = sent_at + self.timing.renew_deadline_seconds
        return self.identity

    def _observe(self, spec: dict[str, Any]) -> None:
        if spec != self._observed_spec:
            self._observed_spec = spec
            self._observed_at = time.monotonic()

    def _expired(self, spec: dict[str, Any]) -> bool:
        duration = spec.get("leaseDurationSeconds") or self.timing.lease_seconds
        return time.monotonic() >= self._observed_at + duration

    def _lease(self, now: str, transitions: int, acquired: str) -> dict[str, Any]:
        return {
            "apiVersion": LEASE_API[0],
            "kind": LEASE_API[1],
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.timing.lease_seconds,
                "acquireTime": acquired,
                "renewTime": now,
                "leaseTransitions": transitions,
            },
        }


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def fence_writes(api: ApiClient, leadership: Leadership) -> None:
    """Refuse every write `api` would send while `leadership` is not sure it leads.

    Checked as each request leaves, not by a task that notices the lapse: a replica frozen
    past its lease (SIGSTOP, a paused VM, a long GC) resumes with reconciles half done and
    responses waiting, and those run before any timer of ours. A request already on the
    wire when the renew deadline passes still lands; the deadline ends before the lease
    duration for that.
    """
    send = api.rest_client.request

    async def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if method.upper() not in READ_METHODS and not _lease_request.get() and not leadership.leading():
            raise LeadershipLost(f"refused {method} {url}: not leading")
        return await send(method, url, *args, **kwargs)

    api.rest_client.request = request
