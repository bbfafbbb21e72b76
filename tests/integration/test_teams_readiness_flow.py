"""Teams readiness and the read-back, end to end on Azurite and the Graph simulator.

A user Teams does not know yet, or knows without Teams Phone, waits (Teams refuses the
assignment, nothing lands) and is looked at again with a backoff; after an assignment the
user's Teams configuration is read back. Time moves with the app's clock
(``LocalApp.advance``), never with sleeps; the simulator models licence propagation as reads
(``visibleAfterPolls``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from graph_simulator import Scenario, parse_scenario
from shared.core.outcomes import Outcome, Reason
from shared.core.records import UserStatus
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario

ANN = "ann@contoso.example"
NUMBER = "+31855363011"


def _tenant(
    teams: dict[str, dict[str, Any]] | None = None,
    behaviour: dict[str, Any] | None = None,
) -> Scenario:
    """``build_scenario`` with ann (+31855363011) and bob (+31855363012) in the voice group,
    each with the Teams profile given by name (the simulator's ``teams``)."""
    data = build_scenario(
        [("ann", [NUMBER]), ("bob", ["+31855363012"])], behaviour=behaviour
    ).model_dump(by_alias=True)
    for user in data["users"]:
        user["teams"] = {**user["teams"], **(teams or {}).get(user["displayName"], {})}
    return parse_scenario(data)


@pytest.fixture
def scenario() -> Scenario:
    """The tenant the app is set up for (its voice group); each test loads its own profiles."""
    return _tenant()


def _use(app: LocalApp, scenario: Scenario) -> None:
    """Load ``scenario`` into the simulator under the test's own tenant."""
    tenant = scenario.model_copy(update={"tenant": app.scenario.tenant})
    app.simulator.load_scenario(tenant)
    app.scenario = tenant


async def _ann(app: LocalApp) -> UserStatus:
    return (await app.statuses())[ANN]


def _backoff_of(status: UserStatus) -> timedelta:
    assert status.retry_at is not None
    return status.retry_at - status.updated_at


async def test_a_user_not_yet_in_teams_waits_and_is_assigned_once_visible(
    local_app: LocalApp,
) -> None:
    # Each refused attempt reads her configuration twice (the first look, the wait): she shows
    # up on the fifth read, i.e. at the third attempt.
    _use(local_app, _tenant({"ann": {"visibleAfterPolls": 4}}))
    sim = local_app.simulator

    await local_app.sync()

    waiting = await _ann(local_app)
    assert (waiting.outcome, waiting.reason, waiting.attempts) == (
        Outcome.SKIPPED, Reason.WAITING_FOR_TEAMS, 1,
    )
    assert timedelta(minutes=14) < _backoff_of(waiting) <= timedelta(minutes=15)
    assert local_app.teams_by_upn() == {"+31855363012": "bob@contoso.example"}

    # Before the retry time the timer does not enqueue ann, and records nothing new.
    sim.clear_requests()
    early = await local_app.sync()
    assert early.invocations == 0
    assert sim.request_counts().get("getUserConfiguration", 0) == 0
    assert await _ann(local_app) == waiting

    # Past it, ann is looked at again: still not there.
    await local_app.advance(16 / 60)
    again = await local_app.sync()
    assert again.invocations == 2  # the assignment, and the look after Teams' operation time
    still = await _ann(local_app)
    assert (still.reason, still.attempts) == (Reason.WAITING_FOR_TEAMS, 2)
    assert timedelta(minutes=29) < _backoff_of(still) <= timedelta(minutes=30)  # backoff grows
    assert NUMBER not in local_app.teams_by_upn()

    await local_app.advance(31 / 60)
    await local_app.sync()

    done = await _ann(local_app)
    assert (done.outcome, done.reason, done.attempts, done.retry_at) == (
        Outcome.ASSIGNED, Reason.ASSIGNED, 0, None,
    )
    assert local_app.teams_by_upn()[NUMBER] == ANN


async def test_an_unlicensed_user_fails_only_after_the_patience_and_is_assigned_when_licensed(
    local_app: LocalApp,
) -> None:
    unlicensed = _tenant({"ann": {"licensed": False}})
    _use(local_app, unlicensed)

    await local_app.sync()
    first = await _ann(local_app)
    assert (first.outcome, first.reason) == (Outcome.SKIPPED, Reason.NOT_LICENSED)
    assert "will look again" in first.message

    await local_app.advance(24.5)
    await local_app.sync()
    late = await _ann(local_app)
    assert (late.outcome, late.reason, late.waiting_since) == (
        Outcome.FAILED, Reason.NOT_LICENSED, first.waiting_since,
    )
    assert "give the user a Teams Phone licence" in late.message
    assert ANN not in local_app.teams_by_upn().values()

    local_app.simulator.replace_directory(_tenant())  # the licence reaches Teams
    await local_app.advance(1)
    await local_app.sync()
    assert (await _ann(local_app)).outcome is Outcome.ASSIGNED
    assert local_app.teams_by_upn()[NUMBER] == ANN


async def test_an_assignment_that_leaves_enterprise_voice_off_is_ev_not_enabled(
    local_app: LocalApp,
) -> None:
    _use(local_app, _tenant(behaviour={"assignEnablesEnterpriseVoice": False}))

    await local_app.sync()

    ann = await _ann(local_app)
    assert (ann.outcome, ann.reason) == (Outcome.FAILED, Reason.EV_NOT_ENABLED)
    assert "-EnterpriseVoiceEnabled $true" in ann.message
    assert local_app.teams_by_upn()[NUMBER] == ANN  # the number is on the user
    runtime = await local_app.runtime()
    claim = await runtime.claims.get_claim(NUMBER)
    assert claim is not None
    assert claim.assigned

    # The next run keeps the number but does not hide the failure behind "kept".
    stats = await local_app.sync()
    assert stats.invocations == 0
    assert await _ann(local_app) == ann

    # Enterprise Voice turned on by hand; after the backoff the read-back passes.
    local_app.simulator.replace_directory(_tenant({"ann": {"enterpriseVoiceEnabled": True}}))
    await local_app.advance(16 / 60)
    await local_app.sync()
    kept = await _ann(local_app)
    assert (kept.outcome, kept.reason, kept.attempts) == (
        Outcome.KEPT, Reason.ALREADY_ASSIGNED, 0,
    )
    bob = (await local_app.statuses())["bob@contoso.example"]  # still off: looked at less often
    assert (bob.reason, bob.attempts) == (Reason.EV_NOT_ENABLED, 2)
    assert timedelta(minutes=29) < _backoff_of(bob) <= timedelta(minutes=30)
    assert local_app.simulator.request_counts()["assignNumber"] == 2  # one each, never again


async def test_a_read_back_that_misses_the_number_waits_then_is_confirmed_later(
    local_app: LocalApp,
) -> None:
    # Teams' configuration view lags two reads behind the assignment: the look after the wait
    # misses it, and so does the one more look the app takes after the operation said it
    # succeeded. That is not a failure yet (tests/integration/test_eventual_consistency.py has
    # the rest).
    _use(local_app, _tenant(behaviour={"configurationLagReads": 2}))

    await local_app.sync()

    ann = await _ann(local_app)
    assert (ann.outcome, ann.reason) == (Outcome.ASSIGNED, Reason.READ_BACK_PENDING)
    assert NUMBER in ann.message
    assert local_app.teams_by_upn()[NUMBER] == ANN  # the number is there; the app keeps it
    assert timedelta(minutes=14) < _backoff_of(ann) <= timedelta(minutes=15)

    await local_app.advance(16 / 60)
    local_app.simulator.clear_requests()
    await local_app.sync()

    kept = await _ann(local_app)
    assert (kept.outcome, kept.reason, kept.retry_at) == (
        Outcome.KEPT, Reason.ALREADY_ASSIGNED, None)
    assert local_app.simulator.request_counts().get("assignNumber", 0) == 0  # only looked


async def test_a_configuration_one_read_behind_is_looked_at_again_and_ends_assigned(
    local_app: LocalApp,
) -> None:
    _use(local_app, _tenant(behaviour={"configurationLagReads": 1}))

    await local_app.sync()

    ann = await _ann(local_app)
    assert (ann.outcome, ann.reason) == (Outcome.ASSIGNED, Reason.ASSIGNED)
    counts = local_app.simulator.request_counts()
    # Per user: the write, the look that missed, the operation ("succeeded"), the second look.
    assert (counts["assignNumber"], counts["getOperation"], counts["getUserConfiguration"]) == (
        2, 2, 4)


@pytest.mark.parametrize("shape", ["root", "value"])
async def test_the_user_configuration_is_read_at_the_root_or_inside_value(
    local_app: LocalApp, shape: str
) -> None:
    _use(local_app, _tenant(behaviour={"userConfigurationBodyShape": shape}))

    await local_app.sync()

    statuses = await local_app.statuses()
    assert {(s.outcome, s.reason) for s in statuses.values()} == {
        (Outcome.ASSIGNED, Reason.ASSIGNED),
    }
    assert local_app.teams_by_upn() == {
        NUMBER: ANN, "+31855363012": "bob@contoso.example",
    }
    # Per newly assigned user: no re-read before the write (the plan read them just now), the
    # assignment, then, after the wait on the queue, one look at their configuration, which
    # shows the number (two Teams requests per user);
    # plus, for the run, one page each of members and numbers and the two delta links
    # ($deltatoken=latest) the next run continues from.
    assert local_app.simulator.request_counts() == {
        "usersDelta": 1,
        "groupsDelta": 1,
        "listTransitiveMemberUsers": 1,
        "listNumberAssignments": 1,
        "getUserConfiguration": 2,
        "assignNumber": 2,
    }
