"""The generated CRD in a real API server: it installs, the examples pass, every invalid
manifest is refused naming its field, and the server and pydantic agree on generated specs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from modeldeploy.api.crd import CRD_NAME, crd
from modeldeploy.api.models import GROUP, PLURAL, VERSION, ModelDeployment
from modeldeploy.api.rules import RULE_ERROR
from modeldeploy.api.validation import parse_model_deployment
from tests.cluster.conftest import NAMESPACE_PREFIX, ROOT, Kubectl
from tests.unit.test_api_invalid import BASE, CASES, Case, changed
from tests.unit.test_api_strategies import broken_manifests, manifests

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
# The API server skips CEL rules once a field of the object is invalid, and says so.
NOT_ALL_RULES_CHECKED = "some validation rules were not checked"


class Refused(Exception):
    """The API server refused an object; the message is the server's."""

    def __init__(self, message: str, validated: bool) -> None:
        super().__init__(message)
        # False when the object was refused before the CEL rules ran: while decoding it
        # (unknown field, wrong JSON type) or because some field already was invalid.
        self.all_rules_checked = validated and NOT_ALL_RULES_CHECKED not in message


@pytest.fixture(scope="module")
def custom_objects(
    api_client: kubernetes.client.ApiClient, modeldeployment_crd: None
) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api_client)


@pytest.fixture(scope="module")
def dry_run_namespace(kubectl: Kubectl) -> Iterator[str]:
    """The tests' own namespace for the dry runs of this module. Dry runs persist nothing, so they
    share one (unlike `namespace`, one per test, which would be one per case); but never `default`,
    where `make demo` keeps objects named as the examples and a dry run of their names gets 409."""
    name = f"{NAMESPACE_PREFIX}dry-run"
    kubectl.create_namespace(name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def dry_run_create(
    api: kubernetes.client.CustomObjectsApi, namespace: str, manifest: dict[str, Any]
) -> dict[str, Any]:
    """The object as the API server would store it in `namespace`, or Refused. Unknown fields
    are refused, as `kubectl apply` does by default."""
    try:
        return api.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, manifest, dry_run="All", field_validation="Strict"
        )
    except kubernetes.client.ApiException as error:
        # 422: invalid; 400: refused while decoding (unknown field, wrong JSON type).
        assert error.status in (400, 422), f"unexpected answer {error.status}: {error.body}"
        raise Refused(json.loads(error.body)["message"], validated=error.status == 422) from error


def test_the_crd_file_is_what_the_server_holds(kubectl: Kubectl, modeldeployment_crd: None) -> None:
    served = kubectl.json("get", "crd", CRD_NAME)
    generated = crd()["spec"]
    assert served["spec"]["names"] == {**generated["names"]}
    (version,) = served["spec"]["versions"]
    assert version["additionalPrinterColumns"] == generated["versions"][0]["additionalPrinterColumns"]
    assert version["schema"] == generated["versions"][0]["schema"]
    assert version["subresources"] == {"status": {}}


def test_kubectl_explain_shows_the_field_descriptions(kubectl: Kubectl, modeldeployment_crd: None) -> None:
    explained = kubectl.run("explain", "mdep.spec.autoscaling.minReplicas").stdout
    assert "Fewest replicas; 0 only with keda." in explained


