"""Teams telephone number routes: list and get numberAssignments, the assignNumber and
unassignNumber actions (202 with a long-running operation) and polling that operation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

from graph_simulator.protocol import GraphHttpError, GraphRequest, Reply, bad_request
from graph_simulator.routes.context import RouteContext
from graph_simulator.routes.odata import (
    action_body,
    int_option,
    parse_query,
    reject_unsupported_options,
)
from graph_simulator.routing import Route
from graph_simulator.scenario import AssignmentCategory, NumberType, normalise_number
from graph_simulator.world import NumberRecord, Operation, number_assignment_id

_OPERATION_TYPE: Final = "#microsoft.graph.teamsAdministration.telephoneNumberLongRunningOperation"
_NUMBER_TYPES: Final = frozenset({"directRouting", "callingPlan", "operatorConnect"})
_CATEGORIES: Final = frozenset({"primary", "private", "alternate"})
_DEFAULT_NUMBER_PAGE: Final = 500
_MAX_NUMBER_PAGE: Final = 1000
_FILTER_CLAUSE_RE: Final = re.compile(
    r"(?P<field>telephoneNumber|assignmentTargetId) eq '(?P<value>(?:[^']|'')*)'"
)


def number_assignment_json(record: NumberRecord) -> dict[str, Any]:
    """A numberAssignment resource with exactly the documented v1.0 properties."""
    assigned = record.assignment_target_id is not None
    online = record.number_type != "directRouting"
    return {
        "id": record.id,
        "telephoneNumber": record.telephone_number,
        "operatorId": record.operator_id,
        "numberType": record.number_type,
        "activationState": record.activation_state,
        "capabilities": ["userAssignment"],
        "locationId": record.location_id,
        "civicAddressId": None,
        "networkSiteId": None,
        "assignmentTargetId": record.assignment_target_id,
        "assignmentCategory": record.assignment_category if assigned else None,
        "portInStatus": None,
        "assignmentStatus": "userAssigned" if assigned else "unassigned",
        "isoCountryCode": record.iso_country_code,
        "city": record.city,
        "numberSource": "online" if online else "onPremises",
        "supportedCustomerActions": ["locationUpdate", "release"] if online else [],
        "reverseNumberLookupOptions": [],
    }


def list_number_assignments(context: RouteContext, route: Route,
                            request: GraphRequest) -> Reply:
    """`GET .../numberAssignments`: `$filter` on number and target, `$top`/`$skip` pages
    (with or without a next link, one item as a list or an object: see `Behaviour`)."""
    del route
    options = parse_query(request.raw_query)
    reject_unsupported_options(options, frozenset({"$filter", "$top", "$skip"}))
    top = int_option(options, "$top", default=_DEFAULT_NUMBER_PAGE, low=1,
                     high=_MAX_NUMBER_PAGE)
    skip = int_option(options, "$skip", default=0, low=0, high=2**31)
    clauses = _parse_filter(options["$filter"]) if "$filter" in options else []
    items = [number_assignment_json(record)
             for record in context.world.listed_number_assignments()]
    context.world.count_number_read()
    items = [item for item in items
             if all(item[name] == value for name, value in clauses)]
    body: dict[str, Any] = {
        "@odata.context": f"{context.base_url}/$metadata#admin/teams/telephoneNumberManagement/"
                          "numberAssignments",
    }
    behaviour = context.world.behaviour
    if skip + top < len(items) and behaviour.number_assignments_paging == "nextLink":
        link_options: dict[str, str] = {
            name: options[name] for name in ("$filter", "$top") if name in options
        }
        link_options["$skip"] = str(skip + top)
        body["@odata.nextLink"] = context.next_link(request, link_options)
    page = items[skip:skip + top]
    one_object = behaviour.number_assignments_value_shape == "object" and len(page) == 1
    body["value"] = page[0] if one_object else page
    return Reply(200, body)


def get_number_assignment(context: RouteContext, route: Route, request: GraphRequest) -> Reply:
    """`GET .../numberAssignments/{id}`: one number."""
    del request
    records = context.world.listed_number_assignments()
    context.world.count_number_read()
    for record in records:
        if record.id == route.key:
            body = {
                "@odata.context": f"{context.base_url}/$metadata#admin/teams/"
                                  "telephoneNumberManagement/numberAssignments/$entity",
                **number_assignment_json(record),
            }
            return Reply(200, body)
    raise GraphHttpError(404, "NotFound", f"Number assignment '{route.key}' was not found.")


def assign_number(context: RouteContext, route: Route, request: GraphRequest) -> Reply:
    """`POST .../numberAssignments/assignNumber`: 202 and the operation's `Location`."""
    del route
    body = action_body(request.body, "assignNumber", required=(
        "telephoneNumber", "assignmentTargetId", "numberType",
    ), optional=("assignmentCategory", "locationId"))
    number = _number_parameter(body)
    target = _string_parameter(body, "assignmentTargetId")
    category = body.get("assignmentCategory") or "primary"
    if category not in _CATEGORIES:
        raise bad_request(f"Invalid value '{category}' for parameter 'assignmentCategory' "
                          f"(expected one of {', '.join(sorted(_CATEGORIES))}).")
    location = body.get("locationId")
    if location is not None and not isinstance(location, str):
        raise bad_request("Parameter 'locationId' must be a string.")
    operation = context.world.request_assign(number, _number_type_parameter(body), target,
                                             _category(category), location)
    lost = context.world.behaviour.assign_answer_lost
    if lost != "never" and not _is_retry(request):
        # Teams carried it out; the answer never reaches the client (a gateway timeout after
        # the backend accepted, or a dropped connection). Its retry is answered as usual.
        context.world.carry_out(operation.id)
        context.save_state()
        if lost == "connectionDropped":
            return Reply(202, None, drop_connection=True)
        raise GraphHttpError(504, "timeout", "The request timed out at the gateway.")
    return _accepted(context, operation)


