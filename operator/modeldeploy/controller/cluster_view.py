"""An in-memory view of the GPU side of the cluster, kept current by watch events.

GPU capacity is judged against every node and every pod holding GPUs; listing them on each
reconcile would cost two cluster-wide reads per ModelDeployment. The watch that kopf keeps
open feeds this view instead, and only the fields capacity needs are kept. The labels of
namespaces (the verification policy reads them) and which ModelDeployments each namespace holds
(to look at them again when those labels change) come the same way, and so do the ModelRuntimes
(server templates) that models name.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from modeldeploy.api.model_runtime import ModelRuntime
from modeldeploy.capacity import holds_gpus, requested_by_node

log = logging.getLogger(__name__)


def _slim(
    obj: dict[str, Any], spec_fields: tuple[str, ...], status_fields: tuple[str, ...]
) -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    return {
        "metadata": {key: metadata.get(key) for key in ("name", "namespace", "labels") if key in metadata},
        "spec": {key: value for key, value in (obj.get("spec") or {}).items() if key in spec_fields},
        "status": {key: value for key, value in (obj.get("status") or {}).items() if key in status_fields},
    }


class ClusterView:
    def __init__(self) -> None:
        self._nodes: dict[str, dict[str, Any]] = {}
        self._gpu_pods: dict[tuple[str, str], dict[str, Any]] = {}
        # GPUs held per node, per resource: summed once per change of pods or nodes, not on
        # every reconcile of every GPU model.
        self._usage: dict[str, dict[str, int]] = {}
        self._namespace_labels: dict[str, dict[str, str]] = {}
        self._models: dict[str, set[str]] = {}
        self._runtimes: dict[str, ModelRuntime] = {}

    @property
    def nodes(self) -> list[dict[str, Any]]:
        return list(self._nodes.values())

    @property
    def gpu_pods(self) -> list[dict[str, Any]]:
        return list(self._gpu_pods.values())

    def gpu_usage(self, resource: str) -> dict[str, int]:
        if resource not in self._usage:
            self._usage[resource] = requested_by_node(self.gpu_pods, resource)
        return self._usage[resource]

    def gpu_pods_named(self, namespace: str, names: set[str]) -> list[dict[str, Any]]:
        return [pod for name in names if (pod := self._gpu_pods.get((namespace, name)))]

    def node_event(self, event_type: str | None, node: dict[str, Any]) -> None:
        self._usage.clear()
        name = node["metadata"]["name"]
        if event_type == "DELETED":
            self._nodes.pop(name, None)
        else:
            self._nodes[name] = _slim(node, ("taints", "unschedulable"), ("allocatable", "capacity"))

    def pod_event(self, event_type: str | None, pod: dict[str, Any]) -> None:
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if event_type == "DELETED" or not holds_gpus(pod):
            if self._gpu_pods.pop(key, None) is not None:
                self._usage.clear()
        else:
            self._usage.clear()
            self._gpu_pods[key] = _slim(pod, ("nodeName", "containers", "initContainers"), ("phase",))

    def namespace_labels(self, namespace: str) -> dict[str, str] | None:
        """None while the watch has not delivered the namespace."""
        return self._namespace_labels.get(namespace)

    def namespace_event(self, event_type: str | None, namespace: dict[str, Any]) -> bool:
        """Records the namespace's labels; True when they changed."""
        name = namespace["metadata"]["name"]
        before = self._namespace_labels.get(name)
        if event_type == "DELETED":
            self._namespace_labels.pop(name, None)
            return False
        labels = dict(namespace["metadata"].get("labels") or {})
        self._namespace_labels[name] = labels
        return before is not None and before != labels

    def models_in(self, namespace: str) -> list[str]:
        return sorted(self._models.get(namespace, ()))

    def model_event(self, event_type: str | None, namespace: str, name: str) -> None:
        if event_type == "DELETED":
            self._models.get(namespace, set()).discard(name)
        else:
            self._models.setdefault(namespace, set()).add(name)

    @property
    def runtimes(self) -> dict[str, ModelRuntime]:
        return dict(self._runtimes)

    def runtime_event(self, event_type: str | None, body: dict[str, Any]) -> bool:
        """Records a ModelRuntime; True when what models get from it may have changed."""
        name = body["metadata"]["name"]
        before = self._runtimes.get(name)
        if event_type == "DELETED":
            self._runtimes.pop(name, None)
            return before is not None
        try:
            runtime = ModelRuntime.model_validate(body)
        except ValidationError as error:
            # The API server checked it against the same models; only an older CRD lets one through.
            log.warning("ModelRuntime %s ignored: %s", name, error)
            self._runtimes.pop(name, None)
            return before is not None
        self._runtimes[name] = runtime
        return before is None or before.spec != runtime.spec or before.generation != runtime.generation

    def all_models(self) -> list[tuple[str, str]]:
        """Every ModelDeployment the watch has delivered, as (namespace, name)."""
        return sorted((namespace, name) for namespace, names in self._models.items() for name in names)
