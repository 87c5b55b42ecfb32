"""http(s):// models against a real HTTP server on loopback: files, archives, failures, retries, progress."""

import io
import logging
import re
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from modeldeploy.storage.archives import UnsafeArchive
from modeldeploy.storage.errors import AccessDenied, FetchError, ModelNotFound, RetriesExhausted
from modeldeploy.storage.fetch import fetch_model, read_marker
from tests.unit.storage_servers import (
    HttpServer,
    Reply,
    StaticFiles,
    manifest_digest,
    model_tree,
    quick_request,
    sha256_hex,
)

WEIGHTS = bytes(range(256)) * 400
TREE = {"config.json": b'{"labels": 3}', "weights/model.onnx": WEIGHTS}


def tar_gz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    return buffer.getvalue()


@pytest.fixture
def files() -> StaticFiles:
    return StaticFiles(
        {
            "/models/model.onnx": WEIGHTS,
            "/models/model.tar.gz": tar_gz(TREE),
            "/models/model.zip": zipped(TREE),
            "/models/evil.tgz": tar_gz({"config.json": b"{}", "../escaped.txt": b"pwned"}),
        }
    )


@pytest.fixture
def server(files: StaticFiles) -> Iterator[HttpServer]:
    with HttpServer(files).running() as server:
        yield server


def gets(server: HttpServer) -> int:
    return server.requests.methods().count("GET")


def test_a_file_is_streamed_and_its_sha256_is_the_digest(server: HttpServer, tmp_path: Path) -> None:
    result = fetch_model(
        quick_request(f"{server.url}/models/model.onnx", tmp_path, sha256=sha256_hex(WEIGHTS))
    )
    assert model_tree(tmp_path) == {"model.onnx": WEIGHTS}
    assert (result.digest, result.downloaded) == (f"sha256:{sha256_hex(WEIGHTS)}", True)


@pytest.mark.parametrize("name", ["model.tar.gz", "model.zip"])
def test_archives_are_unpacked(server: HttpServer, tmp_path: Path, name: str) -> None:
    result = fetch_model(quick_request(f"{server.url}/models/{name}", tmp_path))
    assert model_tree(tmp_path) == TREE
    assert result.digest == f"sha256:{manifest_digest(TREE)}"


def test_an_unchanged_etag_downloads_nothing(server: HttpServer, tmp_path: Path) -> None:
    fetch_model(quick_request(f"{server.url}/models/model.onnx", tmp_path))
    server.requests.clear()
    result = fetch_model(quick_request(f"{server.url}/models/model.onnx", tmp_path))
    assert result.downloaded is False
    assert server.requests.methods() == ["HEAD"]


def test_a_missing_file_is_not_found_and_not_retried(
    server: HttpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ModelNotFound, match=r"/models/missing.onnx does not exist$"):
        fetch_model(quick_request(f"{server.url}/models/missing.onnx", tmp_path))
    assert "retrying" not in caplog.text


def test_a_refusal_is_access_denied_and_not_retried(
    files: StaticFiles, server: HttpServer, tmp_path: Path
) -> None:
    files.scripted[("GET", "/models/model.onnx")] = [Reply(403, b"denied")] * 3
    with pytest.raises(AccessDenied, match=r"access to .*/models/model.onnx was denied \(HTTP 403\)"):
        fetch_model(quick_request(f"{server.url}/models/model.onnx", tmp_path))
    assert gets(server) == 1


def test_server_errors_and_throttling_are_retried(
    files: StaticFiles, server: HttpServer, tmp_path: Path
) -> None:
    files.scripted[("GET", "/models/model.onnx")] = [Reply(503), Reply(429)]
    fetch_model(quick_request(f"{server.url}/models/model.onnx", tmp_path))
    assert model_tree(tmp_path) == {"model.onnx": WEIGHTS}
    assert gets(server) == 3


def test_a_server_unavailable_through_every_attempt_is_reported_as_retries_exhausted(
    files: StaticFiles, server: HttpServer, tmp_path: Path
) -> None:
    files.scripted[("GET", "/models/model.onnx")] = [Reply(503), Reply(429), Reply(503)]
    with pytest.raises(RetriesExhausted) as raised:
        fetch_model(quick_request(f"{server.url}/models/model.onnx", tmp_path, attempts=3))
    assert re.fullmatch(
        rf"gave up after 3 attempts over \d+s: {server.url}/models/model.onnx: the server answered HTTP 503",
        str(raised.value),
    )
    assert gets(server) == 3


