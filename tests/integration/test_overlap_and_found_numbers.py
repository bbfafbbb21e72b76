"""On Azurite and the simulator: a timer run during a long drain enqueues nothing twice, and a
number found already on its user is noted like one the app wrote, so delta runs stop planning it."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from graph_simulator import Scenario
from shared.adapters.storage.queue import ASSIGNMENT_QUEUE
from shared.core.outcomes import Outcome
from shared.host_settings import QueueHostSettings, read_queue_settings
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario

USERS = 40


def _quick_retries() -> QueueHostSettings:
    host = read_queue_settings()
    return type(host)(
        batch_size=4, new_batch_threshold=2, max_dequeue_count=host.max_dequeue_count,
        visibility_timeout=timedelta(0), max_polling_interval=timedelta(milliseconds=50),
    )


class TestOverlap:
    @pytest.fixture
    def scenario(self) -> Scenario:
        return build_scenario(
            [(f"user{i:02d}", [f"+318553631{i:02d}"]) for i in range(USERS)],
            behaviour={"operationSeconds": 0.3},
        )

    async def test_a_timer_run_during_the_drain_enqueues_no_user_twice(
        self, local_app: LocalApp
    ) -> None:
        await local_app.run_timer()
        drain = asyncio.create_task(local_app.drain(_quick_retries()))
        deadline = time.monotonic() + 60
        while local_app.simulator.request_counts().get("assignNumber", 0) < 8:
            assert time.monotonic() < deadline, "the drain did not start"
            await asyncio.sleep(0.02)  # polling the simulator's counter, with a deadline

        await local_app.run_timer()  # the schedule fires while most users are still queued
        async with local_app.queue(ASSIGNMENT_QUEUE) as queue:
            queued = (await queue.get_queue_properties()).approximate_message_count or 0
        stats = await drain

        # Each user once: the planned message, or its copy waiting for Teams (both, for a moment,
        # while a batch is between sending the copy and settling the original).
        assert queued <= USERS + _quick_retries().batch_size
        assert stats.invocations == 2 * USERS  # the assignment, and the look after the wait
        assert local_app.simulator.request_counts()["assignNumber"] == USERS
        outcomes = {s.outcome for s in (await local_app.statuses()).values()}
        assert outcomes == {Outcome.ASSIGNED}


class TestFoundNumbers:
    @pytest.fixture
    def scenario(self) -> Scenario:
        # Teams finishes each operation at once: the first try's assignment has landed by the
        # time its read-back and poll fail.
        return build_scenario([("ann", ["+31855363011"]), ("bob", ["+31855363012"])],
                              behaviour={"operationSeconds": 0})

    async def test_a_number_found_on_the_user_by_a_retry_is_not_planned_again_by_delta_runs(
        self, local_app: LocalApp, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("GRAPH_MAX_RETRIES", "0")
        # The first try's assignment lands in Teams, but its read-back and operation poll
        # fail: the retry finds the number already on the user.
        local_app.simulator.inject_fault("getUserConfiguration", 503, count=1)
        local_app.simulator.inject_fault("getOperation", 503, count=1)
        first = await local_app.sync(_quick_retries())
        assert first.failed_attempts == 1
        assert local_app.simulator.request_counts()["assignNumber"] == 2  # found, not rewritten
        assert set(local_app.teams_by_upn()) == {"+31855363011", "+31855363012"}

        local_app.simulator.clear_requests()
        await local_app.run_timer()  # a delta run

        async with local_app.queue(ASSIGNMENT_QUEUE) as queue:
            assert (await queue.get_queue_properties()).approximate_message_count == 0
        assert local_app.simulator.request_counts() == {"usersDelta": 1, "groupsDelta": 1}
        statuses = await local_app.statuses()
        assert {s.outcome for s in statuses.values()} == {Outcome.ASSIGNED}
