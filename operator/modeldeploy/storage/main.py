"""`modeldeploy fetch-model`: the model initializer's entry point, and `--print-digest`.

It prints one result line, also written to the termination message file where Kubernetes reads
it: JSON with the digest (and the signer, when a signature was verified) on success, `<Reason>: <message>` on failure (exit code 1). Logs go to
stderr, scrubbed of credentials.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from modeldeploy.api.models import DEFAULT_SIGNATURE
from modeldeploy.storage.digest import model_digest, model_files
from modeldeploy.storage.errors import FetchError
from modeldeploy.storage.fetch import FetchRequest, fetch_model
from modeldeploy.storage.redact import ScrubbingFilter, scrub
from modeldeploy.storage.schemes import Source
from modeldeploy.storage.signature import Trust, Verification
from modeldeploy.storage.termination import FETCH_FAILED, failure_line, success_line

DEFAULT_TERMINATION_LOG = Path("/dev/termination-log")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

log = logging.getLogger(__name__)


def run_fetch_model(
    uri: str,
    dest: Path,
    sha256: str | None = None,
    allow_patterns: Sequence[str] = (),
    termination_log: Path | None = None,
    attempts: int = 5,
    backoff_seconds: float = 1.0,
    progress_interval: float = 5.0,
    verify_key: Path | None = None,
    verify_certificate_chain: Path | None = None,
    signature: str | None = None,
) -> int:
    """Fetch and report; the exit code. The termination message goes to `termination_log`, or to
    /dev/termination-log when that exists (it does in a container)."""
    if termination_log is None and DEFAULT_TERMINATION_LOG.exists():
        termination_log = DEFAULT_TERMINATION_LOG
    with _logging_to_stderr():
        try:
            request = FetchRequest(
                Source(uri, tuple(allow_patterns)),
                dest,
                _expected_sha256(sha256),
                attempts,
                backoff_seconds,
                progress_interval,
                _verification(verify_key, verify_certificate_chain, signature),
            )
            result = fetch_model(request)
        except FetchError as error:
            _report(failure_line(error.reason, scrub(str(error))), sys.stderr, termination_log)
            return 1
        except Exception as error:  # a local failure: disk full, read-only volume, ...
            _report(failure_line(FETCH_FAILED, scrub(f"{error}")), sys.stderr, termination_log)
            return 1
        _report(success_line(result.digest, result.uri, result.signed_by), sys.stdout, termination_log)
        return 0


def run_print_digest(path: Path) -> int:
    """Print the digest --sha256 expects for the model at `path`, a file or a directory."""
    if not path.exists() or (path.is_dir() and not model_files(path)):
        print(f"{path} holds no model files", file=sys.stderr)
        return 1
    print(model_digest(path))
    return 0


def _verification(
    verify_key: Path | None, certificate_chain: Path | None, signature: str | None
) -> Verification | None:
    if verify_key is None and certificate_chain is None:
        if signature is not None:
            raise FetchError("--signature needs --verify-key or --verify-certificate-chain")
        return None
    return Verification(Trust(verify_key, certificate_chain), signature or DEFAULT_SIGNATURE)


def _expected_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    digest = value.lower().removeprefix("sha256:")
    if not _SHA256.match(digest):
        raise FetchError(f"--sha256 must be 64 hexadecimal digits, not {value!r}")
    return digest


def _report(line: str, stream: TextIO, termination_log: Path | None) -> None:
    print(line, file=stream)
    if termination_log is None:
        return
    try:
        termination_log.write_text(line + "\n")
    except OSError as error:
        log.warning("cannot write the termination message to %s: %s", termination_log, error)


@contextmanager
def _logging_to_stderr() -> Iterator[None]:
    """Our INFO and every library's WARNING to stderr, scrubbed, for the duration of one command."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(ScrubbingFilter())
    root, ours = logging.getLogger(), logging.getLogger("modeldeploy")
    levels = root.level, ours.level
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    ours.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(levels[0])
        ours.setLevel(levels[1])
