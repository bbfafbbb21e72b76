"""The simulator driven by msgraph-sdk itself: proves it accepts the forms the SDK really sends."""

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_http.middleware.options import HeadersInspectionHandlerOption, ResponseHandlerOption
from msgraph.generated.admin.teams.telephone_number_management.number_assignments.microsoft_graph_teams_administration_assign_number.assign_number_post_request_body import (  # noqa: E501
    AssignNumberPostRequestBody,
)
from msgraph.generated.admin.teams.telephone_number_management.number_assignments.microsoft_graph_teams_administration_unassign_number.unassign_number_post_request_body import (  # noqa: E501
    UnassignNumberPostRequestBody,
)
from msgraph.generated.admin.teams.telephone_number_management.number_assignments.number_assignments_request_builder import (  # noqa: E501
    NumberAssignmentsRequestBuilder,
)
from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder,
)
from msgraph.generated.models.long_running_operation_status import LongRunningOperationStatus
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.teams_administration.assignment_category import AssignmentCategory
from msgraph.generated.models.teams_administration.number_type import NumberType
from msgraph.generated.models.teams_administration.telephone_number_long_running_operation import (
    TelephoneNumberLongRunningOperation,
)
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from graph_simulator import SimulatorServer, parse_scenario
from tests.simulator.support import EXAMPLE, WALL

VOICE_GROUP = "6b0d2c61-0000-4000-8000-0000000000a1"
ANN = "0f3a5c2e-0000-4000-8000-000000000001"
BOB = "0f3a5c2e-0000-4000-8000-000000000002"
CAROL = "0f3a5c2e-0000-4000-8000-000000000003"
DAVE = "0f3a5c2e-0000-4000-8000-000000000004"
FREE_DR = "+31855363099"


