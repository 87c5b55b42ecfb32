"""The model digest: its definition, the shell recipe in docs/storage.md, and --print-digest."""

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modeldeploy.cli import app
from modeldeploy.storage.digest import manifest, model_digest
from tests.unit.storage_servers import manifest_digest, sha256_hex

FILES = {
    "config.json": b'{"labels": 3}',
    "weights/model.onnx": b"\x00\x01" * 1000,
    "weights/Z-upper.bin": b"upper",
    "tokenizer/vocab.txt": "é\n".encode(),
}


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return root


def test_a_directory_digest_is_the_sha256_of_its_sorted_manifest(tmp_path: Path) -> None:
    root = write_tree(tmp_path, FILES)
    (root / ".modeldeploy-digest").write_text("{}")
    (root / ".modeldeploy-work-x").mkdir()
    (root / ".modeldeploy-work-x" / "partial").write_bytes(b"ignored")
    assert manifest(root).splitlines()[0] == f"{sha256_hex(FILES['config.json'])}  config.json"
    assert model_digest(root) == manifest_digest(FILES)


def test_a_single_top_level_file_is_its_own_sha256(tmp_path: Path) -> None:
    body = b"onnx bytes"
    write_tree(tmp_path, {"model.onnx": body})
    assert model_digest(tmp_path) == sha256_hex(body) == model_digest(tmp_path / "model.onnx")
    nested = write_tree(tmp_path / "nested", {"sub/model.onnx": body})
    assert model_digest(nested) == manifest_digest({"sub/model.onnx": body})


def test_symbolic_links_count_as_the_file_they_point_to(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"weights/model.onnx": b"w", "config.json": b"c"})
    (root / "latest.onnx").symlink_to("weights/model.onnx")
    assert model_digest(root) == manifest_digest(
        {"weights/model.onnx": b"w", "config.json": b"c", "latest.onnx": b"w"}
    )


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs coreutils")
def test_the_documented_shell_recipe_gives_the_same_digest(tmp_path: Path) -> None:
    root = write_tree(tmp_path, FILES)
    recipe = "find . -type f ! -path './.modeldeploy-*' -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum"
    shell = subprocess.run(["sh", "-c", recipe], cwd=root, capture_output=True, text=True, check=True)
    assert shell.stdout.split()[0] == model_digest(root)


def test_print_digest_prints_what_sha256_expects(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "model", FILES)
    result = CliRunner().invoke(app, ["fetch-model", "--print-digest", str(root)])
    assert (result.exit_code, result.stdout) == (0, manifest_digest(FILES) + "\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["fetch-model", "--print-digest", str(empty)])
    assert (result.exit_code, result.stderr) == (1, f"{empty} holds no model files\n")
