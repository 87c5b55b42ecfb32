"""Errors a fetch ends with, each carrying the reason the operator reads back from the pod."""

from __future__ import annotations

import asyncio
import errno

import aiohttp

from modeldeploy.storage.termination import (
    ACCESS_DENIED,
    CHECKSUM_MISMATCH,
    FETCH_FAILED,
    MODEL_NOT_FOUND,
    RETRIES_EXHAUSTED,
)

# Local failures that another attempt would meet again.
_PERMANENT_ERRNOS = {
    errno.EINVAL,
    errno.EPERM,
    errno.EACCES,
    errno.ENOENT,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EROFS,
    errno.EISDIR,
    errno.ENOTDIR,
    errno.EEXIST,
    errno.ENAMETOOLONG,
}


class FetchError(Exception):
    """A failure with a one-line message meant for the user."""

    reason = FETCH_FAILED
    transient = False


class ModelNotFound(FetchError):
    reason = MODEL_NOT_FOUND


class AccessDenied(FetchError):
    reason = ACCESS_DENIED


class ChecksumMismatch(FetchError):
    reason = CHECKSUM_MISMATCH


class TransientError(FetchError):
    """Worth another attempt: connection trouble, throttling, a server error."""

    transient = True


class RetriesExhausted(FetchError):
    """A transient error that lasted through every attempt."""

    reason = RETRIES_EXHAUSTED


def classify(error: BaseException, shown_uri: str) -> FetchError:
    """The FetchError for an exception a library raised while fetching `shown_uri`."""
    if isinstance(error, FetchError):
        return error
    status = http_status(error)
    if status is not None:
        return from_http_status(status, shown_uri)
    if isinstance(error, FileNotFoundError):
        return ModelNotFound(f"{shown_uri} does not exist")
    if isinstance(error, PermissionError):
        return AccessDenied(f"access to {shown_uri} was denied: {error}")
    if isinstance(error, (ConnectionError, TimeoutError, asyncio.TimeoutError, aiohttp.ClientError)):
        return TransientError(f"{shown_uri}: {_describe(error)}")
    if isinstance(error, OSError) and error.errno not in _PERMANENT_ERRNOS:
        return TransientError(f"{shown_uri}: {_describe(error)}")
    return FetchError(f"{shown_uri}: {_describe(error)}")


def from_http_status(status: int, shown_uri: str) -> FetchError:
    if status in (404, 410):
        return ModelNotFound(f"{shown_uri} does not exist (HTTP {status})")
    if status in (401, 403):
        return AccessDenied(f"access to {shown_uri} was denied (HTTP {status}): check the credentials")
    if status in (408, 429) or status >= 500:
        return TransientError(f"{shown_uri}: the server answered HTTP {status}")
    return FetchError(f"{shown_uri}: the server answered HTTP {status}")


def http_status(error: BaseException) -> int | None:
    """The HTTP status behind an aiohttp, httpx or gcsfs error, if there is one."""
    candidates = (
        lambda: getattr(error, "status", None),
        lambda: getattr(getattr(error, "response", None), "status_code", None),
        lambda: getattr(error, "code", None),  # asked last: aiohttp deprecates it in favour of status
    )
    for candidate in candidates:
        status = candidate()
        if isinstance(status, int) and 100 <= status < 600:
            return status
    return None


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__
