"""hf://org/name[@revision] through huggingface_hub's snapshot_download.

The token comes from HF_TOKEN and the Hub from HF_ENDPOINT (a mirror, or a private Hub). A
revision is a branch, a tag or a commit; the default is main.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx2  # huggingface_hub's HTTP client: its transport errors reach us unwrapped
from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import disable_progress_bars

from modeldeploy.storage.errors import AccessDenied, FetchError, ModelNotFound, TransientError
from modeldeploy.storage.redact import redact_uri
from modeldeploy.storage.schemes import Source
from modeldeploy.storage.termination import HUB_ERROR

DEFAULT_REVISION = "main"
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
# snapshot_download keeps its bookkeeping here inside local_dir; it is not part of the model.
_LOCAL_CACHE = Path(".cache", "huggingface")
# What huggingface_hub raises when the Hub's JSON is not shaped as it expects (a mirror, another API version).
_UNEXPECTED_RESPONSE = (TypeError, AttributeError, KeyError, AssertionError, json.JSONDecodeError)


class HubError(FetchError):
    """The Hub, or the mirror at HF_ENDPOINT, answered something huggingface_hub cannot read."""

    reason = HUB_ERROR


class HuggingFace:
    names = ("hf",)
    takes_allow_patterns = True

    def validate(self, source: Source) -> None:
        _repository(source)

    def identify(self, source: Source) -> str:
        repo_id, revision = _repository(source)
        if not _COMMIT.match(revision):
            with _hub_errors(source):
                commit = (
                    HfApi(endpoint=_endpoint(), token=_token()).model_info(repo_id, revision=revision).sha
                )
            revision = str(commit)
        return " ".join(["hf:" + revision, *source.allow_patterns])

    def fetch(self, source: Source, staging_dir: Path, scratch_dir: Path) -> None:
        repo_id, revision = _repository(source)
        disable_progress_bars()  # fetch-model logs its own progress
        with _hub_errors(source):
            snapshot_download(
                repo_id,
                revision=revision,
                local_dir=staging_dir,
                cache_dir=scratch_dir,
                endpoint=_endpoint(),
                token=_token(),
                allow_patterns=list(source.allow_patterns) or None,
            )
        bookkeeping = staging_dir / _LOCAL_CACHE
        if bookkeeping.exists():
            shutil.rmtree(bookkeeping)
            with suppress(OSError):  # kept when the repository has .cache files of its own
                bookkeeping.parent.rmdir()


SCHEME = HuggingFace()


def _repository(source: Source) -> tuple[str, str]:
    repo_id, _, revision = source.uri.split("://", 1)[1].partition("@")
    if not _REPO_ID.match(repo_id.strip("/")) or "@" in revision:
        raise FetchError(
            f"{source.shown} is not a Hugging Face model URI: use hf://org/name or hf://org/name@revision"
        )
    return repo_id.strip("/"), revision or DEFAULT_REVISION


def _endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT")


def _token() -> str | bool:
    # False rather than None: never fall back to a token file in the image.
    return os.environ.get("HF_TOKEN") or False


@contextmanager
def _hub_errors(source: Source) -> Iterator[None]:
    repo_id, revision = _repository(source)
    try:
        yield
    except GatedRepoError as error:
        raise AccessDenied(
            f"{source.shown} is gated: accept its conditions on the Hub for the HF_TOKEN account"
        ) from error
    except RepositoryNotFoundError as error:
        raise ModelNotFound(f"{source.shown} does not exist, or HF_TOKEN has no access to it") from error
    except RevisionNotFoundError as error:
        raise ModelNotFound(f"{source.shown}: revision {revision} does not exist") from error
    except LocalEntryNotFoundError as error:
        # snapshot_download's way of saying the Hub could not be reached or answered 5xx.
        raise TransientError(
            f"{source.shown}: the Hub is unreachable ({error.__cause__ or error})"
        ) from error
    except httpx2.TransportError as error:
        raise TransientError(f"{source.shown}: {error}") from error
    except _UNEXPECTED_RESPONSE as error:
        endpoint = f"{redact_uri(hub)} (HF_ENDPOINT)" if (hub := _endpoint()) else constants.ENDPOINT
        raise HubError(
            f"{endpoint} answered an unexpected response for {repo_id}@{revision}: {error}"
        ) from error
