"""`modeldeploy fetch-model` end to end: result lines, the termination message the operator reads
back, exit codes, and no credential in any output."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from modeldeploy.api.models import ModelSource
from modeldeploy.render.model_volume import MODEL_DIR, fetch_args
from modeldeploy.storage.termination import ModelState, model_state_from_pods
from tests.unit.storage_servers import HttpServer, Reply, StaticFiles, run_fetch_cli, sha256_hex

WEIGHTS = b"\x08" * 50000
PASSWORD = "hunter2-basic-auth-password"
SIGNATURE = "f3a9c0ffee-presigned-signature"
ENV_SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "aws-secret-access-key-0123456789",
    "AWS_SESSION_TOKEN": "aws-session-token-0123456789",
    "HF_TOKEN": "hf_token_0123456789abcdef",
}


@pytest.fixture
def files() -> StaticFiles:
    return StaticFiles({"/models/model.onnx": WEIGHTS})


@pytest.fixture
def server(files: StaticFiles) -> Iterator[HttpServer]:
    with HttpServer(files).running() as server:
        yield server


def signed_url(server: HttpServer, path: str) -> str:
    host = server.url.removeprefix("http://")
    return f"http://reader:{PASSWORD}@{host}{path}?X-Amz-Expires=600&X-Amz-Signature={SIGNATURE}"


def pod_terminated_with(exit_code: int, message: str) -> dict:
    status = {"name": "fetch-model", "state": {"terminated": {"exitCode": exit_code, "message": message}}}
    return {"status": {"initContainerStatuses": [status]}}


def test_success_reports_the_digest_to_stdout_and_the_operator(server: HttpServer, tmp_path: Path) -> None:
    run = run_fetch_cli(
        ["--uri", f"{server.url}/models/model.onnx", "--dest", str(tmp_path / "model")],
        tmp_path / "termination",
    )
    line = f'{{"digest":"sha256:{sha256_hex(WEIGHTS)}","uri":"{server.url}/models/model.onnx"}}'
    assert (run.exit_code, run.stdout, run.termination) == (0, line + "\n", line + "\n")
    state = model_state_from_pods([pod_terminated_with(0, run.termination)])
    assert (state.ready, state.reason, state.digest) == (
        True,
        "ModelFetched",
        f"sha256:{sha256_hex(WEIGHTS)}",
    )


def test_failure_reports_one_reason_line_the_operator_reads_back(server: HttpServer, tmp_path: Path) -> None:
    run = run_fetch_cli(
        ["--uri", f"{server.url}/models/gone.onnx", "--dest", str(tmp_path / "model")],
        tmp_path / "termination",
    )
    line = f"ModelNotFound: {server.url}/models/gone.onnx does not exist"
    assert (run.exit_code, run.stdout, run.termination) == (1, "", line + "\n")
    assert run.stderr.splitlines()[-1] == line
    assert model_state_from_pods([pod_terminated_with(1, run.termination)]) == ModelState(
        False, "ModelNotFound", f"{server.url}/models/gone.onnx does not exist"
    )


def test_a_server_unavailable_through_every_attempt_is_read_back_as_retries_exhausted(
    files: StaticFiles, server: HttpServer, tmp_path: Path
) -> None:
    files.scripted[("GET", "/models/model.onnx")] = [Reply(503)] * 2
    run = run_fetch_cli(
        ["--uri", f"{server.url}/models/model.onnx", "--dest", str(tmp_path / "model"), "--attempts", "2"],
        tmp_path / "termination",
    )
    message = (
        f"gave up after 2 attempts over 0s: {server.url}/models/model.onnx: the server answered HTTP 503"
    )
    assert (run.exit_code, run.termination) == (1, f"RetriesExhausted: {message}\n")
    state = model_state_from_pods([pod_terminated_with(1, run.termination)])
    assert state == ModelState(False, "RetriesExhausted", message)


def test_a_malformed_sha256_is_a_clear_failure(server: HttpServer, tmp_path: Path) -> None:
    run = run_fetch_cli(
        ["--uri", f"{server.url}/models/model.onnx", "--dest", str(tmp_path), "--sha256", "abc"],
        tmp_path / "termination",
    )
    assert (run.exit_code, run.termination) == (
        1,
        "FetchFailed: --sha256 must be 64 hexadecimal digits, not 'abc'\n",
    )


def test_uri_and_dest_are_required(tmp_path: Path) -> None:
    run = run_fetch_cli(["--uri", "s3://models/x"], tmp_path / "termination")
    assert run.exit_code == 2
    boxed_text = " ".join(run.stderr.replace("│", " ").split())
    assert "both --uri and --dest are needed, or --print-digest PATH" in boxed_text


def test_credentials_appear_in_no_output(files: StaticFiles, server: HttpServer, tmp_path: Path) -> None:
    files.scripted[("GET", "/models/model.onnx")] = [Reply(503), Reply(body=WEIGHTS, pieces=3, pause=0.1)]
    good = run_fetch_cli(
        [
            "--uri",
            signed_url(server, "/models/model.onnx"),
            "--dest",
            str(tmp_path / "model"),
            "--progress-interval=0.05",
        ],
        tmp_path / "good",
        ENV_SECRETS,
    )
    bad = run_fetch_cli(
        ["--uri", signed_url(server, "/models/gone.onnx"), "--dest", str(tmp_path / "other")],
        tmp_path / "bad",
        ENV_SECRETS,
    )
    assert (good.exit_code, bad.exit_code) == (0, 1)
    assert "retrying" in good.stderr
    assert " written, " in good.stderr
    assert "X-Amz-Signature=REDACTED" in good.stdout
    for secret in (PASSWORD, SIGNATURE, *ENV_SECRETS.values()):
        assert secret not in good.everything() + bad.everything()
        assert secret not in (tmp_path / "model" / ".modeldeploy-digest").read_text()


def test_the_arguments_rendered_for_the_init_container_are_accepted(
    server: HttpServer, tmp_path: Path
) -> None:
    source = ModelSource(uri=f"{server.url}/models/model.onnx", sha256=sha256_hex(WEIGHTS))
    args = [str(tmp_path / "model") if arg == MODEL_DIR else arg for arg in fetch_args(source)]
    assert args[0] == "fetch-model"
    run = run_fetch_cli(args[1:], tmp_path / "termination")
    assert run.exit_code == 0, run.stderr
