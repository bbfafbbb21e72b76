"""A fresh simulator on the small example scenario, for each simulator test that asks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from graph_simulator import SimulatorServer
from tests.simulator.support import EXAMPLE


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(EXAMPLE) as server:
        yield server
