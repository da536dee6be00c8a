"""Suite-wide pytest hooks."""
from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` go first: pytest-xdist hands tests out in this order, so a
    long one starts while the short ones fill the other workers instead of running alone
    at the end of the suite."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)   # a stable sort
