"""Two function instances share the tenant's Teams pace: a burst of assignments against a tight
Teams rate limit completes without failures, and Teams (nearly) never has to say "too many";
a request the SDK retries waits for a slot again.

(A long ``Retry-After`` still puts the message back on the queue with that delay, paced or not:
``test_backpressure.test_a_long_retry_after_is_waited_out_on_the_queue`` runs with the pace in
place.)
"""

from __future__ import annotations

import asyncio
import time

import azure.functions as func
import pytest
from azure.data.tables.aio import TableServiceClient

from graph_simulator import TEAMS_ADMIN_ROUTES, Scenario
from local_runner.queue_host import QueueFunction, QueueHost
from local_runner.session import SIMULATOR_TOKEN
from shared.adapters.graph.client import (
    build_graph_client,
    close_graph_transport,
    graph_http_client,
)
from shared.adapters.graph.credentials import GraphCredentials
from shared.adapters.graph.directory import GraphUserReader
from shared.adapters.graph.pacing import TeamsRequestPacer
from shared.adapters.graph.user_configurations import GraphUserConfigurations
from shared.adapters.storage.pace import APP_PACE_PARTITION, PACE_TABLE, TEAMS_SCOPE
from shared.adapters.storage.queue import POISON_QUEUE
from shared.config import AppSettings, GraphAuth, GraphSettings
from shared.core.outcomes import Outcome
from shared.core.request_pace import Pace
from shared.host_settings import read_queue_settings
from shared.runtime import AppRuntime
from tests.fakes import FakePaceStore
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario, user_id

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
    started = time.time()
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
    assert len(teams_requests) >= 2 * USERS  # the assignment and the look after it, per user
    assert [entry for entry in teams_requests if entry["status"] == 429] == []
    # The runtime paced them across tenants as well: the app-wide row moved on during the run.
    async with TableServiceClient.from_connection_string(
        local_app.settings["AzureWebJobsStorage"]
    ) as tables:
        app_row = await tables.get_table_client(PACE_TABLE).get_entity(
            APP_PACE_PARTITION, TEAMS_SCOPE)
    assert float(app_row["NextFreeAt"]) > started


async def test_a_retried_teams_request_waits_for_a_slot_again(local_app: LocalApp) -> None:
    store = FakePaceStore("tenant")
    pacer = TeamsRequestPacer(store, Pace(requests_per_second=1000, block_size=1))
    settings = GraphSettings(base_url=local_app.simulator.base_url, auth=GraphAuth.STATIC_TOKEN,
                             static_token=SIMULATOR_TOKEN, max_retries=2)
    transport = graph_http_client(settings, pacer)
    users = GraphUserConfigurations(build_graph_client(
        settings, GraphCredentials(settings).auth_provider("tenant"), transport
    ))
    local_app.simulator.inject_fault("getUserConfiguration", 429, count=1,
                                     retry_after_seconds=0)
    try:
        assert await users.read(user_id("user10")) is not None
    finally:
        await close_graph_transport(transport)

    # One slot for the throttled attempt, one for the retry the SDK sent after it.
    assert len(store.reservations) == 2


async def test_a_teams_request_waits_for_both_paces_and_a_directory_read_for_neither(
    local_app: LocalApp,
) -> None:
    shared: dict[str, float] = {}
    tenant, app = FakePaceStore("tenant", shared), FakePaceStore(APP_PACE_PARTITION, shared)
    app_pacer = TeamsRequestPacer(app, Pace(requests_per_second=1000, block_size=1))
    pacer = TeamsRequestPacer(tenant, Pace(requests_per_second=1000, block_size=1),
                              app_pacer=app_pacer)
    settings = GraphSettings(base_url=local_app.simulator.base_url, auth=GraphAuth.STATIC_TOKEN,
                             static_token=SIMULATOR_TOKEN)
    transport = graph_http_client(settings, pacer, tenant_id="tenant")
    client = build_graph_client(
        settings, GraphCredentials(settings).auth_provider("tenant"), transport
    )
    try:
        assert await GraphUserReader(client).read_user(user_id("user10")) is not None
        assert (len(tenant.reservations), len(app.reservations)) == (0, 0)
        assert await GraphUserConfigurations(client).read(user_id("user10")) is not None
    finally:
        await close_graph_transport(transport)

    assert (len(tenant.reservations), len(app.reservations)) == (1, 1)
