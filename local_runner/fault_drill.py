"""The steps of a fault drill (``tests/faults``, ``benchmarks.faults``): plan as the schedule
does, drain with several instances, then one more sync with Graph behaving.

A timer run that raises is followed by the schedule's next run, and only that: here it comes at
once instead of five minutes later. Every failure is kept as evidence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import function_app
from graph_simulator import Scenario
from graph_simulator.fault_proxy import FaultProxy
from local_runner.instances import InstanceProcess, InstanceSettings
from local_runner.queue_host import DrainStats
from local_runner.session import app_settings_for, drain_queue, run_timer
from shared.host_settings import QueueHostSettings

#: The schedule's runs tried in a row before a drill gives up on planning.
TIMER_ATTEMPTS = 10

#: The host's queue settings for drills: five tries as in host.json, retried after a second
#: instead of 30 s so a drill takes seconds.
DRILL_HOST = QueueHostSettings(
    batch_size=16, new_batch_threshold=8, max_dequeue_count=5,
    visibility_timeout=timedelta(seconds=1), max_polling_interval=timedelta(milliseconds=500),
)


@dataclass
class DrillLog:
    """What happened on the way, for the report next to the invariants."""

    timer_failures: list[str] = field(default_factory=list)
    """Timer runs that raised, as ``ExceptionClass: message``, in order."""
    drains: list[DrainStats] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    """Wall-clock seconds per step of the drill, in order."""

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        """Add the block's wall-clock time to ``phase``."""
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases[phase] = self.phases.get(phase, 0.0) + time.monotonic() - started

    @property
    def failed_attempts(self) -> int:
        """Queue message attempts that raised, over every drain."""
        return sum(stats.failed_attempts for stats in self.drains)

    @property
    def poisoned(self) -> int:
        """Messages moved to the poison queue, over every drain."""
        return sum(stats.poisoned for stats in self.drains)

    def errors(self) -> dict[str, int]:
        """Failed attempts by what the queue function raised, over every drain."""
        total: dict[str, int] = {}
        for stats in self.drains:
            for name, count in stats.errors.items():
                total[name] = total.get(name, 0) + count
        return total

    def poisoned_errors(self) -> dict[str, int]:
        """Poisoned messages by what their last attempt raised, over every drain."""
        total: dict[str, int] = {}
        for stats in self.drains:
            for name, count in stats.poisoned_errors.items():
                total[name] = total.get(name, 0) + count
        return total


def drill_app_settings(
    scenario: Scenario, *, graph_base_url: str, storage_connection_string: str,
    inline_retry_max_seconds: float = 3.5,
) -> dict[str, str]:
    """The app settings of a drill: the local ones, with a short inline retry limit so a
    long ``Retry-After`` (a few seconds in a drill) is waited out on the queue."""
    return {
        **app_settings_for(scenario, graph_base_url=graph_base_url,
                           storage_connection_string=storage_connection_string),
        "GRAPH_INLINE_RETRY_MAX_SECONDS": f"{inline_retry_max_seconds:g}",
    }


async def run_timer_until_it_completes(log: DrillLog, attempts: int = TIMER_ATTEMPTS) -> None:
    """Invoke ``sync_scheduled`` until a run returns; each run that raised is recorded.

    Raises:
        RuntimeError: ``attempts`` runs in a row raised (their errors are in the message).
    """
    for _ in range(attempts):
        try:
            await run_timer()
        except Exception as error:  # noqa: BLE001 - the host logs it; the schedule runs again
            log.timer_failures.append(f"{type(error).__name__}: {error}")
            continue
        # A run that failed on Graph ends in the tenant's health, not in an exception.
        runtime = await function_app.runtime.get()
        runs = await runtime.ledger.runs()
        if runs and runs[-1].outcome == "failed":
            log.timer_failures.append(f"run failed: {runs[-1].message}")
            continue
        return
    raise RuntimeError(f"{attempts} timer runs in a row raised: {log.timer_failures[-attempts:]}")


async def drain_with_instances(
    settings: InstanceSettings, count: int, log: DrillLog
) -> list[DrainStats]:
    """Drain the queue with ``count`` instance processes at once; their figures are logged."""
    instances = [InstanceProcess(settings).start() for _ in range(count)]
    try:
        drained = await asyncio.gather(*(
            asyncio.to_thread(instance.wait, settings.timeout_seconds + 60)
            for instance in instances
        ))
    finally:
        for instance in instances:
            instance.kill()
    log.drains.extend(drained)
    return list(drained)


async def one_more_sync(
    settings: dict[str, str], proxy: FaultProxy, log: DrillLog,
    host: QueueHostSettings = DRILL_HOST, timeout_seconds: float = 300.0,
) -> DrainStats:
    """The next scheduled sync after the drain, with Graph behaving (the proxy's faults are
    paused): the timer, then the queue drained here."""
    with proxy.paused():
        await run_timer_until_it_completes(log)
        stats = await drain_queue(settings, host=host, timeout_seconds=timeout_seconds)
    log.drains.append(stats)
    return stats
