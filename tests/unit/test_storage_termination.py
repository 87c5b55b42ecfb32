"""Reading the model state back from pods: what the operator sees of fetch-model."""

from typing import Any

from modeldeploy.storage.termination import (
    ACCESS_DENIED,
    CHECKSUM_MISMATCH,
    FETCH_FAILED,
    FETCHING,
    HUB_ERROR,
    MESSAGE_LIMIT,
    MODEL_FETCHED,
    MODEL_NOT_FOUND,
    RETRIES_EXHAUSTED,
    ModelState,
    failure_line,
    model_state_from_pods,
    success_line,
)

DIGEST = "sha256:" + "a" * 64
OTHER_DIGEST = "sha256:" + "b" * 64


def pod(state: dict[str, Any], last_state: dict[str, Any] | None = None, name: str = "fetch-model") -> dict:
    status = {"name": name, "state": state, "lastState": last_state or {}, "restartCount": 0}
    return {"metadata": {"name": "sentiment-7f9c2d-abcde"}, "status": {"initContainerStatuses": [status]}}


def terminated(
    exit_code: int, message: str = "", finished_at: str = "2026-01-01T00:00:00Z", **extra: Any
) -> dict:
    return {"terminated": {"exitCode": exit_code, "message": message, "finishedAt": finished_at, **extra}}


def test_nothing_is_known_without_pods_or_statuses() -> None:
    pending_pod = {"metadata": {"name": "p"}, "status": {"phase": "Pending"}}
    other_container = pod({"running": {}}, name="istio-init")
    for pods in ([], [pending_pod], [other_container]):
        state = model_state_from_pods(pods)
        assert (state.ready, state.reason, state.digest) == (None, FETCHING, None)


def test_a_successful_fetch_gives_its_digest() -> None:
    state = model_state_from_pods([pod(terminated(0, success_line(DIGEST, "s3://models/sentiment/v7")))])
    assert state == ModelState(True, MODEL_FETCHED, f"fetched s3://models/sentiment/v7 ({DIGEST})", DIGEST)


def test_each_failure_reason_is_read_back() -> None:
    for reason in (
        MODEL_NOT_FOUND,
        ACCESS_DENIED,
        CHECKSUM_MISMATCH,
        RETRIES_EXHAUSTED,
        HUB_ERROR,
        FETCH_FAILED,
    ):
        state = model_state_from_pods(
            [pod(terminated(1, failure_line(reason, "s3://models/x: it went wrong")))]
        )
        assert state == ModelState(False, reason, "s3://models/x: it went wrong")


def test_the_error_line_is_found_after_log_lines() -> None:
    # terminationMessagePolicy FallbackToLogsOnError hands over the log tail when the file is empty.
    logs = "2026-01-01 INFO fetching s3://models/x into /mnt/models\nModelNotFound: s3://models/x does not exist\n"
    state = model_state_from_pods([pod(terminated(1, logs))])
    assert (state.ready, state.reason, state.message) == (
        False,
        MODEL_NOT_FOUND,
        "s3://models/x does not exist",
    )


def test_a_crash_without_our_message_is_a_fetch_failure() -> None:
    state = model_state_from_pods([pod(terminated(137, reason="OOMKilled"))])
    assert state == ModelState(False, FETCH_FAILED, "fetch-model exited with code 137 (OOMKilled)")


def test_crash_loop_back_off_reports_the_last_attempt() -> None:
    waiting = {
        "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}
    }
    last = terminated(1, failure_line(ACCESS_DENIED, "access to s3://models/x was denied"))["terminated"]
    state = model_state_from_pods([pod(waiting, {"terminated": last})])
    assert state == ModelState(False, ACCESS_DENIED, "access to s3://models/x was denied")


def test_a_container_that_cannot_start_is_a_fetch_failure() -> None:
    waiting = {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "s3-creds" not found'}}
    state = model_state_from_pods([pod(waiting)])
    assert state == ModelState(
        False,
        FETCH_FAILED,
        'fetch-model cannot start: CreateContainerConfigError: secret "s3-creds" not found',
    )


def test_starting_and_running_are_fetching() -> None:
    assert model_state_from_pods([pod({"waiting": {"reason": "PodInitializing"}})]) == ModelState(
        None, FETCHING, "fetch-model is starting"
    )
    running = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    assert model_state_from_pods([pod(running)]) == ModelState(
        None, FETCHING, "fetch-model is fetching the model"
    )
    last = terminated(1, failure_line(FETCH_FAILED, "s3://models/x: the server answered HTTP 503"))
    state = model_state_from_pods([pod(running, last)])
    assert (state.ready, state.reason) == (None, FETCHING)
    assert state.message.endswith("again after: FetchFailed: s3://models/x: the server answered HTTP 503")


def test_one_fetched_pod_makes_the_model_ready_and_the_newest_digest_wins() -> None:
    failed = pod(terminated(1, failure_line(FETCH_FAILED, "boom"), "2026-01-01T00:00:09Z"))
    older = pod(terminated(0, success_line(OTHER_DIGEST, "s3://m/x"), "2026-01-01T00:00:01Z"))
    newer = pod(terminated(0, success_line(DIGEST, "s3://m/x"), "2026-01-01T00:00:05Z"))
    state = model_state_from_pods([failed, older, newer])
    assert (state.ready, state.reason, state.digest) == (True, MODEL_FETCHED, DIGEST)
    assert state.message == f"pods hold different model digests: {DIGEST}, {OTHER_DIGEST}"


def test_the_newest_failure_wins_over_fetching_pods() -> None:
    older = pod(terminated(1, failure_line(ACCESS_DENIED, "denied"), "2026-01-01T00:00:01Z"))
    newer = pod(terminated(1, failure_line(CHECKSUM_MISMATCH, "mismatch"), "2026-01-01T00:00:02Z"))
    running = pod({"running": {"startedAt": "2026-01-01T00:00:03Z"}})
    assert model_state_from_pods([older, running, newer]) == ModelState(False, CHECKSUM_MISMATCH, "mismatch")


def test_failure_lines_are_one_line_within_the_kubernetes_limit() -> None:
    assert failure_line(FETCH_FAILED, "first\nsecond\n") == "FetchFailed: first second"
    long = failure_line(FETCH_FAILED, "é" * 5000)
    assert len(long.encode()) <= MESSAGE_LIMIT
    assert long.endswith("...")
