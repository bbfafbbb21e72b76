"""Session-wide Azurite for tests that claim to test storage: started here, stopped afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local_runner.azurite import Azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite() as running:
        yield running
