"""Generated ModelDeployments: strategies for valid-looking manifests and for broken ones.

`manifests()` draws manifests a user could plausibly write; most are valid, a few break a
cross-field rule on purpose (independent min/max replicas, GPU settings without GPUs).
`broken_manifests()` mutates those: wrong types, values at and past the bounds, other enum
values, deleted or duplicated entries, unknown fields. The cluster test
tests/cluster/test_api_cluster.py feeds both to pydantic and to the API server and demands
the same verdict; the properties here need no cluster.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from modeldeploy.api.crd import root_schema
from modeldeploy.api.models import ModelDeployment
from modeldeploy.api.validation import InvalidModelDeployment, parse_model_deployment

# Plain strategies rather than st.from_regex: drawing from a regex is ten times slower.
dns_names = st.builds(
    "{}{}".format,
    st.sampled_from("abcdefghijklmnopqrstuvwxyz"),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789", max_size=8),
)
words = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
durations = st.sampled_from(["30s", "1m", "5m", "1h30m", "250ms", "2h"])
quantities = st.one_of(st.integers(0, 64), st.sampled_from(["500m", "1", "2", "1.5", "128Mi", "8Gi"]))
percents = st.integers(0, 100)
prometheus = st.fixed_dictionaries(
    {"address": st.sampled_from(["http://prometheus:9090", "https://prom.example"])}
)

uris = st.one_of(
    st.builds("s3://{}/{}/".format, dns_names, dns_names),
    st.builds("gs://{}/{}".format, dns_names, dns_names),
    st.builds("hf://{}/{}".format, dns_names, dns_names),
    st.builds("hf://{}/{}@{}".format, dns_names, dns_names, st.sampled_from(["main", "v1.0", "a1b2c3d"])),
    st.builds("https://models.example.com/{}.tar.gz".format, dns_names),
    st.builds("pvc://{}/{}".format, dns_names, dns_names),
    st.builds("oci://registry.example.com/{}:{}".format, dns_names, st.sampled_from(["1", "latest"])),
    st.builds("file:///models/{}".format, dns_names),
)


@st.composite
def model_sources(draw: st.DrawFn) -> dict[str, Any]:
    uri = draw(uris)
    optional: dict[str, st.SearchStrategy[Any]] = {
        "format": st.sampled_from(["onnx", "pytorch", "xgboost"]),
        "sha256": st.binary(min_size=32, max_size=32).map(bytes.hex),
        "credentialsSecret": dns_names,
    }
    if uri.startswith("hf://"):
        optional["allowPatterns"] = st.lists(
            st.sampled_from(["*.json", "*.safetensors", "vocab.txt"]), max_size=3
        )
    return {"uri": uri, **draw(st.fixed_dictionaries({}, optional=optional))}


@st.composite
def runtimes(draw: st.DrawFn) -> dict[str, Any]:
    runtime = draw(
        st.fixed_dictionaries(
            {"image": st.sampled_from(["ghcr.io/example/server:1", "vllm/vllm-openai:v0.6.3"])},
            optional={
                "command": st.lists(words, max_size=2),
                "args": st.lists(words, max_size=3),
                "env": st.lists(
                    st.fixed_dictionaries({"name": dns_names}, optional={"value": words}),
                    max_size=3,
                    unique_by=lambda env: env["name"],
                ),
                "port": st.integers(1, 65535),
                "protocol": st.sampled_from(["http", "grpc"]),
                "readinessPath": st.sampled_from(["/", "/healthz", "/v2/health/ready"]),
                "livenessPath": st.sampled_from(["/live", "/"]),
                "startupTimeoutSeconds": st.integers(10, 86400),
                "resources": st.fixed_dictionaries(
                    {}, optional={"cpu": quantities, "memory": quantities, "gpu": st.integers(0, 16)}
                ),
                "shmSize": quantities,
                "tolerations": st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "key": dns_names,
                            "operator": st.sampled_from(["Exists", "Equal"]),
                            "effect": st.sampled_from(["NoSchedule", "NoExecute"]),
                            "tolerationSeconds": st.integers(0, 3600),
                        },
                    ),
                    max_size=2,
                ),
                "nodeSelector": st.dictionaries(dns_names, dns_names, max_size=2),
                "serviceAccountName": dns_names,
                "podLabels": st.dictionaries(dns_names, words, max_size=2),
            },
        )
    )
    # A GPU product or MIG profile without GPUs is refused: drawn now and then to test that.
    if runtime.get("resources", {}).get("gpu", 0) > 0 or draw(st.integers(0, 9)) == 0:
        runtime["gpu"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "product": st.sampled_from(["NVIDIA-A100-SXM4-80GB", "NVIDIA-L4"]),
                    "migProfile": st.sampled_from(["1g.10gb", "3g.40gb"]),
                },
            )
        )
    return runtime


metrics = st.one_of(
    st.fixed_dictionaries(
        {"name": dns_names, "template": st.sampled_from(["success-rate", "latency-p99"])},
        optional={"min": st.floats(0, 1), "max": st.floats(1, 10)},
    ).filter(lambda metric: "min" in metric or "max" in metric),
    st.fixed_dictionaries(
        {
            "name": dns_names,
            "query": st.sampled_from(["sum(rate(errors[1m]))", 'up{revision="{{ revision }}"}']),
        },
        optional={"template": st.just("custom"), "min": st.floats(-1, 0)},
    ).map(lambda metric: {**metric, "max": 100.0}),
)
metric_lists = st.lists(metrics, min_size=1, max_size=2, unique_by=lambda metric: metric["name"])
analysis_settings = {
    "interval": durations,
    "count": st.integers(1, 100),
    "failureLimit": st.integers(0, 100),
    "inconclusiveLimit": st.integers(0, 100),
}


@st.composite
def canaries(draw: st.DrawFn) -> dict[str, Any]:
    canary = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "weight": percents,
                "scaleDownDelaySeconds": st.integers(0, 86400),
                "analysis": st.fixed_dictionaries(
                    {"prometheus": prometheus, "metrics": metric_lists}, optional=analysis_settings
                ),
            },
        )
    )
    # Analysis steps take what they leave out from canary.analysis, so without one they set all.
    step_analysis = (
        st.fixed_dictionaries({}, optional={**analysis_settings, "metrics": metric_lists})
        if "analysis" in canary
        else st.fixed_dictionaries(
            {"prometheus": prometheus, "metrics": metric_lists}, optional=analysis_settings
        )
    )
    steps = draw(
        st.lists(
            st.one_of(
                st.fixed_dictionaries({"weight": percents}),
                st.fixed_dictionaries({"pause": st.fixed_dictionaries({}, optional={"duration": durations})}),
                st.fixed_dictionaries({"analysis": step_analysis}),
            ),
            max_size=5,
        )
    )
    weights = iter(sorted(step["weight"] for step in steps if "weight" in step))
    if steps:
        canary["steps"] = [{"weight": next(weights)} if "weight" in step else step for step in steps]
    return canary


@st.composite
def traffics(draw: st.DrawFn) -> dict[str, Any]:
    provider = draw(st.sampled_from(["gateway-api", "istio", "nginx", "smi", "service"]))
    optional: dict[str, st.SearchStrategy[Any]] = {
        "gateway": st.fixed_dictionaries({"name": dns_names}, optional={"namespace": dns_names}),
        "ingressClassName": dns_names,
        "hosts": st.lists(st.builds("{}.example.com".format, dns_names), max_size=3),
        "path": st.sampled_from(["/", "/v1/models"]),
        "timeout": durations,
    }
    if provider in ("gateway-api", "istio", "nginx"):
        optional["headerRouting"] = st.fixed_dictionaries(
            {"name": st.sampled_from(["x-canary", "X-Tester"]), "value": st.sampled_from(["always", "1"])}
        )
    if provider in ("gateway-api", "istio"):
        optional["mirror"] = st.fixed_dictionaries({}, optional={"percent": percents})
    return {"provider": provider, **draw(st.fixed_dictionaries({}, optional=optional))}


@st.composite
def autoscalings(draw: st.DrawFn) -> dict[str, Any]:
    # Replica bounds are drawn independently, so some break minReplicas <= maxReplicas and
    # some ask hpa to scale to zero: both refused.
    scaling = draw(
        st.fixed_dictionaries(
            {"maxReplicas": st.integers(1, 8)},
            optional={
                "engine": st.sampled_from(["hpa", "keda"]),
                "minReplicas": st.integers(0, 4),
                "prometheusAddress": st.just("http://prometheus:9090"),
                "scaleDownStabilizationSeconds": st.integers(0, 3600),
            },
        )
    )
    metric = draw(st.sampled_from(["cpu", "gpu-utilization", "concurrency", "rps", "prometheus"]))
    scaling["metric"] = metric
    scaling["target"] = draw(st.integers(1, 100 if metric == "gpu-utilization" else 1000))
    if metric == "prometheus":
        scaling["query"] = "sum(rate(requests_total[1m]))"
    return scaling


def manifests() -> st.SearchStrategy[dict[str, Any]]:
    spec = st.fixed_dictionaries(
        {"model": model_sources(), "runtime": runtimes()},
        optional={
            "replicas": st.integers(0, 1000),
            "rollout": st.fixed_dictionaries(
                {},
                optional={
                    "strategy": st.sampled_from(["canary", "rolling", "recreate"]),
                    "canary": canaries(),
                },
            ),
            "traffic": traffics(),
            "autoscaling": autoscalings(),
        },
    )
    return st.builds(
        lambda name, spec: {
            "apiVersion": "modeldeploy.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name},
            "spec": spec,
        },
        dns_names,
        spec,
    )


# --------------------------------------------------------------------------- breaking them


def _enum_values(schema: dict[str, Any]) -> Iterator[str]:
    yield from schema.get("enum", ())
    children = [*schema.get("properties", {}).values(), *([schema["items"]] if "items" in schema else [])]
    for child in children:
        yield from _enum_values(child)


ENUM_VALUES = sorted(set(_enum_values(root_schema())))
# Strings near the edge of some field's pattern or rule.
TRICKY_STRINGS = [
    "",
    " ",
    "x y",
    "a\nb",
    "Bad_Name",
    "-1",
    "1.5Gi",
    "lots",
    "5m",
    "1d",
    "/",
    "healthz",
    "s3://",
    "S3://bucket/key",
    "pvc://claim",
    "pvc://claim/model",
    "hf://org",
    "hf://org/name@",
    "hf://org/name@main",
    "http://prometheus:9090",
    "*.example.com",
    "m" * 53,
]
BOUNDARY_INTEGERS = [-1, 0, 1, 10, 16, 17, 32, 33, 100, 101, 1000, 1001, 3600, 65535, 65536, 86400, 86401]
odd_values = st.one_of(
    st.sampled_from(BOUNDARY_INTEGERS),
    st.integers(-(2**31), 2**31),
    # Integral floats are left out: the API server takes 2.0 for an integer field, pydantic
    # (strict) does not. A known difference, on a value nobody writes on purpose.
    st.floats(-1e6, 1e6).filter(lambda number: not number.is_integer()),
    st.sampled_from(TRICKY_STRINGS),
    st.sampled_from(ENUM_VALUES),
    words,
    st.booleans(),
    st.just([]),
    st.just({}),
    st.none(),
)

Path = tuple[str | int, ...]


def _paths(node: Any, path: Path = ()) -> Iterator[Path]:
    yield path
    if isinstance(node, dict):
        for key, child in node.items():
            yield from _paths(child, (*path, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _paths(child, (*path, index))


def _at(node: Any, path: Path) -> Any:
    for part in path:
        node = node[part]
    return node


@st.composite
def broken_manifests(draw: st.DrawFn) -> dict[str, Any]:
    """A drawn manifest with one part of it (a field, an entry, an object) changed; most
    changes make it invalid, some do not, and the verdict is what the tests compare."""
    manifest = copy.deepcopy(draw(manifests()))
    if draw(st.integers(0, 19)) == 0:
        # Only the name: metadata is the API server's, which also refuses objects with no name
        # (pydantic lets those through, for generateName).
        manifest["metadata"]["name"] = draw(st.sampled_from([*TRICKY_STRINGS, "m" * 52, "model-7"]))
        return manifest
    path = draw(st.sampled_from(list(_paths(manifest["spec"]))[1:]))
    parent, last = _at(manifest["spec"], path[:-1]), path[-1]
    change = draw(st.sampled_from(["replace", "delete", "unknown field", "duplicate"]))
    if change == "delete":
        del parent[last]
    elif change == "unknown field" and isinstance(parent[last], dict):
        parent[last][draw(st.sampled_from(["replica", "Image", "weights", "extra"]))] = draw(odd_values)
    elif change == "duplicate" and isinstance(parent, list):
        parent.insert(int(last), copy.deepcopy(parent[last]))
    else:
        parent[last] = draw(odd_values)
    return manifest


# --------------------------------------------------------------------------- properties


def verdict(manifest: dict[str, Any]) -> ModelDeployment | None:
    try:
        return ModelDeployment.model_validate(manifest, by_alias=True, by_name=False)
    except ValidationError:
        return None


@settings(max_examples=100)
@given(manifests())
def test_most_drawn_manifests_are_valid_and_round_trip(manifest: dict[str, Any]) -> None:
    md = verdict(manifest)
    assume(md is not None)
    assert md is not None
    wire = md.model_dump(by_alias=True, mode="json")
    assert ModelDeployment.model_validate(wire, by_alias=True, by_name=False) == md
    assert parse_model_deployment(md.model_dump(by_alias=True, exclude_unset=True, mode="json")) == md


@settings(max_examples=100)
@given(manifests())
def test_a_manifest_written_with_nulls_means_the_same_without_them(manifest: dict[str, Any]) -> None:
    md = verdict(manifest)
    assume(md is not None)
    assert md is not None
    with_nulls = md.model_dump(by_alias=True, mode="json")
    assert verdict(with_nulls) == md


@settings(max_examples=100)
@given(broken_manifests())
def test_every_problem_of_a_broken_manifest_names_its_field(manifest: dict[str, Any]) -> None:
    try:
        parse_model_deployment(manifest)
    except InvalidModelDeployment as refused:
        assert all(problem.startswith(("spec", "metadata.name")) for problem in refused.problems), (
            refused.problems
        )
