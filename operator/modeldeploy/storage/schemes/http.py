"""http(s)://host/path/file: one file, streamed; a .tar(.gz|.bz2|.xz), .tgz or .zip is unpacked.

The file name is the last segment of the URL path. Presigned URLs work: their signatures never
reach a log or a message.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from fsspec.implementations.http import HTTPFileSystem

from modeldeploy.storage import archives, filesystems
from modeldeploy.storage.errors import FetchError
from modeldeploy.storage.schemes import Source


class Http:
    names = ("http", "https")
    takes_allow_patterns = False

    def validate(self, source: Source) -> None:
        if not urlsplit(source.uri).hostname or not _file_name(source):
            raise FetchError(f"{source.shown} names no file: use http(s)://host/path/file")

    def identify(self, source: Source) -> str | None:
        try:
            info = _filesystem().info(source.uri)
        except Exception:
            # Servers may refuse HEAD (presigned URLs are signed for GET alone); the download
            # itself reports what is really wrong, and without an identity it always happens.
            return None
        if info.get("ETag"):
            return f"etag:{info['ETag']}"
        if info.get("Last-Modified") and info.get("size") is not None:
            return f"last-modified:{info['Last-Modified']}:{info['size']}"
        return None

    def fetch(self, source: Source, staging_dir: Path, scratch_dir: Path) -> None:
        name = _file_name(source)
        if not archives.is_archive(name):
            _filesystem().get_file(source.uri, str(staging_dir / name))
            return
        archive = scratch_dir / name
        _filesystem().get_file(source.uri, str(archive))
        archives.unpack(archive, staging_dir, source.shown)


SCHEME = Http()


def _file_name(source: Source) -> str:
    path = unquote(urlsplit(source.uri).path)
    return "" if path.endswith("/") else PurePosixPath(path).name


def _filesystem() -> HTTPFileSystem:
    # encoded: the URL goes out exactly as given, or presigned signatures would no longer match.
    return HTTPFileSystem(
        encoded=True, client_kwargs={"timeout": filesystems.NETWORK_TIMEOUT}, skip_instance_cache=True
    )
