"""The shared Teams pace: examples, then properties over any interleaving of instances."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.request_pace import (
    MAX_RELEASE_DELAY_SECONDS,
    LocalSlots,
    Pace,
    SlotBlock,
    release_delays,
)

EPSILON = 1e-9


def test_a_block_is_a_fifth_of_a_second_of_slots() -> None:
    assert Pace.at(29).block_size == 6
    assert Pace.at(30).block_size == 6
    assert Pace.at(1).block_size == 1
    assert Pace.at(0.5).block_size == 1


def test_the_first_reservation_starts_now_and_the_next_one_where_it_ends() -> None:
    pace = Pace(requests_per_second=10, block_size=3)
    first = pace.reserve(None, now=100.0)
    assert (first.first, first.count) == (100.0, 3)
    assert first.end == pytest.approx(100.3)
    second = pace.reserve(first.end, now=100.05)
    assert second.first == first.end


def test_an_idle_tenant_does_not_save_up_slots_for_a_burst() -> None:
    pace = Pace(requests_per_second=10, block_size=3)
    block = pace.reserve(next_free=50.0, now=100.0)
    assert block.first == 100.0


def test_local_slots_are_handed_out_one_interval_apart_then_run_out() -> None:
    slots = LocalSlots(SlotBlock(first=10.0, count=3, interval=0.1))
    taken = []
    for _ in range(3):
        slot, slots = slots.take(now=10.0)
        taken.append(slot)
    assert taken == pytest.approx([10.0, 10.1, 10.2])
    assert slots.take(now=10.0)[0] is None


def test_slots_long_past_are_dropped_rather_than_sent_together() -> None:
    slots = LocalSlots(SlotBlock(first=10.0, count=6, interval=0.1))
    slot, slots = slots.take(now=10.33)
    # 10.0-10.2 are more than one interval late; 10.3 is not (sent at 10.33), 10.4 is next.
    assert slot == pytest.approx(10.3)
    assert slots.take(now=10.33)[0] == pytest.approx(10.4)


def test_a_block_entirely_in_the_past_is_spent() -> None:
    slots = LocalSlots(SlotBlock(first=10.0, count=3, interval=0.1))
    assert slots.take(now=20.0)[0] is None
    assert LocalSlots().take(now=0.0)[0] is None


def test_a_block_reserved_for_waiting_requests_serves_them_however_late() -> None:
    slots = LocalSlots(SlotBlock(first=10.0, count=3, interval=0.001), used=1)
    taken = []
    for _ in range(3):
        slot, slots = slots.take_however_late()
        taken.append(slot)
    assert taken == pytest.approx([10.001, 10.002, None])  # nothing dropped, then spent
    assert LocalSlots().take_however_late()[0] is None


def test_a_request_another_pace_held_back_holds_back_this_paces_next_slot() -> None:
    pace = Pace(requests_per_second=10, block_size=3)
    # Up to one interval late, as any slot may be: nothing to hold back.
    assert pace.held_back(slot=10.0, goes_at=10.0) is None
    assert pace.held_back(slot=10.0, goes_at=10.1) is None
    # Later: the next slot comes an interval after the request went, not before.
    assert pace.held_back(slot=10.0, goes_at=10.75) == pytest.approx(10.85)


def test_the_rate_and_block_size_are_checked() -> None:
    with pytest.raises(ValueError, match="requests_per_second"):
        Pace(requests_per_second=0, block_size=1)
    with pytest.raises(ValueError, match="block_size"):
        Pace(requests_per_second=1, block_size=0)


# -- properties: instances interleaved at random, sharing only the next free time ------------


@dataclass
class Tenant:
    """The shared state, as the pace table holds it; reservations are atomic (ETag)."""

    pace: Pace
    next_free: float | None = None
    history: list[float | None] = field(default_factory=list)

    def reserve(self, now: float) -> SlotBlock:
        block = self.pace.reserve(self.next_free, now)
        self.history.append(self.next_free)
        self.next_free = block.end
        return block


def send(tenant: Tenant, instances: list[LocalSlots], which: int, now: float) -> float:
    """One request from one instance at ``now``: the time it is sent (its slot, or now if later)."""
    while True:
        slot, instances[which] = instances[which].take(now)
        if slot is not None:
            return max(slot, now)
        instances[which] = LocalSlots(tenant.reserve(now))


def most_in_one_second(times: list[float]) -> int:
    ordered = sorted(times)
    return max(
        (bisect_left(ordered, start + 1.0 - EPSILON) - index for index, start in
         enumerate(ordered)),
        default=0,
    )


rates = st.floats(min_value=0.5, max_value=60, allow_nan=False)
requests = st.lists(
    # Mostly bursts, sometimes a pause: an instance may come back to a block gone stale.
    st.tuples(
        st.integers(min_value=0, max_value=3),
        st.one_of(st.floats(min_value=0, max_value=0.02), st.floats(min_value=0, max_value=3)),
    ),
    min_size=1, max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(rate=rates, block=st.integers(min_value=1, max_value=12), arrivals=requests)
def test_no_second_holds_more_than_the_rate_plus_one(
    rate: float, block: int, arrivals: list[tuple[int, float]]
) -> None:
    pace = Pace(rate, block)
    tenant, instances = Tenant(pace), [LocalSlots() for _ in range(4)]
    now, sent = 1000.0, []
    for which, gap in arrivals:
        now += gap
        sent.append(send(tenant, instances, which, now))
    assert most_in_one_second(sent) <= pace.max_in_any_second


@settings(max_examples=200, deadline=None)
@given(rate=rates, block=st.integers(min_value=1, max_value=12), arrivals=requests)
def test_reservations_never_go_back_in_time(
    rate: float, block: int, arrivals: list[tuple[int, float]]
) -> None:
    tenant, instances = Tenant(Pace(rate, block)), [LocalSlots() for _ in range(4)]
    now = 1000.0
    for which, gap in arrivals:
        now += gap
        send(tenant, instances, which, now)
    known = [free for free in [*tenant.history, tenant.next_free] if free is not None]
    assert known == sorted(known)


@settings(max_examples=200, deadline=None)
@given(
    rate=rates, block=st.integers(min_value=1, max_value=12),
    order=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=200),
)
def test_instances_with_work_waiting_use_every_slot(
    rate: float, block: int, order: list[int]
) -> None:
    """A backlog (a lone instance's or several instances' in any order) goes out at the full
    rate: the k-th request is sent k intervals after the first, with no gap between blocks."""
    pace = Pace(rate, block)
    tenant, instances = Tenant(pace), [LocalSlots() for _ in range(4)]
    sent = sorted(send(tenant, instances, which, now=1000.0) for which in order)
    leftovers = sum(block - s.used for s in instances if s.block is not None)
    assert len(sent) + leftovers == len(tenant.history) * block
    # The only gaps are the slots an instance still holds unused.
    assert sent[-1] <= 1000.0 + (len(sent) - 1 + leftovers) * pace.interval + EPSILON


@settings(max_examples=100, deadline=None)
@given(rate=rates, block=st.integers(min_value=1, max_value=12),
       count=st.integers(min_value=1, max_value=300))
def test_a_lone_instance_achieves_the_full_rate(rate: float, block: int, count: int) -> None:
    pace = Pace(rate, block)
    tenant, instances = Tenant(pace), [LocalSlots()]
    sent = [send(tenant, instances, 0, now=1000.0) for _ in range(count)]
    assert sent == pytest.approx([1000.0 + index * pace.interval for index in range(count)])


def test_a_next_free_time_far_ahead_is_not_waited_out() -> None:
    # A row written by a clock a month ahead must not stall every request for a month.
    pace = Pace(requests_per_second=29, block_size=3)

    assert pace.reserve(1_000.0 + 30 * 24 * 3600, 1_000.0).first == 1_000.0
    assert pace.reserve(1_000.0 + 60, 1_000.0).first == 1_060.0  # a real backlog is kept
    slow = Pace(requests_per_second=0.5, block_size=1)
    assert slow.reserve(1_000.0 + 1_500, 1_000.0).first == 2_500.0  # 750 intervals: believed


def test_a_runs_changes_are_released_at_the_pace_that_carries_them() -> None:
    delays = release_delays(10, requests_per_second=9)

    assert delays == [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]  # one write each, nine a second
    assert release_delays(100, requests_per_second=1000) == [0] * 100  # unthrottled: at once
    assert release_delays(0, requests_per_second=29) == []


def test_no_change_is_held_back_past_its_in_flight_marker() -> None:
    assert max(release_delays(100_000, requests_per_second=29)) == MAX_RELEASE_DELAY_SECONDS
