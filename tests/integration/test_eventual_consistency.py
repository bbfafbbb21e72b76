"""Eventual consistency (issue 11, item 7), end to end on Azurite + the Graph simulator.

Graph's views catch up with a change some time after it: the member index behind
``transitiveMembers``, ``numberAssignments``, a user's configuration and their effective
policies. The simulator lags each by reads (``behaviour.*LagReads``); the app's clock moves with
``LocalApp.advance``, never with sleeps. Across several timer runs and queue drains the app must
converge without flapping: one write per change, never an unassign of a number it just gave, and
``verify_failed`` only once its read-back retries are over.
"""

from __future__ import annotations

from typing import Any

import pytest

from graph_simulator import Scenario, parse_scenario
from shared.core.outcomes import Outcome, Reason
from shared.core.records import UserStatus
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario, user_id

ANN, BOB, ERIN = "ann@contoso.example", "bob@contoso.example", "erin@contoso.example"
CARA = "cara@contoso.example"  # carries the main number: gets its policy, never the number
ANN_NUMBER, BOB_NUMBER, ERIN_NUMBER = "+31855363011", "+31855363012", "+31855363015"
MAIN = "+31855363010"
CLI, CLI_MAIN = "CallingLineIdentity", "cli-contoso-main"
WRITES = ("assignNumber", "unassignNumber", "assignPolicy", "unassignPolicy")


def _tenant(behaviour: dict[str, Any] | None = None, *, erin_in_group: bool = False) -> Scenario:
    """ann, bob and cara in the voice group; erin outside it unless ``erin_in_group``."""
    data: dict[str, Any] = build_scenario(
        [("ann", [ANN_NUMBER]), ("bob", [BOB_NUMBER]), ("cara", [MAIN]),
         ("erin", [ERIN_NUMBER])],
        behaviour=behaviour,
    ).model_dump(by_alias=True, mode="json")
    if not erin_in_group:
        data["groups"][0]["members"].remove(user_id("erin"))
    data["tenant"]["rules"] = {
        "mainNumbers": {"contoso.example": MAIN},
        "mainNumberPolicies": f"contoso.example={CLI}:Contoso Main",
    }
    data["policies"] = [{"type": CLI, "name": "Contoso Main", "id": CLI_MAIN}]
    return parse_scenario(data)


@pytest.fixture
def scenario() -> Scenario:
    """The tenant the app is set up for (its rules); each test loads its own behaviour."""
    return _tenant()


def _use(app: LocalApp, scenario: Scenario) -> None:
    """Load ``scenario`` into the simulator under the test's own tenant."""
    tenant = scenario.model_copy(update={"tenant": app.scenario.tenant})
    app.simulator.load_scenario(tenant)
    app.scenario = tenant


async def _run(app: LocalApp, after_minutes: float = 0) -> dict[str, UserStatus]:
    """Move the clock on, run the timer, drain the queue; the statuses afterwards."""
    if after_minutes:
        await app.advance(after_minutes / 60)
    await app.run_timer()
    await app.drain()
    return await app.statuses()


def _writes(app: LocalApp) -> dict[str, int]:
    """Teams writes so far, by route, from the simulator's request log."""
    counts: dict[str, int] = {}
    for entry in app.simulator.request_log():
        if entry["route"] in WRITES:
            counts[entry["route"]] = counts.get(entry["route"], 0) + 1
    return counts


def _state(statuses: dict[str, UserStatus], upn: str) -> tuple[Outcome, Reason]:
    return statuses[upn].outcome, statuses[upn].reason


async def _assert_claims_assigned(app: LocalApp, *numbers: str) -> None:
    runtime = await app.runtime()
    for number in numbers:
        claim = await runtime.claims.get_claim(number)
        assert claim is not None
        assert claim.assigned, number  # still the app's, to take back when its holder leaves
        assert claim.released_at is None


# -- numberAssignments ------------------------------------------------------------------------


async def test_a_number_list_that_lags_behind_the_assignment_writes_nothing_again(
    local_app: LocalApp,
) -> None:
    # Each full read (hourly) lists the numbers once: the next two full reads miss both.
    _use(local_app, _tenant({"numberAssignmentsLagReads": 2}))

    first = await _run(local_app)
    later = [await _run(local_app, after_minutes=61) for _ in range(3)]

    assert {_state(first, ANN), _state(first, BOB)} == {(Outcome.ASSIGNED, Reason.ASSIGNED)}
    # Planned as assigns again, the numbers are found on their users: kept, not written.
    for statuses in later:
        assert _state(statuses, ANN) == _state(statuses, BOB) == (
            Outcome.KEPT, Reason.ALREADY_ASSIGNED)
    assert _writes(local_app) == {"assignNumber": 2, "assignPolicy": 1}
    assert local_app.teams_by_upn() == {ANN_NUMBER: ANN, BOB_NUMBER: BOB}
    await _assert_claims_assigned(local_app, ANN_NUMBER, BOB_NUMBER)


