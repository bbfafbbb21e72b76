"""The run ledger's contract, against the in-memory fake and the Azurite-backed adapter."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables.aio import TableServiceClient

from local_runner.azurite import Azurite
from shared.adapters.storage.runs import TABLES, TableRunLedger
from shared.core.records import Hold, RunRecord
from shared.service.ports import RunLedger
from tests.fakes import FakeRunLedger

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)

LedgerFor = Callable[[str], RunLedger]


@pytest.fixture(params=["fake", "azurite"])
async def ledger_for(request: pytest.FixtureRequest) -> AsyncIterator[LedgerFor]:
    """A ledger bound to the tenant given (each test's own)."""
    if request.param == "fake":
        yield FakeRunLedger
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        for name in TABLES:
            await service.create_table_if_not_exists(name)
        yield lambda tenant: TableRunLedger(service, tenant)


def _hold(run: str, user: str, status: str = "pending") -> Hold:
    return Hold(run, user, f"{user}@contoso.example", "+31855363011", "mass_unassign_guard",
                "held", status, NOW)


async def test_one_run_at_a_time_holds_the_lease(ledger_for: LedgerFor) -> None:
    ledger = ledger_for(str(uuid.uuid4()))
    assert await ledger.acquire_lease("run-a", NOW, TTL) is None
    assert await ledger.acquire_lease("run-b", NOW + timedelta(minutes=1), TTL) == "run-a"
    await ledger.release_lease("run-b")  # not the holder: nothing happens
    assert await ledger.acquire_lease("run-c", NOW, TTL) == "run-a"
    await ledger.release_lease("run-a")
    assert await ledger.acquire_lease("run-c", NOW, TTL) is None


async def test_an_expired_lease_is_taken_over(ledger_for: LedgerFor) -> None:
    ledger = ledger_for(str(uuid.uuid4()))
    assert await ledger.acquire_lease("crashed", NOW, TTL) is None
    assert await ledger.acquire_lease("next", NOW + TTL + timedelta(seconds=1), TTL) is None
    assert await ledger.acquire_lease("third", NOW + TTL, TTL) == "next"


async def test_of_two_runs_racing_for_a_free_lease_one_wins(ledger_for: LedgerFor) -> None:
    ledger = ledger_for(str(uuid.uuid4()))
    results = await asyncio.gather(
        *(ledger.acquire_lease(f"run-{i}", NOW, TTL) for i in range(6))
    )
    assert results.count(None) == 1


async def test_run_records_are_kept_per_tenant_in_order(ledger_for: LedgerFor) -> None:
    ledger = ledger_for(str(uuid.uuid4()))
    for run_id, outcome in (("r2", "skipped"), ("r1", "completed")):
        await ledger.record_run(RunRecord(run_id, NOW, NOW, outcome, "m", {"members": 3}))
    runs = await ledger.runs()
    assert [(r.run_id, r.outcome, r.counts) for r in runs] == [
        ("r1", "completed", {"members": 3}), ("r2", "skipped", {"members": 3}),
    ]
    assert await ledger_for(str(uuid.uuid4())).runs() == []


async def test_holds_are_stored_once_listed_by_status_and_updated(ledger_for: LedgerFor) -> None:
    ledger = ledger_for(str(uuid.uuid4()))
    await ledger.save_holds([_hold("r1", "ann"), _hold("r1", "bob")])
    await ledger.save_holds([_hold("r1", "ann", status="dropped")])  # already stored
    assert [h.user_id for h in await ledger.holds("pending")] == ["ann", "bob"]
    approved = replace(_hold("r1", "ann"), status="approved", decided_by="ops@operator.example",
                       decided_at=NOW)
    await ledger.update_hold(approved)
    (stored,) = await ledger.holds("approved")
    assert (stored.decided_by, stored.decided_at) == ("ops@operator.example", NOW)
    assert len(await ledger.holds()) == 2


async def test_effects_are_remembered_by_idempotency_key(ledger_for: LedgerFor) -> None:
    ledger = ledger_for(str(uuid.uuid4()))
    key = "20261129T030000.000000Z-ab:user:assign:+31855363011"
    assert not await ledger.effect_done(key)
    await ledger.mark_effect_done(key, NOW)
    await ledger.mark_effect_done(key, NOW)
    assert await ledger.effect_done(key)
    assert not await ledger_for(str(uuid.uuid4())).effect_done(key)
