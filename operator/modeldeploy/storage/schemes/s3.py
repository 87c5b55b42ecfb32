"""s3://bucket/key-or-prefix through s3fs, for AWS S3 and S3-compatible stores (MinIO, Ceph, R2, ...).

Credentials come from the environment as botocore reads it (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, web identity, ...). The endpoint of an S3-compatible
store comes from AWS_ENDPOINT_URL, or from S3_ENDPOINT (a URL, or host:port with S3_USE_HTTPS=0
for plain HTTP, as KServe spells it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import s3fs
from botocore.exceptions import NoCredentialsError

from modeldeploy.storage import filesystems
from modeldeploy.storage.errors import AccessDenied, FetchError
from modeldeploy.storage.schemes import Source

# An object's ETag and version change whenever its content does.
IDENTITY_FIELDS = ("ETag", "VersionId", "size")


class S3:
    names = ("s3",)
    takes_allow_patterns = False

    def validate(self, source: Source) -> None:
        if not _path(source).split("/")[0]:
            raise FetchError(f"{source.shown} names no bucket: use s3://bucket/key or s3://bucket/prefix/")

    def identify(self, source: Source) -> str:
        with _credentials_checked(source):
            files = filesystems.list_model(_filesystem(), _path(source), source.shown)
        return "s3:" + filesystems.identity(files, IDENTITY_FIELDS)

    def fetch(self, source: Source, staging_dir: Path, scratch_dir: Path) -> None:
        fs = _filesystem()
        with _credentials_checked(source):
            filesystems.download(fs, filesystems.list_model(fs, _path(source), source.shown), staging_dir)


SCHEME = S3()


def _path(source: Source) -> str:
    return source.uri.split("://", 1)[1]


def _filesystem() -> s3fs.S3FileSystem:
    endpoint = _endpoint()
    return s3fs.S3FileSystem(
        client_kwargs={"endpoint_url": endpoint} if endpoint else {}, skip_instance_cache=True
    )


def _endpoint() -> str | None:
    if url := os.environ.get("AWS_ENDPOINT_URL"):
        return url
    host = os.environ.get("S3_ENDPOINT")
    if not host or "://" in host:
        return host
    scheme = "http" if os.environ.get("S3_USE_HTTPS") == "0" else "https"
    return f"{scheme}://{host}"


@contextmanager
def _credentials_checked(source: Source) -> Iterator[None]:
    try:
        yield
    except NoCredentialsError as error:
        raise AccessDenied(
            f"no credentials for {source.shown}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "in the model's credentials secret"
        ) from error
