"""Contract between the Graph simulator and msgraph-sdk, for every route the simulator serves.

For each route (`graph_simulator.ROUTE_NAMES`) two kinds of test:

1. The request is made through msgraph-sdk's request builders the way the app (or a plain SDK
   user) makes it; the simulator must answer 2xx and the SDK's own models must parse the answer:
   every JSON property the simulator sent comes through typed (`untyped_properties`), and
   `additional_data` anywhere in the model graph holds only the annotations Graph documents that
   no model declares, listed per route below (`unexpected_additional_data`). Where the SDK cannot
   be used as-is (getPolicyId's lost comma, the `value`-wrapped operation and userConfiguration,
   assignNumber's Location), the test shows the SDK's default is refused or mis-parsed *and* that
   the workaround the app uses works.
2. `FORMS`: the exact request lines the SDK puts on the wire, as literals, are what the
   simulator logged and answered: the simulator accepts the SDK's forms, not a normalised copy.

Annotations kept in `additional_data` (the allow-lists use these names):
* `@odata.context` -- Graph sends it on every JSON answer; no msgraph model declares it.
* `@removed` -- on an entity in a delta round (`users/delta`, `groups/delta`): Graph marks a
  deleted object with it; User and Group do not declare it.
* `members@delta` -- on a group in `groups/delta`: Graph's member-change annotation; Group
  declares `members`, not `members@delta`.
* `value` -- only for the documented `{"value": {...}}` wrapper of an operation or a
  userConfiguration (behaviour knob `*BodyShape: value`): the SDK expects the entity at the root,
  so the whole entity lands here. That is why the app reads those answers raw.
(`@odata.count`, `@odata.nextLink`, `@odata.deltaLink` and `@odata.type` are declared by the
SDK's models, so they must come through typed and never appear in `additional_data`.)
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_http.middleware.options import (
    ParametersNameDecodingHandlerOption,
    ResponseHandlerOption,
)
from msgraph.generated.admin.teams.policy.microsoft_graph_teams_administration_get_policy_id_with_type_with_name.get_policy_id_with_type_with_name_get_response import (  # noqa: E501
    GetPolicyIdWithTypeWithNameGetResponse,
)
from msgraph.generated.admin.teams.policy.user_assignments.microsoft_graph_teams_administration_assign.assign_post_request_body import (  # noqa: E501
    AssignPostRequestBody,
)
from msgraph.generated.admin.teams.policy.user_assignments.microsoft_graph_teams_administration_unassign.unassign_post_request_body import (  # noqa: E501
    UnassignPostRequestBody,
)
from msgraph.generated.admin.teams.telephone_number_management.number_assignments.microsoft_graph_teams_administration_assign_number.assign_number_post_request_body import (  # noqa: E501
    AssignNumberPostRequestBody,
)
from msgraph.generated.admin.teams.telephone_number_management.number_assignments.microsoft_graph_teams_administration_unassign_number.unassign_number_post_request_body import (  # noqa: E501
    UnassignNumberPostRequestBody,
)
from msgraph.generated.admin.teams.telephone_number_management.number_assignments.number_assignments_request_builder import (  # noqa: E501
    NumberAssignmentsRequestBuilder,
)
from msgraph.generated.admin.teams.user_configurations.user_configurations_request_builder import (
    UserConfigurationsRequestBuilder,
)
from msgraph.generated.groups.delta.delta_get_response import (
    DeltaGetResponse as GroupsDeltaGetResponse,
)
from msgraph.generated.groups.delta.delta_request_builder import (
    DeltaRequestBuilder as GroupsDeltaRequestBuilder,
)
from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder,
)
from msgraph.generated.models.group import Group
from msgraph.generated.models.long_running_operation_status import LongRunningOperationStatus
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.teams_administration.account_type import AccountType
from msgraph.generated.models.teams_administration.activation_state import ActivationState
from msgraph.generated.models.teams_administration.assignment_category import AssignmentCategory
from msgraph.generated.models.teams_administration.assignment_status import AssignmentStatus
from msgraph.generated.models.teams_administration.assignment_type import AssignmentType
from msgraph.generated.models.teams_administration.customer_action import CustomerAction
from msgraph.generated.models.teams_administration.number_assignment import NumberAssignment
from msgraph.generated.models.teams_administration.number_assignment_collection_response import (
    NumberAssignmentCollectionResponse,
)
from msgraph.generated.models.teams_administration.number_capability import NumberCapability
from msgraph.generated.models.teams_administration.number_source import NumberSource
from msgraph.generated.models.teams_administration.number_type import NumberType
from msgraph.generated.models.teams_administration.teams_policy_user_assignment import (
    TeamsPolicyUserAssignment,
)
from msgraph.generated.models.teams_administration.teams_user_configuration import (
    TeamsUserConfiguration,
)
from msgraph.generated.models.teams_administration.teams_user_configuration_collection_response import (  # noqa: E501
    TeamsUserConfigurationCollectionResponse,
)
from msgraph.generated.models.teams_administration.telephone_number_long_running_operation import (
    TelephoneNumberLongRunningOperation,
)
from msgraph.generated.models.user import User
from msgraph.generated.models.user_collection_response import UserCollectionResponse
from msgraph.generated.users.delta.delta_get_response import (
    DeltaGetResponse as UsersDeltaGetResponse,
)
from msgraph.generated.users.delta.delta_request_builder import (
    DeltaRequestBuilder as UsersDeltaRequestBuilder,
)
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

from graph_simulator import ROUTE_NAMES, SimulatorServer
from graph_simulator.routing import (
    ASSIGN_NUMBER,
    ASSIGN_POLICY,
    GET_NUMBER_ASSIGNMENT,
    GET_OPERATION,
    GET_POLICY_ID,
    GET_USER,
    GET_USER_CONFIGURATION,
    GROUPS_DELTA,
    LIST_NUMBER_ASSIGNMENTS,
    LIST_TRANSITIVE_MEMBER_USERS,
    LIST_USER_CONFIGURATIONS,
    UNASSIGN_NUMBER,
    UNASSIGN_POLICY,
    USERS_DELTA,
)
from graph_simulator.world import number_assignment_id
from shared.adapters.graph.delta import GraphDirectoryDelta
from shared.adapters.graph.directory import MEMBER_FIELDS
from shared.adapters.graph.directory import PAGE_SIZE as MEMBER_PAGE_SIZE
from shared.adapters.graph.numbers import LIST_PAGE_SIZE
from tests.contract.graph_contract_support import (
    ANN,
    ANN_DR,
    ANN_PROPERTIES,
    BOB,
    CALLING_PLAN,
    CAROL,
    CAROL_DR,
    CHANGED,
    CLI_ID,
    CLI_NAME,
    CLI_TYPE,
    DAVE,
    DIAL_PLAN_ID,
    DIAL_PLAN_NAME,
    DIAL_PLAN_TYPE,
    ERIN,
    FRANK,
    FREE_DR,
    LOCATION_ID,
    OLD,
    OPERATOR_CONNECT,
    OPERATOR_ID,
    SALES,
    TEMP,
    TENANT,
    VOICE,
    Allowed,
    Exchanges,
    Graph,
    WireExchange,
    attribute_name,
    graph_for,
    original_directory,
    scenario,
    unexpected_additional_data,
    untyped_properties,
)

MANAGEMENT = "/v1.0/admin/teams/telephoneNumberManagement"
NUMBERS = f"{MANAGEMENT}/numberAssignments"
CONFIGURATIONS = "/v1.0/admin/teams/userConfigurations"
POLICY = "/v1.0/admin/teams/policy"
FIELDS = ",".join(MEMBER_FIELDS)  # the app's $select for members and single users
POLICY_ASSIGNMENT_TYPE = "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment"
OPERATION_TYPE = "#microsoft.graph.teamsAdministration.telephoneNumberLongRunningOperation"
CONTEXT = frozenset({"@odata.context"})
VALUE_WRAPPER = frozenset({"value"})
# Direct Routing numbers outside the inventory (Graph creates the record on assignment), one per
# request that changes Teams state, so no test depends on another one's effects.
BUG_ASSIGN_DR, APP_ASSIGN_DR, FAILING_DR, VALUE_SHAPE_DR = (
    "+31855363101", "+31855363102", "+31855363103", "+31855363104")
FORM_ASSIGN_DR, FORM_OPERATION_DR, FORM_LOCATION_DR = (
    "+31855363105", "+31855363106", "+31855363107")
TERMINAL = frozenset({LongRunningOperationStatus.Succeeded, LongRunningOperationStatus.Failed})


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer(scenario()) as running:
        yield running


@pytest.fixture(scope="module")
async def graph(server: SimulatorServer) -> AsyncIterator[Graph]:
    async with graph_for(server) as client:
        yield client


@pytest.fixture(scope="module")
def value_server() -> Iterator[SimulatorServer]:
    # The wrapper is a scenario knob; a second simulator keeps the main one's world intact.
    with SimulatorServer(scenario(body_shape="value")) as running:
        yield running


@pytest.fixture(scope="module")
async def value_graph(value_server: SimulatorServer) -> AsyncIterator[Graph]:
    async with graph_for(value_server) as client:
        yield client


# -- helpers ------------------------------------------------------------------------------------


def answered(seen: Exchanges) -> list[tuple[str, int]]:
    """(route, status) of every request of a step, as the simulator logged them."""
    return [(entry["route"], entry["status"]) for entry in seen.log]


def assert_parsed(model: Any, wire: WireExchange, allowed: Allowed,
                  root_annotations: frozenset[str]) -> None:
    """`model` holds everything `wire` answered, typed, and only allowed extras."""
    assert unexpected_additional_data(model, allowed) == []
    assert untyped_properties(model, wire.response_json()) == []
    # The allowed annotation really arrived (the allow-list is not just tolerated noise).
    assert set(model.additional_data) == root_annotations


def consistency(config: RequestConfiguration[Any] | None = None) -> RequestConfiguration[Any]:
    """`config` with `ConsistencyLevel: eventual`, which every transitiveMembers page needs."""
    config = config or RequestConfiguration()
    config.headers.add("ConsistencyLevel", "eventual")
    return config


def members_config(top: int = MEMBER_PAGE_SIZE) -> RequestConfiguration[Any]:
    """The app's transitiveMembers request (shared.adapters.graph.directory), typed."""
    query = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(
        select=MEMBER_FIELDS, top=top, count=True)
    return consistency(RequestConfiguration(query_parameters=query))


