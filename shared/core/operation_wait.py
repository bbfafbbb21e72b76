"""How long to leave a Teams assignment alone before looking whether it landed (pure).

Teams answers ``assignNumber`` at once (202, an operation) and carries it out in its own time:
seconds usually, minutes sometimes; polling does not make it go faster, and every look is a
request against the tenant's Teams limit. So the queue function puts the message back on the
queue for about as long as operations take, then reads the user's configuration once. Too short
a wait costs requests (each miss: the operation read and a second look); too long a wait costs
only latency. The wait aims at the duration most operations (``HIT_TARGET``) finish within.

Operation durations are not told: a look only says whether the operation was done by then. The
estimate learns from those censored answers, as a stochastic-approximation quantile tracker in
log space (Robbins-Monro): a look at the estimated wait (or a little after it: a message comes
back late) that finds the number says "done by the estimate" and moves it down a little; a look
at or after the estimate that misses says "not done by it" and moves it up more. It settles
where misses are ``1 - HIT_TARGET`` of the looks, i.e. at that quantile of the tenant's
durations, and follows Teams when it speeds up or slows down. Looks that say nothing about the
estimate (a hit long after it, a miss before it) are ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

#: The share of operations the first look should find done: each miss costs two more requests
#: (the operation and a second look), so 0.9 keeps a user near 2.2 Teams requests.
HIT_TARGET = 0.9
#: The wait before anything is learned: Teams' number operations mostly take seconds.
DEFAULT_WAIT_SECONDS = 15.0
#: The estimate stays within these bounds, whatever it is told.
MIN_WAIT_SECONDS = 1.0
MAX_WAIT_SECONDS = 600.0
#: The longest wait between two looks at an operation still running.
MAX_RECHECK_SECONDS = 600.0
#: Learning steps in log space: large while little is known, never below the floor, so the
#: estimate keeps following a Teams that changes pace.
_FIRST_STEP = 0.5
#: A look this late after the wait (seconds, or this share of the wait) still counts as one at
#: it; later hits are ignored (they could have been done at any time before).
_LOOK_LATENESS_SECONDS = 3.0
_LOOK_LATENESS_SHARE = 0.25
_STEP_FLOOR = 0.05


@dataclass(frozen=True, slots=True)
class OperationWait:
    """A tenant's learned wait before the first look at an assignment."""

    seconds: float = DEFAULT_WAIT_SECONDS
    looks: int = 0
    """How many looks taught it something (the learning step shrinks with them)."""
    updated_at: datetime | None = None

    def observe(self, elapsed_seconds: float, done: bool, at: datetime) -> OperationWait:
        """The estimate after a look ``elapsed_seconds`` after the assignment was accepted that
        found it ``done`` (or not); unchanged when the look says nothing about the estimate."""
        if math.isnan(elapsed_seconds) or elapsed_seconds < 0:
            return self
        if done and elapsed_seconds > self.first_look_after() + self._lateness():
            return self  # done by then: it may have been done long before, or just now
        if not done and elapsed_seconds < self.seconds:
            return self  # not done yet, earlier than the wait: nothing about the wait itself
        step = max(_STEP_FLOOR, _FIRST_STEP / math.sqrt(self.looks + 1))
        moved = step * (-(1 - HIT_TARGET) if done else HIT_TARGET)
        seconds = min(max(self.seconds * math.exp(moved), MIN_WAIT_SECONDS), MAX_WAIT_SECONDS)
        return OperationWait(seconds=seconds, looks=self.looks + 1, updated_at=at)

    def _lateness(self) -> float:
        """How late a look may come and still count as one at the wait: a message comes back
        a little after its visibility delay, and the look is one request behind the pace."""
        return max(_LOOK_LATENESS_SECONDS, _LOOK_LATENESS_SHARE * self.seconds)

    def first_look_after(self) -> int:
        """Whole seconds before the first look (the queue's visibility delay)."""
        return max(math.ceil(self.seconds), int(MIN_WAIT_SECONDS))


def next_look_after(elapsed_seconds: float, wait: OperationWait) -> int:
    """Whole seconds before the next look at an operation still running ``elapsed_seconds``
    after it was accepted: half as long again as it has run (a slow operation is likely a long
    one: durations have a long tail; half, so a look comes at most half its time late), at
    least the first wait, at most ``MAX_RECHECK_SECONDS``.
    """
    elapsed = elapsed_seconds if math.isfinite(elapsed_seconds) and elapsed_seconds > 0 else 0.0
    seconds = min(max(elapsed / 2, wait.seconds, MIN_WAIT_SECONDS), MAX_RECHECK_SECONDS)
    return math.ceil(seconds)
