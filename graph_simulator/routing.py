"""Graph v1.0 paths to routes: the names requests are counted under and faults target.

Routing is done here rather than by aiohttp's router because the simulator must see the path
exactly as sent (a double slash is refused, not normalised away) and must accept the several
spellings Graph clients really use (`graph.user` and `microsoft.graph.user`, short and fully
qualified action names, `operations/{id}` and `operations('{id}')`, `delta` and `delta()`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

LIST_TRANSITIVE_MEMBER_USERS: Final = "listTransitiveMemberUsers"
ASSIGN_NUMBER: Final = "assignNumber"
UNASSIGN_NUMBER: Final = "unassignNumber"
GET_OPERATION: Final = "getOperation"
LIST_NUMBER_ASSIGNMENTS: Final = "listNumberAssignments"
GET_NUMBER_ASSIGNMENT: Final = "getNumberAssignment"
GET_USER: Final = "getUser"
GET_USER_CONFIGURATION: Final = "getUserConfiguration"
LIST_USER_CONFIGURATIONS: Final = "listUserConfigurations"
GET_POLICY_ID: Final = "getPolicyId"
ASSIGN_POLICY: Final = "assignPolicy"
UNASSIGN_POLICY: Final = "unassignPolicy"
USERS_DELTA: Final = "usersDelta"
GROUPS_DELTA: Final = "groupsDelta"
UNAUTHORIZED: Final = "unauthorized"
UNKNOWN: Final = "unknown"

#: Route names that requests are counted under and faults can target.
ROUTE_NAMES: Final[tuple[str, ...]] = (
    LIST_TRANSITIVE_MEMBER_USERS,
    ASSIGN_NUMBER,
    UNASSIGN_NUMBER,
    GET_OPERATION,
    LIST_NUMBER_ASSIGNMENTS,
    GET_NUMBER_ASSIGNMENT,
    GET_USER,
    GET_USER_CONFIGURATION,
    LIST_USER_CONFIGURATIONS,
    GET_POLICY_ID,
    ASSIGN_POLICY,
    UNASSIGN_POLICY,
    USERS_DELTA,
    GROUPS_DELTA,
)
#: The routes under /admin/teams, which share the `teamsAdmin` rate limit.
TEAMS_ADMIN_ROUTES: Final = frozenset({
    ASSIGN_NUMBER, UNASSIGN_NUMBER, GET_OPERATION, LIST_NUMBER_ASSIGNMENTS,
    GET_NUMBER_ASSIGNMENT, GET_USER_CONFIGURATION, LIST_USER_CONFIGURATIONS, GET_POLICY_ID,
    ASSIGN_POLICY, UNASSIGN_POLICY,
})
#: The directory routes (/users, /groups), which share the `directory` rate limit, and what
#: each request costs there in Graph's resource units (identity and access throttling table:
#: transitiveMembers 5, anything not listed 1).
RESOURCE_UNITS: Final = {
    LIST_TRANSITIVE_MEMBER_USERS: 5, GET_USER: 1, USERS_DELTA: 1, GROUPS_DELTA: 1,
}
DIRECTORY_ROUTES: Final = frozenset(RESOURCE_UNITS)

_NUMBER_MANAGEMENT: Final = ("admin", "teams", "telephoneNumberManagement")
_USER_CONFIGURATIONS: Final = ("admin", "teams", "userConfigurations")
_POLICY: Final = ("admin", "teams", "policy")
_TEAMS_ADMIN_NS: Final = "microsoft.graph.teamsAdministration."
_USER_CASTS: Final = frozenset({"graph.user", "microsoft.graph.user"})
# Delta is an OData function: the SDK calls `delta()`, Graph's own links say `delta`.
_DELTA_SEGMENTS: Final = frozenset({"delta", "delta()", "microsoft.graph.delta",
                                    "microsoft.graph.delta()"})
_ACTIONS: Final = {"assignNumber": ASSIGN_NUMBER, "unassignNumber": UNASSIGN_NUMBER}
_POLICY_ACTIONS: Final = {"assign": ASSIGN_POLICY, "unassign": UNASSIGN_POLICY}
_OPERATION_KEY_RE: Final = re.compile(r"^operations\('(?P<key>(?:[^']|'')+)'\)$")


@dataclass(frozen=True)
class Route:
    """A matched route: its name, the one method it allows, and the key in its path."""

    name: str
    method: str
    key: str = ""


def match_path(raw_path: str) -> Route | None:
    """The route of a raw path (as sent, without the query), or None if it has none."""
    segments = [unquote(part) for part in raw_path.split("/")[1:]]
    return _match_route(segments[1:]) if segments[:1] == ["v1.0"] else None


def route_name(raw_path: str) -> str:
    """The route name a request path is counted under (one of `ROUTE_NAMES`), or `unknown`.

    For tools in front of the simulator (the fault proxy) that must name requests exactly as
    the simulator counts them. `raw_path` is the path as sent, without the query.
    """
    route = match_path(raw_path)
    return UNKNOWN if route is None else route.name


def _match_route(segments: list[str]) -> Route | None:
    """Map decoded path segments after `/v1.0` to a route, or None."""
    route = _match_directory_route(segments) or _match_teams_route(segments)
    if route is not None:
        return route
    match segments:
        case [*prefix, "numberAssignments"] if tuple(prefix) == _NUMBER_MANAGEMENT:
            route = Route(LIST_NUMBER_ASSIGNMENTS, "GET")
        case [*prefix, "numberAssignments", item] if tuple(prefix) == _NUMBER_MANAGEMENT:
            action = item.removeprefix(_TEAMS_ADMIN_NS)
            if action in _ACTIONS:
                route = Route(_ACTIONS[action], "POST")
            elif "." not in item and action != "updateNumber":
                # Other actions and functions (updateNumber, ...) are not simulated.
                route = Route(GET_NUMBER_ASSIGNMENT, "GET", item)
        case [*prefix, "operations", op_id] if tuple(prefix) == _NUMBER_MANAGEMENT:
            route = Route(GET_OPERATION, "GET", op_id)
        case [*prefix, item] if tuple(prefix) == _NUMBER_MANAGEMENT:
            key = _OPERATION_KEY_RE.fullmatch(item)
            if key:
                route = Route(GET_OPERATION, "GET", key["key"].replace("''", "'"))
    return route


def _match_directory_route(segments: list[str]) -> Route | None:
    match segments:
        case ["groups", group_id, "transitiveMembers", cast] if cast in _USER_CASTS:
            return Route(LIST_TRANSITIVE_MEMBER_USERS, "GET", group_id)
        case ["users", delta] if delta in _DELTA_SEGMENTS:
            return Route(USERS_DELTA, "GET")
        case ["groups", delta] if delta in _DELTA_SEGMENTS:
            return Route(GROUPS_DELTA, "GET")
        case ["users", user_id] if "(" not in user_id:
            return Route(GET_USER, "GET", user_id)
    return None


def _match_teams_route(segments: list[str]) -> Route | None:
    if tuple(segments) == _USER_CONFIGURATIONS:
        return Route(LIST_USER_CONFIGURATIONS, "GET")
    prefix, last = tuple(segments[:-1]), (segments[-1] if segments else "")
    short = last.removeprefix(_TEAMS_ADMIN_NS)
    if prefix == _USER_CONFIGURATIONS:
        return Route(GET_USER_CONFIGURATION, "GET", last)
    if prefix == _POLICY and short.startswith("getPolicyId("):
        # Parsed by the handler, so a malformed call is counted (and refused) as getPolicyId.
        return Route(GET_POLICY_ID, "GET", short)
    if prefix == (*_POLICY, "userAssignments") and short in _POLICY_ACTIONS:
        return Route(_POLICY_ACTIONS[short], "POST")
    return None
