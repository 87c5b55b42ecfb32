"""The digest of a model: what --sha256 is checked against and what the operator records.

- A model that is one file at the top of its directory: the SHA-256 of that file, as `sha256sum`
  prints it.
- Any other model: the SHA-256 of its manifest, one line `<sha256 of file>  <relative path>\\n` per
  file, sorted by path (byte order of the UTF-8 path, `/` as separator), exactly what
  `sha256sum` prints for those paths.

Files count with their content (a symbolic link as the file it points to); directories and
fetch-model's own top-level entries (names starting with `.modeldeploy-`) do not count.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

RESERVED_PREFIX = ".modeldeploy-"


def file_sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def model_files(root: Path) -> list[str]:
    """Relative paths of the files of the model under `root`, sorted as in the manifest."""
    files = []
    for directory, subdirectories, names in os.walk(root):
        relative = Path(directory).relative_to(root)
        if relative == Path("."):
            subdirectories[:] = [name for name in subdirectories if not name.startswith(RESERVED_PREFIX)]
            names = [name for name in names if not name.startswith(RESERVED_PREFIX)]
        files += [(relative / name).as_posix() for name in names]
    return sorted(files, key=lambda path: path.encode())


def manifest(root: Path) -> str:
    return "".join(f"{file_sha256(root / path)}  {path}\n" for path in model_files(root))


def model_digest(root: Path) -> str:
    """The digest (64 hex digits) of the model at `root`, a file or a directory."""
    if not root.is_dir():
        return file_sha256(root)
    files = model_files(root)
    if len(files) == 1 and "/" not in files[0]:
        return file_sha256(root / files[0])
    return hashlib.sha256(manifest(root).encode()).hexdigest()
