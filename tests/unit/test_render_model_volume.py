"""How the model reaches the server container, scheme by scheme."""

from __future__ import annotations

from typing import Any

import pytest

from modeldeploy.api.models import ModelSource
from modeldeploy.render.model_volume import MODEL_DIR, is_mounted, model_volume

INITIALIZER = "ghcr.io/example/modeldeploy:0.1"
SHA = "a" * 64
FETCHED_URIS = [
    "s3://models/sentiment/v7/",
    "gs://models/sentiment/v7",
    "hf://org/name@main",
    "http://models.example.com/sentiment.tar.gz",
    "https://models.example.com/sentiment.tar.gz",
    "file:///opt/models/sentiment",
]


def source(uri: str, **fields: Any) -> ModelSource:
    return ModelSource.model_validate({"uri": uri, **fields})


@pytest.mark.parametrize("uri", FETCHED_URIS)
def test_fetched_schemes_copy_into_an_empty_dir_the_server_mounts_read_only(uri: str) -> None:
    volume = model_volume(source(uri), INITIALIZER)

    (fetcher,) = volume.init_containers
    assert fetcher["name"] == "fetch-model"
    assert fetcher["image"] == INITIALIZER
    assert fetcher["args"] == ["fetch-model", "--uri", uri, "--dest", MODEL_DIR]
    assert {"name": "model", "mountPath": MODEL_DIR} in fetcher["volumeMounts"]
    assert {"name": "model", "emptyDir": {}} in volume.volumes
    assert volume.server_volume_mounts == [{"name": "model", "mountPath": MODEL_DIR, "readOnly": True}]
    assert volume.sidecars == []
    assert volume.share_process_namespace is False


def test_the_fetcher_is_restricted_and_writes_only_to_its_volumes() -> None:
    (fetcher,) = model_volume(source("s3://models/m"), INITIALIZER).init_containers

    assert fetcher["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    assert {"name": "fetch-tmp", "mountPath": "/tmp"} in fetcher["volumeMounts"]
    assert fetcher["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert "cpu" not in fetcher["resources"]["limits"]


def test_the_fetcher_resources_come_from_the_operator_unless_the_model_sets_them() -> None:
    small = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}}
    default = model_volume(source("s3://models/m/"), INITIALIZER).init_containers[0]
    operator_wide = model_volume(source("s3://models/m/"), INITIALIZER, initializer_resources=small)
    own = source("s3://models/m/", initializer={"resources": {"limits": {"memory": "64Mi"}}})

    assert default["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"memory": "1Gi"},
    }
    assert operator_wide.init_containers[0]["resources"] == small
    assert model_volume(own, INITIALIZER, initializer_resources=small).init_containers[0]["resources"] == {
        "limits": {"memory": "64Mi"}
    }


def test_checksum_and_allow_patterns_are_passed_to_the_fetcher() -> None:
    model = source("hf://org/name@main", sha256=SHA, allowPatterns=["*.json", "*.safetensors"])

    (fetcher,) = model_volume(model, INITIALIZER).init_containers

    assert fetcher["args"][5:] == [
        "--sha256",
        SHA,
        "--allow-pattern",
        "*.json",
        "--allow-pattern",
        "*.safetensors",
    ]


def test_credentials_reach_the_fetcher_only_by_secret_reference() -> None:
    volume = model_volume(source("s3://models/m", credentialsSecret="s3-creds"), INITIALIZER)

    (fetcher,) = volume.init_containers
    assert fetcher["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert fetcher["env"] == [{"name": "HOME", "value": "/tmp"}]
    assert "s3-creds" not in str(volume.server_env)
    assert volume.image_pull_secrets == []


def test_without_credentials_the_fetcher_has_no_env_from() -> None:
    (fetcher,) = model_volume(source("gs://models/m"), INITIALIZER).init_containers

    assert "envFrom" not in fetcher


@pytest.mark.parametrize(
    ("uri", "sub_path"),
    [("pvc://models/sentiment/v7", "sentiment/v7"), ("pvc://models/sentiment/v7/", "sentiment/v7")],
)
def test_a_claim_is_mounted_read_only_at_its_sub_path(uri: str, sub_path: str) -> None:
    volume = model_volume(source(uri), INITIALIZER)

    assert volume.init_containers == []
    assert volume.volumes == [
        {"name": "model", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}}
    ]
    assert volume.server_volume_mounts == [
        {"name": "model", "mountPath": MODEL_DIR, "readOnly": True, "subPath": sub_path}
    ]


def test_an_oci_model_is_an_image_volume_by_default() -> None:
    volume = model_volume(source("oci://registry.example.com/models/sentiment:v7"), INITIALIZER)

    assert volume.volumes == [
        {
            "name": "model",
            "image": {"reference": "registry.example.com/models/sentiment:v7", "pullPolicy": "IfNotPresent"},
        }
    ]
    assert volume.server_volume_mounts == [{"name": "model", "mountPath": MODEL_DIR, "readOnly": True}]
    assert volume.init_containers == volume.sidecars == []
    assert volume.share_process_namespace is False


def test_an_oci_model_as_modelcar_links_the_image_through_the_shared_process_namespace() -> None:
    volume = model_volume(source("oci://registry.example.com/models/sentiment:v7"), INITIALIZER, "modelcar")

    (modelcar,) = volume.sidecars
    assert modelcar["image"] == "registry.example.com/models/sentiment:v7"
    assert modelcar["restartPolicy"] == "Always"
    # After the kubelet's $$ -> $ unescaping the shell sees $$, its own pid.
    assert modelcar["command"][-1] == "ln -sfn /proc/$$$$/root/models /mnt/models && exec sleep infinity"
    assert modelcar["volumeMounts"] == [{"name": "model", "mountPath": "/mnt"}]
    assert "startupProbe" in modelcar
    assert volume.volumes == [{"name": "model", "emptyDir": {}}]
    assert volume.server_volume_mounts == [{"name": "model", "mountPath": "/mnt", "readOnly": True}]
    assert volume.init_containers == []
    assert volume.share_process_namespace is True


@pytest.mark.parametrize("oci_mode", ["image-volume", "modelcar"])
def test_oci_credentials_are_image_pull_secrets(oci_mode: Any) -> None:
    volume = model_volume(
        source("oci://registry.example.com/m:v1", credentialsSecret="pull"), INITIALIZER, oci_mode
    )

    assert volume.image_pull_secrets == [{"name": "pull"}]


@pytest.mark.parametrize("uri", [*FETCHED_URIS, "pvc://models/m", "oci://registry.example.com/m:v1"])
def test_every_scheme_tells_the_server_where_the_model_is(uri: str) -> None:
    volume = model_volume(source(uri, format="onnx"), INITIALIZER)

    assert volume.server_env == [
        {"name": "MODEL_DIR", "value": MODEL_DIR},
        {"name": "MODEL_FORMAT", "value": "onnx"},
    ]


def test_no_format_no_model_format_variable() -> None:
    assert model_volume(source("s3://models/m"), INITIALIZER).server_env == [
        {"name": "MODEL_DIR", "value": MODEL_DIR}
    ]


@pytest.mark.parametrize(("uri", "mounted"), [("pvc://claim/models/v1", True), ("oci://registry/model:1", True),
                                              ("s3://bucket/model/", False), ("hf://org/model", False)])  # fmt: skip
def test_mounted_schemes_have_no_fetcher(uri: str, mounted: bool) -> None:
    model = ModelSource(uri=uri)
    assert is_mounted(model) == mounted
    assert bool(model_volume(model, "initializer:1").init_containers) != mounted
