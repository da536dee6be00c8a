"""Fixtures for end-to-end tests: a real manager (and nodes) per test."""
from __future__ import annotations

import pytest

from tests.e2e.harness import LiteCluster


@pytest.fixture
def cluster(tmp_path):
    """A started manager with no node yet; add nodes with ``cluster.add_node()``."""
    with LiteCluster(str(tmp_path)) as c:
        c.start_manager()
        yield c
