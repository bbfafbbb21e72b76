"""One set of assertions for the audit trail: the in-memory fake and the Table Storage adapter
on Azurite must behave the same."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables.aio import TableServiceClient

from local_runner.azurite import Azurite
from shared.adapters.storage.audit import TableAuditLog
from shared.adapters.storage.claims_and_statuses import ensure_tables
from shared.core.audit import AuditEntry, AuditKind, AuditMonth, AuditOutcome, row_key
from shared.service.ports import AuditLog
from tests.fakes import FakeAuditLog

pytestmark = pytest.mark.integration

AuditFor = Callable[[str], AuditLog]
AT = datetime(2026, 11, 29, 2, 3, 4, 567891, tzinfo=UTC)


@pytest.fixture(params=["fake", "azurite"])
async def audit_for(request: pytest.FixtureRequest) -> AsyncIterator[AuditFor]:
    """An audit trail bound to the tenant given (each test's own)."""
    if request.param == "fake":
        yield FakeAuditLog
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        await ensure_tables(service)
        yield lambda tenant: TableAuditLog(service, tenant)


def _tenant() -> str:
    return str(uuid.uuid4())


def _write(at: datetime, **fields: object) -> AuditEntry:
    values: dict[str, object] = {
        "kind": AuditKind.NUMBER_ASSIGNED, "at": at, "who": "app", "caller": "queue",
        "user_id": "u-ann", "user_principal_name": "ann@contoso.example",
        "number": "+31201234567", "before": "+31201234500", "after": "+31201234567",
        "run_id": "run-1", "message_id": "run-1|u-ann|assign|+31201234567",
        "step": "assign +31201234567", **fields,
    }
    return AuditEntry(**values)  # type: ignore[arg-type]


async def test_an_entry_reads_back_whole_and_in_time_order(audit_for: AuditFor) -> None:
    audit = audit_for(_tenant())
    later = _write(AT + timedelta(seconds=1), kind=AuditKind.POLICIES_GRANTED,
                   policies=("CallingLineIdentity: O'Brien / NL",), number=None,
                   outcome=AuditOutcome.FAILED, detail="not_licensed: no licence",
                   step="grant CallingLineIdentity")
    manual = AuditEntry(kind=AuditKind.MANUAL_SYNC, at=AT, who="ops@operator.example",
                        caller="function key")
    for entry in (later, _write(AT), manual):
        assert await audit.record(entry)

    # Time order; two at the same microsecond in RowKey order (the digest), the same on both.
    assert await audit.entries(AT - timedelta(days=1), AT + timedelta(days=1)) == [
        *sorted([_write(AT), manual], key=row_key), later,
    ]


async def test_a_repeated_write_of_a_message_is_recorded_once(audit_for: AuditFor) -> None:
    audit = audit_for(_tenant())
    assert await audit.record(_write(AT))
    # A redelivery performs the same write again, a few seconds later: nothing is appended.
    assert not await audit.record(_write(AT + timedelta(seconds=7)))
    # The same write failing is a separate line; so is an entry without a message.
    assert await audit.record(_write(AT + timedelta(seconds=8), outcome=AuditOutcome.FAILED))
    manual = AuditEntry(kind=AuditKind.MANUAL_SYNC, at=AT, who="ops", caller="cli:ops")
    assert await audit.record(manual)
    assert not await audit.record(manual)  # the very same entry is the same row

    entries = await audit.entries(AT - timedelta(days=1), AT + timedelta(days=1))
    assert sorted(e.outcome.value for e in entries) == ["done", "done", "failed"]


async def test_a_read_spans_months_and_keeps_to_its_times_and_tenant(audit_for: AuditFor) -> None:
    tenant = _tenant()
    audit, other = audit_for(tenant), audit_for(_tenant())
    october, november = AT - timedelta(days=35), AT
    for at in (october, november):
        await audit.record(AuditEntry(kind=AuditKind.MANUAL_SYNC, at=at, who="a", caller="a"))
    await other.record(AuditEntry(kind=AuditKind.MANUAL_SYNC, at=AT, who="b", caller="b"))

    both = await audit.entries(october, november)
    assert [entry.at for entry in both] == [october, november]
    assert [e.at for e in await audit.entries(october + timedelta(microseconds=1), AT)] == [AT]
    assert [e.who for e in await other.entries(october, november)] == ["b"]


async def test_a_purge_deletes_whole_old_months_of_the_tenant_only(audit_for: AuditFor) -> None:
    audit, other = audit_for(_tenant()), audit_for(_tenant())
    old = datetime(2025, 9, 30, 23, 59, tzinfo=UTC)
    for at in (old, old - timedelta(days=40), AT):
        await audit.record(_write(at))  # message writes: each with its marker row
    await other.record(_write(old))

    gone = await audit.purge_before(AuditMonth(2025, 10))

    assert gone == {AuditMonth(2025, 8): 1, AuditMonth(2025, 9): 1}
    assert [e.at for e in await audit.entries(old - timedelta(days=60), AT)] == [AT]
    assert [e.at for e in await other.entries(old, old)] == [old]
    assert await audit.purge_before(AuditMonth(2025, 10)) == {}
    # The markers went with their month: the same write in that month is new again.
    assert await audit.record(_write(old))
