"""Pause Python's cycle collector around a large plan (the shell's business, not the planner's).

A large tenant's plan allocates a few hundred thousand small tuples, each of which counts toward
the collector's thresholds, and every full collection walks all of them: a third of the planning
time for 100,000 members. The plan builds no reference cycles, so reference counting alone frees
it. Switching the collector off is process-wide state, which a pure function must not touch, so
the callers of ``shared.core.planner.plan`` do it here.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Pause the cycle collector for the block; restored afterwards, whatever happens."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