def native(query: Any = None) -> RequestConfiguration[Any]:
    """A request answered with the raw httpx.Response (the app's way to read odd bodies)."""
    return RequestConfiguration(query_parameters=query,
                                options=[ResponseHandlerOption(NativeResponseHandler())])


def numbers_builder(graph: Graph) -> Any:
    return graph.client.admin.teams.telephone_number_management.number_assignments


def operation_item(graph: Graph, operation_id: str = "from-location") -> Any:
    operations = graph.client.admin.teams.telephone_number_management.operations
    return operations.by_telephone_number_long_running_operation_id(operation_id)


def assign_body(number: str, user_id: str) -> Any:
    return AssignNumberPostRequestBody(telephone_number=number, assignment_target_id=user_id,
                                       number_type=NumberType.DirectRouting,
                                       assignment_category=AssignmentCategory.Primary)


async def send_native(graph: Graph, request: Any) -> httpx.Response:
    """Send an SDK-built request and get the raw answer (shared.adapters.graph.numbers' way)."""
    request.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
    response: httpx.Response = await graph.client.request_adapter.send_primitive_async(
        request, "bytes", {})
    return response


async def accept_assignment(graph: Graph, number: str, user_id: str) -> str:
    """assignNumber the app's way; returns the operation's Location."""
    action = numbers_builder(graph).microsoft_graph_teams_administration_assign_number
    response = await send_native(graph, action.to_post_request_information(
        assign_body(number, user_id)))
    assert response.status_code == 202, response.text
    location = response.headers["location"]
    assert isinstance(location, str)
    return location


async def poll(graph: Graph, location: str) -> list[Any]:
    """GET the operation at `location` (typed) until it ends; every answer, in order."""
    item = operation_item(graph).with_url(location)
    seen: list[Any] = []
    for _ in range(5):
        seen.append(await item.get())
        if seen[-1].status in TERMINAL:
            return seen
    raise AssertionError(f"operation never ended: {[op.status for op in seen]}")


def operation_id(location: str) -> str:
    """The id in `.../operations('<id>')`."""
    match = re.fullmatch(r".*/operations\('([^']+)'\)", location)
    assert match is not None, location
    return match[1]


async def assign_policy(graph: Graph, user_id: str, policy_type: str, policy_id: str) -> None:
    body = AssignPostRequestBody(value=[TeamsPolicyUserAssignment(
        odata_type=POLICY_ASSIGNMENT_TYPE, user_id=user_id, policy_type=policy_type,
        policy_id=policy_id)])
    assignments = graph.client.admin.teams.policy.user_assignments
    await assignments.microsoft_graph_teams_administration_assign.post(body)


