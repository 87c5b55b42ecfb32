"""What every child object of a ModelDeployment shares: names, labels, ownership."""

from __future__ import annotations

from typing import Any

from modeldeploy.api.models import API_VERSION, KIND, ModelDeployment

LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_REVISION = "modeldeploy.io/revision"
LABEL_MODEL = "modeldeploy.io/model"
MANAGER = "modeldeploy"


def name_of(md: ModelDeployment) -> str:
    return str(md.metadata["name"])


def namespace_of(md: ModelDeployment) -> str:
    return str(md.metadata.get("namespace", "default"))


def selector_labels(md: ModelDeployment, revision: str | None = None) -> dict[str, str]:
    """Labels that select the pods of this model (of one revision when given)."""
    labels = {LABEL_MODEL: name_of(md)}
    if revision:
        labels[LABEL_REVISION] = revision
    return labels


def labels(md: ModelDeployment, revision: str | None = None, component: str = "server") -> dict[str, str]:
    """Labels every child carries: the selector labels plus the app.kubernetes.io set."""
    return {
        LABEL_NAME: "modeldeploy",
        LABEL_INSTANCE: name_of(md),
        LABEL_MANAGED_BY: MANAGER,
        LABEL_COMPONENT: component,
        **selector_labels(md, revision),
    }


def owner_reference(md: ModelDeployment) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": name_of(md),
        "uid": md.metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def child_metadata(
    md: ModelDeployment, name: str, revision: str | None = None, component: str = "server"
) -> dict[str, Any]:
    """metadata of a child: name, namespace, labels and the owner reference for garbage collection."""
    return {
        "name": name,
        "namespace": namespace_of(md),
        "labels": labels(md, revision, component),
        "ownerReferences": [owner_reference(md)],
    }


def service(md: ModelDeployment, name: str, selector: dict[str, str], port: int) -> dict[str, Any]:
    """A ClusterIP Service on the model's port; `selector` picks the revisions behind it."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": child_metadata(md, name, component="service"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {
                    "name": md.spec.runtime.protocol,
                    "port": port,
                    "targetPort": "serving",
                    "protocol": "TCP",
                    "appProtocol": "kubernetes.io/h2c" if md.spec.runtime.protocol == "grpc" else "http",
                }
            ],
        },
    }
