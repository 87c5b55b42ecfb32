"""file:///path: a copy of a local file or directory, for tests and local clusters."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from fsspec.implementations.local import LocalFileSystem

from modeldeploy.storage import filesystems
from modeldeploy.storage.errors import FetchError
from modeldeploy.storage.schemes import Source

# A file's size and modification time change when it is rewritten.
IDENTITY_FIELDS = ("size", "mtime")


class File:
    names = ("file",)
    takes_allow_patterns = False

    def validate(self, source: Source) -> None:
        parts = urlsplit(source.uri)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise FetchError(f"{source.shown} is not a local path: use file:///absolute/path")

    def identify(self, source: Source) -> str:
        files = filesystems.list_model(LocalFileSystem(), _path(source), source.shown)
        return "file:" + filesystems.identity(files, IDENTITY_FIELDS)

    def fetch(self, source: Source, staging_dir: Path, scratch_dir: Path) -> None:
        fs = LocalFileSystem()
        filesystems.download(fs, filesystems.list_model(fs, _path(source), source.shown), staging_dir)


SCHEME = File()


def _path(source: Source) -> str:
    return unquote(urlsplit(source.uri).path)
