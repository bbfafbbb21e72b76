"""The service with in-memory fakes: what the queue function decides for one member."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from shared.config import NumberType, TenantSettings
from shared.directory import Claim, Member
from shared.errors import PermanentError, TemporaryError
from shared.messages import AssignmentMessage, MessageError
from shared.outcomes import Outcome, Reason
from shared.sync_service import process_assignment, run_sync
from tests.fakes import (
    FakeClaimStore,
    FakeDirectory,
    FakeQueue,
    FakeStatusStore,
    FakeTeamsNumbers,
)

TENANT = TenantSettings(
    tenant_id=UUID("7e1b2c3d-0000-4000-8000-000000000001"),
    voice_group_id=UUID("7e1b2c3d-0000-4000-8000-000000000002"),
    number_type=NumberType.OPERATOR_CONNECT,
)
NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


def _message(
    user: str, number: str | None, position: int = 0, run: str = "run-1"
) -> AssignmentMessage:
    return AssignmentMessage(
        tenant_id=TENANT.key,
        run_id=run,
        user_id=user,
        user_principal_name=f"{user}@contoso.example",
        telephone_number=number,
        read_position=position,
    )


class World:
    def __init__(self, teams: dict[str, str] | None = None) -> None:
        self.claims = FakeClaimStore()
        self.statuses = FakeStatusStore()
        self.teams = FakeTeamsNumbers(teams)

    async def process(
        self, message: AssignmentMessage, *, final: bool = False
    ) -> tuple[Outcome, Reason]:
        result = await process_assignment(
            message,
            tenant=TENANT,
            claims=self.claims,
            teams=self.teams,
            statuses=self.statuses,
            clock=lambda: NOW,
            final_attempt=final,
        )
        stored = await self.statuses.list_statuses(TENANT.key)
        assert any(s.user_id == message.user_id and s.outcome is result.outcome for s in stored)
        return result.outcome, result.reason


async def test_a_valid_unclaimed_number_is_assigned_with_the_tenants_number_type() -> None:
    world = World()
    assert await world.process(_message("ann", "+31855363011")) == (
        Outcome.ASSIGNED,
        Reason.ASSIGNED,
    )
    assert world.teams.assignments == {"+31855363011": "ann"}
    assert world.teams.assign_calls == [("+31855363011", "ann", NumberType.OPERATOR_CONNECT)]


async def test_a_redelivered_message_sends_no_second_write() -> None:
    world = World()
    await world.process(_message("ann", "+31855363011"))
    assert await world.process(_message("ann", "+31855363011")) == (
        Outcome.KEPT,
        Reason.ALREADY_ASSIGNED,
    )
    assert len(world.teams.assign_calls) == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, Reason.NO_NUMBER),
        ("085 536 3011", Reason.INVALID_FORMAT),
        ("+3185536301", Reason.INVALID_NUMBER),
    ],
)
async def test_numbers_that_break_the_rule_are_skipped_without_touching_teams(
    raw: str | None, reason: Reason
) -> None:
    world = World()
    assert await world.process(_message("ann", raw)) == (Outcome.SKIPPED, reason)
    assert world.teams.assign_calls == []
    assert world.claims.claims == {}


async def test_a_number_claimed_by_another_user_is_a_duplicate_naming_the_holder() -> None:
    world = World()
    await world.claims.claim(
        TENANT.key, Claim("+31855363011", "ann", "ann@contoso.example", "r", 0)
    )
    assert await world.process(_message("bob", "+31855363011", 1)) == (
        Outcome.SKIPPED,
        Reason.DUPLICATE,
    )
    (status,) = [s for s in world.statuses.statuses.values() if s.user_id == "bob"]
    assert "ann@contoso.example" in status.message
    assert world.teams.assign_calls == []


async def test_a_number_teams_has_on_someone_else_is_never_taken() -> None:
    world = World(teams={"+31855363011": "reception"})
    assert await world.process(_message("ann", "+31855363011")) == (
        Outcome.SKIPPED,
        Reason.ASSIGNED_ELSEWHERE,
    )
    assert world.teams.assignments == {"+31855363011": "reception"}


async def test_a_teams_refusal_is_recorded_with_its_reason() -> None:
    world = World()
    world.teams.refusal = PermanentError(Reason.NOT_IN_INVENTORY, "not in the inventory")
    assert await world.process(_message("ann", "+31855363011")) == (
        Outcome.FAILED,
        Reason.NOT_IN_INVENTORY,
    )


async def test_a_temporary_failure_is_retried_and_recorded_only_on_the_last_attempt() -> None:
    world = World()
    world.teams.temporary = TemporaryError("throttled", retry_after_seconds=30)
    with pytest.raises(TemporaryError):
        await process_assignment(
            _message("ann", "+31855363011"),
            tenant=TENANT,
            claims=world.claims,
            teams=world.teams,
            statuses=world.statuses,
            clock=lambda: NOW,
        )
    assert world.statuses.statuses == {}

    with pytest.raises(TemporaryError):
        await process_assignment(
            _message("ann", "+31855363011"),
            tenant=TENANT,
            claims=world.claims,
            teams=world.teams,
            statuses=world.statuses,
            clock=lambda: NOW,
            final_attempt=True,
        )
    (status,) = world.statuses.statuses.values()
    assert (status.outcome, status.reason) == (Outcome.FAILED, Reason.ASSIGNMENT_FAILED)
    assert "throttled" in status.message


async def test_a_message_for_another_tenant_is_refused() -> None:
    world = World()
    foreign = _message("ann", "+31855363011").model_copy(update={"tenant_id": "someone-else"})
    with pytest.raises(MessageError, match="someone-else"):
        await world.process(foreign)


async def test_run_sync_reserves_in_read_order_and_enqueues_every_member() -> None:
    members = [
        Member("ann", "ann@contoso.example", ("+31855363011",), True, 0),
        Member("bob", "bob@contoso.example", ("+31855363011",), True, 1),
        Member("cy", "cy@contoso.example", (), True, 2),
    ]
    claims, queue = FakeClaimStore(), FakeQueue()
    summary = await run_sync(
        tenant=TENANT,
        run_id="run-1",
        directory=FakeDirectory(members),
        claims=claims,
        queue=queue,
    )
    assert [m.user_id for m in queue.sent] == ["ann", "bob", "cy"]
    assert (await claims.list_claims(TENANT.key))["+31855363011"].holder_user_id == "ann"
    assert summary.enqueued == 3
    assert summary.precheck == {"valid": 1, "duplicate": 1, "no_number": 1}


async def test_a_dry_run_writes_nothing_and_shows_what_it_would_enqueue() -> None:
    members = [Member("ann", "ann@contoso.example", ("+31855363011",), True, 0)]
    claims, queue = FakeClaimStore(), FakeQueue()
    summary = await run_sync(
        tenant=TENANT,
        run_id="run-1",
        directory=FakeDirectory(members),
        claims=claims,
        queue=queue,
        dry_run=True,
    )
    assert queue.sent == []
    assert claims.claims == {}
    body = summary.to_json()
    assert body["dryRun"] is True
    assert body["enqueued"] == 0
    assert [m.user_id for m in summary.messages] == ["ann"]
    assert "wouldEnqueue" in body
