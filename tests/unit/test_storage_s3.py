"""s3:// models against moto's S3 server on loopback, with signatures checked against its IAM users."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modeldeploy.storage.errors import AccessDenied, ChecksumMismatch, FetchError, ModelNotFound
from modeldeploy.storage.fetch import fetch_model
from tests.unit.storage_servers import S3Server, manifest_digest, model_tree, quick_request, sha256_hex

BUCKET = "models"
TREE = {"config.json": b'{"labels": 3}', "weights/model.onnx": b"\x01\x02" * 5000}
SINGLE = b"single onnx file"


@dataclass(frozen=True)
class S3:
    server: S3Server
    key: str
    secret: str


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    server = S3Server()
    with server.running():
        key, secret = server.create_reader()
        admin = server.client("s3")
        admin.create_bucket(Bucket=BUCKET)
        for name, body in TREE.items():
            admin.put_object(Bucket=BUCKET, Key=f"sentiment/v7/{name}", Body=body)
        admin.put_object(Bucket=BUCKET, Key="sentiment/v7-single/model.onnx", Body=SINGLE)
        admin.put_object(Bucket=BUCKET, Key="escape/../../outside.txt", Body=b"pwned")
        server.enforce_auth()
        yield S3(server, key, secret)


@pytest.fixture
def env(s3: S3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Nothing outside the environment: no profile files, no instance metadata service.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3.server.requests.clear()
    return s3


def object_gets(s3: S3) -> list[str]:
    """Paths of object downloads (listings are GETs of the bucket itself)."""
    return [path for method, path in s3.server.requests.seen if method == "GET" and path != f"/{BUCKET}"]


def test_a_prefix_is_fetched_with_its_tree(env: S3, tmp_path: Path) -> None:
    result = fetch_model(quick_request(f"s3://{BUCKET}/sentiment/v7/", tmp_path / "model"))
    assert model_tree(tmp_path / "model") == TREE
    assert result.digest == f"sha256:{manifest_digest(TREE)}"


def test_a_single_object_is_fetched_and_verified(env: S3, tmp_path: Path) -> None:
    request = quick_request(
        f"s3://{BUCKET}/sentiment/v7-single/model.onnx", tmp_path, sha256=sha256_hex(SINGLE)
    )
    fetch_model(request)
    assert model_tree(tmp_path) == {"model.onnx": SINGLE}


def test_a_rerun_with_the_same_sha256_sends_no_request(env: S3, tmp_path: Path) -> None:
    request = quick_request(f"s3://{BUCKET}/sentiment/v7", tmp_path, sha256=manifest_digest(TREE))
    fetch_model(request)
    env.server.requests.clear()
    assert fetch_model(request).downloaded is False
    assert env.server.requests.seen == []


def test_a_rerun_of_unchanged_objects_lists_but_downloads_nothing(env: S3, tmp_path: Path) -> None:
    fetch_model(quick_request(f"s3://{BUCKET}/sentiment/v7", tmp_path))
    env.server.requests.clear()
    assert fetch_model(quick_request(f"s3://{BUCKET}/sentiment/v7", tmp_path)).downloaded is False
    assert env.server.requests.seen
    assert object_gets(env) == []


def test_a_changed_object_is_fetched_again(env: S3, tmp_path: Path) -> None:
    writer = env.server.client("s3", env.key, env.secret)
    writer.put_object(Bucket=BUCKET, Key="changing/model.onnx", Body=b"first")
    fetch_model(quick_request(f"s3://{BUCKET}/changing/", tmp_path))
    writer.put_object(Bucket=BUCKET, Key="changing/model.onnx", Body=b"second")
    result = fetch_model(quick_request(f"s3://{BUCKET}/changing/", tmp_path))
    assert (result.downloaded, result.digest) == (True, f"sha256:{sha256_hex(b'second')}")
    assert model_tree(tmp_path) == {"model.onnx": b"second"}


def test_a_missing_prefix_is_not_found(env: S3, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ModelNotFound, match=f"^s3://{BUCKET}/sentiment/v8 does not exist or holds no files$"):
        fetch_model(quick_request(f"s3://{BUCKET}/sentiment/v8", tmp_path))
    assert "retrying" not in caplog.text


def test_a_wrong_secret_is_access_denied(
    env: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-0123456789")
    with pytest.raises(AccessDenied, match=f"^access to s3://{BUCKET}/sentiment/v7 was denied") as raised:
        fetch_model(quick_request(f"s3://{BUCKET}/sentiment/v7", tmp_path))
    assert "wrong-secret-0123456789" not in str(raised.value)
    assert "retrying" not in caplog.text


def test_missing_credentials_are_access_denied(
    env: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(
        AccessDenied, match=f"^no credentials for s3://{BUCKET}/sentiment/v7: set AWS_ACCESS_KEY_ID"
    ):
        fetch_model(quick_request(f"s3://{BUCKET}/sentiment/v7", tmp_path))


def test_a_checksum_mismatch_leaves_no_model(env: S3, tmp_path: Path) -> None:
    with pytest.raises(ChecksumMismatch, match=f"has sha256 {manifest_digest(TREE)}, expected {'0' * 64}$"):
        fetch_model(quick_request(f"s3://{BUCKET}/sentiment/v7", tmp_path, sha256="0" * 64))
    assert model_tree(tmp_path) == {}
    assert not (tmp_path / ".modeldeploy-digest").exists()


def test_kserve_style_endpoint_settings_work(
    env: S3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("S3_ENDPOINT", env.server.url.removeprefix("http://"))
    monkeypatch.setenv("S3_USE_HTTPS", "0")
    fetch_model(quick_request(f"s3://{BUCKET}/sentiment/v7-single/model.onnx", tmp_path))
    assert model_tree(tmp_path) == {"model.onnx": SINGLE}


def test_object_names_escaping_the_model_directory_are_refused(env: S3, tmp_path: Path) -> None:
    dest = tmp_path / "volume" / "model"
    with pytest.raises(FetchError, match=r"would be written outside the model directory"):
        fetch_model(quick_request(f"s3://{BUCKET}/escape", dest))
    assert not (tmp_path / "outside.txt").exists()
    assert not (tmp_path / "volume" / "outside.txt").exists()


def test_a_uri_without_bucket_is_refused(env: S3, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"^s3:///model.onnx names no bucket"):
        fetch_model(quick_request("s3:///model.onnx", tmp_path))
