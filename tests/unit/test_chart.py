"""The Helm chart, rendered by `helm template` (no cluster): CRDs, RBAC, values schema, the
image it runs and the Grafana dashboard it ships.

RBAC is compared with test_chart_rbac.golden, so a new permission shows up as a diff in review;
`UPDATE_GOLDEN=1 pytest tests/unit/test_chart.py` rewrites the file after a deliberate change.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from modeldeploy import metrics
from modeldeploy.controller.handlers import child_kinds
from modeldeploy.controller.operator import LEASE_NAME
from modeldeploy.render.model_volume import INITIALIZER_UID

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "modeldeploy"
RBAC_GOLDEN = Path(__file__).with_name("test_chart_rbac.golden")
DASHBOARD = CHART / "dashboards" / "modeldeploy.json"
# Rendering at the oldest Kubernetes the chart accepts proves that version is accepted.
OLDEST_KUBE_VERSION = re.sub(
    r"^>=|-0$", "", yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
)
RELEASE_NAMESPACE = "modeldeploy-system"
WATCHED = ["team-a", "team-b"]
MODES = {"cluster-wide": {}, "namespaced": {"watchNamespaces": WATCHED}}
CHILD_VERBS = {"get", "list", "watch", "create", "patch", "delete"}


def unavailable(message: str) -> NoReturn:
    """A tool the tests need is missing: CI must have it, a laptop may skip."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def helm_binary() -> str:
    """helm as `hack/build-binaries.sh helm` builds it."""
    versions = dict(
        line.split("=", 1)
        for line in (ROOT / "hack" / "versions.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    cache = Path(os.environ.get("MODELDEPLOY_CACHE", Path.home() / ".cache" / "modeldeploy"))
    binary = cache / f"helm-{versions['HELM_VERSION']}" / "bin" / "helm"
    if not binary.exists():
        unavailable(f"helm is not built: {binary} (hack/build-binaries.sh helm)")
    return str(binary)


def helm(
    *args: str, values: dict[str, Any] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [helm_binary(), *args, "--values", "-"],
        input=yaml.safe_dump(values or {}),
        capture_output=True,
        text=True,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {shlex.join(args)} failed:\n{result.stderr}")
    return result


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rendered = helm(
        "template",
        "modeldeploy",
        str(CHART),
        "--namespace",
        RELEASE_NAMESPACE,
        "--kube-version",
        OLDEST_KUBE_VERSION,
        values=values,
    ).stdout
    return [document for document in yaml.safe_load_all(rendered) if document]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = [obj for obj in objects if obj["kind"] == kind]
    return found


def operator_args(objects: list[dict[str, Any]]) -> list[str]:
    [container] = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return list(container["args"])


def guess_resource(kind: str) -> str:
    """Kubernetes' own kind-to-resource rule (apimachinery's UnsafeGuessKindToResource)."""
    lower = kind.lower()
    if lower.endswith("s"):
        return lower + "es"
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + "s"


@pytest.mark.parametrize("mode", MODES)
def test_helm_lint_passes(mode: str) -> None:
    result = helm("lint", "--strict", str(CHART), "--kube-version", OLDEST_KUBE_VERSION, values=MODES[mode])
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


# --------------------------------------------------------------------------- CRDs


def test_the_chart_ships_the_generated_crds_unchanged() -> None:
    generated = sorted((ROOT / "crds").glob("*.yaml"))
    assert generated, "crds/ holds no generated CRD (make crds)"
    for path in generated:
        shipped = CHART / "crds" / path.name
        assert shipped.exists(), (
            f"{path.name} is missing from the chart: cp crds/*.yaml charts/modeldeploy/crds/"
        )
        assert shipped.read_bytes() == path.read_bytes(), (
            f"charts/modeldeploy/crds/{path.name} differs from crds/{path.name}: cp crds/*.yaml charts/modeldeploy/crds/"
        )


# --------------------------------------------------------------------------- RBAC


RoleKey = tuple[str, str, str]  # kind, namespace ("" for a ClusterRole), name


def role_key(kind: str, namespace: str | None, name: str) -> RoleKey:
    return (kind, (namespace or "") if kind == "Role" else "", name)


def operator_rules(objects: list[dict[str, Any]]) -> dict[RoleKey, list[dict[str, Any]]]:
    """Rules of every role bound to the operator's ServiceAccount."""
    account = {"kind": "ServiceAccount", "name": one(objects, "ServiceAccount")["metadata"]["name"]}
    bound = {
        role_key(binding["roleRef"]["kind"], binding["metadata"].get("namespace"), binding["roleRef"]["name"])
        for binding in objects
        if binding["kind"] in ("RoleBinding", "ClusterRoleBinding")
        and any(account.items() <= subject.items() for subject in binding["subjects"])
    }
    roles = {
        role_key(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]): obj["rules"]
        for obj in objects
        if obj["kind"] in ("Role", "ClusterRole")
    }
    return {key: rules for key, rules in roles.items() if key in bound}


def rbac_table() -> str:
    """Every rule the chart grants, one resource a row: to the operator, or to people through
    the aggregated roles."""
    header = ("mode", "holder", "role", "api group", "resource", "names", "verbs")
    rows = set()
    for mode, values in MODES.items():
        objects = render(values)
        operator = operator_rules(objects)
        for obj in objects:
            if obj["kind"] not in ("Role", "ClusterRole"):
                continue
            key = role_key(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
            role = f"{key[0]} {key[1]}/{key[2]}" if key[1] else f"{key[0]} {key[2]}"
            for rule in obj["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        verbs = ",".join(sorted(rule["verbs"]))
                        holder = "operator" if key in operator else "people"
                        names = ",".join(rule.get("resourceNames", []))
                        rows.add((mode, holder, role, group or "core", resource, names, verbs))
    table = [header, *sorted(rows)]
    widths = [max(len(row[column]) for row in table) for column in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in table
    )


def test_rbac_is_the_reviewed_table() -> None:
    table = rbac_table()
    if os.environ.get("UPDATE_GOLDEN"):
        RBAC_GOLDEN.write_text(table)
    assert table == RBAC_GOLDEN.read_text(), f"RBAC changed; if on purpose: UPDATE_GOLDEN=1 pytest {__file__}"


@pytest.mark.parametrize("mode", MODES)
def test_rbac_has_no_wildcards_and_no_secrets(mode: str) -> None:
    for obj in render(MODES[mode]):
        for rule in obj.get("rules", []):
            assert "*" not in rule["apiGroups"] + rule["resources"] + rule["verbs"], rule
            assert "secrets" not in rule["resources"], rule


@pytest.mark.parametrize("mode", MODES)
def test_the_operator_may_manage_every_kind_of_child_it_renders(mode: str) -> None:
    """The children come from the operator's code, so a new kind there fails here until granted."""
    roles = operator_rules(render(MODES[mode]))
    for scope in MODES[mode].get("watchNamespaces", [""]):
        granted: dict[tuple[str, str], set[str]] = {}
        for (_, namespace, _), rules in roles.items():
            if namespace in (scope, ""):
                for rule in rules:
                    for group in rule["apiGroups"]:
                        for resource in rule["resources"]:
                            granted.setdefault((group, resource), set()).update(rule["verbs"])
        for api_version, kind in child_kinds():
            group = api_version.rpartition("/")[0]
            assert granted.get((group, guess_resource(kind)), set()) >= CHILD_VERBS, (scope, kind)


def test_each_mode_watches_its_namespaces() -> None:
    namespaced = operator_args(render(MODES["namespaced"]))
    cluster_wide = operator_args(render())

    assert [arg for arg in namespaced if arg.startswith("--namespace")] == [
        f"--namespace={name}" for name in WATCHED
    ]
    assert not [arg for arg in cluster_wide if arg.startswith("--namespace")]


@pytest.mark.parametrize("mode", MODES)
def test_the_replicas_may_hold_the_lease_they_elect_a_leader_with(mode: str) -> None:
    objects = render(MODES[mode])
    granted = {
        (verb, name)
        for (kind, namespace, _), rules in operator_rules(objects).items()
        if kind == "Role" and namespace == RELEASE_NAMESPACE
        for rule in rules
        if rule["apiGroups"] == ["coordination.k8s.io"] and rule["resources"] == ["leases"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames", ["*"])
    }

    assert f"--leader-election-namespace={RELEASE_NAMESPACE}" in operator_args(objects)
    assert granted == {("create", "*"), ("get", LEASE_NAME), ("update", LEASE_NAME)}


# --------------------------------------------------------------------------- values schema


def object_schemas(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if "properties" in schema:
        yield path or "/", schema
        for name, child in schema["properties"].items():
            yield from object_schemas(child, f"{path}/{name}")
    if isinstance(schema.get("items"), dict):
        yield from object_schemas(schema["items"], f"{path}[]")


def test_every_values_object_refuses_unknown_keys() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    for path, part in object_schemas(schema):
        assert part.get("additionalProperties") is False, path


@pytest.mark.parametrize(
    ("values", "refused"),
    [
        ({"replicaCont": 3}, "'replicaCont'"),
        ({"operator": {"logFormt": "json"}}, "'logFormt'"),
        ({"metrics": {"serviceMonitor": {"enable": True}}}, "'enable'"),
        ({"watchNamespaces": ["Team_A"]}, "/watchNamespaces/0"),
    ],
)
def test_a_values_typo_fails_the_render(values: dict[str, Any], refused: str) -> None:
    result = helm(
        "template",
        "modeldeploy",
        str(CHART),
        "--kube-version",
        OLDEST_KUBE_VERSION,
        values=values,
        check=False,
    )
    assert result.returncode != 0
    assert refused in result.stderr


# --------------------------------------------------------------------------- the image


def dockerfile_final_stage() -> dict[str, list[str]]:
    """Instructions of the Dockerfile's last stage, continuation lines joined, by keyword."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stage = text.split("\nFROM ")[-1]
    instructions: dict[str, list[str]] = {}
    for line in stage.splitlines()[1:]:
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, rest = line.strip().partition(" ")
            instructions.setdefault(keyword, []).append(rest)
    return instructions


def test_the_operator_and_the_model_fetcher_run_the_image_as_the_dockerfile_builds_it() -> None:
    image = dockerfile_final_stage()
    environment = dict(re.findall(r"(\w+)=(\S+)", " ".join(image["ENV"])))
    uid, gid = image["USER"][-1].split(":")
    pod = one(render(), "Deployment")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    writable = {mount["mountPath"] for mount in container["volumeMounts"]}

    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (int(uid), int(gid))
    assert int(uid) == INITIALIZER_UID
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {environment["HOME"], environment["TMPDIR"]} <= writable
    assert environment["PYTHONDONTWRITEBYTECODE"] == "1"
    assert sorted(port["containerPort"] for port in container["ports"]) == sorted(
        int(port) for port in " ".join(image["EXPOSE"]).split()
    )
    # The image's entrypoint is the CLI, so the chart's args start with the subcommand.
    assert json.loads(image["ENTRYPOINT"][-1]) == ["modeldeploy"]
    assert container["args"][0] == "run"


# --------------------------------------------------------------------------- the dashboard

PROMQL_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or labels."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    identifiers = re.findall(r"(?<![\w:])[A-Za-z_:][\w:]*(?![\w:])(?!\s*\()", expr)
    return set(identifiers) - PROMQL_KEYWORDS


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            # Grafana's label_values(metric, label) names one metric.
            queries += re.findall(r"label_values\(\s*([A-Za-z_:][\w:]*)", variable["query"]["query"])
    return queries


def exported_series() -> dict[str, set[str]]:
    """Series names of every metric the operator exports, by metric family."""
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
    series = {}
    for collector in vars(metrics).values():
        if isinstance(collector, MetricWrapperBase):
            for family in collector.describe():
                series[family.name] = {family.name + suffix for suffix in suffixes[family.type]}
    return series


def test_the_dashboard_shows_every_operator_metric_and_nothing_else() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    used = set().union(*(promql_metric_names(query) for query in dashboard_queries(dashboard)))
    exported = exported_series()
    assert used <= set().union(*exported.values()), used - set().union(*exported.values())
    assert [family for family, names in exported.items() if not names & used] == []


def test_the_dashboard_configmap_carries_the_dashboard() -> None:
    configmap = one(render({"grafanaDashboard": {"enabled": True}}), "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["modeldeploy.json"]) == json.loads(DASHBOARD.read_text())


def test_the_shipped_runtimes_are_off_by_default_and_verbatim_when_on() -> None:
    assert not [obj for obj in render() if obj["kind"] == "ModelRuntime"]
    shipped = [obj for obj in render({"runtimes": {"enabled": True}}) if obj["kind"] == "ModelRuntime"]
    examples = [
        yaml.safe_load(path.read_text()) for path in sorted((ROOT / "examples" / "runtimes").glob("*.yaml"))
    ]
    assert sorted(shipped, key=lambda obj: obj["metadata"]["name"]) == sorted(
        examples, key=lambda obj: obj["metadata"]["name"]
    )
    assert (
        "--model={{ .ModelDir }}"
        in next(obj for obj in shipped if obj["metadata"]["name"] == "vllm")["spec"]["runtime"]["args"]
    )
