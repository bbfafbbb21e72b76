"""The events the composition root and the Graph adapter emit, on Azurite and the simulator, as
the worker's exporter would receive them (the SDK's in-memory exporters): Graph throttling and
a run's Graph requests, messages set aside by the app and by the host, the poison queues'
length on every tick."""

from __future__ import annotations

import uuid

import pytest

from graph_simulator import Scenario
from graph_simulator.identity import SIMULATOR_APP_ID
from shared.adapters.storage.queue import POISON_QUEUE, TENANT_SYNC_POISON_QUEUE
from shared.core.messages import AssignmentMessage
from shared.core.telemetry_events import APP_WIDE
from shared.core.tenant_sync_messages import TenantSyncMessage
from tests.fakes import NOW
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario
from tests.telemetry_support import CapturedTelemetry

NUMBER = "+31855363011"


@pytest.fixture
def scenario() -> Scenario:
    # As in test_graph_throttling: the members page (5 resource units) meets a limit of 5 a
    # second after the delta links, and is throttled and retried.
    return build_scenario(
        [("ann", [NUMBER]), ("bob", ["+31855363012"])],
        behaviour={"rateLimit": {"scope": "directory", "resourceUnitsPerSecond": 5}},
    )


def _message(local_app: LocalApp) -> AssignmentMessage:
    ann = local_app.scenario.users[0]
    return AssignmentMessage(
        tenant_id=local_app.scenario.tenant.id, run_id="20261201T000000.000000Z-feed",
        user_id=ann.id, user_principal_name=ann.user_principal_name, telephone_number=NUMBER,
        read_position=0, action="assign", reason="assigned", number=NUMBER,
        idempotency_key=f"forged|{uuid.uuid4()}",
    )


async def test_each_429_is_reported_and_a_run_reports_the_graph_requests_it_made(
    local_app: LocalApp, telemetry: CapturedTelemetry,
) -> None:
    await local_app.sync()
    tenant = local_app.scenario.tenant.id
    throttled = [e for e in local_app.simulator.request_log() if e["status"] == 429]
    reported = telemetry.named("GraphThrottled")
    assert throttled
    assert len(reported) == len(throttled)
    assert {(r["tenantId"], r["retryAfterSeconds"], r["throttleScope"],
             r["throttleInformation"]) for r in reported} == {
        (tenant, 1.0, f"Tenant_Application/ReadWrite/{SIMULATOR_APP_ID}/{tenant}",
         "ResourceUnitLimitExceeded")}
    assert all("{id}" in str(r["route"]) and tenant not in str(r["route"]) for r in reported
               if "/groups/" in str(r["route"]))

    # A second run has nothing to enqueue: every Graph request now is the run's own.
    local_app.simulator.clear_requests()
    await local_app.sync()
    second = telemetry.named("SyncRunCompleted")[-1]
    assert second["enqueued"] == 0
    assert second["graphRequests"] == len(local_app.simulator.request_log()) > 0


async def test_messages_set_aside_by_the_app_are_reported_and_counted_on_the_next_tick(
    local_app: LocalApp, telemetry: CapturedTelemetry,
) -> None:
    runtime = await local_app.runtime()
    stranger = _message(local_app).model_copy(
        update={"tenant_id": "11111111-1111-1111-1111-111111111111"})
    assert await runtime.assign(b"{not json", 1) is None
    assert await runtime.assign(stranger.model_dump_json(by_alias=True).encode(), 1) is None
    assert await runtime.run_tenant_sync(b"[]") is None

    poisoned = telemetry.named("MessagePoisoned")
    assert [(p["tenantId"], p["queue"], p["poisonedBy"], p["action"], p["userId"])
            for p in poisoned] == [
        (APP_WIDE, POISON_QUEUE, "app", "", ""),
        (stranger.tenant_id, POISON_QUEUE, "app", "assign", stranger.user_id),
        (APP_WIDE, TENANT_SYNC_POISON_QUEUE, "app", "", ""),
    ]
    assert "not a tenant this app serves" in str(poisoned[1]["lastError"])

    await local_app.run_timer()
    depths = {d["queue"]: d for d in telemetry.named("PoisonQueueDepth")}
    assert set(depths) == {POISON_QUEUE, TENANT_SYNC_POISON_QUEUE}
    assert depths[POISON_QUEUE]["approximateCount"] == 2  # cleared for each test
    assert int(depths[TENANT_SYNC_POISON_QUEUE]["approximateCount"]) >= 1
    assert {d["tenantId"] for d in depths.values()} == {APP_WIDE}


async def test_a_failure_on_the_hosts_last_dequeue_is_reported_before_the_host_sets_it_aside(
    local_app: LocalApp, telemetry: CapturedTelemetry, monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = await local_app.runtime()

    async def storage_gone(*args: object, **kwargs: object) -> None:
        raise ConnectionResetError("the table service went away")

    monkeypatch.setattr("shared.runtime.process_assignment", storage_gone)
    monkeypatch.setattr("shared.runtime.run_tenant", storage_gone)
    message = _message(local_app)
    body = message.model_dump_json(by_alias=True).encode()
    last = runtime.host.max_dequeue_count
    sync = TenantSyncMessage(tenant_id=uuid.UUID(message.tenant_id), requested_at=NOW,
                             requested_by="timer").to_json().encode()

    for attempt in (1, last):
        with pytest.raises(ConnectionResetError):
            await runtime.assign(body, attempt)
        with pytest.raises(ConnectionResetError):
            await runtime.run_tenant_sync(sync, attempt)

    assert [(p["tenantId"], p["queue"], p["poisonedBy"], p["action"], p["userId"],
             p["lastError"]) for p in telemetry.named("MessagePoisoned")] == [
        (message.tenant_id, POISON_QUEUE, "host", "assign", message.user_id,
         "ConnectionResetError: the table service went away"),
        (message.tenant_id, TENANT_SYNC_POISON_QUEUE, "host", "sync", "",
         "ConnectionResetError: the table service went away"),
    ]
