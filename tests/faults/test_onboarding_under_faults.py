"""Issue 9 (a): a 300-user onboarding while 20 % of Graph requests fail (throttled short and
long, 503, 504, connections dropped before and after Graph carried them out, Teams operations
that fail), drained by two instance processes at once; then one more sync with Graph behaving
(the proxy's faults paused), and the invariants."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from graph_simulator.fault_proxy import FaultKind, FaultPlan
from local_runner.fault_drill import (
    drain_with_instances,
    one_more_sync,
    run_timer_until_it_completes,
)
from tests.faults.conftest import Drill

pytestmark = [pytest.mark.integration, pytest.mark.faults]

USERS = 300
FAULT_RATE = 0.2
INSTANCES = 2


async def test_an_onboarding_with_one_request_in_five_failing_converges(
    drill_factory: Callable[..., Any],
) -> None:
    drill: Drill
    async with drill_factory(USERS, FaultPlan(rate=FAULT_RATE, seed=9)) as drill:
        with drill.log.timed("plan"):
            await run_timer_until_it_completes(drill.log)
        with drill.log.timed("drain"):
            await drain_with_instances(drill.instance(), INSTANCES, drill.log)
        injected = drill.proxy.injected()
        faulted_requests = sum(drill.proxy.request_counts().values())
        await drill.note_before_sync()
        with drill.log.timed("one more sync"):
            await one_more_sync(drill.settings, drill.proxy, drill.log)
        violations = await drill.violations()
    report = drill.report(violations)
    print(report)

    # It really was a bad day at Graph: every kind of fault, one request in five.
    assert set(injected) == set(FaultKind), report
    assert 0.15 * faulted_requests < sum(injected.values()) < 0.25 * faulted_requests, report
    assert violations == [], report
