"""Eventual consistency (issue 11, item 7): the member index, numberAssignments and effective
policies each lag behind a change by a number of reads, set through the scenario's `behaviour`
or `POST /_simulator/behaviour`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from graph_simulator import SimulatorServer, parse_scenario
from tests.simulator.support import (
    AUTH,
    BOB,
    CAROL,
    CLI_POLICY_ID,
    CONFIGURATIONS,
    ERIN,
    FREE_DR,
    NUMBERS,
    POLICY,
    VOICE_GROUP,
    directory_of,
    example,
    run_assign,
)

MEMBERS = f"/groups/{VOICE_GROUP}/transitiveMembers/graph.user"
NEW_DR = "+31855363098"  # not in the inventory: direct routing numbers come into being
ASSIGNMENT_TYPE = "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment"


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url,
                      headers={**AUTH, "ConsistencyLevel": "eventual"}) as http:
        yield http


def set_behaviour(control: httpx.Client, **changes: Any) -> None:
    response = control.post("/_simulator/behaviour", json=changes)
    assert response.status_code == 200, response.text


def member_ids(client: httpx.Client, top: int = 100) -> list[str]:
    """One whole read of the voice group's transitive members, page by page."""
    ids: list[str] = []
    url: str | None = MEMBERS
    params: dict[str, Any] | None = {"$count": "true", "$top": str(top), "$select": "id"}
    while url:
        body = client.get(url, params=params).json()
        ids += [user["id"] for user in body["value"]]
        url, params = body.get("@odata.nextLink"), None
    return ids


def erin_joins(sim: SimulatorServer) -> None:
    data = example()
    data["groups"][0]["members"].append(ERIN)
    sim.replace_directory(parse_scenario({**data, **directory_of(data)}))


def listed(client: httpx.Client, **params: str) -> dict[str, str | None]:
    body = client.get(NUMBERS, params=params).json()
    return {item["telephoneNumber"]: item["assignmentTargetId"] for item in body["value"]}


def effective_ids(client: httpx.Client, user_id: str) -> list[str]:
    body = client.get(f"{CONFIGURATIONS}/{user_id}").json()
    return [item["policyAssignment"]["policyId"] for item in body["effectivePolicyAssignments"]]


def test_a_joiner_is_missing_from_transitive_members_for_as_many_reads(
    sim: SimulatorServer, client: httpx.Client, control: httpx.Client
) -> None:
    set_behaviour(control, memberLagReads=2)
    before = member_ids(client)
    erin_joins(sim)

    # A read of two pages counts once; the members from before are there all along.
    reads = [member_ids(client, top=2) for _ in range(3)]

    assert [ERIN in read for read in reads] == [False, False, True]
    assert all(set(before) <= set(read) for read in reads)


def test_the_delta_query_sees_a_joiner_at_once(
    sim: SimulatorServer, client: httpx.Client, control: httpx.Client
) -> None:
    set_behaviour(control, memberLagReads=5)
    link = client.get("/groups/delta", params={"$deltatoken": "latest",
                                               "$select": "members"}).json()
    erin_joins(sim)

    changes = client.get(link["@odata.deltaLink"]).json()["value"]

    joined = [member["id"] for group in changes for member in group.get("members@delta", [])
              if "@removed" not in member]
    assert ERIN in joined
    assert ERIN not in member_ids(client)


def test_a_new_assignment_shows_in_number_assignments_only_after_as_many_requests(
    sim: SimulatorServer, client: httpx.Client, control: httpx.Client
) -> None:
    set_behaviour(control, numberAssignmentsLagReads=3)
    assert run_assign(client, FREE_DR, BOB)["status"] == "succeeded"
    assert run_assign(client, NEW_DR, CAROL)["status"] == "succeeded"

    # Every numberAssignments request counts: a list, a filtered list, a single GET.
    first = listed(client)
    filtered = listed(client, **{"$filter": f"telephoneNumber eq '{FREE_DR}'"})
    single = client.get(f"{NUMBERS}/{_id(client, FREE_DR)}")
    last = listed(client)

    assert first[FREE_DR] is None  # inventory: listed as it was, unassigned
    assert NEW_DR not in first  # not inventory: not listed at all yet
    assert filtered == {FREE_DR: None}
    assert single.json()["assignmentTargetId"] == BOB  # the fourth request: caught up
    assert (last[FREE_DR], last[NEW_DR]) == (BOB, CAROL)
    # Teams itself (and the control view) had it all along.
    assert sim.number_assignments()[NEW_DR] == CAROL


def _id(client: httpx.Client, number: str) -> str:
    body = client.get(NUMBERS, params={"$filter": f"telephoneNumber eq '{number}'"}).json()
    identifier: str = body["value"][0]["id"]
    return identifier


def test_a_policy_change_shows_in_effective_policies_only_after_as_many_reads(
    client: httpx.Client, control: httpx.Client
) -> None:
    set_behaviour(control, policyLagReads=2)
    assign = {"value": [{"@odata.type": ASSIGNMENT_TYPE, "userId": BOB,
                         "policyType": "CallingLineIdentity", "policyId": CLI_POLICY_ID}]}
    assert client.post(f"{POLICY}/userAssignments/assign", json=assign).status_code == 204

    after_assign = [effective_ids(client, BOB) for _ in range(3)]
    unassign = {"value": [{"@odata.type": ASSIGNMENT_TYPE, "userId": BOB,
                           "policyType": "CallingLineIdentity"}]}
    assert client.post(f"{POLICY}/userAssignments/unassign", json=unassign).status_code == 204
    after_unassign = [effective_ids(client, BOB) for _ in range(3)]

    assert after_assign == [[], [], [CLI_POLICY_ID]]
    assert after_unassign == [[CLI_POLICY_ID], [CLI_POLICY_ID], []]


def test_the_behaviour_route_changes_only_the_fields_it_names(
    sim: SimulatorServer, client: httpx.Client, control: httpx.Client
) -> None:
    set_behaviour(control, operationSeconds=0)
    set_behaviour(control, numberAssignmentsLagReads=1)

    assert client.post(f"{NUMBERS}/assignNumber", json={
        "telephoneNumber": FREE_DR, "assignmentTargetId": BOB, "numberType": "directRouting",
    }).status_code == 202
    assert sim.number_assignments()[FREE_DR] == BOB  # operationSeconds 0 still applies: done
    assert listed(client)[FREE_DR] is None
    assert listed(client)[FREE_DR] == BOB


@pytest.mark.parametrize("body", [{"memberLagReads": -1}, {"noSuchKnob": 1}, []])
def test_the_behaviour_route_refuses_what_does_not_validate(
    control: httpx.Client, body: Any
) -> None:
    response = control.post("/_simulator/behaviour", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidRequest"
    assert "behaviour" in response.json()["error"]["message"]
