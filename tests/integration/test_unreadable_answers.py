"""A body the app cannot read is an error, never "nothing there" (issue 11, item 11).

Every route the app reads, served by the simulator and then cut short on the way back (a field
the app needs removed, as Graph's shortened documentation examples do): each adapter raises
``UnreadableAnswerError`` — a temporary, classified error — naming the route and what was
missing, never a ``KeyError`` and never an empty answer. And the documented single-object
``value`` of ``numberAssignments`` is read, deliberately, as a one-item list.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from graph_simulator import SimulatorServer, parse_scenario
from local_runner.session import SIMULATOR_TOKEN
from shared.adapters.graph.client import build_graph_client, close_graph_transport
from shared.adapters.graph.credentials import GraphCredentials
from shared.adapters.graph.delta import GraphDirectoryDelta
from shared.adapters.graph.directory import GraphUserReader, GraphVoiceGroupDirectory
from shared.adapters.graph.numbers import GraphTeamsNumbers
from shared.adapters.graph.policies import GraphPolicies
from shared.adapters.graph.user_configurations import GraphUserConfigurations
from shared.config import GraphAuth, GraphSettings, NumberType
from shared.core.errors import TemporaryError, UnreadableAnswerError
from shared.core.records import TeamsNumber
from tests.integration.scenario_builder import build_scenario, user_id

ANN = user_id("ann")  # in the voice group, has ANNS_NUMBER
QUEUE = user_id("queue")  # a resource account outside the group, has QUEUE_NUMBER
ANNS_NUMBER = "+31855363011"
QUEUE_NUMBER = "+31855363050"
FREE_NUMBER = "+31855363099"
POLICY_TYPE, POLICY_NAME, POLICY_ID = "CallingLineIdentity", "MainNumber-Contoso", "Q2FsbGluZw"
Reshape = Callable[[dict[str, Any]], None]


def _scenario(**behaviour: Any) -> Any:
    data: dict[str, Any] = build_scenario(
        [("ann", [ANNS_NUMBER]), ("queue", [])],
        existing={ANNS_NUMBER: "ann", QUEUE_NUMBER: "queue"},
        behaviour={"operationSeconds": 0, **behaviour},
    ).model_dump(by_alias=True, mode="json")
    data["groups"][0]["members"].remove(QUEUE)
    data["numberAssignments"].append(
        {"telephoneNumber": FREE_NUMBER, "numberType": "directRouting"})
    data["policies"] = [{"type": POLICY_TYPE, "name": POLICY_NAME, "id": POLICY_ID}]
    return parse_scenario(data)


class ReshapingTransport(httpx.AsyncHTTPTransport):
    """The real transport; an answer to a request whose URL contains ``where`` is handed to
    ``reshape`` (which edits the decoded JSON in place) before the SDK sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.where: str | None = None
        self.reshape: Reshape | None = None
        self.reshaped = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; reshape the answer when it matches."""
        response = await super().handle_async_request(request)
        url = httpx.URL(str(request.url)).path + "?" + request.url.query.decode()
        if self.where is None or self.reshape is None or self.where not in url:
            return response
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
        body = json.loads(raw)
        self.reshape(body)
        self.reshaped += 1
        headers = [(name, value) for name, value in response.headers.items()
                   if name.lower() not in {"content-length", "content-encoding"}]
        return httpx.Response(response.status_code, headers=headers,
                              content=json.dumps(body).encode(), request=request)


@dataclass
class Graph:
    """The app's adapters on one client whose answers the test can cut short."""

    client: GraphServiceClient
    transport: ReshapingTransport
    base_url: str

    def cut(self, where: str, reshape: Reshape) -> None:
        self.transport.where, self.transport.reshape = where, reshape

    @property
    def numbers(self) -> GraphTeamsNumbers:
        return GraphTeamsNumbers(self.client, number_type=NumberType.DIRECT_ROUTING,
                                 poll_interval_seconds=0.01, operation_timeout_seconds=5)


