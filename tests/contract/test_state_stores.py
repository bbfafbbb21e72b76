"""One set of assertions for the claim and status stores: the in-memory fakes and the Table
Storage adapters on Azurite must behave the same, or the unit tests built on the fakes lie."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from azure.data.tables.aio import TableServiceClient

from local_runner.azurite import Azurite
from shared.adapters.storage.claims_and_statuses import (
    TableClaimStore,
    TableStatusStore,
    ensure_tables,
)
from shared.core.directory import Claim
from shared.core.outcomes import Outcome, Reason
from shared.core.records import UserStatus
from shared.service.ports import ClaimStore, StatusStore
from tests.fakes import FakeClaimStore, FakeStatusStore

pytestmark = pytest.mark.integration

Stores = tuple[ClaimStore, StatusStore]
#: The stores bound to the tenant given (each test's own).
StoresFor = Callable[[str], Stores]


@pytest.fixture(params=["fake", "azurite"])
async def stores_for(request: pytest.FixtureRequest) -> AsyncIterator[StoresFor]:
    if request.param == "fake":
        yield lambda tenant: (FakeClaimStore(tenant), FakeStatusStore(tenant))
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        await ensure_tables(service)
        yield lambda tenant: (TableClaimStore(service, tenant), TableStatusStore(service, tenant))


def _tenant() -> str:
    return str(uuid.uuid4())


def _claim(number: str, user: str, position: int = 0, run: str = "run-1") -> Claim:
    return Claim(number, user, f"{user}@contoso.example", run, position)


def _status(user: str, run: str, outcome: Outcome = Outcome.ASSIGNED) -> UserStatus:
    return UserStatus(
        user_id=user, user_principal_name=f"{user}@contoso.example", outcome=outcome,
        reason=Reason.ASSIGNED, number="+31855363011", message="m", run_id=run,
        read_position=3, updated_at=datetime(2026, 11, 29, 2, 0, tzinfo=UTC),
    )


async def test_first_claim_wins_and_later_claims_read_it_back(stores_for: StoresFor) -> None:
    claims, _ = stores_for(_tenant())
    first = await claims.claim(_claim("+31855363011", "ann", 0))
    second = await claims.claim(_claim("+31855363011", "bob", 1))
    assert first.holder_user_id == "ann"
    assert second.holder_user_id == "ann"
    assert second.holder_upn == "ann@contoso.example"


async def test_claiming_again_as_the_holder_is_idempotent(stores_for: StoresFor) -> None:
    claims, _ = stores_for(_tenant())
    await claims.claim(_claim("+31855363011", "ann", 0, "run-1"))
    again = await claims.claim(_claim("+31855363011", "ann", 5, "run-2"))
    assert (again.holder_user_id, again.run_id, again.read_position) == ("ann", "run-1", 0)


async def test_of_many_concurrent_claims_exactly_one_is_stored(stores_for: StoresFor) -> None:
    claims, _ = stores_for(_tenant())
    results = await asyncio.gather(
        *(claims.claim(_claim("+31855363099", f"user{i}", i)) for i in range(12))
    )
    assert len({result.holder_user_id for result in results}) == 1
    assert (await claims.list_claims())["+31855363099"].holder_user_id == (
        results[0].holder_user_id
    )


async def test_claims_are_partitioned_by_tenant(stores_for: StoresFor) -> None:
    (claims_a, _), (claims_b, _) = stores_for(_tenant()), stores_for(_tenant())
    await claims_a.claim(_claim("+31855363011", "ann"))
    assert await claims_b.list_claims() == {}
    held = await claims_b.claim(_claim("+31855363011", "bob"))
    assert held.holder_user_id == "bob"
    assert set(await claims_a.list_claims()) == {"+31855363011"}


async def test_status_keeps_the_latest_run(stores_for: StoresFor) -> None:
    _, statuses = stores_for(_tenant())
    await statuses.record(_status("ann", "20261129T020000Z-aaaa", Outcome.ASSIGNED))
    await statuses.record(_status("ann", "20261129T030000Z-bbbb", Outcome.KEPT))
    await statuses.record(_status("ann", "20261129T010000Z-cccc", Outcome.FAILED))
    (stored,) = await statuses.list_statuses()
    assert stored.outcome is Outcome.KEPT
    assert stored.run_id == "20261129T030000Z-bbbb"
    assert stored.number == "+31855363011"
    assert stored.read_position == 3
    assert stored.updated_at == datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


async def test_status_rows_are_per_user_and_per_tenant(stores_for: StoresFor) -> None:
    (_, statuses_a), (_, statuses_b) = stores_for(_tenant()), stores_for(_tenant())
    await statuses_a.record(_status("ann", "r1"))
    await statuses_a.record(_status("bob", "r1"))
    await statuses_b.record(_status("cy", "r1"))
    assert {s.user_id for s in await statuses_a.list_statuses()} == {"ann", "bob"}
    assert {s.user_id for s in await statuses_b.list_statuses()} == {"cy"}


async def test_a_missing_claim_reads_as_none(stores_for: StoresFor) -> None:
    claims, _ = stores_for(_tenant())
    assert await claims.get_claim("+31855363011") is None


async def test_marking_assigned_sets_the_ownership_marker_for_the_holder_only(
    stores_for: StoresFor,
) -> None:
    claims, _ = stores_for(_tenant())
    await claims.claim(_claim("+31855363011", "ann"))
    assert not await claims.mark_assigned("+31855363011", "bob")
    assert await claims.mark_assigned("+31855363011", "ann")
    assert await claims.mark_assigned("+31855363011", "ann")  # idempotent
    stored = await claims.get_claim("+31855363011")
    assert stored is not None
    assert (stored.holder_user_id, stored.assigned) == ("ann", True)
    assert (await claims.list_claims())["+31855363011"].assigned


async def test_the_intent_to_assign_is_recorded_for_the_holder_only_and_can_be_withdrawn(
    stores_for: StoresFor,
) -> None:
    claims, _ = stores_for(_tenant())
    since = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    await claims.claim(_claim("+31855363011", "ann"))
    assert not await claims.mark_assigning("+31855363011", "bob", since)
    assert await claims.mark_assigning("+31855363011", "ann", since)
    stored = (await claims.list_claims())["+31855363011"]
    assert (stored.assigning_since, stored.assigned) == (since, False)

    assert await claims.mark_assigning("+31855363011", "ann", None)
    withdrawn = await claims.get_claim("+31855363011")
    assert withdrawn is not None
    assert (withdrawn.holder_user_id, withdrawn.assigning_since) == ("ann", None)


async def test_withdrawing_the_intent_leaves_the_ownership_marker(stores_for: StoresFor) -> None:
    claims, _ = stores_for(_tenant())
    since = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    await claims.claim(_claim("+31855363011", "ann"))
    await claims.mark_assigning("+31855363011", "ann", since)
    await claims.mark_assigned("+31855363011", "ann")
    assert await claims.mark_assigning("+31855363011", "ann", None)
    stored = await claims.get_claim("+31855363011")
    assert stored is not None
    assert (stored.assigned, stored.assigning_since) == (True, since)


async def test_a_released_number_forgets_the_intent(stores_for: StoresFor) -> None:
    claims, _ = stores_for(_tenant())
    since = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    await claims.claim(_claim("+31855363011", "ann"))
    await claims.mark_assigning("+31855363011", "ann", since)
    await claims.mark_assigned("+31855363011", "ann")
    await claims.release("+31855363011", "ann", cooling_since=since)
    stored = await claims.get_claim("+31855363011")
    assert stored is not None
    assert (stored.assigned, stored.assigning_since, stored.released_at) == (False, None, since)


async def test_release_drops_only_the_holders_claim(stores_for: StoresFor) -> None:
    claims, _ = stores_for(_tenant())
    await claims.claim(_claim("+31855363011", "ann"))
    assert not await claims.release("+31855363011", "bob")
    assert await claims.release("+31855363011", "ann")
    assert await claims.get_claim("+31855363011") is None
    assert not await claims.release("+31855363011", "ann")


async def test_a_stale_reservation_moves_to_the_new_holder(stores_for: StoresFor) -> None:
    claims, _ = stores_for(_tenant())
    await claims.claim(_claim("+31855363011", "ann", 0, "run-1"))
    moved = await claims.transfer("ann", _claim("+31855363011", "bob", 3, "run-2"))
    assert (moved.holder_user_id, moved.run_id) == ("bob", "run-2")
    stored = await claims.get_claim("+31855363011")
    assert stored is not None
    assert stored.holder_user_id == "bob"


async def test_a_transfer_never_takes_a_number_the_app_assigned_or_someone_else_holds(
    stores_for: StoresFor,
) -> None:
    claims, _ = stores_for(_tenant())
    await claims.claim(_claim("+31855363011", "ann"))
    await claims.mark_assigned("+31855363011", "ann")
    kept = await claims.transfer("ann", _claim("+31855363011", "bob", 1))
    assert kept.holder_user_id == "ann"
    await claims.claim(_claim("+31855363012", "cy"))
    kept = await claims.transfer("ann", _claim("+31855363012", "bob", 1))
    assert kept.holder_user_id == "cy"


async def test_a_transfer_of_an_unclaimed_number_claims_it(stores_for: StoresFor) -> None:
    claims, _ = stores_for(_tenant())
    moved = await claims.transfer("ann", _claim("+31855363011", "bob", 1))
    assert moved.holder_user_id == "bob"


async def test_a_grace_period_is_started_and_cancelled_on_the_holders_claim_only(
    stores_for: StoresFor,
) -> None:
    claims, _ = stores_for(_tenant())
    since = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    await claims.claim(_claim("+31855363011", "ann"))
    await claims.mark_assigned("+31855363011", "ann")
    assert not await claims.set_release_pending("+31855363011", "bob", since)
    assert await claims.set_release_pending("+31855363011", "ann", since)
    stored = await claims.get_claim("+31855363011")
    assert stored is not None
    assert (stored.release_pending_since, stored.assigned) == (since, True)
    assert await claims.set_release_pending("+31855363011", "ann", None)
    stored = await claims.get_claim("+31855363011")
    assert stored is not None
    assert stored.release_pending_since is None


async def test_a_released_number_cools_down_in_place_and_can_then_move(
    stores_for: StoresFor,
) -> None:
    claims, _ = stores_for(_tenant())
    since = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    await claims.claim(_claim("+31855363011", "ann"))
    await claims.mark_assigned("+31855363011", "ann")
    assert await claims.release("+31855363011", "ann", cooling_since=since)
    stored = await claims.get_claim("+31855363011")
    assert stored is not None
    assert (stored.holder_user_id, stored.assigned, stored.released_at) == ("ann", False, since)
    assert not stored.held
    moved = await claims.transfer("ann", _claim("+31855363011", "bob", 2))
    assert moved.holder_user_id == "bob"
    stored = await claims.get_claim("+31855363011")
    assert stored is not None
    assert stored.released_at is None


async def test_a_status_keeps_when_the_user_was_first_seen_and_counts_failures_in_a_row(
    stores_for: StoresFor,
) -> None:
    _, statuses = stores_for(_tenant())
    first = _status("ann", "r1", Outcome.FAILED)
    await statuses.record(first)
    later = replace(_status("ann", "r2", Outcome.FAILED),
                    updated_at=datetime(2026, 11, 30, 2, 0, tzinfo=UTC))
    await statuses.record(later)
    (stored,) = await statuses.list_statuses()
    assert (stored.attempts, stored.first_seen) == (2, first.updated_at)
    await statuses.record(replace(_status("ann", "r3"), updated_at=later.updated_at))
    (stored,) = await statuses.list_statuses()
    assert (stored.attempts, stored.first_seen, stored.outcome) == (
        0, first.updated_at, Outcome.ASSIGNED,
    )


async def test_a_status_keeps_its_retry_time_and_when_the_wait_began(stores_for: StoresFor) -> None:
    _, statuses = stores_for(_tenant())
    began = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
    retry = datetime(2026, 11, 29, 2, 15, tzinfo=UTC)
    waiting = replace(
        _status("ann", "r1", Outcome.SKIPPED), reason=Reason.WAITING_FOR_TEAMS,
        retry_at=retry, waiting_since=began,
    )
    await statuses.record(waiting)
    stored = await statuses.get_status("ann")
    assert stored is not None
    assert (stored.retry_at, stored.waiting_since) == (retry, began)
    assert await statuses.list_statuses() == [stored]

    await statuses.record(_status("ann", "r2"))  # assigned: neither time any more
    stored = await statuses.get_status("ann")
    assert stored is not None
    assert (stored.outcome, stored.retry_at, stored.waiting_since) == (
        Outcome.ASSIGNED, None, None,
    )


async def test_a_missing_status_reads_as_none(stores_for: StoresFor) -> None:
    _, statuses = stores_for(_tenant())
    assert await statuses.get_status("ann") is None


async def test_waits_for_teams_count_as_attempts_in_a_row_like_failures(
    stores_for: StoresFor,
) -> None:
    _, statuses = stores_for(_tenant())
    runs = iter(f"r{n}" for n in range(1, 10))

    async def record(outcome: Outcome, reason: Reason) -> int:
        await statuses.record(replace(
            _status("ann", next(runs), outcome), reason=reason,
        ))
        stored = await statuses.get_status("ann")
        assert stored is not None
        return stored.attempts

    assert await record(Outcome.SKIPPED, Reason.WAITING_FOR_TEAMS) == 1
    assert await record(Outcome.SKIPPED, Reason.NOT_LICENSED) == 2
    assert await record(Outcome.FAILED, Reason.NOT_LICENSED) == 3
    assert await record(Outcome.FAILED, Reason.EV_NOT_ENABLED) == 4
    assert await record(Outcome.SKIPPED, Reason.STALE) == 0  # anything else starts again
    assert await record(Outcome.SKIPPED, Reason.WAITING_FOR_TEAMS) == 1
    assert await record(Outcome.ASSIGNED, Reason.ASSIGNED) == 0
