"""The learned wait before the first look at an accepted assignment: it settles where about
``HIT_TARGET`` of first looks find the number, for whatever durations Teams has, and the
re-looks at a slow operation back off."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.operation_wait import (
    DEFAULT_WAIT_SECONDS,
    HIT_TARGET,
    MAX_RECHECK_SECONDS,
    MAX_WAIT_SECONDS,
    MIN_WAIT_SECONDS,
    OperationWait,
    next_look_after,
)
from tests.fakes import NOW

Z95 = 1.6448536


def _learn(durations: list[float], wait: OperationWait | None = None) -> OperationWait:
    """Each operation looked at once, after the wait as it stood then."""
    wait = wait or OperationWait()
    for duration in durations:
        look = wait.first_look_after()
        wait = wait.observe(look, duration <= look, NOW)
    return wait


def _log_normal(median: float, p95: float, count: int, seed: int) -> list[float]:
    sigma = math.log(p95 / median) / Z95
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(median), sigma) for _ in range(count)]


def test_a_tenant_with_no_looks_waits_the_default() -> None:
    assert OperationWait().first_look_after() == math.ceil(DEFAULT_WAIT_SECONDS)


@settings(max_examples=25, deadline=None)
@given(median=st.floats(5, 60), spread=st.floats(1.5, 6), seed=st.integers(0, 2**32))
def test_the_wait_settles_where_most_first_looks_find_the_number(
    median: float, spread: float, seed: int,
) -> None:
    wait = _learn(_log_normal(median, median * spread, 3_000, seed))
    # Then, as it goes on learning, the share of first looks that find the number.
    hits = 0
    later = _log_normal(median, median * spread, 2_000, seed + 1)
    for duration in later:
        look = wait.first_look_after()
        hits += duration <= look
        wait = wait.observe(look, duration <= look, NOW)
    assert abs(hits / len(later) - HIT_TARGET) < 0.05, (wait, hits)


def test_the_benchmarks_teams_gives_a_wait_near_its_90th_percentile() -> None:
    wait = _learn(_log_normal(8, 40, 4_000, seed=7))
    p90 = 8 * math.exp(1.2815516 * math.log(40 / 8) / Z95)  # about 28 s
    assert 0.75 * p90 < wait.seconds < 1.3 * p90


def test_a_teams_that_slows_down_is_followed() -> None:
    fast = _learn(_log_normal(3, 10, 2_000, seed=1))
    slow = _learn(_log_normal(30, 90, 2_000, seed=2), fast)
    assert fast.seconds < 15 < 40 < slow.seconds


@given(st.floats(allow_nan=True, allow_infinity=True), st.booleans())
def test_whatever_it_is_told_the_wait_stays_within_its_bounds(
    elapsed: float, done: bool,
) -> None:
    wait = OperationWait(seconds=MAX_WAIT_SECONDS)
    for _ in range(50):
        wait = wait.observe(elapsed, done, NOW)
    assert MIN_WAIT_SECONDS <= wait.seconds <= MAX_WAIT_SECONDS


def test_looks_that_say_nothing_about_the_wait_change_nothing() -> None:
    wait = OperationWait(seconds=20, looks=5)
    assert wait.observe(45, True, NOW) is wait  # done by then: maybe long before
    assert wait.observe(5, False, NOW) is wait  # not done before the wait: as expected
    assert wait.observe(-1, True, NOW) is wait


def test_a_slow_operation_is_looked_at_again_half_as_long_after_as_it_has_run() -> None:
    wait = OperationWait(seconds=20)
    assert next_look_after(60, wait) == 30  # looked at 60 s: again at 90 s
    assert next_look_after(25, wait) == 20  # never sooner than the first wait
    assert next_look_after(4_000, wait) == MAX_RECHECK_SECONDS
    assert next_look_after(float("nan"), wait) == 20  # the moment asked is unknown
