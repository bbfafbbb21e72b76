"""Teams requests wait for their slot of the tenant's pace (and of the app's); directory reads
do not."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from shared.adapters.graph.pacing import (
    TeamsPaceHandler,
    TeamsRequestPacer,
    is_teams_admin_request,
)
from shared.adapters.storage.pace import APP_PACE_PARTITION
from shared.core.request_pace import Pace, SlotBlock
from tests.fakes import FakePaceStore

PACE = Pace(requests_per_second=10, block_size=4)
TENANT = "tenant-a"


class Clock:
    """A clock that stands still; ``sleep`` records when each request would go out."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sent: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sent.append(self.now + seconds)


def _pacer(store: FakePaceStore, clock: Clock) -> TeamsRequestPacer:
    return TeamsRequestPacer(store, PACE, clock=clock, sleep=clock.sleep)


async def test_concurrent_requests_of_one_instance_go_out_one_interval_apart() -> None:
    clock, store = Clock(), FakePaceStore(TENANT)
    pacer = _pacer(store, clock)
    await asyncio.gather(*(pacer.wait_for_slot() for _ in range(10)))
    # The first slot is now (no wait); the other nine wait for theirs.
    assert sorted(clock.sent) == pytest.approx([1000.0 + i / 10 for i in range(1, 10)])
    # No slot is reserved that no request of this instance waits for (blocks of at most four).
    assert sum(block.count for block in store.reservations) == 10
    assert all(block.count <= PACE.block_size for block in store.reservations)


async def test_an_instance_reserves_a_whole_block_only_when_that_many_requests_wait() -> None:
    clock = Clock()
    store = FakePaceStore(TENANT)
    pacer = _pacer(store, clock)
    await pacer.wait_for_slot()  # alone: one slot, not a block of four left to go to waste
    assert [block.count for block in store.reservations] == [1]


async def test_two_instances_sharing_the_pace_never_send_in_the_same_slot() -> None:
    clock, shared = Clock(), dict[str, float]()
    first, second = FakePaceStore(TENANT, shared), FakePaceStore(TENANT, shared)
    pacers = [_pacer(first, clock), _pacer(second, clock)]
    await asyncio.gather(*(pacer.wait_for_slot() for pacer in pacers for _ in range(6)))
    slots = [b.slot(i) for b in [*first.reservations, *second.reservations]
             for i in range(b.count)]
    assert len(set(slots)) == len(slots)
    assert sorted(slots) == pytest.approx([1000.0 + i / 10 for i in range(12)])


class SlowStore(FakePaceStore):
    """A pace table whose every reservation takes longer than an interval of the pace."""

    def __init__(self, clock: Clock, round_trip: float) -> None:
        super().__init__(TENANT)
        self.clock = clock
        self.round_trip = round_trip

    async def reserve(self, pace: Pace, now: float) -> SlotBlock:
        block = await super().reserve(pace, now)
        self.clock.now += self.round_trip
        await asyncio.sleep(0)  # a real round trip lets the loop run (and a timeout fire)
        return block


async def test_a_reservation_slower_than_an_interval_still_lets_every_request_through() -> None:
    clock = Clock()
    store = SlowStore(clock, round_trip=0.005)  # 5 ms to the table, at 1,000 requests/s
    pacer = TeamsRequestPacer(store, Pace.at(1000), clock=clock, sleep=clock.sleep)

    async def one_at_a_time() -> None:
        for _ in range(20):  # alone each time: a block of one slot, late by the round trip
            await pacer.wait_for_slot()

    await asyncio.wait_for(one_at_a_time(), 5)

    assert len(store.reservations) == 20  # each reservation served its request


async def test_requests_that_waited_for_a_reservation_share_its_block_however_late() -> None:
    clock = Clock()
    store = SlowStore(clock, round_trip=0.005)  # five intervals at 1,000 requests/s
    pacer = TeamsRequestPacer(store, Pace.at(1000), clock=clock, sleep=clock.sleep)

    await asyncio.wait_for(asyncio.gather(*(pacer.wait_for_slot() for _ in range(5))), 5)

    # The first request reserved alone; the four that queued meanwhile got one block, though
    # its slots had passed when it came back (dropping them would cost a reservation each).
    assert [block.count for block in store.reservations] == [1, 4]


class Transport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return httpx.Response(200)


@pytest.mark.parametrize(
    ("url", "paced"),
    [
        ("https://graph.example/v1.0/admin/teams/telephoneNumberManagement/numberAssignments",
         True),
        ("https://graph.example/v1.0/admin/teams/telephoneNumberManagement/operations/abc", True),
        ("https://graph.example/v1.0/admin/teams/userConfigurations/u1", True),
        ("https://graph.example/v1.0/admin/teams/policy/userAssignments/assign", True),
        ("https://graph.example/v1.0/users/u1", False),
        ("https://graph.example/v1.0/groups/g1/transitiveMembers/graph.user", False),
    ],
)
async def test_only_requests_under_admin_teams_wait_for_a_slot(url: str, paced: bool) -> None:
    clock, store = Clock(), FakePaceStore(TENANT)
    handler, transport = TeamsPaceHandler(_pacer(store, clock)), Transport()
    response = await handler.send(httpx.Request("GET", url), transport)
    assert response.status_code == 200
    assert transport.paths == [httpx.URL(url).path]
    assert bool(store.reservations) is paced
    assert is_teams_admin_request(httpx.URL(url).path) is paced


@pytest.mark.parametrize(
    ("url", "paced"),
    [
        ("https://graph.example/v1.0/admin/teams/telephoneNumberManagement/numberAssignments",
         True),
        ("https://graph.example/v1.0/admin/teams/userConfigurations/u1", True),
        ("https://graph.example/v1.0/users/u1", False),
        ("https://graph.example/v1.0/groups/g1/transitiveMembers/graph.user", False),
    ],
)
async def test_a_teams_request_waits_for_the_tenants_and_the_apps_pace_a_directory_read_neither(
    url: str, paced: bool,
) -> None:
    clock, shared = Clock(), dict[str, float]()
    tenant, app = FakePaceStore(TENANT, shared), FakePaceStore(APP_PACE_PARTITION, shared)
    app_pacer = TeamsRequestPacer(app, Pace.at(250), clock=clock, sleep=clock.sleep)
    pacer = TeamsRequestPacer(tenant, PACE, app_pacer=app_pacer, clock=clock, sleep=clock.sleep)
    transport = Transport()

    response = await TeamsPaceHandler(pacer).send(httpx.Request("GET", url), transport)

    assert response.status_code == 200
    assert transport.paths == [httpx.URL(url).path]
    assert [block.count for block in tenant.reservations] == ([1] if paced else [])
    assert [block.count for block in app.reservations] == ([1] if paced else [])
    assert set(shared) == ({TENANT, APP_PACE_PARTITION} if paced else set())
