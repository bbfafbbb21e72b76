"""Behaviour knobs for Graph's open questions (issue 11, items 4, 6 and 8), set in the scenario
or at run time through `POST /_simulator/behaviour`: the featureTypes a Teams Phone user lists,
the status an expired delta token answers, and the form of effective policy ids."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from graph_simulator import Scenario, SimulatorServer, parse_scenario
from tests.simulator.support import (
    ANN,
    ASSIGNMENT_TYPE,
    AUTH,
    CLI_POLICY_ID,
    CONFIGURATIONS,
    ERIN,
    POLICY,
    example,
)

SELECT = "id,userPrincipalName,businessPhones,accountEnabled"
# Graph's own example of a direct assignment's id: base64url, 43 characters, no padding.
BASE64_LIKE = re.compile(r"^[A-Za-z0-9_-]{43}$")
GUID = "f7593e81-772a-4455-88a3-fc9e5ebc1e4a"


def configuration(client: httpx.Client, user_id: str) -> dict[str, Any]:
    response = client.get(f"{CONFIGURATIONS}/{user_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def users_link(client: httpx.Client) -> str:
    body = client.get("/users/delta", params={"$select": SELECT}).json()
    while "@odata.nextLink" in body:
        body = client.get(body["@odata.nextLink"]).json()
    link: str = body["@odata.deltaLink"]
    return link


# -- the control route -----------------------------------------------------------------------


def test_the_behaviour_route_changes_only_the_fields_given(
        sim: SimulatorServer, client: httpx.Client, control: httpx.Client) -> None:
    response = control.post("/_simulator/behaviour", json={"phoneFeatureTypes": ["MCOEV"]})
    assert response.status_code == 200, response.text
    assert configuration(client, ANN)["featureTypes"] == ["Teams", "MCOEV"]
    response = control.post("/_simulator/behaviour", json={"deltaGoneStatus": 404})
    assert response.status_code == 200
    # The earlier change stays, and so does everything the scenario set.
    assert configuration(client, ANN)["featureTypes"] == ["Teams", "MCOEV"]
    assert sim.simulator.request_counts() == {"getUserConfiguration": 2}
    assert control.get("/_simulator/behaviour").status_code == 405


@pytest.mark.parametrize(("body", "fragment"), [
    ({"deltaGoneStatus": 500}, "deltaGoneStatus"),
    ({"effectivePolicyIds": "guid"}, "effectivePolicyIds"),
    ({"phoneFeatureTypes": [""]}, "phoneFeatureTypes"),
    ({"noSuchKnob": 1}, "noSuchKnob"),
])
def test_the_behaviour_route_refuses_what_does_not_validate(
        control: httpx.Client, body: dict[str, Any], fragment: str) -> None:
    response = control.post("/_simulator/behaviour", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "InvalidRequest"
    assert fragment in error["message"]


# -- featureTypes (item 4) ---------------------------------------------------------------------


def test_feature_types_of_a_teams_phone_user_follow_the_knob(client: httpx.Client) -> None:
    assert configuration(client, ANN)["featureTypes"] == ["Teams", "PhoneSystem"]


def test_the_scenario_can_spell_teams_phone_in_ways_the_docs_never_list() -> None:
    scenario = parse_scenario(example(phoneFeatureTypes=["TeamsPhoneStandard", "CallingPlan"]))
    with SimulatorServer(scenario) as server, httpx.Client(
            base_url=server.base_url, headers=AUTH) as client:
        assert configuration(client, ANN)["featureTypes"] == [
            "Teams", "TeamsPhoneStandard", "CallingPlan"]
        # A user without Teams Phone still lists only Teams, whatever the spelling.
        assert configuration(client, ERIN)["featureTypes"] == ["Teams"]
        server.set_behaviour(phone_feature_types=())
        assert configuration(client, ANN)["featureTypes"] == ["Teams"]


# -- delta expiry (item 6) ---------------------------------------------------------------------


def test_an_expired_token_answers_410_with_a_location_by_default(
        sim: SimulatorServer, client: httpx.Client) -> None:
    link = users_link(client)
    sim.expire_delta_tokens()
    response = client.get(link)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "syncStateNotFound"
    assert "$deltatoken" not in response.headers["Location"]


@pytest.mark.parametrize("status", [400, 404, 409])
@pytest.mark.parametrize("code", ["syncStateNotFound", "resyncRequired"])
def test_an_expired_token_can_answer_another_40x_with_its_code(
        sim: SimulatorServer, client: httpx.Client, control: httpx.Client,
        status: int, code: str) -> None:
    link = users_link(client)
    assert control.post("/_simulator/behaviour", json={
        "deltaGoneStatus": status, "deltaGoneErrorCode": code}).status_code == 200
    sim.expire_delta_tokens()
    response = client.get(link)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert "Location" not in response.headers
    # A token that has not expired still works; a fresh round is unaffected.
    assert client.get(users_link(client)).status_code == 200


# -- policy id forms (item 8) ------------------------------------------------------------------


def _with_guid_policy(**behaviour: Any) -> Scenario:
    """The example tenant with a GUID-style id for its calling line identity policy."""
    data = example(**behaviour)
    for policy in data["policies"]:
        if policy["id"] == CLI_POLICY_ID:
            policy["id"] = GUID
    return parse_scenario(data)


def _assign_cli(client: httpx.Client) -> None:
    response = client.post(f"{POLICY}/userAssignments/assign", json={"value": [{
        "@odata.type": ASSIGNMENT_TYPE, "userId": ANN, "policyType": "CallingLineIdentity",
        "policyId": GUID}]})
    assert response.status_code == 204, response.text


def _policy_id_from_get_policy_id(client: httpx.Client) -> str:
    response = client.get(
        f"{POLICY}/getPolicyId(type='CallingLineIdentity',name='MainNumber-Contoso')")
    assert response.status_code == 200, response.text
    (item,) = response.json()["value"]
    policy_id: str = item["policyId"]
    return policy_id


def test_effective_policy_ids_are_getpolicyids_by_default() -> None:
    with SimulatorServer(_with_guid_policy()) as server, httpx.Client(
            base_url=server.base_url, headers=AUTH) as client:
        _assign_cli(client)
        (effective,) = configuration(client, ANN)["effectivePolicyAssignments"]
        assert effective["policyAssignment"]["policyId"] == GUID
        assert _policy_id_from_get_policy_id(client) == GUID


def test_opaque_effective_policy_ids_differ_from_getpolicyid_but_keep_the_name() -> None:
    with SimulatorServer(_with_guid_policy(effectivePolicyIds="opaque")) as server, \
            httpx.Client(base_url=server.base_url, headers=AUTH) as client:
        assert _policy_id_from_get_policy_id(client) == GUID
        _assign_cli(client)  # assign takes getPolicyId's id
        (effective,) = configuration(client, ANN)["effectivePolicyAssignments"]
        shown = effective["policyAssignment"]
        assert shown["policyId"] != GUID
        assert BASE64_LIKE.fullmatch(shown["policyId"])
        assert (effective["policyType"], shown["displayName"], shown["assignmentType"]) == (
            "CallingLineIdentity", "MainNumber-Contoso", "direct")
        # The same policy shows the same id on every read, and in the state view.
        assert configuration(client, ANN)["effectivePolicyAssignments"][0][
            "policyAssignment"]["policyId"] == shown["policyId"]
        (state,) = [c for c in server.user_configurations() if c["id"] == ANN]
        assert state["effectivePolicyAssignments"][0]["policyAssignment"]["policyId"] == (
            shown["policyId"])
