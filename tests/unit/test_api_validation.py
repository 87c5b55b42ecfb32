"""Parsing manifests as the API server reads them, and the messages users see."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from modeldeploy.api.models import Analysis, Canary, ModelDeploymentSpec, Step
from modeldeploy.api.validation import InvalidModelDeployment, parse_model_deployment
from modeldeploy.cli import app
from tests.unit.test_api_invalid import BASE, DELETE, changed

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


def spec_of(changes: dict) -> ModelDeploymentSpec:
    return parse_model_deployment(changed(BASE, changes)).spec


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_example_is_valid(path: Path) -> None:
    (manifest,) = yaml.safe_load_all(path.read_text())
    assert parse_model_deployment(manifest).metadata["name"] == manifest["metadata"]["name"]


def test_null_means_unset_as_on_the_api_server() -> None:
    spec = spec_of({"spec.replicas": None, "spec.runtime.nodeSelector": {"zone": None, "pool": "gpu"}})
    assert spec.replicas == 1
    assert spec.runtime.node_selector == {"pool": "gpu"}


def test_an_unknown_field_is_refused_even_when_null() -> None:
    with pytest.raises(InvalidModelDeployment) as refused:
        spec_of({"spec.runtime.imagePullPolicy": None})
    assert refused.value.problems == [
        "spec.runtime.imagePullPolicy: unknown field (field names are camelCase, as in docs/api.md)"
    ]


def test_free_form_objects_keep_their_nulls() -> None:
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token", "optional": None}}}]
    assert spec_of({"spec.runtime.env": env}).runtime.env[0].value_from == env[0]["valueFrom"]


def test_quantities_are_integers_or_strings_as_in_a_pod() -> None:
    resources = spec_of({"spec.runtime.resources": {"cpu": 2, "memory": "8Gi"}}).runtime.resources
    assert (resources.cpu, resources.memory) == ("2", "8Gi")


def test_manifests_use_the_wire_names_only() -> None:
    with pytest.raises(InvalidModelDeployment) as refused:
        spec_of({"spec.runtime.readiness_path": "/ready"})
    assert refused.value.problems[0].startswith("spec.runtime.readiness_path: unknown field")


def test_numbers_in_strings_are_not_numbers() -> None:
    with pytest.raises(InvalidModelDeployment) as refused:
        spec_of({"spec.rollout.canary.weight": "20"})
    assert refused.value.problems == ["spec.rollout.canary.weight: Input should be a valid integer"]


def test_every_problem_is_reported_with_its_path() -> None:
    with pytest.raises(InvalidModelDeployment) as refused:
        spec_of({"spec.runtime.port": 0, "spec.model.uri": "ftp://x", "spec.traffic.timeout": "soon"})
    assert [problem.split(":")[0] for problem in refused.value.problems] == [
        "spec.model.uri",
        "spec.runtime.port",
        "spec.traffic.timeout",
    ]
    assert "spec.traffic.timeout: must be a duration such as 250ms, 30s, 5m or 1h30m" in str(refused.value)


def test_a_step_analysis_keeps_what_it_leaves_unset_through_a_dump() -> None:
    canary = Canary.model_validate(
        {
            "analysis": {"prometheus": {"address": "http://prometheus:9090"}, "interval": "5m", "metrics": [
                {"name": "ok", "template": "success-rate", "min": 0.99}
            ]},
            "steps": [{"weight": 10}, {"analysis": {"count": 3}}],
        }
    )  # fmt: skip
    assert canary.model_dump(by_alias=True)["steps"][1] == {
        "weight": None,
        "pause": None,
        "analysis": {"count": 3},
    }
    again = Canary.model_validate(canary.model_dump(by_alias=True))
    step_analysis = again.steps[1].analysis
    assert step_analysis is not None and step_analysis.model_fields_set == {"count"}


def test_an_analysis_step_may_take_prometheus_and_metrics_from_the_canary() -> None:
    spec = spec_of(
        {
            "spec.rollout.canary": {
                "analysis": {"prometheus": {"address": "http://prometheus:9090"}, "metrics": [
                    {"name": "p99", "template": "latency-p99", "max": 0.5}
                ]},
                "steps": [{"weight": 10}, {"analysis": {}}, {"weight": 100}],
            }
        }
    )  # fmt: skip
    assert spec.rollout.canary.steps[1] == Step(analysis=Analysis())


def test_an_analysis_step_that_empties_the_metrics_has_none() -> None:
    with pytest.raises(InvalidModelDeployment, match="an analysis step needs at least one metric"):
        spec_of(
            {
                "spec.rollout.canary": {
                    "analysis": {"prometheus": {"address": "http://prometheus:9090"}, "metrics": [
                        {"name": "p99", "template": "latency-p99", "max": 0.5}
                    ]},
                    "steps": [{"analysis": {"metrics": []}}],
                }
            }
        )  # fmt: skip


def test_a_name_is_not_required_before_the_api_server_generates_one() -> None:
    manifest = changed(BASE, {"metadata.name": DELETE, "metadata.generateName": "sentiment-"})
    assert "name" not in parse_model_deployment(manifest).metadata


def test_the_cli_validates_files_like_the_api_server(tmp_path: Path) -> None:
    runner = CliRunner()
    accepted = runner.invoke(app, ["validate", *map(str, EXAMPLES)])
    assert accepted.exit_code == 0
    assert accepted.stdout.count(": valid\n") == len(EXAMPLES)

    broken = tmp_path / "broken.yaml"
    broken.write_text(
        yaml.safe_dump_all(
            [
                {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s3-creds"}},
                changed(BASE, {"spec.autoscaling": {"minReplicas": 0, "maxReplicas": 2}}),
            ]
        )
    )
    refused = runner.invoke(app, ["validate", str(broken)])
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"{broken}: ModelDeployment/sentiment: spec.autoscaling.minReplicas: "
        "minReplicas 0 (scale to zero) needs engine keda\n"
    )


def test_the_cli_validates_runtime_templates_too(tmp_path: Path) -> None:
    runner = CliRunner()
    templates = sorted((Path(__file__).resolve().parents[2] / "examples" / "runtimes").glob("*.yaml"))
    accepted = runner.invoke(app, ["validate", *map(str, templates)])
    assert accepted.exit_code == 0 and accepted.stdout.count("ModelRuntime/") == len(templates) == 5
    broken = tmp_path / "runtime.yaml"
    broken.write_text(
        yaml.safe_dump({"kind": "ModelRuntime", "metadata": {"name": "x"}, "spec": {"runtime": {"port": 80}}})
    )
    refused = runner.invoke(app, ["validate", str(broken)])
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"{broken}: ModelRuntime/x: spec.runtime.image: runtime.image is required: a template must say which "
        "server it runs\n"
    )
