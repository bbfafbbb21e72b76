"""The /admin/teams rate limit, injected latency and injected operation failures."""

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from graph_simulator import (
    ROUTE_NAMES,
    TEAMS_ADMIN_ROUTES,
    GraphRequest,
    ScenarioError,
    SimulatorServer,
    parse_scenario,
)
from tests.simulator.support import (
    ANNS_DR,
    AUTH,
    BOB,
    CONFIGURATIONS,
    EXAMPLE,
    FREE_DR,
    NUMBERS,
    VOICE_GROUP,
    FakeClock,
    example,
    parse,
    run_assign,
    unexpected_data,
)

DETAIL = "Service is unavailable. Please try again"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[SimulatorServer]:
    with SimulatorServer(EXAMPLE, clock=clock) as server:
        yield server


def limited(sim: SimulatorServer, requests_per_second: float) -> None:
    sim.load_scenario(parse_scenario(example(
        rateLimit={"requestsPerSecond": requests_per_second, "scope": "teamsAdmin"})))


def test_new_routes_are_named_and_teams_admin_routes_are_a_subset() -> None:
    assert set(ROUTE_NAMES) >= {
        "getUser", "getUserConfiguration", "listUserConfigurations", "getPolicyId",
        "assignPolicy", "unassignPolicy", "usersDelta", "groupsDelta"}
    assert TEAMS_ADMIN_ROUTES.issubset(ROUTE_NAMES)
    assert "usersDelta" not in TEAMS_ADMIN_ROUTES


# -- rate limit ----------------------------------------------------------------------------


def test_no_rate_limit_by_default(client: httpx.Client) -> None:
    assert {client.get(NUMBERS).status_code for _ in range(50)} == {200}


def test_rate_limit_is_a_token_bucket_over_teams_admin_routes(
        sim: SimulatorServer, client: httpx.Client, clock: FakeClock) -> None:
    limited(sim, 2)
    assert client.get(NUMBERS).status_code == 200
    assert client.get(f"{CONFIGURATIONS}/{BOB}").status_code == 200
    throttled = client.get(NUMBERS)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    error = parse(ODataError, throttled.json())
    assert error.error.code == "TooManyRequests"
    assert unexpected_data(error) == {}
    # Directory routes are not in the teamsAdmin scope.
    for _ in range(5):
        assert client.get("/users/delta").status_code == 200
    clock.advance(0.5)  # half a second refills one request
    assert client.get(NUMBERS).status_code == 200
    assert client.get(NUMBERS).status_code == 429
    clock.advance(1.0)
    assert [client.get(NUMBERS).status_code for _ in range(3)] == [200, 200, 429]
    counts = sim.request_counts()
    assert counts["listNumberAssignments"] == 7
    assert counts["getUserConfiguration"] == 1


def test_retry_after_is_whole_seconds_until_a_request_fits(
        sim: SimulatorServer, client: httpx.Client, clock: FakeClock) -> None:
    limited(sim, 0.1)  # one request every ten seconds
    assert client.get(NUMBERS).status_code == 200
    assert client.get(NUMBERS).headers["Retry-After"] == "10"
    clock.advance(7.5)
    assert client.get(NUMBERS).headers["Retry-After"] == "3"
    clock.advance(2.5)
    assert client.get(NUMBERS).status_code == 200


def test_throttled_assign_changes_nothing(sim: SimulatorServer, client: httpx.Client) -> None:
    limited(sim, 1)
    assert client.get(NUMBERS).status_code == 200
    response = client.post(f"{NUMBERS}/assignNumber", json={
        "telephoneNumber": FREE_DR, "assignmentTargetId": BOB, "numberType": "directRouting"})
    assert response.status_code == 429
    assert sim.number_assignments()[FREE_DR] is None
    assert sim.request_counts()["assignNumber"] == 1


def test_rate_limit_bad_values_are_refused() -> None:
    for value in (0, -1, "fast"):
        with pytest.raises(ScenarioError, match=r"behaviour\.rateLimit\.requestsPerSecond"):
            parse_scenario(example(rateLimit={"requestsPerSecond": value}))
    with pytest.raises(ScenarioError, match=r"behaviour\.rateLimit\.scope"):
        parse_scenario(example(rateLimit={"requestsPerSecond": 1, "scope": "all"}))