async def unassign_policy(graph: Graph, user_id: str, policy_type: str) -> None:
    body = UnassignPostRequestBody(value=[TeamsPolicyUserAssignment(
        odata_type=POLICY_ASSIGNMENT_TYPE, user_id=user_id, policy_type=policy_type)])
    assignments = graph.client.admin.teams.policy.user_assignments
    await assignments.microsoft_graph_teams_administration_unassign.post(body)


def policy_id_builder(graph: Graph) -> Any:
    policy = graph.client.admin.teams.policy
    return policy.microsoft_graph_teams_administration_get_policy_id_with_type_with_name(
        name=DIAL_PLAN_NAME, type=DIAL_PLAN_TYPE)


def policy_id_url(graph: Graph) -> str:
    """getPolicyId with the comma the SDK's URL template loses (reference §4.7 workaround)."""
    return (f"{graph.base_url}/admin/teams/policy/microsoft.graph.teamsAdministration."
            f"getPolicyId(type='{quote(DIAL_PLAN_TYPE)}',name='{quote(DIAL_PLAN_NAME)}')")


async def follow(builder: Any, first: Any, config: Callable[[], Any] = lambda: None) -> list[Any]:
    """`first` and every page after it, via `@odata.nextLink` and `with_url`."""
    pages = [first]
    while pages[-1].odata_next_link:
        assert len(pages) < 20, "paging does not end"
        pages.append(await builder.with_url(pages[-1].odata_next_link).get(config()))
    return pages


# -- 1. answers parse with the SDK's models, route by route ------------------------------------


async def test_transitive_member_users_parse(graph: Graph) -> None:
    builder = graph.client.groups.by_group_id(VOICE).transitive_members.graph_user
    async with graph.capture() as seen:
        whole = await builder.get(members_config())
        # The SDK does not carry ConsistencyLevel into nextLink requests: set it again.
        pages = await follow(builder, await builder.get(members_config(top=2)), consistency)
    assert answered(seen) == [(LIST_TRANSITIVE_MEMBER_USERS, 200)] * 3
    assert isinstance(whole, UserCollectionResponse)
    # Depth-first in member order, each user once: ANN, SALES (CAROL, DAVE), BOB.
    assert [user.id for user in whole.value] == [ANN, CAROL, DAVE, BOB]
    assert (whole.odata_count, whole.odata_next_link) == (4, None)
    ann, _, dave, bob = whole.value
    assert isinstance(ann, User)
    assert (ann.user_principal_name, ann.business_phones, ann.account_enabled) == (
        "ann@contoso.example", [ANN_DR], True)
    assert dave.account_enabled is False
    assert bob.business_phones == ["+31 85 536 3012"]
    assert [user.id for page in pages for user in page.value] == [ANN, CAROL, DAVE, BOB]
    # @odata.count on the first page only, as Graph documents.
    assert [page.odata_count for page in pages] == [4, None]
    # @odata.context only: UserCollectionResponse declares count and nextLink; User nothing.
    allowed = {UserCollectionResponse: CONTEXT}
    for page, wire in zip([whole, *pages], seen.wire, strict=True):
        assert_parsed(page, wire, allowed, CONTEXT)


async def test_get_user_parses(graph: Graph) -> None:
    query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
        select=list(ANN_PROPERTIES))
    async with graph.capture() as seen:
        # Every property the simulator serves for a user, then Graph's default set by UPN.
        user = await graph.client.users.by_user_id(ANN).get(
            RequestConfiguration(query_parameters=query))
        by_name = await graph.client.users.by_user_id("ann@contoso.example").get()
    assert answered(seen) == [(GET_USER, 200)] * 2
    assert isinstance(user, User)
    assert {key: getattr(user, attribute_name(key)) for key in ANN_PROPERTIES} == ANN_PROPERTIES
    assert (by_name.id, by_name.display_name, by_name.account_enabled) == (
        ANN, "Ann Andersen", None)  # accountEnabled is not in Graph's default set
    # @odata.context: the only annotation on a single entity.
    for model, wire in zip([user, by_name], seen.wire, strict=True):
        assert_parsed(model, wire, {User: CONTEXT}, CONTEXT)


async def test_users_delta_parses(graph: Graph) -> None:
    builder = graph.client.users.delta
    query = UsersDeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=MEMBER_FIELDS)
    async with graph.capture() as seen:
        pages = await follow(builder, await builder.get(
            RequestConfiguration(query_parameters=query)))
        graph.server.replace_directory(CHANGED)  # FRANK is deleted
        try:
            changes = await builder.with_url(pages[-1].odata_delta_link).get()
        finally:
            graph.server.replace_directory(original_directory())
    assert answered(seen) == [(USERS_DELTA, 200)] * 3
    assert all(isinstance(page, UsersDeltaGetResponse) for page in pages)
    assert [user.id for page in pages for user in page.value] == [
        ANN, BOB, CAROL, DAVE, ERIN, FRANK]
    assert [(page.odata_next_link is None, page.odata_delta_link is None) for page in pages] == [
        (False, True), (True, False)]
    assert pages[0].value[0].business_phones == [ANN_DR]
    assert [user.id for user in changes.value] == [FRANK]
    assert changes.value[0].additional_data == {"@removed": {"reason": "deleted"}}
    assert changes.odata_delta_link is not None
    # @odata.context on each page; @removed on the deleted user, nowhere else.
    allowed = {UsersDeltaGetResponse: CONTEXT, User: frozenset({"@removed"})}
    for page, wire in zip([*pages, changes], seen.wire, strict=True):
        assert_parsed(page, wire, allowed, CONTEXT)


def _member_refs(group: Any) -> list[tuple[str, str, Any]]:
    # Untyped data: kiota turns UUID-shaped strings into uuid.UUID, hence str().
    return [(entry["@odata.type"], str(entry["id"]), entry.get("@removed"))
            for entry in group.additional_data.get("members@delta", [])]


