"""The invariant checks themselves: each one holds on a converged tenant and catches what it is
about, so a drill that passes says something."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from local_runner.invariants import (
    EVERYONE_SERVED,
    HAS_AN_OUTCOME,
    NO_ORPHAN_CLAIM,
    NO_SHARED_NUMBER,
    NO_UNWANTED_NUMBER,
    OWNERSHIP_MARKED,
    POISON_NEEDS_A_PERSON,
    TenantState,
    check_invariants,
    summarise,
)
from local_runner.onboarding_tenant import Expectations, onboarding_tenant
from shared.core.directory import Claim
from shared.core.messages import AssignmentMessage
from shared.core.outcomes import Outcome, Reason
from shared.core.records import UserStatus

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture
def expected() -> Expectations:
    return onboarding_tenant(20)[1]


def _status(expected: Expectations, user_id: str, outcome: Outcome, reason: Reason,
            number: str | None) -> UserStatus:
    return UserStatus(user_id=user_id, user_principal_name=expected.members[user_id],
                      outcome=outcome, reason=reason, number=number, message="what happened",
                      run_id="run-1", read_position=0, updated_at=NOW)


def converged(expected: Expectations) -> TenantState:
    """The tenant as it must end: everyone who gets a number has it, marked as the app's."""
    teams: dict[str, str | None] = dict.fromkeys(expected.free_at_start)
    teams |= expected.kept_elsewhere
    claims = {}
    statuses = []
    for user_id, number in expected.numbers.items():
        teams[number] = user_id
        claims[number] = Claim(number, user_id, expected.members[user_id], "run-1", 0,
                               assigned=True)
        statuses.append(_status(expected, user_id, Outcome.ASSIGNED, Reason.ASSIGNED, number))
    for user_id, reason in expected.refused.items():
        statuses.append(_status(expected, user_id, Outcome.SKIPPED, reason, None))
    return TenantState(teams=teams, claims=claims, statuses=statuses, poison=[])


def _someone(expected: Expectations) -> tuple[str, str]:
    return next(iter(expected.numbers.items()))


def _refused(expected: Expectations, reason: Reason) -> str:
    return next(user for user, why in expected.refused.items() if why is reason)


def _message(expected: Expectations, user_id: str, number: str) -> str:
    return AssignmentMessage(
        tenant_id=expected.tenant_id, run_id="run-1", user_id=user_id,
        user_principal_name=expected.members[user_id], telephone_number=number,
        read_position=0, action="assign", reason="assigned", number=number,
        idempotency_key=f"run-1|{user_id}",
    ).to_json()


def _broken(expected: Expectations, state: TenantState) -> dict[str, int]:
    return {name: count for name, count in summarise(check_invariants(expected, state)).items()
            if count}


def test_a_converged_tenant_breaks_nothing(expected: Expectations) -> None:
    assert check_invariants(expected, converged(expected)) == []


def test_the_tenant_has_users_who_must_not_get_a_number(expected: Expectations) -> None:
    assert set(expected.refused.values()) == {
        Reason.INVALID_FORMAT, Reason.DUPLICATE, Reason.ASSIGNED_ELSEWHERE}
    assert len(expected.numbers) + len(expected.refused) == len(expected.members) == 20


def test_a_user_without_a_status_is_caught(expected: Expectations) -> None:
    user, _ = _someone(expected)
    state = converged(expected)
    state = replace(state, statuses=[s for s in state.statuses if s.user_id != user])
    assert _broken(expected, state) == {HAS_AN_OUTCOME: 1}


def test_a_status_that_contradicts_teams_is_caught(expected: Expectations) -> None:
    _user, number = _someone(expected)
    state = converged(expected)
    teams = {**state.teams, number: None}
    claims = {n: c for n, c in state.claims.items() if n != number}
    # Told "assigned", but Teams does not have it: the report lies, and the user is not served.
    assert _broken(expected, replace(state, teams=teams, claims=claims)) == {
        HAS_AN_OUTCOME: 1, EVERYONE_SERVED: 1}