def test_kubectl_get_shows_the_printer_columns(
    kubectl: Kubectl, namespace: str, modeldeployment_crd: None
) -> None:
    kubectl.apply(BASE, "-n", namespace)
    kubectl.run(
        "patch", "md", "sentiment", "-n", namespace, "--subresource=status", "--type=merge", "-p",
        json.dumps({"status": {"phase": "Stable", "stableRevision": "7f9c2d1b03", "canaryRevision": "1b03e8aa00",
                               "canaryWeight": 20,
                               "url": "http://sentiment.example.com",
                               "conditions": [{"type": "Ready", "status": "True"}]}}),
    )  # fmt: skip
    header, row = kubectl.run("get", "modeldeploy", "-n", namespace).stdout.splitlines()
    assert header.split() == ["NAME", "READY", "PHASE", "STABLE", "CANARY", "WEIGHT", "URL", "AGE"]
    assert row.split()[:7] == [
        "sentiment", "True", "Stable", "7f9c2d1b03", "1b03e8aa00", "20", "http://sentiment.example.com"
    ]  # fmt: skip


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_each_example_is_accepted_and_defaulted_as_pydantic_defaults_it(
    custom_objects: kubernetes.client.CustomObjectsApi, dry_run_namespace: str, path: Path
) -> None:
    (manifest,) = yaml.safe_load_all(path.read_text())
    stored = dry_run_create(custom_objects, dry_run_namespace, manifest)
    assert ModelDeployment.model_validate(stored).spec == parse_model_deployment(manifest).spec


def test_there_is_an_example_for_each_use_case() -> None:
    assert {path.stem for path in EXAMPLES} >= {
        "minimal-cpu",
        "llm-a100",
        "canary-manual",
        "canary-automated",
        "keda-scale-to-zero",
        "huggingface",
        "pvc-model",
        "istio",
    }


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_api_server_refuses_each_invalid_manifest_naming_the_field(
    custom_objects: kubernetes.client.CustomObjectsApi, dry_run_namespace: str, case: Case
) -> None:
    with pytest.raises(Refused) as refused:
        dry_run_create(custom_objects, dry_run_namespace, case.manifest())
    assert case.path in str(refused.value)
    assert case.words in str(refused.value)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(manifests(), broken_manifests()))
def test_pydantic_and_the_api_server_agree(
    custom_objects: kubernetes.client.CustomObjectsApi, dry_run_namespace: str, manifest: dict[str, Any]
) -> None:
    try:
        ours: ModelDeployment | None = ModelDeployment.model_validate(manifest, by_alias=True, by_name=False)
        rule_messages = []
    except ValidationError as error:
        ours = None
        rule_messages = [
            detail["ctx"]["message"] for detail in error.errors() if detail["type"] == RULE_ERROR
        ]
    try:
        stored = dry_run_create(custom_objects, dry_run_namespace, manifest)
    except Refused as refused:
        assert ours is None, f"only the API server refuses it: {refused}"
        if refused.all_rules_checked:
            # The first broken rule of each object is reported by both, in the same words.
            for message in rule_messages:
                assert message in str(refused)
    else:
        assert ours is not None, "only pydantic refuses it"
        # The CRD's defaults are pydantic's defaults.
        assert ModelDeployment.model_validate(stored).spec == ours.spec


@pytest.fixture
def stored_model(kubectl: Kubectl, namespace: str, modeldeployment_crd: None) -> Iterator[dict[str, Any]]:
    kubectl.apply(BASE, "-n", namespace)
    yield kubectl.json("get", "md", "sentiment", "-n", namespace)


def test_the_provider_can_be_switched(kubectl: Kubectl, namespace: str, stored_model: dict[str, Any]) -> None:
    assert stored_model["spec"]["traffic"]["provider"] == "gateway-api"
    switched = changed(BASE, {"spec.traffic": {"provider": "istio"}})
    kubectl.apply(switched, "-n", namespace)
    stored = kubectl.json("get", "md", "sentiment", "-n", namespace)
    assert stored["spec"]["traffic"]["provider"] == "istio"
    assert ModelDeployment.model_validate(stored).spec == parse_model_deployment(switched).spec


def test_other_fields_can_be_changed(kubectl: Kubectl, namespace: str, stored_model: dict[str, Any]) -> None:
    reweighted = changed(BASE, {"spec.rollout.canary.weight": 30, "spec.traffic.hosts": ["a.example.com"]})
    kubectl.apply(reweighted, "-n", namespace)
    stored = kubectl.json("get", "md", "sentiment", "-n", namespace)
    assert ModelDeployment.model_validate(stored).spec == parse_model_deployment(reweighted).spec
