"""Shared pytest configuration: every test under tests/cluster/ is marked `cluster`."""

from pathlib import Path

import pytest

CLUSTER_DIR = Path(__file__).parent / "cluster"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if CLUSTER_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)
