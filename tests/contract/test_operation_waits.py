"""One set of assertions for a tenant's learned Teams operation wait: the in-memory fake and the
``graphpace`` row on Azurite learn alike; on Azurite a new instance starts from what another
saved, and a row edited into nonsense is learned again rather than trusted."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from azure.data.tables.aio import TableServiceClient

from local_runner.azurite import Azurite
from shared.adapters.storage.claims_and_statuses import ensure_tables
from shared.adapters.storage.operation_waits import (
    OPERATION_WAIT_ROW,
    SAVE_EVERY,
    TableOperationWaits,
)
from shared.adapters.storage.pace import PACE_TABLE
from shared.core.operation_wait import DEFAULT_WAIT_SECONDS
from shared.service.ports import OperationWaits
from tests.fakes import NOW, FakeOperationWaits

pytestmark = pytest.mark.integration


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["fake", "azurite"])
async def waits(request: pytest.FixtureRequest) -> AsyncIterator[OperationWaits]:
    if request.param == "fake":
        yield FakeOperationWaits()
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        await ensure_tables(service)
        yield TableOperationWaits(service, str(uuid.uuid4()), clock=lambda: NOW)


async def test_a_new_tenant_waits_the_default(waits: OperationWaits) -> None:
    assert (await waits.current()).seconds == DEFAULT_WAIT_SECONDS


async def test_misses_lengthen_the_wait_and_hits_shorten_it(waits: OperationWaits) -> None:
    start = (await waits.current()).seconds
    await waits.observe(start, done=False)  # not done by the wait: too short
    longer = (await waits.current()).seconds
    assert longer > start
    await waits.observe(longer - 1, done=True)  # done before it: a little too long
    assert start < (await waits.current()).seconds < longer


async def test_a_look_that_says_nothing_about_the_wait_changes_nothing(
    waits: OperationWaits,
) -> None:
    start = await waits.current()
    await waits.observe(start.seconds + 30, done=True)  # done by then: maybe long before
    await waits.observe(start.seconds / 2, done=False)  # not yet, before the wait
    assert await waits.current() == start


# -- the row, shared by instances ------------------------------------------------------------


Instance = Callable[[], TableOperationWaits]


@pytest.fixture
async def instance(azurite: Azurite) -> AsyncIterator[Callable[..., TableOperationWaits]]:
    tenant = str(uuid.uuid4())
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        await ensure_tables(service)

        def make(ticks: Ticks | None = None) -> TableOperationWaits:
            return TableOperationWaits(service, tenant, clock=lambda: NOW,
                                       monotonic=ticks or Ticks())

        yield make


async def test_a_new_instance_starts_from_what_another_learned(
    instance: Callable[..., TableOperationWaits],
) -> None:
    first = instance()
    await first.observe(DEFAULT_WAIT_SECONDS, done=False)  # the first look is saved at once
    learned = (await first.current()).seconds
    assert learned > DEFAULT_WAIT_SECONDS

    assert (await instance().current()).seconds == pytest.approx(learned)


async def test_an_instance_writes_at_most_every_save_interval(
    instance: Callable[..., TableOperationWaits], azurite: Azurite,
) -> None:
    ticks = Ticks()
    first = instance(ticks)
    await first.observe(DEFAULT_WAIT_SECONDS, done=False)
    saved = (await first.current()).seconds
    await first.observe(saved, done=False)  # learned, not yet written
    assert (await instance().current()).seconds == pytest.approx(saved)

    ticks.now += SAVE_EVERY.total_seconds()
    await first.observe((await first.current()).seconds, done=False)
    assert (await instance().current()).seconds == pytest.approx(
        (await first.current()).seconds)


async def test_a_row_that_does_not_read_is_learned_again(
    instance: Callable[..., TableOperationWaits], azurite: Azurite,
) -> None:
    first = instance()
    await first.observe(DEFAULT_WAIT_SECONDS, done=False)
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        table = service.get_table_client(PACE_TABLE)
        tenant = first._partition  # the row this instance wrote
        await table.upsert_entity({"PartitionKey": tenant, "RowKey": OPERATION_WAIT_ROW,
                                   "Seconds": "soon", "Looks": -1})

    assert (await instance().current()).seconds == DEFAULT_WAIT_SECONDS
