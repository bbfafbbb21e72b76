"""One set of assertions for the shared Teams pace: the in-memory fake and the ``graphpace``
table on Azurite must reserve the same blocks, however many instances ask at once."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from azure.data.tables.aio import TableServiceClient

from local_runner.azurite import Azurite
from shared.adapters.storage.claims_and_statuses import ensure_tables
from shared.adapters.storage.pace import TablePaceStore
from shared.core.request_pace import Pace
from shared.service.ports import PaceStore
from tests.fakes import FakePaceStore

pytestmark = pytest.mark.integration

PACE = Pace(requests_per_second=10, block_size=3)
NOW = 1_800_000_000.0

#: Two function instances: separate clients (for the table) over the same shared state.
Instances = tuple[PaceStore, PaceStore]
#: The two instances of one tenant, bound to the tenant given (each test's own).
InstancesFor = Callable[[str], Instances]


@pytest.fixture(params=["fake", "azurite"])
async def instances_for(request: pytest.FixtureRequest) -> AsyncIterator[InstancesFor]:
    if request.param == "fake":
        shared: dict[str, float] = {}
        yield lambda tenant: (FakePaceStore(tenant, shared), FakePaceStore(tenant, shared))
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    async with (
        TableServiceClient.from_connection_string(azurite.connection_string) as first,
        TableServiceClient.from_connection_string(azurite.connection_string) as second,
    ):
        await ensure_tables(first)
        yield lambda tenant: (TablePaceStore(first, tenant), TablePaceStore(second, tenant))


def _tenant() -> str:
    return str(uuid.uuid4())


async def test_a_new_tenant_starts_now(instances_for: InstancesFor) -> None:
    store, _ = instances_for(_tenant())
    block = await store.reserve(PACE, NOW)
    assert (block.first, block.count) == (NOW, 3)
    assert block.interval == pytest.approx(0.1)


async def test_the_next_block_starts_where_the_last_one_ended(instances_for: InstancesFor) -> None:
    first_instance, second_instance = instances_for(_tenant())
    first = await first_instance.reserve(PACE, NOW)
    second = await second_instance.reserve(PACE, NOW + 0.01)
    third = await first_instance.reserve(PACE, NOW + 0.02)
    assert second.first == pytest.approx(first.end)
    assert third.first == pytest.approx(second.end)


async def test_an_idle_tenant_starts_again_now(instances_for: InstancesFor) -> None:
    store, _ = instances_for(_tenant())
    await store.reserve(PACE, NOW)
    later = await store.reserve(PACE, NOW + 60.5)
    assert later.first == pytest.approx(NOW + 60.5)


async def test_concurrent_reservations_never_overlap_and_leave_no_gap(
    instances_for: InstancesFor,
) -> None:
    # A new tenant: the racing instances also race to create the row.
    first_instance, second_instance = instances_for(_tenant())
    blocks = await asyncio.gather(*(
        (first_instance if index % 2 else second_instance).reserve(PACE, NOW)
        for index in range(16)
    ))
    ordered = sorted(blocks, key=lambda block: block.first)
    assert ordered[0].first == NOW
    for earlier, later in itertools.pairwise(ordered):
        assert later.first == pytest.approx(earlier.end)


async def test_tenants_are_paced_separately(instances_for: InstancesFor) -> None:
    (store_a, _), (store_b, _) = instances_for(_tenant()), instances_for(_tenant())
    await store_a.reserve(PACE, NOW)
    await store_a.reserve(PACE, NOW)
    assert (await store_b.reserve(PACE, NOW)).first == NOW
