"""Every Graph request under ``/admin/teams/`` waits for a slot of the tenant's shared pace and
of the app's.

Teams counts all of an app's requests in a tenant against one limit (the catch-all: 30 per
second), whatever they are: number writes, operation polls, user configuration reads, policy
calls; and all of an app's requests in every tenant against another (300 per second), so that a
wave of onboardings must not throttle every customer at once. ``TeamsPaceHandler`` sits in the
SDK's middleware chain after the retry handler, so a retried request waits for a slot too;
directory reads (``/users``, ``/groups``) pass straight through. ``TeamsRequestPacer`` is one
instance's share of one pace: it reserves blocks of slots from the pace table (``PaceStore``) and
hands them to its requests one by one (``shared.core.request_pace``). A worker has one pacer per
tenant, each given the worker's one app-wide pacer (``app_pacer``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kiota_http.middleware.middleware import BaseMiddleware

from shared.core.request_pace import (
    APP_SLOT_LATENESS_SECONDS,
    APP_SLOT_LEAD_SECONDS,
    LocalSlots,
    Pace,
)
from shared.service.ports import PaceStore

TEAMS_ADMIN_PATH = "/admin/teams/"
#: How many tenant slots one request may go through when round trips to the app's row keep
#: outlasting them; then it goes late, and the tenant's next slot is held back after it.
_MOST_TENANT_SLOTS_PER_REQUEST = 3


class TeamsRequestPacer:
    """Waits until this instance's next slot of a Teams pace: the tenant's (``store`` bound to
    the tenant) and, with ``app_pacer``, the app's across tenants as well (its ``store`` bound to
    the app-wide row)."""

    def __init__(
        self,
        store: PaceStore,
        pace: Pace,
        *,
        app_pacer: TeamsRequestPacer | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        # The wall clock, not a monotonic one: slot times are compared across instances.
        self._store = store
        self._pace = pace
        self._app_pacer = app_pacer
        self._clock = clock
        self._sleep = sleep
        self._slots = LocalSlots()
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._owed = 0  # slots of the current block owed to requests that waited for it
        # With an app pace: this tenant's requests go through both paces one at a time; after a
        # request went late, the tenant's next slot is not before ``_not_before``; while the
        # app pace is what holds the tenant back, the tenant takes one slot at a time.
        self._turn = asyncio.Lock()
        self._not_before = 0.0
        self._app_bound = False

    @property
    def pace(self) -> Pace:
        """The pace this instance keeps its share of."""
        return self._pace

    async def wait_for_slot(self) -> None:
        """Return at the time of a slot reserved for this request (of both paces, with an app
        pacer)."""
        if self._app_pacer is None:
            await self._sleep_until(await self.take_slot())
            return
        # The tenant's slot first, then the app's: an app slot is taken only when the request
        # can use it (a lead's worth before its tenant slot, see below). Taken earlier, it would
        # lapse while the request still waits for its tenant's slot (the pace an onboarding
        # runs into), a slot any other tenant could have used. Taken after, only the tenant's
        # own slot can lapse while the app pace holds the request back; the tenant then goes on
        # from when the request went (``held_back``), which is why one request at a time: the
        # next one must know that time.
        self._waiting += 1
        async with self._turn:
            try:
                slot = max(await self._take_slot(), self._not_before)
            finally:
                self._waiting -= 1
            app_slot: float | None = None
            for _ in range(_MOST_TENANT_SLOTS_PER_REQUEST):
                # The app slot is taken a little ahead (``APP_SLOT_LEAD_SECONDS``), so that a
                # round trip to the app's row ends by the tenant's slot, not after it lapsed.
                await self._sleep_until(slot - APP_SLOT_LEAD_SECONDS)
                ready_at = max(slot, self._clock())
                if app_slot is None or ready_at - app_slot > APP_SLOT_LATENESS_SECONDS:
                    # App slots for this request and the tenant's others due within the app
                    # slot's lateness (after the lead): one reservation of the app's row for a
                    # few requests, not one each.
                    due_soon = math.floor(
                        (APP_SLOT_LATENESS_SECONDS - APP_SLOT_LEAD_SECONDS) / self._pace.interval)
                    app_slot = await self._app_pacer.take_slot(
                        demand=1 + min(self._waiting, due_soon),
                        late_by=APP_SLOT_LATENESS_SECONDS, at=ready_at,
                    )
                self._app_bound = app_slot - ready_at > self._pace.interval
                goes_at = max(app_slot, ready_at, self._clock())
                if self._app_bound or goes_at - slot <= self._pace.interval:
                    break
                # The app's row answered after the tenant's slot had lapsed (a slow round trip,
                # not the app's pace). Sent that late, the request would bunch with the next
                # instance's at its slots; it takes the tenant's next slot instead, and keeps
                # its app slot while that is not too late either.
                slot = await self._take_slot(at=goes_at, lapsed=True)
            not_before = self._pace.held_back(slot, goes_at)
            if not_before is not None:
                self._not_before = not_before
        await self._sleep_until(goes_at)

    async def take_slot(
        self, *, demand: int = 1, late_by: float | None = None, at: float | None = None,
    ) -> float:
        """Reserve this request's slot of this pace alone (not of an ``app_pacer``) and return
        its time: now, a little past, or later (wait for it).

        ``demand``: how many requests (this one included) the caller will ask for soon, so a
        reservation takes that many slots; ``late_by``: how long after its time a slot is
        still used (one interval unless given; see ``LocalSlots.take``); ``at``: when the
        request will go, if later than now (a slot more than ``late_by`` before it is not
        used; a new reservation still starts from now, never booking slots ahead).
        """
        self._waiting += 1
        try:
            return await self._take_slot(late_by, soon=demand - 1, at=at)
        finally:
            self._waiting -= 1

    async def _take_slot(
        self, late_by: float | None = None, soon: int = 0, at: float | None = None,
        *, lapsed: bool = False,
    ) -> float:
        # ``lapsed``: for a request whose slot lapsed; it takes none owed, however late, but
        # the next one usable ``at`` the time it can go.
        # One reservation at a time per instance: requests arriving meanwhile take its slots.
        async with self._lock:
            now = self._clock()
            if self._not_before > now:
                # Held back: this pace's slots before that time are gone (any owed too, or
                # they would all go at that time together); the next block starts no earlier.
                now, self._owed = self._not_before, 0
            goes_at = now if at is None else max(now, at)
            if self._owed and not lapsed:
                self._owed -= 1
                slot, self._slots = self._slots.take_however_late()
            else:
                slot, self._slots = self._slots.take(goes_at, late_by=late_by)
            if slot is None:
                # Only as many slots as requests wait here: a slot this instance cannot use
                # would be lost to the instances that could. While the app pace holds this
                # tenant back, its requests go one per app slot: one tenant slot at a time.
                # ``soon``: the caller's requests still to come, whose slots are kept for them
                # (``late_by``) but not owed: they have not waited for this reservation.
                demand = 1 if self._app_bound else self._waiting + soon
                block = await self._store.reserve(self._pace.for_demand(demand), now)
                # The request that reserved gets the block's first slot however long the
                # reservation took (at a high rate that is longer than an interval), and so do
                # the requests that waited for it: every reservation serves all it was made for.
                self._slots = LocalSlots(block, used=1)
                self._owed = min(block.count, self._waiting) - 1
                slot = block.first
            return slot

    async def _sleep_until(self, moment: float) -> None:
        delay = moment - self._clock()
        if delay > 0:
            await self._sleep(delay)


def is_teams_admin_request(path: str) -> bool:
    """Whether a request path is under ``/admin/teams/`` (Teams' throttling, not the
    directory's)."""
    return TEAMS_ADMIN_PATH in path


class TeamsPaceHandler(BaseMiddleware):  # type: ignore[misc]  # kiota base is untyped here
    """SDK middleware: a request under ``/admin/teams/`` is sent at its slot, not before."""

    def __init__(self, pacer: TeamsRequestPacer) -> None:
        super().__init__()
        self._pacer = pacer

    async def send(self, request: Any, transport: Any) -> Any:
        """Wait for a slot when the request is a Teams one, then pass it on."""
        if is_teams_admin_request(request.url.path):
            await self._pacer.wait_for_slot()
        return await super().send(request, transport)
