"""Backpressure without sleeping: long throttles and slow operations wait on the queue."""

from __future__ import annotations

import pytest

import function_app
from graph_simulator import Scenario
from shared.core.messages import AssignmentMessage
from shared.core.outcomes import Outcome
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario


@pytest.fixture
def scenario() -> Scenario:
    return build_scenario(
        [("ann", ["+31855363011"]), ("bob", ["+31855363012"])],
        behaviour={"operationSeconds": 6},
    )


async def _record_deferrals(
    app: LocalApp, *, at_once: bool = True
) -> list[tuple[AssignmentMessage, int]]:
    """Capture deferred messages; ``at_once``: let them come back at once (time passing, in a
    test), else after their delay."""
    runtime = await app.runtime()
    deferred: list[tuple[AssignmentMessage, int]] = []
    send_later = runtime.queue.send_later

    async def record(message: AssignmentMessage, delay_seconds: int) -> None:
        deferred.append((message, delay_seconds))
        # A wait for Teams' operation keeps its delay: it is Teams' time, not the test's.
        waiting = message.operation_location is not None
        await send_later(message, delay_seconds if waiting or not at_once else 0)

    runtime.queue.send_later = record  # type: ignore[method-assign]
    return deferred


async def test_a_long_retry_after_is_waited_out_on_the_queue(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPH_OPERATION_TIMEOUT_SECONDS", "30")
    await function_app.runtime.close()
    deferred = await _record_deferrals(local_app)
    local_app.simulator.inject_fault("assignNumber", 429, count=1, retry_after_seconds=120)

    stats = await local_app.sync()

    throttled = [(m.deferrals, delay) for m, delay in deferred if m.operation_location is None]
    assert throttled == [(1, 120)]
    assert stats.failed_attempts == 0
    # The SDK did not retry inside the request: one 429, then one accepted assign per user.
    assert local_app.simulator.request_counts()["assignNumber"] == 3
    statuses = await local_app.statuses()
    assert {s.outcome for s in statuses.values()} == {Outcome.ASSIGNED}


async def test_a_slow_operation_is_followed_later_and_never_sent_twice(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Operations take 6 s, the first look comes after 1 s: it misses, the operation says
    running, and a later look finds the number; assignNumber is sent once per user."""
    monkeypatch.setenv("GRAPH_OPERATION_WAIT_SECONDS", "1")
    await function_app.runtime.close()
    deferred = await _record_deferrals(local_app, at_once=False)

    await local_app.sync()

    assert deferred
    assert all(m.operation_location and "operations" in m.operation_location for m, _ in deferred)
    counts = local_app.simulator.request_counts()
    assert counts["assignNumber"] == 2
    assert counts["getOperation"] >= 2  # each user's first look was too early
    assert local_app.teams_by_upn() == {
        "+31855363011": "ann@contoso.example", "+31855363012": "bob@contoso.example",
    }
    statuses = await local_app.statuses()
    assert {s.outcome for s in statuses.values()} == {Outcome.ASSIGNED}
