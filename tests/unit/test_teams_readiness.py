"""The readiness and verification rules: examples, then properties of the backoff and patience."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.teams_readiness import (
    DEFAULT_PATIENCE,
    EV_NOT_ENABLED,
    MAX_BACKOFF,
    NOT_LICENSED,
    OK,
    READY,
    VERIFY_FAILED,
    WAIT_LOOK_CAP,
    WAITING_FOR_TEAMS,
    TeamsUser,
    backoff,
    canonical_number,
    readiness,
    verify_assignment,
)

NUMBER = "+31855363011"
FIRST_SEEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def user(
    *,
    numbers: tuple[str, ...] = (NUMBER,),
    voice: bool = True,
    licensed: bool = True,
) -> TeamsUser:
    return TeamsUser(
        user_id="ann-id",
        enterprise_voice_enabled=voice,
        telephone_numbers=numbers,
        effective_policies={},
        licensed_for_phone=licensed,
        account_type="user",
    )


# -- verify_assignment -----------------------------------------------------------------------


def test_the_number_with_enterprise_voice_verifies() -> None:
    result = verify_assignment(user(), NUMBER)

    assert (result.ok, result.reason) == (True, OK)


@pytest.mark.parametrize("shown", ["31855363011", "tel:+31855363011", "+31 85 536 3011"])
def test_a_cosmetic_difference_in_the_number_still_verifies(shown: str) -> None:
    assert verify_assignment(user(numbers=(shown,)), NUMBER).ok


def test_the_number_without_enterprise_voice_is_ev_not_enabled() -> None:
    result = verify_assignment(user(voice=False), NUMBER)

    assert (result.ok, result.reason) == (False, EV_NOT_ENABLED)
    assert "Set-CsPhoneNumberAssignment" in result.message
    assert "ann-id" in result.message


@pytest.mark.parametrize("voice", [True, False])
def test_a_missing_number_is_verify_failed_whatever_enterprise_voice_says(voice: bool) -> None:
    result = verify_assignment(user(numbers=("+31855363012",), voice=voice), NUMBER)

    assert (result.ok, result.reason) == (False, VERIFY_FAILED)
    assert "+31855363012" in result.message


def test_a_user_teams_no_longer_shows_is_verify_failed() -> None:
    result = verify_assignment(None, NUMBER)

    assert (result.ok, result.reason) == (False, VERIFY_FAILED)


def test_an_extension_is_part_of_the_number() -> None:
    assert canonical_number("+31855363011;EXT=12") == "+31855363011;ext=12"
    assert not verify_assignment(user(numbers=("+31855363011;ext=12",)), NUMBER).ok


# -- readiness -------------------------------------------------------------------------------


def test_a_licensed_user_teams_knows_is_ready() -> None:
    state = readiness(user(), first_seen=FIRST_SEEN, now=FIRST_SEEN + timedelta(days=3))

    assert state.ready
    assert (state.state, state.is_problem, state.check_again_at) == (READY, False, None)


def test_a_user_teams_does_not_know_is_waiting_and_not_yet_a_problem() -> None:
    now = FIRST_SEEN + timedelta(hours=1)

    state = readiness(None, first_seen=FIRST_SEEN, now=now)

    assert (state.state, state.is_problem) == (WAITING_FOR_TEAMS, False)
    assert state.check_again_at == now + timedelta(minutes=15)
    assert "24 hours" in state.message


def test_an_unlicensed_user_is_not_licensed_and_not_yet_a_problem() -> None:
    state = readiness(user(licensed=False), first_seen=FIRST_SEEN, now=FIRST_SEEN)

    assert (state.state, state.is_problem) == (NOT_LICENSED, False)


@pytest.mark.parametrize(("teams_user", "expected"), [(None, WAITING_FOR_TEAMS),
                                                      (user(licensed=False), NOT_LICENSED)])
def test_waiting_becomes_a_problem_once_the_patience_has_run_out(
    teams_user: TeamsUser | None, expected: str
) -> None:
    just_before = readiness(teams_user, first_seen=FIRST_SEEN,
                            now=FIRST_SEEN + DEFAULT_PATIENCE - timedelta(seconds=1))
    at_deadline = readiness(teams_user, first_seen=FIRST_SEEN, now=FIRST_SEEN + DEFAULT_PATIENCE)

    assert (just_before.state, just_before.is_problem) == (expected, False)
    assert (at_deadline.state, at_deadline.is_problem) == (expected, True)
    assert "licence" in at_deadline.message


def test_the_patience_can_be_shortened() -> None:
    state = readiness(None, first_seen=FIRST_SEEN, now=FIRST_SEEN + timedelta(hours=2),
                      patience=timedelta(hours=1))

    assert state.is_problem
    assert "1 hour" in state.message


def test_the_next_look_is_never_after_the_patience_runs_out() -> None:
    # 23.5 h in, even the 50-minute cap would report the problem 20 minutes late; the look is at
    # the deadline.
    now = FIRST_SEEN + timedelta(hours=23, minutes=30)

    state = readiness(None, first_seen=FIRST_SEEN, now=now, attempts=9)

    assert state.check_again_at == FIRST_SEEN + DEFAULT_PATIENCE


def test_after_the_patience_the_next_look_follows_the_backoff() -> None:
    now = FIRST_SEEN + timedelta(days=2)

    assert readiness(None, first_seen=FIRST_SEEN, now=now, attempts=1).check_again_at == (
        now + timedelta(minutes=30)
    )


@pytest.mark.parametrize("attempts", [2, 3, 9])
def test_a_waiting_user_is_looked_at_at_least_every_fifty_minutes(attempts: int) -> None:
    # A licence arriving during a long wait reaches the number within the hour (not 6 h later).
    now = FIRST_SEEN + timedelta(days=2)

    state = readiness(None, first_seen=FIRST_SEEN, now=now, attempts=attempts)

    assert state.check_again_at == now + WAIT_LOOK_CAP == now + timedelta(minutes=50)


def test_backoff_doubles_from_fifteen_minutes_up_to_six_hours() -> None:
    minutes = [backoff(attempts) / timedelta(minutes=1) for attempts in range(7)]

    assert minutes == [15, 30, 60, 120, 240, 360, 360]


def test_a_negative_attempt_count_is_refused() -> None:
    with pytest.raises(ValueError, match="attempts"):
        backoff(-1)


# -- properties ------------------------------------------------------------------------------

ATTEMPTS = st.integers(min_value=0, max_value=10_000)
SPANS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30))
USERS = st.sampled_from([None, user(licensed=False)])


@given(ATTEMPTS, ATTEMPTS)
def test_backoff_never_exceeds_the_cap_and_never_decreases(first: int, second: int) -> None:
    low, high = sorted((first, second))

    assert timedelta(minutes=15) <= backoff(low) <= backoff(high) <= MAX_BACKOFF


@given(USERS, SPANS, SPANS, ATTEMPTS)
def test_waiting_is_never_a_problem_before_the_patience_runs_out(
    teams_user: TeamsUser | None, elapsed: timedelta, patience: timedelta, attempts: int
) -> None:
    now = FIRST_SEEN + elapsed

    state = readiness(teams_user, first_seen=FIRST_SEEN, now=now, patience=patience,
                      attempts=attempts)

    assert not state.ready
    assert state.is_problem is (elapsed >= patience)
    assert state.check_again_at is not None
    assert now <= state.check_again_at <= now + MAX_BACKOFF
    if not state.is_problem:
        assert state.check_again_at <= FIRST_SEEN + patience
