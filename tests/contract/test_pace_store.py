"""One set of assertions for the shared Teams paces: the in-memory fake and the ``graphpace``
table on Azurite must reserve the same blocks, however many instances ask at once, each tenant's
and the app's across tenants apart."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from azure.data.tables.aio import TableServiceClient

from local_runner.azurite import Azurite
from shared.adapters.storage.claims_and_statuses import ensure_tables
from shared.adapters.storage.pace import (
    APP_PACE_PARTITION,
    PACE_TABLE,
    TEAMS_SCOPE,
    TablePaceStore,
)
from shared.core.request_pace import Pace
from shared.service.ports import PaceStore
from tests.fakes import FakePaceStore

pytestmark = pytest.mark.integration

PACE = Pace(requests_per_second=10, block_size=3)
NOW = 1_800_000_000.0

#: Two function instances: separate clients (for the table) over the same shared state.
Instances = tuple[PaceStore, PaceStore]
#: The two instances' stores of one pace: the tenant given (each test's own), or the app's
#: (``APP_PACE_PARTITION``, shared with every other test on the same Azurite).
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

        def stores(partition: str) -> Instances:
            if partition == APP_PACE_PARTITION:
                return TablePaceStore.app_wide(first), TablePaceStore.app_wide(second)
            return TablePaceStore(first, partition), TablePaceStore(second, partition)

        yield stores


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


async def test_the_app_wide_pace_and_the_tenants_paces_do_not_touch_each_other(
    instances_for: InstancesFor,
) -> None:
    (app_1, app_2), (tenant_a, _), (tenant_b, _) = (
        instances_for(APP_PACE_PARTITION), instances_for(_tenant()), instances_for(_tenant()))
    # The app's row may have been moved on by other tests: go on from wherever it is.
    first = await app_1.reserve(PACE, NOW)
    assert (await tenant_a.reserve(PACE, NOW)).first == NOW
    second = await app_2.reserve(PACE, NOW)
    assert second.first == pytest.approx(first.end)
    assert (await tenant_b.reserve(PACE, NOW)).first == NOW
    assert (await tenant_a.reserve(PACE, NOW)).first == pytest.approx(NOW + 0.3)
    assert (await app_1.reserve(PACE, NOW)).first == pytest.approx(second.end)


async def test_racing_reservations_of_the_app_and_a_tenant_each_stay_contiguous(
    instances_for: InstancesFor,
) -> None:
    tenant, app = instances_for(_tenant()), instances_for(APP_PACE_PARTITION)
    # Every request reserves in both (its tenant's pace, then the app's), on two instances.
    blocks = await asyncio.gather(*(
        pace[index % 2].reserve(PACE, NOW) for index in range(12) for pace in (tenant, app)
    ))
    tenant_blocks = sorted(blocks[0::2], key=lambda block: block.first)
    app_blocks = sorted(blocks[1::2], key=lambda block: block.first)
    assert tenant_blocks[0].first == NOW
    for ordered in (tenant_blocks, app_blocks):
        for earlier, later in itertools.pairwise(ordered):
            assert later.first == pytest.approx(earlier.end)


async def test_the_app_wide_pace_is_the_app_row_of_the_pace_table(azurite: Azurite) -> None:
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        await ensure_tables(service)
        block = await TablePaceStore.app_wide(service).reserve(PACE, NOW)
        row = await service.get_table_client(PACE_TABLE).get_entity(
            APP_PACE_PARTITION, TEAMS_SCOPE)
    assert float(row["NextFreeAt"]) == pytest.approx(block.end)
