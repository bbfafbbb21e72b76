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
        behaviour={"operationPolls": 12},
    )


async def _record_deferrals(app: LocalApp) -> list[tuple[AssignmentMessage, int]]:
    """Capture deferred messages and let them come back at once (time passing, in a test)."""
    runtime = await app.runtime()
    deferred: list[tuple[AssignmentMessage, int]] = []
    send_later = runtime.queue.send_later

    async def record(message: AssignmentMessage, delay_seconds: int) -> None:
        deferred.append((message, delay_seconds))
        await send_later(message, 0)

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

    assert [(m.deferrals, delay) for m, delay in deferred] == [(1, 120)]
    assert stats.failed_attempts == 0
    # The SDK did not retry inside the request: one 429, then one accepted assign per user.
    assert local_app.simulator.request_counts()["assignNumber"] == 3
    statuses = await local_app.statuses()
    assert {s.outcome for s in statuses.values()} == {Outcome.ASSIGNED}


async def test_a_slow_operation_is_followed_later_and_never_sent_twice(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPH_OPERATION_TIMEOUT_SECONDS", "0.2")
    await function_app.runtime.close()
    deferred = await _record_deferrals(local_app)

    await local_app.sync()

    assert deferred
    assert all(m.operation_location and "operations" in m.operation_location for m, _ in deferred)
    assert local_app.simulator.request_counts()["assignNumber"] == 2
    assert local_app.teams_by_upn() == {
        "+31855363011": "ann@contoso.example", "+31855363012": "bob@contoso.example",
    }
