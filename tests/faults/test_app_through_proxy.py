"""The app behind the fault proxy: every Graph request it sends -- the follow-ups of absolute
links included (operation ``Location``s, delta links) -- goes through the proxy, so the faults
meet all of its traffic and not half of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import function_app
from local_runner.fault_drill import one_more_sync, run_timer_until_it_completes
from local_runner.session import drain_queue
from tests.faults.conftest import Drill

pytestmark = [pytest.mark.integration, pytest.mark.faults]


async def test_no_graph_request_bypasses_the_proxy(
    drill_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    drill: Drill
    # Operations take 5 s and the first look comes after 1 s: every first look misses, so the
    # operations' Locations are read too.
    async with drill_factory(24, behaviour={"operationSeconds": 5}) as drill:
        monkeypatch.setenv("GRAPH_OPERATION_WAIT_SECONDS", "1")
        await function_app.runtime.close()
        await run_timer_until_it_completes(drill.log)
        await drain_queue(drill.settings, timeout_seconds=60)
        # The next run reads by delta, following the links the first run stored.
        await one_more_sync(drill.settings, drill.proxy, drill.log)

    seen = drill.simulator.request_counts()
    assert seen == drill.proxy.forwarded_counts()
    assert {"listTransitiveMemberUsers", "listNumberAssignments", "usersDelta", "groupsDelta",
            "assignNumber", "getOperation", "getUserConfiguration"} <= set(seen)
