"""GET /users/{id}, Teams userConfigurations, and how Teams users take part in assignNumber."""

from typing import Any

import httpx
import pytest
from msgraph.generated.models.teams_administration.account_type import AccountType
from msgraph.generated.models.teams_administration.assignment_category import (
    AssignmentCategory,
)
from msgraph.generated.models.teams_administration.assignment_type import AssignmentType
from msgraph.generated.models.teams_administration.teams_user_configuration import (
    TeamsUserConfiguration,
)
from msgraph.generated.models.teams_administration.teams_user_configuration_collection_response import (  # noqa: E501
    TeamsUserConfigurationCollectionResponse,
)
from msgraph.generated.models.user import User as GraphUser

from graph_simulator import SimulatorServer, parse_directory, parse_scenario
from tests.simulator.support import (
    ANN,
    ANNS_DR,
    BOB,
    CALLING_PLAN,
    CAROL,
    CLI_POLICY_ID,
    CONFIGURATIONS,
    DAVE,
    ERIN,
    FREE_DR,
    OPERATOR_CONNECT,
    POLICY,
    TENANT,
    example,
    parse,
    run_assign,
    unexpected_data,
    user_entry,
)


def configuration(client: httpx.Client, user_id: str, **params: str) -> httpx.Response:
    return client.get(f"{CONFIGURATIONS}/{user_id}", params=params)


# -- GET /users/{id} -----------------------------------------------------------------------


def test_get_user_with_select_parses_with_the_sdk(sim: SimulatorServer,
                                                  client: httpx.Client) -> None:
    response = client.get(f"/users/{BOB}",
                          params={"$select": "id,userPrincipalName,businessPhones,accountEnabled"})
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "@odata.context": f"{sim.base_url}/$metadata#users(id,userPrincipalName,businessPhones,"
                          "accountEnabled)/$entity",
        "id": BOB, "userPrincipalName": "bob@contoso.example",
        "businessPhones": ["+31 85 536 3012"], "accountEnabled": True,
    }
    user = parse(GraphUser, body)
    assert user.account_enabled is True
    assert unexpected_data(user) == {}
    assert sim.request_counts() == {"getUser": 1}


def test_get_user_by_upn_and_default_properties(client: httpx.Client) -> None:
    body = client.get("/users/BOB@Contoso.example").json()
    assert body["id"] == BOB
    assert "accountEnabled" not in body  # not in Graph's default set
    assert "teams" not in body  # the simulator's Teams profile is never a user property


def test_get_user_reflects_a_directory_change(sim: SimulatorServer,
                                              client: httpx.Client) -> None:
    data = example()
    user_entry(data, BOB)["businessPhones"] = ["+31855363012"]
    sim.replace_directory(parse_directory(data))
    body = client.get(f"/users/{BOB}", params={"$select": "businessPhones"}).json()
    assert body["businessPhones"] == ["+31855363012"]


def test_unknown_user_is_request_resource_not_found(client: httpx.Client) -> None:
    response = client.get("/users/no-such-user")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "Request_ResourceNotFound"


@pytest.mark.parametrize("params", [{"$select": "teams"}, {"$select": "id,nickname"},
                                    {"$expand": "manager"}])
def test_get_user_refuses_unknown_properties_and_expand(client: httpx.Client,
                                                        params: dict[str, str]) -> None:
    assert client.get(f"/users/{BOB}", params=params).status_code == 400


# -- userConfigurations --------------------------------------------------------------------


def test_user_configuration_has_exactly_the_documented_properties(
        sim: SimulatorServer, client: httpx.Client) -> None:
    response = configuration(client, ANN)
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == (
        f"{sim.base_url}/$metadata#admin/teams/userConfigurations/$entity")
    del body["@odata.context"]
    created = body.pop("createdDateTime")
    modified = body.pop("modifiedDateTime")
    assert created.endswith("Z")
    assert modified >= created
    assert body == {
        "id": ANN, "userPrincipalName": "ann@contoso.example", "tenantId": TENANT,
        "isEnterpriseVoiceEnabled": False,
        "telephoneNumbers": [{"telephoneNumber": ANNS_DR, "assignmentCategory": "primary"}],
        "effectivePolicyAssignments": [],
        "featureTypes": ["Teams", "PhoneSystem"],
        "accountType": "user",
    }
    assert sim.request_counts() == {"getUserConfiguration": 1}


def test_user_configuration_parses_with_the_sdk_leaving_nothing_unexpected(
        client: httpx.Client) -> None:
    assert client.post(f"{POLICY}/userAssignments/assign", json={"value": [{
        "userId": ANN, "policyType": "CallingLineIdentity",
        "policyId": CLI_POLICY_ID}]}).status_code == 204
    model = parse(TeamsUserConfiguration, configuration(client, ANN).json())
    assert unexpected_data(model) == {}
    assert model.telephone_numbers[0].assignment_category == AssignmentCategory.Primary
    assignment = model.effective_policy_assignments[0]
    assert assignment.policy_type == "CallingLineIdentity"
    assert assignment.policy_assignment.assignment_type == AssignmentType.Direct
    assert assignment.policy_assignment.policy_id == CLI_POLICY_ID
    assert assignment.policy_assignment.display_name == "MainNumber-Contoso"
    assert model.account_type == AccountType.User
    assert model.created_date_time is not None


