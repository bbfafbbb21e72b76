"""users/delta and groups/delta: rounds, paging, changes, state tokens and their expiry."""

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.groups.delta.delta_get_response import (
    DeltaGetResponse as GroupsDeltaResponse,
)
from msgraph.generated.users.delta.delta_get_response import (
    DeltaGetResponse as UsersDeltaResponse,
)
from msgraph.generated.users.delta.delta_request_builder import DeltaRequestBuilder

from graph_simulator import SimulatorServer, parse_directory, parse_scenario
from tests.simulator.support import (
    ANN,
    BOB,
    CAROL,
    DAVE,
    ERIN,
    EXAMPLE,
    SALES_GROUP,
    VOICE_GROUP,
    FakeClock,
    directory_of,
    example,
    graph_client,
    parse,
    unexpected_data,
    user_entry,
)

SELECT = "id,userPrincipalName,businessPhones,accountEnabled"
USER = "#microsoft.graph.user"
GROUP = "#microsoft.graph.group"
SEVEN_DAYS = 7 * 24 * 3600


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Iterator[SimulatorServer]:
    with SimulatorServer(EXAMPLE, clock=clock) as server:
        yield server


def read_round(client: httpx.Client, first: httpx.Response) -> tuple[list[dict[str, Any]], str]:
    """Follow nextLinks to the deltaLink; returns every object of the round and the deltaLink."""
    assert first.status_code == 200, first.text
    body = first.json()
    objects: list[dict[str, Any]] = list(body["value"])
    while "@odata.nextLink" in body:
        assert "@odata.deltaLink" not in body
        response = client.get(body["@odata.nextLink"])
        assert response.status_code == 200, response.text
        body = response.json()
        objects += body["value"]
    link: str = body["@odata.deltaLink"]
    return objects, link


def users_round(client: httpx.Client, **params: str) -> tuple[list[dict[str, Any]], str]:
    return read_round(client, client.get("/users/delta", params={"$select": SELECT, **params}))


def voice_group_round(client: httpx.Client) -> tuple[list[dict[str, Any]], str]:
    return read_round(client, client.get("/groups/delta()", params={
        "$select": "members", "$filter": f"id eq '{VOICE_GROUP}'"}))


def change_directory(sim: SimulatorServer, data: dict[str, Any]) -> None:
    sim.replace_directory(parse_directory(directory_of(data)))


# -- users ---------------------------------------------------------------------------------


def test_first_round_pages_every_user_with_absolute_links(sim: SimulatorServer,
                                                          client: httpx.Client) -> None:
    sim.load_scenario(parse_scenario(example(defaultPageSize=2)))
    first = client.get("/users/delta()", params={"$select": SELECT})
    assert first.status_code == 200
    body = first.json()
    assert body["@odata.context"] == f"{sim.base_url}/$metadata#users({SELECT})"
    assert len(body["value"]) == 2
    next_link = body["@odata.nextLink"]
    assert next_link.startswith(f"{sim.base_url}/users/delta()?")
    assert set(parse_qs(urlsplit(next_link).query)) == {"$skiptoken"}
    users, delta_link = read_round(client, first)
    assert [user["id"] for user in users] == [ANN, BOB, CAROL, DAVE, ERIN]
    assert users[3] == {"id": DAVE, "userPrincipalName": "dave@contoso.example",
                        "businessPhones": ["+31855363014"], "accountEnabled": False}
    assert delta_link.startswith(f"{sim.base_url}/users/delta()?$deltatoken=")
    assert sim.request_counts() == {"usersDelta": 3}


def test_without_select_the_default_properties_are_returned(client: httpx.Client) -> None:
    users, _ = read_round(client, client.get("/users/delta"))
    assert "accountEnabled" not in users[0]
    assert users[0]["displayName"] == "Ann Andersen"


def test_no_changes_gives_an_empty_value_and_a_new_delta_link(client: httpx.Client) -> None:
    _, link = users_round(client)
    response = client.get(link)
    assert response.json()["value"] == []
    assert response.json()["@odata.deltaLink"].startswith(link.split("$deltatoken=")[0])


