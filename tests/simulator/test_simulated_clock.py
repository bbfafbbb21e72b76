"""The times Graph shows follow the simulator's wall clock, so a simulated day (the local
runner's ``SimulatedClock``) sees operations, Teams users and errors stamped in simulated time,
and its delta tokens expire on the simulated monotonic clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from graph_simulator import SimulatorServer
from tests.simulator.support import (
    AUTH,
    BOB,
    CONFIGURATIONS,
    EXAMPLE,
    FREE_DR,
    NUMBERS,
    FakeClock,
    run_assign,
)

SIMULATED_NOON = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
def wall_clock() -> FakeClock:
    return FakeClock(start=SIMULATED_NOON.timestamp())


@pytest.fixture
def client(wall_clock: FakeClock) -> Iterator[httpx.Client]:
    with (SimulatorServer(EXAMPLE, wall_clock=wall_clock) as sim,
          httpx.Client(base_url=sim.base_url, headers=AUTH) as http):
        yield http


def test_an_operation_is_stamped_with_the_simulated_time(
        client: httpx.Client, wall_clock: FakeClock) -> None:
    wall_clock.advance(90 * 60)

    operation = run_assign(client, FREE_DR, BOB)

    assert operation["createdDateTime"].startswith("2031-03-04T13:30:")


def test_a_teams_user_and_an_error_show_the_simulated_time(
        client: httpx.Client, wall_clock: FakeClock) -> None:
    configuration = client.get(f"{CONFIGURATIONS}/{BOB}").json()
    assert configuration["createdDateTime"].startswith("2031-03-04T12:00:")

    wall_clock.advance(3600)
    refused = client.get(f"{NUMBERS}('no-such-number')")

    assert refused.json()["error"]["innerError"]["date"].startswith("2031-03-04T13:00:")
