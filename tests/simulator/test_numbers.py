import json
import re
from typing import Any

import httpx
import pytest
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph.generated.models.teams_administration.number_assignment import NumberAssignment

from graph_simulator import SimulatorServer, parse_scenario
from tests.simulator.support import EXAMPLE, WALL

ANN = "0f3a5c2e-0000-4000-8000-000000000001"
BOB = "0f3a5c2e-0000-4000-8000-000000000002"
CAROL = "0f3a5c2e-0000-4000-8000-000000000003"
ANNS_DR = "+31855363011"
FREE_DR = "+31855363099"
OPERATOR_CONNECT = "+31201234567"
AUTH = {"Authorization": "Bearer simulator-token"}
NUMBERS = "/admin/teams/telephoneNumberManagement/numberAssignments"
ASSIGN = f"{NUMBERS}/assignNumber"
ASSIGN_FQ = f"{NUMBERS}/microsoft.graph.teamsAdministration.assignNumber"
UNASSIGN = f"{NUMBERS}/unassignNumber"
UNASSIGN_FQ = f"{NUMBERS}/microsoft.graph.teamsAdministration.unassignNumber"
LOCATION_RE = re.compile(
    r"^http://127\.0\.0\.1:\d+/v1\.0/admin/teams/telephoneNumberManagement/operations\('([^']+)'\)$"
)


