"""Issue 9 (c): two runs planning the tenant at once -- on a quiet tenant, and again while two
instances are still draining the first run's messages (the schedule fires during a long drain,
on two instances). Whatever was enqueued twice must not be carried out twice.

No random faults: the overlap is the only trouble, so every message enqueued again and every
second write is the overlap's.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from local_runner.fault_drill import DrillLog, one_more_sync
from local_runner.instances import InstanceProcess
from shared.config import AppSettings
from shared.runtime import AppRuntime
from shared.service.timer_run import SyncSummary
from tests.faults.conftest import Drill

pytestmark = [pytest.mark.integration, pytest.mark.faults]

USERS = 120
INSTANCES = 2


async def _plan_twice_at_once(
    runtimes: list[AppRuntime], log: DrillLog
) -> list[SyncSummary]:
    """Both instances' timers fire together; a run that raises is logged (evidence)."""
    results = await asyncio.gather(*(runtime.sync() for runtime in runtimes),
                                   return_exceptions=True)
    summaries = []
    for result in results:
        if isinstance(result, BaseException):
            log.timer_failures.append(f"{type(result).__name__}: {result}")
        else:
            summaries.append(result)
    return summaries


def _written(drill: Drill, route: str) -> Counter[str]:
    """How often Teams received each number on ``route`` (assignNumber / unassignNumber)."""
    return Counter(str(json.loads(entry.body)["telephoneNumber"])
                   for entry in drill.proxy.request_log()
                   if entry.route == route and entry.forwarded)


async def test_runs_planning_at_once_carry_out_each_change_once(
    drill_factory: Callable[..., Any],
) -> None:
    drill: Drill
    async with drill_factory(USERS) as drill:
        settings = AppSettings.from_environ(drill.settings)
        runtimes = [await AppRuntime.create(settings) for _ in range(2)]
        try:
            with drill.log.timed("two runs at once"):
                quiet = await _plan_twice_at_once(runtimes, drill.log)
            instances = [InstanceProcess(drill.instance()).start() for _ in range(INSTANCES)]
            try:
                with drill.log.timed("drain, two runs at once during it"):
                    await drill.until_assignments(USERS // 2)
                    during = await _plan_twice_at_once(runtimes, drill.log)
                    drill.log.drains.extend(await asyncio.gather(*(
                        asyncio.to_thread(instance.wait, 240) for instance in instances)))
            finally:
                for instance in instances:
                    instance.kill()
        finally:
            for runtime in runtimes:
                await runtime.close()
        await drill.note_before_sync()
        with drill.log.timed("one more sync"):
            await one_more_sync(drill.settings, drill.proxy, drill.log)
        violations = await drill.violations()
    assigned_twice = {number: count for number, count in
                      _written(drill, "assignNumber").items() if count > 1}
    runs = [(summary.enqueued, summary.skipped_because is not None)
            for summary in (*quiet, *during)]
    report = (drill.report(violations) + f"\nruns (enqueued, skipped): {runs}"
              + f"\nnumbers assigned more than once: {assigned_twice}")
    print(report)

    # Of two runs started together, only one plans.
    assert sum(1 for summary in quiet if summary.skipped_because is None) <= 1, report
    assert sum(1 for summary in during if summary.skipped_because is None) <= 1, report
    # Each user's number went to Teams once; nothing was taken back.
    assert assigned_twice == {}, report
    assert _written(drill, "unassignNumber") == Counter(), report
    # Every change was already on its way (queued, or done) when the second pair of runs
    # planned: none of it is enqueued again.
    assert sum(summary.enqueued for summary in during) == 0, report
    assert violations == [], report
