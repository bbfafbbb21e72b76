"""An assignment Teams carried out whose answer never reached the app, on every try: the number
is still known to be the app's, so it is taken back when its user leaves (issue 9, defect 2).

The fault proxy forwards each ``assignNumber`` and configuration read to the simulator and then
resets the connection, so Teams has the number but the app hears nothing, five tries long.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from graph_simulator import Directory, FaultKind, FaultPlan, FaultProxy, Scenario
from shared.core.outcomes import Outcome, Reason
from shared.host_settings import read_queue_settings
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario, user_id

ANN = "+31855363011"


@pytest.fixture
def scenario() -> Scenario:
    return build_scenario([("ann", [ANN]), ("bob", [])], behaviour={"operationSeconds": 0})


@pytest.fixture
def proxy(local_app: LocalApp, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    plan = FaultPlan(rate=1.0, mix={FaultKind.DROP_AFTER: 1.0},
                     routes=frozenset({"assignNumber", "getUserConfiguration"}))
    with FaultProxy(local_app.simulator.url, plan) as running:
        monkeypatch.setenv("GRAPH_BASE_URL", running.base_url)
        monkeypatch.setenv("GRAPH_MAX_RETRIES", "0")
        monkeypatch.setenv("DELTA_READS", "false")  # every run is a full read, as hourly
        monkeypatch.setenv("GRACE_PERIOD_HOURS", "0")
        yield running


async def test_a_number_whose_answer_was_lost_on_every_try_is_taken_back_when_its_user_leaves(
    local_app: LocalApp, proxy: FaultProxy
) -> None:
    host = read_queue_settings()
    quick = type(host)(
        batch_size=host.batch_size, new_batch_threshold=host.new_batch_threshold,
        max_dequeue_count=host.max_dequeue_count, visibility_timeout=timedelta(0),
        max_polling_interval=timedelta(milliseconds=50),
    )

    lost = await local_app.sync(quick)

    assert lost.poisoned == 1
    assert local_app.simulator.number_assignments()[ANN] == user_id("ann")  # Teams has it
    ann = (await local_app.statuses())["ann@contoso.example"]
    assert (ann.outcome, ann.reason) == (Outcome.FAILED, Reason.ASSIGNMENT_FAILED)

    proxy.pause()  # Graph on a good day: the next run reads the number on ann
    await local_app.sync(quick)
    runtime = await local_app.runtime()
    claim = (await runtime.claims.list_claims())[ANN]
    assert claim.assigned, "found with the app's intent recorded, the number is the app's"

    bob = [user for user in local_app.scenario.users if user.id == user_id("bob")]
    group = local_app.scenario.groups[0].model_copy(update={"members": (user_id("bob"),)})
    local_app.simulator.replace_directory(Directory(users=tuple(bob), groups=(group,)))
    await local_app.sync(quick)  # ann leaves the voice group

    assert local_app.simulator.number_assignments().get(ANN) is None
    ann = (await local_app.statuses())["ann@contoso.example"]
    assert (ann.outcome, ann.reason) == (Outcome.UNASSIGNED, Reason.LEFT_GROUP)

