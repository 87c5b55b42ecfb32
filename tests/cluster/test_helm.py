"""The chart against the real API server: install, upgrade and uninstall, in both modes.

The operator's image is not pulled (KWOK plays the kubelets), so what is checked is what the
API server decides: the pods are admitted under the `restricted` Pod Security Standard, the
Deployment becomes available, and the operator's ServiceAccount may do what it needs and no
more (asked with `kubectl auth can-i`, answered by the real RBAC authorizer). The operator
itself then runs as a process logged in as that ServiceAccount.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from modeldeploy.controller.kube import USER_AGENT
from tests.cluster.conftest import AuditLog, Kubectl, Operator
from tests.cluster.modeldeployments import manifest, wait_condition
from tests.cluster.waiting import wait_for
from tests.unit.test_chart import CHART, helm_binary

CRD = "modeldeployments.modeldeploy.io"


@dataclass
class Release:
    """One installation of the chart; its full name is the release name plus "-modeldeploy"."""

    name: str
    namespace: str
    kubeconfig: str

    @property
    def fullname(self) -> str:
        return f"{self.name}-modeldeploy"

    @property
    def service_account(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.fullname}"

    def helm(
        self, *args: str, values: dict[str, Any] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [helm_binary(), "--kubeconfig", self.kubeconfig, "--namespace", self.namespace, *args]
        if values is not None:
            command += ["--values", "-"]
        result = subprocess.run(command, input=yaml.safe_dump(values), capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result

    def install(self, values: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.helm("install", self.name, str(CHART), "--wait", "--timeout", "2m", values=values)

    def upgrade(self, values: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return self.helm("upgrade", self.name, str(CHART), "--wait", "--timeout", "2m", values=values)

    def uninstall(self) -> None:
        self.helm("uninstall", self.name, "--wait", "--ignore-not-found")


@pytest.fixture
def release(kubectl: Kubectl, kubeconfig: str, namespace: str) -> Iterator[Release]:
    """A release in a fresh namespace that enforces the `restricted` Pod Security Standard.
    Uninstalled afterwards: its cluster-scoped objects would outlive the namespace."""
    kubectl.run("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    installed = Release(f"md-{namespace}", namespace, kubeconfig)
    yield installed
    installed.uninstall()


@pytest.fixture
def watched_namespaces(kubectl: Kubectl) -> Iterator[list[str]]:
    names = [f"t-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for name in names:
        kubectl.run("create", "namespace", name)
    yield names
    for name in names:
        kubectl.run("delete", "namespace", name, "--wait=false", check=False)


class Request(NamedTuple):
    verb: str
    resource: str  # plural.group, as kubectl names it
    namespace: str | None = None
    subresource: str | None = None
    name: str | None = None


def can(kubectl: Kubectl, release: Release, request: Request) -> bool:
    """May the operator's ServiceAccount make this request?"""
    target = f"{request.resource}/{request.name}" if request.name else request.resource
    options = ["--as", release.service_account]
    if request.namespace:
        options += ["--namespace", request.namespace]
    if request.subresource:
        options += ["--subresource", request.subresource]
    answer = kubectl.run("auth", "can-i", request.verb, target, *options, check=False)
    return answer.stdout.strip() == "yes"


def wait_until_ready(kubectl: Kubectl, release: Release, replicas: int) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        deployment = kubectl.json("get", "deployment", release.fullname, "-n", release.namespace)
        status = deployment.get("status", {})
        settled = status.get("observedGeneration") == deployment["metadata"]["generation"]
        all_ready = status.get("readyReplicas") == status.get("updatedReplicas") == replicas
        return deployment if settled and all_ready else None

    return wait_for(f"{replicas} ready replicas of {release.fullname}", ready)


def exists(kubectl: Kubectl, *what: str) -> bool:
    return kubectl.run("get", *what, check=False).returncode == 0


def test_cluster_wide_install_upgrade_and_uninstall(kubectl: Kubectl, release: Release) -> None:
    notes = release.install({"replicaCount": 2}).stdout

    wait_until_ready(kubectl, release, replicas=2)
    assert "kubectl get md" in notes
    assert exists(kubectl, "crd", CRD)
    slices = kubectl.json(
        "get", "endpointslices", "-n", release.namespace,
        "-l", f"kubernetes.io/service-name={release.fullname}-metrics",
    )  # fmt: skip
    assert sum(len(s.get("endpoints") or []) for s in slices["items"]) == 2
    anywhere = f"t-{uuid.uuid4().hex[:8]}"
    for allowed in (
        Request("watch", CRD, anywhere),
        Request("patch", CRD, anywhere, subresource="status"),
        Request("create", "deployments.apps", anywhere),
        Request("list", "nodes"),
        Request("create", "leases.coordination.k8s.io", release.namespace),
    ):
        assert can(kubectl, release, allowed), allowed
    for refused in (
        Request("patch", CRD, anywhere),
        Request("get", "secrets", anywhere),
        Request("create", "pods", anywhere),
        Request("create", "leases.coordination.k8s.io", anywhere),
    ):
        assert not can(kubectl, release, refused), refused

    release.upgrade({"replicaCount": 3, "resources": {"requests": {"cpu": "200m", "memory": "300Mi"}}})

    deployment = wait_until_ready(kubectl, release, replicas=3)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"] == {"cpu": "200m", "memory": "300Mi"}
    history = yaml.safe_load(release.helm("history", release.name, "--output", "yaml").stdout)
    assert [entry["status"] for entry in history] == ["superseded", "deployed"]

    release.uninstall()

    assert not exists(kubectl, "deployment", release.fullname, "-n", release.namespace)
    assert not exists(kubectl, "clusterrole", release.fullname)
    # Helm never deletes CRDs: that would delete every ModelDeployment with them.
    assert exists(kubectl, "crd", CRD)


