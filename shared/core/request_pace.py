"""The tenant's pace for Teams requests: slots spaced evenly, reserved a small block at a time.

Teams throttles every app per tenant (the documented catch-all is 30 requests per second),
counting the requests of every function instance together. So the pace is shared: the tenant's
only shared state is *the next free time*, the moment after the last slot anyone reserved. An
instance that needs to send reserves a block of consecutive slots from it (``Pace.reserve``), one
``interval`` apart, and hands them out locally one request at a time (``LocalSlots``); it goes
back to the shared state only when its block is spent. Blocks never overlap, so wherever they are
sent from, the tenant's requests keep at least ``interval`` between their slots.

A slot is used at its time or a little after it (at most ``interval`` late: a request that found
no earlier free slot). An older slot is dropped rather than used, because sending late slots
together would bunch them into a burst. Hence any one-second window holds at most
``ceil(requests_per_second) + 1`` requests: one second's worth plus the one slot that may run late
into it (``max_in_any_second``). Later only by a round trip to the shared state: the block's
slots go to the requests that waited for its reservation, however long it took
(``LocalSlots.take_however_late``); at a pace whose interval is shorter than the round trip (the
app-wide one), a few of them go out together when it returns.

Teams also limits an app across all its tenants (the documented catch-all: 300 requests per
second). That pace is one more ``Pace`` with the same shared state, kept by every instance of every
tenant; a request then needs a slot of both. When the app's slot comes more than an interval after
the tenant's, the tenant's slot has lapsed and the request goes at the app's: the tenant's next
slot must then come one interval after that (``Pace.held_back``), or a tenant whose requests had
queued for the app's slots would send them close together once the app pace frees up.

Pure: times are seconds on a clock all instances share (the wall clock); nothing here reads a
clock, sleeps or stores anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: How much of a second one reservation covers: small enough that an instance with little to
#: send wastes few slots, large enough that the shared state is written a few times a second.
BLOCK_SECONDS = 0.2


#: A next free time further ahead than this (or a thousand intervals) is not believed.
MAX_SECONDS_AHEAD = 600.0

#: How long before a tenant's slot its request takes the app's. The app's row is the one every
#: instance of every tenant writes, and a busy storage account answers it in tens of milliseconds
#: (an onboarding measured 20 ms at the median, 80 ms at p90): more than a tenant slot lasts (34
#: ms at 29/s). Taken only once the tenant's slot had come, the app slot came after the tenant's
#: had lapsed, and the tenant lost the rest of its block (``Pace.held_back``).
APP_SLOT_LEAD_SECONDS = 0.05

#: How late an app-wide slot may still be used. The app's interval (4 ms at 250/s) is far shorter
#: than a tenant's (34 ms at 29/s): a block of app slots reserved for the tenant requests due in
#: the next tenth of a second is spent over that tenth, not within 4 ms. One reservation of the
#: app's row then serves several requests instead of one (each a read and a conditional write of
#: the one row every instance of every tenant shares). The lead comes on top: a slot is taken up
#: to ``APP_SLOT_LEAD_SECONDS`` before its request goes. The cost is that much of a second's worth
#: of slots more in the worst second (``Pace.most_in_any_second``): 288 at 250/s, under Teams' 300.
APP_SLOT_LATENESS_SECONDS = 0.1 + APP_SLOT_LEAD_SECONDS


@dataclass(frozen=True, slots=True)
class SlotBlock:
    """``count`` consecutive slots from ``first``, ``interval`` seconds apart."""

    first: float
    count: int
    interval: float

    @property
    def end(self) -> float:
        """The time after the block's last slot: the tenant's next free time once reserved."""
        return self.first + self.count * self.interval

    def slot(self, index: int) -> float:
        """The time of the block's ``index``-th slot."""
        return self.first + index * self.interval


