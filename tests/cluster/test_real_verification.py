"""End to end on the real node, in a namespace that requires verified models: the iris model, signed
at test time with the model-signing library and uploaded to the S3 store, is fetched, verified and
served with its signer in status; the same model with one file changed is refused by the
initializer, naming the file, and its server never starts, so it never answers a request."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import pytest

from modeldeploy.api.verification_policy import REQUIRE_VERIFICATION_LABEL
from modeldeploy.storage.digest import model_digest, model_files
from tests.cluster.conftest import Kubectl
from tests.cluster.harness import ROOT
from tests.cluster.modeldeployments import condition, get, wait_condition
from tests.cluster.real_serving import (
    IRIS_CLASSES,
    ModelStore,
    infer,
    pods,
    served_model,
    service_address,
    wait_for_answer,
)
from tests.model_signatures import SIGNATURE, KeyPair, key_pair, sign_with_key

pytestmark = pytest.mark.e2e

SERVING_TIMEOUT = 180
STORED_MODELS = ROOT / ".cluster" / "models"
KEY_SECRET = "iris-signer"
VERIFICATION = {"publicKey": {"secretName": KEY_SECRET, "key": "signer.pub"}}


def upload(store: ModelStore, directory: Path, prefix: str) -> str:
    """Uploads with the store's reader credentials (allowed every S3 action); returns the URI."""
    import boto3

    data = store.credentials()["stringData"]
    s3 = boto3.client(
        "s3",
        endpoint_url=data["AWS_ENDPOINT_URL"],
        region_name=data["AWS_DEFAULT_REGION"],
        aws_access_key_id=data["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=data["AWS_SECRET_ACCESS_KEY"],
    )
    for path in model_files(directory):
        s3.upload_file(str(directory / path), "models", f"{prefix}/{path}")
    return f"s3://models/{prefix}/"


def key_secret(key: KeyPair) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": KEY_SECRET},
        "data": {"signer.pub": base64.b64encode(key.public.read_bytes()).decode()},
    }


def verified_model(name: str, store: ModelStore, uri: str) -> dict[str, Any]:
    body = served_model(name, store, "iris-v1")
    body["spec"]["model"] |= {"uri": uri, "verification": VERIFICATION}
    return body


def test_a_signed_model_serves_with_its_signer_and_a_tampered_one_never_serves(
    kubectl: Kubectl, namespace: str, store: ModelStore, tmp_path: Path
) -> None:
    signer = key_pair(tmp_path / "keys", "signer")
    signed = shutil.copytree(STORED_MODELS / "iris-v1", tmp_path / "signed")
    sign_with_key(signed, signer)
    tampered = shutil.copytree(signed, tmp_path / "tampered")
    changed = next(path for path in model_files(tampered) if path.endswith(".json") and path != SIGNATURE)
    (tampered / changed).write_text((tampered / changed).read_text().replace("}", ', "x": 1}', 1))
    prefix = namespace.replace(".", "-")
    signed_uri, tampered_uri = (
        upload(store, signed, f"{prefix}/signed"),
        upload(store, tampered, f"{prefix}/tampered"),
    )

    kubectl.run("label", "namespace", namespace, f"{REQUIRE_VERIFICATION_LABEL}=true")
    kubectl.apply(store.credentials(), "-n", namespace)
    kubectl.apply(key_secret(signer), "-n", namespace)
    kubectl.apply(verified_model("iris-tampered", store, tampered_uri), "-n", namespace)
    kubectl.apply(verified_model("iris", store, signed_uri), "-n", namespace)

    body = wait_condition(kubectl, namespace, "iris", "Ready", "True", timeout=SERVING_TIMEOUT)
    model = body["status"]["model"]
    (signed / SIGNATURE).unlink()
    assert model == {
        "uri": signed_uri,
        "resolvedDigest": f"sha256:{model_digest(signed)}",  # the signature is not served
        "verified": True,
        "signedBy": f"key {signer.fingerprint}",
    }
    assert body["status"]["history"][-1]["signedBy"] == f"key {signer.fingerprint}"
    address = service_address(kubectl, namespace, "iris")
    wait_for_answer(address, timeout=30)  # kube-proxy programs the Service a moment after Ready
    assert infer(address) == (200, IRIS_CLASSES)
    assert (
        f"key {signer.fingerprint}"
        in kubectl.run("describe", "modeldeployment", "iris", "-n", namespace).stdout
    )

    refused = wait_condition(
        kubectl, namespace, "iris-tampered", "ModelReady", "False", "SignatureInvalid", SERVING_TIMEOUT
    )
    message = condition(refused, "ModelReady")["message"]
    assert message == f"the model differs from its signature: {changed} changed", message
    assert condition(refused, "Ready")["status"] == "False"
    [pod] = pods(kubectl, namespace, "iris-tampered")
    server = pod["status"]["containerStatuses"][0]
    assert not server["ready"] and "running" not in server["state"] and "terminated" not in server["state"]
    assert server.get("restartCount", 0) == 0
    status, _ = infer_or_refused(service_address(kubectl, namespace, "iris-tampered"))
    assert status != 200
    assert get(kubectl, namespace, "iris-tampered")["status"]["model"].get("verified") is None


def infer_or_refused(address: str) -> tuple[int, Any]:
    """A Service without ready endpoints refuses the connection (kube-proxy rejects it)."""
    try:
        return infer(address, timeout=3)
    except OSError as error:
        return 0, str(error)
