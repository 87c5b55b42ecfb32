"""The `modeldeploy` command, run as a user runs it, without a way to a cluster: one line saying
what to point it at, and a non-zero exit code, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

MODELDEPLOY = Path(sys.executable).with_name("modeldeploy")
# What makes the kubernetes clients look somewhere other than ~/.kube/config.
CLUSTER_ENVIRONMENT = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")


def modeldeploy(home: Path, *args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    """`modeldeploy ARGS` with HOME an empty directory and no cluster in the environment."""
    env = {name: value for name, value in os.environ.items() if name not in CLUSTER_ENVIRONMENT}
    return subprocess.run(
        [str(MODELDEPLOY), *args],
        env=env | {"HOME": str(home)} | environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", [["run"], ["status", "sentiment"], ["promote", "sentiment"]])
def test_without_any_kubeconfig_one_line_says_how_to_point_at_a_cluster(
    tmp_path: Path, command: list[str]
) -> None:
    run = modeldeploy(tmp_path, *command)
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "modeldeploy: no cluster to connect to: pass --kubeconfig PATH, set KUBECONFIG, or run in a pod"
        " with a service account (~/.kube/config does not exist)"
    ]


@pytest.mark.parametrize("via", ["--kubeconfig", "KUBECONFIG"])
def test_a_kubeconfig_that_does_not_exist_is_named_in_one_line(tmp_path: Path, via: str) -> None:
    missing = tmp_path / "missing" / "kubeconfig"
    if via == "KUBECONFIG":
        run = modeldeploy(tmp_path, "run", KUBECONFIG=str(missing))
    else:
        run = modeldeploy(tmp_path, "run", "--kubeconfig", str(missing))
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"modeldeploy: kubeconfig {missing} does not exist: point --kubeconfig or KUBECONFIG at a kubeconfig file"
    ]


def test_an_unusable_kubeconfig_is_named_with_the_reason_in_one_line(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\n")
    run = modeldeploy(tmp_path, "status", "sentiment", "--kubeconfig", str(kubeconfig))
    assert run.returncode == 1
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"modeldeploy: kubeconfig {kubeconfig} cannot be used: ")
    assert "current-context" in line