@dataclass(frozen=True, slots=True)
class Pace:
    """How fast the tenant's requests may go, and how many slots one reservation takes."""

    requests_per_second: float
    block_size: int

    def __post_init__(self) -> None:
        if not self.requests_per_second > 0:
            raise ValueError(f"requests_per_second must be > 0, got {self.requests_per_second}")
        if self.block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {self.block_size}")

    @classmethod
    def at(cls, requests_per_second: float) -> Pace:
        """The pace for a rate, reserving ``BLOCK_SECONDS`` worth of slots at a time."""
        return cls(requests_per_second, max(1, round(requests_per_second * BLOCK_SECONDS)))

    def for_demand(self, waiting: int) -> Pace:
        """This pace with blocks no larger than ``waiting`` requests need (at least one slot)."""
        return Pace(self.requests_per_second, max(1, min(self.block_size, waiting)))

    @property
    def interval(self) -> float:
        """Seconds between two slots."""
        return 1.0 / self.requests_per_second

    @property
    def max_in_any_second(self) -> int:
        """The most requests any one-second window can hold (see the module's docstring)."""
        return self.most_in_any_second(late_by=self.interval)

    def most_in_any_second(self, *, late_by: float) -> int:
        """The most requests any one-second window can hold when a slot may be used up to
        ``late_by`` seconds after its time: the slots of that second and of the ``late_by``
        before it (one interval late: one slot more than a second's worth)."""
        # Rounded first: 29 slots a second over 1 + 1/29 seconds is 30, not 30.000000000000004.
        return math.ceil(round(self.requests_per_second * (1.0 + late_by), 9))

    def held_back(self, slot: float, goes_at: float) -> float | None:
        """The earliest time for this pace's next slot when the request given ``slot`` went at
        ``goes_at`` (another pace held it back); None when it went at most one interval late, as
        any slot may (see the module's docstring), so nothing needs holding back.
        """
        if goes_at - slot <= self.interval:
            return None
        return goes_at + self.interval

    def reserve(self, next_free: float | None, now: float) -> SlotBlock:
        """The next block from the tenant's next free time (None: no reservation yet).

        Never earlier than ``now``: slots an idle tenant did not use are gone, not saved up
        for a burst. The tenant's next free time becomes the block's ``end``.
        """
        first = now if next_free is None else max(next_free, now)
        if first - now > self.horizon:
            # No demand books slots this far ahead: the row was written by a clock far off (or
            # by hand). Waiting it out would stall every request of the pace; start again now.
            first = now
        return SlotBlock(first=first, count=self.block_size, interval=self.interval)

    @property
    def horizon(self) -> float:
        """How far ahead of now a next free time can honestly be: ten minutes, or a thousand
        intervals for a slow pace (the requests of every instance waiting at once)."""
        return max(MAX_SECONDS_AHEAD, 1000 * self.interval)


@dataclass(frozen=True, slots=True)
class LocalSlots:
    """One instance's current block and how many of its slots are handed out or dropped."""

    block: SlotBlock | None = None
    used: int = 0

    def take_however_late(self) -> tuple[float | None, LocalSlots]:
        """The block's next slot whatever the time, and what remains; None when spent.

        For a request the block was reserved for, that waited for the reservation: when the
        round trip to the shared state is longer than an interval (the app-wide pace's is 4 ms),
        dropping the slots that passed meanwhile would leave each reservation serving only the
        request that made it.
        """
        block = self.block
        if block is None or self.used >= block.count:
            return None, self
        return block.slot(self.used), LocalSlots(block, self.used + 1)

    def take(self, now: float, *, late_by: float | None = None) -> tuple[float | None, LocalSlots]:
        """The next slot to send at (maybe in the future: wait for it) and what remains.

        None when the block is spent: reserve another. Slots more than ``late_by`` seconds in
        the past (one interval unless given) are dropped (see the module's docstring).
        """
        block = self.block
        if block is None:
            return None, self
        index = self.used
        oldest_usable = now - (block.interval if late_by is None else late_by)
        if block.slot(index) < oldest_usable:
            index = max(index, math.ceil((oldest_usable - block.first) / block.interval))
        if index >= block.count:
            return None, LocalSlots(block, block.count)
        return block.slot(index), LocalSlots(block, index + 1)


#: The longest a change is held back: well inside the hour its in-flight marker lasts, so no run
#: plans it again while it waits.
MAX_RELEASE_DELAY_SECONDS = 45 * 60
#: The Teams requests a change sends when it is let out: its write. The look that confirms it
#: follows a wait later (Teams' operation time), while later changes are let out; counting it
#: here too would leave the pace half used for the first wait of every run (only writes are due
#: then), and the queue holds the changes the pace has not carried yet either way.
REQUESTS_PER_CHANGE = 1


def release_delays(count: int, requests_per_second: float) -> list[int]:
    """Whole-second delays that make ``count`` queued changes of one tenant visible no faster
    than its Teams pace can carry them (each at ``REQUESTS_PER_CHANGE`` requests).

    Released all at once, a tenant's changes fill every slot the host gives the queue and
    wait there for their tenant's pace, while the next tenant's changes wait behind them; let
    out at the pace, the changes of every tenant onboarding at once interleave on the queue.
    """
    spacing = REQUESTS_PER_CHANGE / requests_per_second
    return [min(math.floor(index * spacing), MAX_RELEASE_DELAY_SECONDS) for index in range(count)]
