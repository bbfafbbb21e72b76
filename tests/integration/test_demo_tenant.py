"""The demo tenant end to end: the timer function, then the queue function, on real parts,
through the demo's timeline (a day passes, a group is dropped by mistake, another day passes)."""

from __future__ import annotations

import json

from shared.core.outcomes import Outcome, Reason
from tests.integration.conftest import REPO, LocalApp


def _expected_assignments() -> dict[str, str]:
    data = json.loads((REPO / "scenarios" / "demo.expected.json").read_text())
    return dict(data["numberAssignments"])


async def test_the_demo_timeline_ends_with_exactly_the_expected_numbers(
    local_app: LocalApp,
) -> None:
    first = await local_app.sync()
    for index in range(len(local_app.scenario.timeline)):
        stats = await local_app.step(index)
        assert stats.poisoned == stats.failed_attempts == 0

    assert local_app.teams_by_upn() == _expected_assignments()
    assert (first.poisoned, first.failed_attempts) == (0, 0)
    counts = local_app.simulator.request_counts()
    assert counts["assignNumber"] == 50
    # The leaver's and the cleared number; a changed number's old one is replaced by the new
    # primary number in Teams and needs no write of its own.
    assert counts["unassignNumber"] == 2


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
    # The main number is never given to a person; its policies are (MAIN_NUMBER_POLICIES).
    assert outcome("operator.desk") == (Outcome.ASSIGNED, Reason.MAIN_NUMBER)
    assert outcome("front.office") == (Outcome.ASSIGNED, Reason.MAIN_NUMBER)
    front_office = statuses["front.office@contoso.example"].message
    assert "contoso.example" in front_office
    assert "CallingLineIdentity 'Contoso Main'" in front_office
    assert "+31855363010" not in local_app.teams_by_upn()
    assert outcome("out.of.range") == (Outcome.SKIPPED, Reason.NOT_IN_RANGE)
    assert outcome("disabled.account") == (Outcome.SKIPPED, Reason.DISABLED)
    assert outcome("changed.number") == (Outcome.ASSIGNED, Reason.NUMBER_CHANGED)
    assert outcome("cleared.number") == (Outcome.HELD, Reason.GRACE_PERIOD)
    assert outcome("left.the.company") == (Outcome.HELD, Reason.GRACE_PERIOD)
    assert not any(upn.startswith(("outside", "reception")) for upn in statuses)
    # Inside the grace period nothing was taken back; a number change is not a removal.
    assert local_app.teams_by_upn()["+31855363080"] == "left.the.company@contoso.example"
    assert "+31855363081" not in local_app.teams_by_upn()


async def test_after_the_grace_period_leavers_lose_the_number_and_it_cools_down(
    local_app: LocalApp,
) -> None:
    await local_app.sync()
    await local_app.step(0)  # a day later
    statuses = await local_app.statuses()
    assert statuses["left.the.company@contoso.example"].outcome is Outcome.UNASSIGNED
    assert statuses["cleared.number@contoso.example"].reason is Reason.NUMBER_REMOVED
    assert "+31855363080" not in local_app.teams_by_upn()

    await local_app.step(1)  # a new hire carries the leaver's old number

    new_hire = (await local_app.statuses())["new.hire@contoso.example"]
    assert (new_hire.outcome, new_hire.reason) == (Outcome.SKIPPED, Reason.COOLING)
    assert "rests until" in new_hire.message
    assert "+31855363080" not in local_app.teams_by_upn()


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
    await local_app.step(0)
    before = local_app.teams_by_upn()
    local_app.simulator.clear_requests()

    inside_grace = await local_app.step(1)
    after_grace = await local_app.step(2)

    assert local_app.teams_by_upn() == before
    assert local_app.simulator.request_counts().get("unassignNumber", 0) == 0
    assert inside_grace.invocations == after_grace.invocations == 0
    held = [s for s in (await local_app.statuses()).values() if s.outcome is Outcome.HELD]
    assert len(held) == 11
    assert all(s.reason is Reason.MASS_UNASSIGN_GUARD for s in held)
