"""gs:// models against gcp-storage-emulator on loopback (STORAGE_EMULATOR_HOST).

The emulator does not check credentials, so access denial is covered by the S3 and HTTP tests.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from modeldeploy.storage.errors import ChecksumMismatch, ModelNotFound
from modeldeploy.storage.fetch import fetch_model
from tests.unit.storage_servers import GcsServer, manifest_digest, model_tree, quick_request, sha256_hex

BUCKET = "models"
TREE = {"config.json": b'{"labels": 3}', "weights/model.onnx": b"\x03\x04" * 5000}
SINGLE = b"single onnx file"


@pytest.fixture(scope="module")
def gcs() -> Iterator[GcsServer]:
    server = GcsServer()
    with server.running():
        objects = {f"sentiment/v7/{name}": body for name, body in TREE.items()}
        server.upload(BUCKET, {**objects, "single/model.onnx": SINGLE})
        yield server


@pytest.fixture
def env(gcs: GcsServer, monkeypatch: pytest.MonkeyPatch) -> GcsServer:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.host)
    gcs.requests.clear()
    return gcs


def downloads(gcs: GcsServer) -> list[str]:
    return [path for _, path in gcs.requests.seen if path.startswith("/download/")]


def test_a_prefix_is_fetched_with_its_tree(env: GcsServer, tmp_path: Path) -> None:
    result = fetch_model(quick_request(f"gs://{BUCKET}/sentiment/v7/", tmp_path))
    assert model_tree(tmp_path) == TREE
    assert result.digest == f"sha256:{manifest_digest(TREE)}"


def test_a_single_object_is_fetched_and_verified(env: GcsServer, tmp_path: Path) -> None:
    fetch_model(quick_request(f"gs://{BUCKET}/single/model.onnx", tmp_path, sha256=sha256_hex(SINGLE)))
    assert model_tree(tmp_path) == {"model.onnx": SINGLE}


def test_a_rerun_downloads_nothing(env: GcsServer, tmp_path: Path) -> None:
    fetch_model(quick_request(f"gs://{BUCKET}/sentiment/v7", tmp_path))
    env.requests.clear()
    assert fetch_model(quick_request(f"gs://{BUCKET}/sentiment/v7", tmp_path)).downloaded is False
    assert env.requests.seen
    assert downloads(env) == []
    request = quick_request(f"gs://{BUCKET}/sentiment/v7", tmp_path, sha256=manifest_digest(TREE))
    env.requests.clear()
    assert fetch_model(request).downloaded is False
    assert env.requests.seen == []


def test_a_missing_object_is_not_found(env: GcsServer, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match=f"^gs://{BUCKET}/sentiment/v8 does not exist or holds no files$"):
        fetch_model(quick_request(f"gs://{BUCKET}/sentiment/v8", tmp_path))


def test_a_checksum_mismatch_leaves_no_model(env: GcsServer, tmp_path: Path) -> None:
    with pytest.raises(ChecksumMismatch, match=f"has sha256 {sha256_hex(SINGLE)}, expected {'1' * 64}$"):
        fetch_model(quick_request(f"gs://{BUCKET}/single/model.onnx", tmp_path, sha256="1" * 64))
    assert model_tree(tmp_path) == {}
