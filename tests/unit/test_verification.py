"""Verified models outside the initializer: the pod it renders, the policy that requires it, and
what status and events say."""

from __future__ import annotations

from typing import Any

import pytest

from modeldeploy.api.models import (
    Condition,
    HistoryEntry,
    ModelDeployment,
    ModelDeploymentStatus,
    ModelSource,
    ResolvedModel,
)
from modeldeploy.api.verification_policy import REQUIRE_VERIFICATION_LABEL, VerificationPolicy
from modeldeploy.render.model_volume import VERIFICATION_DIR, VERIFICATION_VOLUME, model_volume
from modeldeploy.storage.model_status import history_with_signer, model_events, resolved_model
from modeldeploy.storage.termination import ModelState

SIGNER = "key sha256:" + "ab" * 32
VERIFICATION = {"publicKey": {"secretName": "iris-signer", "key": "signer.pub"}}


def deployment(model: dict[str, Any], namespace: str = "ml") -> ModelDeployment:
    return ModelDeployment.model_validate(
        {
            "metadata": {"name": "iris", "namespace": namespace},
            "spec": {"model": model, "runtime": {"image": "ghcr.io/example/server:1"}},
        }
    )


# --------------------------------------------------------------------------- the pod


@pytest.mark.parametrize(
    ("reference", "volume_source"),
    [
        (
            {"secretName": "iris-signer", "key": "signer.pub"},
            {"secret": {"secretName": "iris-signer", "items": [{"key": "signer.pub", "path": "signer.pub"}]}},
        ),
        (
            {"configMapName": "signers", "key": "ca.crt"},
            {"configMap": {"name": "signers", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        ),
    ],
)
def test_only_the_initializer_mounts_the_trusted_key(reference: dict[str, str], volume_source: dict) -> None:
    field = "publicKey" if "secretName" in reference else "certificateChain"
    source = ModelSource.model_validate(
        {"uri": "s3://models/iris/", "verification": {field: reference, "signature": "sigs/iris.sig"}}
    )
    volume = model_volume(source, "modeldeploy:dev")
    (fetcher,) = volume.init_containers
    flag = "--verify-key" if field == "publicKey" else "--verify-certificate-chain"
    assert fetcher["args"][-4:] == [
        flag,
        f"{VERIFICATION_DIR}/{reference['key']}",
        "--signature",
        "sigs/iris.sig",
    ]
    assert {"name": VERIFICATION_VOLUME, **volume_source} in volume.volumes
    assert {"name": VERIFICATION_VOLUME, "mountPath": VERIFICATION_DIR, "readOnly": True} in fetcher[
        "volumeMounts"
    ]
    assert all(mount["name"] != VERIFICATION_VOLUME for mount in volume.server_volume_mounts)


def test_the_default_signature_location_adds_no_argument() -> None:
    volume = model_volume(ModelSource.model_validate({"uri": "s3://m/i/", "verification": VERIFICATION}), "x")
    assert "--signature" not in volume.init_containers[0]["args"]


# --------------------------------------------------------------------------- the policy


def test_no_policy_refuses_nothing() -> None:
    assert VerificationPolicy().refusal(deployment({"uri": "s3://m/iris/"}), {}) is None


def test_a_labelled_namespace_refuses_an_unverified_model_naming_the_label() -> None:
    refusal = VerificationPolicy().refusal(
        deployment({"uri": "s3://m/iris/"}), {REQUIRE_VERIFICATION_LABEL: "true"}
    )
    assert refusal == (
        f"namespace ml requires verified models (label {REQUIRE_VERIFICATION_LABEL}=true): "
        "set spec.model.verification (a public key and the model's model-signing signature)"
    )


def test_the_operator_flag_refuses_everywhere_naming_the_flag_and_helm_value() -> None:
    refusal = VerificationPolicy(required_everywhere=True).refusal(deployment({"uri": "s3://m/iris/"}), {})
    assert refusal is not None
    assert "--require-verification" in refusal and "verification.required" in refusal


def test_a_verified_model_passes_every_policy() -> None:
    verified = deployment({"uri": "s3://m/iris/", "verification": VERIFICATION})
    labels = {REQUIRE_VERIFICATION_LABEL: "true"}
    assert VerificationPolicy(required_everywhere=True).refusal(verified, labels) is None


@pytest.mark.parametrize("uri", ["pvc://models/iris", "oci://registry.example.com/iris:1"])
def test_mounted_models_are_refused_saying_they_cannot_be_verified(uri: str) -> None:
    refusal = VerificationPolicy(required_everywhere=True).refusal(deployment({"uri": uri}), {})
    assert refusal is not None
    assert f"{uri.partition('://')[0]}:// models are mounted, not fetched, and cannot be verified" in refusal


# --------------------------------------------------------------------------- status and events


def test_status_names_the_signer_only_of_a_verified_model() -> None:
    verified = resolved_model("s3://m/iris/", ModelState(True, "ModelFetched", "", "sha256:1", SIGNER))
    plain = resolved_model("s3://m/iris/", ModelState(True, "ModelFetched", "", "sha256:1"))
    assert (verified.verified, verified.signed_by) == (True, SIGNER)
    assert (plain.verified, plain.signed_by) == (None, None)


def test_the_signer_is_kept_in_the_newest_history_entry_of_the_revision() -> None:
    history = [HistoryEntry(revision="r1"), HistoryEntry(revision="r2"), HistoryEntry(revision="r1")]
    model = ResolvedModel(uri="s3://m/iris/", verified=True, signed_by=SIGNER)
    updated = history_with_signer(history, "r1", model)
    assert [(entry.revision, entry.verified, entry.signed_by) for entry in updated] == [
        ("r1", None, None),
        ("r2", None, None),
        ("r1", True, SIGNER),
    ]
    assert history_with_signer(updated, "r1", model) is updated  # nothing new: the same list
    assert history_with_signer(history, "r1", ResolvedModel(uri="s3://m/iris/")) is history


def status(model: ResolvedModel | None = None, model_ready: Condition | None = None) -> ModelDeploymentStatus:
    return ModelDeploymentStatus(
        stable_revision="r1", model=model, conditions=[model_ready] if model_ready else []
    )


def test_a_newly_verified_model_makes_one_event() -> None:
    model = ResolvedModel(uri="s3://m/iris/", resolved_digest="sha256:1", verified=True, signed_by=SIGNER)
    (event,) = model_events(status(), status(model))
    assert (event.type, event.reason) == ("Normal", "ModelVerified")
    assert event.message == f"revision r1: s3://m/iris/ (sha256:1) verified, signed by {SIGNER}"
    assert model_events(status(model), status(model)) == []


def test_a_signature_failure_makes_one_warning_with_the_initializers_message() -> None:
    failed = Condition(
        type="ModelReady", status="False", reason="SignatureInvalid", message="config.json changed"
    )
    (event,) = model_events(status(), status(model_ready=failed))
    assert (event.type, event.reason, event.message) == (
        "Warning",
        "SignatureInvalid",
        "revision r1: config.json changed",
    )
    assert model_events(status(model_ready=failed), status(model_ready=failed)) == []
