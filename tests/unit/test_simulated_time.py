"""The local runner's simulated clock: it runs at the wall's pace, jumps forward, never back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from local_runner.simulated_time import SimulatedClock

START = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)


class Wall:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.seconds = 500.0

    def __call__(self) -> float:
        return self.seconds


def test_the_clock_runs_at_the_walls_pace_between_moves() -> None:
    wall = Wall()
    clock = SimulatedClock(START, wall=wall)
    wall.seconds += 3

    assert clock.now() == START + timedelta(seconds=3)
    assert clock.monotonic() - SimulatedClock(START, wall=wall).monotonic() == 3


def test_a_move_jumps_forward_and_a_moment_already_past_changes_nothing() -> None:
    wall = Wall()
    clock = SimulatedClock(START, wall=wall)

    assert clock.move_to(START + timedelta(minutes=5)) == START + timedelta(minutes=5)
    wall.seconds += 10
    assert clock.move_to(START + timedelta(minutes=5)) == START + timedelta(minutes=5, seconds=10)
    assert clock.now() == START + timedelta(minutes=5, seconds=10)


def test_a_naive_start_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="start: a timezone-aware time"):
        SimulatedClock(datetime(2031, 3, 4, 9, 0))  # noqa: DTZ001 - the point of the test
