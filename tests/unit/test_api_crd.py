"""The generated CRD and field reference: current, structural, and complete."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from modeldeploy.api.crd import CRD_FILE, crd, crd_yaml, root_schema
from modeldeploy.api.docs import api_reference
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


def test_the_api_reference_is_current() -> None:
    assert (ROOT / "docs" / "api.md").read_text() == api_reference(), REGENERATE


def test_the_cli_prints_both() -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["crd"]).stdout == crd_yaml()
    assert runner.invoke(app, ["api-docs"]).stdout == api_reference()


def test_the_crd_file_is_plain_yaml_of_the_manifest() -> None:
    assert yaml.safe_load(crd_yaml()) == crd()


def test_the_schema_is_structural() -> None:
    for path, schema in schemas(root_schema()):
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
    assert spec["required"] == ["model", "runtime"]
    assert spec["properties"]["autoscaling"]["required"] == ["maxReplicas"]
    assert "required" not in spec["properties"]["rollout"]


def test_defaults_are_the_models_defaults() -> None:
    runtime = root_schema()["properties"]["spec"]["properties"]["runtime"]["properties"]
    assert runtime["port"]["default"] == 8080
    assert runtime["resources"]["default"] == {}
    assert runtime["resources"]["properties"]["gpu"]["default"] == 0
    assert "default" not in runtime["gpu"]


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
        for _, schema in schemas(root_schema())
        for validation in schema.get("x-kubernetes-validations", ())
    ]
    models = [model for model in Model.__subclasses__() if model.rules]
    assert Canary in models
    rules = [rule for model in models for rule in model.rules]
    for rule in (*rules, *ModelDeployment.rules):
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
