"""A fresh simulator on the small example scenario, for each simulator test that asks, and the
two clients the tests talk to it with: Graph (with the token) and the control routes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from graph_simulator import SimulatorServer
from tests.simulator.support import AUTH, EXAMPLE, WALL


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(EXAMPLE, wall_clock=WALL) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    """Graph as the app sees it (a module may override it, e.g. with ConsistencyLevel)."""
    with httpx.Client(base_url=sim.base_url, headers=AUTH) as http:
        yield http


@pytest.fixture
def control(sim: SimulatorServer) -> Iterator[httpx.Client]:
    """The simulator's ``/_simulator/`` control routes (no token)."""
    with httpx.Client(base_url=sim.url) as http:
        yield http