def test_a_failed_user_still_counts_as_having_an_outcome(expected: Expectations) -> None:
    user, number = _someone(expected)
    state = converged(expected)
    statuses = [s if s.user_id != user else
                _status(expected, user, Outcome.FAILED, Reason.ASSIGNMENT_FAILED, number)
                for s in state.statuses]
    teams = {**state.teams, number: None}
    # The claim keeps the number for a user who is told why they do not have it yet.
    broken = _broken(expected, replace(state, statuses=statuses, teams=teams))
    assert broken == {EVERYONE_SERVED: 1}


def test_a_number_on_a_user_who_must_not_have_one_is_caught(expected: Expectations) -> None:
    duplicate = _refused(expected, Reason.DUPLICATE)
    state = converged(expected)
    spare = next(n for n in expected.free_at_start if n not in expected.numbers.values())
    teams = {**state.teams, spare: duplicate}
    assert _broken(expected, replace(state, teams=teams)) == {
        NO_UNWANTED_NUMBER: 1, OWNERSHIP_MARKED: 1}


def test_a_number_taken_from_its_holder_outside_the_group_is_caught(
    expected: Expectations,
) -> None:
    elsewhere = _refused(expected, Reason.ASSIGNED_ELSEWHERE)
    number = next(iter(expected.kept_elsewhere))
    state = converged(expected)
    assert _broken(expected, replace(state, teams={**state.teams, number: elsewhere})) == {
        NO_UNWANTED_NUMBER: 2}


def test_two_users_told_they_have_one_number_are_caught(expected: Expectations) -> None:
    (_first, number), (second, _) = list(expected.numbers.items())[:2]
    state = converged(expected)
    statuses = [s if s.user_id != second else
                _status(expected, second, Outcome.KEPT, Reason.ALREADY_ASSIGNED, number)
                for s in state.statuses]
    broken = _broken(expected, replace(state, statuses=statuses))
    assert broken[NO_SHARED_NUMBER] == 1


def test_a_claim_for_someone_else_than_the_teams_holder_is_caught(
    expected: Expectations,
) -> None:
    (_first, number), (second, _) = list(expected.numbers.items())[:2]
    state = converged(expected)
    claims = {**state.claims, number: Claim(number, second, expected.members[second], "run-2",
                                            0, assigned=True)}
    broken = _broken(expected, replace(state, claims=claims))
    assert broken[NO_SHARED_NUMBER] == 1
    assert broken[OWNERSHIP_MARKED] == 1


def test_a_claim_whose_holder_never_got_the_number_is_caught(expected: Expectations) -> None:
    spare = next(n for n in expected.free_at_start if n not in expected.numbers.values())
    user, _ = _someone(expected)
    state = converged(expected)
    claims = {**state.claims, spare: Claim(spare, user, expected.members[user], "run-1", 0)}
    assert _broken(expected, replace(state, claims=claims)) == {NO_ORPHAN_CLAIM: 1}


def test_a_number_in_teams_without_the_marker_is_caught(expected: Expectations) -> None:
    _user, number = _someone(expected)
    state = converged(expected)
    claims = {**state.claims, number: replace(state.claims[number], assigned=False)}
    assert _broken(expected, replace(state, claims=claims)) == {OWNERSHIP_MARKED: 1}


def test_poison_for_a_user_who_is_fine_is_caught(expected: Expectations) -> None:
    (served, number), (failed, other) = list(expected.numbers.items())[:2]
    state = converged(expected)
    statuses = [s if s.user_id != failed else
                _status(expected, failed, Outcome.FAILED, Reason.ASSIGNMENT_FAILED, other)
                for s in state.statuses]
    poison = [_message(expected, served, number), _message(expected, failed, other),
              "not a message at all"]
    teams = {**state.teams, other: None}
    broken = _broken(expected, replace(state, statuses=statuses, poison=poison, teams=teams))
    # Only the served user's message needs nobody; a failure and an unreadable body do.
    assert broken == {POISON_NEEDS_A_PERSON: 1, EVERYONE_SERVED: 1}