async def test_numbers_missing_from_both_views_are_read_back_again_never_reassigned(
    local_app: LocalApp,
) -> None:
    # The configuration misses the new numbers for three reads, the list for two requests.
    _use(local_app, _tenant({"numberAssignmentsLagReads": 2, "configurationLagReads": 3}))

    # The look after the wait misses, the operation says done, the one more look misses too:
    # not a failure yet.
    first = await _run(local_app)
    second = await _run(local_app, after_minutes=16)  # misses again (the lag's last read)
    third = await _run(local_app, after_minutes=30)  # shows it
    # Two hourly full reads whose numberAssignments do not show the numbers yet, then one that
    # does: planned as assigns, then kept, never written again.
    later = [await _run(local_app, after_minutes=61) for _ in range(3)]

    for statuses in (first, second):
        assert _state(statuses, ANN) == _state(statuses, BOB) == (
            Outcome.ASSIGNED, Reason.READ_BACK_PENDING)
    assert "does not show it yet" in first[ANN].message
    assert first[ANN].retry_at is not None
    assert second[ANN].waiting_since == first[ANN].waiting_since  # the patience counts on
    for statuses in (third, *later):
        assert _state(statuses, ANN) == _state(statuses, BOB) == (
            Outcome.KEPT, Reason.ALREADY_ASSIGNED)
        assert statuses[ANN].retry_at is None
    assert _writes(local_app) == {"assignNumber": 2, "assignPolicy": 1}
    assert local_app.teams_by_upn() == {ANN_NUMBER: ANN, BOB_NUMBER: BOB}
    await _assert_claims_assigned(local_app, ANN_NUMBER, BOB_NUMBER)


async def test_a_configuration_that_never_catches_up_is_verify_failed_only_after_the_retries(
    local_app: LocalApp,
) -> None:
    _use(local_app, _tenant({"configurationLagReads": 50}))

    seen = [await _run(local_app)]
    for minutes in (16, 30, 60):  # the read-back's retry times: 15, 30 and 60 minutes after
        seen.append(await _run(local_app, after_minutes=minutes))

    assert [_state(statuses, ANN) for statuses in seen] == [
        (Outcome.ASSIGNED, Reason.READ_BACK_PENDING),
        (Outcome.ASSIGNED, Reason.READ_BACK_PENDING),
        (Outcome.ASSIGNED, Reason.READ_BACK_PENDING),
        (Outcome.FAILED, Reason.VERIFY_FAILED),
    ]
    failed = seen[-1][ANN]
    assert "read back again for" in failed.message
    assert failed.retry_at is not None
    assert _writes(local_app).get("assignNumber") == 2  # one each, through all the retries
    assert "unassignNumber" not in _writes(local_app)
    assert local_app.teams_by_upn() == {ANN_NUMBER: ANN, BOB_NUMBER: BOB}


# -- effective policies -----------------------------------------------------------------------


async def test_policies_that_show_late_are_given_once_and_confirmed_later(
    local_app: LocalApp,
) -> None:
    _use(local_app, _tenant({"policyLagReads": 2}))

    first = await _run(local_app)  # the read-back after the assignment misses the policy
    second = await _run(local_app, after_minutes=16)  # so does the next read
    third = await _run(local_app, after_minutes=30)  # shows it
    fourth = await _run(local_app, after_minutes=61)

    for statuses in (first, second):
        assert _state(statuses, CARA) == (Outcome.ASSIGNED, Reason.READ_BACK_PENDING)
    assert "effective policies do not show" in first[CARA].message
    assert _state(third, CARA) == (Outcome.ASSIGNED, Reason.MAIN_NUMBER)
    assert "confirmed" in third[CARA].message
    assert fourth[CARA] == third[CARA]  # kept: no news, nothing written
    assert _writes(local_app) == {"assignNumber": 2, "assignPolicy": 1}
    grant = await (await local_app.runtime()).grants.get_grant(user_id("cara"))
    assert grant is not None
    assert grant.verified
    assert MAIN not in local_app.teams_by_upn()


# -- the member index -------------------------------------------------------------------------


async def test_a_joiner_the_member_index_misses_is_assigned_once_it_shows(
    local_app: LocalApp,
) -> None:
    _use(local_app, _tenant({"memberLagReads": 2}))
    await _run(local_app)
    local_app.simulator.replace_directory(_tenant(erin_in_group=True).directory)

    # Hourly full reads: the first two do not list erin yet.
    reads = [await _run(local_app, after_minutes=61) for _ in range(3)]

    assert [ERIN in statuses for statuses in reads] == [False, False, True]
    assert _state(reads[-1], ERIN) == (Outcome.ASSIGNED, Reason.ASSIGNED)
    assert _writes(local_app) == {"assignNumber": 3, "assignPolicy": 1}
    assert local_app.teams_by_upn()[ERIN_NUMBER] == ERIN


async def test_a_joiner_seen_by_delta_and_missed_by_a_later_full_read_keeps_the_number(
    local_app: LocalApp,
) -> None:
    _use(local_app, _tenant({"memberLagReads": 2}))
    await _run(local_app)
    local_app.simulator.replace_directory(_tenant(erin_in_group=True).directory)

    joined = await _run(local_app, after_minutes=5)  # groups delta: erin joined
    # The hourly full reads list the group from the index, which does not have erin yet.
    missed = [await _run(local_app, after_minutes=61) for _ in range(2)]
    back = await _run(local_app, after_minutes=61)

    assert _state(joined, ERIN) == (Outcome.ASSIGNED, Reason.ASSIGNED)
    for statuses in missed:  # the grace period holds the removal: nothing is taken back
        assert _state(statuses, ERIN) == (Outcome.HELD, Reason.GRACE_PERIOD)
        assert local_app.teams_by_upn()[ERIN_NUMBER] == ERIN
    assert _state(back, ERIN) == (Outcome.KEPT, Reason.ALREADY_ASSIGNED)
    assert _writes(local_app) == {"assignNumber": 3, "assignPolicy": 1}
    await _assert_claims_assigned(local_app, ERIN_NUMBER)
    claim = await (await local_app.runtime()).claims.get_claim(ERIN_NUMBER)
    assert claim is not None
    assert claim.release_pending_since is None  # the grace period was called off