def test_new_routes_accept_status_faults(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.inject_fault("getPolicyId", 503, retry_after_seconds=2)
    response = client.get("/admin/teams/policy/getPolicyId(type='a',name='b')")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    sim.inject_fault("groupsDelta", 500)
    assert client.get("/groups/delta").status_code == 500


# -- latency -------------------------------------------------------------------------------


def test_latency_applies_to_the_next_count_answers(sim: SimulatorServer) -> None:
    sim.inject_latency("getUser", 300, count=2)
    request = GraphRequest("GET", f"/v1.0/users/{BOB}", "", AUTH)
    delays = [sim.simulator.handle(request).delay_seconds for _ in range(3)]
    assert delays == [0.3, 0.3, 0.0]
    other = GraphRequest("GET", "/v1.0/users/delta", "", AUTH)
    assert sim.simulator.handle(other).delay_seconds == 0.0


def test_latency_delays_the_http_answer(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.inject_latency("listTransitiveMemberUsers", 250)
    started = time.monotonic()
    response = client.get(f"/groups/{VOICE_GROUP}/transitiveMembers/graph.user",
                          params={"$count": "true"}, headers={"ConsistencyLevel": "eventual"})
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.25


def test_a_slow_answer_still_carries_out_the_request(sim: SimulatorServer,
                                                     control: httpx.Client) -> None:
    response = control.post("/_simulator/faults/latency",
                            json={"route": "assignNumber", "latencyMs": 800})
    assert response.status_code == 200
    with (httpx.Client(base_url=sim.base_url, headers=AUTH, timeout=0.1) as impatient,
          pytest.raises(httpx.ReadTimeout)):
        impatient.post(f"{NUMBERS}/assignNumber", json={
            "telephoneNumber": FREE_DR, "assignmentTargetId": BOB,
            "numberType": "directRouting"})
    # The client gave up, but Teams had already accepted the assignment.
    deadline = time.monotonic() + 10
    while sim.number_assignments()[FREE_DR] is None and time.monotonic() < deadline:
        pass  # the server thread answers within microseconds; this only covers a loaded box
    assert sim.number_assignments()[FREE_DR] == BOB


@pytest.mark.parametrize("body", [
    {"route": "listUsers", "latencyMs": 10},
    {"route": "getUser", "latencyMs": -1},
    {"route": "getUser"},
    {"route": "getUser", "latencyMs": 10, "count": 0},
])
def test_bad_latency_bodies_are_refused(control: httpx.Client, body: dict[str, Any]) -> None:
    response = control.post("/_simulator/faults/latency", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequest"


# -- operation failures --------------------------------------------------------------------


def test_injected_assign_failure_ends_the_operation_failed(sim: SimulatorServer,
                                                           client: httpx.Client) -> None:
    sim.inject_operation_failure("assignNumber", DETAIL)
    final = run_assign(client, FREE_DR, BOB)
    assert final["status"] == "failed"
    assert final["numbers"][0]["statusDetail"] == DETAIL
    assert sim.number_assignments()[FREE_DR] is None
    assert client.get(f"{CONFIGURATIONS}/{BOB}").json()["isEnterpriseVoiceEnabled"] is False
    assert run_assign(client, FREE_DR, BOB)["status"] == "succeeded"


def test_injected_failures_count_and_apply_in_sync_mode(sim: SimulatorServer,
                                                        client: httpx.Client,
                                                        control: httpx.Client) -> None:
    sim.load_scenario(parse_scenario(example(assignErrors="sync")))
    response = control.post("/_simulator/faults/operation", json={
        "route": "assignNumber", "statusDetail": DETAIL, "count": 2})
    assert response.status_code == 200
    outcomes = [run_assign(client, FREE_DR, BOB) for _ in range(3)]
    assert [(o["status"], o["numbers"][0]["statusDetail"]) for o in outcomes] == [
        ("failed", DETAIL), ("failed", DETAIL), ("succeeded", None)]


def test_injected_unassign_failure_keeps_the_number(sim: SimulatorServer,
                                                    client: httpx.Client) -> None:
    sim.inject_operation_failure("unassignNumber", "Number is being ported")
    response = client.post(f"{NUMBERS}/unassignNumber", json={
        "telephoneNumber": ANNS_DR, "numberType": "directRouting"})
    operation: dict[str, Any] = {}
    for _ in range(5):
        operation = client.get(response.headers["Location"]).json()
    assert operation["status"] == "failed"
    assert operation["numbers"][0]["statusDetail"] == "Number is being ported"
    assert sim.number_assignments()[ANNS_DR] is not None


@pytest.mark.parametrize("body", [
    {"route": "getUser", "statusDetail": DETAIL},
    {"route": "assignNumber", "statusDetail": ""},
    {"route": "assignNumber"},
])
def test_bad_operation_failure_bodies_are_refused(control: httpx.Client,
                                                  body: dict[str, Any]) -> None:
    assert control.post("/_simulator/faults/operation", json=body).status_code == 400


def test_load_scenario_clears_latency_and_operation_failures(sim: SimulatorServer,
                                                             client: httpx.Client) -> None:
    sim.inject_latency("getUser", 5000)
    sim.inject_operation_failure("assignNumber", DETAIL)
    sim.load_scenario(EXAMPLE)
    request = GraphRequest("GET", f"/v1.0/users/{BOB}", "", AUTH)
    assert sim.simulator.handle(request).delay_seconds == 0.0
    assert run_assign(client, FREE_DR, BOB)["status"] == "succeeded"
