"""Model sources, one module per URI scheme.

Each module here defines `SCHEME`, an object with the `Scheme` interface; adding a scheme is
adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

from modeldeploy.api.models import MOUNTED_URI_SCHEMES
from modeldeploy.storage.errors import FetchError
from modeldeploy.storage.redact import redact_uri


@dataclass(frozen=True)
class Source:
    """What to fetch: a model URI, and for repositories the glob patterns of the files wanted."""

    uri: str
    allow_patterns: tuple[str, ...] = ()

    @property
    def shown(self) -> str:
        """The URI as it may appear in logs and messages."""
        return redact_uri(self.uri)


class Scheme(Protocol):
    names: tuple[str, ...]
    takes_allow_patterns: bool

    def validate(self, source: Source) -> None:
        """Raise FetchError when the URI is malformed for this scheme; no I/O."""

    def identify(self, source: Source) -> str | None:
        """A cheap identity of the source's current content (ETags, a commit), None when there is none."""

    def fetch(self, source: Source, staging_dir: Path, scratch_dir: Path) -> None:
        """Download the model into the empty `staging_dir`; `scratch_dir` takes anything else."""


def scheme_for(source: Source) -> Scheme:
    """The scheme that fetches `source`, after checking the URI."""
    name, separator, _ = source.uri.partition("://")
    name = name.lower() if separator else ""
    if name in MOUNTED_URI_SCHEMES:
        raise FetchError(
            f"{source.shown} is mounted into the server pod, not fetched: fetch-model does not handle {name}:// URIs"
        )
    schemes = _schemes()
    if name not in schemes:
        supported = ", ".join(f"{known}://" for known in sorted(schemes))
        raise FetchError(f"unsupported model URI {source.shown}: use one of {supported}")
    scheme = schemes[name]
    if source.allow_patterns and not scheme.takes_allow_patterns:
        takers = ", ".join(f"{known}://" for known in sorted(schemes) if schemes[known].takes_allow_patterns)
        raise FetchError(f"{source.shown}: --allow-pattern applies only to {takers} URIs")
    scheme.validate(source)
    return scheme


@cache
def _schemes() -> dict[str, Scheme]:
    schemes: dict[str, Scheme] = {}
    for module in pkgutil.iter_modules(__path__):
        scheme: Scheme = importlib.import_module(f"{__name__}.{module.name}").SCHEME
        schemes.update(dict.fromkeys(scheme.names, scheme))
    return schemes
