"""Teams' number operations take wall-clock time, whoever asks (issue 15), on Azurite and the
simulator: the queue function sends the assignment once, waits on the queue, and looks.

* a failed operation is found on the first look after the wait (the configuration does not show
  the number, so the operation is read once) and reported with Teams' detail text;
* a worker that dies after Teams accepted the assignment and before the wait was queued: the
  host's redelivery finds the number pending on the user and waits too; no second assignment;
* the learned wait is kept beside the tenant's pace, for the next instance.
"""

from __future__ import annotations

import pytest
from azure.data.tables.aio import TableServiceClient

import function_app
from graph_simulator import Scenario
from shared.adapters.storage.operation_waits import OPERATION_WAIT_ROW
from shared.adapters.storage.pace import PACE_TABLE
from shared.core.messages import AssignmentMessage
from shared.core.outcomes import Outcome, Reason
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import DOMAIN, build_scenario
from tests.integration.test_harsh_operations import quick_host

ANN_NUMBER = "+31855363011"
BOB_NUMBER = "+31855363012"
ANN, BOB = f"ann@{DOMAIN}", f"bob@{DOMAIN}"
DETAIL = "The number could not be assigned: the emergency location is not validated"


@pytest.fixture
def scenario() -> Scenario:
    # Operations take 4 s; the app's first look comes after 1 s (set below): too early.
    return build_scenario([("ann", [ANN_NUMBER]), ("bob", [BOB_NUMBER])],
                          behaviour={"operationSeconds": 4})


@pytest.fixture(autouse=True)
async def early_first_look(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPH_OPERATION_WAIT_SECONDS", "1")
    await function_app.runtime.close()


async def test_a_failed_operation_is_found_on_the_first_look_and_reported_with_its_detail(
    local_app: LocalApp,
) -> None:
    # Done (failed) within half a second: before the first look, whatever the queue's timing.
    local_app.simulator.set_behaviour(operationSeconds=0.5)
    local_app.simulator.inject_operation_failure("assignNumber", DETAIL, count=2)

    await local_app.sync()

    for upn in (ANN, BOB):
        status = (await local_app.statuses())[upn]
        assert (status.outcome, status.reason) == (Outcome.FAILED, Reason.ASSIGNMENT_FAILED)
        assert DETAIL in status.message
    counts = local_app.simulator.request_counts()
    # Per user: the assignment, the look (no number), the operation (failed). Nothing more.
    assert (counts["assignNumber"], counts["getUserConfiguration"], counts["getOperation"]) == (
        2, 2, 2)
    assert local_app.teams_by_upn() == {}
    runtime = await local_app.runtime()
    claim = await runtime.claims.get_claim(ANN_NUMBER)
    assert claim is None or claim.assigning_since is None  # the intent withdrawn


async def test_a_worker_dying_between_the_accepted_assignment_and_the_wait_writes_once(
    local_app: LocalApp,
) -> None:
    runtime = await local_app.runtime()
    send_later = runtime.queue.send_later
    died: list[str] = []

    async def dies_once(message: AssignmentMessage, delay_seconds: int) -> None:
        if not died:
            died.append(message.user_principal_name)
            raise RuntimeError("the worker died before the wait was queued")
        await send_later(message, delay_seconds)

    runtime.queue.send_later = dies_once  # type: ignore[method-assign]

    stats = await local_app.sync(quick_host())

    assert len(died) == 1
    assert (stats.failed_attempts, stats.poisoned) == (1, 0)
    assert local_app.simulator.request_counts()["assignNumber"] == 2  # one each, never again
    assert local_app.teams_by_upn() == {ANN_NUMBER: ANN, BOB_NUMBER: BOB}
    statuses = await local_app.statuses()
    assert {(s.outcome, s.reason) for s in statuses.values()} == {
        (Outcome.ASSIGNED, Reason.ASSIGNED)}
    claim = await runtime.claims.get_claim(ANN_NUMBER)
    assert claim is not None
    assert claim.assigned  # the app's: taken back when ann leaves


async def test_the_learned_wait_is_kept_beside_the_tenants_pace(local_app: LocalApp) -> None:
    # 8 s: the first looks miss, so the wait grows. The host polls the queue every 50 ms (not
    # up to 2 s), so a look comes about 1 s after the assignment even on a loaded machine; a
    # look that came after the operation was done would teach nothing (a late hit is ignored).
    local_app.simulator.set_behaviour(operationSeconds=8)
    await local_app.sync(quick_host())

    async with TableServiceClient.from_connection_string(
        local_app.settings["AzureWebJobsStorage"]
    ) as tables:
        row = await tables.get_table_client(PACE_TABLE).get_entity(
            local_app.scenario.tenant.id, OPERATION_WAIT_ROW)
    # Both first looks missed: the wait grew from 1 s.
    assert float(row["Seconds"]) > 1
    assert int(row["Looks"]) >= 1
