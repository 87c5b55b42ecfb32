"""`modeldeploy fetch-model --verify-key` on real model-signing signatures made at test time, fetched
from moto's S3 server and a loopback HTTP server: what is served, what is refused, and the one line
the operator reads back."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from modeldeploy.api.models import KeyReference, ModelSource, ModelVerification
from modeldeploy.render.model_volume import MODEL_DIR, VERIFICATION_DIR, fetch_args
from modeldeploy.storage.termination import model_state_from_pods
from tests.model_signatures import (
    SIGNATURE,
    KeyPair,
    certificate_authority,
    key_pair,
    sign_with_certificate,
    sign_with_key,
)
from tests.unit.storage_servers import (
    CliRun,
    HttpServer,
    S3Server,
    StaticFiles,
    manifest_digest,
    model_tree,
    run_fetch_cli,
)
from tests.unit.test_storage_http import tar_gz

BUCKET = "models"
MODEL = {"config.json": b'{"labels": 3}', "weights/model.onnx": b"\x01\x02" * 5000, "README.md": b"iris"}


@dataclass(frozen=True)
class Store:
    s3: S3Server
    signer: KeyPair
    stranger: KeyPair
    signed: Path  # the signed model directory, model.sig at its root

    def upload(self, prefix: str, files: dict[str, bytes]) -> str:
        client = self.s3.client("s3")
        for name, body in files.items():
            client.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body=body)
        return f"s3://{BUCKET}/{prefix}/"


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return root


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    keys = tmp_path_factory.mktemp("keys")
    signer, stranger = (
        key_pair(keys, "signer"),
        key_pair(keys, "stranger", ec.generate_private_key(ec.SECP384R1())),
    )
    signed = write_tree(tmp_path_factory.mktemp("signed"), MODEL)
    sign_with_key(signed, signer)
    s3 = S3Server()
    with s3.running():
        s3.client("s3").create_bucket(Bucket=BUCKET)
        yield Store(s3, signer, stranger, signed)


@pytest.fixture
def env(store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Store:
    monkeypatch.setenv("AWS_ENDPOINT_URL", store.s3.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "admin")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "admin")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return store


def signed_files(store: Store) -> dict[str, bytes]:
    return model_tree(store.signed)


def fetch(uri: str, dest: Path, key: Path, *extra: str) -> CliRun:
    return run_fetch_cli(
        ["--uri", uri, "--dest", str(dest), "--verify-key", str(key), *extra], dest.parent / "termination"
    )


def only_markers(dest: Path) -> bool:
    return all(entry.name.startswith(".modeldeploy-") for entry in dest.iterdir())


def read_back(run: CliRun):  # type: ignore[no-untyped-def]
    status = {
        "name": "fetch-model",
        "state": {"terminated": {"exitCode": run.exit_code, "message": run.termination}},
    }
    return model_state_from_pods([{"status": {"initContainerStatuses": [status]}}])


def test_a_signed_model_is_served_without_its_signature_and_names_its_signer(
    env: Store, tmp_path: Path
) -> None:
    uri = env.upload("good", signed_files(env))
    run = fetch(uri, tmp_path / "model", env.signer.public)
    assert run.exit_code == 0, run.everything()
    assert model_tree(tmp_path / "model") == MODEL  # model.sig is not served
    result = json.loads(run.stdout)
    assert result == {
        "digest": f"sha256:{manifest_digest(MODEL)}",
        "uri": uri,
        "signedBy": f"key {env.signer.fingerprint}",
    }
    state = read_back(run)
    assert (state.ready, state.digest, state.signed_by) == (True, result["digest"], result["signedBy"])
    assert f"signed by key {env.signer.fingerprint}" in state.message


def test_a_tampered_file_is_refused_by_name_and_nothing_is_served(env: Store, tmp_path: Path) -> None:
    files = signed_files(env) | {"weights/model.onnx": b"\x01\x03" * 5000}
    run = fetch(env.upload("tampered", files), tmp_path / "model", env.signer.public)
    line = "SignatureInvalid: the model differs from its signature: weights/model.onnx changed"
    assert (run.exit_code, run.termination, run.stdout) == (1, line + "\n", "")
    assert only_markers(tmp_path / "model")
    state = read_back(run)
    assert (state.ready, state.reason, state.message) == (
        False,
        "SignatureInvalid",
        "the model differs from its signature: weights/model.onnx changed",
    )


def test_an_extra_file_is_refused_by_name(env: Store, tmp_path: Path) -> None:
    run = fetch(
        env.upload("extra", signed_files(env) | {"hook.py": b"import os"}),
        tmp_path / "model",
        env.signer.public,
    )
    assert run.termination == "SignatureInvalid: the model differs from its signature: hook.py not signed\n"
    assert only_markers(tmp_path / "model")


def test_a_missing_file_is_refused_by_name(env: Store, tmp_path: Path) -> None:
    files = {name: body for name, body in signed_files(env).items() if name != "README.md"}
    run = fetch(env.upload("missing-file", files), tmp_path / "model", env.signer.public)
    assert run.termination == "SignatureInvalid: the model differs from its signature: README.md missing\n"


def test_a_model_without_signature_is_refused(env: Store, tmp_path: Path) -> None:
    run = fetch(env.upload("unsigned", MODEL), tmp_path / "model", env.signer.public)
    assert (run.exit_code, run.termination) == (
        1,
        f"SignatureMissing: no signature at {SIGNATURE}: sign the model with model_signing\n",
    )
    assert only_markers(tmp_path / "model")
    assert read_back(run).reason == "SignatureMissing"


def test_a_signature_by_another_key_is_refused(env: Store, tmp_path: Path) -> None:
    run = fetch(env.upload("good-for-stranger", signed_files(env)), tmp_path / "model", env.stranger.public)
    assert (
        run.termination == f"SignatureInvalid: {SIGNATURE} was signed by another key than the trusted one\n"
    )
    assert only_markers(tmp_path / "model")


def test_an_rsa_key_is_refused_saying_what_the_library_supports(env: Store, tmp_path: Path) -> None:
    rsa_key = key_pair(
        tmp_path / "keys", "rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    run = fetch(env.upload("good-for-rsa", signed_files(env)), tmp_path / "model", rsa_key.public)
    assert run.termination.startswith("SignatureInvalid: the verification key is an RSA key; model-signing")


def test_a_signature_stored_beside_the_model_is_fetched_with_the_same_scheme(
    env: Store, tmp_path: Path
) -> None:
    uri = env.upload("detached/model", MODEL)
    signature = env.upload("detached/signatures", {"iris.sig": (env.signed / SIGNATURE).read_bytes()})
    run = fetch(uri, tmp_path / "model", env.signer.public, "--signature", signature + "iris.sig")
    assert run.exit_code == 0, run.everything()
    assert model_tree(tmp_path / "model") == MODEL
    missing = fetch(uri, tmp_path / "other", env.signer.public, "--signature", signature + "absent.sig")
    assert missing.termination == f"SignatureMissing: no signature at {signature}absent.sig\n"
    other_scheme = fetch(uri, tmp_path / "third", env.signer.public, "--signature", "gs://b/iris.sig")
    assert (
        other_scheme.termination
        == f"FetchFailed: --signature gs://b/iris.sig must use the scheme of the model URI {uri}\n"
    )


def test_an_archive_of_a_signed_directory_is_verified_after_unpacking(env: Store, tmp_path: Path) -> None:
    signed = signed_files(env)
    routes = {"/iris.tar.gz": tar_gz(signed), "/tampered.tar.gz": tar_gz(signed | {"config.json": b"{}"})}
    with HttpServer(StaticFiles(routes)).running() as server:
        good = fetch(f"{server.url}/iris.tar.gz", tmp_path / "good", env.signer.public)
        bad = fetch(f"{server.url}/tampered.tar.gz", tmp_path / "bad", env.signer.public)
    assert good.exit_code == 0, good.everything()
    assert model_tree(tmp_path / "good") == MODEL
    assert json.loads(good.stdout)["signedBy"] == f"key {env.signer.fingerprint}"
    assert bad.termination == "SignatureInvalid: the model differs from its signature: config.json changed\n"
    assert only_markers(tmp_path / "bad")


def test_a_certificate_chain_verifies_offline_and_names_the_certificate(env: Store, tmp_path: Path) -> None:
    authority = certificate_authority(tmp_path / "pki", "model-release@example.com")
    model = write_tree(tmp_path / "cert-signed", MODEL)
    sign_with_certificate(model, authority)
    uri = env.upload("certificate", model_tree(model))
    run = run_fetch_cli(
        ["--uri", uri, "--dest", str(tmp_path / "model"), "--verify-certificate-chain", str(authority.root)],
        tmp_path / "termination",
    )
    assert run.exit_code == 0, run.everything()
    assert json.loads(run.stdout)["signedBy"] == f"certificate {authority.subject}"
    stranger = certificate_authority(tmp_path / "other-pki", "someone-else")
    refused = run_fetch_cli(
        ["--uri", uri, "--dest", str(tmp_path / "refused"), "--verify-certificate-chain", str(stranger.root)],
        tmp_path / "termination-refused",
    )
    assert refused.termination.startswith("SignatureInvalid: "), refused.everything()
    assert only_markers(tmp_path / "refused")


def test_a_verified_model_is_not_fetched_again_and_an_unverified_one_is(env: Store, tmp_path: Path) -> None:
    uri = env.upload("again", signed_files(env))
    unverified = run_fetch_cli(["--uri", uri, "--dest", str(tmp_path / "model")], tmp_path / "t1")
    assert "signedBy" not in unverified.stdout
    first = fetch(uri, tmp_path / "model", env.signer.public)
    second = fetch(uri, tmp_path / "model", env.signer.public)
    assert json.loads(first.stdout) == json.loads(second.stdout)
    assert "nothing to fetch" in second.stderr and "nothing to fetch" not in first.stderr


def test_the_arguments_rendered_for_a_verified_model_are_accepted(env: Store, tmp_path: Path) -> None:
    uri = env.upload("rendered", signed_files(env))
    source = ModelSource(
        uri=uri,
        verification=ModelVerification(public_key=KeyReference(secret_name="iris-signer", key="signer.pub")),
    )
    mounted = tmp_path / "verification"
    mounted.mkdir()
    (mounted / "signer.pub").write_bytes(env.signer.public.read_bytes())
    args = [
        str(tmp_path / "model") if arg == MODEL_DIR else arg.replace(VERIFICATION_DIR, str(mounted))
        for arg in fetch_args(source)
    ]
    run = run_fetch_cli(args[1:], tmp_path / "termination")
    assert run.exit_code == 0, run.everything()
    assert json.loads(run.stdout)["signedBy"] == f"key {env.signer.fingerprint}"
