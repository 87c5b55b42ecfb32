"""Runtime templates (render/runtimes.py): which ModelRuntime a model uses, how its fields merge
under the model's own, what the revision hash covers, and the placeholders in the pods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from modeldeploy.api.model_runtime import ModelRuntime
from modeldeploy.api.models import ModelDeployment, ModelDeploymentSpec
from modeldeploy.render.revision import RevisionPlan, RevisionSpec
from modeldeploy.render.runtimes import Resolved, UnresolvedRuntime, resolve
from modeldeploy.render.workload import render_deployment

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "runtimes"


def runtime(name: str, generation: int = 1, **spec: Any) -> ModelRuntime:
    body = {"runtime": {"image": f"example/{name}:1", "port": 8000}} | spec
    return ModelRuntime.model_validate({"metadata": {"name": name, "generation": generation}, "spec": body})


def shipped() -> dict[str, ModelRuntime]:
    """The templates in examples/runtimes/, as a platform team would install them."""
    runtimes = [
        ModelRuntime.model_validate(yaml.safe_load(path.read_text())) for path in EXAMPLES.glob("*.yaml")
    ]
    return {found.name: found for found in runtimes}


def spec_of(**fields: Any) -> ModelDeploymentSpec:
    return ModelDeploymentSpec.model_validate(
        {"model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"}} | fields
    )


VLLM = runtime(
    "vllm",
    modelFormats=[{"name": "huggingface"}],
    runtime={
        "image": "vllm/vllm-openai:v0.11.0",
        "args": ["--model={{ .ModelDir }}", "--served-model-name={{ .ModelName }}", "--port={{ .Port }}"],
        "extraArgs": ["--tensor-parallel-size={{ .GPUs }}"],
        "port": 8000,
        "readinessPath": "/health",
        "env": [{"name": "HF_HOME", "value": "/tmp"}, {"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}],
        "resources": {"cpu": "4", "memory": "32Gi", "gpu": 1},
        "podLabels": {"team": "platform", "server": "vllm"},
        "metrics": {"source": "vllm"},
    },
)


def test_a_model_naming_only_the_runtime_a_uri_and_its_gpus_gets_the_whole_server() -> None:
    resolved = resolve(spec_of(runtime={"name": "vllm", "resources": {"gpu": 4}}), {"vllm": VLLM})
    server = resolved.spec.runtime
    assert (server.image, server.port, server.readiness_path) == ("vllm/vllm-openai:v0.11.0", 8000, "/health")
    # Nested objects merge field by field: the model's GPU count, the template's CPU and memory.
    assert (server.resources.gpu, server.resources.cpu, server.resources.memory) == (4, "4", "32Gi")
    assert server.metrics is not None and server.metrics.source == "vllm"
    assert resolved.revision_spec.template is not None
    assert (resolved.revision_spec.template.name, resolved.revision_spec.template.generation) == ("vllm", 1)


def test_every_field_the_model_sets_wins_maps_and_env_merge_by_key_lists_are_replaced() -> None:
    own = {
        "name": "vllm",
        "args": ["--model={{ .ModelDir }}"],
        "port": 9000,
        "env": [{"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"}, {"name": "EXTRA", "value": "1"}],
        "podLabels": {"server": "mine"},
    }
    server = resolve(spec_of(runtime=own), {"vllm": VLLM}).spec.runtime
    assert server.args == ["--model={{ .ModelDir }}"]
    assert server.extra_args == ["--tensor-parallel-size={{ .GPUs }}"]
    assert server.port == 9000
    assert [(v.name, v.value) for v in server.env] == [
        ("HF_HOME", "/tmp"),
        ("VLLM_LOGGING_LEVEL", "DEBUG"),
        ("EXTRA", "1"),
    ]
    assert server.pod_labels == {"team": "platform", "server": "mine"}
    assert server.name is None


def test_the_model_format_selects_the_one_runtime_that_auto_selects_it() -> None:
    onnx = runtime("triton", modelFormats=[{"name": "onnx"}, {"name": "tensorrt"}])
    assert resolve(
        spec_of(model={"uri": "s3://m/", "format": "ONNX"}), {"triton": onnx}
    ).spec.runtime.image == ("example/triton:1")


def test_a_model_with_its_own_image_uses_no_template_even_with_a_format() -> None:
    onnx = runtime("triton", modelFormats=[{"name": "onnx"}])
    spec = spec_of(model={"uri": "s3://m/", "format": "onnx"}, runtime={"image": "mine:1"})
    resolved = resolve(spec, {"triton": onnx})
    assert resolved == Resolved(spec, RevisionSpec.of(spec))
    # And its revision is the one it had before templates existed.
    assert resolved.revision == RevisionSpec(model=spec.model, runtime=spec.runtime).revision


@pytest.mark.parametrize(
    ("spec", "runtimes", "reason", "message"),
    [
        (
            {"runtime": {"name": "vlm"}},
            {"vllm": VLLM},
            "RuntimeNotFound",
            "spec.runtime.name: there is no ModelRuntime 'vlm' (installed: vllm)",
        ),
        (
            {"model": {"uri": "s3://m/", "format": "pmml"}},
            {"vllm": VLLM},
            "NoRuntimeForFormat",
            "spec.model.format 'pmml': no ModelRuntime auto-selects it (installed: vllm); set spec.runtime.name "
            "or spec.runtime.image",
        ),
        (
            {"model": {"uri": "s3://m/", "format": "huggingface"}},
            {"vllm": VLLM, "tgi": runtime("tgi", modelFormats=[{"name": "huggingface"}])},
            "AmbiguousRuntime",
            "spec.model.format 'huggingface': ModelRuntimes tgi, vllm all auto-select it; set spec.runtime.name "
            "to one of them",
        ),
        (
            {"runtime": {"name": "http", "gpu": {"product": "NVIDIA-L4"}}},
            {"http": runtime("http")},
            "InvalidRuntime",
            "spec.runtime.resources.gpu, merged with its ModelRuntime: resources.gpu must be at least 1 when "
            "gpu.product or gpu.migProfile is set",
        ),
    ],
)
def test_a_runtime_that_cannot_be_made_names_the_field(
    spec: dict[str, Any], runtimes: dict[str, ModelRuntime], reason: str, message: str
) -> None:
    with pytest.raises(UnresolvedRuntime) as refused:
        resolve(spec_of(**spec), runtimes)
    assert (refused.value.reason, str(refused.value)) == (reason, message)


def test_the_revision_hash_covers_the_template_content_used() -> None:
    spec = spec_of(runtime={"name": "vllm"})
    before = resolve(spec, {"vllm": VLLM})
    edited = VLLM.model_copy(
        update={
            "spec": VLLM.spec.model_copy(
                update={"runtime": VLLM.spec.runtime.model_copy(update={"image": "vllm/vllm-openai:v0.12.0"})}
            ),
            "metadata": {"name": "vllm", "generation": 2},
        }
    )
    assert resolve(spec, {"vllm": edited}).revision != before.revision


def test_a_pinned_template_edit_keeps_the_live_revision_until_the_models_own_spec_changes() -> None:
    spec = spec_of(runtime={"name": "vllm"})
    live = resolve(spec, {"vllm": VLLM}).revision_spec
    edited = runtime("vllm", generation=2, runtime={"image": "vllm/vllm-openai:v0.12.0"})
    assert edited.spec.update_policy == "Pinned"
    again = resolve(spec, {"vllm": edited}, [live])
    assert again.revision == live.revision and again.spec.runtime.image == "vllm/vllm-openai:v0.11.0"
    # The template gone altogether: the pinned revision still renders.
    assert resolve(spec, {}, [live]).revision == live.revision
    # The model's own change takes the template as it is now.
    changed = resolve(spec_of(runtime={"name": "vllm", "resources": {"gpu": 2}}), {"vllm": edited}, [live])
    assert changed.spec.runtime.image == "vllm/vllm-openai:v0.12.0"
    assert changed.revision_spec.template is not None and changed.revision_spec.template.generation == 2


def test_a_rollout_template_edit_makes_a_new_revision_of_every_model_using_it() -> None:
    spec = spec_of(runtime={"name": "vllm"})
    live = resolve(spec, {"vllm": VLLM}).revision_spec
    edited = runtime(
        "vllm", generation=2, updatePolicy="Rollout", runtime={"image": "vllm/vllm-openai:v0.12.0"}
    )
    again = resolve(spec, {"vllm": edited}, [live])
    assert again.revision != live.revision and again.spec.runtime.image == "vllm/vllm-openai:v0.12.0"


def test_the_revision_annotation_carries_the_template_so_an_old_revision_renders_again() -> None:
    resolved = resolve(spec_of(runtime={"name": "vllm"}), {"vllm": VLLM})
    text = resolved.revision_spec.to_annotation()
    assert RevisionSpec.from_annotation(text) == resolved.revision_spec
    assert RevisionSpec.from_annotation(text).revision == resolved.revision


def test_placeholders_are_filled_in_the_pods() -> None:
    md = ModelDeployment.model_validate(
        {
            "metadata": {"name": "llama", "namespace": "ml", "uid": "0"},
            "spec": {
                "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"},
                "runtime": {"name": "vllm", "resources": {"gpu": 2}},
            },
        }
    )
    resolved = resolve(md.spec, {"vllm": VLLM})
    plan = RevisionPlan(revision=resolved.revision, role="stable", spec=resolved.revision_spec, replicas=1)
    deployment = render_deployment(md.model_copy(update={"spec": resolved.spec}), plan, "modeldeploy:dev")
    pod = deployment["spec"]["template"]
    (server,) = pod["spec"]["containers"]
    assert server["args"] == [
        "--model=/mnt/models",
        "--served-model-name=llama",
        "--port=8000",
        "--tensor-parallel-size=2",
    ]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "8000"
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"


def test_every_shipped_template_parses_and_serves_what_its_documentation_says() -> None:
    runtimes = shipped()
    assert set(runtimes) == {"vllm", "tgi", "triton", "mlserver", "http-server"}
    sources = {
        name: found.spec.runtime.metrics.source if found.spec.runtime.metrics else None
        for name, found in runtimes.items()
    }
    assert sources == {
        "vllm": "vllm",
        "tgi": "tgi",
        "triton": "triton",
        "mlserver": "mlserver",
        "http-server": None,
    }
    for found in runtimes.values():
        assert found.spec.runtime.image and found.spec.runtime.readiness_path.startswith("/")
    # Formats that select a runtime automatically are unambiguous across the shipped set.
    automatic = [f.name for found in runtimes.values() for f in found.spec.model_formats if f.auto_select]
    assert len(automatic) == len(set(automatic))


def test_the_helm_chart_ships_the_same_templates() -> None:
    chart = ROOT / "charts" / "modeldeploy" / "runtimes"
    assert sorted(path.name for path in chart.glob("*.yaml")) == sorted(
        path.name for path in EXAMPLES.glob("*.yaml")
    )
    for path in EXAMPLES.glob("*.yaml"):
        assert (chart / path.name).read_text() == path.read_text(), path.name
