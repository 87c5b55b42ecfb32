"""A delaying, de-duplicating work queue, as in client-go's workqueue.

kopf delivers watch events; this queue turns them into at most one pending reconcile per
ModelDeployment, never two at once for the same object, with delayed requeues for rollout
timers and exponential backoff for failures (so a broken object cannot cause a retry
storm). It replaces kopf's change-detecting handlers and daemons, which would store state
in annotations and put finalizers on the user's resource.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Hashable

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0


class WorkQueue:
    """Keys wait in `_due` until handed out; a handed-out key is processing until `done`.

    As in client-go, ending the backoff (`forget`) and ending the processing (`done`) are
    separate: whatever happens to the object meanwhile (deleted, re-created), a processing
    key is never handed out again before its worker calls `done`; an `add` in between is
    kept and runs after it.
    """

    def __init__(self) -> None:
        self._due: dict[Hashable, float] = {}
        self._heap: list[tuple[float, int, Hashable]] = []
        self._counter = 0
        self._processing: set[Hashable] = set()
        self._again: dict[Hashable, float] = {}  # keys added while processing: due once done
        self._failures: dict[Hashable, int] = {}
        self._wakeup = asyncio.Event()

    def __len__(self) -> int:
        return len(self._due)

    def add(self, key: Hashable, delay: float = 0.0) -> None:
        """Schedule `key`; an earlier schedule already pending wins."""
        due = time.monotonic() + max(delay, 0.0)
        if key in self._processing:
            self._again[key] = min(due, self._again.get(key, due))
            return
        if key in self._due and self._due[key] <= due:
            return
        self._due[key] = due
        self._counter += 1
        heapq.heappush(self._heap, (due, self._counter, key))
        self._wakeup.set()

    async def get(self) -> Hashable:
        """The next key whose time has come; it is processing until `done`."""
        while True:
            while self._heap and self._due.get(self._heap[0][2]) != self._heap[0][0]:
                heapq.heappop(self._heap)  # superseded by an earlier schedule
            if self._heap:
                due, _, key = self._heap[0]
                wait = due - time.monotonic()
                if wait <= 0:
                    heapq.heappop(self._heap)
                    del self._due[key]
                    self._processing.add(key)
                    return key
            else:
                wait = None
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=wait)

    def done(self, key: Hashable, requeue_after: float | None = None) -> None:
        """Processing of `key` ended: it may be handed out again, at once if it was added
        meanwhile, after `requeue_after` seconds if given."""
        self._processing.discard(key)
        again = self._again.pop(key, None)
        if again is not None:
            self.add(key, again - time.monotonic())
        if requeue_after is not None:
            self.add(key, requeue_after)

    def failed(self, key: Hashable) -> float:
        """Processing ended with an error: retry with exponential backoff. Returns the delay."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay = min(BACKOFF_BASE_SECONDS * 2 ** (failures - 1), BACKOFF_MAX_SECONDS)
        self.done(key, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        """Reset the backoff of `key` (it succeeded, or it is a new object); says nothing
        about whether it is still processing."""
        self._failures.pop(key, None)