async def test_groups_delta_parses(graph: Graph) -> None:
    builder = graph.client.groups.delta
    query = GroupsDeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
        select=["displayName", "members"])
    async with graph.capture() as seen:
        pages = await follow(builder, await builder.get(
            RequestConfiguration(query_parameters=query)))
        graph.server.replace_directory(CHANGED)  # FRANK leaves TEMP; OLD is deleted
        try:
            changes = await builder.with_url(pages[-1].odata_delta_link).get()
        finally:
            graph.server.replace_directory(original_directory())
    assert answered(seen) == [(GROUPS_DELTA, 200)] * (len(pages) + 1)
    groups = [group for page in pages for group in page.value]
    assert all(isinstance(group, Group) for group in groups)
    assert [(group.id, group.display_name) for group in groups] == [
        (VOICE, "EnterpriseVoiceEnabled"), (SALES, "Sales"), (TEMP, "Temps"),
        (OLD, "Old project")]
    user, group_type = "#microsoft.graph.user", "#microsoft.graph.group"
    assert _member_refs(groups[0]) == [(user, ANN, None), (group_type, SALES, None),
                                       (user, BOB, None)]
    assert [group.id for group in changes.value] == [TEMP, OLD]
    assert _member_refs(changes.value[0]) == [(user, FRANK, {"reason": "deleted"})]
    assert changes.value[1].additional_data == {"@removed": {"reason": "deleted"}}
    # @odata.context on each page; members@delta and @removed on groups only.
    allowed = {GroupsDeltaGetResponse: CONTEXT, Group: frozenset({"members@delta", "@removed"})}
    for page, wire in zip([*pages, changes], seen.wire, strict=True):
        assert_parsed(page, wire, allowed, CONTEXT)


async def test_list_number_assignments_parses(graph: Graph) -> None:
    builder = numbers_builder(graph)
    query = NumberAssignmentsRequestBuilder.NumberAssignmentsRequestBuilderGetQueryParameters
    async with graph.capture() as seen:
        # The app lists with $top=1000 (raw, for speed); the typed parse must work all the same.
        everything = await builder.get(RequestConfiguration(
            query_parameters=query(top=LIST_PAGE_SIZE)))
        found = await builder.get(RequestConfiguration(
            query_parameters=query(filter=f"telephoneNumber eq '{ANN_DR}'", top=1)))
        pages = await follow(builder, await builder.get(RequestConfiguration(
            query_parameters=query(top=2))))
    assert answered(seen) == [(LIST_NUMBER_ASSIGNMENTS, 200)] * len(seen.log)
    assert isinstance(everything, NumberAssignmentCollectionResponse)
    by_number = {item.telephone_number: item for item in everything.value}
    inventory = {ANN_DR, CAROL_DR, FREE_DR, OPERATOR_CONNECT, CALLING_PLAN}
    assert inventory <= set(by_number)
    assert {item.telephone_number for page in pages for item in page.value} == set(by_number)
    operator = by_number[OPERATOR_CONNECT]
    assert isinstance(operator, NumberAssignment)
    assert (operator.number_type, operator.operator_id, operator.iso_country_code,
            operator.city) == (NumberType.OperatorConnect, OPERATOR_ID, "NL", "Amsterdam")
    assert (operator.assignment_status, operator.assignment_target_id,
            operator.activation_state) == (AssignmentStatus.Unassigned, None,
                                           ActivationState.Activated)
    assert operator.capabilities == [NumberCapability.UserAssignment]
    assert operator.number_source == NumberSource.Online
    assert operator.supported_customer_actions == [CustomerAction.LocationUpdate,
                                                   CustomerAction.Release]
    assert by_number[CALLING_PLAN].number_type == NumberType.CallingPlan
    [ann] = found.value
    assert (ann.telephone_number, ann.assignment_target_id, ann.assignment_category,
            ann.assignment_status, ann.location_id, ann.number_source, ann.id) == (
        ANN_DR, ANN, AssignmentCategory.Primary, AssignmentStatus.UserAssigned, LOCATION_ID,
        NumberSource.OnPremises, number_assignment_id(ANN_DR))
    # @odata.context only (nextLink is declared); numberAssignment items carry nothing extra.
    for page, wire in zip([everything, found, *pages], seen.wire, strict=True):
        assert_parsed(page, wire, {NumberAssignmentCollectionResponse: CONTEXT}, CONTEXT)


async def test_get_number_assignment_parses(graph: Graph) -> None:
    query = NumberAssignmentsRequestBuilder.NumberAssignmentsRequestBuilderGetQueryParameters(
        filter=f"telephoneNumber eq '{OPERATOR_CONNECT}'")
    listed = await numbers_builder(graph).get(RequestConfiguration(query_parameters=query))
    async with graph.capture() as seen:
        item = await numbers_builder(graph).by_number_assignment_id(listed.value[0].id).get()
    assert answered(seen) == [(GET_NUMBER_ASSIGNMENT, 200)]
    assert isinstance(item, NumberAssignment)
    assert (item.telephone_number, item.number_type, item.operator_id) == (
        OPERATOR_CONNECT, NumberType.OperatorConnect, OPERATOR_ID)
    # @odata.context: the only annotation on a single entity.
    assert_parsed(item, seen.last, {NumberAssignment: CONTEXT}, CONTEXT)


async def test_assign_number_location_needs_the_raw_answer(graph: Graph) -> None:
    action = numbers_builder(graph).microsoft_graph_teams_administration_assign_number
    async with graph.capture() as typed:
        result = await action.post(assign_body(BUG_ASSIGN_DR, BOB))
    # The SDK's typed post() returns None: the 202's Location, the only way to the operation,
    # is lost to the caller (known SDK limitation, reference §4.6).
    assert result is None
    assert answered(typed) == [(ASSIGN_NUMBER, 202)]
    assert typed.last.location is not None
    assert typed.last.response_body == b""
    # The app's workaround: the SDK-built request with a native response handler.
    async with graph.capture() as seen:
        location = await accept_assignment(graph, APP_ASSIGN_DR, BOB)
        operations = await poll(graph, location)
    assert location.startswith(f"{graph.base_url}/admin/teams/telephoneNumberManagement/"
                               "operations('")
    # The contract's operations take no time (operationSeconds 0): done at the first read.
    assert [op.status for op in operations] == [LongRunningOperationStatus.Succeeded]
    assert answered(seen) == [(ASSIGN_NUMBER, 202), (GET_OPERATION, 200)]
    assert seen.wire[0].request_json() == {
        "assignmentCategory": "primary", "assignmentTargetId": BOB,
        "numberType": "directRouting", "telephoneNumber": APP_ASSIGN_DR}
    assert graph.server.number_assignments()[APP_ASSIGN_DR] == BOB


