"""The demo tenant end to end: the timer function, then the queue function, on real parts."""

from __future__ import annotations

import json

from shared.outcomes import Outcome, Reason
from tests.integration.conftest import REPO, LocalApp


def _expected_assignments() -> dict[str, str]:
    data = json.loads((REPO / "scenarios" / "demo.expected.json").read_text())
    return dict(data["numberAssignments"])


async def test_a_full_sync_gives_teams_exactly_the_expected_numbers(local_app: LocalApp) -> None:
    stats = await local_app.sync()

    assert local_app.teams_by_upn() == _expected_assignments()
    assert stats.poisoned == 0
    assert stats.failed_attempts == 0
    counts = local_app.simulator.request_counts()
    assert counts["assignNumber"] == 50
    assert counts["unassignNumber"] == 3  # the leaver, the cleared number, the changed number


async def test_every_rule_of_the_customer_shows_in_the_outcomes(local_app: LocalApp) -> None:
    await local_app.sync()
    statuses = await local_app.statuses()

    def outcome(upn: str) -> tuple[Outcome, Reason]:
        status = statuses[f"{upn}@contoso.example"]
        return status.outcome, status.reason

    assert outcome("user01") == (Outcome.ASSIGNED, Reason.ASSIGNED)
    assert outcome("support4") == (Outcome.ASSIGNED, Reason.ASSIGNED)  # nested, two levels deep
    assert outcome("spaced.number") == (Outcome.SKIPPED, Reason.INVALID_FORMAT)
    assert "Did you mean +31855363060?" in statuses["spaced.number@contoso.example"].message
    assert outcome("national.number") == (Outcome.SKIPPED, Reason.INVALID_FORMAT)
    assert outcome("short.number") == (Outcome.SKIPPED, Reason.INVALID_NUMBER)
    assert outcome("no.number1") == (Outcome.SKIPPED, Reason.NO_NUMBER)
    assert outcome("duplicate.of.user03") == (Outcome.SKIPPED, Reason.DUPLICATE)
    assert "user03@contoso.example" in statuses["duplicate.of.user03@contoso.example"].message
    assert outcome("already.assigned") == (Outcome.KEPT, Reason.ALREADY_ASSIGNED)
    assert outcome("number.elsewhere") == (Outcome.SKIPPED, Reason.ASSIGNED_ELSEWHERE)
    assert outcome("operator.desk") == (Outcome.SKIPPED, Reason.MAIN_NUMBER)
    assert outcome("front.office") == (Outcome.SKIPPED, Reason.MAIN_NUMBER)
    assert "contoso.example" in statuses["front.office@contoso.example"].message
    assert outcome("out.of.range") == (Outcome.SKIPPED, Reason.NOT_IN_RANGE)
    assert outcome("disabled.account") == (Outcome.SKIPPED, Reason.DISABLED)
    assert outcome("changed.number") == (Outcome.ASSIGNED, Reason.NUMBER_CHANGED)
    assert outcome("cleared.number") == (Outcome.UNASSIGNED, Reason.NUMBER_REMOVED)
    assert outcome("left.the.company") == (Outcome.UNASSIGNED, Reason.LEFT_GROUP)
    assert not any(upn.startswith(("outside", "reception")) for upn in statuses)


async def test_a_second_sync_sends_no_assign_number_request(local_app: LocalApp) -> None:
    await local_app.sync()
    assigned_first = local_app.teams_by_upn()
    local_app.simulator.clear_requests()

    await local_app.sync()

    counts = local_app.simulator.request_counts()
    assert counts.get("assignNumber", 0) == 0
    assert counts.get("unassignNumber", 0) == 0
    assert local_app.teams_by_upn() == assigned_first
    assert sum(counts.values()) == 2  # the member list and the Teams number list, one page each


async def test_a_group_dropped_by_mistake_is_held_not_unassigned(local_app: LocalApp) -> None:
    await local_app.sync()
    before = local_app.teams_by_upn()
    (step,) = local_app.scenario.timeline
    local_app.simulator.replace_directory(step.directory)
    local_app.simulator.clear_requests()

    stats = await local_app.sync()

    assert local_app.teams_by_upn() == before
    assert local_app.simulator.request_counts().get("unassignNumber", 0) == 0
    assert stats.invocations == 0
    held = [s for s in (await local_app.statuses()).values() if s.outcome is Outcome.HELD]
    assert len(held) == 11
    assert all(s.reason is Reason.MASS_UNASSIGN_GUARD for s in held)
