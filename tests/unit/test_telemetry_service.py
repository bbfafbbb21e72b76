"""Each event at the moment it happens, on the service's real paths (fakes for the ports, the
real OpenTelemetry sink on the SDK's in-memory exporters)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.core.directory import Claim, Member
from shared.core.errors import PermanentError, TemporaryError
from shared.core.messages import AssignmentMessage
from shared.core.outcomes import Outcome, Reason
from shared.core.records import InFlight
from shared.core.telemetry_events import APP_WIDE
from shared.core.tenant_rules import TenantRules
from shared.service.context import TenantContext
from shared.service.graph_request_tally import graph_requests_counted, note_graph_request
from shared.service.holds import approve_holds
from shared.service.message_handler import process_assignment
from shared.service.tenant_runs import report_poison_depths, run_tenant
from shared.service.timer_run import run_sync
from tests.fakes import (
    NOW,
    TENANT,
    FakeClaimStore,
    FakeDirectory,
    FakeInFlightStore,
    FakeRunLedger,
    FakeTeamsNumbers,
    FakeTenantHealthStore,
    FakeUsers,
    SettableClock,
    deliver,
    fake_context,
)
from tests.telemetry_support import CapturedTelemetry
from tests.unit.test_tenant_runs import EVERY_ROLE, FakeAccess

KEY = TENANT.key
ANN = Member("ann", "ann@contoso.example", ("+31855363011",), True, 0)


def _context(telemetry: CapturedTelemetry, members: list[Member], **ports: object
             ) -> TenantContext:
    given: dict[str, object] = {"directory": FakeDirectory(members), "users": FakeUsers(members),
                                **ports}
    return fake_context(events=telemetry.sink, **given)  # type: ignore[arg-type]


def _assign(number: str = "+31855363011") -> AssignmentMessage:
    return AssignmentMessage(
        tenant_id=KEY, run_id="run-1", user_id="ann", user_principal_name="ann@contoso.example",
        telephone_number=number, number=number, read_position=0, action="assign",
        reason="assigned", previous_number=None, idempotency_key=f"run-1|ann|assign|{number}",
    )


async def test_a_completed_run_reports_what_it_read_decided_and_how_long_changes_wait(
    telemetry: CapturedTelemetry,
) -> None:
    clock = SettableClock(NOW)
    in_flight = FakeInFlightStore(KEY)
    bob = Member("bob", "bob@contoso.example", ("+31855363012",), True, 1)
    await in_flight.mark_queued([InFlight("bob", "number", "k-bob", NOW - timedelta(minutes=12),
                                          NOW + timedelta(minutes=48))])
    context = _context(telemetry, [ANN, bob], in_flight=in_flight, clock=clock)

    await run_sync(context, "run-1")

    (completed,) = telemetry.named("SyncRunCompleted")
    assert completed == {
        "tenantId": KEY, "runId": "run-1", "readMode": "full", "outcome": "completed",
        "members": 2, "enqueued": 1, "assign": 2, "keep": 0, "skip": 0, "unassign": 0,
        "hold": 0, "syncIntervalMinutes": 0, "graphRequests": 0, "durationMs": 0,
        "oldestWaitingMinutes": 12.0,
    }


async def test_a_run_behind_another_runs_lease_is_reported_skipped(
    telemetry: CapturedTelemetry,
) -> None:
    ledger = FakeRunLedger(KEY)
    await ledger.acquire_lease("run-0", NOW, timedelta(minutes=10))
    await run_sync(_context(telemetry, [ANN], ledger=ledger), "run-1")
    assert telemetry.events() == [
        ("SyncRunSkipped", {"tenantId": KEY, "runId": "run-1", "leaseHolder": "run-0"})]


async def test_a_run_that_fails_is_reported_with_its_reason(telemetry: CapturedTelemetry) -> None:
    class Unavailable(FakeDirectory):
        async def read_members(self, group_id: str) -> list[Member]:
            raise TemporaryError("Graph answered 503")

    with pytest.raises(TemporaryError):
        await run_sync(_context(telemetry, [ANN], directory=Unavailable([])), "run-1")
    (failed,) = telemetry.named("SyncRunFailed")
    assert failed["runId"] == "run-1"
    assert "Graph answered 503" in str(failed["reason"])
    assert telemetry.named("SyncRunCompleted") == []


async def test_a_dry_run_reports_nothing(telemetry: CapturedTelemetry) -> None:
    await run_sync(_context(telemetry, [ANN]), "run-1", dry_run=True)
    assert telemetry.events() == []


async def test_the_guard_holding_is_reported_once_with_its_threshold_then_approved(
    telemetry: CapturedTelemetry,
) -> None:
    numbers = [f"+3185536302{i}" for i in range(3)]
    claims, teams = FakeClaimStore(KEY), FakeTeamsNumbers(
        {number: f"former{i}" for i, number in enumerate(numbers)})
    for i, number in enumerate(numbers):
        await claims.claim(Claim(number, f"former{i}", f"former{i}@contoso.example", "r0", i,
                                 assigned=True))
    context = replace(_context(telemetry, [ANN], claims=claims, teams=teams), rules=TenantRules(
        mass_unassign_minimum=2, mass_unassign_percent=0, grace_period_hours=0))

    await run_sync(context, "run-1")
    held = telemetry.named("MassUnassignHeld")
    assert held == [{"tenantId": KEY, "runId": "run-1", "count": 3, "threshold": 2}]
    assert telemetry.counted(Outcome.HELD, KEY) == 3
    assert telemetry.named("SyncRunCompleted")[0]["hold"] == 3

    await approve_holds(context, "ops@operator.example", "run-1")
    assert telemetry.named("HoldsApproved") == [
        {"tenantId": KEY, "approvedBy": "ops@operator.example", "count": 3, "runId": "run-1"}]


async def test_approving_nothing_reports_nothing(telemetry: CapturedTelemetry) -> None:
    await approve_holds(_context(telemetry, [ANN]), "ops@operator.example")
    assert telemetry.events() == []


async def test_an_assignment_is_counted_and_a_refusal_reported_with_reason_and_number(
    telemetry: CapturedTelemetry,
) -> None:
    teams = FakeTeamsNumbers()
    context = _context(telemetry, [ANN], teams=teams)
    await deliver(context, _assign())
    assert telemetry.counted(Outcome.ASSIGNED, KEY) == 1
    assert telemetry.events() == []

    teams.refusal = PermanentError(Reason.NOT_IN_INVENTORY, "not in the inventory")
    other = _context(telemetry, [Member("ann", "ann@contoso.example", ("+31855363019",), True, 0)],
                     teams=teams)
    await process_assignment(other, _assign("+31855363019"))
    assert telemetry.named("UserAssignmentFailed") == [{
        "tenantId": KEY, "runId": "run-1", "userId": "ann", "action": "assign",
        "number": "+31855363019", "reason": "not_in_inventory"}]
    assert telemetry.counted(Outcome.FAILED, KEY) == 1


async def test_a_temporary_failure_is_reported_only_when_given_up_on_the_last_try(
    telemetry: CapturedTelemetry,
) -> None:
    teams = FakeTeamsNumbers()
    teams.temporary = TemporaryError("throttled", retry_after_seconds=5)
    context = _context(telemetry, [ANN], teams=teams)
    with pytest.raises(TemporaryError):
        await process_assignment(context, _assign())
    assert telemetry.events() == []

    with pytest.raises(TemporaryError):
        await process_assignment(context, _assign(), final_attempt=True)
    (failed,) = telemetry.named("UserAssignmentFailed")
    assert failed["reason"] == "assignment_failed"
    assert telemetry.counted(Outcome.FAILED, KEY) == 1


async def test_a_health_change_is_reported_once_with_the_state_before(
    telemetry: CapturedTelemetry,
) -> None:
    clock = SettableClock(NOW)
    context = _context(telemetry, [ANN], clock=clock)
    health = FakeTenantHealthStore()
    missing = FakeAccess(EVERY_ROLE - {"TeamsTelephoneNumber.ReadWrite.All"})

    await run_tenant(context, missing, health, "run-1")
    clock.now += timedelta(minutes=5)
    await run_tenant(context, missing, health, "run-2")
    clock.now += timedelta(minutes=5)
    await run_tenant(context, FakeAccess(), health, "run-3")

    changes = telemetry.named("TenantHealthChanged")
    assert [(c["previousState"], c["state"]) for c in changes] == [
        ("", "auth_failed"), ("auth_failed", "healthy")]
    assert "TeamsTelephoneNumber.ReadWrite.All" in str(changes[0]["healthMessage"])
    assert [f["runId"] for f in telemetry.named("SyncRunFailed")] == ["run-1", "run-2"]


async def test_each_poison_queues_length_is_reported_app_wide(
    telemetry: CapturedTelemetry,
) -> None:
    class Length:
        def __init__(self, count: int | None) -> None:
            self.count = count

        async def approximate_message_count(self) -> int:
            if self.count is None:
                raise ConnectionError("storage unreachable")
            return self.count

    depths = await report_poison_depths(
        {"number-assignments-poison": Length(2), "tenant-syncs-poison": Length(None)},
        telemetry.sink,
    )
    assert depths == {"number-assignments-poison": 2}
    assert telemetry.events() == [("PoisonQueueDepth", {
        "tenantId": APP_WIDE, "queue": "number-assignments-poison", "approximateCount": 2})]


async def test_a_runs_tally_counts_the_requests_of_its_own_tasks_only() -> None:
    async def requests(count: int) -> None:
        for _ in range(count):
            note_graph_request()
            await asyncio.sleep(0)

    beside = asyncio.create_task(requests(5))  # a queue message on the same worker
    with graph_requests_counted() as tally:
        await asyncio.gather(requests(2), requests(3))
    await beside
    note_graph_request()  # after the run: counted nowhere
    assert tally.requests == 5
