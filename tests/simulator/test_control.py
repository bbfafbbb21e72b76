import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from graph_simulator import ScenarioError, SimulatorServer, parse_directory, parse_scenario
from tests.simulator.support import EXAMPLE, TENANT

VOICE_GROUP = "6b0d2c61-0000-4000-8000-0000000000a1"
ANN = "0f3a5c2e-0000-4000-8000-000000000001"
BOB = "0f3a5c2e-0000-4000-8000-000000000002"
FREE_DR = "+31855363099"
AUTH = {"Authorization": "Bearer simulator-token"}
ADVANCED = {**AUTH, "ConsistencyLevel": "eventual"}
MEMBERS = f"/groups/{VOICE_GROUP}/transitiveMembers/graph.user"
NUMBERS = "/admin/teams/telephoneNumberManagement/numberAssignments"


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data



@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, headers=ADVANCED) as http:
        yield http


def assign_and_finish(client: httpx.Client, number: str, target: str) -> str:
    response = client.post(f"{NUMBERS}/assignNumber", json={
        "telephoneNumber": number, "assignmentTargetId": target, "numberType": "directRouting"})
    assert response.status_code == 202
    status = ""
    for _ in range(5):
        status = client.get(response.headers["Location"]).json()["status"]
        if status in {"succeeded", "failed"}:
            break
    return status


def test_counts_and_log_record_every_graph_request(sim: SimulatorServer, client: httpx.Client,
                                                   control: httpx.Client) -> None:
    client.get(MEMBERS, params={"$count": "true"})
    client.get(MEMBERS, params={"$count": "true"}, headers={"ConsistencyLevel": ""})
    assert assign_and_finish(client, FREE_DR, BOB) == "succeeded"
    client.get(NUMBERS)
    httpx.get(f"{sim.base_url}{NUMBERS}")
    client.get("/me")
    control.get("/_simulator/state")  # control routes are never counted
    assert sim.request_counts() == {
        "listTransitiveMemberUsers": 2, "assignNumber": 1, "getOperation": 1,
        "listNumberAssignments": 1, "unauthorized": 1, "unknown": 1,
    }
    log = sim.request_log()
    # Each entry says when it was answered, on the simulator's clock: oldest first.
    assert [entry["at"] for entry in log] == sorted(entry["at"] for entry in log)
    assert {key: value for key, value in log[0].items() if key != "at"} == {
        "method": "GET", "route": "listTransitiveMemberUsers",
        "path": f"/v1.0{MEMBERS}", "query": "%24count=true", "status": 200,
        "consistencyLevel": "eventual", "authorization": True, "tenant": TENANT,
    }
    assert log[1]["status"] == 400
    assert log[1]["consistencyLevel"] == ""
    assert log[2]["route"] == "assignNumber"
    assert log[2]["status"] == 202
    assert log[-2]["authorization"] is False
    assert log[-2]["status"] == 401
    body = control.get("/_simulator/requests").json()
    assert body == {"counts": sim.request_counts(), "log": log}
    assert control.post("/_simulator/requests/clear").status_code == 200
    assert sim.request_counts() == {}
    assert sim.request_log() == []


def test_state_route_shows_graph_shaped_numbers(client: httpx.Client,
                                                control: httpx.Client) -> None:
    state = control.get("/_simulator/state").json()
    assert state == {
        "numberAssignments": client.get(NUMBERS).json()["value"],
        "userConfigurations": client.get("/admin/teams/userConfigurations").json()["value"],
    }


def test_scenario_route_replaces_world_and_clears_faults(sim: SimulatorServer,
                                                         client: httpx.Client,
                                                         control: httpx.Client) -> None:
    assert assign_and_finish(client, FREE_DR, BOB) == "succeeded"
    sim.inject_fault("listNumberAssignments", 503, count=5)
    response = control.post("/_simulator/scenario", json=example())
    assert response.status_code == 200
    assert sim.number_assignments()[FREE_DR] is None
    assert client.get(NUMBERS).status_code == 200


def test_scenario_route_refuses_a_broken_scenario_naming_the_field(
        control: httpx.Client) -> None:
    data = example()
    data["behaviour"]["operationBodyShape"] = "wrapped"
    response = control.post("/_simulator/scenario", json=data)
    assert response.status_code == 400
    assert "behaviour.operationBodyShape" in response.json()["error"]["message"]


def test_directory_route_keeps_teams_state(sim: SimulatorServer, client: httpx.Client,
                                           control: httpx.Client) -> None:
    assert assign_and_finish(client, FREE_DR, BOB) == "succeeded"
    data = example()
    data["groups"][0]["members"] = [BOB]
    data["users"][1]["businessPhones"] = ["+31855363099"]
    response = control.post("/_simulator/directory",
                            json={"users": data["users"], "groups": data["groups"]})
    assert response.status_code == 200
    members = client.get(MEMBERS, params={"$count": "true"}).json()["value"]
    assert [(m["id"], m["businessPhones"]) for m in members] == [(BOB, ["+31855363099"])]
    assert sim.number_assignments()[FREE_DR] == BOB


def test_replace_directory_python_api(sim: SimulatorServer, client: httpx.Client,
                                      tmp_path: Path) -> None:
    data = example()
    data["groups"][0]["members"] = []
    sim.replace_directory(parse_directory(data))
    assert client.get(MEMBERS, params={"$count": "true"}).json()["value"] == []
    directory_file = tmp_path / "directory.json"
    data["groups"][0]["members"] = [ANN]
    directory_file.write_text(json.dumps({"users": data["users"], "groups": data["groups"]}))
    sim.replace_directory(directory_file)
    members = client.get(MEMBERS, params={"$count": "true"}).json()["value"]
    assert [member["id"] for member in members] == [ANN]


