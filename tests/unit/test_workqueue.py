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


async def test_failures_back_off_exponentially_and_success_resets() -> None:
    queue = WorkQueue()
    queue.add("a")
    delays = []
    for _ in range(3):
        await next_key(queue)
        delays.append(queue.failed("a"))
        queue.add("a")  # an event makes the retry due at once; the failure count stays
    assert delays == [BACKOFF_BASE_SECONDS, 2 * BACKOFF_BASE_SECONDS, 4 * BACKOFF_BASE_SECONDS]
    await next_key(queue)
    queue.done("a")
    queue.add("a")
    await next_key(queue)
    assert queue.failed("a") == BACKOFF_BASE_SECONDS


async def test_forget_drops_a_pending_key() -> None:
    queue = WorkQueue()
    queue.add("a", delay=0.01)
    queue.forget("a")
    queue.add("b", delay=0.02)
    assert await next_key(queue) == "b"
