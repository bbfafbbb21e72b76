"""Policy ids in two forms for one policy, end to end on Azurite + the Graph simulator.

Graph's examples show a GUID-style id from getPolicyId and a base64-like id in a user's
effectivePolicyAssignments for the same kind of policy. With the simulator serving them that
way (``effectivePolicyIds: opaque``), the app still confirms the policies it gave, by type and
name, so a verified grant is kept: the next run queues nothing and writes nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from graph_simulator import Scenario, parse_scenario
from shared.core.outcomes import Outcome, Reason
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import DOMAIN, build_scenario, user_id

MAIN = "+31855363010"
CLI, ROUTE = "CallingLineIdentity", "OnlineVoiceRoutingPolicy"
CLI_ID = "f7593e81-772a-4455-88a3-fc9e5ebc1e4a"
ROUTE_ID = "0b7c2f3e-5d4a-4c1b-9e8f-6a5b4c3d2e1f"
POLICY_WRITES = ("assignPolicy", "unassignPolicy")


@pytest.fixture
def scenario() -> Scenario:
    """ann carries the main number, whose two policies have GUID-style ids."""
    data: dict[str, Any] = build_scenario(
        [("ann", [MAIN])], behaviour={"effectivePolicyIds": "opaque"},
    ).model_dump(by_alias=True, mode="json")
    data["tenant"]["rules"] = {
        "mainNumbers": {DOMAIN: MAIN},
        "mainNumberPolicies": f"{DOMAIN}={CLI}:Contoso Main,{ROUTE}:NL-Route",
    }
    data["policies"] = [
        {"type": CLI, "name": "Contoso Main", "id": CLI_ID},
        {"type": ROUTE, "name": "NL-Route", "id": ROUTE_ID},
    ]
    return parse_scenario(data)


def _effective(app: LocalApp) -> dict[str, tuple[str, str]]:
    """policyType → (displayName, policyId) as ann's Teams configuration shows it."""
    (configuration,) = [c for c in app.simulator.user_configurations()
                        if c["id"] == user_id("ann")]
    return {item["policyType"]: (item["policyAssignment"]["displayName"],
                                 item["policyAssignment"]["policyId"])
            for item in configuration["effectivePolicyAssignments"]}


async def _queued_actions(app: LocalApp) -> list[str]:
    async with app.queue() as queue:
        messages = await queue.peek_messages(max_messages=32)
    return [json.loads(message.content)["action"] for message in messages]


async def test_a_verified_grant_is_not_granted_again_when_ids_differ_in_form(
    local_app: LocalApp,
) -> None:
    await local_app.run_timer()
    assert await _queued_actions(local_app) == ["grant_policies"]
    await local_app.drain()

    effective = _effective(local_app)
    assert {kind: name for kind, (name, _) in effective.items()} == {
        CLI: "Contoso Main", ROUTE: "NL-Route"}
    # Teams shows other ids than getPolicyId gave for the same policies.
    assert effective[CLI][1] != CLI_ID
    assert effective[ROUTE][1] != ROUTE_ID
    ann = (await local_app.statuses())[f"ann@{DOMAIN}"]
    assert (ann.outcome, ann.reason) == (Outcome.ASSIGNED, Reason.MAIN_NUMBER)
    assert "confirmed" in ann.message
    grant = await (await local_app.runtime()).grants.get_grant(user_id("ann"))
    assert grant is not None
    assert grant.verified

    # Later than any backoff a failed check would have set: a grant that did not verify
    # would be planned again now.
    await local_app.advance(hours=7)
    local_app.simulator.clear_requests()
    await local_app.run_timer()
    assert await _queued_actions(local_app) == []
    await local_app.drain()

    counts = local_app.simulator.request_counts()
    assert {route: counts[route] for route in POLICY_WRITES if route in counts} == {}
    assert (await local_app.statuses())[f"ann@{DOMAIN}"] == ann