async def test_unassign_number_location_needs_the_raw_answer(graph: Graph) -> None:
    action = numbers_builder(graph).microsoft_graph_teams_administration_unassign_number
    body = UnassignNumberPostRequestBody(telephone_number=CAROL_DR,
                                         number_type=NumberType.DirectRouting)
    async with graph.capture() as typed:
        result = await action.post(body)
    assert result is None  # as for assignNumber: the 202's Location is not returned
    assert answered(typed) == [(UNASSIGN_NUMBER, 202)]
    assert typed.last.location is not None
    async with graph.capture() as seen:
        response = await send_native(graph, action.to_post_request_information(body))
        operations = await poll(graph, response.headers["location"])
    assert response.status_code == 202
    assert operations[-1].status == LongRunningOperationStatus.Succeeded
    assert seen.wire[0].request_json() == {"numberType": "directRouting",
                                           "telephoneNumber": CAROL_DR}
    assert graph.server.number_assignments()[CAROL_DR] is None


async def test_get_operation_parses_in_the_root_shape(graph: Graph) -> None:
    # ERIN has no Teams Phone licence: the operation ends failed, with a statusDetail.
    location = await accept_assignment(graph, FAILING_DR, ERIN)
    op_id = operation_id(location)
    async with graph.capture() as seen:
        first = await operation_item(graph, op_id).get()  # operations/{id}
        rest = [await operation_item(graph).with_url(location).get()  # operations('{id}')
                for _ in range(2)]
    assert answered(seen) == [(GET_OPERATION, 200)] * 3
    operations = [first, *rest]
    assert all(isinstance(op, TelephoneNumberLongRunningOperation) for op in operations)
    assert [op.status for op in operations] == [LongRunningOperationStatus.Failed] * 3
    final = operations[-1]
    assert (final.id, final.odata_type) == (op_id, OPERATION_TYPE)
    assert final.created_date_time
    [detail] = final.numbers
    assert detail.status == LongRunningOperationStatus.Failed
    assert detail.resource_location == (f"{graph.base_url}/admin/teams/telephoneNumberManagement/"
                                        f"numberAssignments/{number_assignment_id(FAILING_DR)}")
    assert "lacks appropriate licenses" in detail.status_detail
    # @odata.context only (@odata.type is declared); the number details carry nothing extra.
    for op, wire in zip(operations, seen.wire, strict=True):
        assert_parsed(op, wire, {TelephoneNumberLongRunningOperation: CONTEXT}, CONTEXT)


async def test_get_operation_in_the_value_shape_is_read_raw(value_graph: Graph) -> None:
    location = await accept_assignment(value_graph, VALUE_SHAPE_DR, BOB)
    item = operation_item(value_graph).with_url(location)
    async with value_graph.capture() as seen:
        typed = await item.get()
        raw = await item.get(native())
    assert answered(seen) == [(GET_OPERATION, 200)] * 2
    # The documented {"value": {...}} body mis-parses: the SDK model expects the entity at the
    # root, so every typed field is None and the entity sits in additional_data['value'].
    assert isinstance(typed, TelephoneNumberLongRunningOperation)
    assert (typed.id, typed.status, typed.numbers) == (None, None, None)
    assert typed.additional_data["value"]["status"] == "succeeded"
    assert_parsed(typed, seen.wire[0], {TelephoneNumberLongRunningOperation: VALUE_WRAPPER},
                  VALUE_WRAPPER)
    # Hence the app reads operations raw and accepts both shapes.
    assert raw.status_code == 200
    assert raw.json()["value"]["status"] == "succeeded"
    assert raw.json()["value"]["id"] == operation_id(location)


async def test_get_user_configuration_parses(graph: Graph) -> None:
    await assign_policy(graph, ANN, CLI_TYPE, CLI_ID)  # so effectivePolicyAssignments has one
    item = graph.client.admin.teams.user_configurations.by_teams_user_configuration_id(ANN)
    async with graph.capture() as seen:
        configuration = await item.get()
    assert answered(seen) == [(GET_USER_CONFIGURATION, 200)]
    assert isinstance(configuration, TeamsUserConfiguration)
    assert (configuration.id, configuration.user_principal_name, configuration.tenant_id,
            configuration.is_enterprise_voice_enabled, configuration.account_type,
            configuration.feature_types) == (
        ANN, "ann@contoso.example", TENANT, False, AccountType.User, ["Teams", "PhoneSystem"])
    assert [(number.telephone_number, number.assignment_category)
            for number in configuration.telephone_numbers] == [(ANN_DR, AssignmentCategory.Primary)]
    [policy] = configuration.effective_policy_assignments
    assignment = policy.policy_assignment
    assert (policy.policy_type, assignment.display_name, assignment.assignment_type,
            assignment.policy_id, assignment.group_id) == (
        CLI_TYPE, CLI_NAME, AssignmentType.Direct, CLI_ID, None)
    assert configuration.created_date_time is not None
    assert configuration.modified_date_time >= configuration.created_date_time
    # @odata.context only; telephone numbers and policy assignments carry nothing extra.
    assert_parsed(configuration, seen.last, {TeamsUserConfiguration: CONTEXT}, CONTEXT)


async def test_user_not_in_teams_is_a_parsed_odata_error(graph: Graph) -> None:
    item = graph.client.admin.teams.user_configurations.by_teams_user_configuration_id(DAVE)
    async with graph.capture() as seen:
        with pytest.raises(ODataError) as caught:
            await item.get()
    assert answered(seen) == [(GET_USER_CONFIGURATION, 404)]
    error = caught.value
    assert (error.response_status_code, error.error.code) == (404, "NotFound")
    assert error.error.inner_error.request_id == seen.last.response_json()["error"][
        "innerError"]["request-id"]
    # Graph's error body has no annotations at all: nothing may be left over.
    assert unexpected_additional_data(error, {}) == []
    assert untyped_properties(error, seen.last.response_json()) == []


async def test_get_user_configuration_in_the_value_shape_is_read_raw(value_graph: Graph) -> None:
    item = value_graph.client.admin.teams.user_configurations.by_teams_user_configuration_id(ANN)
    async with value_graph.capture() as seen:
        typed = await item.get()
        raw = await item.get(native())
    assert answered(seen) == [(GET_USER_CONFIGURATION, 200)] * 2
    # As for operations: the wrapped entity is invisible to the model, kept under 'value'.
    assert isinstance(typed, TeamsUserConfiguration)
    assert (typed.id, typed.telephone_numbers, typed.feature_types) == (None, None, None)
    assert typed.additional_data["value"]["telephoneNumbers"] == [
        {"telephoneNumber": ANN_DR, "assignmentCategory": "primary"}]
    assert_parsed(typed, seen.wire[0], {TeamsUserConfiguration: VALUE_WRAPPER}, VALUE_WRAPPER)
    assert raw.json()["value"]["id"] == ANN