def test_later_round_returns_changed_added_and_removed_users(sim: SimulatorServer,
                                                             client: httpx.Client) -> None:
    _, link = users_round(client)
    data = example()
    user_entry(data, BOB)["businessPhones"] = ["+31855363012"]
    user_entry(data, ANN)["displayName"] = "Ann A."  # not selected: not a tracked change
    data["users"] = [user for user in data["users"] if user["id"] != CAROL]
    data["groups"][1]["members"].remove(CAROL)
    data["users"].append({"id": "0f3a5c2e-0000-4000-8000-000000000006",
                          "userPrincipalName": "finn@contoso.example"})
    change_directory(sim, data)
    changes, next_link = read_round(client, client.get(link))
    assert changes == [
        {"id": BOB, "userPrincipalName": "bob@contoso.example",
         "businessPhones": ["+31855363012"], "accountEnabled": True},
        {"id": "0f3a5c2e-0000-4000-8000-000000000006",
         "userPrincipalName": "finn@contoso.example", "businessPhones": [],
         "accountEnabled": True},
        {"id": CAROL, "@removed": {"reason": "deleted"}},
    ]
    assert read_round(client, client.get(next_link))[0] == []
    # A delta link can be replayed: it still means "changes since then".
    assert len(read_round(client, client.get(link))[0]) == 3


def test_removed_reason_can_be_changed(sim: SimulatorServer, client: httpx.Client) -> None:
    data = example(deltaRemovedReason="changed")
    sim.load_scenario(parse_scenario(data))
    _, link = users_round(client)
    data["users"] = [user for user in data["users"] if user["id"] != ERIN]
    change_directory(sim, data)
    assert read_round(client, client.get(link))[0] == [
        {"id": ERIN, "@removed": {"reason": "changed"}}]


def test_prefer_return_minimal_returns_only_changed_properties(sim: SimulatorServer,
                                                               client: httpx.Client) -> None:
    _, link = users_round(client)
    data = example()
    user_entry(data, BOB)["accountEnabled"] = False
    change_directory(sim, data)
    response = client.get(link, headers={"Prefer": "return=minimal"})
    assert response.json()["value"] == [{"id": BOB, "accountEnabled": False}]


def test_deltatoken_latest_starts_from_now(sim: SimulatorServer, client: httpx.Client) -> None:
    response = client.get("/users/delta", params={"$select": SELECT, "$deltatoken": "latest"})
    assert response.status_code == 200
    assert response.json()["value"] == []
    link = response.json()["@odata.deltaLink"]
    data = example()
    user_entry(data, ANN)["businessPhones"] = []
    change_directory(sim, data)
    changes, _ = read_round(client, client.get(link))
    assert [user["id"] for user in changes] == [ANN]


def test_a_round_is_stable_while_the_directory_changes(sim: SimulatorServer,
                                                       client: httpx.Client) -> None:
    data = example(defaultPageSize=2)
    sim.load_scenario(parse_scenario(data))
    first = client.get("/users/delta", params={"$select": SELECT}).json()
    user_entry(data, ERIN)["businessPhones"] = ["+31855363016"]
    change_directory(sim, data)
    users, link = read_round(client, client.get(first["@odata.nextLink"]))
    erin = next(user for user in users if user["id"] == ERIN)
    assert erin["businessPhones"] == ["+31855363015"]  # as it was when the round started
    changes, _ = read_round(client, client.get(link))
    assert changes == [{**erin, "businessPhones": ["+31855363016"]}]


@pytest.mark.parametrize("params", [
    {"$top": "10"}, {"$expand": "manager"}, {"$orderby": "displayName"},
    {"$filter": f"id eq '{ANN}'"}, {"$select": "nickname"},
    {"$skiptoken": "not-a-token"}, {"$deltatoken": "not-a-token"},
])
def test_unsupported_options_and_bad_tokens_are_400(client: httpx.Client,
                                                    params: dict[str, str]) -> None:
    assert client.get("/users/delta", params=params).status_code == 400


def test_query_options_are_not_repeated_with_a_token(client: httpx.Client) -> None:
    _, link = users_round(client)
    assert client.get(f"{link}&$select=id").status_code == 400
    token = parse_qs(urlsplit(link).query)["$deltatoken"][0]
    assert client.get("/users/delta", params={"$deltatoken": token,
                                              "$skiptoken": token}).status_code == 400
    # A users token is not a groups token.
    assert client.get("/groups/delta", params={"$deltatoken": token}).status_code == 400


# -- expiry --------------------------------------------------------------------------------


def test_token_expires_after_seven_days_with_410_and_a_fresh_location(
        sim: SimulatorServer, client: httpx.Client, clock: FakeClock) -> None:
    _, link = users_round(client)
    clock.advance(SEVEN_DAYS - 1)
    assert client.get(link).status_code == 200
    _, link = users_round(client)
    clock.advance(SEVEN_DAYS + 1)
    gone = client.get(link)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "syncStateNotFound"
    location = gone.headers["Location"]
    assert location.startswith(f"{sim.base_url}/users/delta?")
    assert parse_qs(urlsplit(location).query) == {"$select": [SELECT]}
    users, _ = read_round(client, client.get(location))
    assert len(users) == 5
    assert sim.request_counts()["usersDelta"] == 5


