import asyncio

from modeldeploy.controller.workqueue import BACKOFF_BASE_SECONDS, WorkQueue


async def next_key(queue: WorkQueue, timeout: float = 1.0) -> object:
    return await asyncio.wait_for(queue.get(), timeout)


async def test_a_key_added_twice_is_handed_out_once() -> None:
    queue = WorkQueue()
    queue.add("a")
    queue.add("a")
    assert await next_key(queue) == "a"
    assert len(queue) == 0


async def test_delayed_keys_come_out_in_due_order() -> None:
    queue = WorkQueue()
    queue.add("late", delay=0.05)
    queue.add("now")
    assert await next_key(queue) == "now"
    assert await next_key(queue) == "late"


async def test_an_earlier_schedule_replaces_a_later_one() -> None:
    queue = WorkQueue()
    queue.add("a", delay=60)
    queue.add("a", delay=0)
    assert await next_key(queue) == "a"


async def test_a_key_added_while_active_runs_again_after_done() -> None:
    queue = WorkQueue()
    queue.add("a")
    assert await next_key(queue) == "a"
    queue.add("a")  # an event arrived during the reconcile
    assert len(queue) == 0  # never two reconciles of one object at once
    queue.done("a")
    assert await next_key(queue) == "a"


async def test_failures_back_off_exponentially_until_forgotten() -> None:
    queue = WorkQueue()
    queue.add("a")
    delays = []
    for _ in range(3):
        await next_key(queue)
        delays.append(queue.failed("a"))
        queue.add("a")  # an event makes the retry due at once; the failure count stays
    assert delays == [BACKOFF_BASE_SECONDS, 2 * BACKOFF_BASE_SECONDS, 4 * BACKOFF_BASE_SECONDS]
    await next_key(queue)
    queue.done("a")  # finished, but a success is what resets the backoff
    queue.add("a")
    await next_key(queue)
    assert queue.failed("a") == 8 * BACKOFF_BASE_SECONDS
    queue.add("a")
    await next_key(queue)
    queue.forget("a")
    queue.done("a")
    queue.add("a")
    await next_key(queue)
    assert queue.failed("a") == BACKOFF_BASE_SECONDS


async def test_a_requeue_waits_its_delay_and_an_event_brings_it_forward() -> None:
    queue = WorkQueue()
    queue.add("a")
    await next_key(queue)
    queue.done("a", requeue_after=60)
    assert len(queue) == 1
    queue.add("a")
    assert await next_key(queue) == "a"


async def test_an_object_deleted_and_recreated_while_reconciled_is_never_held_by_two_workers() -> None:
    queue = WorkQueue()
    holders: list[object] = []
    most_at_once = 0
    release = asyncio.Event()
    passes = 0

    async def worker() -> None:
        nonlocal most_at_once, passes
        while True:
            key = await queue.get()
            holders.append(key)
            most_at_once = max(most_at_once, holders.count(key))
            passes += 1
            await release.wait()
            holders.remove(key)
            queue.forget(key)
            queue.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(2)]
    queue.add("a")
    await asyncio.sleep(0.01)  # the first worker holds "a"
    # What the watch handlers do for a GitOps Replace: DELETED, then ADDED at once.
    queue.forget("a")
    queue.add("a")
    queue.add("a")
    await asyncio.sleep(0.05)  # the idle worker had every chance to take "a"
    assert most_at_once == 1
    release.set()
    await asyncio.sleep(0.05)
    assert (most_at_once, passes) == (1, 2)  # the re-created object is reconciled after the first pass
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)