async def test_list_user_configurations_parses(graph: Graph) -> None:
    builder = graph.client.admin.teams.user_configurations
    query = UserConfigurationsRequestBuilder.UserConfigurationsRequestBuilderGetQueryParameters(
        top=2)
    async with graph.capture() as seen:
        pages = await follow(builder, await builder.get(
            RequestConfiguration(query_parameters=query)))
    assert answered(seen) == [(LIST_USER_CONFIGURATIONS, 200)] * 2
    assert all(isinstance(page, TeamsUserConfigurationCollectionResponse) for page in pages)
    configurations = [item for page in pages for item in page.value]
    # DAVE and FRANK are not in Teams.
    assert [item.id for item in configurations] == [ANN, BOB, CAROL, ERIN]
    assert all(isinstance(item, TeamsUserConfiguration) for item in configurations)
    assert configurations[3].feature_types == ["Teams"]  # ERIN: no Teams Phone
    assert configurations[2].is_enterprise_voice_enabled is True
    # @odata.context only (nextLink is declared); items carry nothing extra.
    for page, wire in zip(pages, seen.wire, strict=True):
        assert_parsed(page, wire, {TeamsUserConfigurationCollectionResponse: CONTEXT}, CONTEXT)


async def test_get_policy_id_needs_the_comma_back(graph: Graph) -> None:
    builder = policy_id_builder(graph)
    # The SDK's URL loses the comma between the two parameters (std-uritemplate, §4.7) ...
    assert builder.to_get_request_information().url.endswith(
        f"getPolicyId(type='{DIAL_PLAN_TYPE}'name='{DIAL_PLAN_NAME}')")
    async with graph.capture() as sdk_default:
        with pytest.raises(ODataError) as caught:
            await builder.get()
    # ... which OData refuses, and so does the simulator.
    assert caught.value.response_status_code == 400
    assert answered(sdk_default) == [(GET_POLICY_ID, 400)]
    async with graph.capture() as seen:
        result = await builder.with_url(policy_id_url(graph)).get()
    assert answered(seen) == [(GET_POLICY_ID, 200)]
    assert isinstance(result, GetPolicyIdWithTypeWithNameGetResponse)
    assert [(detail.name, detail.policy_id) for detail in result.value] == [
        (f"Tag:{DIAL_PLAN_NAME}", DIAL_PLAN_ID)]
    # @odata.context only; policyIdentifierDetail items carry nothing extra.
    assert_parsed(result, seen.last, {GetPolicyIdWithTypeWithNameGetResponse: CONTEXT}, CONTEXT)


async def _policies_of(graph: Graph, user_id: str) -> list[tuple[str, str]]:
    item = graph.client.admin.teams.user_configurations.by_teams_user_configuration_id(user_id)
    configuration = await item.get()
    return [(policy.policy_type, policy.policy_assignment.policy_id)
            for policy in configuration.effective_policy_assignments]


async def test_assign_policy_is_accepted(graph: Graph) -> None:
    async with graph.capture() as seen:
        await assign_policy(graph, BOB, DIAL_PLAN_TYPE, DIAL_PLAN_ID)
    # 204 No Content: nothing to parse; the body the SDK wrote is the documented one.
    assert answered(seen) == [(ASSIGN_POLICY, 204)]
    assert seen.last.request_json() == {"value": [{
        "@odata.type": POLICY_ASSIGNMENT_TYPE, "policyId": DIAL_PLAN_ID,
        "policyType": DIAL_PLAN_TYPE, "userId": BOB}]}
    assert (DIAL_PLAN_TYPE, DIAL_PLAN_ID) in await _policies_of(graph, BOB)


async def test_unassign_policy_is_accepted(graph: Graph) -> None:
    await assign_policy(graph, BOB, CLI_TYPE, CLI_ID)
    assert (CLI_TYPE, CLI_ID) in await _policies_of(graph, BOB)
    async with graph.capture() as seen:
        await unassign_policy(graph, BOB, CLI_TYPE)
    assert answered(seen) == [(UNASSIGN_POLICY, 204)]
    assert seen.last.request_json() == {"value": [{
        "@odata.type": POLICY_ASSIGNMENT_TYPE, "policyType": CLI_TYPE, "userId": BOB}]}
    assert CLI_TYPE not in dict(await _policies_of(graph, BOB))


# -- 2. the simulator accepts the SDK's exact request forms ------------------------------------

_TOKEN = "<token>"  # in an expected line: an opaque skip/delta token or operation id


@dataclass(frozen=True)
class Form:
    """SDK calls and the exact request lines (`METHOD target`) they must put on the wire."""

    name: str
    send: Callable[[Graph], Awaitable[None]]
    expected: tuple[tuple[str, str, int], ...]  # (route, request line, status)


def _line_pattern(line: str) -> str:
    return "[A-Za-z0-9_-]+".join(re.escape(part) for part in line.split(_TOKEN))


async def _members_app(graph: Graph) -> None:
    await graph.client.groups.by_group_id(VOICE).transitive_members.graph_user.get(
        members_config())


async def _members_next_page(graph: Graph) -> None:
    builder = graph.client.groups.by_group_id(VOICE).transitive_members.graph_user
    first = await builder.get(members_config(top=2))
    await builder.with_url(first.odata_next_link).get(consistency())


async def _user_app(graph: Graph) -> None:
    query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(select=MEMBER_FIELDS)
    await graph.client.users.by_user_id(ANN).get(native(query))


async def _user_by_name(graph: Graph) -> None:
    await graph.client.users.by_user_id("ann@contoso.example").get()


async def _users_delta(graph: Graph) -> None:
    query = UsersDeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=MEMBER_FIELDS)
    first = await graph.client.users.delta.get(RequestConfiguration(query_parameters=query))
    await graph.client.users.delta.with_url(first.odata_next_link).get()


async def _groups_delta(graph: Graph) -> None:
    query = GroupsDeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
        select=["displayName", "members"], filter=f"id eq '{VOICE}'")
    await graph.client.groups.delta.get(RequestConfiguration(query_parameters=query))


async def _users_delta_app(graph: Graph) -> None:
    delta = GraphDirectoryDelta(graph.client)
    await delta.user_changes(await delta.users_link())


