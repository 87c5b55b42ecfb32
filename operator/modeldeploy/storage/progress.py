"""Progress of a long download in the log: bytes written so far and the rate, at a steady interval.

It watches the bytes on disk rather than hooking into each library, so every scheme reports the
same way (huggingface_hub, s3fs, gcsfs and the HTTP client all write as they receive).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


class Progress:
    """Logs the size of `root` and the rate it grows at every `interval` seconds, while entered."""

    def __init__(self, root: Path, label: str, interval: float) -> None:
        self._root = root
        self._label = label
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._report, name="fetch-progress", daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _report(self) -> None:
        last_size, last_time = 0, time.monotonic()
        while not self._stop.wait(self._interval):
            size, now = tree_size(self._root), time.monotonic()
            rate = (size - last_size) / (now - last_time)
            log.info("%s: %s written, %s/s", self._label, human_size(size), human_size(max(rate, 0)))
            last_size, last_time = size, now


def tree_size(root: Path) -> int:
    total = 0
    for directory, _, names in os.walk(root):
        for name in names:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except FileNotFoundError:  # renamed or removed by the download meanwhile
                continue
    return total


def human_size(size: float) -> str:
    for unit in _UNITS[:-1]:
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} {_UNITS[-1]}"
