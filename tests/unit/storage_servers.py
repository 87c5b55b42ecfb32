"""Real servers on loopback for the storage tests, each recording the requests it answers, and
what the tests expect of a fetch.

- `S3Server`: moto's S3 (and IAM) server app; `enforce_auth()` makes it check signatures.
- `GcsServer`: the gcp-storage-emulator request handler over an in-memory store.
- `HttpServer`: a small HTTP/1.0 server answering from a route function, able to fail, cut a
  body short or send it slowly; `StaticFiles` and `FakeHub` are route functions for it, the latter
  answering the Hugging Face Hub endpoints that `huggingface_hub.snapshot_download` calls.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from modeldeploy.storage.fetch import FetchRequest
from modeldeploy.storage.schemes import Source

REGION = "us-east-1"
ADMIN_KEY = "admin"


@dataclass
class Requests:
    """Requests a server answered, as (method, path) pairs; thread-safe."""

    seen: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, method: str, path: str) -> None:
        with self.lock:
            self.seen.append((method, path))

    def clear(self) -> None:
        with self.lock:
            self.seen.clear()

    def methods(self) -> list[str]:
        with self.lock:
            return [method for method, _ in self.seen]


@contextmanager
def _serving(server: Any) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --------------------------------------------------------------------------- S3 (moto)


class S3Server:
    """moto's server application on a free loopback port."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        class QuietHandler(MotoRequestHandler):
            def log_request(self, code: Any = "-", size: Any = "-") -> None:
                pass

        self.requests = Requests()
        app = DomainDispatcherApplication(create_backend_app)

        def recording_app(environ: dict[str, Any], start_response: Any) -> Any:
            self.requests.record(environ["REQUEST_METHOD"], environ["PATH_INFO"])
            return app(environ, start_response)

        self._server = make_server("127.0.0.1", 0, recording_app, threaded=True, request_handler=QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    @contextmanager
    def running(self) -> Iterator[S3Server]:
        with _serving(self._server):
            try:
                yield self
            finally:
                self._set_auth_threshold("inf")

    def client(self, service: str, key: str = ADMIN_KEY, secret: str = ADMIN_KEY) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )

    def create_reader(self) -> tuple[str, str]:
        """An IAM user allowed to read everything in S3; returns its access key and secret."""
        iam = self.client("iam")
        iam.create_user(UserName="model-reader")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="model-reader", PolicyName="read", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="model-reader")["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def enforce_auth(self) -> None:
        """From now on moto checks access keys and signatures against its IAM users."""
        self._set_auth_threshold("0")

    def _set_auth_threshold(self, unauthenticated_actions: str) -> None:
        request = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth",
            data=unauthenticated_actions.encode(),
            method="POST",
            headers={"Content-Type": "application/octet-stream"},
        )
        urllib.request.urlopen(request).close()


# --------------------------------------------------------------------------- GCS (gcp-storage-emulator)


class GcsServer:
    """gcp-storage-emulator's request handler over an in-memory store, on a free loopback port."""

    def __init__(self) -> None:
        from gcp_storage_emulator.handlers import buckets
        from gcp_storage_emulator.server import RequestHandler
        from gcp_storage_emulator.storage import Storage

        requests = self.requests = Requests()

        class RecordingHandler(RequestHandler):
            def log_request(self, code: Any = "-", size: Any = "-") -> None:
                requests.record(self.command, self.path)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._storage = Storage(use_memory_fs=True)
        self._create_bucket = partial(buckets.create_bucket, storage=self._storage)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), partial(RecordingHandler, self._storage))
        self.host = f"http://127.0.0.1:{self._server.server_port}"

    @contextmanager
    def running(self) -> Iterator[GcsServer]:
        with _serving(self._server):
            yield self

    def upload(self, bucket: str, objects: Mapping[str, bytes]) -> None:
        import gcsfs.core

        self._create_bucket(bucket)
        fs = gcsfs.core.GCSFileSystem(token="anon", endpoint_url=self.host, skip_instance_cache=True)
        for key, body in objects.items():
            fs.pipe(f"{bucket}/{key}", body)


# --------------------------------------------------------------------------- plain HTTP


