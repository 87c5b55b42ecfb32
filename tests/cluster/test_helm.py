"""The chart against the real API server: install, upgrade and uninstall, in both modes.

The operator's image is not pulled (KWOK plays the kubelets), so what is checked is what the
API server decides: the pods are admitted under the `restricted` Pod Security Standard, the
Deployment becomes available, and the operator's ServiceAccount may do exactly what it needs
(asked with `kubectl auth can-i`, answered by the real RBAC authorizer).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import Kubectl, Operator
from tests.cluster.modeldeployments import manifest, wait_condition
from tests.cluster.waiting import wait_for
from tests.unit.test_chart import CHART, helm_binary

CHART_CRDS = (
    "modeldeployments.modeldeploy.io",
    "clusterkopfpeerings.kopf.dev",
    "kopfpeerings.kopf.dev",
)


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


def can(kubectl: Kubectl, release: Release, verb: str, resource: str, namespace: str | None = None) -> bool:
    """May the operator do this? `resource` may name a subresource: modeldeployments.modeldeploy.io/status."""
    resource, _, subresource = resource.partition("/")
    scope = ["--namespace", namespace] if namespace else []
    if subresource:
        scope += ["--subresource", subresource]
    answer = kubectl.run(
        "auth", "can-i", verb, resource, "--as", release.service_account, *scope, check=False
    )
    return answer.stdout.strip() == "yes"


def wait_until_ready(kubectl: Kubectl, release: Release, replicas: int) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        deployment = kubectl.json("get", "deployment", release.fullname, "-n", release.namespace)
        status = deployment.get("status", {})
        settled = status.get("observedGeneration") == deployment["metadata"]["generation"]
        return (
            deployment
            if settled and status.get("readyReplicas") == status.get("updatedReplicas") == replicas
            else None
        )

    return wait_for(f"{replicas} ready replicas of {release.fullname}", ready)


def exists(kubectl: Kubectl, *what: str) -> bool:
    return kubectl.run("get", *what, check=False).returncode == 0


def test_cluster_wide_install_upgrade_and_uninstall(kubectl: Kubectl, release: Release) -> None:
    notes = release.install({"replicaCount": 2}).stdout

    wait_until_ready(kubectl, release, replicas=2)
    assert "kubectl get md" in notes
    for crd in CHART_CRDS:
        assert exists(kubectl, "crd", crd)
    assert exists(kubectl, "clusterkopfpeering", release.fullname)
    slices = kubectl.json(
        "get",
        "endpointslices",
        "-n",
        release.namespace,
        "-l",
        f"kubernetes.io/service-name={release.fullname}-metrics",
    )
    assert sum(len(s.get("endpoints") or []) for s in slices["items"]) == 2
    anywhere = f"t-{uuid.uuid4().hex[:8]}"
    assert can(kubectl, release, "watch", "modeldeployments.modeldeploy.io", anywhere)
    assert can(kubectl, release, "patch", "modeldeployments.modeldeploy.io/status", anywhere)
    assert can(kubectl, release, "create", "deployments.apps", anywhere)
    assert can(kubectl, release, "list", "nodes")
    assert not can(kubectl, release, "patch", "modeldeployments.modeldeploy.io", anywhere)
    assert not can(kubectl, release, "get", "secrets", anywhere)
    assert not can(kubectl, release, "create", "pods", anywhere)

    release.upgrade({"replicaCount": 3, "resources": {"requests": {"cpu": "200m", "memory": "300Mi"}}})

    deployment = wait_until_ready(kubectl, release, replicas=3)
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"] == {"cpu": "200m", "memory": "300Mi"}
    history = yaml.safe_load(release.helm("history", release.name, "--output", "yaml").stdout)
    assert [entry["status"] for entry in history] == ["superseded", "deployed"]

    release.uninstall()

    assert not exists(kubectl, "deployment", release.fullname, "-n", release.namespace)
    assert not exists(kubectl, "clusterrole", release.fullname)
    assert not exists(kubectl, "clusterkopfpeering", release.fullname)
    # Helm never deletes CRDs: that would delete every ModelDeployment with them.
    for crd in CHART_CRDS:
        assert exists(kubectl, "crd", crd)


def test_namespaced_install_grants_rights_only_in_the_watched_namespaces(
    kubectl: Kubectl, release: Release, watched_namespaces: list[str]
) -> None:
    release.install({"watchNamespaces": watched_namespaces, "replicaCount": 1})

    deployment = wait_until_ready(kubectl, release, replicas=1)
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [arg for arg in args if arg.startswith("--namespace")] == [
        f"--namespace={n}" for n in watched_namespaces
    ]
    for watched in watched_namespaces:
        assert exists(kubectl, "kopfpeering", release.fullname, "-n", watched)
        assert can(kubectl, release, "create", "deployments.apps", watched)
        assert can(kubectl, release, "patch", "modeldeployments.modeldeploy.io/status", watched)
        assert can(kubectl, release, "patch", "kopfpeerings.kopf.dev", watched)
    elsewhere = release.namespace
    assert not can(kubectl, release, "list", "modeldeployments.modeldeploy.io", elsewhere)
    assert not can(kubectl, release, "create", "deployments.apps", elsewhere)
    assert not can(kubectl, release, "patch", "clusterkopfpeerings.kopf.dev")
    # The cluster-scoped reads it cannot do without.
    assert can(kubectl, release, "watch", "nodes")
    assert can(kubectl, release, "watch", "customresourcedefinitions.apiextensions.k8s.io")


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


@pytest.mark.usefixtures("modeldeployment_crd", "provider_crds")
def test_the_operator_works_with_only_the_rights_the_chart_grants(
    kubectl: Kubectl, release: Release, watched_namespaces: list[str], tmp_path: Path
) -> None:
    """`modeldeploy run` as a process, logged in as the chart's ServiceAccount, as it runs in
    the chart's pod; any permission it lacks shows as a failed reconcile or a refused watch."""
    release.install({"watchNamespaces": watched_namespaces, "replicaCount": 1})
    namespace_args = [f"--namespace={name}" for name in watched_namespaces]
    operator = Operator(
        service_account_kubeconfig(kubectl, release, tmp_path / "kubeconfig"),
        tmp_path,
        (*namespace_args, f"--peering={release.fullname}"),
    )
    operator.start()
    try:
        kubectl.apply(manifest("cpu-model"), "-n", watched_namespaces[0])
        wait_condition(kubectl, watched_namespaces[0], "cpu-model", "Ready", "True")
        wait_for(
            "a successful reconcile",
            lambda: operator.metric("modeldeploy_reconciles_total", result="success"),
        )
        assert operator.metric("modeldeploy_reconciles_total", result="error") == 0
    finally:
        operator.stop()
    assert "forbidden" not in operator.log.read_text().lower()
