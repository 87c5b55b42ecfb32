"""Manifests a user can get wrong, each refused with a message that names the field.

The same table feeds tests/cluster/test_api_cluster.py, where the API server must refuse
each one too and name the same field.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from modeldeploy.api.validation import InvalidModelDeployment, parse_model_deployment

DELETE = object()

BASE: dict[str, Any] = {
    "apiVersion": "modeldeploy.io/v1alpha1",
    "kind": "ModelDeployment",
    "metadata": {"name": "sentiment"},
    "spec": {
        "model": {"uri": "s3://models/sentiment/v7/"},
        "runtime": {"image": "ghcr.io/example/onnx-server:1.4"},
    },
}

PROMETHEUS = {"address": "http://prometheus:9090"}
SIGNER_KEY = {"secretName": "signer", "key": "signer.pub"}
SUCCESS_RATE = {"name": "success-rate", "template": "success-rate", "min": 0.99}


@dataclass(frozen=True)
class Case:
    """A change to BASE that makes it invalid, the field path both verdicts must name, and
    (for cross-field rules) words both messages must contain."""

    id: str
    changes: dict[str, Any]
    path: str
    words: str = ""

    def manifest(self) -> dict[str, Any]:
        return changed(BASE, self.changes)


def changed(manifest: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`manifest` with each dotted path set to its value (or removed, for DELETE)."""
    result = copy.deepcopy(manifest)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = result
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = copy.deepcopy(value)
    return result