def test_scenario_enterprise_voice_and_licence_show(client: httpx.Client) -> None:
    assert configuration(client, CAROL).json()["isEnterpriseVoiceEnabled"] is True
    assert configuration(client, ERIN).json()["featureTypes"] == ["Teams"]


def test_user_not_in_teams_is_404_not_found(client: httpx.Client) -> None:
    for user_id in (DAVE, "no-such-user"):
        response = configuration(client, user_id)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NotFound"


def test_select_returns_only_selected_properties(sim: SimulatorServer,
                                                 client: httpx.Client) -> None:
    body = configuration(client, ANN, **{"$select": "isEnterpriseVoiceEnabled,telephoneNumbers"})
    assert body.json() == {
        "@odata.context": f"{sim.base_url}/$metadata#admin/teams/userConfigurations("
                          "isEnterpriseVoiceEnabled,telephoneNumbers)/$entity",
        "isEnterpriseVoiceEnabled": False,
        "telephoneNumbers": [{"telephoneNumber": ANNS_DR, "assignmentCategory": "primary"}],
    }


@pytest.mark.parametrize("params", [{"$select": "isEnterpriseVoiceEnabled,user"},
                                    {"$expand": "user"}, {"$filter": "accountType eq 'user'"}])
def test_unsupported_options_are_400(client: httpx.Client, params: dict[str, str]) -> None:
    assert configuration(client, ANN, **params).status_code == 400


