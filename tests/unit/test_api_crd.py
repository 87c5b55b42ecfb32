"""The generated CRD and field reference: current, structural, and complete."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from modeldeploy.api.crd import (
    CRD_FILE,
    RUNTIME_CRD_FILE,
    crd,
    crd_yaml,
    root_schema,
    runtime_crd,
    runtime_crd_yaml,
    runtime_root_schema,
)
from modeldeploy.api.docs import api_reference
from modeldeploy.api.model_runtime import ModelRuntime
from modeldeploy.api.models import Canary, Model, ModelDeployment
from modeldeploy.cli import app

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "out of date: run `make crds`"


def schemas(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema in the tree with its path, properties and list items included."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from schemas(child, f"{path}.{name}")
    if "items" in node:
        yield from schemas(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schemas(node["additionalProperties"], f"{path}{{}}")


def test_the_crd_file_is_current() -> None:
    assert (ROOT / CRD_FILE).read_text() == crd_yaml(), REGENERATE
    assert (ROOT / RUNTIME_CRD_FILE).read_text() == runtime_crd_yaml(), REGENERATE


def test_the_api_reference_is_current() -> None:
    assert (ROOT / "docs" / "api.md").read_text() == api_reference(), REGENERATE


def test_the_cli_prints_both() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["crd"]).stdout == crd_yaml()
    assert runner.invoke(app, ["crd", "--kind", "ModelRuntime"]).stdout == runtime_crd_yaml()
    assert runner.invoke(app, ["api-docs"]).stdout == api_reference()


def test_the_crd_file_is_plain_yaml_of_the_manifest() -> None:
    assert yaml.safe_load(crd_yaml()) == crd()
    assert yaml.safe_load(runtime_crd_yaml()) == runtime_crd()


@pytest.mark.parametrize("root", [root_schema, runtime_root_schema])
def test_the_schema_is_structural(root: Callable[[], dict[str, Any]]) -> None:
    for path, schema in schemas(root()):
        assert "$ref" not in schema and "allOf" not in schema and "oneOf" not in schema, path
        assert schema.get("type") != "null" and "title" not in schema, path
        assert "additionalProperties" not in schema or isinstance(schema["additionalProperties"], dict), path
        if "anyOf" in schema:
            assert schema["anyOf"] == [{"type": "integer"}, {"type": "string"}], path
            assert schema["x-kubernetes-int-or-string"] is True, path
        else:
            assert "type" in schema, path


def test_every_spec_and_status_field_has_a_description() -> None:
    undocumented = [
        path
        for path, schema in schemas(root_schema())
        if path.startswith((".spec", ".status"))
        and not path.endswith(("[]", "{}"))
        and not schema.get("description")
    ]
    assert undocumented == []


def test_optional_fields_are_left_out_of_required() -> None:
    spec = root_schema()["properties"]["spec"]
    # A runtime may come whole from a ModelRuntime.
    assert spec["required"] == ["model"]
    assert spec["properties"]["autoscaling"]["required"] == ["maxReplicas"]
    assert "required" not in spec["properties"]["rollout"]


def test_defaults_are_the_models_defaults() -> None:
    spec = root_schema()["properties"]["spec"]["properties"]
    assert spec["replicas"]["default"] == 1
    assert spec["rollout"]["default"] == {}
    assert spec["rollout"]["properties"]["canary"]["properties"]["scaleDownDelaySeconds"]["default"] == 30
    assert "default" not in spec["autoscaling"]


def test_runtime_fields_have_no_defaults_so_unset_ones_come_from_the_template() -> None:
    runtime = root_schema()["properties"]["spec"]["properties"]["runtime"]
    assert runtime["default"] == {}
    assert [name for name, field in runtime["properties"].items() if "default" in field] == []
    # Within it, an object the model sets still has its own defaults.
    assert runtime["properties"]["resources"]["properties"]["gpu"]["default"] == 0
    template = runtime_root_schema()["properties"]["spec"]["properties"]["runtime"]
    assert [name for name, field in template["properties"].items() if "default" in field] == []


def test_a_steps_analysis_has_no_defaults_so_unset_fields_come_from_the_canary() -> None:
    canary = root_schema()["properties"]["spec"]["properties"]["rollout"]["properties"]["canary"]
    step_analysis = canary["properties"]["steps"]["items"]["properties"]["analysis"]
    assert [name for name, field in step_analysis["properties"].items() if "default" in field] == []
    assert canary["properties"]["analysis"]["properties"]["interval"]["default"] == "1m"
    # Within it, a metric still has its own defaults.
    assert step_analysis["properties"]["metrics"]["items"]["properties"]["template"]["default"] == "custom"


def test_every_rule_of_every_model_is_in_the_crd() -> None:
    in_crd = [
        validation["message"]
        for root in (root_schema(), runtime_root_schema())
        for _, schema in schemas(root)
        for validation in schema.get("x-kubernetes-validations", ())
    ]
    models = [model for model in Model.__subclasses__() if model.rules]
    assert Canary in models
    rules = [rule for model in models for rule in model.rules]
    for rule in (*rules, *ModelDeployment.rules, *ModelRuntime.rules):
        assert rule.message in in_crd, rule.message


def test_lists_of_maps_are_keyed() -> None:
    paths = {path: schema for path, schema in schemas(root_schema())}
    for path, key in [
        (".spec.runtime.env", "name"),
        (".spec.rollout.canary.analysis.metrics", "name"),
        (".status.conditions", "type"),
        (".status.revisions", "name"),
    ]:
        assert paths[path]["x-kubernetes-list-type"] == "map", path
        assert paths[path]["x-kubernetes-list-map-keys"] == [key], path