def scenario(**behaviour: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    data["behaviour"] = {**data["behaviour"], **behaviour}
    return data



def assign(client: httpx.Client, number: str, target: str, number_type: str = "directRouting",
           path: str = ASSIGN) -> httpx.Response:
    return client.post(path, json={"telephoneNumber": number, "assignmentTargetId": target,
                                   "numberType": number_type, "assignmentCategory": "primary"})


def operation_id(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    match = LOCATION_RE.fullmatch(response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def poll(client: httpx.Client, location: str) -> dict[str, Any]:
    """One read of the operation; a second passes after it (``WALL``)."""
    response = client.get(location)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    WALL.advance(1)
    return body


def run_to_end(client: httpx.Client, response: httpx.Response) -> dict[str, Any]:
    location = response.headers["Location"]
    for _ in range(10):
        body = poll(client, location)
        if body["status"] in {"succeeded", "failed"}:
            return body
    raise AssertionError("operation never finished")


def numbers(client: httpx.Client, **params: str) -> list[dict[str, Any]]:
    response = client.get(NUMBERS, params=params)
    assert response.status_code == 200, response.text
    value: list[dict[str, Any]] = response.json()["value"]
    return value


def test_assign_answers_202_empty_body_and_location_in_key_form(client: httpx.Client) -> None:
    response = assign(client, FREE_DR, BOB)
    operation_id(response)
    assert response.content == b""


def test_operation_progresses_and_is_readable_in_both_forms(sim: SimulatorServer,
                                                            client: httpx.Client) -> None:
    sim.set_behaviour(operationSeconds=1.5)
    op_id = operation_id(assign(client, FREE_DR, BOB, path=ASSIGN_FQ))
    base = "/admin/teams/telephoneNumberManagement/operations"
    first = poll(client, f"{base}('{op_id}')")
    assert first["@odata.type"] == (
        "#microsoft.graph.teamsAdministration.telephoneNumberLongRunningOperation")
    assert first["id"] == op_id
    assert first["status"] == "notStarted"
    assert sim.number_assignments()[FREE_DR] == BOB
    assert numbers(client, **{"$filter": f"telephoneNumber eq '{FREE_DR}'"})[0][
        "activationState"] == "assignmentPending"
    assert poll(client, f"{base}/{op_id}")["status"] == "running"
    final = poll(client, f"{base}('{op_id}')")
    assert final["status"] == "succeeded"
    assert final["numbers"][0]["status"] == "succeeded"
    assert final["numbers"][0]["resourceLocation"].startswith(f"{sim.base_url}{NUMBERS}/")
    item = numbers(client, **{"$filter": f"telephoneNumber eq '{FREE_DR}'"})[0]
    assert item["activationState"] == "activated"
    assert item["assignmentStatus"] == "userAssigned"
    assert item["assignmentTargetId"] == BOB
    resource = client.get(final["numbers"][0]["resourceLocation"]).json()
    assert resource["telephoneNumber"] == FREE_DR


def test_unknown_operation_is_404(client: httpx.Client) -> None:
    response = client.get("/admin/teams/telephoneNumberManagement/operations('nope')")
    assert response.status_code == 404


def test_value_body_shape(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.load_scenario(parse_scenario(scenario(operationBodyShape="value", operationSeconds=0)))
    body = poll(client, assign(client, FREE_DR, BOB).headers["Location"])
    assert set(body) == {"value"}
    assert body["value"]["status"] == "succeeded"


def test_async_mode_conflict_fails_the_operation(sim: SimulatorServer,
                                                 client: httpx.Client) -> None:
    body = run_to_end(client, assign(client, ANNS_DR, BOB))
    assert body["status"] == "failed"
    assert body["numbers"][0]["statusDetail"] == (
        f"Telephone Number '{ANNS_DR}' has already been assigned to another user")
    assert sim.number_assignments()[ANNS_DR] == ANN


def test_sync_mode_conflict_is_a_400(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.load_scenario(parse_scenario(scenario(assignErrors="sync")))
    response = assign(client, ANNS_DR, BOB)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert "has already been assigned to another user" in error["message"]


def test_two_pending_assigns_only_one_succeeds(sim: SimulatorServer,
                                               client: httpx.Client) -> None:
    first = assign(client, FREE_DR, BOB)
    second = assign(client, FREE_DR, CAROL)
    assert second.status_code == 202
    assert run_to_end(client, second)["status"] == "failed"
    assert run_to_end(client, first)["status"] == "succeeded"
    assert sim.number_assignments()[FREE_DR] == BOB


def test_reassigning_the_held_number_to_the_same_user_succeeds(sim: SimulatorServer,
                                                               client: httpx.Client) -> None:
    assert run_to_end(client, assign(client, ANNS_DR, ANN))["status"] == "succeeded"
    assert sim.number_assignments()[ANNS_DR] == ANN


def test_new_primary_number_replaces_the_old_one(sim: SimulatorServer,
                                                 client: httpx.Client) -> None:
    assert run_to_end(client, assign(client, FREE_DR, ANN))["status"] == "succeeded"
    assert sim.number_assignments()[ANNS_DR] is None
    assert sim.number_assignments()[FREE_DR] == ANN


def test_operator_connect_number_not_in_inventory(client: httpx.Client) -> None:
    body = run_to_end(client, assign(client, "+31209999999", BOB, "operatorConnect"))
    assert body["status"] == "failed"
    assert body["numbers"][0]["statusDetail"] == (
        "Telephone Number '+31209999999' is not found from tenant "
        "'7a1c0a64-3f0e-4d3b-9a57-0c5d2f1e9b10'")


def test_operator_connect_inventory_number_can_be_assigned(sim: SimulatorServer,
                                                           client: httpx.Client) -> None:
    assert run_to_end(client, assign(client, OPERATOR_CONNECT, BOB, "operatorConnect"))[
        "status"] == "succeeded"
    assert sim.number_assignments()[OPERATOR_CONNECT] == BOB


def test_unknown_target_user_fails(client: httpx.Client) -> None:
    body = run_to_end(client, assign(client, FREE_DR, "no-such-user"))
    assert body["status"] == "failed"
    assert "no-such-user" in body["numbers"][0]["statusDetail"]


def test_number_without_plus_is_normalised(sim: SimulatorServer, client: httpx.Client) -> None:
    assert run_to_end(client, assign(client, "31855363099", BOB))["status"] == "succeeded"
    assert sim.number_assignments()["+31855363099"] == BOB


@pytest.mark.parametrize("body", [
    {"assignmentTargetId": BOB, "numberType": "directRouting"},
    {"telephoneNumber": FREE_DR, "numberType": "directRouting"},
    {"telephoneNumber": FREE_DR, "assignmentTargetId": BOB},
    {"telephoneNumber": FREE_DR, "assignmentTargetId": BOB, "numberType": "DirectRouting"},
    {"telephoneNumber": FREE_DR, "assignmentTargetId": BOB, "numberType": "sip"},
    {"telephoneNumber": FREE_DR, "assignmentTargetId": BOB, "numberType": "directRouting",
     "assignmentCategory": "Primary"},
    {"telephoneNumber": "tel:+3185", "assignmentTargetId": BOB, "numberType": "directRouting"},
    {"telephoneNumber": FREE_DR, "assignmentTargetId": BOB, "numberType": "directRouting",
     "userId": BOB},
])
def test_invalid_assign_bodies_are_400_even_in_async_mode(sim: SimulatorServer,
                                                          client: httpx.Client,
                                                          body: dict[str, Any]) -> None:
    response = client.post(ASSIGN, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    assert sim.number_assignments()[FREE_DR] is None


def test_unassign_frees_inventory_and_removes_other_direct_routing_numbers(
        sim: SimulatorServer, client: httpx.Client) -> None:
    sim.set_behaviour(operationSeconds=1)
    response = client.post(UNASSIGN_FQ, json={"telephoneNumber": ANNS_DR,
                                              "numberType": "directRouting"})
    operation_id(response)
    assert sim.number_assignments()[ANNS_DR] == ANN  # still held until the operation completes
    assert run_to_end(client, response)["status"] == "succeeded"
    assert sim.number_assignments()[ANNS_DR] is None
    assert run_to_end(client, assign(client, "+31855363077", BOB))["status"] == "succeeded"
    assert sim.number_assignments()["+31855363077"] == BOB
    response = client.post(UNASSIGN, json={"telephoneNumber": "+31855363077",
                                           "numberType": "directRouting"})
    assert run_to_end(client, response)["status"] == "succeeded"
    assert "+31855363077" not in sim.number_assignments()


def test_unassign_of_unknown_number_fails(client: httpx.Client) -> None:
    response = client.post(UNASSIGN, json={"telephoneNumber": "+31855363000",
                                           "numberType": "directRouting"})
    assert run_to_end(client, response)["status"] == "failed"


def test_filter_with_encoded_plus_matches_and_raw_plus_does_not(sim: SimulatorServer,
                                                                client: httpx.Client) -> None:
    # httpx encodes '+' in params as %2B, like the SDK.
    encoded = numbers(client, **{"$filter": f"telephoneNumber eq '{ANNS_DR}'"})
    assert [item["assignmentTargetId"] for item in encoded] == [ANN]
    assert "%2B31855363011" in sim.request_log()[-1]["query"]
    raw = client.get(f"{sim.base_url}{NUMBERS}?$filter=telephoneNumber%20eq%20'{ANNS_DR}'")
    assert raw.status_code == 200
    assert f"'{ANNS_DR}'" in sim.request_log()[-1]["query"]  # really sent a raw '+'
    assert raw.json()["value"] == []


def test_filter_by_target_and_combined(client: httpx.Client) -> None:
    by_target = numbers(client, **{"$filter": f"assignmentTargetId eq '{ANN}'"})
    assert [item["telephoneNumber"] for item in by_target] == [ANNS_DR]
    both = f"assignmentTargetId eq '{ANN}' and telephoneNumber eq '{FREE_DR}'"
    assert numbers(client, **{"$filter": both}) == []


@pytest.mark.parametrize("expression", [
    "assignmentStatus eq 'unassigned'",
    f"telephoneNumber eq '{ANNS_DR}' or telephoneNumber eq '{FREE_DR}'",
    f"startswith(telephoneNumber, '{ANNS_DR}')",
    f"telephoneNumber eq {ANNS_DR}",
])
def test_unsupported_filter_is_400(client: httpx.Client, expression: str) -> None:
    response = client.get(NUMBERS, params={"$filter": expression})
    assert response.status_code == 400


def test_top_above_1000_is_refused_and_skip_pages(sim: SimulatorServer,
                                                  client: httpx.Client) -> None:
    assert client.get(NUMBERS, params={"$top": "1001"}).status_code == 400
    assert client.get(NUMBERS, params={"$top": "1000"}).status_code == 200
    first = client.get(NUMBERS, params={"$top": "3"}).json()
    assert len(first["value"]) == 3
    link = first["@odata.nextLink"]
    assert link.startswith(f"{sim.base_url}{NUMBERS}?")
    assert "$skip=3" in link
    second = client.get(link).json()
    assert [item["telephoneNumber"] for item in second["value"]] == ["+31207654321"]
    assert "@odata.nextLink" not in second


def test_items_parse_with_the_sdk_model_leaving_nothing_unexpected(
        client: httpx.Client) -> None:
    run_to_end(client, assign(client, FREE_DR, BOB))
    items = numbers(client)
    assert len(items) == 4
    for item in items:
        node = JsonParseNodeFactory().get_root_parse_node("application/json",
                                                          json.dumps(item).encode())
        model = node.get_object_value(NumberAssignment)
        assert model.additional_data == {}
        assert model.telephone_number == item["telephoneNumber"]
    assert {item["numberType"] for item in items} == {
        "directRouting", "operatorConnect", "callingPlan"}


CALLING_PLAN = "+31207654321"


@pytest.mark.parametrize(("number", "number_type", "outcome"), [
    # Operator Connect and Calling Plan numbers must be inventory of exactly that type.
    (OPERATOR_CONNECT, "operatorConnect", "succeeded"),
    (CALLING_PLAN, "callingPlan", "succeeded"),
    ("+31209999999", "callingPlan", "failed"),
    (OPERATOR_CONNECT, "callingPlan", "failed"),
    (CALLING_PLAN, "operatorConnect", "failed"),
    # Direct Routing numbers need not be inventory, but an online number is not one.
    ("+31855363077", "directRouting", "succeeded"),
    (CALLING_PLAN, "directRouting", "failed"),
    (FREE_DR, "callingPlan", "failed"),
])
def test_inventory_and_number_type_must_match(sim: SimulatorServer, client: httpx.Client,
                                              number: str, number_type: str,
                                              outcome: str) -> None:
    final = run_to_end(client, assign(client, number, BOB, number_type))
    assert final["status"] == outcome, final
    holder = sim.number_assignments().get(number)
    assert holder == (BOB if outcome == "succeeded" else None)


def test_unassign_with_the_wrong_number_type_fails(sim: SimulatorServer,
                                                   client: httpx.Client) -> None:
    assert run_to_end(client, assign(client, CALLING_PLAN, BOB, "callingPlan"))[
        "status"] == "succeeded"
    response = client.post(UNASSIGN, json={"telephoneNumber": CALLING_PLAN,
                                           "numberType": "operatorConnect"})
    assert run_to_end(client, response)["status"] == "failed"
    assert sim.number_assignments()[CALLING_PLAN] == BOB