def test_lifetime_and_error_code_are_knobs(sim: SimulatorServer, client: httpx.Client,
                                           clock: FakeClock) -> None:
    sim.load_scenario(parse_scenario(example(deltaTokenLifetimeSeconds=60,
                                             deltaGoneErrorCode="resyncRequired")))
    _, link = voice_group_round(client)
    clock.advance(61)
    gone = client.get(link)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "resyncRequired"
    query = parse_qs(urlsplit(gone.headers["Location"]).query)
    assert query == {"$select": ["members"], "$filter": [f"id eq '{VOICE_GROUP}'"]}


def test_skip_tokens_expire_from_the_start_of_their_round(sim: SimulatorServer,
                                                          client: httpx.Client,
                                                          clock: FakeClock) -> None:
    sim.load_scenario(parse_scenario(example(defaultPageSize=2, deltaTokenLifetimeSeconds=60)))
    first = client.get("/users/delta", params={"$select": SELECT}).json()
    clock.advance(30)
    second = client.get(first["@odata.nextLink"]).json()
    clock.advance(31)
    assert client.get(second["@odata.nextLink"]).status_code == 410


def test_expire_control_route_and_python_api(sim: SimulatorServer,
                                             client: httpx.Client) -> None:
    _, users_link = users_round(client)
    _, groups_link = voice_group_round(client)
    with httpx.Client(base_url=sim.url) as control:
        assert control.post("/_simulator/delta/expire").status_code == 200
        assert control.get("/_simulator/delta/expire").status_code == 405
    assert client.get(users_link).status_code == 410
    assert client.get(groups_link).status_code == 410
    _, users_link = users_round(client)
    assert client.get(users_link).status_code == 200
    sim.expire_delta_tokens()
    assert client.get(users_link).status_code == 410


def test_tokens_from_a_replaced_scenario_are_gone(sim: SimulatorServer,
                                                  client: httpx.Client) -> None:
    _, link = users_round(client)
    sim.load_scenario(parse_scenario(example()))
    assert client.get(link).status_code == 410


# -- groups --------------------------------------------------------------------------------


def test_group_delta_lists_direct_members_with_their_types(sim: SimulatorServer,
                                                           client: httpx.Client) -> None:
    groups, _ = voice_group_round(client)
    # Direct members only: Sales is a nested group, its own members are not expanded.
    assert groups == [{"id": VOICE_GROUP, "members@delta": [
        {"@odata.type": USER, "id": ANN},
        {"@odata.type": GROUP, "id": SALES_GROUP},
        {"@odata.type": USER, "id": BOB},
    ]}]
    assert sim.request_counts() == {"groupsDelta": 1}


def test_group_delta_later_round_has_only_added_and_removed_members(
        sim: SimulatorServer, client: httpx.Client) -> None:
    _, link = voice_group_round(client)
    data = example()
    data["groups"][0]["members"] = [ANN, SALES_GROUP, ERIN]  # Bob out, Erin in
    data["groups"][1]["members"] = [CAROL]  # nested changes are not direct members
    change_directory(sim, data)
    groups, link = read_round(client, client.get(link))
    assert groups == [{"id": VOICE_GROUP, "members@delta": [
        {"@odata.type": USER, "id": BOB, "@removed": {"reason": "deleted"}},
        {"@odata.type": USER, "id": ERIN},
    ]}]
    assert read_round(client, client.get(link))[0] == []


def test_group_delta_without_filter_tracks_names_and_removed_groups(
        sim: SimulatorServer, client: httpx.Client) -> None:
    first, link = read_round(client, client.get("/groups/delta",
                                                params={"$select": "displayName,members"}))
    assert [(group["id"], group["displayName"]) for group in first] == [
        (VOICE_GROUP, "EnterpriseVoiceEnabled"), (SALES_GROUP, "Sales")]
    data = example()
    data["groups"][0]["displayName"] = "Voice"
    data["groups"][0]["members"] = [ANN, BOB]
    data["groups"].pop(1)
    change_directory(sim, data)
    changes, _ = read_round(client, client.get(link))
    assert changes == [
        {"id": VOICE_GROUP, "displayName": "Voice", "members@delta": [
            {"@odata.type": GROUP, "id": SALES_GROUP, "@removed": {"reason": "deleted"}}]},
        {"id": SALES_GROUP, "@removed": {"reason": "deleted"}},
    ]