class StaticToken(AccessTokenProvider):  # type: ignore[misc]  # kiota is not followed
    """Hands the simulator's token to the SDK, for 127.0.0.1 only."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: dict[str, Any] | None = None
    ) -> str:
        return self._token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator(["127.0.0.1"])



@pytest.fixture
async def graph(sim: SimulatorServer) -> AsyncIterator[Any]:
    # msgraph_core wraps the client's transport in an AsyncGraphTransport that has no aclose(),
    # so closing the AsyncClient leaks pooled sockets; keep the real transport and close it.
    transport = httpx.AsyncHTTPTransport()
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=transport))
    adapter = GraphRequestAdapter(
        BaseBearerTokenAuthenticationProvider(StaticToken("simulator-token")), client=http)
    client = GraphServiceClient(request_adapter=adapter)
    client.request_adapter.base_url = sim.base_url
    yield client
    await http.aclose()
    await transport.aclose()


def members_config(top: int) -> Any:
    query = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(
        select=["id", "userPrincipalName", "businessPhones", "accountEnabled"],
        top=top, count=True)
    config = RequestConfiguration(query_parameters=query)
    config.headers.add("ConsistencyLevel", "eventual")
    return config


async def test_transitive_members_through_the_sdk_with_paging(sim: SimulatorServer,
                                                              graph: Any) -> None:
    builder = graph.groups.by_group_id(VOICE_GROUP).transitive_members.graph_user
    page = await builder.get(members_config(top=3))
    assert page.odata_count == 4
    users = list(page.value)
    assert page.odata_next_link.startswith(sim.base_url)
    # The SDK would drop ConsistencyLevel on the next page; pass it again, as clients must.
    next_config = RequestConfiguration()
    next_config.headers.add("ConsistencyLevel", "eventual")
    second = await builder.with_url(page.odata_next_link).get(next_config)
    users += second.value
    assert second.odata_next_link is None
    assert [u.id for u in users] == [ANN, CAROL, DAVE, BOB]
    assert users[3].business_phones == ["+31 85 536 3012"]
    assert users[2].account_enabled is False
    first_request = sim.request_log()[0]
    assert first_request["path"].endswith("/transitiveMembers/graph.user")
    assert first_request["consistencyLevel"] == "eventual"


async def test_sdk_next_page_without_header_is_refused(graph: Any) -> None:
    builder = graph.groups.by_group_id(VOICE_GROUP).transitive_members.graph_user
    page = await builder.get(members_config(top=2))
    with pytest.raises(ODataError) as caught:
        await builder.with_url(page.odata_next_link).get()
    assert caught.value.response_status_code == 400
    assert caught.value.error.code == "Request_UnsupportedQuery"


async def test_sdk_top_above_999_is_an_odata_error(graph: Any) -> None:
    builder = graph.groups.by_group_id(VOICE_GROUP).transitive_members.graph_user
    with pytest.raises(ODataError) as caught:
        await builder.get(members_config(top=1000))
    assert caught.value.response_status_code == 400


async def test_fully_qualified_assign_and_operation_through_the_sdk(sim: SimulatorServer,
                                                                    graph: Any) -> None:
    sim.set_behaviour(operationSeconds=1.5)
    numbers = graph.admin.teams.telephone_number_management.number_assignments
    inspect = HeadersInspectionHandlerOption(inspect_response_headers=True)
    result = await numbers.microsoft_graph_teams_administration_assign_number.post(
        AssignNumberPostRequestBody(telephone_number=FREE_DR, assignment_target_id=BOB,
                                    number_type=NumberType.DirectRouting,
                                    assignment_category=AssignmentCategory.Primary),
        request_configuration=RequestConfiguration(options=[inspect]))
    assert result is None
    assert sim.request_log()[-1]["path"].endswith(
        "/numberAssignments/microsoft.graph.teamsAdministration.assignNumber")
    location = next(iter(inspect.response_headers.get("location")))
    operations = graph.admin.teams.telephone_number_management.operations
    # The item builder's with_url GETs the Location exactly as the simulator sent it.
    item = operations.by_telephone_number_long_running_operation_id("from-location")
    seen = []
    for _ in range(5):
        operation = await item.with_url(location).get()
        assert isinstance(operation, TelephoneNumberLongRunningOperation)
        seen.append(operation.status)
        if operation.status == LongRunningOperationStatus.Succeeded:
            break
        WALL.advance(1)  # a second passes between two reads
    assert seen == [LongRunningOperationStatus.NotStarted, LongRunningOperationStatus.Running,
                    LongRunningOperationStatus.Succeeded]
    op_id = location.rsplit("('", 1)[1].removesuffix("')")
    by_item = await operations.by_telephone_number_long_running_operation_id(op_id).get()
    assert by_item.id == op_id
    assert by_item.numbers[0].status == LongRunningOperationStatus.Succeeded
    assert sim.number_assignments()[FREE_DR] == BOB


async def test_value_shaped_operation_hides_status_from_the_sdk_model(sim: SimulatorServer,
                                                                       graph: Any) -> None:
    data = json.loads(EXAMPLE.read_text())
    data["behaviour"]["operationBodyShape"] = "value"
    data["behaviour"]["operationSeconds"] = 2
    sim.load_scenario(parse_scenario(data))
    numbers = graph.admin.teams.telephone_number_management.number_assignments
    inspect = HeadersInspectionHandlerOption(inspect_response_headers=True)
    await numbers.microsoft_graph_teams_administration_unassign_number.post(
        UnassignNumberPostRequestBody(telephone_number="+31855363011",
                                      number_type=NumberType.DirectRouting),
        request_configuration=RequestConfiguration(options=[inspect]))
    location = next(iter(inspect.response_headers.get("location")))
    operations = graph.admin.teams.telephone_number_management.operations
    item = operations.by_telephone_number_long_running_operation_id("from-location")
    typed = await item.with_url(location).get()
    assert typed.status is None
    assert typed.additional_data["value"]["status"] == "notStarted"
    WALL.advance(1)
    raw = await item.with_url(location).get(RequestConfiguration(
        options=[ResponseHandlerOption(NativeResponseHandler())]))
    assert raw.json()["value"]["status"] == "running"


async def test_filter_through_the_sdk_matches(sim: SimulatorServer, graph: Any) -> None:
    query = NumberAssignmentsRequestBuilder.NumberAssignmentsRequestBuilderGetQueryParameters(
        filter="telephoneNumber eq '+31855363011'", top=1000)
    page = await graph.admin.teams.telephone_number_management.number_assignments.get(
        RequestConfiguration(query_parameters=query))
    assert [item.assignment_target_id for item in page.value] == [ANN]
    assert page.value[0].additional_data == {}
    assert "%2B31855363011" in sim.request_log()[-1]["query"]


async def test_sdk_default_base_url_double_slash_is_refused(sim: SimulatorServer,
                                                            graph: Any) -> None:
    graph.request_adapter.base_url = f"{sim.base_url}/"
    with pytest.raises(ODataError) as caught:
        await graph.admin.teams.telephone_number_management.number_assignments.get()
    assert caught.value.response_status_code == 400
    assert "//admin" in sim.request_log()[-1]["path"]
