"""Two function instances share the tenant's Teams pace: a burst of assignments against a tight
Teams rate limit completes without failures, and Teams (nearly) never has to say "too many".

(A long ``Retry-After`` still puts the message back on the queue with that delay, paced or not:
``test_backpressure.test_a_long_retry_after_is_waited_out_on_the_queue`` runs with the pace in
place.)
"""

from __future__ import annotations

import asyncio

import azure.functions as func
import pytest

from graph_simulator import TEAMS_ADMIN_ROUTES, Scenario
from local_runner.queue_host import QueueFunction, QueueHost
from shared.adapters.assignment_queue import POISON_QUEUE
from shared.config import AppSettings
from shared.host_settings import read_queue_settings
from shared.outcomes import Outcome
from shared.runtime import AppRuntime
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario

USERS = 24
TEAMS_LIMIT = 20  # requests per second the simulator allows on /admin/teams/*


@pytest.fixture
def scenario() -> Scenario:
    return build_scenario(
        [(f"user{index:02d}", [f"+318553630{index:02d}"]) for index in range(10, 10 + USERS)],
        behaviour={"rateLimit": {"requestsPerSecond": TEAMS_LIMIT}},
    )


def _queue_function(runtime: AppRuntime) -> QueueFunction:
    """What ``function_app.assign_user`` does, on this instance's own runtime."""

    async def assign_user(msg: func.QueueMessage) -> None:
        await runtime.assign(msg.get_body(), getattr(msg, "dequeue_count", None) or 1)

    return assign_user


async def test_two_instances_sharing_the_pace_stay_under_the_teams_limit(
    local_app: LocalApp,
) -> None:
    assert float(local_app.settings["TEAMS_REQUESTS_PER_SECOND"]) == TEAMS_LIMIT - 1
    settings = AppSettings.from_environ(local_app.settings)
    await local_app.run_timer()
    instances = [await AppRuntime.create(settings) for _ in range(2)]
    try:
        async with local_app.queue() as queue_a, local_app.queue() as queue_b, \
                local_app.queue(POISON_QUEUE) as poison:
            hosts = [
                QueueHost(queue, poison, _queue_function(instance), read_queue_settings())
                for queue, instance in zip((queue_a, queue_b), instances, strict=True)
            ]
            drained = await asyncio.gather(*(host.drain(timeout_seconds=120) for host in hosts))
    finally:
        for instance in instances:
            await instance.close()

    assert all(stats.invocations for stats in drained), "both instances took work"
    assert sum(stats.failed_attempts for stats in drained) == 0
    statuses = await local_app.statuses()
    assert len(statuses) == USERS
    assert {status.outcome for status in statuses.values()} == {Outcome.ASSIGNED}
    teams_requests = [
        entry for entry in local_app.simulator.request_log()
        if entry["route"] in TEAMS_ADMIN_ROUTES
    ]
    assert len(teams_requests) > 4 * USERS  # reads, the assignment and its polls, per user
    assert [entry for entry in teams_requests if entry["status"] == 429] == []