def test_group_without_members_has_no_members_delta(sim: SimulatorServer,
                                                    client: httpx.Client) -> None:
    data = example()
    data["groups"][1]["members"] = []
    sim.load_scenario(parse_scenario(data))
    groups, _ = read_round(client, client.get("/groups/delta", params={
        "$select": "members", "$filter": f"id eq '{SALES_GROUP}'"}))
    assert groups == [{"id": SALES_GROUP}]


def test_large_group_is_split_across_pages(sim: SimulatorServer, client: httpx.Client) -> None:
    data = example(defaultPageSize=2)
    extra = [f"aaaaaaaa-0000-4000-8000-{n:012d}" for n in range(5)]
    data["users"] += [{"id": uid, "userPrincipalName": f"u{n}@contoso.example"}
                      for n, uid in enumerate(extra)]
    data["groups"][0]["members"] += extra
    sim.load_scenario(parse_scenario(data))
    first = client.get("/groups/delta", params={"$select": "members",
                                                "$filter": f"id eq '{VOICE_GROUP}'"})
    fragments, _ = read_round(client, first)
    assert len(fragments) == 4  # 8 members, 2 per page: the same group four times
    assert {fragment["id"] for fragment in fragments} == {VOICE_GROUP}
    members = [entry["id"] for fragment in fragments for entry in fragment["members@delta"]]
    assert members == [ANN, SALES_GROUP, BOB, *extra]


@pytest.mark.parametrize("params", [
    {"$select": "members,mail"},
    {"$filter": "displayName eq 'Sales'"},
    {"$filter": " or ".join(f"id eq 'g{n}'" for n in range(51))},
    {"$expand": "members"},
    {"$top": "5"},
])
def test_group_delta_refuses_unsupported_queries(client: httpx.Client,
                                                 params: dict[str, str]) -> None:
    assert client.get("/groups/delta", params=params).status_code == 400


def test_group_filter_with_several_ids(client: httpx.Client) -> None:
    groups, _ = read_round(client, client.get("/groups/delta", params={
        "$select": "displayName",
        "$filter": f"id eq '{SALES_GROUP}' or id eq '{VOICE_GROUP}'"}))
    assert groups == [{"id": VOICE_GROUP, "displayName": "EnterpriseVoiceEnabled"},
                      {"id": SALES_GROUP, "displayName": "Sales"}]


# -- through the SDK -----------------------------------------------------------------------


async def test_sdk_users_delta_round_and_removed_user(sim: SimulatorServer) -> None:
    sim.load_scenario(parse_scenario(example(defaultPageSize=3)))
    async with graph_client(sim.base_url) as graph:
        query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
            select=["id", "userPrincipalName", "businessPhones", "accountEnabled"])
        page = await graph.users.delta.get(RequestConfiguration(query_parameters=query))
        users = list(page.value)
        assert page.odata_next_link is not None
        while page.odata_next_link is not None:
            page = await graph.users.delta.with_url(page.odata_next_link).get()
            users += page.value
        assert [user.id for user in users] == [ANN, BOB, CAROL, DAVE, ERIN]
        assert all(unexpected_data(user) == {} and user.additional_data == {}
                   for user in users)
        data = example()
        data["users"] = [user for user in data["users"] if user["id"] != ERIN]
        change_directory(sim, data)
        changes = await graph.users.delta.with_url(page.odata_delta_link).get()
    assert sim.request_log()[0]["path"] == "/v1.0/users/delta()"
    assert [user.id for user in changes.value] == [ERIN]
    assert changes.value[0].additional_data == {"@removed": {"reason": "deleted"}}
    assert unexpected_data(changes) == {}


def test_sdk_models_parse_group_delta_pages(sim: SimulatorServer, client: httpx.Client) -> None:
    response = client.get("/groups/delta()", params={"$select": "displayName,members"})
    model = parse(GroupsDeltaResponse, response.json())
    assert model.odata_delta_link == response.json()["@odata.deltaLink"]
    assert unexpected_data(model) == {}
    voice = model.value[0]
    assert voice.display_name == "EnterpriseVoiceEnabled"
    assert set(voice.additional_data) == {"members@delta"}
    users_page = parse(UsersDeltaResponse, client.get("/users/delta").json())
    assert unexpected_data(users_page) == {}