def test_concurrent_assigns_of_one_number_give_it_to_exactly_one_user(
        sim: SimulatorServer) -> None:
    data = example()
    data["behaviour"]["operationSeconds"] = 0  # each POST completes its operation at once
    extra = [{"id": f"bbbbbbbb-0000-4000-8000-{n:012d}", "userPrincipalName": f"c{n}@x.example"}
             for n in range(16)]
    data["users"] += extra
    sim.load_scenario(parse_scenario(data))

    def attempt(user: dict[str, Any]) -> str:
        with httpx.Client(base_url=sim.base_url, headers=AUTH) as http:
            return assign_and_finish(http, FREE_DR, user["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, extra))
    assert sorted(outcomes) == ["failed"] * 15 + ["succeeded"]
    winner = extra[outcomes.index("succeeded")]["id"]
    assert sim.number_assignments()[FREE_DR] == winner


def test_port_in_use_is_reported_by_start(sim: SimulatorServer) -> None:
    port = int(sim.url.rsplit(":", 1)[1])
    with pytest.raises(OSError, match=str(port)):
        SimulatorServer(EXAMPLE, port=port).start()


def test_fault_with_retry_after_then_recovery(sim: SimulatorServer, client: httpx.Client,
                                              control: httpx.Client) -> None:
    response = control.post("/_simulator/faults", json={
        "route": "assignNumber", "status": 503, "count": 2, "retryAfterSeconds": 1})
    assert response.status_code == 200
    body = {"telephoneNumber": FREE_DR, "assignmentTargetId": BOB, "numberType": "directRouting"}
    for _ in range(2):
        failed = client.post(f"{NUMBERS}/assignNumber", json=body)
        assert failed.status_code == 503
        assert failed.headers["Retry-After"] == "1"
        error = failed.json()["error"]
        assert error["code"] == "serviceNotAvailable"
        assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    # Faults never touched the world: the number is still free.
    assert sim.number_assignments()[FREE_DR] is None
    assert client.post(f"{NUMBERS}/assignNumber", json=body).status_code == 202
    assert sim.request_counts()["assignNumber"] == 3


def test_throttling_fault_without_retry_after(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.inject_fault("listTransitiveMemberUsers", 429)
    response = client.get(MEMBERS, params={"$count": "true"})
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert response.json()["error"]["code"] == "TooManyRequests"
    assert client.get(MEMBERS, params={"$count": "true"}).status_code == 200


def test_fault_for_unknown_route_is_refused(sim: SimulatorServer, control: httpx.Client) -> None:
    response = control.post("/_simulator/faults", json={"route": "listUsers", "status": 503})
    assert response.status_code == 400
    assert "listUsers" in response.json()["error"]["message"]
    with pytest.raises(ScenarioError):
        sim.inject_fault("listUsers", 503)


def test_unknown_control_route(control: httpx.Client) -> None:
    assert control.get("/_simulator/nothing").status_code == 404
    assert control.get("/_simulator/faults").status_code == 405


def test_state_file_persists_teams_numbers_across_runs(tmp_path: Path) -> None:
    state_file = tmp_path / "teams-state.json"
    with (SimulatorServer(EXAMPLE, state_file=state_file) as first,
          httpx.Client(base_url=first.base_url, headers=AUTH) as http):
        assert assign_and_finish(http, FREE_DR, BOB) == "succeeded"
        assert assign_and_finish(http, "+31855363055", ANN) == "succeeded"
    assert state_file.exists()
    with SimulatorServer(EXAMPLE, state_file=state_file) as second:
        assigned = second.number_assignments()
        assert assigned[FREE_DR] == BOB
        assert assigned["+31855363055"] == ANN
        # Ann's scenario number was freed by her new primary number, and stays freed.
        assert assigned["+31855363011"] is None
    with SimulatorServer(EXAMPLE) as without_state:
        assert without_state.number_assignments()[FREE_DR] is None


def test_broken_state_file_is_reported(tmp_path: Path) -> None:
    state_file = tmp_path / "teams-state.json"
    state_file.write_text('{"version": 1, "number_assignments": [{"telephone_number": 5}]}')
    with pytest.raises(ScenarioError, match=r"teams-state\.json: number_assignments\[0\]"):
        SimulatorServer(EXAMPLE, state_file=state_file)


def test_state_file_keeps_teams_users_across_runs(tmp_path: Path) -> None:
    state_file = tmp_path / "teams-state.json"
    cli_id = example()["policies"][0]["id"]
    with (SimulatorServer(EXAMPLE, state_file=state_file) as first,
          httpx.Client(base_url=first.base_url, headers=AUTH) as http):
        assert assign_and_finish(http, FREE_DR, BOB) == "succeeded"
        assert http.post("/admin/teams/policy/userAssignments/assign", json={"value": [{
            "userId": BOB, "policyType": "CallingLineIdentity",
            "policyId": cli_id}]}).status_code == 204
    with SimulatorServer(EXAMPLE, state_file=state_file) as second:
        bob = next(c for c in second.user_configurations() if c["id"] == BOB)
        assert bob["isEnterpriseVoiceEnabled"] is True
        assert [a["policyAssignment"]["policyId"]
                for a in bob["effectivePolicyAssignments"]] == [cli_id]


def test_state_file_from_before_teams_users_still_loads(tmp_path: Path) -> None:
    state_file = tmp_path / "teams-state.json"
    state_file.write_text('{"version": 1, "number_assignments": [], "operations": []}')
    with SimulatorServer(EXAMPLE, state_file=state_file) as sim:
        assert sim.number_assignments() == {}
        assert len(sim.user_configurations()) == 4
