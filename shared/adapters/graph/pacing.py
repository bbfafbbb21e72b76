"""Every Graph request under ``/admin/teams/`` waits for a slot of the tenant's shared pace.

Teams counts all of an app's requests in a tenant against one limit (the catch-all: 30 per
second), whatever they are: number writes, operation polls, user configuration reads, policy
calls. ``TeamsPaceHandler`` sits in the SDK's middleware chain after the retry handler, so a
retried request waits for a slot too; directory reads (``/users``, ``/groups``) pass straight
through. ``TeamsRequestPacer`` is one instance's share: it reserves blocks of slots from the pace
table (``PaceStore``) and hands them to its requests one by one (``shared.core.request_pace``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kiota_http.middleware.middleware import BaseMiddleware

from shared.core.request_pace import LocalSlots, Pace
from shared.service.ports import PaceStore

TEAMS_ADMIN_PATH = "/admin/teams/"


class TeamsRequestPacer:
    """Waits until this instance's next slot of the tenant's Teams pace (``store`` is bound to
    the tenant)."""

    def __init__(
        self,
        store: PaceStore,
        pace: Pace,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        # The wall clock, not a monotonic one: slot times are compared across instances.
        self._store = store
        self._pace = pace
        self._clock = clock
        self._sleep = sleep
        self._slots = LocalSlots()
        self._lock = asyncio.Lock()
        self._waiting = 0

    @property
    def pace(self) -> Pace:
        """The pace this instance keeps its share of."""
        return self._pace

    async def wait_for_slot(self) -> None:
        """Return at the time of a slot reserved for this request."""
        self._waiting += 1
        try:
            # One reservation at a time per instance: requests arriving meanwhile take its slots.
            async with self._lock:
                slot, self._slots = self._slots.take(self._clock())
                if slot is None:
                    # Only as many slots as requests wait here: a slot this instance cannot use
                    # would be lost to the instances that could.
                    block = await self._store.reserve(
                        self._pace.for_demand(self._waiting), self._clock()
                    )
                    # The request that reserved gets the block's first slot however long the
                    # reservation took (at a high rate that is longer than an interval): every
                    # reservation serves at least one request.
                    self._slots = LocalSlots(block, used=1)
                    slot = block.first
        finally:
            self._waiting -= 1
        delay = slot - self._clock()
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
