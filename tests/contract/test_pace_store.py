"""One set of assertions for the shared Teams pace: the in-memory fake and the ``graphpace``
table on Azurite must reserve the same blocks, however many instances ask at once."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator

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


@pytest.fixture(params=["fake", "azurite"])
async def instances(request: pytest.FixtureRequest) -> AsyncIterator[Instances]:
    if request.param == "fake":
        shared: dict[str, float] = {}
        yield FakePaceStore(shared), FakePaceStore(shared)
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    async with (
        TableServiceClient.from_connection_string(azurite.connection_string) as first,
        TableServiceClient.from_connection_string(azurite.connection_string) as second,
    ):
        await ensure_tables(first)
        yield TablePaceStore(first), TablePaceStore(second)


def _tenant() -> str:
    return str(uuid.uuid4())


async def test_a_new_tenant_starts_now(instances: Instances) -> None:
    store, _ = instances
    block = await store.reserve(_tenant(), PACE, NOW)
    assert (block.first, block.count) == (NOW, 3)
    assert block.interval == pytest.approx(0.1)


async def test_the_next_block_starts_where_the_last_one_ended(instances: Instances) -> None:
    first_instance, second_instance = instances
    tenant = _tenant()
    first = await first_instance.reserve(tenant, PACE, NOW)
    second = await second_instance.reserve(tenant, PACE, NOW + 0.01)
    third = await first_instance.reserve(tenant, PACE, NOW + 0.02)
    assert second.first == pytest.approx(first.end)
    assert third.first == pytest.approx(second.end)


async def test_an_idle_tenant_starts_again_now(instances: Instances) -> None:
    store, _ = instances
    tenant = _tenant()
    await store.reserve(tenant, PACE, NOW)
    later = await store.reserve(tenant, PACE, NOW + 60.5)
    assert later.first == pytest.approx(NOW + 60.5)


async def test_concurrent_reservations_never_overlap_and_leave_no_gap(
    instances: Instances,
) -> None:
    first_instance, second_instance = instances
    tenant = _tenant()  # new: the racing instances also race to create the row
    blocks = await asyncio.gather(*(
        (first_instance if index % 2 else second_instance).reserve(tenant, PACE, NOW)
        for index in range(16)
    ))
    ordered = sorted(blocks, key=lambda block: block.first)
    assert ordered[0].first == NOW
    for earlier, later in itertools.pairwise(ordered):
        assert later.first == pytest.approx(earlier.end)


async def test_tenants_are_paced_separately(instances: Instances) -> None:
    store, _ = instances
    tenant_a, tenant_b = _tenant(), _tenant()
    await store.reserve(tenant_a, PACE, NOW)
    await store.reserve(tenant_a, PACE, NOW)
    assert (await store.reserve(tenant_b, PACE, NOW)).first == NOW
