import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from graph_simulator import SimulatorServer, parse_scenario
from tests.simulator.support import EXAMPLE

VOICE_GROUP = "6b0d2c61-0000-4000-8000-0000000000a1"
ANN = "0f3a5c2e-0000-4000-8000-000000000001"
BOB = "0f3a5c2e-0000-4000-8000-000000000002"
CAROL = "0f3a5c2e-0000-4000-8000-000000000003"
DAVE = "0f3a5c2e-0000-4000-8000-000000000004"
AUTH = {"Authorization": "Bearer simulator-token"}
ADVANCED = {**AUTH, "ConsistencyLevel": "eventual"}
MEMBERS = f"/groups/{VOICE_GROUP}/transitiveMembers/graph.user"


def big_scenario(user_count: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    extra = [{"id": f"aaaaaaaa-0000-4000-8000-{n:012d}",
              "userPrincipalName": f"u{n}@contoso.example",
              "displayName": f"User {n}", "businessPhones": [f"+3185536{n:04d}"]}
             for n in range(user_count)]
    data["users"] += extra
    data["groups"][0]["members"] += [user["id"] for user in extra]
    return data



@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, headers=ADVANCED) as http:
        yield http


def test_three_pages_with_absolute_next_links(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.load_scenario(parse_scenario(big_scenario(246)))  # 250 users in the group
    params = {"$count": "true", "$select": "id,userPrincipalName", "$top": "100"}
    response = client.get(MEMBERS, params=params)
    assert response.status_code == 200
    pages = [response.json()]
    while "@odata.nextLink" in pages[-1]:
        link = pages[-1]["@odata.nextLink"]
        assert link.startswith(f"{sim.base_url}/groups/{VOICE_GROUP}/transitiveMembers/")
        query = parse_qs(urlsplit(link).query)
        assert query["$select"] == ["id,userPrincipalName"]
        assert query["$top"] == ["100"]
        assert query["$count"] == ["true"]
        assert "$skiptoken" in query
        pages.append(httpx.get(link, headers=ADVANCED).json())
    assert [len(page["value"]) for page in pages] == [100, 100, 50]
    assert pages[0]["@odata.count"] == 250
    assert all("@odata.count" not in page for page in pages[1:])
    ids = [user["id"] for page in pages for user in page["value"]]
    assert ids[:4] == [ANN, CAROL, DAVE, BOB]
    assert len(set(ids)) == 250


def test_default_page_size_comes_from_behaviour(sim: SimulatorServer,
                                                client: httpx.Client) -> None:
    data = big_scenario(120)
    data["behaviour"]["defaultPageSize"] = 50
    sim.load_scenario(parse_scenario(data))
    body = client.get(MEMBERS, params={"$count": "true"}).json()
    assert len(body["value"]) == 50
    assert "$top" not in parse_qs(urlsplit(body["@odata.nextLink"]).query)


def test_a_page_carries_at_most_max_page_size_whatever_top_asks(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    data = big_scenario(25)
    data["behaviour"]["maxPageSize"] = 10
    sim.load_scenario(parse_scenario(data))
    body = client.get(MEMBERS, params={"$count": "true", "$top": "999"}).json()
    assert len(body["value"]) == 10
    assert body["@odata.count"] == 25 + 4  # the example's own four members
    assert "@odata.nextLink" in body


@pytest.mark.parametrize("top", ["1000", "0", "ten"])
def test_page_size_outside_1_to_999_is_refused(client: httpx.Client, top: str) -> None:
    response = client.get(MEMBERS, params={"$count": "true", "$top": top})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_UnsupportedQuery"


def test_top_999_is_accepted(client: httpx.Client) -> None:
    assert client.get(MEMBERS, params={"$count": "true", "$top": "999"}).status_code == 200


def test_missing_consistency_level_on_page_two_is_refused(sim: SimulatorServer,
                                                           client: httpx.Client) -> None:
    first = client.get(MEMBERS, params={"$count": "true", "$top": "2"}).json()
    response = httpx.get(first["@odata.nextLink"], headers=AUTH)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "Request_UnsupportedQuery"
    assert "ConsistencyLevel" in error["message"]
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}


def test_missing_count_is_refused(client: httpx.Client) -> None:
    response = client.get(MEMBERS, params={"$top": "10"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "Request_UnsupportedQuery"
    assert client.get(MEMBERS, params={"$count": "false"}).status_code == 400


def test_missing_consistency_level_on_first_page_is_refused(sim: SimulatorServer) -> None:
    response = httpx.get(f"{sim.base_url}{MEMBERS}", params={"$count": "true"}, headers=AUTH)
    assert response.status_code == 400


@pytest.mark.parametrize("cast", ["graph.user", "microsoft.graph.user"])
def test_both_cast_spellings(sim: SimulatorServer, client: httpx.Client, cast: str) -> None:
    path = f"/groups/{VOICE_GROUP}/transitiveMembers/{cast}"
    response = client.get(path, params={"$count": "true", "$top": "3"})
    assert response.status_code == 200
    next_link = response.json()["@odata.nextLink"]
    assert next_link.startswith(f"{sim.base_url}{path}?")
    rest = client.get(next_link)
    assert rest.status_code == 200
    ids = [u["id"] for u in response.json()["value"] + rest.json()["value"]]
    assert ids == [ANN, CAROL, DAVE, BOB]


def test_other_casts_are_unknown_routes(client: httpx.Client) -> None:
    response = client.get(f"/groups/{VOICE_GROUP}/transitiveMembers/microsoft.graph.group",
                          params={"$count": "true"})
    assert response.status_code == 404


def test_select_returns_only_selected_properties_plus_id(client: httpx.Client) -> None:
    body = client.get(MEMBERS, params={"$count": "true",
                                       "$select": "businessPhones,accountEnabled"}).json()
    assert body["value"][1] == {"id": CAROL, "businessPhones": [], "accountEnabled": True}
    assert body["value"][2]["accountEnabled"] is False
    assert body["@odata.context"].endswith("$metadata#users(businessPhones,accountEnabled)")


def test_without_select_the_default_properties_exclude_account_enabled(
        client: httpx.Client) -> None:
    user = client.get(MEMBERS, params={"$count": "true"}).json()["value"][0]
    assert user["userPrincipalName"] == "ann@contoso.example"
    assert user["businessPhones"] == ["+31855363011"]
    assert "accountEnabled" not in user


def test_select_of_unknown_property_is_refused(client: httpx.Client) -> None:
    response = client.get(MEMBERS, params={"$count": "true", "$select": "id,telephoneNumber"})
    assert response.status_code == 400
    assert "telephoneNumber" in response.json()["error"]["message"]


def test_nested_and_cyclic_groups(sim: SimulatorServer, client: httpx.Client) -> None:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    sales = data["groups"][1]["id"]
    # Sales contains the voice group itself, and a third group contains Sales and Dave again.
    data["groups"][1]["members"] = [CAROL, VOICE_GROUP, "6b0d2c61-0000-4000-8000-0000000000a3"]
    data["groups"].append({"id": "6b0d2c61-0000-4000-8000-0000000000a3", "displayName": "Deep",
                           "members": [sales, DAVE, ANN]})
    sim.load_scenario(parse_scenario(data))
    body = client.get(MEMBERS, params={"$count": "true"}).json()
    assert [u["id"] for u in body["value"]] == [ANN, CAROL, DAVE, BOB]
    assert body["@odata.count"] == 4
    deep = client.get("/groups/6b0d2c61-0000-4000-8000-0000000000a3/transitiveMembers/graph.user",
                      params={"$count": "true"}).json()
    assert [u["id"] for u in deep["value"]] == [CAROL, ANN, BOB, DAVE]


def test_unknown_group_is_404(client: httpx.Client) -> None:
    response = client.get("/groups/nope/transitiveMembers/graph.user", params={"$count": "true"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "Request_ResourceNotFound"


def test_foreign_or_garbled_skiptoken_is_refused(client: httpx.Client) -> None:
    first = client.get(MEMBERS, params={"$count": "true", "$top": "1"}).json()
    token = parse_qs(urlsplit(first["@odata.nextLink"]).query)["$skiptoken"][0]
    sales = "/groups/6b0d2c61-0000-4000-8000-0000000000a2/transitiveMembers/graph.user"
    assert client.get(sales, params={"$count": "true", "$skiptoken": token}).status_code == 400
    assert client.get(MEMBERS, params={"$count": "true", "$skiptoken": "%%%"}).status_code == 400


def test_unsupported_query_option_is_refused(client: httpx.Client) -> None:
    response = client.get(MEMBERS, params={"$count": "true", "$orderby": "displayName"})
    assert response.status_code == 400


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic simulator-token"])
def test_bearer_token_required(sim: SimulatorServer, authorization: str | None) -> None:
    headers = {"ConsistencyLevel": "eventual"}
    if authorization:
        headers["Authorization"] = authorization
    response = httpx.get(f"{sim.base_url}{MEMBERS}", params={"$count": "true"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert sim.request_counts() == {"unauthorized": 1}


def test_custom_token() -> None:
    with SimulatorServer(EXAMPLE, token="other") as sim:
        url = f"{sim.base_url}{MEMBERS}?$count=true"
        headers = {"ConsistencyLevel": "eventual", "Authorization": "Bearer other"}
        assert httpx.get(url, headers=headers).status_code == 200
        assert httpx.get(url, headers=ADVANCED).status_code == 401


def test_double_slash_is_refused(sim: SimulatorServer) -> None:
    response = httpx.get(f"{sim.base_url}/{MEMBERS}?$count=true", headers=ADVANCED)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    assert sim.request_log()[-1]["path"] == f"/v1.0/{MEMBERS}"


def test_unknown_route_and_wrong_method(sim: SimulatorServer, client: httpx.Client) -> None:
    missing = client.get("/users")
    assert missing.status_code == 404
    assert "error" in missing.json()
    wrong = client.post(MEMBERS, params={"$count": "true"}, json={})
    assert wrong.status_code == 405
    assert sim.request_counts() == {"unknown": 1, "listTransitiveMemberUsers": 1}