async def _group_delta_app(graph: Graph) -> None:
    delta = GraphDirectoryDelta(graph.client)
    await delta.group_changes(await delta.group_link(VOICE))


async def _numbers_app_list(graph: Graph) -> None:
    query = NumberAssignmentsRequestBuilder.NumberAssignmentsRequestBuilderGetQueryParameters(
        top=LIST_PAGE_SIZE)
    await numbers_builder(graph).get(native(query))


async def _numbers_app_find(graph: Graph) -> None:
    query = NumberAssignmentsRequestBuilder.NumberAssignmentsRequestBuilderGetQueryParameters(
        filter=f"telephoneNumber eq '{ANN_DR}'", top=1)
    await numbers_builder(graph).get(RequestConfiguration(query_parameters=query))


async def _number_item(graph: Graph) -> None:
    await numbers_builder(graph).by_number_assignment_id(number_assignment_id(ANN_DR)).get()


async def _assign_number(graph: Graph) -> None:
    await accept_assignment(graph, FORM_ASSIGN_DR, BOB)


async def _unassign_number(graph: Graph) -> None:
    action = numbers_builder(graph).microsoft_graph_teams_administration_unassign_number
    await send_native(graph, action.to_post_request_information(UnassignNumberPostRequestBody(
        telephone_number=FREE_DR, number_type=NumberType.DirectRouting)))


async def _operation_by_id(graph: Graph) -> None:
    location = await accept_assignment(graph, FORM_OPERATION_DR, BOB)
    await operation_item(graph, operation_id(location)).get(native())


async def _operation_by_location(graph: Graph) -> None:
    location = await accept_assignment(graph, FORM_LOCATION_DR, BOB)
    await operation_item(graph).with_url(location).get(native())


async def _user_configuration(graph: Graph) -> None:
    await graph.client.admin.teams.user_configurations.by_teams_user_configuration_id(ANN).get()


async def _user_configurations(graph: Graph) -> None:
    builder = graph.client.admin.teams.user_configurations
    query = UserConfigurationsRequestBuilder.UserConfigurationsRequestBuilderGetQueryParameters(
        top=2)
    first = await builder.get(RequestConfiguration(query_parameters=query))
    await builder.with_url(first.odata_next_link).get()


async def _policy_id_sdk_default(graph: Graph) -> None:
    with pytest.raises(ODataError):
        await policy_id_builder(graph).get()


async def _policy_id_with_url(graph: Graph) -> None:
    await policy_id_builder(graph).with_url(policy_id_url(graph)).get()


async def _assign_policy(graph: Graph) -> None:
    await assign_policy(graph, CAROL, DIAL_PLAN_TYPE, DIAL_PLAN_ID)


async def _unassign_policy(graph: Graph) -> None:
    await unassign_policy(graph, CAROL, DIAL_PLAN_TYPE)


_MEMBERS = f"/v1.0/groups/{VOICE}/transitiveMembers/graph.user"
_ASSIGN = (ASSIGN_NUMBER, f"POST {NUMBERS}/microsoft.graph.teamsAdministration.assignNumber", 202)
# Query option names: the SDK's URL template writes `%24select`; its ParametersNameDecodingHandler
# middleware turns that into `$select` before the request leaves (test_query_names_on_the_wire).
FORMS: tuple[Form, ...] = (
    Form("transitiveMembers as the app reads them", _members_app, (
        (LIST_TRANSITIVE_MEMBER_USERS,
         f"GET {_MEMBERS}?$count=true&$select={FIELDS}&$top=999", 200),)),
    Form("transitiveMembers nextLink via with_url", _members_next_page, (
        (LIST_TRANSITIVE_MEMBER_USERS, f"GET {_MEMBERS}?$count=true&$select={FIELDS}&$top=2", 200),
        (LIST_TRANSITIVE_MEMBER_USERS,
         f"GET {_MEMBERS}?$select={FIELDS}&$top=2&$count=true&$skiptoken={_TOKEN}", 200))),
    Form("users/{id} as the app reads one", _user_app, (
        (GET_USER, f"GET /v1.0/users/{ANN}?$select={FIELDS}", 200),)),
    Form("users/{userPrincipalName}", _user_by_name, (
        (GET_USER, "GET /v1.0/users/ann%40contoso.example", 200),)),
    Form("users/delta() and its nextLink", _users_delta, (
        (USERS_DELTA, f"GET /v1.0/users/delta()?$select={FIELDS}", 200),
        (USERS_DELTA, f"GET /v1.0/users/delta()?$skiptoken={_TOKEN}", 200))),
    Form("groups/delta() with $filter", _groups_delta, (
        (GROUPS_DELTA, "GET /v1.0/groups/delta()?"
         f"$filter=id%20eq%20%27{VOICE}%27&$select=displayName,members", 200),)),
    Form("users/delta() as the app starts and follows it", _users_delta_app, (
        (USERS_DELTA, f"GET /v1.0/users/delta()?$select={FIELDS}&$deltatoken=latest", 200),
        (USERS_DELTA, f"GET /v1.0/users/delta()?$deltatoken={_TOKEN}", 200))),
    Form("groups/delta() as the app starts and follows it", _group_delta_app, (
        (GROUPS_DELTA, "GET /v1.0/groups/delta()?$select=members"
         f"&$filter=id%20eq%20%27{VOICE}%27&$deltatoken=latest", 200),
        (GROUPS_DELTA, f"GET /v1.0/groups/delta()?$deltatoken={_TOKEN}", 200))),
    Form("numberAssignments as the app lists them", _numbers_app_list, (
        (LIST_NUMBER_ASSIGNMENTS, f"GET {NUMBERS}?$top=1000", 200),)),
    Form("numberAssignments as the app finds one", _numbers_app_find, (
        (LIST_NUMBER_ASSIGNMENTS,
         f"GET {NUMBERS}?$filter=telephoneNumber%20eq%20%27%2B31855363011%27&$top=1", 200),)),
    Form("numberAssignments/{id}", _number_item, (
        (GET_NUMBER_ASSIGNMENT, f"GET {NUMBERS}/{number_assignment_id(ANN_DR)}", 200),)),
    Form("assignNumber fully qualified", _assign_number, (_ASSIGN,)),
    Form("unassignNumber fully qualified", _unassign_number, (
        (UNASSIGN_NUMBER, f"POST {NUMBERS}/microsoft.graph.teamsAdministration.unassignNumber",
         202),)),
    Form("operations/{id}", _operation_by_id, (
        _ASSIGN, (GET_OPERATION, f"GET {MANAGEMENT}/operations/{_TOKEN}", 200))),
    Form("operations('{id}') from Location", _operation_by_location, (
        _ASSIGN, (GET_OPERATION, f"GET {MANAGEMENT}/operations('{_TOKEN}')", 200))),
    Form("userConfigurations/{id}", _user_configuration, (
        (GET_USER_CONFIGURATION, f"GET {CONFIGURATIONS}/{ANN}", 200),)),
    Form("userConfigurations and its nextLink", _user_configurations, (
        (LIST_USER_CONFIGURATIONS, f"GET {CONFIGURATIONS}?$top=2", 200),
        (LIST_USER_CONFIGURATIONS, f"GET {CONFIGURATIONS}?$top=2&$skiptoken={_TOKEN}", 200))),
    # The SDK's own getPolicyId URL (comma lost): logged exactly as sent, refused like OData does.
    Form("getPolicyId as the SDK builds it", _policy_id_sdk_default, (
        (GET_POLICY_ID, f"GET {POLICY}/microsoft.graph.teamsAdministration.getPolicyId("
         f"type='{DIAL_PLAN_TYPE}'name='{DIAL_PLAN_NAME}')", 400),)),
    Form("getPolicyId via with_url", _policy_id_with_url, (
        (GET_POLICY_ID, f"GET {POLICY}/microsoft.graph.teamsAdministration.getPolicyId("
         f"type='{DIAL_PLAN_TYPE}',name='{DIAL_PLAN_NAME}')", 200),)),
    Form("policy userAssignments assign", _assign_policy, (
        (ASSIGN_POLICY,
         f"POST {POLICY}/userAssignments/microsoft.graph.teamsAdministration.assign", 204),)),
    Form("policy userAssignments unassign", _unassign_policy, (
        (UNASSIGN_POLICY,
         f"POST {POLICY}/userAssignments/microsoft.graph.teamsAdministration.unassign", 204),)),
)


