"""hack/cluster up --real-node where the real node cannot run: one line saying what is missing,
before anything is built or started."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.cluster.harness import ROOT

NOBODY = "65534"


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become another user"
)
def test_a_user_who_is_not_root_is_told_so_in_one_line() -> None:
    result = subprocess.run(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            str(ROOT / "hack" / "cluster"),
            "up",
            "--real-node",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"[cluster] ERROR: --real-node: cannot run a real node here: not root (uid {NOBODY}): "
        "containerd, runc and the kubelet need root"
    ]
    assert result.stdout == ""  # nothing built, nothing started
