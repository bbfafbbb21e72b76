"""Simulated time for replaying days in seconds: a clock the runner moves, and the queue's delays
counted on it.

``SimulatedClock`` is the time the app (``AppRuntime.clock``) and the simulator (its monotonic
``clock``: delta token expiry, rate limits) both read. Between moves it runs on at the wall
clock's pace, so the seconds a tick really takes are simulated seconds too; ``move_to`` jumps it
forward (never back).

Queue Storage hides a message sent with a visibility timeout for that many *wall* seconds, so a
message the app delays (``send_later``: a tenant's changes let out at its Teams pace, a change
waiting for a long Teams operation) would come back minutes of real time later, whatever the
simulated clock says. ``ClockedDelayQueue`` keeps such a message in the runner instead and sends
it, visible at once, when the simulated clock reaches its time: ``release_due`` lets out what is
due, ``next_due`` says when the next one is (the runner jumps the clock there, as time would
pass).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from azure.storage.queue.aio import QueueClient

from shared.adapters.storage.accounts import queue_client
from shared.adapters.storage.queue import ASSIGNMENT_QUEUE, StorageAssignmentQueue
from shared.core.messages import AssignmentMessage
from shared.runtime import AppRuntime

#: What the simulator's monotonic clock counts from (any fixed moment does).
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class SimulatedClock:
    """A clock that starts at ``start``, runs at the wall clock's pace and jumps when moved."""

    def __init__(self, start: datetime, *, wall: Callable[[], float] = time.monotonic) -> None:
        """``start`` must be timezone-aware (the app's clock is UTC); ``wall`` is the pace
        between moves (tests pass one they control)."""
        if start.tzinfo is None:
            raise ValueError(f"start: a timezone-aware time is needed, got {start!r}")
        self._wall = wall
        self._at = start
        self._set_at = wall()

    def now(self) -> datetime:
        """The simulated time (the app's ``clock``)."""
        return self._at + timedelta(seconds=self._wall() - self._set_at)

    def monotonic(self) -> float:
        """The simulated time in seconds since a fixed moment (the simulator's ``clock``)."""
        return (self.now() - _EPOCH).total_seconds()

    def move_to(self, moment: datetime) -> datetime:
        """Jump forward to ``moment``; a moment already past leaves the clock as it is (time
        never goes back). Returns the time now."""
        if moment > self.now():
            self._at, self._set_at = moment, self._wall()
        return self.now()


class ClockedDelayQueue(StorageAssignmentQueue):
    """``number-assignments`` whose ``send_later`` delays count on a simulated clock: a delayed
    message waits here and is sent, visible at once, by ``release_due`` once its time came."""

    def __init__(
        self, client: QueueClient, *, concurrency: int, clock: Callable[[], datetime]
    ) -> None:
        """``clock`` is the simulated time the delays count on."""
        super().__init__(client, concurrency=concurrency)
        self._clock = clock
        self._held: list[tuple[datetime, int, AssignmentMessage]] = []
        self._order = itertools.count()

    async def send_later(self, message: AssignmentMessage, delay_seconds: int) -> None:
        """Keep the message until the simulated clock is ``delay_seconds`` on (none: send it)."""
        if delay_seconds <= 0:
            await self.send([message])
            return
        due = self._clock() + timedelta(seconds=delay_seconds)
        heapq.heappush(self._held, (due, next(self._order), message))

    @property
    def held(self) -> int:
        """Messages waiting for their time."""
        return len(self._held)

    def next_due(self) -> datetime | None:
        """When the next held message is due (None: none is held)."""
        return self._held[0][0] if self._held else None

    async def release_due(self) -> int:
        """Send every held message whose time has come; returns how many."""
        now = self._clock()
        due: list[AssignmentMessage] = []
        while self._held and self._held[0][0] <= now:
            due.append(heapq.heappop(self._held)[2])
        if due:
            await self.send(due)
        return len(due)


async def run_on_simulated_time(runtime: AppRuntime, clock: SimulatedClock) -> ClockedDelayQueue:
    """Make the app read ``clock`` and count its queue delays on it: its ``number-assignments``
    queue becomes a ``ClockedDelayQueue`` (returned, for the runner to release what is due).

    Call it on a fresh runtime, before any tenant is used: a tenant's context takes the queue
    when it is built.
    """
    runtime.clock = clock.now
    clocked = ClockedDelayQueue(
        queue_client(runtime.settings.storage, ASSIGNMENT_QUEUE),
        concurrency=runtime.settings.enqueue_concurrency, clock=clock.now,
    )
    await runtime.queue.close()
    runtime.queue = clocked
    return clocked
