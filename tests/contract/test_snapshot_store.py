"""One set of assertions for the directory snapshot store: the in-memory fake and the Table
Storage adapter on Azurite must agree, or the unit tests of delta runs built on the fake lie."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from azure.data.tables.aio import TableServiceClient

from local_runner.azurite import Azurite
from shared.adapters.storage.claims_and_statuses import ensure_tables
from shared.adapters.storage.snapshots import TableSnapshotStore
from shared.core.directory import Member
from shared.core.records import DirectorySnapshot
from shared.service.ports import SnapshotStore
from tests.fakes import FakeSnapshotStore

pytestmark = pytest.mark.integration

READ_AT = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)

StoreFor = Callable[[str], SnapshotStore]


@pytest.fixture(params=["fake", "azurite"])
async def store_for(request: pytest.FixtureRequest) -> AsyncIterator[StoreFor]:
    """A store bound to the tenant given (each test's own)."""
    if request.param == "fake":
        yield FakeSnapshotStore
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        await ensure_tables(service)
        yield lambda tenant: TableSnapshotStore(service, tenant)


def _member(name: str, position: int, *phones: str, enabled: bool = True) -> Member:
    return Member(f"id-{name}", f"{name}@contoso.example", phones, enabled, position)


def _snapshot(*members: Member, teams: dict[str, str] | None = None,
              link: str = "1") -> DirectorySnapshot:
    return DirectorySnapshot(
        members=members, teams=dict(teams or {}), users_link=f"users-{link}",
        group_link=f"group-{link}", full_read_at=READ_AT,
    )


async def test_an_unknown_tenant_has_no_snapshot(store_for: StoreFor) -> None:
    assert await store_for(str(uuid.uuid4())).load() is None


async def test_a_snapshot_comes_back_as_saved_in_read_order(store_for: StoreFor) -> None:
    store = store_for(str(uuid.uuid4()))
    saved = _snapshot(
        _member("ann", 0, "+31855363011"), _member("cy", 2),
        _member("bob", 1, "+31 85 536 3012", "+31855363099", enabled=False),
        teams={"+31855363011": "id-ann", "+31855363050": "resource-account"},
    )
    await store.save(saved, with_numbers=True)

    loaded = await store.load()

    assert loaded is not None
    assert [m.user_principal_name for m in loaded.members] == [
        "ann@contoso.example", "bob@contoso.example", "cy@contoso.example"]
    assert set(loaded.members) == set(saved.members)
    assert loaded.teams == saved.teams
    assert (loaded.users_link, loaded.group_link, loaded.full_read_at) == (
        "users-1", "group-1", READ_AT)


async def test_a_save_over_the_previous_snapshot_leaves_exactly_the_new_one(
    store_for: StoreFor,
) -> None:
    store = store_for(str(uuid.uuid4()))
    first = _snapshot(_member("ann", 0, "+31855363011"), _member("bob", 1, "+31855363012"),
                      teams={"+31855363011": "id-ann", "+31855363012": "id-bob"})
    await store.save(first, with_numbers=True)
    second = _snapshot(_member("ann", 0, "+31855363099"), _member("dee", 2, "+31855363014"),
                       teams={"+31855363011": "id-ann", "+31855363014": "id-dee"}, link="2")

    await store.save(second, with_numbers=True)

    assert await store.load() == second


async def test_a_second_full_save_drops_the_members_and_numbers_it_no_longer_has(
    store_for: StoreFor,
) -> None:
    store = store_for(str(uuid.uuid4()))
    await store.save(_snapshot(_member("ann", 0), _member("bob", 1),
                                       teams={"+31855363012": "id-bob"}), with_numbers=True)
    again = _snapshot(_member("bob", 0), teams={"+31855363013": "id-bob"}, link="2")

    await store.save(again, with_numbers=True)

    assert await store.load() == again


async def test_the_apps_own_writes_are_noted_on_the_stored_numbers(store_for: StoreFor) -> None:
    store = store_for(str(uuid.uuid4()))
    await store.save(_snapshot(_member("ann", 0), teams={"+31855363011": "id-ann"}),
                     with_numbers=True)

    await store.note_number("+31855363012", "id-ann")
    await store.note_number("+31855363011", None)
    await store.note_number("+31855363011", None)  # twice: nothing to remove

    loaded = await store.load()
    assert loaded is not None
    assert loaded.teams == {"+31855363012": "id-ann"}


async def test_the_stored_voice_group_answers_whether_it_has_a_user(store_for: StoreFor) -> None:
    store = store_for(str(uuid.uuid4()))
    assert await store.has_member("id-ann") is None  # no snapshot yet: unknown
    members = tuple(_member(f"user{i:04}", i) for i in range(250))  # several buckets
    await store.save(_snapshot(*members), with_numbers=True)

    assert await store.has_member("id-user0000") is True
    assert await store.has_member("id-user0249") is True
    assert await store.has_member("id-forged") is False


async def test_a_large_tenant_round_trips(store_for: StoreFor) -> None:
    store = store_for(str(uuid.uuid4()))
    members = tuple(_member(f"user{i:04}", i, f"+3185536{i:04}") for i in range(1_050))
    saved = _snapshot(*members, teams={f"+3185536{i:04}": f"id-user{i:04}" for i in range(1_050)})

    await store.save(saved, with_numbers=True)

    assert await store.load() == saved


async def test_a_save_without_numbers_keeps_the_stored_ones_and_their_notes(
    store_for: StoreFor,
) -> None:
    store = store_for(str(uuid.uuid4()))
    await store.save(_snapshot(_member("ann", 0), teams={"+31855363011": "id-ann"}),
                     with_numbers=True)
    await store.note_number("+31855363012", "id-bob")  # a queue function's write

    moved = _snapshot(_member("ann", 0), _member("bob", 1), teams={}, link="2")
    await store.save(moved, with_numbers=False)

    loaded = await store.load()
    assert loaded is not None
    assert loaded.members == moved.members
    assert loaded.users_link == "users-2"
    assert loaded.teams == {"+31855363011": "id-ann", "+31855363012": "id-bob"}


async def test_noting_a_number_before_any_snapshot_stores_nothing(store_for: StoreFor) -> None:
    store = store_for(str(uuid.uuid4()))
    await store.note_number("+31855363011", "id-ann")
    assert await store.load() is None


async def test_every_member_can_have_a_number_noted_by_workers_at_once(store_for: StoreFor) -> None:
    store = store_for(str(uuid.uuid4()))
    members = tuple(_member(f"user{i:04}", i) for i in range(200))
    await store.save(_snapshot(*members), with_numbers=True)  # no numbers yet
    gate = asyncio.Semaphore(8)

    async def note(index: int) -> None:
        async with gate:
            await store.note_number(f"+3185536{index:04}", f"id-user{index:04}")

    await asyncio.gather(*(note(i) for i in range(200)))

    loaded = await store.load()
    assert loaded is not None
    assert loaded.teams == {f"+3185536{i:04}": f"id-user{i:04}" for i in range(200)}
