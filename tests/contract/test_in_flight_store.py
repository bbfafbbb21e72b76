"""One set of assertions for the in-flight markers: the fake and the table on Azurite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables.aio import TableServiceClient

from local_runner.azurite import Azurite
from shared.adapters.storage.claims_and_statuses import ensure_tables
from shared.adapters.storage.in_flight import TableInFlightStore
from shared.core.records import InFlight
from shared.service.ports import InFlightStore
from tests.fakes import FakeInFlightStore

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)

StoreFor = Callable[[str], InFlightStore]


@pytest.fixture(params=["fake", "azurite"])
async def store_for(request: pytest.FixtureRequest) -> AsyncIterator[StoreFor]:
    """A store bound to the tenant given (each test's own)."""
    if request.param == "fake":
        yield FakeInFlightStore
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        await ensure_tables(service)
        yield lambda tenant: TableInFlightStore(service, tenant)


def _marker(user: str, key: str, kind: str = "number", ttl_minutes: int = 60) -> InFlight:
    return InFlight(user, kind, key, NOW, NOW + timedelta(minutes=ttl_minutes))


def _tenant() -> str:
    return str(uuid.uuid4())


async def test_a_queued_change_is_in_flight_until_it_expires(store_for: StoreFor) -> None:
    store = store_for(_tenant())
    await store.mark_queued([_marker("ann", "k1"), _marker("bob", "k2", ttl_minutes=5)])

    now = {m.user_id for m in await store.list_in_flight(NOW)}
    later = {m.user_id for m in await store.list_in_flight(NOW + timedelta(minutes=10))}

    assert (now, later) == ({"ann", "bob"}, {"ann"})
    assert await store_for(_tenant()).list_in_flight(NOW) == []


async def test_clearing_drops_only_the_same_change(store_for: StoreFor) -> None:
    store = store_for(_tenant())
    await store.mark_queued([_marker("ann", "run-1|ann")])
    await store.mark_queued([_marker("ann", "run-2|ann")])  # a later run's change

    await store.clear("ann", "number", "run-1|ann")  # the older delivery finishes
    (still,) = await store.list_in_flight(NOW)
    assert still.idempotency_key == "run-2|ann"

    await store.clear("ann", "number", "run-2|ann")
    await store.clear("ann", "number", "run-2|ann")  # a redelivery: nothing left
    assert await store.list_in_flight(NOW) == []


async def test_a_user_has_one_marker_per_kind(store_for: StoreFor) -> None:
    store = store_for(_tenant())
    await store.mark_queued([_marker("ann", "n"), _marker("ann", "p", kind="policies")])
    await store.clear("ann", "number", "n")
    (left,) = await store.list_in_flight(NOW)
    assert (left.kind, left.idempotency_key) == ("policies", "p")


async def test_many_markers_are_stored_in_transactions(store_for: StoreFor) -> None:
    store = store_for(_tenant())
    markers = [_marker(f"user{i:03d}", f"k{i}") for i in range(250)]
    await store.mark_queued([*markers, _marker("user000", "again")])
    stored = {m.user_id: m.idempotency_key for m in await store.list_in_flight(NOW)}
    assert len(stored) == 250
    assert stored["user000"] == "again"
