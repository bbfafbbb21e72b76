"""Test-session fixtures shared by every folder, and the folder's marks.

A ``pytestmark`` in a conftest marks nothing (marks apply to the module they are set in), so the
tests that need Azurite or the Graph simulator are marked here, by folder: ``make test-fast``
deselects them with ``-m "not integration"``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.azurite_fixtures", "tests.telemetry_support"]

_TESTS = Path(__file__).resolve().parent
#: Folders whose tests start or talk to Azurite or the Graph simulator.
_SERVICE_FOLDERS = frozenset({"integration", "simulator", "faults", "contract"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test in a folder that needs the local services as ``integration``."""
    for item in items:
        parts = item.path.resolve().relative_to(_TESTS).parts
        if parts and parts[0] in _SERVICE_FOLDERS:
            item.add_marker(pytest.mark.integration)
