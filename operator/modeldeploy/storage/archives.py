"""Unpacking downloaded archives, refusing members that would land outside the model directory."""

from __future__ import annotations

import os
import platform
import stat
import tarfile
import zipfile
from pathlib import Path, PureWindowsPath

from modeldeploy.storage.errors import FetchError

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ZIP_SUFFIXES = (".zip",)
# tarfile's extraction filters (PEP 706) came with this release; pyproject.toml requires it.
FILTERS_PYTHON = "3.11.4"

# By name, so that this module imports on a Python without them and require_extraction_filters can say so.
_REFUSALS = {
    "AbsolutePathError": "has an absolute path",
    "OutsideDestinationError": "would be written outside the model directory",
    "AbsoluteLinkError": "is a link to an absolute path",
    "LinkOutsideDestinationError": "is a link pointing outside the model directory",
    "SpecialFileError": "is a device or a pipe",
}


class UnsafeArchive(FetchError):
    pass


def require_extraction_filters() -> None:
    """Refuse to fetch on a Python whose tarfile cannot extract safely, naming the Python needed."""
    if not hasattr(tarfile, "data_filter"):
        raise FetchError(
            f"fetch-model needs Python {FILTERS_PYTHON} or newer (tarfile extraction filters);"
            f" this is Python {platform.python_version()}"
        )


def is_archive(name: str) -> bool:
    return name.lower().endswith(TAR_SUFFIXES + ZIP_SUFFIXES)


def unpack(archive: Path, dest: Path, shown_uri: str) -> None:
    """Unpack the tar or zip `archive` into the directory `dest`."""
    try:
        if archive.name.lower().endswith(ZIP_SUFFIXES):
            _unzip(archive, dest, shown_uri)
        else:
            _untar(archive, dest, shown_uri)
    except (tarfile.ReadError, tarfile.CompressionError, zipfile.BadZipFile, EOFError) as error:
        raise FetchError(f"{shown_uri} is not a valid archive: {error}") from error


def _untar(archive: Path, dest: Path, shown_uri: str) -> None:
    def strict_data_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        # The data filter would strip a leading '/' and extract such a member anyway.
        if _is_absolute(member.name):
            raise tarfile.AbsolutePathError(member)
        return tarfile.data_filter(member, path)

    with tarfile.open(archive) as tar:
        try:
            tar.extractall(dest, filter=strict_data_filter)
        except tarfile.FilterError as error:
            refusal = _REFUSALS.get(type(error).__name__, "is unsafe")
            raise UnsafeArchive(f"{shown_uri}: archive member {error.tarinfo.name!r} {refusal}") from error


def _unzip(archive: Path, dest: Path, shown_uri: str) -> None:
    root = os.path.realpath(dest)
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            if _is_absolute(member.filename):
                raise UnsafeArchive(f"{shown_uri}: archive member {member.filename!r} has an absolute path")
            target = os.path.realpath(os.path.join(root, member.filename))
            if not _within(root, target):
                raise UnsafeArchive(
                    f"{shown_uri}: archive member {member.filename!r} would be written outside the model directory"
                )
            if stat.S_ISLNK(member.external_attr >> 16):
                _link(zipped.read(member).decode(), member.filename, root, shown_uri)
            else:
                zipped.extract(member, root)


def _link(link_target: str, name: str, root: str, shown_uri: str) -> None:
    """Create the symbolic link `name` -> `link_target` (zipfile itself would write a text file)."""
    path = os.path.join(root, name)
    pointed = os.path.realpath(os.path.join(os.path.dirname(path), link_target))
    if _is_absolute(link_target) or not _within(root, pointed):
        raise UnsafeArchive(
            f"{shown_uri}: archive member {name!r} is a link pointing outside the model directory"
        )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(link_target, path)


def _is_absolute(name: str) -> bool:
    return name.startswith(("/", "\\")) or PureWindowsPath(name).drive != ""


def _within(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root