def test_namespaced_install_grants_rights_only_in_the_watched_namespaces(
    kubectl: Kubectl, release: Release, watched_namespaces: list[str]
) -> None:
    release.install({"watchNamespaces": watched_namespaces, "replicaCount": 1})

    deployment = wait_until_ready(kubectl, release, replicas=1)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [arg for arg in args if arg.startswith("--namespace")] == [
        f"--namespace={name}" for name in watched_namespaces
    ]
    for watched in watched_namespaces:
        assert can(kubectl, release, Request("create", "deployments.apps", watched))
        assert can(kubectl, release, Request("patch", CRD, watched, subresource="status"))
    elsewhere = release.namespace
    assert not can(kubectl, release, Request("list", CRD, elsewhere))
    assert not can(kubectl, release, Request("create", "deployments.apps", elsewhere))
    # The cluster-scoped reads it cannot do without.
    assert can(kubectl, release, Request("watch", "nodes"))
    assert can(kubectl, release, Request("watch", "customresourcedefinitions.apiextensions.k8s.io"))


def test_a_values_typo_installs_nothing(kubectl: Kubectl, release: Release) -> None:
    result = release.helm("install", release.name, str(CHART), values={"replicaCont": 3}, check=False)

    assert result.returncode != 0
    assert "additional properties 'replicaCont' not allowed" in result.stderr
    assert release.helm("status", release.name, check=False).returncode != 0
    assert not exists(kubectl, "deployment", release.fullname, "-n", release.namespace)


def service_account_kubeconfig(kubectl: Kubectl, release: Release, path: Path) -> str:
    """The test cluster's kubeconfig, logged in as the operator's ServiceAccount."""
    token = kubectl.run("create", "token", release.fullname, "-n", release.namespace).stdout.strip()
    config = kubectl.json("config", "view", "--raw", "--minify")
    config["users"] = [{"name": "operator", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "operator"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def operator_writes(audit_log: AuditLog, release: Release, model_namespace: str) -> set[Request]:
    """Every write the release's ServiceAccount made, and every write any modeldeploy operator
    made in `model_namespace` (the shared cluster may run others that reconcile it first)."""
    writes = set()
    for line in audit_log.path.read_text().splitlines():
        entry = json.loads(line)
        ref = entry.get("objectRef", {})
        by_this_release = entry["user"]["username"] == release.service_account
        for_the_model = (
            entry.get("userAgent", "").startswith(USER_AGENT) and ref.get("namespace") == model_namespace
        )
        if by_this_release or for_the_model:
            resource = ".".join(filter(None, (ref["resource"], ref.get("apiGroup"))))
            where = (ref.get("namespace"), ref.get("subresource"), ref.get("name"))
            writes.add(Request(entry["verb"], resource, *where))
            if entry["verb"] == "patch" and entry["responseStatus"]["code"] == 201:
                # A server-side apply that creates the object is authorized as a create too.
                writes.add(Request("create", resource, *where))
    return writes


@pytest.mark.usefixtures("modeldeployment_crd", "provider_crds")
def test_the_operator_works_with_only_the_rights_the_chart_grants(
    kubectl: Kubectl, release: Release, watched_namespaces: list[str], audit_log: AuditLog, tmp_path: Path
) -> None:
    """`modeldeploy run` logged in as the chart's ServiceAccount, with the chart's arguments:
    no watch of it is refused, and the ServiceAccount may make every write seen for the model."""
    release.install({"watchNamespaces": watched_namespaces, "replicaCount": 1})
    model_namespace = watched_namespaces[0]
    operator = Operator(
        service_account_kubeconfig(kubectl, release, tmp_path / "kubeconfig"),
        tmp_path,
        (
            f"--leader-election-namespace={release.namespace}",
            *(f"--namespace={name}" for name in watched_namespaces),
        ),
    )
    operator.start()
    try:
        kubectl.apply(manifest("cpu-model"), "-n", model_namespace)
        wait_condition(kubectl, model_namespace, "cpu-model", "Ready", "True")
        wait_for("a reconcile", lambda: operator.metric("modeldeploy_reconciles_total", result="success"))
        assert operator.metric("modeldeploy_reconciles_total", result="error") == 0
    finally:
        operator.stop()

    assert "forbidden" not in operator.log.read_text().lower()
    writes = operator_writes(audit_log, release, model_namespace)
    made = {(write.verb, write.resource, write.subresource) for write in writes}
    assert ("create", "leases.coordination.k8s.io", None) in made
    assert ("patch", CRD, "status") in made
    assert [write for write in sorted(writes, key=str) if not can(kubectl, release, write)] == []
