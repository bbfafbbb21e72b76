"""How many Graph requests one run made: a tally the run opens and the Graph middleware adds to.

The tenant's Graph client is shared by its timer run and by the queue function's messages on the
same worker, so a count kept on the client would mix them. The tally lives in a context variable
instead: asyncio hands a task's context to the tasks it starts, so every request made inside the
run (its gathered reads included) lands in the run's tally, and a queue message running beside it
lands in none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class RequestTally:
    """The requests counted so far (each attempt, retries included)."""

    requests: int = 0


_current: ContextVar[RequestTally | None] = ContextVar("graph_request_tally", default=None)


@contextmanager
def graph_requests_counted() -> Iterator[RequestTally]:
    """Count the Graph requests made inside the block (and the tasks it starts)."""
    tally = RequestTally()
    token = _current.set(tally)
    try:
        yield tally
    finally:
        _current.reset(token)


def note_graph_request() -> None:
    """One Graph request was sent: add it to the tally open here, if any."""
    tally = _current.get()
    if tally is not None:
        tally.requests += 1
