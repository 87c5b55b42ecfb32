"""The pod side of model storage: how the model files reach the server container.

Every scheme ends with the model readable at MODEL_DIR in the server container:

- s3, gs, hf, http(s), file: the `fetch-model` init container (the operator's own image)
  copies the model into an emptyDir that the server mounts read-only. A file:// path is
  read inside the initializer's own filesystem; no hostPath is ever rendered, because that
  would let anyone who may create a ModelDeployment read the nodes' disks. With
  `verification`, the trusted key or certificates (a Secret or ConfigMap key) are mounted
  into the initializer only, which refuses a model whose signature does not verify.
- pvc://claim/path: the claim is mounted read-only, `path` as the subPath; nothing is copied.
- oci://reference: the image is mounted as an image volume (Kubernetes ImageVolume, GA and
  always on since 1.36), or, on clusters without image volumes, run as a KServe-style
  "modelcar" sidecar whose root filesystem the server reaches through the shared process
  namespace.

See docs/storage-pods.md.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from modeldeploy.api.models import DEFAULT_SIGNATURE, MOUNTED_URI_SCHEMES, KeyReference, ModelSource

MODEL_DIR = "/mnt/models"
MODEL_VOLUME = "model"
FETCH_CONTAINER = "fetch-model"
FETCH_TMP_VOLUME = "fetch-tmp"
VERIFICATION_VOLUME = "model-verification"
VERIFICATION_DIR = "/etc/modeldeploy/verification"
MODELCAR_CONTAINER = "modelcar"
# Where a modelcar image keeps its files (the KServe convention, so their images work here).
MODELCAR_IMAGE_MODEL_DIR = "/models"
# The initializer needs no identity of its own; a fixed non-root uid lets the kubelet enforce
# runAsNonRoot even when the image names its user, and emptyDirs are world-writable.
INITIALIZER_UID = 65532

OciMode = Literal["image-volume", "modelcar"]
# Downloads are network-bound: a small CPU request without a limit, so a transfer is never
# throttled; the memory limit bounds what the client libraries buffer. Operator-wide
# (--initializer-resources) and per model (spec.model.initializer.resources) replaceable, for
# namespaces whose LimitRange or ResourceQuota allows less.
DEFAULT_INITIALIZER_RESOURCES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
)


@dataclass(frozen=True)
class ModelVolume:
    """What a pod needs so that its server finds the model at MODEL_DIR.

    `sidecars` run beside the server for the pod's whole life. They are native sidecars
    (init containers with restartPolicy Always), listed after `init_containers`: Kubernetes
    starts the server only once they have passed their startup probes.
    """

    init_containers: list[dict[str, Any]] = field(default_factory=list)
    sidecars: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    server_volume_mounts: list[dict[str, Any]] = field(default_factory=list)
    server_env: list[dict[str, Any]] = field(default_factory=list)
    image_pull_secrets: list[dict[str, Any]] = field(default_factory=list)
    share_process_namespace: bool = False


def is_mounted(model: ModelSource) -> bool:
    """pvc:// and oci:// models are mounted into the pod; no init container fetches them."""
    return model.uri.partition("://")[0] in MOUNTED_URI_SCHEMES


def model_volume(
    model: ModelSource,
    initializer_image: str,
    oci_mode: OciMode = "image-volume",
    initializer_resources: Mapping[str, Any] = DEFAULT_INITIALIZER_RESOURCES,
) -> ModelVolume:
    scheme, _, location = model.uri.partition("://")
    env = _server_env(model)
    if scheme == "pvc":
        return _claim(location, env)
    if scheme == "oci":
        return (
            _modelcar(model, location, env) if oci_mode == "modelcar" else _image_volume(model, location, env)
        )
    return _fetched(model, initializer_image, env, initializer_resources)


def _server_env(model: ModelSource) -> list[dict[str, Any]]:
    env = [{"name": "MODEL_DIR", "value": MODEL_DIR}]
    if model.format:
        env.append({"name": "MODEL_FORMAT", "value": model.format})
    return env


def fetch_args(model: ModelSource) -> list[str]:
    """Arguments to the initializer image's entrypoint (`modeldeploy`): the contract with the
    `fetch-model` command."""
    args = ["fetch-model", "--uri", model.uri, "--dest", MODEL_DIR]
    if model.sha256:
        args += ["--sha256", model.sha256]
    for pattern in model.allow_patterns:
        args += ["--allow-pattern", pattern]
    verification = model.verification
    if verification is not None:
        if verification.public_key is not None:
            args += ["--verify-key", f"{VERIFICATION_DIR}/{verification.public_key.key}"]
        if verification.certificate_chain is not None:
            args += ["--verify-certificate-chain", f"{VERIFICATION_DIR}/{verification.certificate_chain.key}"]
        if verification.signature != DEFAULT_SIGNATURE:
            args += ["--signature", verification.signature]
    return args