def test_an_unreachable_server_is_retried_then_reported(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(
        RetriesExhausted, match=rf"^gave up after 2 attempts over \d+s: http://127.0.0.1:{closed_port}/"
    ):
        fetch_model(quick_request(f"http://127.0.0.1:{closed_port}/model.onnx", tmp_path, attempts=2))


def test_an_interrupted_download_leaves_no_partial_model(
    files: StaticFiles, server: HttpServer, tmp_path: Path
) -> None:
    files.scripted[("GET", "/models/model.onnx")] = [Reply(body=WEIGHTS, cut_after=len(WEIGHTS) // 2)] * 2
    with pytest.raises(RetriesExhausted, match=r"^gave up after 2 attempts over \d+s: "):
        fetch_model(quick_request(f"{server.url}/models/model.onnx", tmp_path, attempts=2))
    assert gets(server) == 2
    assert sorted(path.name for path in tmp_path.iterdir()) == [".modeldeploy-lock"]


def test_a_failed_fetch_keeps_the_model_already_there(
    files: StaticFiles, server: HttpServer, tmp_path: Path
) -> None:
    fetch_model(quick_request(f"{server.url}/models/model.tar.gz", tmp_path))
    marker = read_marker(tmp_path)
    files.scripted[("GET", "/models/model.onnx")] = [Reply(body=WEIGHTS, cut_after=1000)]
    with pytest.raises(RetriesExhausted, match=r"^gave up after 1 attempt over \d+s: "):
        fetch_model(quick_request(f"{server.url}/models/model.onnx", tmp_path, attempts=1))
    assert model_tree(tmp_path) == TREE
    assert read_marker(tmp_path) == marker


def test_a_new_model_replaces_the_old_one_entirely(server: HttpServer, tmp_path: Path) -> None:
    fetch_model(quick_request(f"{server.url}/models/model.tar.gz", tmp_path))
    fetch_model(quick_request(f"{server.url}/models/model.onnx", tmp_path))
    assert model_tree(tmp_path) == {"model.onnx": WEIGHTS}
    assert read_marker(tmp_path).digest == f"sha256:{sha256_hex(WEIGHTS)}"


def test_an_archive_escaping_the_model_directory_is_refused(server: HttpServer, tmp_path: Path) -> None:
    dest = tmp_path / "volume" / "model"
    with pytest.raises(UnsafeArchive, match=r"'../escaped.txt' would be written outside the model directory"):
        fetch_model(quick_request(f"{server.url}/models/evil.tgz", dest))
    assert not (tmp_path / "volume" / "escaped.txt").exists()
    assert model_tree(dest) == {}


def test_progress_is_logged_with_bytes_and_rate(
    files: StaticFiles, server: HttpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files.scripted[("GET", "/models/model.onnx")] = [Reply(body=WEIGHTS, pieces=4, pause=0.15)]
    with caplog.at_level(logging.INFO, logger="modeldeploy"):
        fetch_model(quick_request(f"{server.url}/models/model.onnx", tmp_path, progress_interval=0.1))
    progress = [
        record.getMessage() for record in caplog.records if record.name == "modeldeploy.storage.progress"
    ]
    assert progress
    assert all(line.startswith(f"{server.url}/models/model.onnx: ") for line in progress)
    assert any(" KiB written, " in line and line.endswith("/s") for line in progress)


def test_two_fetchers_sharing_a_volume_download_once(
    files: StaticFiles, server: HttpServer, tmp_path: Path
) -> None:
    files.scripted[("GET", "/models/model.onnx")] = [Reply(body=WEIGHTS, pieces=2, pause=0.2)]
    request = quick_request(f"{server.url}/models/model.onnx", tmp_path, sha256=sha256_hex(WEIGHTS))
    results = []
    fetchers = [threading.Thread(target=lambda: results.append(fetch_model(request))) for _ in range(2)]
    for fetcher in fetchers:
        fetcher.start()
    for fetcher in fetchers:
        fetcher.join()
    assert sorted(result.downloaded for result in results) == [False, True]
    assert gets(server) == 1


def test_a_url_without_a_file_name_is_refused(server: HttpServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"names no file: use http\(s\)://host/path/file$"):
        fetch_model(quick_request(f"{server.url}/models/", tmp_path))
    assert server.requests.methods() == []
