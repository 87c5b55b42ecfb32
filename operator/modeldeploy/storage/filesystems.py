"""Listing and downloading a model through an fsspec filesystem (S3, GCS, local files)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import aiohttp
from fsspec import AbstractFileSystem

from modeldeploy.storage.errors import FetchError, ModelNotFound

# A model download may take hours: only a connection that stalls is an error.
NETWORK_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)


@dataclass(frozen=True)
class RemoteFile:
    remote_path: str
    relative_path: str
    info: dict[str, Any]


def list_model(fs: AbstractFileSystem, path: str, shown_uri: str) -> list[RemoteFile]:
    """The files of the model at `path`: the object itself, or every object under it as a prefix."""
    root = path.rstrip("/")
    found = fs.find(root, detail=True)
    if list(found) == [root]:
        return [RemoteFile(root, root.rpartition("/")[2], found[root])]
    files = [
        RemoteFile(name, name.removeprefix(root + "/"), info)
        for name, info in sorted(found.items())
        if info.get("type") == "file" and name.startswith(root + "/")
    ]
    if not files:
        raise ModelNotFound(f"{shown_uri} does not exist or holds no files")
    for file in files:
        # Object names are free text: "a/../../b" would be written outside the model directory.
        if ".." in PurePosixPath(file.relative_path).parts or file.relative_path.startswith("/"):
            raise FetchError(
                f"{shown_uri}: object {file.remote_path!r} would be written outside the model directory"
            )
    return files


def identity(files: Sequence[RemoteFile], fields: Sequence[str]) -> str:
    """A digest of the listing: relative paths and the given metadata fields (ETag, generation, ...)."""
    lines = [
        "\t".join([file.relative_path, *(str(file.info.get(field, "")) for field in fields)])
        for file in files
    ]
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def download(fs: AbstractFileSystem, files: Sequence[RemoteFile], staging_dir: Path) -> None:
    local_paths = [staging_dir / file.relative_path for file in files]
    for local_path in local_paths:
        local_path.parent.mkdir(parents=True, exist_ok=True)
    fs.get([file.remote_path for file in files], [str(local_path) for local_path in local_paths])
