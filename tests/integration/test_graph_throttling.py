"""Directory reads throttled the way Graph documents it, on Azurite and the simulator: by
resource units (5 per transitive-members page), each 429 with ``Retry-After`` and Graph's
``x-ms-throttle-scope`` / ``x-ms-throttle-information``. The run still completes, and the log
names the throttle scope of every 429 the app saw."""

from __future__ import annotations

import logging

import pytest

from graph_simulator import Scenario
from graph_simulator.identity import SIMULATOR_APP_ID
from shared.core.outcomes import Outcome
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario

USERS = 6


@pytest.fixture
def scenario() -> Scenario:
    # Five resource units a second, a one-second bucket: the run's two delta links (1 each)
    # leave too little for the members page (5), which is throttled and retried.
    return build_scenario(
        [(f"user{index:02d}", [f"+318553630{index:02d}"]) for index in range(10, 10 + USERS)],
        behaviour={"rateLimit": {"scope": "directory", "resourceUnitsPerSecond": 5}},
    )


async def test_directory_throttled_by_resource_units_still_completes_and_logs_the_scope(
    local_app: LocalApp, caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="shared.adapters.graph.throttling"):
        stats = await local_app.sync()

    throttled = [entry for entry in local_app.simulator.request_log() if entry["status"] == 429]
    assert throttled
    assert {entry["route"] for entry in throttled} <= {
        "listTransitiveMemberUsers", "usersDelta", "groupsDelta", "getUser"}
    lines = [record.getMessage() for record in caplog.records
             if record.getMessage().startswith("Graph throttled")]
    assert len(lines) == len(throttled)
    tenant = local_app.scenario.tenant.id
    scope = f"scope=Tenant_Application/ReadWrite/{SIMULATOR_APP_ID}/{tenant}, "
    assert all(scope in line and "information=ResourceUnitLimitExceeded" in line
               and line.endswith("retry after 1 s") for line in lines)
    runs = await (await local_app.runtime()).ledger.runs()
    assert runs[-1].outcome != "failed"
    assert stats.failed_attempts == 0
    statuses = await local_app.statuses()
    assert len(statuses) == USERS
    assert {status.outcome for status in statuses.values()} == {Outcome.ASSIGNED}