def unassign_number(context: RouteContext, route: Route, request: GraphRequest) -> Reply:
    """`POST .../numberAssignments/unassignNumber`: 202 and the operation's `Location`."""
    del route
    body = action_body(request.body, "unassignNumber",
                       required=("telephoneNumber", "numberType"), optional=())
    operation = context.world.request_unassign(_number_parameter(body),
                                               _number_type_parameter(body))
    return _accepted(context, operation)


def get_operation(context: RouteContext, route: Route, request: GraphRequest) -> Reply:
    """`GET .../operations('{id}')`: the operation's status (polling may complete it)."""
    del request
    world = context.world
    operation = world.poll_operation(route.key)
    context.save_state()
    entity: dict[str, Any] = {
        "@odata.type": _OPERATION_TYPE,
        "id": operation.id,
        "createdDateTime": operation.created_date_time,
        "status": operation.status,
        "numbers": [{
            "resourceLocation": f"{context.base_url}/admin/teams/telephoneNumberManagement/"
                                f"numberAssignments/"
                                f"{quote(number_assignment_id(operation.telephone_number))}",
            "status": operation.status,
            "statusDetail": operation.status_detail,
        }],
    }
    if world.behaviour.operation_body_shape == "value":
        return Reply(200, {"value": entity})
    operation_context = (f"{context.base_url}/$metadata#admin/teams/telephoneNumberManagement/"
                         "operations/$entity")
    return Reply(200, {"@odata.context": operation_context, **entity})


def _is_retry(request: GraphRequest) -> bool:
    """Whether the SDK's retry handler sent this (it numbers its retries in `Retry-Attempt`)."""
    return any(name.lower() == "retry-attempt" for name in request.headers)


def _accepted(context: RouteContext, operation: Operation) -> Reply:
    context.save_state()
    location = (f"{context.base_url}/admin/teams/telephoneNumberManagement/"
                f"operations('{operation.id}')")
    return Reply(202, None, {"Location": location})


def _parse_filter(expression: str) -> list[tuple[str, str]]:
    clauses = expression.split(" and ")
    parsed: list[tuple[str, str]] = []
    for clause in clauses:
        match = _FILTER_CLAUSE_RE.fullmatch(clause)
        if match is None or len(clauses) > 2:
            raise bad_request(
                f"Unsupported $filter '{expression}': the Graph simulator supports only "
                "telephoneNumber eq '...' and assignmentTargetId eq '...', optionally joined "
                "by 'and'."
            )
        parsed.append((match["field"], match["value"].replace("''", "'")))
    return parsed


def _string_parameter(body: Mapping[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not value:
        raise bad_request(f"Parameter '{name}' must be a non-empty string.")
    return value


def _number_parameter(body: Mapping[str, Any]) -> str:
    try:
        return normalise_number(_string_parameter(body, "telephoneNumber"))
    except ValueError:
        raise bad_request(f"Invalid telephoneNumber '{body['telephoneNumber']}'.") from None


def _number_type_parameter(body: Mapping[str, Any]) -> NumberType:
    value = body["numberType"]
    # Enum members are camelCase on the wire; PowerShell's PascalCase spellings are refused.
    if value == "directRouting":
        return "directRouting"
    if value == "callingPlan":
        return "callingPlan"
    if value == "operatorConnect":
        return "operatorConnect"
    raise bad_request(f"Invalid value '{value}' for parameter 'numberType' (expected one of "
                      f"{', '.join(sorted(_NUMBER_TYPES))}).")


def _category(value: str) -> AssignmentCategory:
    if value == "private":
        return "private"
    if value == "alternate":
        return "alternate"
    return "primary"