def test_value_body_shape_wraps_the_entity(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.load_scenario(parse_scenario(example(userConfigurationBodyShape="value")))
    body = configuration(client, ANN).json()
    assert set(body) == {"value"}
    assert body["value"]["id"] == ANN
    # What the SDK makes of it: the typed model is empty, the entity hides in additional_data.
    model = parse(TeamsUserConfiguration, body)
    assert model.id is None
    assert model.additional_data["value"]["isEnterpriseVoiceEnabled"] is False


def test_visible_after_polls_models_licence_propagation(sim: SimulatorServer,
                                                        client: httpx.Client) -> None:
    data = example()
    user_entry(data, BOB)["teams"] = {"visibleAfterPolls": 2}
    sim.load_scenario(parse_scenario(data))
    # Not yet in Teams: assignment fails like for an unknown user, and reads are 404.
    assert run_assign(client, FREE_DR, BOB)["numbers"][0]["statusDetail"] == (
        f"The user '{BOB}' is not found")
    assert [configuration(client, BOB).status_code for _ in range(3)] == [404, 404, 200]
    assert run_assign(client, FREE_DR, BOB)["status"] == "succeeded"


def test_list_user_configurations_pages_and_skips_users_not_in_teams(
        sim: SimulatorServer, client: httpx.Client) -> None:
    first = client.get(CONFIGURATIONS, params={"$top": "3", "$select": "id"})
    assert first.status_code == 200
    page = first.json()
    assert [item["id"] for item in page["value"]] == [ANN, BOB, CAROL]
    link = page["@odata.nextLink"]
    assert link.startswith(f"{sim.base_url}{CONFIGURATIONS}?")
    second = client.get(link).json()
    assert [item["id"] for item in second["value"]] == [ERIN]  # Dave is not in Teams
    assert "@odata.nextLink" not in second
    assert sim.request_counts() == {"listUserConfigurations": 2}


def test_list_user_configurations_parses_with_the_sdk(client: httpx.Client) -> None:
    model = parse(TeamsUserConfigurationCollectionResponse,
                  client.get(CONFIGURATIONS).json())
    assert [item.id for item in model.value] == [ANN, BOB, CAROL, ERIN]
    assert unexpected_data(model) == {}


@pytest.mark.parametrize("top", ["0", "1000", "x"])
def test_list_top_outside_1_to_999_is_refused(client: httpx.Client, top: str) -> None:
    assert client.get(CONFIGURATIONS, params={"$top": top}).status_code == 400


# -- Teams users in assignNumber -----------------------------------------------------------


def test_assignment_turns_enterprise_voice_on_and_shows_the_number(
        client: httpx.Client) -> None:
    before = configuration(client, BOB).json()
    assert before["isEnterpriseVoiceEnabled"] is False
    assert run_assign(client, FREE_DR, BOB)["status"] == "succeeded"
    after = configuration(client, BOB).json()
    assert after["isEnterpriseVoiceEnabled"] is True
    assert after["telephoneNumbers"] == [
        {"telephoneNumber": FREE_DR, "assignmentCategory": "primary"}]
    assert after["modifiedDateTime"] >= before["modifiedDateTime"]


def test_pending_assignment_is_not_yet_in_the_configuration(sim: SimulatorServer,
                                                            client: httpx.Client) -> None:
    sim.set_behaviour(operationSeconds=30)
    response = client.post("/admin/teams/telephoneNumberManagement/numberAssignments/"
                           "assignNumber", json={"telephoneNumber": FREE_DR,
                                                 "assignmentTargetId": BOB,
                                                 "numberType": "directRouting"})
    assert response.status_code == 202
    body = configuration(client, BOB).json()
    assert body["telephoneNumbers"] == []
    assert body["isEnterpriseVoiceEnabled"] is False


def test_tenant_where_assignment_leaves_enterprise_voice_off(sim: SimulatorServer,
                                                             client: httpx.Client) -> None:
    sim.load_scenario(parse_scenario(example(assignEnablesEnterpriseVoice=False)))
    assert run_assign(client, FREE_DR, BOB)["status"] == "succeeded"
    body = configuration(client, BOB).json()
    assert body["isEnterpriseVoiceEnabled"] is False
    assert body["telephoneNumbers"][0]["telephoneNumber"] == FREE_DR


def test_a_lagging_configuration_misses_a_new_number_for_as_many_reads(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    sim.load_scenario(parse_scenario(example(configurationLagReads=2)))
    assert run_assign(client, FREE_DR, BOB)["status"] == "succeeded"

    seen = [[n["telephoneNumber"] for n in configuration(client, BOB).json()["telephoneNumbers"]]
            for _ in range(3)]

    assert seen == [[], [], [FREE_DR]]
    assert sim.number_assignments()[FREE_DR] == BOB  # the number itself is there all along


def test_replaced_number_leaves_the_old_holders_configuration(client: httpx.Client) -> None:
    assert run_assign(client, FREE_DR, ANN)["status"] == "succeeded"
    numbers = configuration(client, ANN).json()["telephoneNumbers"]
    assert numbers == [{"telephoneNumber": FREE_DR, "assignmentCategory": "primary"}]


@pytest.mark.parametrize(("number", "number_type", "spelled"), [
    (FREE_DR, "directRouting", "DirectRouting"),
    (OPERATOR_CONNECT, "operatorConnect", "OperatorConnect"),
    (CALLING_PLAN, "callingPlan", "CallingPlan"),
])
def test_unlicensed_user_is_refused_for_every_number_type(
        sim: SimulatorServer, client: httpx.Client, number: str, number_type: str,
        spelled: str) -> None:
    final = run_assign(client, number, ERIN, number_type)
    assert final["status"] == "failed"
    assert final["numbers"][0]["statusDetail"] == (
        f"User '{ERIN}' lacks appropriate licenses to assign a '{spelled}' number")
    assert sim.number_assignments()[number] is None
    assert configuration(client, ERIN).json()["isEnterpriseVoiceEnabled"] is False


def test_unlicensed_user_in_sync_mode_is_a_400(sim: SimulatorServer,
                                               client: httpx.Client) -> None:
    sim.load_scenario(parse_scenario(example(assignErrors="sync")))
    response = client.post("/admin/teams/telephoneNumberManagement/numberAssignments/"
                           "assignNumber", json={"telephoneNumber": FREE_DR,
                                                 "assignmentTargetId": ERIN,
                                                 "numberType": "directRouting"})
    assert response.status_code == 400
    assert "lacks appropriate licenses" in response.json()["error"]["message"]


def test_user_not_in_teams_cannot_get_a_number(client: httpx.Client) -> None:
    final = run_assign(client, FREE_DR, DAVE)
    assert final["numbers"][0]["statusDetail"] == f"The user '{DAVE}' is not found"


def test_licence_granted_by_a_directory_change_keeps_live_teams_state(
        sim: SimulatorServer, client: httpx.Client) -> None:
    assert run_assign(client, FREE_DR, BOB)["status"] == "succeeded"
    data = example()
    user_entry(data, ERIN)["teams"] = {"licensed": True}
    user_entry(data, DAVE)["teams"] = {"present": True}
    sim.replace_directory(parse_directory(data))
    # Bob's profile did not change: Enterprise Voice switched on by the assignment stays on.
    assert configuration(client, BOB).json()["isEnterpriseVoiceEnabled"] is True
    assert configuration(client, ERIN).json()["featureTypes"] == ["Teams", "PhoneSystem"]
    assert configuration(client, DAVE).status_code == 200
    assert run_assign(client, "+31855363015", ERIN)["status"] == "succeeded"


def test_user_configurations_python_api_matches_the_list(sim: SimulatorServer,
                                                         client: httpx.Client) -> None:
    listed: list[dict[str, Any]] = client.get(CONFIGURATIONS).json()["value"]
    assert sim.user_configurations() == listed