def _verification_volume(model: ModelSource) -> dict[str, Any] | None:
    """The trusted key or certificates, only the one key of the Secret or ConfigMap."""
    verification = model.verification
    if verification is None:
        return None
    reference: KeyReference | None = verification.public_key or verification.certificate_chain
    assert reference is not None  # the API requires one of them
    items = [{"key": reference.key, "path": reference.key}]
    if reference.secret_name is not None:
        return {"name": VERIFICATION_VOLUME, "secret": {"secretName": reference.secret_name, "items": items}}
    return {"name": VERIFICATION_VOLUME, "configMap": {"name": reference.config_map_name, "items": items}}


def _fetched(
    model: ModelSource, initializer_image: str, env: list[dict[str, Any]], resources: Mapping[str, Any]
) -> ModelVolume:
    fetcher: dict[str, Any] = {
        "name": FETCH_CONTAINER,
        "image": initializer_image,
        "args": fetch_args(model),
        # The client libraries (botocore, gcsfs, huggingface_hub) keep config and caches under
        # $HOME, and the root filesystem is read-only.
        "env": [{"name": "HOME", "value": "/tmp"}],
    }
    if model.credentials_secret:
        # Referenced, never copied: the secret values stay out of the Deployment.
        fetcher["envFrom"] = [{"secretRef": {"name": model.credentials_secret}}]
    if model.initializer is not None and model.initializer.resources is not None:
        resources = model.initializer.resources.model_dump(exclude_defaults=True)
    fetcher |= {
        "resources": copy.deepcopy(dict(resources)),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": INITIALIZER_UID,
            "runAsGroup": INITIALIZER_UID,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"name": MODEL_VOLUME, "mountPath": MODEL_DIR},
            {"name": FETCH_TMP_VOLUME, "mountPath": "/tmp"},
        ],
    }
    volumes = [{"name": MODEL_VOLUME, "emptyDir": {}}, {"name": FETCH_TMP_VOLUME, "emptyDir": {}}]
    trusted = _verification_volume(model)
    if trusted is not None:
        volumes.append(trusted)
        fetcher["volumeMounts"].append(
            {"name": VERIFICATION_VOLUME, "mountPath": VERIFICATION_DIR, "readOnly": True}
        )
    return ModelVolume(
        init_containers=[fetcher],
        volumes=volumes,
        server_volume_mounts=[{"name": MODEL_VOLUME, "mountPath": MODEL_DIR, "readOnly": True}],
        server_env=env,
    )


def _claim(location: str, env: list[dict[str, Any]]) -> ModelVolume:
    # The API requires a path inside the claim (pvc://<claim>/<path>).
    claim, _, path = location.partition("/")
    mount = {"name": MODEL_VOLUME, "mountPath": MODEL_DIR, "readOnly": True, "subPath": path.strip("/")}
    return ModelVolume(
        volumes=[{"name": MODEL_VOLUME, "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
        server_volume_mounts=[mount],
        server_env=env,
    )


def _registry_credentials(model: ModelSource) -> list[dict[str, Any]]:
    """For oci:// the credentials Secret is a registry (dockerconfigjson) Secret: the kubelet
    pulls the model image with the pod's imagePullSecrets."""
    return [{"name": model.credentials_secret}] if model.credentials_secret else []


def _image_volume(model: ModelSource, reference: str, env: list[dict[str, Any]]) -> ModelVolume:
    return ModelVolume(
        volumes=[{"name": MODEL_VOLUME, "image": {"reference": reference, "pullPolicy": "IfNotPresent"}}],
        server_volume_mounts=[{"name": MODEL_VOLUME, "mountPath": MODEL_DIR, "readOnly": True}],
        server_env=env,
        image_pull_secrets=_registry_credentials(model),
    )


def _modelcar(model: ModelSource, reference: str, env: list[dict[str, Any]]) -> ModelVolume:
    """The model image runs as a sidecar that links its model directory into a shared emptyDir;
    the link goes through /proc/<pid>/root, which the server can follow because the pod shares
    one process namespace and both containers run as the same user."""
    link_dir = posixpath.dirname(MODEL_DIR)
    modelcar = {
        "name": MODELCAR_CONTAINER,
        "image": reference,
        "imagePullPolicy": "IfNotPresent",
        "restartPolicy": "Always",
        # The kubelet expands $(VAR) in commands and turns "$$" into "$", so "$$$$" reaches the
        # shell as "$$", its own pid; `exec` keeps that pid alive as the sleep.
        "command": [
            "sh",
            "-c",
            f"ln -sfn /proc/$$$$/root{MODELCAR_IMAGE_MODEL_DIR} {MODEL_DIR} && exec sleep infinity",
        ],
        # The server starts only after this passes, so it never sees a missing model directory.
        "startupProbe": {
            "exec": {"command": ["sh", "-c", f"test -d {MODEL_DIR}/"]},
            "periodSeconds": 1,
            "failureThreshold": 60,
        },
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        # No capabilities: the server may then read this process's root (ptrace access needs
        # the target's capabilities to be a subset of the reader's).
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": MODEL_VOLUME, "mountPath": link_dir}],
    }
    return ModelVolume(
        sidecars=[modelcar],
        volumes=[{"name": MODEL_VOLUME, "emptyDir": {}}],
        server_volume_mounts=[{"name": MODEL_VOLUME, "mountPath": link_dir, "readOnly": True}],
        server_env=env,
        image_pull_secrets=_registry_credentials(model),
        share_process_namespace=True,
    )