CASES = [
    # --------------------------------------------------------------- required fields, types
    Case("model missing", {"spec.model": DELETE}, "spec.model"),
    Case(
        "no image, runtime name nor model format",
        {"spec.runtime.image": DELETE},
        "spec.runtime",
        "set runtime.image, or runtime.name",
    ),
    Case(
        "unknown placeholder",
        {"spec.runtime.args": ["--model={{ .ModelPath }}"]},
        "spec.runtime.args",
        "placeholder must be one of",
    ),
    Case(
        "placeholder in extraArgs misspelt",
        {"spec.runtime.extraArgs": ["--port={{.port}}"]},
        "spec.runtime.extraArgs",
        "placeholder must be one of",
    ),
    Case("runtime name not a DNS label", {"spec.runtime.name": "vLLM"}, "spec.runtime.name"),
    Case("maxSurge a word", {"spec.rollout.canary.maxSurge": "half"}, "spec.rollout.canary.maxSurge"),
    Case(
        "maxSurge 0 with one replica",
        {"spec.rollout.canary.maxSurge": 0},
        "spec.rollout.canary.maxSurge",
        "maxSurge 0 needs at least 2 replicas",
    ),
    Case(
        "metrics source unknown",
        {"spec.runtime.metrics": {"source": "ollama"}},
        "spec.runtime.metrics.source",
    ),
    Case("image empty", {"spec.runtime.image": ""}, "spec.runtime.image"),
    Case("image not a string", {"spec.runtime.image": 42}, "spec.runtime.image"),
    Case("replicas a word", {"spec.replicas": "two"}, "spec.replicas"),
    Case("port a string", {"spec.runtime.port": "8080"}, "spec.runtime.port"),
    Case("port zero", {"spec.runtime.port": 0}, "spec.runtime.port"),
    Case("args not a list", {"spec.runtime.args": "--verbose"}, "spec.runtime.args"),
    Case(
        "node selector value a number",
        {"spec.runtime.nodeSelector": {"zone": 3}},
        "spec.runtime.nodeSelector.zone",
    ),
    Case("unknown runtime field", {"spec.runtime.imagePullPolicy": "Always"}, "spec.runtime.imagePullPolicy"),
    Case("misspelt spec field", {"spec.replica": 2}, "spec.replica"),
    Case("env entry without name", {"spec.runtime.env": [{"value": "1"}]}, "spec.runtime.env[0].name"),
    Case(
        "env names repeated",
        {"spec.runtime.env": [{"name": "MODE", "value": "a"}, {"name": "MODE", "value": "b"}]},
        "spec.runtime.env[1]",
    ),
    # --------------------------------------------------------------- enums
    Case("protocol unknown", {"spec.runtime.protocol": "tcp"}, "spec.runtime.protocol"),
    Case("strategy unknown", {"spec.rollout.strategy": "bluegreen"}, "spec.rollout.strategy"),
    Case("provider unknown", {"spec.traffic.provider": "linkerd"}, "spec.traffic.provider"),
    Case(
        "toleration operator unknown",
        {"spec.runtime.tolerations": [{"key": "gpu", "operator": "Maybe"}]},
        "spec.runtime.tolerations[0].operator",
    ),
    Case(
        "autoscaling metric unknown",
        {"spec.autoscaling": {"maxReplicas": 3, "metric": "memory"}},
        "spec.autoscaling.metric",
    ),
    Case(
        "autoscaling engine unknown",
        {"spec.autoscaling": {"maxReplicas": 3, "engine": "vpa"}},
        "spec.autoscaling.engine",
    ),
    # --------------------------------------------------------------- model URIs
    Case(
        "uri scheme ftp", {"spec.model.uri": "ftp://models/x"}, "spec.model.uri", "uri must start with one of"
    ),
    Case("uri without location", {"spec.model.uri": "s3://"}, "spec.model.uri", "uri must start with one of"),
    Case(
        "uri without scheme",
        {"spec.model.uri": "models/sentiment"},
        "spec.model.uri",
        "uri must start with one of",
    ),
    Case(
        "pvc uri without path",
        {"spec.model.uri": "pvc://shared-models"},
        "spec.model.uri",
        "pvc://<claim>/<path>",
    ),
    Case(
        "pvc claim not a DNS name",
        {"spec.model.uri": "pvc://Shared_Models/bert"},
        "spec.model.uri",
        "pvc://<claim>/<path>",
    ),
    Case("hf uri without name", {"spec.model.uri": "hf://distilbert"}, "spec.model.uri", "hf://<org>/<name>"),
    Case(
        "hf uri with empty revision",
        {"spec.model.uri": "hf://org/name@"},
        "spec.model.uri",
        "hf://<org>/<name>",
    ),
    Case(
        "allowPatterns on s3",
        {"spec.model.allowPatterns": ["*.onnx"]},
        "spec.model.allowPatterns",
        "allowPatterns applies to hf:// models only",
    ),
    Case("sha256 not hex", {"spec.model.sha256": "not-a-digest"}, "spec.model.sha256"),
    Case(
        "credentials secret not a name",
        {"spec.model.credentialsSecret": "S3_Creds"},
        "spec.model.credentialsSecret",
    ),
    # --------------------------------------------------------------- model verification
    Case(
        "verification without a key",
        {"spec.model.verification": {"signature": "model.sig"}},
        "spec.model.verification",
        "set exactly one of publicKey or certificateChain",
    ),
    Case(
        "verification with a key and certificates",
        {"spec.model.verification": {"publicKey": SIGNER_KEY, "certificateChain": SIGNER_KEY}},
        "spec.model.verification",
        "set exactly one of publicKey or certificateChain",
    ),
    Case(
        "key in a secret and a configmap",
        {"spec.model.verification.publicKey": SIGNER_KEY | {"configMapName": "signers"}},
        "spec.model.verification.publicKey",
        "set exactly one of secretName or configMapName",
    ),
    Case(
        "key without a key name",
        {"spec.model.verification.publicKey": {"secretName": "signer"}},
        "spec.model.verification.publicKey.key",
    ),
    Case(
        "signature outside the model",
        {"spec.model.verification": {"publicKey": SIGNER_KEY, "signature": "../model.sig"}},
        "spec.model.verification.signature",
        "signature must be a relative path inside the model",
    ),
    Case(
        "signature of another scheme",
        {"spec.model.verification": {"publicKey": SIGNER_KEY, "signature": "gs://signatures/model.sig"}},
        "spec.model.verification.signature",
        "verification.signature, when a URI, must use the scheme of uri",
    ),
    Case(
        "verification of a pvc model",
        {"spec.model": {"uri": "pvc://models/sentiment", "verification": {"publicKey": SIGNER_KEY}}},
        "spec.model.verification",
        "pvc:// and oci:// models are mounted, not fetched",
    ),
    # --------------------------------------------------------------- resources and GPUs
    Case("memory lots", {"spec.runtime.resources": {"memory": "lots"}}, "spec.runtime.resources.memory"),
    Case("cpu negative", {"spec.runtime.resources": {"cpu": -1}}, "spec.runtime.resources.cpu"),
    Case("cpu a boolean", {"spec.runtime.resources": {"cpu": True}}, "spec.runtime.resources.cpu"),
    Case("gpu negative", {"spec.runtime.resources": {"gpu": -1}}, "spec.runtime.resources.gpu"),
    Case("gpu too many", {"spec.runtime.resources": {"gpu": 17}}, "spec.runtime.resources.gpu"),
    Case("gpu fractional", {"spec.runtime.resources": {"gpu": 0.5}}, "spec.runtime.resources.gpu"),
    Case(
        "gpu product without gpus",
        {"spec.runtime.gpu": {"product": "NVIDIA-A100-SXM4-80GB"}},
        "spec.runtime.resources.gpu",
        "resources.gpu must be at least 1",
    ),
    Case(
        "MIG profile without gpus",
        {"spec.runtime.gpu": {"migProfile": "1g.10gb"}},
        "spec.runtime.resources.gpu",
        "resources.gpu must be at least 1",
    ),
    Case(
        "MIG profile malformed",
        {"spec.runtime.gpu": {"migProfile": "half"}, "spec.runtime.resources": {"gpu": 1}},
        "spec.runtime.gpu.migProfile",
    ),
    Case("shm size a word", {"spec.runtime.shmSize": "big"}, "spec.runtime.shmSize"),
    Case("readiness path relative", {"spec.runtime.readinessPath": "healthz"}, "spec.runtime.readinessPath"),
    # --------------------------------------------------------------- rollout
    Case("canary weight above 100", {"spec.rollout.canary.weight": 150}, "spec.rollout.canary.weight"),
    Case("canary weight negative", {"spec.rollout.canary.weight": -5}, "spec.rollout.canary.weight"),
    Case(
        "step with weight and pause",
        {"spec.rollout.canary.steps": [{"weight": 10, "pause": {"duration": "1m"}}]},
        "spec.rollout.canary.steps[0]",
        "exactly one of weight, pause or analysis",
    ),
    Case(
        "empty step",
        {"spec.rollout.canary.steps": [{"weight": 10}, {}]},
        "spec.rollout.canary.steps[1]",
        "exactly one of weight, pause or analysis",
    ),
    Case(
        "step weights decreasing",
        {"spec.rollout.canary.steps": [{"weight": 50}, {"pause": {}}, {"weight": 20}]},
        "spec.rollout.canary.steps",
        "step weights must not decrease",
    ),
    Case(
        "step weight above 100",
        {"spec.rollout.canary.steps": [{"weight": 10}, {"weight": 101}]},
        "spec.rollout.canary.steps[1].weight",
    ),
    Case(
        "too many steps",
        {"spec.rollout.canary.steps": [{"weight": 1}] * 33},
        "spec.rollout.canary.steps",
    ),
    Case(
        "pause duration in words",
        {"spec.rollout.canary.steps": [{"pause": {"duration": "5 minutes"}}]},
        "spec.rollout.canary.steps[0].pause.duration",
    ),
    Case(
        "analysis step without Prometheus",
        {"spec.rollout.canary.steps": [{"weight": 10}, {"analysis": {"metrics": [SUCCESS_RATE]}}]},
        "spec.rollout.canary.steps",
        "an analysis step needs a Prometheus",
    ),
    Case(
        "analysis step without metrics",
        {
            "spec.rollout.canary.steps": [{"weight": 10}, {"analysis": {}}],
            "spec.rollout.canary.analysis": {"prometheus": PROMETHEUS},
        },
        "spec.rollout.canary.steps",
        "an analysis step needs at least one metric",
    ),
    Case(
        "custom metric without query",
        {
            "spec.rollout.canary.analysis": {
                "prometheus": PROMETHEUS,
                "metrics": [{"name": "errors", "max": 1}],
            }
        },
        "spec.rollout.canary.analysis.metrics[0].query",
        "query is required when template is custom",
    ),
    Case(
        "metric without bounds",
        {"spec.rollout.canary.analysis": {"metrics": [{"name": "ok", "template": "success-rate"}]}},
        "spec.rollout.canary.analysis.metrics[0]",
        "a metric needs min or max",
    ),
    Case(
        "metric min above max",
        {
            "spec.rollout.canary.analysis": {
                "metrics": [{"name": "p99", "template": "latency-p99", "min": 2, "max": 1}]
            }
        },
        "spec.rollout.canary.analysis.metrics[0].min",
        "min must not be greater than max",
    ),
    Case(
        "metric names repeated",
        {"spec.rollout.canary.analysis": {"metrics": [SUCCESS_RATE, SUCCESS_RATE]}},
        "spec.rollout.canary.analysis.metrics[1]",
    ),
    Case(
        "metric threshold a string",
        {"spec.rollout.canary.analysis": {"metrics": [{**SUCCESS_RATE, "min": "high"}]}},
        "spec.rollout.canary.analysis.metrics[0].min",
    ),
    Case(
        "analysis interval in days",
        {"spec.rollout.canary.analysis": {"interval": "1d"}},
        "spec.rollout.canary.analysis.interval",
    ),
    Case(
        "failure limit negative",
        {"spec.rollout.canary.analysis": {"failureLimit": -1}},
        "spec.rollout.canary.analysis.failureLimit",
    ),
    Case(
        "prometheus address not a URL",
        {"spec.rollout.canary.analysis": {"prometheus": {"address": "prometheus:9090"}}},
        "spec.rollout.canary.analysis.prometheus.address",
    ),
    # --------------------------------------------------------------- autoscaling
    Case(
        "min replicas above max",
        {"spec.autoscaling": {"minReplicas": 5, "maxReplicas": 2}},
        "spec.autoscaling.minReplicas",
        "minReplicas must not be greater than maxReplicas",
    ),
    Case(
        "scale to zero with hpa",
        {"spec.autoscaling": {"minReplicas": 0, "maxReplicas": 2}},
        "spec.autoscaling.minReplicas",
        "needs engine keda",
    ),
    Case("max replicas missing", {"spec.autoscaling": {"minReplicas": 1}}, "spec.autoscaling.maxReplicas"),
    Case(
        "prometheus metric without query",
        {"spec.autoscaling": {"maxReplicas": 3, "metric": "prometheus"}},
        "spec.autoscaling.query",
        "query is required when metric is prometheus",
    ),
    Case(
        "gpu utilization above 100",
        {"spec.autoscaling": {"maxReplicas": 3, "metric": "gpu-utilization", "target": 150}},
        "spec.autoscaling.target",
        "at most 100",
    ),
    Case("target zero", {"spec.autoscaling": {"maxReplicas": 3, "target": 0}}, "spec.autoscaling.target"),
    # --------------------------------------------------------------- traffic
    Case(
        "header routing with smi",
        {"spec.traffic": {"provider": "smi", "headerRouting": {"name": "x-canary", "value": "always"}}},
        "spec.traffic.headerRouting",
        "headerRouting needs provider",
    ),
    Case(
        "mirror with nginx",
        {"spec.traffic": {"provider": "nginx", "mirror": {"percent": 5}}},
        "spec.traffic.mirror",
        "mirror needs provider",
    ),
    Case("mirror above 100", {"spec.traffic.mirror": {"percent": 200}}, "spec.traffic.mirror.percent"),
    Case(
        "header name with a space",
        {"spec.traffic.headerRouting": {"name": "x canary", "value": "1"}},
        "spec.traffic.headerRouting.name",
    ),
    Case("host with underscore", {"spec.traffic.hosts": ["bad_host.example.com"]}, "spec.traffic.hosts[0]"),
    Case("timeout in words", {"spec.traffic.timeout": "soon"}, "spec.traffic.timeout"),
    Case(
        "gateway without name",
        {"spec.traffic.gateway": {"namespace": "gateways"}},
        "spec.traffic.gateway.name",
    ),
    Case(
        "reserved pod label",
        {"spec.runtime.podLabels": {"team": "nlp", "modeldeploy.io/revision": "x"}},
        "spec.runtime.podLabels",
        "podLabels key modeldeploy.io/revision is reserved",
    ),
    Case(
        "pod label the operator sets",
        {"spec.runtime.podLabels": {"app.kubernetes.io/managed-by": "helm"}},
        "spec.runtime.podLabels",
        "podLabels key app.kubernetes.io/managed-by is reserved",
    ),
    Case(
        "progress deadline too short",
        {"spec.rollout.progressDeadlineSeconds": 5},
        "spec.rollout.progressDeadlineSeconds",
    ),
    Case(
        "initializer memory in words",
        {"spec.model.initializer": {"resources": {"limits": {"memory": "a lot"}}}},
        "spec.model.initializer.resources.limits.memory",
    ),
    # --------------------------------------------------------------- metadata
    Case("name too long", {"metadata.name": "m" * 53}, "metadata.name", "metadata.name must be a DNS label"),
    Case(
        "name with a dot",
        {"metadata.name": "sentiment.v7"},
        "metadata.name",
        "metadata.name must be a DNS label",
    ),
]


def problems_of(manifest: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidModelDeployment) as refused:
        parse_model_deployment(manifest)
    return refused.value.problems


def test_the_base_manifest_is_valid() -> None:
    assert parse_model_deployment(BASE).spec.runtime.image == "ghcr.io/example/onnx-server:1.4"


def test_there_are_many_distinct_cases() -> None:
    manifests = [case.manifest() for case in CASES]
    assert len(CASES) >= 30
    assert all(manifests.count(manifest) == 1 for manifest in manifests)
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_pydantic_refuses_and_names_the_field(case: Case) -> None:
    problems = problems_of(case.manifest())
    # Problems start with the field path; a rule on the whole object starts with the field's name.
    assert any(problem.startswith(case.path) for problem in problems), problems
    if case.words:
        assert any(case.words in problem for problem in problems), problems
