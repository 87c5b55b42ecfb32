"""The shared local cluster as the benchmark uses it: fake nodes of its own, and one
identity per measured client so the API server's audit log can tell their requests apart.

Other people's tests may run on the same cluster, so the benchmark keeps to itself: its
nodes carry a taint that only its pods tolerate, its GPU nodes a product no test asks for,
its Services take addresses from a range of their own, and everything else it creates
lives in `bench-*` namespaces.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from tests.cluster.harness import ROOT, Kubectl

KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
HACK_CLUSTER = ROOT / "hack" / "cluster"
TOPOLOGY = ROOT / "hack" / "topology.yaml"
AUDIT_LOG = ROOT / ".cluster" / "logs" / "audit.log"

NODE_LABEL = "modeldeploy.io/bench-node"
NODE_FINALIZER = "modeldeploy.io/bench"
GPU_PRODUCT = "NVIDIA-A10G"
# hack/cluster gives every fake node room for 110 pods; leave some for DaemonSet-like strays.
PODS_PER_NODE = 100
GPUS_PER_NODE = 8
# hack/audit-policy.yaml logs the reads of this namespace's ServiceAccounts.
CLIENTS_NAMESPACE = "bench-clients"


def kubectl() -> Kubectl:
    return Kubectl(str(ROOT / ".cluster" / "bin" / "kubectl"), str(KUBECONFIG))


def bench_toleration() -> dict[str, str]:
    return {"key": NODE_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}


@dataclass(frozen=True)
class Capacity:
    """Pods the benchmark runs at once, as many as one system needs at its largest size."""

    cpu_pods: int
    gpu_pods: int

    def node_specs(self) -> list[dict[str, Any]]:
        """Nodes in hack/topology.yaml's format that hold these pods."""
        cpu = [
            {"name": f"bench-cpu-{n}", "cpu": "64", "memory": "256Gi"}
            for n in range(1, math.ceil(self.cpu_pods / PODS_PER_NODE) + 1)
        ]
        gpu = [
            {
                "name": f"bench-gpu-{n}",
                "cpu": "96",
                "memory": "768Gi",
                "gpus": GPUS_PER_NODE,
                "product": GPU_PRODUCT,
            }
            for n in range(1, math.ceil(self.gpu_pods / GPUS_PER_NODE) + 1)
        ]
        return cpu + gpu


class BenchNodes:
    """Adds the benchmark's nodes beside hack/topology.yaml's for the duration of a `with`,
    then puts the cluster's own topology back.

    Every test session starts with `hack/cluster up`, which deletes nodes that are not in
    hack/topology.yaml: a finalizer keeps ours (a node being deleted still runs and receives
    pods) until the benchmark lets them go."""

    ATTEMPTS = 3

    def __init__(self, capacity: Capacity) -> None:
        self.specs = capacity.node_specs()
        self.names = [spec["name"] for spec in self.specs]

    def __enter__(self) -> BenchNodes:
        own = yaml.safe_load(TOPOLOGY.read_text())["nodes"]
        cluster = kubectl()
        for _ in range(self.ATTEMPTS):
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="bench-topology-") as topology:
                yaml.safe_dump({"nodes": own + self.specs}, topology)
                topology.flush()
                _hack_cluster("nodes", topology.name)
            # A test session may reset the nodes between the two commands: then try again.
            protect = {"metadata": {"labels": {NODE_LABEL: "true"}, "finalizers": [NODE_FINALIZER]}}
            if (
                cluster.run(
                    "patch", "nodes", *self.names, "--type=merge", "-p", json.dumps(protect), check=False
                ).returncode
                == 0
            ):
                break
        else:
            raise RuntimeError(f"could not keep the benchmark's nodes in {self.ATTEMPTS} attempts")
        # Pods of tests running meanwhile stay off them.
        cluster.run("taint", "nodes", *self.names, f"{NODE_LABEL}=true:NoSchedule", "--overwrite")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        release = {"metadata": {"finalizers": None}}
        kubectl().run("patch", "nodes", *self.names, "--type=merge", "-p", json.dumps(release), check=False)
        _hack_cluster("nodes")


class ServiceAddresses:
    """Every model has three ClusterIP Services (the model's, stable, canary) with either
    system; the local cluster's service range (a /24) holds 254. A ServiceCIDR adds a range
    for the duration of a `with` (ServiceCIDRs are GA since Kubernetes 1.33)."""

    NAME = "bench-services"
    CIDR = "10.96.0.0/16"

    def __enter__(self) -> ServiceAddresses:
        kubectl().apply(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "ServiceCIDR",
                "metadata": {"name": self.NAME},
                "spec": {"cidrs": [self.CIDR]},
            }
        )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        # The API server removes it once no Service holds an address from it.
        kubectl().run("delete", "servicecidr", self.NAME, "--ignore-not-found", "--wait=false", check=False)


def _hack_cluster(*args: str) -> None:
    result = subprocess.run([str(HACK_CLUSTER), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"hack/cluster {' '.join(args)} failed:\n{result.stdout}{result.stderr}")


@dataclass(frozen=True)
class Identity:
    """A ServiceAccount a measured client runs as: its audit-log user and its kubeconfig."""

    name: str
    kubeconfig: Path

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{CLIENTS_NAMESPACE}:{self.name}"


class Identities:
    """cluster-admin ServiceAccounts in `bench-clients`, one per measured client, with
    kubeconfigs holding their tokens; removed on leaving the `with`."""

    def __init__(self, names: tuple[str, ...], directory: Path) -> None:
        self.names = names
        self.directory = directory

    def __enter__(self) -> dict[str, Identity]:
        cluster = kubectl()
        # Applied, not created: a run that was interrupted may have left them.
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CLIENTS_NAMESPACE}})
        admin = yaml.safe_load(KUBECONFIG.read_text())
        identities = {}
        for name in self.names:
            cluster.apply(_service_account(name))
            token = cluster.run(
                "create", "token", name, "-n", CLIENTS_NAMESPACE, "--duration=4h"
            ).stdout.strip()
            path = self.directory / f"{name}.kubeconfig"
            path.write_text(yaml.safe_dump(_token_kubeconfig(admin, name, token)))
            identities[name] = Identity(name, path)
        return identities

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        cluster = kubectl()
        cluster.run(
            "delete", "clusterrolebinding", *map(_binding, self.names), "--ignore-not-found", check=False
        )
        cluster.run(
            "delete", "namespace", CLIENTS_NAMESPACE, "--ignore-not-found", "--wait=false", check=False
        )


def _binding(name: str) -> str:
    return f"{CLIENTS_NAMESPACE}-{name}"


def _service_account(name: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": CLIENTS_NAMESPACE},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": _binding(name)},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": CLIENTS_NAMESPACE}],
        },
    ]


def _token_kubeconfig(admin: dict[str, Any], user: str, token: str) -> dict[str, Any]:
    cluster = admin["clusters"][0]
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": cluster["name"], "user": user}}],
        "current-context": user,
    }
