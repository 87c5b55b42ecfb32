"""Leader election against the real API server's Lease, with the lease scaled to seconds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from modeldeploy.controller.kube import Kube
from modeldeploy.controller.leader import LEASE_API, Leadership, LeadershipLost, LeaseTiming, fence_writes

TIMING = LeaseTiming(lease_seconds=2, renew_deadline_seconds=1.5, renew_seconds=0.4, retry_seconds=0.2)
LEASE = "election"


@pytest.fixture
async def kube(kubeconfig: str) -> AsyncIterator[Kube]:
    connected = await Kube.connect(kubeconfig)
    yield connected
    await connected.close()


async def holder_of(kube: Kube, namespace: str) -> str | None:
    lease = await kube.get(*LEASE_API, namespace, LEASE)
    return lease["spec"].get("holderIdentity") if lease else None


async def try_for(leadership: Leadership, seconds: float) -> bool:
    """Whether `leadership` acquires the Lease within `seconds`."""
    giving_up = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, giving_up.set)
    return await leadership.acquire(giving_up)


async def test_a_candidate_whose_clock_runs_ahead_does_not_take_over_a_renewed_lease(
    kube: Kube, namespace: str
) -> None:
    holder = Leadership(kube, namespace, LEASE, "holder", TIMING)
    ahead = Leadership(
        kube, namespace, LEASE, "ahead", TIMING, wall_clock=lambda: datetime.now(UTC) + timedelta(seconds=30)
    )
    assert await try_for(holder, 5)
    keeping = asyncio.create_task(holder.keep())
    try:
        # Three lease durations: a candidate comparing renewTime with its own clock sees the
        # lease 28 s expired at its first look.
        assert not await try_for(ahead, 3 * TIMING.lease_seconds)
        assert await holder_of(kube, namespace) == "holder"
        assert holder.leading() and not keeping.done()
    finally:
        keeping.cancel()


async def test_a_candidate_takes_over_a_lease_its_holder_stopped_renewing(kube: Kube, namespace: str) -> None:
    holder = Leadership(kube, namespace, LEASE, "holder", TIMING)
    candidate = Leadership(kube, namespace, LEASE, "candidate", TIMING)
    assert await try_for(holder, 5)
    # The holder renews no more (frozen, or cut off from the API server).
    stopped_renewing = time.monotonic()
    assert await try_for(candidate, 5 * TIMING.lease_seconds)
    took_over = time.monotonic() - stopped_renewing
    assert took_over >= TIMING.lease_seconds
    assert await holder_of(kube, namespace) == "candidate"
    # The old holder has known it no longer leads since its renew deadline passed.
    assert not holder.leading()
    with pytest.raises(LeadershipLost, match="not renewed within"):
        await holder.keep()


async def test_a_holder_that_sees_another_holder_stops_at_once(kube: Kube, namespace: str) -> None:
    holder = Leadership(kube, namespace, LEASE, "holder", TIMING)
    assert await try_for(holder, 5)
    lease = await kube.get(*LEASE_API, namespace, LEASE)
    assert lease is not None
    lease["spec"]["holderIdentity"] = "someone-else"
    await kube.replace(lease)
    started = time.monotonic()
    with pytest.raises(LeadershipLost, match="now held by someone-else"):
        await holder.keep()
    assert time.monotonic() - started < TIMING.renew_deadline_seconds
    assert not holder.leading()


async def test_writes_are_refused_once_leadership_lapses_and_reads_are_not(
    kubeconfig: str, kube: Kube, namespace: str
) -> None:
    fenced = await Kube.connect(kubeconfig)
    try:
        leadership = Leadership(fenced, namespace, LEASE, "fenced", TIMING)
        fence_writes(fenced.api, leadership)
        assert await try_for(leadership, 5)  # the fence lets the Lease's own writes through

        def config_map(name: str) -> dict:
            return {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace},
            }

        await fenced.create(config_map("while-leading"))
        await asyncio.sleep(TIMING.renew_deadline_seconds)  # no renewal
        with pytest.raises(LeadershipLost, match="not leading"):
            await fenced.create(config_map("after-the-deadline"))
        assert await fenced.get("v1", "ConfigMap", namespace, "while-leading") is not None
        assert await kube.get("v1", "ConfigMap", namespace, "after-the-deadline") is None
    finally:
        await fenced.close()
