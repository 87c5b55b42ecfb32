"""End to end on the real node: `kubectl apply` -> the project's image fetches the model from S3
in the init container -> MLServer loads it -> a prediction through the model's Service.

And the failures a user meets first on a real cluster, reported from real pods.
"""

from __future__ import annotations

import pytest

from tests.cluster.conftest import Kubectl
from tests.cluster.modeldeployments import condition, get, wait_condition, wait_status
from tests.cluster.real_serving import (
    IRIS_CLASSES,
    ModelStore,
    infer,
    pods,
    served_model,
    service_address,
    wait_for_answer,
)
from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.e2e

# A pod on the real node: sandbox, init container (Python start, S3 fetch), MLServer start.
SERVING_TIMEOUT = 180


@pytest.fixture
def models(kubectl: Kubectl, namespace: str, store: ModelStore) -> ModelStore:
    kubectl.apply(store.credentials(), "-n", namespace)
    return store


def test_a_model_from_s3_answers_predictions_through_its_service(
    kubectl: Kubectl, namespace: str, models: ModelStore
) -> None:
    kubectl.apply(served_model("iris", models, "iris-v1"), "-n", namespace)

    body = wait_condition(kubectl, namespace, "iris", "Ready", "True", timeout=SERVING_TIMEOUT)
    assert body["status"]["model"]["resolvedDigest"] == f"sha256:{models.sha256('iris-v1')}"
    assert condition(body, "ModelReady")["reason"] == "ModelFetched", body["status"]
    [pod] = pods(kubectl, namespace, "iris")
    assert pod["spec"]["nodeName"] == "real-1"
    assert pod["spec"]["initContainers"][0]["image"] == "localhost/modeldeploy:dev"
    address = service_address(kubectl, namespace, "iris")
    wait_for_answer(address, timeout=30)
    assert infer(address) == (200, IRIS_CLASSES)


def test_wrong_s3_credentials_are_access_denied(kubectl: Kubectl, namespace: str, store: ModelStore) -> None:
    kubectl.apply(store.credentials(secret_key="not-the-secret"), "-n", namespace)
    kubectl.apply(served_model("iris", store, "iris-v1"), "-n", namespace)

    body = wait_condition(kubectl, namespace, "iris", "ModelReady", "False", "AccessDenied", SERVING_TIMEOUT)
    assert condition(body, "Ready")["status"] == "False"


def test_a_wrong_sha256_is_a_checksum_mismatch(kubectl: Kubectl, namespace: str, models: ModelStore) -> None:
    wrong = "0" * 64
    kubectl.apply(served_model("iris", models, "iris-v1", model={"sha256": wrong}), "-n", namespace)

    body = wait_condition(
        kubectl, namespace, "iris", "ModelReady", "False", "ChecksumMismatch", SERVING_TIMEOUT
    )
    message = condition(body, "ModelReady")["message"]
    assert wrong in message and models.sha256("iris-v1") in message, message


def test_an_image_missing_from_the_node_gives_the_kubelets_reason(
    kubectl: Kubectl, namespace: str, models: ModelStore
) -> None:
    kubectl.apply(
        served_model("iris", models, "iris-v1", runtime={"image": "localhost/modeldeploy-not-built:1"}),
        "-n",
        namespace,
    )

    def pull_failure() -> str | None:
        message = condition(get(kubectl, namespace, "iris"), "Ready").get("message", "")
        return message if "ErrImagePull" in message or "ImagePullBackOff" in message else None

    message = wait_for("the kubelet's image pull failure in Ready", pull_failure, timeout=SERVING_TIMEOUT)
    assert "localhost/modeldeploy-not-built:1" in message, message


def test_a_crashing_canary_gets_no_traffic_and_its_crash_is_shown(
    kubectl: Kubectl, namespace: str, models: ModelStore
) -> None:
    kubectl.apply(served_model("iris", models, "iris-v1"), "-n", namespace)
    wait_condition(kubectl, namespace, "iris", "Ready", "True", timeout=SERVING_TIMEOUT)
    stable = service_address(kubectl, namespace, "iris")

    canary = served_model("iris", models, "iris-crash", rollout={"canary": {"weight": 50}})
    kubectl.apply(canary, "-n", namespace)

    def crash_reported() -> dict | None:
        body = get(kubectl, namespace, "iris")
        messages = " ".join(c.get("message", "") for c in body.get("status", {}).get("conditions", []))
        return body if "CrashLoopBackOff" in messages or "exited with code" in messages else None

    body = wait_for("the canary's crash in the status", crash_reported, timeout=SERVING_TIMEOUT)
    status = body["status"]
    assert status.get("canaryRevision") and status.get("canaryWeight", 0) == 0, status
    # Every request still reaches v1 and is answered.
    for _ in range(20):
        assert infer(stable) == (200, IRIS_CLASSES)
    # The Service provider pins the model's Service to the stable revision while the canary is unready.
    wait_status(kubectl, namespace, "iris", canaryWeight=0)