@pytest.fixture
async def graph(simulator: SimulatorServer) -> AsyncIterator[Graph]:
    simulator.load_scenario(_scenario())
    simulator.clear_requests()
    settings = GraphSettings(base_url=simulator.base_url, auth=GraphAuth.STATIC_TOKEN,
                             static_token=SIMULATOR_TOKEN, max_retries=0)
    transport = ReshapingTransport()
    # What shared.adapters.graph.client.graph_http_client builds, over the reshaping transport.
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(30.0)),
        options={RetryHandlerOption.get_key(): RetryHandlerOption(max_retries=0)},
    )
    try:
        yield Graph(build_graph_client(
            settings, GraphCredentials(settings).auth_provider("tenant"), http
        ), transport, simulator.base_url)
    finally:
        await close_graph_transport(http)


def _first_item_without(name: str) -> Reshape:
    def reshape(body: dict[str, Any]) -> None:
        value = body["value"]
        item = value if isinstance(value, dict) else value[0]
        del item[name]
    return reshape


def _without(name: str) -> Reshape:
    def reshape(body: dict[str, Any]) -> None:
        entity = body.get("value", body)
        del entity[name]
    return reshape


def _first_member_delta_without_id(body: dict[str, Any]) -> None:
    del body["value"][0]["members@delta"][0]["id"]


def _first_policy_without_its_id(body: dict[str, Any]) -> None:
    del body["effectivePolicyAssignments"][0]["policyAssignment"]["policyId"]


async def _members(graph: Graph) -> object:
    group = _scenario().tenant.voice_group_id
    return await GraphVoiceGroupDirectory(graph.client).read_members(group)


async def _user(graph: Graph) -> object:
    return await GraphUserReader(graph.client).read_user(ANN)


async def _users_delta(graph: Graph) -> object:
    select = "id,userPrincipalName,businessPhones,accountEnabled"
    link = f"{graph.base_url}/users/delta()?$select={select}"
    return await GraphDirectoryDelta(graph.client).user_changes(link)


async def _groups_delta(graph: Graph) -> object:
    group = _scenario().tenant.voice_group_id
    link = f"{graph.base_url}/groups/delta()?$select=members&$filter=id%20eq%20%27{group}%27"
    return await GraphDirectoryDelta(graph.client).group_changes(link)


async def _list_numbers(graph: Graph) -> object:
    return await graph.numbers.list_assignments()


async def _find_number(graph: Graph) -> object:
    return await graph.numbers.find_number(ANNS_NUMBER)


async def _configuration(graph: Graph) -> object:
    return await GraphUserConfigurations(graph.client).read(ANN)


async def _operation(graph: Graph) -> object:
    return await graph.numbers.read_operation(
        await graph.numbers.assign_number(FREE_NUMBER, ANN)
    )


async def _policy_id(graph: Graph) -> object:
    return await GraphPolicies(graph.client).policy_id(POLICY_TYPE, POLICY_NAME)


async def _effective_policies(graph: Graph) -> object:
    # The grant's own answer is not cut (its URL is not a userConfigurations one).
    await GraphPolicies(graph.client).assign(ANN, POLICY_TYPE, POLICY_ID)
    return await _configuration(graph)