@pytest.mark.parametrize("form", FORMS, ids=[form.name for form in FORMS])
async def test_the_simulator_takes_the_sdk_forms_as_sent(graph: Graph, form: Form) -> None:
    async with graph.capture() as seen:
        await form.send(graph)
    sent = [f"{wire.method} {wire.target}" for wire in seen.wire]
    logged = [f"{entry['method']} {entry['path']}" + (f"?{entry['query']}" if entry["query"]
                                                      else "") for entry in seen.log]
    # The simulator saw each request byte for byte as the SDK sent it (nothing normalised) ...
    assert logged == sent
    assert [wire.status for wire in seen.wire] == [entry["status"] for entry in seen.log]
    assert not [line for line in sent if "//" in line.split(" ", 1)[1].split("?", 1)[0]]
    # ... routed it where Graph would and answered as expected ...
    assert answered(seen) == [(route, status) for route, _, status in form.expected]
    # ... and what the SDK sent is the literal form expected for it.
    for line, (_, expected, _) in zip(sent, form.expected, strict=True):
        assert re.fullmatch(_line_pattern(expected), line), f"{line!r} != {expected!r}"


async def test_query_names_on_the_wire(graph: Graph) -> None:
    """The SDK's URL has `%24` option names; its middleware sends them as `$`, nothing else.

    With that middleware switched off the `%24` form goes out as it is, and is accepted too.
    """
    def numbers() -> RequestConfiguration[Any]:
        return RequestConfiguration(query_parameters=(
            NumberAssignmentsRequestBuilder.NumberAssignmentsRequestBuilderGetQueryParameters(
                filter=f"telephoneNumber eq '{ANN_DR}'", top=1)))

    def delta() -> RequestConfiguration[Any]:
        return RequestConfiguration(query_parameters=(
            GroupsDeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(
                select=["displayName", "members"], filter=f"id eq '{VOICE}'")))

    requests: list[tuple[Any, Callable[[], RequestConfiguration[Any]]]] = [
        (graph.client.groups.by_group_id(VOICE).transitive_members.graph_user, members_config),
        (numbers_builder(graph), numbers),
        (graph.client.groups.delta, delta),
    ]
    for builder, config in requests:
        information = builder.to_get_request_information(config())
        # What the adapter does to every request before sending it.
        graph.client.request_adapter.set_base_url_for_request_information(information)
        url = urlsplit(information.url)
        assert f"{url.scheme}://{url.netloc}{url.path}".startswith(graph.base_url)
        assert "%24" in url.query
        undecoded = config()
        undecoded.options = [*(undecoded.options or []),
                             ParametersNameDecodingHandlerOption(enable=False)]
        async with graph.capture() as seen:
            await builder.get(config())
            await builder.get(undecoded)
        assert [wire.target for wire in seen.wire] == [
            f"{url.path}?{url.query.replace('%24', '$')}", f"{url.path}?{url.query}"]
        assert [entry["status"] for entry in seen.log] == [200, 200]


PARSE_TESTS: dict[str, tuple[Callable[..., Awaitable[None]], ...]] = {
    LIST_TRANSITIVE_MEMBER_USERS: (test_transitive_member_users_parse,),
    GET_USER: (test_get_user_parses,),
    USERS_DELTA: (test_users_delta_parses,),
    GROUPS_DELTA: (test_groups_delta_parses,),
    LIST_NUMBER_ASSIGNMENTS: (test_list_number_assignments_parses,),
    GET_NUMBER_ASSIGNMENT: (test_get_number_assignment_parses,),
    ASSIGN_NUMBER: (test_assign_number_location_needs_the_raw_answer,),
    UNASSIGN_NUMBER: (test_unassign_number_location_needs_the_raw_answer,),
    GET_OPERATION: (test_get_operation_parses_in_the_root_shape,
                    test_get_operation_in_the_value_shape_is_read_raw),
    GET_USER_CONFIGURATION: (test_get_user_configuration_parses,
                             test_get_user_configuration_in_the_value_shape_is_read_raw,
                             test_user_not_in_teams_is_a_parsed_odata_error),
    LIST_USER_CONFIGURATIONS: (test_list_user_configurations_parses,),
    GET_POLICY_ID: (test_get_policy_id_needs_the_comma_back,),
    ASSIGN_POLICY: (test_assign_policy_is_accepted,),
    UNASSIGN_POLICY: (test_unassign_policy_is_accepted,),
}


def test_every_simulator_route_is_covered() -> None:
    assert set(PARSE_TESTS) == set(ROUTE_NAMES)
    assert {route for form in FORMS for route, _, _ in form.expected} == set(ROUTE_NAMES)
