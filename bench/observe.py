"""Seeing when objects reach a state: a watch per phase, timestamped as events arrive.

Polling would put the benchmark's own reads between the measured clients and the API
server, and round every latency to the polling interval; a watch costs one stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

WATCH_SECONDS = 30
EXPIRED = 410


class FirstSeen:
    """Watches one kind of custom object in a namespace from `start()` and records, per
    object name, the first moment (time.monotonic) it satisfied `holds`."""

    def __init__(
        self,
        api: client.CustomObjectsApi,
        group: str,
        version: str,
        plural: str,
        namespace: str,
        holds: Callable[[dict[str, Any]], bool],
    ) -> None:
        self.list_args = (group, version, namespace, plural)
        self.api = api
        self.holds = holds
        self.seen: dict[str, float] = {}
        self.changed = threading.Condition()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"watch-{plural}")
        self.listed = threading.Event()

    def __enter__(self) -> FirstSeen:
        self.thread.start()
        self.listed.wait(timeout=WATCH_SECONDS)
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()

    def wait(self, names: Iterable[str], timeout: float) -> dict[str, float]:
        """The moments for `names`; returns early with what was seen when `timeout` passes."""
        wanted = set(names)
        deadline = time.monotonic() + timeout
        with self.changed:
            while not wanted <= self.seen.keys():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(min(left, 1.0))
            return {name: self.seen[name] for name in wanted if name in self.seen}

    def _see(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        if name not in self.seen and self.holds(obj):
            with self.changed:
                self.seen[name] = time.monotonic()
                self.changed.notify_all()

    def _run(self) -> None:
        resource_version = None
        while not self.stopped.is_set():
            if resource_version is None:
                listing = self.api.list_namespaced_custom_object(*self.list_args)
                for obj in listing["items"]:
                    self._see(obj)
                resource_version = listing["metadata"]["resourceVersion"]
                self.listed.set()
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.api.list_namespaced_custom_object,
                    *self.list_args,
                    resource_version=resource_version,
                    timeout_seconds=WATCH_SECONDS,
                ):
                    if event["type"] == "ERROR":
                        resource_version = None
                        break
                    obj = event["object"]
                    resource_version = obj["metadata"]["resourceVersion"]
                    self._see(obj)
                    if self.stopped.is_set():
                        break
            except ApiException as error:
                if error.status != EXPIRED:
                    raise
                resource_version = None
            finally:
                stream.stop()
