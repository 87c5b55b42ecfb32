"""What every fetch does whatever the scheme, shown with file:// sources: skip rules, replacing a
model, leftovers of an interrupted run, and the URIs fetch-model refuses."""

import os
from pathlib import Path

import pytest

from modeldeploy.storage.errors import FetchError, ModelNotFound
from modeldeploy.storage.fetch import fetch_model, read_marker
from tests.unit.storage_servers import manifest_digest, model_tree, quick_request, sha256_hex

TREE = {"config.json": b'{"labels": 3}', "weights/model.onnx": b"\x07" * 3000}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "source"
    for name, body in TREE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return root


def test_a_directory_is_copied_and_its_digest_recorded(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "volume" / "model"
    result = fetch_model(quick_request(source.as_uri(), dest))
    assert model_tree(dest) == TREE
    assert result.digest == f"sha256:{manifest_digest(TREE)}"
    marker = read_marker(dest)
    assert marker is not None
    assert (marker.digest, marker.uri) == (result.digest, source.as_uri())


def test_a_single_file_is_copied(source: Path, tmp_path: Path) -> None:
    weights = source / "weights" / "model.onnx"
    result = fetch_model(quick_request(weights.as_uri(), tmp_path / "model"))
    assert model_tree(tmp_path / "model") == {"model.onnx": TREE["weights/model.onnx"]}
    assert result.digest == f"sha256:{sha256_hex(TREE['weights/model.onnx'])}"


def test_the_same_sha256_skips_without_touching_the_source(source: Path, tmp_path: Path) -> None:
    request = quick_request(source.as_uri(), tmp_path / "model", sha256=manifest_digest(TREE))
    fetch_model(request)
    (source / "config.json").unlink()
    result = fetch_model(request)
    assert (result.downloaded, result.digest) == (False, f"sha256:{manifest_digest(TREE)}")
    assert model_tree(tmp_path / "model") == TREE


def test_without_sha256_an_unchanged_source_is_skipped_and_a_changed_one_fetched(
    source: Path, tmp_path: Path
) -> None:
    request = quick_request(source.as_uri(), tmp_path / "model")
    fetch_model(request)
    assert fetch_model(request).downloaded is False
    (source / "config.json").write_bytes(b'{"labels": 4}')
    os.utime(source / "config.json", ns=(1, 1))
    assert fetch_model(request).downloaded is True
    assert model_tree(tmp_path / "model")["config.json"] == b'{"labels": 4}'


def test_another_sha256_fetches_again_and_replaces_the_old_model(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "model"
    fetch_model(quick_request(source.as_uri(), dest))
    weights = source / "weights" / "model.onnx"
    fetch_model(quick_request(weights.as_uri(), dest, sha256=sha256_hex(weights.read_bytes())))
    assert model_tree(dest) == {"model.onnx": TREE["weights/model.onnx"]}


def test_leftovers_of_an_interrupted_run_are_removed_and_refetched(source: Path, tmp_path: Path) -> None:
    dest = tmp_path / "model"
    (dest / ".modeldeploy-work-killed" / "model").mkdir(parents=True)
    (dest / ".modeldeploy-work-killed" / "model" / "half.bin").write_bytes(b"half")
    (dest / "config.json").write_bytes(b"moved in before the kill, no marker")
    assert fetch_model(quick_request(source.as_uri(), dest, sha256=manifest_digest(TREE))).downloaded is True
    assert model_tree(dest) == TREE
    assert not (dest / ".modeldeploy-work-killed").exists()


def test_a_missing_source_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match=r"/absent does not exist or holds no files$"):
        fetch_model(quick_request((tmp_path / "absent").as_uri(), tmp_path / "model"))


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "pvc://models-claim/sentiment",
            "^pvc://models-claim/sentiment is mounted into the server pod, not fetched: "
            "fetch-model does not handle pvc:// URIs$",
        ),
        (
            "oci://registry.example.com/models/sentiment:v7",
            "^oci://registry.example.com/models/sentiment:v7 is mounted into the server pod, not fetched",
        ),
        (
            "ftp://models.example.com/model.onnx",
            r"^unsupported model URI ftp://models.example.com/model.onnx: use one of file://, gs://, hf://, "
            r"http://, https://, s3://$",
        ),
        ("/data/model.onnx", "^unsupported model URI /data/model.onnx"),
        ("file://server/share/model.onnx", "is not a local path: use file:///absolute/path$"),
    ],
)
def test_uris_that_are_not_fetched_are_refused(uri: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=message):
        fetch_model(quick_request(uri, tmp_path / "model"))
    assert not (tmp_path / "model").exists()


def test_allow_patterns_apply_to_hub_repositories_only(source: Path, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"--allow-pattern applies only to hf:// URIs$"):
        fetch_model(quick_request(source.as_uri(), tmp_path / "model", allow_patterns=["*.onnx"]))


def test_a_destination_that_is_a_file_is_refused(source: Path, tmp_path: Path) -> None:
    occupied = tmp_path / "occupied"
    occupied.write_text("not a directory")
    with pytest.raises(FetchError, match=f"^destination {occupied} is not a directory$"):
        fetch_model(quick_request(source.as_uri(), occupied))
