"""Entrypoint of the sample model server: MLServer serving the model at $MODEL_DIR (default
/mnt/models, where the operator mounts the model read-only), with the server settings of the
image's environment (MLSERVER_HTTP_PORT, ...).

Three changes to how `mlserver start` behaves:

- A model that fails to load is fatal. MLServer alone logs the error, unregisters the model (after
  which /v2/health/ready answers 200, for zero models), stops its servers and exits 0: to
  Kubernetes a container that completed. Here the process exits 1 at once, and its last line on
  stderr, also written to /dev/termination-log when the kubelet provides one, says which model
  failed and why. A model directory without a model-settings.json fails the same way.
- /v2/health/ready answers 503 while no model is registered.
- Open Inference Protocol v2 REST bodies are always JSON: a POST sent as a form (`curl -d`, which
  says application/x-www-form-urlencoded) or with no content type is read as JSON, where MLServer
  alone would answer 422.
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from typing import Any, NoReturn

from mlserver import MLServer
from mlserver.cli.serve import load_settings
from mlserver.logging import configure_logger
from mlserver.utils import install_uvloop_event_loop

TERMINATION_LOG = "/dev/termination-log"
FORM = b"application/x-www-form-urlencoded"


def fail(message: str) -> NoReturn:
    """Exit 1 now, `message` the last line on stderr (no graceful shutdown: nothing was served)."""
    line = f"sample-server: {message}"
    try:
        with open(TERMINATION_LOG, "w") as log:
            log.write(line + "\n")
    except OSError:
        pass  # outside Kubernetes there is none, and /dev is not writable
    sys.stdout.flush()
    print(line, file=sys.stderr, flush=True)
    os._exit(1)


def reason(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


class SampleServerMiddleware:
    """ASGI: JSON bodies whatever the declared content type; not ready without a model."""

    def __init__(self, app: Any, registry: Any) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if scope["method"] == "POST" and dict(scope["headers"]).get(b"content-type", b"") in (b"", FORM):
                headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
            elif scope["path"] == "/v2/health/ready" and not await self.registry.get_models():
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": b'{"error":"no model loaded"}'})
                return
        await self.app(scope, receive, send)


def model_uri(model_settings: Any, model_dir: str) -> str:
    uri = getattr(model_settings.parameters, "uri", None) or "."
    source = getattr(model_settings, "_source", None)
    base = os.path.dirname(source) if source else model_dir
    return os.path.normpath(os.path.join(base, uri))


async def serve(model_dir: str) -> None:
    if not os.path.isdir(model_dir):
        fail(f"no model directory at {model_dir} (MODEL_DIR)")
    try:
        settings, models = await load_settings(model_dir)
    except Exception as error:
        traceback.print_exc()
        fail(f"cannot read the model settings under {model_dir}: {reason(error)}")
    if not models:
        fail(f"no model-settings.json under {model_dir}: nothing to serve")

    server = MLServer(settings)
    registry = server._model_registry
    server._rest_server._app.add_middleware(SampleServerMiddleware, registry=registry)
    load = registry.load

    async def load_or_exit(model_settings: Any) -> Any:
        try:
            return await load(model_settings)
        except Exception as error:
            traceback.print_exc()
            fail(
                f"model {model_settings.name!r} failed to load from {model_uri(model_settings, model_dir)}: {reason(error)}"
            )

    registry.load = load_or_exit
    await server.start(models)


def main() -> None:
    configure_logger()
    install_uvloop_event_loop()
    asyncio.run(serve(os.environ.get("MODEL_DIR", "/mnt/models")))


if __name__ == "__main__":
    main()
