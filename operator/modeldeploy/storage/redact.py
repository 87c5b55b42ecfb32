"""Keeping credentials out of everything fetch-model prints or records."""

from __future__ import annotations

import logging
import os
import re
from urllib.parse import urlsplit, urlunsplit

REDACTED = "REDACTED"
# Query parameters that carry signatures or tokens (presigned S3/GCS URLs, SAS tokens, API keys).
_SECRET_PARAMETER = re.compile(r"sig|token|credential|key|secret|password|auth", re.IGNORECASE)
# Environment variables whose values are secrets (AWS_SECRET_ACCESS_KEY, HF_TOKEN, ...).
_SECRET_VARIABLE = re.compile(r"secret|token|password|key|credential", re.IGNORECASE)
# Trailing punctuation belongs to the sentence around the URL.
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,:;)\]]")
# Shorter values would blank out ordinary words.
_MIN_SECRET_LENGTH = 6


def redact_uri(uri: str) -> str:
    """The URI without user info, fragment and the values of secret-looking query parameters."""
    parts = urlsplit(uri)
    # hf:// URIs use '@' for the revision, not for user info.
    netloc = parts.netloc if parts.scheme == "hf" else parts.netloc.rpartition("@")[2]
    query = (
        "&".join(_redact_parameter(parameter) for parameter in parts.query.split("&")) if parts.query else ""
    )
    if (netloc, query, parts.fragment) == (parts.netloc, parts.query, ""):
        return uri  # as written: urlunsplit would turn "s3:///key" into "s3:/key"
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub(text: str) -> str:
    """`text` with every URL redacted and every secret value from the environment masked."""
    text = _URL.sub(lambda match: redact_uri(match.group()), text)
    secrets = {
        value
        for name, value in os.environ.items()
        if _SECRET_VARIABLE.search(name) and len(value) >= _MIN_SECRET_LENGTH
    }
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


class ScrubbingFilter(logging.Filter):
    """Scrubs every record a handler emits, including those of libraries."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def _redact_parameter(parameter: str) -> str:
    name, separator, _ = parameter.partition("=")
    return f"{name}={REDACTED}" if separator and _SECRET_PARAMETER.search(name) else parameter
