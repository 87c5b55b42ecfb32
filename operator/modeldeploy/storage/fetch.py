"""Fetching a model into a directory: skip when it is already there, retry what is transient,
verify (checksum, signature), and put it in place only when complete.

The destination is normally a volume's mount point, which cannot be renamed; so the download goes
to a hidden work directory inside it (`.modeldeploy-work-*`, on the same filesystem), and once
verified its entries are renamed into place. The marker file `.modeldeploy-digest`, written last,
says the destination holds a complete model: without it, nothing there counts. A lock file keeps
two fetchers sharing a volume from interleaving.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from modeldeploy.storage.archives import require_extraction_filters
from modeldeploy.storage.digest import RESERVED_PREFIX, model_digest, model_files
from modeldeploy.storage.errors import ChecksumMismatch, FetchError, ModelNotFound, RetriesExhausted, classify
from modeldeploy.storage.progress import Progress
from modeldeploy.storage.schemes import Scheme, Source, scheme_for
from modeldeploy.storage.signature import SignatureMissing, Verification, signature_inside, verify_model

MARKER = RESERVED_PREFIX + "digest"
LOCK = RESERVED_PREFIX + "lock"
WORK_PREFIX = RESERVED_PREFIX + "work-"
MAX_BACKOFF_SECONDS = 60.0

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class FetchRequest:
    source: Source
    dest: Path
    sha256: str | None = None
    attempts: int = 5
    backoff_seconds: float = 1.0
    progress_interval: float = 5.0
    verification: Verification | None = None


@dataclass(frozen=True)
class Marker:
    """What a completed fetch left in the destination."""

    digest: str
    uri: str
    identity: str | None
    signed_by: str | None = None


@dataclass(frozen=True)
class FetchResult:
    digest: str
    uri: str
    downloaded: bool
    signed_by: str | None = None


def fetch_model(request: FetchRequest) -> FetchResult:
    """Make `request.dest` hold the model of `request.source`, and say which digest it has."""
    require_extraction_filters()
    scheme = scheme_for(request.source)
    shown = request.source.shown
    if request.dest.exists() and not request.dest.is_dir():
        raise FetchError(f"destination {request.dest} is not a directory")
    request.dest.mkdir(parents=True, exist_ok=True)
    with _locked(request.dest):
        for stale in request.dest.glob(WORK_PREFIX + "*"):
            shutil.rmtree(stale)
        marker = read_marker(request.dest)
        if request.verification and marker and marker.signed_by is None:
            marker = None  # what is there was never verified
        if request.sha256 and marker and marker.digest == f"sha256:{request.sha256}":
            log.info("%s already holds %s; nothing to fetch", request.dest, marker.digest)
            return FetchResult(marker.digest, shown, downloaded=False, signed_by=marker.signed_by)
        identity = _attempt(lambda: scheme.identify(request.source), request)
        if not request.sha256 and identity and marker and (marker.uri, marker.identity) == (shown, identity):
            log.info("%s already holds %s of %s; nothing to fetch", request.dest, marker.digest, shown)
            return FetchResult(marker.digest, shown, downloaded=False, signed_by=marker.signed_by)
        marker = _download(scheme, request, identity)
    return FetchResult(marker.digest, shown, downloaded=True, signed_by=marker.signed_by)


def read_marker(dest: Path) -> Marker | None:
    try:
        return Marker(**json.loads((dest / MARKER).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _download(scheme: Scheme, request: FetchRequest, identity: str | None) -> Marker:
    shown = request.source.shown
    work = Path(tempfile.mkdtemp(prefix=WORK_PREFIX, dir=request.dest))
    try:
        staging, scratch = work / "model", work / "scratch"
        staging.mkdir()
        scratch.mkdir()
        log.info("fetching %s into %s", shown, request.dest)
        started = time.monotonic()
        with Progress(work, shown, request.progress_interval):
            _attempt(lambda: scheme.fetch(request.source, staging, scratch), request)
        signed_by = _verified_signer(staging, work, request)
        marker = Marker(_verified_digest(staging, request), shown, identity, signed_by)
        _move_into_place(staging, request.dest)
        _write_marker(request.dest, marker)
        log.info("fetched %s (%s) in %.1f s", shown, marker.digest, time.monotonic() - started)
        return marker
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _attempt(action: Callable[[], T], request: FetchRequest) -> T:
    """Run `action`, again after a growing pause while it fails with a transient error."""
    started = time.monotonic()
    attempt = 1
    while True:
        try:
            return action()
        except Exception as raised:
            error = classify(raised, request.source.shown)
            if not error.transient:
                raise error from raised
            if attempt >= request.attempts:
                tries = f"{attempt} attempt" + ("s" if attempt > 1 else "")
                elapsed = round(time.monotonic() - started)
                raise RetriesExhausted(f"gave up after {tries} over {elapsed}s: {error}") from raised
            pause = min(request.backoff_seconds * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
            log.warning(
                "attempt %d of %d failed: %s; retrying in %.1f s", attempt, request.attempts, error, pause
            )
            time.sleep(pause)
            attempt += 1


def _verified_signer(staging: Path, work: Path, request: FetchRequest) -> str | None:
    """Check the fetched model against its signature, which is then no part of the served model."""
    verification = request.verification
    if verification is None:
        return None
    if not verification.signature_is_remote:
        return verify_model(staging, signature_inside(staging, verification.signature), verification.trust)
    source = Source(verification.signature)
    if source.uri.partition("://")[0] != request.source.uri.partition("://")[0]:
        raise FetchError(
            f"--signature {source.shown} must use the scheme of the model URI {request.source.shown}"
        )
    fetched, scratch = work / "signature", work / "signature-scratch"
    fetched.mkdir()
    scratch.mkdir()
    signature_scheme = scheme_for(source)
    try:
        _attempt(lambda: signature_scheme.fetch(source, fetched, scratch), request)
    except ModelNotFound as missing:
        raise SignatureMissing(f"no signature at {source.shown}") from missing
    files = model_files(fetched)
    if len(files) != 1:
        raise SignatureMissing(f"{source.shown} is not one signature file but holds {len(files)} files")
    return verify_model(staging, fetched / files[0], verification.trust)


def _verified_digest(staging: Path, request: FetchRequest) -> str:
    shown = request.source.shown
    if not model_files(staging):
        raise ModelNotFound(
            f"{shown} holds no files" + (" matching --allow-pattern" if request.source.allow_patterns else "")
        )
    digest = model_digest(staging)
    if request.sha256 and digest != request.sha256:
        raise ChecksumMismatch(f"{shown} has sha256 {digest}, expected {request.sha256}")
    return f"sha256:{digest}"


def _move_into_place(staging: Path, dest: Path) -> None:
    # The marker goes first, so that a half-replaced destination never passes for a complete model.
    (dest / MARKER).unlink(missing_ok=True)
    for entry in dest.iterdir():
        if entry.name.startswith(RESERVED_PREFIX):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for entry in staging.iterdir():
        entry.rename(dest / entry.name)


def _write_marker(dest: Path, marker: Marker) -> None:
    partial = dest / (MARKER + ".partial")
    partial.write_text(json.dumps(asdict(marker)))
    partial.replace(dest / MARKER)


@contextmanager
def _locked(dest: Path) -> Iterator[None]:
    with (dest / LOCK).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
