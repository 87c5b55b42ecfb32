"""Verified models against a real API server and the session's operator: a namespace that requires
verification refuses unsigned models naming its policy, and lets them in once the label goes; a
verified model's pods carry the trusted key for the initializer only."""

from __future__ import annotations

from typing import Any

import pytest

from modeldeploy.api.verification_policy import REQUIRE_VERIFICATION_LABEL
from modeldeploy.render.model_volume import VERIFICATION_DIR, VERIFICATION_VOLUME
from tests.cluster.conftest import Kubectl
from tests.cluster.modeldeployments import children, condition, manifest, wait_condition
from tests.cluster.waiting import wait_for

pytestmark = pytest.mark.usefixtures("operator")

VERIFICATION = {"publicKey": {"secretName": "iris-signer", "key": "signer.pub"}}


def events(kubectl: Kubectl, namespace: str, reason: str) -> list[dict[str, Any]]:
    return kubectl.json("get", "events", "-n", namespace, "--field-selector", f"reason={reason}")["items"]


def test_a_namespace_requiring_verification_refuses_unsigned_models_until_the_label_goes(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl.run("label", "namespace", namespace, f"{REQUIRE_VERIFICATION_LABEL}=true")
    kubectl.apply(manifest("unsigned"), "-n", namespace)
    kubectl.apply(manifest("signed", model={"verification": VERIFICATION}), "-n", namespace)

    body = wait_condition(kubectl, namespace, "unsigned", "Ready", "False", "VerificationRequired")
    message = condition(body, "Ready")["message"]
    assert message == (
        f"namespace {namespace} requires verified models (label {REQUIRE_VERIFICATION_LABEL}=true): "
        "set spec.model.verification (a public key and the model's model-signing signature)"
    )
    assert children(kubectl, namespace, "unsigned", "deployments") == []
    (event,) = wait_for("the refusal's event", lambda: events(kubectl, namespace, "VerificationRequired"))
    assert (event["type"], event["involvedObject"]["name"], event["message"]) == (
        "Warning",
        "unsigned",
        message,
    )

    (deployment,) = wait_for(
        "the signed model's Deployment", lambda: children(kubectl, namespace, "signed", "deployments")
    )
    pod = deployment["spec"]["template"]["spec"]
    fetcher = pod["initContainers"][0]
    assert fetcher["args"][-2:] == ["--verify-key", f"{VERIFICATION_DIR}/signer.pub"]
    assert {"name": VERIFICATION_VOLUME, "mountPath": VERIFICATION_DIR, "readOnly": True} in fetcher[
        "volumeMounts"
    ]
    volume = next(v for v in pod["volumes"] if v["name"] == VERIFICATION_VOLUME)
    assert volume["secret"]["secretName"] == "iris-signer"
    assert all(m["name"] != VERIFICATION_VOLUME for m in pod["containers"][0].get("volumeMounts", []))

    kubectl.run("label", "namespace", namespace, f"{REQUIRE_VERIFICATION_LABEL}-")
    wait_for(
        "the unsigned model's Deployment", lambda: children(kubectl, namespace, "unsigned", "deployments")
    )


def test_a_mounted_model_under_the_policy_is_refused_saying_it_cannot_be_verified(
    kubectl: Kubectl, namespace: str
) -> None:
    kubectl.run("label", "namespace", namespace, f"{REQUIRE_VERIFICATION_LABEL}=true")
    kubectl.apply(manifest("on-a-claim", model={"uri": "pvc://models/iris"}), "-n", namespace)

    body = wait_condition(kubectl, namespace, "on-a-claim", "Ready", "False", "VerificationRequired")
    assert (
        "pvc:// models are mounted, not fetched, and cannot be verified"
        in condition(body, "Ready")["message"]
    )
