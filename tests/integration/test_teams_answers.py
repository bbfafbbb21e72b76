"""What Teams answers, in each documented or possible shape, becomes the right outcome."""

from __future__ import annotations

import pytest

import function_app
from graph_simulator import Scenario
from shared.core.outcomes import Outcome, Reason
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario


@pytest.fixture(params=["root", "value"])
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return build_scenario(
        [("ann", ["+31855363011"])],
        behaviour={"operationBodyShape": request.param, "operationSeconds": 6},
    )


async def test_the_operation_body_is_read_at_the_root_or_inside_value(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first look comes before the operation is done, so the operation itself is read.
    monkeypatch.setenv("GRAPH_OPERATION_WAIT_SECONDS", "1")
    await function_app.runtime.close()

    await local_app.sync()

    assert local_app.teams_by_upn() == {"+31855363011": "ann@contoso.example"}
    assert local_app.simulator.request_counts()["getOperation"] >= 1  # read "running"
    ann = (await local_app.statuses())["ann@contoso.example"]
    assert (ann.outcome, ann.reason) == (Outcome.ASSIGNED, Reason.ASSIGNED)


@pytest.mark.parametrize("errors", ["sync", "async"])
async def test_a_number_missing_from_the_operator_connect_inventory_is_not_in_inventory(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch, errors: str
) -> None:
    monkeypatch.setenv("NUMBER_TYPE", "operatorConnect")
    local_app.simulator.load_scenario(
        build_scenario([("ann", ["+31855363011"])], behaviour={"assignErrors": errors})
        .model_copy(update={"tenant": local_app.scenario.tenant})
    )

    await local_app.sync()

    ann = (await local_app.statuses())["ann@contoso.example"]
    assert (ann.outcome, ann.reason) == (Outcome.FAILED, Reason.NOT_IN_INVENTORY)
    assert "inventory" in ann.message
    assert local_app.simulator.number_assignments() == {}