@pytest.mark.parametrize(
    ("read", "where", "reshape", "route", "problem"),
    [
        pytest.param(_members, "/transitiveMembers/", _first_item_without("id"),
                     "GET /groups/{id}/transitiveMembers/graph.user", "user 0 has no 'id'",
                     id="transitive members"),
        pytest.param(_user, f"/users/{ANN}", _without("id"), "GET /users/{id}",
                     "user 0 has no 'id'", id="users/{id}"),
        pytest.param(_users_delta, "/users/delta", _first_item_without("id"),
                     "GET /users/delta", "user 0 has no 'id'", id="users/delta"),
        pytest.param(_groups_delta, "/groups/delta", _first_member_delta_without_id,
                     "GET /groups/delta", "members@delta[0] has no 'id'", id="groups/delta"),
        pytest.param(_list_numbers, "/numberAssignments?", _first_item_without("telephoneNumber"),
                     "GET /admin/teams/telephoneNumberManagement/numberAssignments",
                     "number 0 has no 'telephoneNumber'", id="numberAssignments number"),
        pytest.param(_list_numbers, "/numberAssignments?",
                     _first_item_without("assignmentTargetId"),
                     "GET /admin/teams/telephoneNumberManagement/numberAssignments",
                     "has no 'assignmentTargetId'", id="numberAssignments target"),
        pytest.param(_find_number, "$filter", _first_item_without("telephoneNumber"),
                     "numberAssignments?$filter=telephoneNumber eq",
                     "number 0 has no 'telephoneNumber'", id="numberAssignments filtered"),
        pytest.param(_configuration, "/userConfigurations/", _without("id"),
                     "GET /admin/teams/userConfigurations/{id}",
                     "the configuration has no 'id'", id="userConfigurations id"),
        pytest.param(_configuration, "/userConfigurations/", _without("telephoneNumbers"),
                     "GET /admin/teams/userConfigurations/{id}", "has no 'telephoneNumbers'",
                     id="userConfigurations numbers"),
        pytest.param(_effective_policies, "/userConfigurations/", _first_policy_without_its_id,
                     "GET /admin/teams/userConfigurations/{id}",
                     "effectivePolicyAssignments[0].policyAssignment has no 'policyId'",
                     id="effective policy assignments"),
        pytest.param(_operation, "/operations", _without("status"),
                     "GET /admin/teams/telephoneNumberManagement/operations/{id}",
                     "the operation has no 'status'", id="operation GET"),
        pytest.param(_policy_id, "getPolicyId", _first_item_without("policyId"),
                     "GET /admin/teams/policy/getPolicyId(type,name)",
                     "policy 0 has no 'policyId'", id="getPolicyId"),
    ],
)
async def test_a_missing_field_is_a_classified_error_naming_the_route(
    graph: Graph,
    read: Callable[[Graph], Awaitable[object]],
    where: str,
    reshape: Reshape,
    route: str,
    problem: str,
) -> None:
    graph.cut(where, reshape)

    with pytest.raises(UnreadableAnswerError) as raised:
        await read(graph)

    assert graph.transport.reshaped >= 1
    assert isinstance(raised.value, TemporaryError)  # classified: retried, never acted on
    assert route in raised.value.route
    assert problem in raised.value.problem
    assert route in raised.value.message
    assert problem in raised.value.message


@pytest.mark.parametrize(
    ("read", "where", "reshape", "problem"),
    [
        pytest.param(_members, "/transitiveMembers/",
                     lambda body: body.__setitem__("value", {"id": ANN}),
                     "'value' is an object, not a list", id="members value object"),
        pytest.param(_users_delta, "/users/delta", lambda body: body.pop("value"),
                     "the collection has no 'value'", id="delta without value"),
        pytest.param(_list_numbers, "/numberAssignments?",
                     lambda body: body.__setitem__("value", "none"),
                     "'value' is a string, not a list", id="numbers value text"),
        pytest.param(_find_number, "$filter",
                     lambda body: body["value"][0].__setitem__("telephoneNumber", FREE_NUMBER),
                     f"asked for {ANNS_NUMBER}, the answer lists {FREE_NUMBER}",
                     id="find answers another number"),
    ],
)
async def test_a_collection_that_is_not_one_is_a_classified_error(
    graph: Graph,
    read: Callable[[Graph], Awaitable[object]],
    where: str,
    reshape: Reshape,
    problem: str,
) -> None:
    graph.cut(where, reshape)

    with pytest.raises(UnreadableAnswerError) as raised:
        await read(graph)

    assert problem in raised.value.problem


@pytest.mark.parametrize("shape", ["list", "object"])
async def test_numbers_are_read_in_both_value_shapes(
    graph: Graph, simulator: SimulatorServer, shape: str
) -> None:
    simulator.set_behaviour(number_assignments_value_shape=shape)

    found = await graph.numbers.find_number(ANNS_NUMBER)
    missing = await graph.numbers.find_number("+31855363098")

    assert found == TeamsNumber(ANNS_NUMBER, ANN, "activated")
    assert missing is None  # an empty list is Teams having no record, in either shape
    assert await graph.numbers.find_number(QUEUE_NUMBER) == TeamsNumber(
        QUEUE_NUMBER, QUEUE, "activated")
    assert (await graph.numbers.list_assignments()) == {ANNS_NUMBER: ANN, QUEUE_NUMBER: QUEUE}
