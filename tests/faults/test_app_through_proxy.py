"""The app behind the fault proxy: every Graph request it sends -- the follow-ups of absolute
links included (operation ``Location``s, delta links) -- goes through the proxy, so the faults
meet all of its traffic and not half of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from local_runner.fault_drill import one_more_sync, run_timer_until_it_completes
from local_runner.session import drain_queue
from tests.faults.conftest import Drill

pytestmark = [pytest.mark.integration, pytest.mark.faults]


async def test_no_graph_request_bypasses_the_proxy(drill_factory: Callable[..., Any]) -> None:
    drill: Drill
    # Operations slow enough that some first looks miss, so operations are read too.
    slow = {"operationSeconds": {"median": 1.5, "p95": 6}}
    async with drill_factory(24, behaviour=slow) as drill:
        await run_timer_until_it_completes(drill.log)
        await drain_queue(drill.settings, timeout_seconds=60)
        # The next run reads by delta, following the links the first run stored.
        await one_more_sync(drill.settings, drill.proxy, drill.log)

    seen = drill.simulator.request_counts()
    assert seen == drill.proxy.forwarded_counts()
    assert {"listTransitiveMemberUsers", "listNumberAssignments", "usersDelta", "groupsDelta",
            "assignNumber", "getOperation", "getUserConfiguration"} <= set(seen)
