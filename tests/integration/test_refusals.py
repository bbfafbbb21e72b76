"""Every permanent refusal from Teams ends as the reason code a helpdesk can act on, end to end:
the timer plans on Azurite, the queue function assigns against the Graph simulator.

(``not_in_inventory`` is in ``test_teams_answers.py``; ``not_licensed`` and Teams not knowing the
user (``waiting_for_teams``, ``failed`` after the patience) in ``test_teams_readiness_flow.py``.)
"""

from __future__ import annotations

import json

import pytest

from graph_simulator import Scenario, parse_scenario
from local_runner.session import SIMULATOR_TOKEN
from shared.adapters.graph.client import (
    build_graph_client,
    close_graph_transport,
    graph_http_client,
)
from shared.adapters.graph.credentials import GraphCredentials
from shared.adapters.graph.numbers import GraphTeamsNumbers
from shared.config import GraphAuth, GraphSettings, NumberType
from shared.core.outcomes import Outcome, Reason
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import DOMAIN, build_scenario, user_id

ANN = f"ann@{DOMAIN}"


@pytest.fixture
def scenario() -> Scenario:
    """ann and bob in the voice group; carl in the tenant, outside it."""
    base = build_scenario([("ann", ["+31855363011"]), ("bob", ["+31855363012"]),
                           ("carl", [])])
    data = json.loads(base.model_dump_json(by_alias=True))
    data["groups"][0]["members"].remove(user_id("carl"))
    return parse_scenario(data)


async def _ann(app: LocalApp) -> tuple[Outcome, Reason, str]:
    status = (await app.statuses())[ANN]
    return status.outcome, status.reason, status.message


async def test_a_refused_permission_is_graph_forbidden_and_names_the_permission(
    local_app: LocalApp,
) -> None:
    # The Teams backend nests its own JSON error inside Graph's message.
    local_app.simulator.inject_fault(
        "assignNumber", 403, count=2, code="UnknownError",
        message='{"code":"Forbidden","message":"Access Denied."}',
    )

    await local_app.sync()

    outcome, reason, message = await _ann(local_app)
    assert (outcome, reason) == (Outcome.FAILED, Reason.GRAPH_FORBIDDEN)
    assert "TeamsTelephoneNumber.ReadWrite.All" in message
    assert "+31855363011" not in local_app.teams_by_upn()


async def test_an_operation_that_fails_for_an_unknown_reason_is_assignment_failed(
    local_app: LocalApp,
) -> None:
    local_app.simulator.inject_operation_failure(
        "assignNumber", "Number activation failed in the telephony backend", count=1
    )

    await local_app.sync()

    statuses = await local_app.statuses()
    failed = [s for s in statuses.values() if s.outcome is Outcome.FAILED]
    assert len(failed) == 1
    assert failed[0].reason is Reason.ASSIGNMENT_FAILED
    assert "Number activation failed in the telephony backend" in failed[0].message
    assert failed[0].number not in local_app.teams_by_upn()


async def test_a_number_put_on_someone_else_after_the_last_full_read_is_assigned_elsewhere(
    local_app: LocalApp,
) -> None:
    await local_app.sync()
    # An admin gives +31855363099 to carl by hand; the app's snapshot does not know.
    settings = GraphSettings(base_url=local_app.simulator.base_url, auth=GraphAuth.STATIC_TOKEN,
                             static_token=SIMULATOR_TOKEN)
    transport = graph_http_client(settings)
    try:
        auth = GraphCredentials(settings).auth_provider("admin")
        admin = GraphTeamsNumbers(build_graph_client(settings, auth, transport),
                                  number_type=NumberType.DIRECT_ROUTING,
                                  poll_interval_seconds=0.01, operation_timeout_seconds=10)
        await admin.assign_number("+31855363099", user_id("carl"))
    finally:
        await close_graph_transport(transport)
    data = json.loads(local_app.scenario.model_dump_json(by_alias=True))
    next(u for u in data["users"] if u["displayName"] == "ann")["businessPhones"] = [
        "+31855363099"]
    changed = parse_scenario(data)
    local_app.simulator.replace_directory(changed)
    local_app.scenario = changed

    await local_app.sync()  # a delta run: Teams refuses, the app finds the number on carl

    outcome, reason, message = await _ann(local_app)
    assert (outcome, reason) == (Outcome.FAILED, Reason.ASSIGNED_ELSEWHERE)
    assert "another user or resource" in message
    teams = local_app.teams_by_upn()
    assert teams["+31855363099"] == f"carl@{DOMAIN}"  # never taken from carl
    assert "+31855363011" not in teams  # ann's old number, no longer hers in AD, went back

    await local_app.advance(2)  # the next full read sees carl's number and plans the same
    await local_app.sync()
    assert (await _ann(local_app))[:2] == (Outcome.SKIPPED, Reason.ASSIGNED_ELSEWHERE)