@dataclass
class Reply:
    """What the HTTP server sends for one request."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Close the connection after this many body bytes, though Content-Length promised all of them.
    cut_after: int | None = None
    # Send the body in this many pieces, pausing `pause` seconds between them.
    pieces: int = 1
    pause: float = 0.0


Route = Callable[[str, str, Mapping[str, str]], Reply]


class HttpServer:
    """A threaded HTTP/1.0 server on a free loopback port answering from `route(method, path, headers)`."""

    def __init__(self, route: Route) -> None:
        requests = self.requests = Requests()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(send_body=True)

            def do_HEAD(self) -> None:
                self._answer(send_body=False)

            def _answer(self, send_body: bool) -> None:
                requests.record(self.command, self.path)
                reply = route(self.command, self.path, self.headers)
                self.send_response(reply.status)
                headers = {"Content-Length": str(len(reply.body)), **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if send_body:
                    self._send_body(reply)

            def _send_body(self, reply: Reply) -> None:
                body = reply.body if reply.cut_after is None else reply.body[: reply.cut_after]
                piece = max(1, -(-len(body) // reply.pieces))
                for start in range(0, len(body), piece):
                    if start:
                        time.sleep(reply.pause)
                    self.wfile.write(body[start : start + piece])
                    self.wfile.flush()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    @contextmanager
    def running(self) -> Iterator[HttpServer]:
        with _serving(self._server):
            yield self


def etag_of(body: bytes) -> str:
    return '"' + hashlib.md5(body).hexdigest() + '"'


@dataclass
class StaticFiles:
    """Serves `files` by path with an ETag; `scripted` replies for a (method, path) go first, one each."""

    files: dict[str, bytes] = field(default_factory=dict)
    scripted: dict[tuple[str, str], list[Reply]] = field(default_factory=dict)

    def __call__(self, method: str, path: str, headers: Mapping[str, str]) -> Reply:
        path = urlsplit(path).path
        if self.scripted.get((method, path)):
            return self.scripted[(method, path)].pop(0)
        if path not in self.files:
            return Reply(status=404, body=b"not found")
        body = self.files[path]
        return Reply(body=body, headers={"ETag": etag_of(body)})


@dataclass
class FakeHub:
    """The Hugging Face Hub endpoints snapshot_download uses, for one model repository.

    Errors carry the Hub's X-Error-Code / X-Error-Message headers, from which huggingface_hub picks
    its exception: unknown repositories answer 401 RepoNotFound (the Hub does not tell a missing
    repository from a private one); with a `token`, another token is refused as invalid.
    `replaced` answers instead of the Hub for a path (without query), as a misconfigured mirror would.
    """

    repo_id: str
    files: dict[str, bytes]
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    branches: tuple[str, ...] = ("main",)
    token: str | None = None
    replaced: dict[str, Reply] = field(default_factory=dict)

    def __call__(self, method: str, path: str, headers: Mapping[str, str]) -> Reply:
        path = unquote(urlsplit(path).path)
        prefix_api = f"/api/models/{self.repo_id}/"
        prefix_file = f"/{self.repo_id}/resolve/"
        if not (path.startswith(prefix_api) or path.startswith(prefix_file)):
            return Reply(401, b'{"error":"Repository not found"}', {"X-Error-Code": "RepoNotFound"})
        if self.token and headers.get("Authorization") != f"Bearer {self.token}":
            invalid = "Invalid credentials in Authorization header"
            return Reply(401, json.dumps({"error": invalid}).encode(), {"X-Error-Message": invalid})
        if path in self.replaced:
            return self.replaced[path]
        if path.startswith(prefix_api + "revision/"):
            return self._revision(path.removeprefix(prefix_api + "revision/"))
        if path.startswith(prefix_api + f"tree/{self.commit}"):
            return self._tree()
        revision, _, filename = path.removeprefix(prefix_file).partition("/")
        if revision != self.commit or filename not in self.files:
            return Reply(404, b'{"error":"Entry not found"}', {"X-Error-Code": "EntryNotFound"})
        body = self.files[filename]
        return Reply(body=body, headers={"X-Repo-Commit": self.commit, "ETag": etag_of(body)})

    def _revision(self, revision: str) -> Reply:
        if revision not in (self.commit, *self.branches):
            return Reply(404, b'{"error":"Invalid rev id"}', {"X-Error-Code": "RevisionNotFound"})
        info = {
            "id": self.repo_id,
            "sha": self.commit,
            "siblings": [{"rfilename": name} for name in self.files],
        }
        return Reply(body=json.dumps(info).encode(), headers={"Content-Type": "application/json"})

    def _tree(self) -> Reply:
        entries = [
            {"type": "file", "path": name, "size": len(body), "oid": hashlib.sha1(body).hexdigest()}
            for name, body in self.files.items()
        ]
        return Reply(body=json.dumps(entries).encode(), headers={"Content-Type": "application/json"})


# --------------------------------------------------------------------------- expectations and runs


def sha256_hex(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def manifest_digest(files: Mapping[str, bytes]) -> str:
    """The documented directory digest, computed here independently of the fetcher."""
    lines = "".join(f"{sha256_hex(files[path])}  {path}\n" for path in sorted(files, key=str.encode))
    return sha256_hex(lines.encode())


def model_tree(root: Path) -> dict[str, bytes]:
    """The model files under `root` (fetch-model's own .modeldeploy-* entries left out)."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and not path.relative_to(root).parts[0].startswith(".modeldeploy-")
    }


def quick_request(uri: str, dest: Path, **overrides: Any) -> FetchRequest:
    """A FetchRequest with test-sized retry pauses."""
    settings: dict[str, Any] = {"attempts": 3, "backoff_seconds": 0.01, "progress_interval": 60.0}
    patterns = tuple(overrides.pop("allow_patterns", ()))
    return FetchRequest(Source(uri, patterns), dest, **(settings | overrides))


@dataclass(frozen=True)
class CliRun:
    exit_code: int
    stdout: str
    stderr: str
    termination: str

    def everything(self) -> str:
        return self.stdout + self.stderr + self.termination


def run_fetch_cli(args: list[str], termination_log: Path, env: Mapping[str, str] | None = None) -> CliRun:
    """`modeldeploy fetch-model ARGS` in this process, with test-sized retry pauses."""
    from typer.testing import CliRunner

    from modeldeploy.cli import app

    result = CliRunner().invoke(
        app,
        ["fetch-model", *args, "--termination-log", str(termination_log), "--backoff", "0.01"],
        env=dict(env or {}),
    )
    termination = termination_log.read_text() if termination_log.exists() else ""
    return CliRun(result.exit_code, result.stdout, result.stderr, termination)
