"""Granted application permissions (`tenant.grantedPermissions`, `/_simulator/permissions`) and
Graph-like throttling of directory routes in resource units (`behaviour.rateLimit` with scope
`directory`, `/_simulator/behaviour`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from graph_simulator import ScenarioError, SimulatorServer, parse_scenario
from graph_simulator.identity import SIMULATOR_APP_ID
from graph_simulator.permissions import KNOWN_PERMISSIONS, ROUTE_PERMISSIONS
from graph_simulator.routing import ROUTE_NAMES
from tests.simulator.support import (
    ANN,
    AUTH,
    BOB,
    CONFIGURATIONS,
    EXAMPLE,
    FREE_DR,
    NUMBERS,
    TENANT,
    VOICE_GROUP,
    FakeClock,
)

ADVANCED = {**AUTH, "ConsistencyLevel": "eventual"}
MEMBERS = f"/groups/{VOICE_GROUP}/transitiveMembers/graph.user"
MEMBER_QUERY = {"$count": "true", "$select": "id,userPrincipalName,businessPhones,accountEnabled"}
# What a tenant grants an app that may read groups but not users.
GROUPS_AND_TEAMS = ["GroupMember.Read.All", "TeamsTelephoneNumber.ReadWrite.All",
                    "TeamsUserConfiguration.Read.All", "TeamsPolicyUserAssign.ReadWrite.All"]


def granting(permissions: list[str] | None, **behaviour: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    data["tenant"]["grantedPermissions"] = permissions
    data["behaviour"] = {**data["behaviour"], **behaviour}
    return data


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[SimulatorServer]:
    with SimulatorServer(EXAMPLE, clock=clock) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, headers=ADVANCED) as http:
        yield http


# -- permissions -----------------------------------------------------------------------------


def test_every_route_has_a_documented_permission() -> None:
    assert set(ROUTE_PERMISSIONS) == set(ROUTE_NAMES)
    assert {"User.Read.All", "GroupMember.Read.All", "TeamsTelephoneNumber.Read.All",
            "TeamsUserConfiguration.Read.All"} <= KNOWN_PERMISSIONS


def test_without_grants_listed_every_route_is_allowed(client: httpx.Client) -> None:
    page = client.get(MEMBERS, params=MEMBER_QUERY).json()
    assert page["value"][0]["userPrincipalName"] == "ann@contoso.example"
    assert client.get(NUMBERS).status_code == 200


def test_members_without_a_user_permission_are_limited_information(
        sim: SimulatorServer, client: httpx.Client) -> None:
    sim.load_scenario(parse_scenario(granting(GROUPS_AND_TEAMS)))

    response = client.get(MEMBERS, params=MEMBER_QUERY)

    assert response.status_code == 200
    page = response.json()
    assert page["@odata.count"] == 4
    assert page["value"][0] == {"@odata.type": "#microsoft.graph.user", "id": ANN}
    assert all(set(member) == {"@odata.type", "id"} for member in page["value"])


@pytest.mark.parametrize("permission", ["User.Read.All", "Directory.Read.All"])
def test_a_user_permission_gives_the_selected_properties(
        sim: SimulatorServer, client: httpx.Client, permission: str) -> None:
    sim.load_scenario(parse_scenario(granting([*GROUPS_AND_TEAMS, permission])))

    member = client.get(MEMBERS, params=MEMBER_QUERY).json()["value"][0]

    assert member["userPrincipalName"] == "ann@contoso.example"
    assert member["businessPhones"] == ["+31855363011"]


@pytest.mark.parametrize(("path", "route", "needed"), [
    (MEMBERS, "listTransitiveMemberUsers", "GroupMember.Read.All"),
    (f"/users/{ANN}", "getUser", "User.Read.All"),
    (NUMBERS, "listNumberAssignments", "TeamsTelephoneNumber.Read.All"),
    (f"{CONFIGURATIONS}/{BOB}", "getUserConfiguration", "TeamsUserConfiguration.Read.All"),
])
def test_a_route_without_its_permission_is_403_authorization_request_denied(
        sim: SimulatorServer, client: httpx.Client, path: str, route: str, needed: str) -> None:
    # Granted: something, but not what this route needs.
    other = "User.Read.All" if route == "listTransitiveMemberUsers" else "Group.Read.All"
    sim.load_scenario(parse_scenario(granting([other])))

    response = client.get(path, params=MEMBER_QUERY if path == MEMBERS else None)

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "Authorization_RequestDenied"
    assert error["message"].startswith("Insufficient privileges to complete the operation.")
    assert needed in error["message"]
    assert sim.request_counts()[route] == 1


def test_read_only_number_permission_refuses_assign_number(
        sim: SimulatorServer, client: httpx.Client) -> None:
    sim.load_scenario(parse_scenario(granting(["TeamsTelephoneNumber.Read.All"])))
    assert client.get(NUMBERS).status_code == 200

    response = client.post(f"{NUMBERS}/assignNumber", json={
        "telephoneNumber": FREE_DR, "assignmentTargetId": BOB, "numberType": "directRouting"})

    assert response.status_code == 403
    assert sim.number_assignments()[FREE_DR] is None


def test_grants_change_through_the_control_route(
        sim: SimulatorServer, client: httpx.Client, control: httpx.Client) -> None:
    assert control.post("/_simulator/permissions",
                        json={"grantedPermissions": GROUPS_AND_TEAMS}).status_code == 200
    assert "userPrincipalName" not in client.get(MEMBERS, params=MEMBER_QUERY).json()["value"][0]

    assert control.post("/_simulator/permissions",
                        json={"grantedPermissions": None}).status_code == 200
    assert "userPrincipalName" in client.get(MEMBERS, params=MEMBER_QUERY).json()["value"][0]


def test_an_unknown_permission_name_is_refused(control: httpx.Client) -> None:
    response = control.post("/_simulator/permissions",
                            json={"grantedPermissions": ["User.Read.Everything"]})
    assert response.status_code == 400
    assert "User.Read.Everything" in response.json()["error"]["message"]
    with pytest.raises(ScenarioError, match=r"tenant\.grantedPermissions.*User\.Read\.Evrything"):
        parse_scenario(granting(["User.Read.Evrything"]))


# -- throttling ------------------------------------------------------------------------------


def directory_limited(sim: SimulatorServer, resource_units_per_second: float) -> None:
    sim.set_behaviour(rateLimit={"scope": "directory",
                                    "resourceUnitsPerSecond": resource_units_per_second})


def test_a_transitive_members_page_costs_five_resource_units(
        sim: SimulatorServer, client: httpx.Client, clock: FakeClock) -> None:
    directory_limited(sim, 10)
    first = client.get(MEMBERS, params=MEMBER_QUERY)
    assert first.status_code == 200
    assert first.headers["x-ms-resource-unit"] == "5"
    assert client.get(MEMBERS, params=MEMBER_QUERY).status_code == 200

    throttled = client.get(MEMBERS, params=MEMBER_QUERY)

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.headers["x-ms-throttle-scope"] == (
        f"Tenant_Application/ReadWrite/{SIMULATOR_APP_ID}/{TENANT}")
    assert throttled.headers["x-ms-throttle-information"] == "ResourceUnitLimitExceeded"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    # Teams routes are not in the directory's scope.
    assert {client.get(NUMBERS).status_code for _ in range(20)} == {200}
    clock.advance(0.5)  # five resource units back
    assert client.get(MEMBERS, params=MEMBER_QUERY).status_code == 200


def test_cheap_directory_reads_cost_one_resource_unit(
        sim: SimulatorServer, client: httpx.Client) -> None:
    directory_limited(sim, 5)
    assert [client.get(f"/users/{ANN}").status_code for _ in range(6)] == [200] * 5 + [429]


def test_teams_admin_429s_carry_the_throttle_headers_too(
        sim: SimulatorServer, client: httpx.Client) -> None:
    sim.set_behaviour(rateLimit={"requestsPerSecond": 1})
    assert client.get(NUMBERS).status_code == 200

    throttled = client.get(NUMBERS)

    assert throttled.status_code == 429
    assert throttled.headers["x-ms-throttle-scope"].startswith("Tenant_Application/ReadWrite/")
    assert throttled.headers["x-ms-throttle-information"] == "RequestLimitExceeded"
    assert "x-ms-resource-unit" not in throttled.headers


def test_behaviour_changes_through_the_control_route(
        sim: SimulatorServer, client: httpx.Client, control: httpx.Client) -> None:
    response = control.post("/_simulator/behaviour", json={
        "rateLimit": {"scope": "directory", "resourceUnitsPerSecond": 5}})
    assert response.status_code == 200
    assert client.get(MEMBERS, params=MEMBER_QUERY).status_code == 200
    assert client.get(MEMBERS, params=MEMBER_QUERY).status_code == 429
    assert sim.set_behaviour().operation_body_shape == "root"  # other knobs kept

    bad = control.post("/_simulator/behaviour", json={
        "rateLimit": {"scope": "directory", "requestsPerSecond": 5}})
    assert bad.status_code == 400
    assert "resourceUnitsPerSecond" in bad.json()["error"]["message"]
    assert control.post("/_simulator/behaviour", json=[1]).status_code == 400


@pytest.mark.parametrize("limit", [
    {"scope": "directory", "requestsPerSecond": 5},
    {"scope": "teamsAdmin", "resourceUnitsPerSecond": 5},
    {"scope": "directory"},
])
def test_a_rate_limit_counts_in_its_scope_unit(limit: dict[str, Any]) -> None:
    with pytest.raises(ScenarioError, match=r"behaviour\.rateLimit"):
        parse_scenario(granting(None, rateLimit=limit))
