"""Teams policies: getPolicyId (and the SDK's comma-less URL), userAssignments assign/unassign."""

from typing import Any
from urllib.parse import quote

import httpx
import pytest
from msgraph.generated.admin.teams.policy.microsoft_graph_teams_administration_get_policy_id_with_type_with_name.get_policy_id_with_type_with_name_get_response import (  # noqa: E501
    GetPolicyIdWithTypeWithNameGetResponse,
)
from msgraph.generated.admin.teams.policy.user_assignments.microsoft_graph_teams_administration_assign.assign_post_request_body import (  # noqa: E501
    AssignPostRequestBody,
)
from msgraph.generated.admin.teams.policy.user_assignments.microsoft_graph_teams_administration_unassign.unassign_post_request_body import (  # noqa: E501
    UnassignPostRequestBody,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.teams_administration.teams_policy_user_assignment import (
    TeamsPolicyUserAssignment,
)

from graph_simulator import SimulatorServer, parse_scenario
from tests.simulator.support import (
    ANN,
    ASSIGNMENT_TYPE,
    BOB,
    CLI_POLICY_ID,
    CONFIGURATIONS,
    DAVE,
    DIAL_PLAN_ID,
    POLICY,
    example,
    graph_client,
    parse,
    unexpected_data,
)

ASSIGN = f"{POLICY}/userAssignments/assign"
UNASSIGN = f"{POLICY}/userAssignments/unassign"
FQ = "microsoft.graph.teamsAdministration."



def assignment(user_id: str, policy_type: str = "CallingLineIdentity",
               policy_id: str | None = CLI_POLICY_ID) -> dict[str, Any]:
    item = {"@odata.type": ASSIGNMENT_TYPE, "userId": user_id, "policyType": policy_type}
    if policy_id is not None:
        item["policyId"] = policy_id
    return item


def effective(client: httpx.Client, user_id: str) -> list[dict[str, Any]]:
    response = client.get(f"{CONFIGURATIONS}/{user_id}",
                          params={"$select": "effectivePolicyAssignments"})
    assert response.status_code == 200, response.text
    value: list[dict[str, Any]] = response.json()["effectivePolicyAssignments"]
    return value


# -- getPolicyId ---------------------------------------------------------------------------


@pytest.mark.parametrize("function", [
    "getPolicyId(type='CallingLineIdentity',name='MainNumber-Contoso')",
    f"{FQ}getPolicyId(type='CallingLineIdentity',name='MainNumber-Contoso')",
    "getPolicyId(name='MainNumber-Contoso',type='CallingLineIdentity')",
    # Percent-encoded parameters are decoded like any path.
    "getPolicyId(type='CallingLineIdentity',name='MainNumber%2DContoso')",
])
def test_get_policy_id_forms(sim: SimulatorServer, client: httpx.Client, function: str) -> None:
    response = client.get(f"{POLICY}/{function}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["value"] == [{"name": "Tag:MainNumber-Contoso", "policyId": CLI_POLICY_ID}]
    model = parse(GetPolicyIdWithTypeWithNameGetResponse, body)
    assert model.value[0].policy_id == CLI_POLICY_ID
    assert unexpected_data(model) == {}
    assert sim.request_counts() == {"getPolicyId": 1}


@pytest.mark.parametrize("function", [
    "getPolicyId(type='CallingLineIdentity',name='mainnumber-contoso')",  # names are exact
    "getPolicyId(type='TeamsCallingPolicy',name='MainNumber-Contoso')",
    "getPolicyId(type='TenantDialPlan',name='MainNumber-Contoso')",
])
def test_unknown_type_or_name_is_an_empty_value(client: httpx.Client, function: str) -> None:
    response = client.get(f"{POLICY}/{function}")
    assert response.status_code == 200
    assert response.json()["value"] == []


@pytest.mark.parametrize("function", [
    # What msgraph-sdk sends: std-uritemplate drops the comma between the parameters.
    "getPolicyId(type='CallingLineIdentity'name='MainNumber-Contoso')",
    f"{FQ}getPolicyId(type='CallingLineIdentity'name='MainNumber-Contoso')",
    "getPolicyId(type='CallingLineIdentity')",
    "getPolicyId(type='CallingLineIdentity',type='MainNumber-Contoso')",
    "getPolicyId(type=CallingLineIdentity,name=MainNumber-Contoso)",
])
def test_malformed_calls_are_400_counted_as_get_policy_id(sim: SimulatorServer,
                                                          client: httpx.Client,
                                                          function: str) -> None:
    response = client.get(f"{POLICY}/{function}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    assert sim.request_counts() == {"getPolicyId": 1}


def test_quotes_in_names_are_doubled(sim: SimulatorServer, client: httpx.Client) -> None:
    data = example()
    data["policies"].append({"type": "CallingLineIdentity", "name": "O'Brien, Sales",
                             "id": "cli-obrien"})
    sim.load_scenario(parse_scenario(data))
    name = quote("O''Brien, Sales")
    response = client.get(f"{POLICY}/getPolicyId(type='CallingLineIdentity',name='{name}')")
    assert response.json()["value"] == [{"name": "Tag:O'Brien, Sales", "policyId": "cli-obrien"}]


async def test_sdk_get_policy_id_is_refused_and_with_url_works(sim: SimulatorServer) -> None:
    async with graph_client(sim.base_url) as graph:
        builder = graph.admin.teams.policy.\
            microsoft_graph_teams_administration_get_policy_id_with_type_with_name(
                name="MainNumber-Contoso", type="CallingLineIdentity")
        with pytest.raises(ODataError) as caught:
            await builder.get()
        assert caught.value.response_status_code == 400
        assert "'CallingLineIdentity'name=" in sim.request_log()[-1]["path"]
        # The workaround: build the URL with the comma and send it as is.
        url = (f"{sim.base_url}/admin/teams/policy/getPolicyId("
               f"type='{quote('CallingLineIdentity')}',name='{quote('MainNumber-Contoso')}')")
        result = await builder.with_url(url).get()
    assert [item.policy_id for item in result.value] == [CLI_POLICY_ID]


# -- userAssignments assign / unassign ------------------------------------------------------


@pytest.mark.parametrize("path", [ASSIGN, f"{POLICY}/userAssignments/{FQ}assign"])
def test_assign_is_204_and_shows_as_effective(sim: SimulatorServer, client: httpx.Client,
                                              path: str) -> None:
    response = client.post(path, json={"value": [
        assignment(BOB), assignment(BOB, "TenantDialPlan", DIAL_PLAN_ID)]})
    assert response.status_code == 204
    assert response.content == b""
    assert effective(client, BOB) == [
        {"policyType": "CallingLineIdentity",
         "policyAssignment": {"displayName": "MainNumber-Contoso", "assignmentType": "direct",
                              "policyId": CLI_POLICY_ID, "groupId": None}},
        {"policyType": "TenantDialPlan",
         "policyAssignment": {"displayName": "NL-Default", "assignmentType": "direct",
                              "policyId": DIAL_PLAN_ID, "groupId": None}},
    ]
    assert sim.request_counts()["assignPolicy"] == 1


def test_a_second_policy_of_a_type_replaces_the_first(sim: SimulatorServer,
                                                      client: httpx.Client) -> None:
    data = example()
    data["policies"].append({"type": "CallingLineIdentity", "name": "Anonymous",
                             "id": "cli-anonymous"})
    sim.load_scenario(parse_scenario(data))
    assert client.post(ASSIGN, json={"value": [assignment(BOB)]}).status_code == 204
    assert client.post(ASSIGN, json={"value": [
        assignment(BOB, policy_id="cli-anonymous")]}).status_code == 204
    assert [item["policyAssignment"]["policyId"] for item in effective(client, BOB)] == [
        "cli-anonymous"]


@pytest.mark.parametrize("path", [UNASSIGN, f"{POLICY}/userAssignments/{FQ}unassign"])
def test_unassign_removes_and_is_idempotent(client: httpx.Client, path: str) -> None:
    assert client.post(ASSIGN, json={"value": [assignment(BOB)]}).status_code == 204
    for _ in range(2):
        response = client.post(path, json={"value": [assignment(BOB, policy_id=None)]})
        assert response.status_code == 204
    assert effective(client, BOB) == []


@pytest.mark.parametrize(("items", "status", "code"), [
    ([assignment("no-such-user")], 404, "NotFound"),
    ([assignment(DAVE)], 404, "NotFound"),  # in the directory but not in Teams
    ([assignment(BOB, policy_id="no-such-policy")], 400, "BadRequest"),
    ([assignment(BOB, "TenantDialPlan", CLI_POLICY_ID)], 400, "BadRequest"),  # id of another type
    ([assignment(ANN), assignment(BOB, policy_id="no-such-policy")], 400, "BadRequest"),
])
def test_assign_refusals_change_nothing(client: httpx.Client, items: list[dict[str, Any]],
                                        status: int, code: str) -> None:
    response = client.post(ASSIGN, json={"value": items})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert effective(client, ANN) == []  # all or nothing


@pytest.mark.parametrize("body", [
    {},
    {"value": []},
    {"value": {"userId": BOB}},
    {"value": [assignment(BOB, policy_id=None)]},
    {"value": [{**assignment(BOB), "@odata.type": "#microsoft.graph.user"}]},
    {"value": [{**assignment(BOB), "displayName": "x"}]},
    {"value": [{**assignment(BOB), "userId": ""}]},
    {"value": [assignment(BOB)], "userId": BOB},
])
def test_malformed_assign_bodies_are_400(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.post(ASSIGN, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"


def test_unassign_refuses_policy_id_and_unknown_type(client: httpx.Client) -> None:
    assert client.post(UNASSIGN, json={"value": [assignment(BOB)]}).status_code == 400
    unknown = client.post(UNASSIGN, json={"value": [
        assignment(BOB, "NoSuchPolicyType", None)]})
    assert unknown.status_code == 400
    missing = client.post(UNASSIGN, json={"value": [assignment("no-such-user", policy_id=None)]})
    assert missing.status_code == 404


def test_get_on_assign_is_405(client: httpx.Client) -> None:
    assert client.get(ASSIGN).status_code == 405


async def test_sdk_assign_and_unassign(sim: SimulatorServer) -> None:
    async with graph_client(sim.base_url) as graph:
        user_assignments = graph.admin.teams.policy.user_assignments
        await user_assignments.microsoft_graph_teams_administration_assign.post(
            AssignPostRequestBody(value=[TeamsPolicyUserAssignment(
                odata_type=ASSIGNMENT_TYPE, user_id=BOB, policy_type="CallingLineIdentity",
                policy_id=CLI_POLICY_ID)]))
        configuration = await graph.admin.teams.user_configurations.\
            by_teams_user_configuration_id(BOB).get()
        assert [item.policy_type for item in configuration.effective_policy_assignments] == [
            "CallingLineIdentity"]
        await user_assignments.microsoft_graph_teams_administration_unassign.post(
            UnassignPostRequestBody(value=[TeamsPolicyUserAssignment(
                odata_type=ASSIGNMENT_TYPE, user_id=BOB, policy_type="CallingLineIdentity")]))
    paths = [entry["path"] for entry in sim.request_log()]
    assert paths[0].endswith(f"/userAssignments/{FQ}assign")
    assert paths[-1].endswith(f"/userAssignments/{FQ}unassign")
    assert sim.user_configurations()[1]["effectivePolicyAssignments"] == []
