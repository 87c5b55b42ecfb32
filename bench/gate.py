"""Flagger's manual gates, played by the benchmark: the equivalent of a GitOps commit that
sets the canary weight.

Flagger moves a canary to its next weight step only after its `confirm-traffic-increase`
webhook answers 200; each Canary's weight webhook gets as many approvals as the benchmark
has granted it, and its promotion webhook none, so Flagger stops at the weight the
operator is told to route.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

APPROVED, REFUSED = 200, 403


class Gate:
    def __init__(self) -> None:
        self.granted: Counter[str] = Counter()
        self.used: Counter[str] = Counter()
        self.lock = threading.Lock()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = f"{payload['namespace']}/{payload['name']}"
                approved = self.path == "/weight" and gate._take(key)
                self.send_response(APPROVED if approved else REFUSED)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Flagger asks every interval; the benchmark's output stays readable."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Gate:
        threading.Thread(target=self.server.serve_forever, daemon=True, name="flagger-gate").start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()

    def approve_step(self, namespace: str, name: str) -> None:
        """Let this Canary move one more weight step."""
        with self.lock:
            self.granted[f"{namespace}/{name}"] += 1

    def _take(self, key: str) -> bool:
        with self.lock:
            if self.used[key] < self.granted[key]:
                self.used[key] += 1
                return True
            return False
