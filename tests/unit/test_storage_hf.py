"""hf:// models: huggingface_hub's own snapshot_download against a loopback server that answers
the Hub's endpoints (HF_ENDPOINT)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from modeldeploy.storage.errors import AccessDenied, FetchError, ModelNotFound
from modeldeploy.storage.fetch import fetch_model
from modeldeploy.storage.schemes.hf import HubError
from tests.unit.storage_servers import (
    FakeHub,
    HttpServer,
    Reply,
    manifest_digest,
    model_tree,
    quick_request,
)

REPO = "acme/sentiment"
TOKEN = "hf_private_token_0123456789"
FILES = {
    "config.json": b'{"labels": 3}',
    "model.safetensors": b"\x05" * 20000,
    "onnx/model.onnx": b"\x06" * 5000,
}


@pytest.fixture
def hub() -> FakeHub:
    return FakeHub(REPO, dict(FILES), token=TOKEN)


@pytest.fixture
def server(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpServer]:
    with HttpServer(hub).running() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        yield server


def resolves(server: HttpServer) -> list[str]:
    return [path for _, path in server.requests.seen if "/resolve/" in path]


def test_a_repository_is_fetched_without_hub_bookkeeping(server: HttpServer, tmp_path: Path) -> None:
    result = fetch_model(quick_request(f"hf://{REPO}", tmp_path))
    assert model_tree(tmp_path) == FILES
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == [
        ".modeldeploy-digest",
        ".modeldeploy-lock",
    ]
    assert result.digest == f"sha256:{manifest_digest(FILES)}"


def test_allow_patterns_select_files(server: HttpServer, tmp_path: Path) -> None:
    fetch_model(quick_request(f"hf://{REPO}@main", tmp_path, allow_patterns=["*.json", "onnx/*"]))
    assert set(model_tree(tmp_path)) == {"config.json", "onnx/model.onnx"}


def test_patterns_matching_nothing_are_not_found(server: HttpServer, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match=f"^hf://{REPO} holds no files matching --allow-pattern$"):
        fetch_model(quick_request(f"hf://{REPO}", tmp_path, allow_patterns=["*.gguf"]))


def test_a_rerun_resolves_the_revision_and_downloads_nothing(
    hub: FakeHub, server: HttpServer, tmp_path: Path
) -> None:
    fetch_model(quick_request(f"hf://{REPO}", tmp_path))
    server.requests.clear()
    assert fetch_model(quick_request(f"hf://{REPO}", tmp_path)).downloaded is False
    assert server.requests.seen == [("GET", f"/api/models/{REPO}/revision/main")]
    server.requests.clear()
    assert fetch_model(quick_request(f"hf://{REPO}@{hub.commit}", tmp_path)).downloaded is True
    assert resolves(server)
    server.requests.clear()
    assert fetch_model(quick_request(f"hf://{REPO}@{hub.commit}", tmp_path)).downloaded is False
    assert server.requests.seen == []


def test_a_new_commit_on_the_branch_is_fetched(hub: FakeHub, server: HttpServer, tmp_path: Path) -> None:
    fetch_model(quick_request(f"hf://{REPO}", tmp_path))
    hub.commit = "f" * 40
    hub.files["config.json"] = b'{"labels": 4}'
    assert fetch_model(quick_request(f"hf://{REPO}", tmp_path)).downloaded is True
    assert model_tree(tmp_path)["config.json"] == b'{"labels": 4}'


def test_an_unknown_repository_is_not_found(server: HttpServer, tmp_path: Path) -> None:
    with pytest.raises(
        ModelNotFound, match=r"^hf://acme/missing does not exist, or HF_TOKEN has no access to it$"
    ):
        fetch_model(quick_request("hf://acme/missing", tmp_path))


def test_an_unknown_revision_is_not_found(server: HttpServer, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match=f"^hf://{REPO}@v9: revision v9 does not exist$"):
        fetch_model(quick_request(f"hf://{REPO}@v9", tmp_path))


def test_a_wrong_token_is_access_denied(
    server: HttpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token_0123456789")
    with pytest.raises(AccessDenied, match=f"^access to hf://{REPO} was denied \\(HTTP 401\\)") as raised:
        fetch_model(quick_request(f"hf://{REPO}", tmp_path))
    assert "hf_wrong_token" not in str(raised.value)


JSON = {"Content-Type": "application/json"}
COMMIT = FakeHub(REPO, {}).commit


@pytest.mark.parametrize(
    ("revision", "path", "reply", "words"),
    [
        ("main", f"/api/models/{REPO}/revision/main", Reply(body=b"[]", headers=JSON), "not list"),
        (COMMIT, f"/api/models/{REPO}/tree/{COMMIT}", Reply(body=b'{"files": []}', headers=JSON), "string"),
        ("main", f"/api/models/{REPO}/revision/main", Reply(body=b"<html>Sign in</html>"), "Expecting value"),
    ],
    ids=["a list for the model info", "an object for the file listing", "a web page"],
)
def test_a_hub_answering_an_unexpected_shape_is_a_hub_error_naming_the_endpoint(
    hub: FakeHub, server: HttpServer, tmp_path: Path, revision: str, path: str, reply: Reply, words: str
) -> None:
    hub.replaced[path] = reply
    with pytest.raises(HubError) as raised:
        fetch_model(quick_request(f"hf://{REPO}@{revision}", tmp_path))
    message = str(raised.value)
    expected = f"{server.url} (HF_ENDPOINT) answered an unexpected response for {REPO}@{revision}: "
    assert message.startswith(expected), message
    assert words in message
    asked = [seen for _, seen in server.requests.seen if seen.partition("?")[0] == path]
    assert len(asked) == 1, "not retried"


@pytest.mark.parametrize("uri", ["hf://sentiment", "hf://acme/sentiment/extra", "hf://acme/sentiment@v1@v2"])
def test_malformed_uris_are_refused(uri: str, tmp_path: Path) -> None:
    with pytest.raises(
        FetchError, match=r"is not a Hugging Face model URI: use hf://org/name or hf://org/name@revision$"
    ):
        fetch_model(quick_request(uri, tmp_path))
