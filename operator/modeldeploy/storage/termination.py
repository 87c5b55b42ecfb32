"""The one line fetch-model leaves in its termination message, and the model state read back from pods.

On success the line is JSON, `{"digest":"sha256:<hex>","uri":"<uri without credentials>"}`, with
`"signedBy":"<signer>"` added when the model's signature was verified; on failure it is
`<Reason>: <message>`. Kubernetes copies it into the pod's
`status.initContainerStatuses[].state.terminated.message`, where `model_state_from_pods` finds it.
Pure: no I/O, no client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from modeldeploy.render.model_volume import FETCH_CONTAINER

MODEL_FETCHED = "ModelFetched"
MODEL_NOT_FOUND = "ModelNotFound"
ACCESS_DENIED = "AccessDenied"
CHECKSUM_MISMATCH = "ChecksumMismatch"
RETRIES_EXHAUSTED = "RetriesExhausted"
HUB_ERROR = "HubError"
FETCH_FAILED = "FetchFailed"
SIGNATURE_INVALID = "SignatureInvalid"
SIGNATURE_MISSING = "SignatureMissing"
FETCHING = "Fetching"
FAILURE_REASONS = (
    MODEL_NOT_FOUND,
    ACCESS_DENIED,
    CHECKSUM_MISMATCH,
    RETRIES_EXHAUSTED,
    HUB_ERROR,
    FETCH_FAILED,
    SIGNATURE_INVALID,
    SIGNATURE_MISSING,
)

# Kubernetes keeps at most 4096 bytes of a termination message.
MESSAGE_LIMIT = 4096
_FAILURE_LINE = re.compile(rf"^({'|'.join(FAILURE_REASONS)}): (.*)$")
# Waiting reasons of a container that is simply on its way to run.
_STARTING = ("", "PodInitializing", "ContainerCreating")


@dataclass(frozen=True)
class ModelState:
    """What the pods say about the model: ready None while nothing is known yet."""

    ready: bool | None
    reason: str
    message: str
    digest: str | None = None
    # Who signed the model, when fetch-model verified its signature.
    signed_by: str | None = None


def success_line(digest: str, uri: str, signed_by: str | None = None) -> str:
    result = {"digest": digest, "uri": uri} | ({"signedBy": signed_by} if signed_by else {})
    return json.dumps(result, separators=(",", ":"))


def failure_line(reason: str, message: str) -> str:
    line = f"{reason}: {' '.join(message.split())}"
    encoded = line.encode()
    if len(encoded) <= MESSAGE_LIMIT:
        return line
    return encoded[: MESSAGE_LIMIT - 3].decode(errors="ignore") + "..."


def model_state_from_pods(pods: list[dict[str, Any]]) -> ModelState:
    """The state of the model across the pods of one revision.

    One pod that fetched the model makes it ready (the digest is the newest pod's); otherwise the
    newest failure wins; otherwise the model is being fetched, or nothing is known yet.
    """
    observations = [seen for pod in pods if (seen := _observe(pod)) is not None]
    fetched = [seen for seen in observations if seen[1].ready is True]
    if fetched:
        newest = max(fetched, key=lambda seen: seen[0])[1]
        digests = sorted({state.digest for _, state in fetched if state.digest})
        if len(digests) > 1:
            return replace(newest, message=f"pods hold different model digests: {', '.join(digests)}")
        return newest
    failed = [seen for seen in observations if seen[1].ready is False]
    if failed:
        return max(failed, key=lambda seen: seen[0])[1]
    if observations:
        return max(observations, key=lambda seen: seen[0])[1]
    return ModelState(None, FETCHING, "no pod has started fetch-model yet")


def _observe(pod: Mapping[str, Any]) -> tuple[str, ModelState] | None:
    """(time, state) of the fetch-model init container of one pod, None when it has no status yet."""
    statuses = (pod.get("status") or {}).get("initContainerStatuses") or []
    status = next((s for s in statuses if s.get("name") == FETCH_CONTAINER), None)
    if status is None:
        return None
    state = status.get("state") or {}
    previous = (status.get("lastState") or {}).get("terminated") or {}
    previous_failure = _from_terminated(previous) if previous.get("exitCode") else None
    if terminated := state.get("terminated"):
        return terminated.get("finishedAt") or "", _from_terminated(terminated)
    if (waiting := state.get("waiting")) is not None:
        if previous_failure is not None:  # CrashLoopBackOff between attempts: the last attempt's error
            return previous.get("finishedAt") or "", previous_failure
        reason = waiting.get("reason") or ""
        if reason in _STARTING:
            return "", ModelState(None, FETCHING, "fetch-model is starting")
        detail = f"{reason}: {waiting['message']}" if waiting.get("message") else reason
        return "", ModelState(False, FETCH_FAILED, f"fetch-model cannot start: {detail}")
    if (running := state.get("running")) is not None:
        message = "fetch-model is fetching the model"
        if previous_failure is not None:
            message += f" again after: {previous_failure.reason}: {previous_failure.message}"
        return running.get("startedAt") or "", ModelState(None, FETCHING, message)
    return None


def _from_terminated(terminated: Mapping[str, Any]) -> ModelState:
    code = terminated.get("exitCode")
    message = terminated.get("message") or ""
    lines = [line.strip() for line in reversed(message.splitlines()) if line.strip()]
    if code == 0:
        for line in lines:
            result = _success(line)
            if result is not None:
                digest, uri, signed_by = result
                message = f"fetched {uri} ({digest})" + (f", signed by {signed_by}" if signed_by else "")
                return ModelState(True, MODEL_FETCHED, message, digest, signed_by)
        return ModelState(True, MODEL_FETCHED, "fetch-model succeeded")
    for line in lines:
        if match := _FAILURE_LINE.match(line):
            return ModelState(False, match[1], match[2])
    detail = f" ({terminated['reason']})" if terminated.get("reason") else ""
    last_line = f": {lines[0]}" if lines else ""
    return ModelState(False, FETCH_FAILED, f"fetch-model exited with code {code}{detail}{last_line}")


def _success(line: str) -> tuple[str, str, str | None] | None:
    try:
        result = json.loads(line)
    except ValueError:
        return None
    if isinstance(result, dict) and isinstance(result.get("digest"), str):
        signed_by = result.get("signedBy")
        return result["digest"], str(result.get("uri", "")), signed_by if isinstance(signed_by, str) else None
    return None
