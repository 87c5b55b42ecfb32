"""gs://bucket/object-or-prefix through gcsfs.

Credentials are found as Google's libraries find them (GOOGLE_APPLICATION_CREDENTIALS, workload
identity, the metadata server). With STORAGE_EMULATOR_HOST set, requests go to that emulator,
unauthenticated.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gcsfs.core

from modeldeploy.storage import filesystems
from modeldeploy.storage.errors import AccessDenied, FetchError
from modeldeploy.storage.schemes import Source

# A new generation is a new content; md5Hash is absent for composite objects.
IDENTITY_FIELDS = ("generation", "md5Hash", "size")


class Gcs:
    names = ("gs",)
    takes_allow_patterns = False

    def validate(self, source: Source) -> None:
        if not _path(source).split("/")[0]:
            raise FetchError(f"{source.shown} names no bucket: use gs://bucket/object or gs://bucket/prefix/")

    def identify(self, source: Source) -> str:
        with _forbidden_checked(source):
            files = filesystems.list_model(_filesystem(), _path(source), source.shown)
        return "gs:" + filesystems.identity(files, IDENTITY_FIELDS)

    def fetch(self, source: Source, staging_dir: Path, scratch_dir: Path) -> None:
        fs = _filesystem()
        with _forbidden_checked(source):
            filesystems.download(fs, filesystems.list_model(fs, _path(source), source.shown), staging_dir)


SCHEME = Gcs()


def _path(source: Source) -> str:
    return source.uri.split("://", 1)[1]


def _filesystem() -> gcsfs.core.GCSFileSystem:
    # The plain JSON-API filesystem: gcsfs's default one probes buckets over gRPC, which
    # emulators do not serve, and reading objects needs nothing more.
    token = "anon" if os.environ.get("STORAGE_EMULATOR_HOST") else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "GCS project not set": only listing buckets needs one
        return gcsfs.core.GCSFileSystem(
            token=token, requests_timeout=filesystems.NETWORK_TIMEOUT, skip_instance_cache=True
        )


@contextmanager
def _forbidden_checked(source: Source) -> Iterator[None]:
    try:
        yield
    except OSError as error:
        # gcsfs reports HTTP 403 as a bare OSError("Forbidden: ...").
        if str(error).startswith("Forbidden"):
            raise AccessDenied(f"access to {source.shown} was denied: check the credentials") from error
        raise
