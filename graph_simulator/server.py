"""The HTTP face of the simulator: Graph v1.0 routes, `/_simulator/` control routes, a server.

`Simulator` turns a request (method, raw path, raw query, headers, body) into a reply and is
plain synchronous code guarded by one lock, so it can be driven from the aiohttp loop thread and
from test code at the same time. `create_app` wraps it in an aiohttp application;
`SimulatorServer` runs that application on 127.0.0.1 in a background thread.

Requests and replies are `graph_simulator.protocol`'s; paths are matched to routes by
`graph_simulator.routing`.

Time: everything that measures time (the `/admin/teams` rate limit, delta token expiry) reads
the `clock` given to `Simulator` -- `time.monotonic` unless a test injects its own, so tests
move time forward instead of sleeping.

Control routes (no auth, never counted): `GET /_simulator/requests` (counts and log),
`POST /_simulator/requests/clear`, `GET /_simulator/state` (numbers and Teams users as Graph
shows them), `POST /_simulator/scenario` (whole world), `POST /_simulator/directory` (users and
groups only), `POST /_simulator/faults` (`Fault`), `POST /_simulator/faults/latency`
(`LatencyFault`), `POST /_simulator/faults/operation` (`OperationFailure`) and
`POST /_simulator/delta/expire` (every delta token answers 410 from then on).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import math
import os
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeVar
from urllib.parse import parse_qsl, quote

from aiohttp import web
from pydantic import ValidationError

from graph_simulator.delta import (
    GROUP_PROPERTIES,
    DeltaKind,
    DeltaToken,
    group_changes,
    page_groups,
    page_users,
    parse_group_filter,
    user_changes,
)
from graph_simulator.protocol import GraphHttpError, GraphRequest, Reply
from graph_simulator.protocol import bad_request as _bad_request
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
    ROUTE_NAMES,
    TEAMS_ADMIN_ROUTES,
    UNASSIGN_NUMBER,
    UNASSIGN_POLICY,
    UNAUTHORIZED,
    UNKNOWN,
    USERS_DELTA,
    match_path,
)
from graph_simulator.routing import Route as _Route
from graph_simulator.scenario import (
    USER_GRAPH_FIELDS,
    AssignmentCategory,
    Directory,
    Fault,
    LatencyFault,
    NumberType,
    OperationFailure,
    RateLimit,
    Scenario,
    ScenarioError,
    User,
    describe_validation_error,
    load_directory,
    load_scenario,
    normalise_number,
    parse_directory,
    parse_scenario,
)
from graph_simulator.world import (
    TEAMS_STATE_ADAPTER,
    NumberRecord,
    Operation,
    TeamsState,
    UserConfiguration,
    World,
    WorldError,
    number_assignment_id,
)

DEFAULT_TOKEN: Final = "simulator-token"  # noqa: S105 -- a fixed test token, not a secret

# What the userConfigurations skip tokens are bound to.
_USER_CONFIGURATIONS_SCOPE: Final = "userConfigurations"
_POLICY_USER_ASSIGNMENT_TYPE: Final = (
    "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment"
)
_QUOTED: Final = r"'(?:[^']|'')*'"
# Named function parameters, in either order, separated by the comma the SDK loses (§4.7).
_POLICY_ID_ARGS_RE: Final = re.compile(
    rf"^getPolicyId\((?P<n1>type|name)=(?P<v1>{_QUOTED}),(?P<n2>type|name)=(?P<v2>{_QUOTED})\)$"
)

# Returned for a user when the request has no $select (Graph's documented default set; note
# that accountEnabled is not in it).
_DEFAULT_USER_PROPERTIES: Final = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
    "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id",
)
_USER_PROPERTIES: Final = frozenset(
    User.model_fields[name].alias or name for name in USER_GRAPH_FIELDS
)
_CONFIGURATION_PROPERTIES: Final = (
    "id", "userPrincipalName", "tenantId", "isEnterpriseVoiceEnabled", "telephoneNumbers",
    "effectivePolicyAssignments", "featureTypes", "accountType", "createdDateTime",
    "modifiedDateTime",
)
_OPERATION_TYPE: Final = "#microsoft.graph.teamsAdministration.telephoneNumberLongRunningOperation"
_NUMBER_TYPES: Final = frozenset({"directRouting", "callingPlan", "operatorConnect"})
_CATEGORIES: Final = frozenset({"primary", "private", "alternate"})
_MAX_LOG_ENTRIES: Final = 100_000
_MAX_DIRECTORY_PAGE: Final = 999
_DEFAULT_CONFIGURATION_PAGE: Final = 100
_MAX_CONFIGURATION_PAGE: Final = 999
_DEFAULT_NUMBER_PAGE: Final = 500
_MAX_NUMBER_PAGE: Final = 1000
_FILTER_CLAUSE_RE: Final = re.compile(
    r"(?P<field>telephoneNumber|assignmentTargetId) eq '(?P<value>(?:[^']|'')*)'"
)
_FAULT_CODES: Final = {
    429: "TooManyRequests",
    500: "generalException",
    502: "BadGateway",
    503: "serviceNotAvailable",
    504: "timeout",
}


class _RoutedError(GraphHttpError):
    """An error for a request that did match a route (so it is counted under that route)."""

    def __init__(self, route: _Route, error: GraphHttpError) -> None:
        super().__init__(error.status, error.code, error.message, error.headers)
        self.route = route


@dataclass
class _ActiveFault:
    status: int
    remaining: int
    passes: int
    retry_after_seconds: int | None
    code: str | None
    message: str | None


@dataclass
class _ActiveLatency:
    seconds: float
    remaining: int


class _TokenBucket:
    """Refills continuously at `rate` per second up to one second's worth (at least 1)."""

    def __init__(self, limit: RateLimit, now: float) -> None:
        self._rate = limit.requests_per_second
        self._capacity = max(1.0, self._rate)
        self._tokens = self._capacity
        self._updated = now

    def take(self, now: float) -> int | None:
        """Spend one token; None if there was one, else the whole seconds until there is."""
        # max(): a test clock may be set back; never refill by a negative amount.
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return max(1, math.ceil((1 - self._tokens) / self._rate))


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_query(raw_query: str) -> dict[str, str]:
    # parse_qsl decodes '+' as a space, exactly as a server must: clients that want a plus sign
    # in a value have to send %2B.
    options: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        if name in options:
            raise _bad_request(f"Query option '{name}' was specified more than once, but it "
                               "must be specified at most once.")
        options[name] = value
    return options


def _reject_unsupported_options(options: Mapping[str, str], allowed: frozenset[str]) -> None:
    for name in options:
        if name.startswith("$") and name not in allowed:
            supported = ", ".join(sorted(allowed)) or "none"
            raise _bad_request(
                f"The query option '{name}' is not supported by the Graph simulator on this "
                f"route (supported: {supported})."
            )


def _int_option(options: Mapping[str, str], name: str, *, default: int, low: int, high: int,
                code: str = "BadRequest") -> int:
    raw = options.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]+", raw):
        raise _bad_request(f"Invalid value '{raw}' for query option '{name}'.", code)
    value = int(raw)
    if not low <= value <= high:
        if name == "$top":
            raise _bad_request(f"Invalid page size specified: '{value}'. Must be between "
                               f"{low} and {high} inclusive.", code)
        raise _bad_request(f"Invalid value '{value}' for query option '{name}'.", code)
    return value


def _query_string(options: Mapping[str, str]) -> str:
    return "&".join(f"{name}={quote(value, safe=',')}" for name, value in options.items())


def _user_json(user: User, properties: tuple[str, ...]) -> dict[str, Any]:
    everything = user.model_dump(mode="json", by_alias=True)
    return {name: everything[name] for name in properties}


def _parse_filter(expression: str) -> list[tuple[str, str]]:
    clauses = expression.split(" and ")
    parsed: list[tuple[str, str]] = []
    for clause in clauses:
        match = _FILTER_CLAUSE_RE.fullmatch(clause)
        if match is None or len(clauses) > 2:
            raise _bad_request(
                f"Unsupported $filter '{expression}': the Graph simulator supports only "
                "telephoneNumber eq '...' and assignmentTargetId eq '...', optionally joined "
                "by 'and'."
            )
        parsed.append((match["field"], match["value"].replace("''", "'")))
    return parsed


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


class Simulator:
    """The simulated Graph service behind the HTTP server: thread-safe, synchronous."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        token: str = DEFAULT_TOKEN,
        state_file: Path | None = None,
        base_url: str = "http://127.0.0.1/v1.0",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Build the world; with a `state_file` that exists, Teams state comes from it.

        `clock` is a monotonic clock in seconds, used for the rate limit and delta token
        expiry; tests pass one they can move forward. Raises ScenarioError if the state file
        cannot be read or validated.
        """
        self._lock = threading.RLock()
        self._token = token
        self._state_file = state_file
        self._clock = clock
        self.base_url = base_url
        self._counts: Counter[str] = Counter()
        # Bounded so a long demo run cannot grow without limit; counts are never trimmed.
        self._log: deque[dict[str, Any]] = deque(maxlen=_MAX_LOG_ENTRIES)
        self._faults: dict[str, _ActiveFault] = {}
        self._latency: dict[str, _ActiveLatency] = {}
        self._world = self._new_world(scenario, self._read_state_file())
        self._bucket = self._new_bucket()
        self._save_state()

    # -- world and persistence ---------------------------------------------------------------

    @staticmethod
    def _new_world(scenario: Scenario, teams_state: TeamsState | None) -> World:
        return World(scenario, clock=_now_iso, new_id=lambda: str(uuid.uuid4()),
                     teams_state=teams_state)

    def _read_state_file(self) -> TeamsState | None:
        if self._state_file is None or not self._state_file.exists():
            return None
        try:
            return TEAMS_STATE_ADAPTER.validate_json(self._state_file.read_bytes())
        except ValidationError as error:
            raise ScenarioError(describe_validation_error(error, str(self._state_file))) from None
        except OSError as error:
            raise ScenarioError(f"{self._state_file}: cannot read: {error.strerror}") from None

    def _save_state(self) -> None:
        if self._state_file is None:
            return
        data = TEAMS_STATE_ADAPTER.dump_json(self._world.teams_state(), by_alias=True, indent=2)
        # Write-then-rename so a demo killed mid-write never leaves a truncated state file.
        temporary = self._state_file.with_name(self._state_file.name + ".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, self._state_file)

    def _new_bucket(self) -> _TokenBucket | None:
        limit = self._world.behaviour.rate_limit
        return None if limit is None else _TokenBucket(limit, self._clock())

    def load_scenario(self, scenario: Scenario) -> None:
        """Replace the whole world (directory, Teams state) and clear faults and the rate limit.

        Delta tokens issued before answer 410 afterwards: they belong to the old world.
        """
        with self._lock:
            self._world = self._new_world(scenario, None)
            self._faults.clear()
            self._latency.clear()
            self._bucket = self._new_bucket()
            self._save_state()

    def replace_directory(self, directory: Directory) -> None:
        """Replace users and groups (a new directory version for delta); Teams numbers stay.

        Teams users follow: see `World.replace_directory`.
        """
        with self._lock:
            self._world.replace_directory(directory)
            self._save_state()

    def expire_delta_tokens(self) -> None:
        """Make every delta and skip token issued so far answer 410 Gone."""
        with self._lock:
            self._world.expire_delta_state()

    @staticmethod
    def _check_route(route: str, source: str) -> None:
        if route not in ROUTE_NAMES:
            raise ScenarioError(f"{source}: route: unknown route {route!r} "
                                f"(known: {', '.join(ROUTE_NAMES)})")

    def inject_fault(self, fault: Fault) -> None:
        """Make the next `fault.count` requests to `fault.route` fail with `fault.status`."""
        self._check_route(fault.route, "fault")
        with self._lock:
            self._faults[fault.route] = _ActiveFault(
                fault.status, fault.count, fault.after, fault.retry_after_seconds, fault.code,
                fault.message,
            )

    def inject_latency(self, latency: LatencyFault) -> None:
        """Delay the answers to the next `latency.count` requests to `latency.route`."""
        self._check_route(latency.route, "latency")
        with self._lock:
            self._latency[latency.route] = _ActiveLatency(latency.latency_ms / 1000,
                                                          latency.count)

    def inject_operation_failure(self, failure: OperationFailure) -> None:
        """Make the next `failure.count` operations of `failure.route` end `failed`."""
        kind: Literal["assign", "unassign"] = (
            "assign" if failure.route == ASSIGN_NUMBER else "unassign"
        )
        with self._lock:
            self._world.fail_next_operations(kind, failure.status_detail, failure.count)

    # -- observability -----------------------------------------------------------------------

    def request_counts(self) -> dict[str, int]:
        """Graph requests answered so far, per route name (plus `unauthorized`, `unknown`)."""
        with self._lock:
            return dict(self._counts)

    def request_log(self) -> list[dict[str, Any]]:
        """One entry per Graph request, oldest first."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    def clear_requests(self) -> None:
        """Forget counts and log."""
        with self._lock:
            self._counts.clear()
            self._log.clear()

    def number_assignment_resources(self) -> list[dict[str, Any]]:
        """Every number as Graph's list would show it."""
        with self._lock:
            return [number_assignment_json(r) for r in self._world.number_assignments()]

    def number_assignments(self) -> dict[str, str | None]:
        """Number → `assignmentTargetId` as Graph lists it (a pending assignment included)."""
        with self._lock:
            return {r.telephone_number: r.assignment_target_id
                    for r in self._world.number_assignments()}

    def user_configuration_resources(self) -> list[dict[str, Any]]:
        """Every user present in Teams as a teamsUserConfiguration (not counted as a read)."""
        with self._lock:
            tenant_id = self._world.tenant.id
            return [user_configuration_json(configuration, tenant_id)
                    for configuration in self._world.user_configurations()]

    # -- Graph requests ----------------------------------------------------------------------

    def handle(self, request: GraphRequest) -> Reply:
        """Answer one Graph request, counting and logging it."""
        client_request_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        request_id = str(uuid.uuid4())
        route_name = UNKNOWN
        with self._lock:
            try:
                route = self._authorise_and_route(request)
                route_name = route.name
                self._apply_rate_limit(route.name)
                self._apply_fault(route.name)
                reply = self._dispatch(route, request)
            except GraphHttpError as error:
                if isinstance(error, _RoutedError):
                    route_name = error.route.name
                elif error.status == 401:
                    route_name = UNAUTHORIZED
                reply = self._error_reply(error, request_id, client_request_id)
            except WorldError as error:
                reply = self._error_reply(
                    GraphHttpError(error.status, error.code, error.message),
                    request_id, client_request_id,
                )
            reply.headers["request-id"] = request_id
            reply.headers["client-request-id"] = client_request_id
            reply.delay_seconds = self._take_latency(route_name)
            self._counts[route_name] += 1
            self._log.append({
                "method": request.method,
                "route": route_name,
                "path": request.raw_path,
                "query": request.raw_query,
                "status": reply.status,
                "consistencyLevel": request.headers.get("ConsistencyLevel"),
                "authorization": "Authorization" in request.headers,
            })
        return reply

    @staticmethod
    def _error_reply(error: GraphHttpError, request_id: str, client_request_id: str) -> Reply:
        body = {"error": {
            "code": error.code,
            "message": error.message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }}
        return Reply(error.status, body, dict(error.headers), "application/json")

    def _authorise_and_route(self, request: GraphRequest) -> _Route:
        authorization = request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        if not authorization:
            raise GraphHttpError(401, "InvalidAuthenticationToken", "Access token is empty.")
        if scheme.lower() != "bearer" or token != self._token:
            raise GraphHttpError(401, "InvalidAuthenticationToken",
                                 "Access token validation failure. Invalid audience.")
        if "//" in request.raw_path:
            # The SDK's default base URL yields '/v1.0//admin/...'; whether Graph tolerates that
            # is undocumented, so refuse it and make clients set a base URL without a slash.
            raise _bad_request(f"Invalid request path '{request.raw_path}': empty path segment "
                               "(double slash).")
        route = match_path(request.raw_path)
        if route is None:
            raise GraphHttpError(404, "NotFound",
                                 f"Resource not found for the segment path '{request.raw_path}' "
                                 "(the Graph simulator does not implement it).")
        if request.method != route.method:
            error = GraphHttpError(405, "Request_BadRequest",
                                   f"The HTTP method '{request.method}' is not allowed for "
                                   f"'{request.raw_path}'.", {"Allow": route.method})
            # Still a request to a known route: count it there, not under 'unknown'.
            raise _RoutedError(route, error)
        return route

    def _apply_rate_limit(self, route_name: str) -> None:
        if self._bucket is None or route_name not in TEAMS_ADMIN_ROUTES:
            return
        wait = self._bucket.take(self._clock())
        if wait is not None:
            raise GraphHttpError(429, "TooManyRequests",
                                 "Too many requests: the rate limit for Teams administration "
                                 "requests in this tenant was exceeded.",
                                 {"Retry-After": str(wait)})

    def _take_latency(self, route_name: str) -> float:
        latency = self._latency.get(route_name)
        if latency is None:
            return 0.0
        latency.remaining -= 1
        if latency.remaining <= 0:
            del self._latency[route_name]
        return latency.seconds

    def _apply_fault(self, route_name: str) -> None:
        fault = self._faults.get(route_name)
        if fault is None:
            return
        if fault.passes > 0:
            fault.passes -= 1
            return
        fault.remaining -= 1
        if fault.remaining <= 0:
            del self._faults[route_name]
        headers = {}
        if fault.retry_after_seconds is not None:
            headers["Retry-After"] = str(fault.retry_after_seconds)
        raise GraphHttpError(
            fault.status,
            fault.code or _FAULT_CODES.get(fault.status, "UnknownError"),
            fault.message or f"Injected fault: HTTP {fault.status}.",
            headers,
        )

    def _dispatch(self, route: _Route, request: GraphRequest) -> Reply:
        handlers: dict[str, Callable[[_Route, GraphRequest], Reply]] = {
            LIST_TRANSITIVE_MEMBER_USERS: self._list_transitive_member_users,
            ASSIGN_NUMBER: self._assign_number,
            UNASSIGN_NUMBER: self._unassign_number,
            GET_OPERATION: self._get_operation,
            LIST_NUMBER_ASSIGNMENTS: self._list_number_assignments,
            GET_NUMBER_ASSIGNMENT: self._get_number_assignment,
            GET_USER: self._get_user,
            GET_USER_CONFIGURATION: self._get_user_configuration,
            LIST_USER_CONFIGURATIONS: self._list_user_configurations,
            GET_POLICY_ID: self._get_policy_id,
            ASSIGN_POLICY: self._assign_policy,
            UNASSIGN_POLICY: self._unassign_policy,
            USERS_DELTA: self._users_delta,
            GROUPS_DELTA: self._groups_delta,
        }
        return handlers[route.name](route, request)

    # -- directory ---------------------------------------------------------------------------

    def _list_transitive_member_users(self, route: _Route, request: GraphRequest) -> Reply:
        options = _parse_query(request.raw_query)
        _reject_unsupported_options(options, frozenset({"$select", "$top", "$count",
                                                        "$skiptoken"}))
        if request.headers.get("ConsistencyLevel") != "eventual" or options.get("$count") != "true":
            raise _bad_request(
                "Casting transitiveMembers to microsoft.graph.user is an advanced query: every "
                "request, @odata.nextLink pages included, needs the header 'ConsistencyLevel: "
                "eventual' and $count=true.",
                "Request_UnsupportedQuery",
            )
        top = _int_option(options, "$top", default=self._world.behaviour.default_page_size,
                          low=1, high=_MAX_DIRECTORY_PAGE, code="Request_UnsupportedQuery")
        properties = self._selected_user_properties(options.get("$select"))
        offset = self._decode_skiptoken(options.get("$skiptoken"), route.key)
        users = self._world.transitive_member_users(route.key)
        body: dict[str, Any] = {"@odata.context": self._users_context(options.get("$select"))}
        if offset == 0:
            body["@odata.count"] = len(users)
        if offset + top < len(users):
            link_options: dict[str, str] = {
                name: options[name] for name in ("$select", "$top", "$count") if name in options
            }
            link_options["$skiptoken"] = _encode_skiptoken(route.key, offset + top)
            body["@odata.nextLink"] = self._next_link(request, link_options)
        body["value"] = [_user_json(user, properties) for user in users[offset:offset + top]]
        return Reply(200, body)

    def _next_link(self, request: GraphRequest, options: Mapping[str, str]) -> str:
        # Absolute, with the simulator's own origin: clients follow it as-is (with_url), so a
        # relative or graph.microsoft.com link would escape the simulator.
        path = request.raw_path.removeprefix("/v1.0")
        query = _query_string(options)
        return f"{self.base_url}{path}?{query}" if query else f"{self.base_url}{path}"

    def _users_context(self, select: str | None) -> str:
        selection = f"({select})" if select else ""
        return f"{self.base_url}/$metadata#users{selection}"

    @staticmethod
    def _selected_user_properties(select: str | None) -> tuple[str, ...]:
        if select is None:
            return _DEFAULT_USER_PROPERTIES
        names = [name.strip() for name in select.split(",")]
        for name in names:
            if name not in _USER_PROPERTIES:
                raise _bad_request(f"Could not find a property named '{name}' on type "
                                   "'microsoft.graph.user'.", "Request_BadRequest")
        return tuple(dict.fromkeys(["id", *names]))

    @staticmethod
    def _decode_skiptoken(token: str | None, group_id: str) -> int:
        if token is None:
            return 0
        decoded = _decode_skiptoken(token)
        if decoded is None or decoded[0] != group_id:
            raise _bad_request("Invalid $skiptoken.", "Request_BadRequest")
        return decoded[1]

    # -- Teams numbers -----------------------------------------------------------------------

    def _list_number_assignments(self, route: _Route, request: GraphRequest) -> Reply:
        del route
        options = _parse_query(request.raw_query)
        _reject_unsupported_options(options, frozenset({"$filter", "$top", "$skip"}))
        top = _int_option(options, "$top", default=_DEFAULT_NUMBER_PAGE, low=1,
                          high=_MAX_NUMBER_PAGE)
        skip = _int_option(options, "$skip", default=0, low=0, high=2**31)
        clauses = _parse_filter(options["$filter"]) if "$filter" in options else []
        items = [number_assignment_json(record) for record in self._world.number_assignments()]
        items = [item for item in items
                 if all(item[name] == value for name, value in clauses)]
        body: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/$metadata#admin/teams/telephoneNumberManagement/"
                              "numberAssignments",
        }
        if skip + top < len(items):
            link_options: dict[str, str] = {
                name: options[name] for name in ("$filter", "$top") if name in options
            }
            link_options["$skip"] = str(skip + top)
            body["@odata.nextLink"] = self._next_link(request, link_options)
        body["value"] = items[skip:skip + top]
        return Reply(200, body)

    def _get_number_assignment(self, route: _Route, request: GraphRequest) -> Reply:
        del request
        for record in self._world.number_assignments():
            if record.id == route.key:
                body = {
                    "@odata.context": f"{self.base_url}/$metadata#admin/teams/"
                                      "telephoneNumberManagement/numberAssignments/$entity",
                    **number_assignment_json(record),
                }
                return Reply(200, body)
        raise GraphHttpError(404, "NotFound", f"Number assignment '{route.key}' was not found.")

    def _assign_number(self, route: _Route, request: GraphRequest) -> Reply:
        del route
        body = _action_body(request.body, "assignNumber", required=(
            "telephoneNumber", "assignmentTargetId", "numberType",
        ), optional=("assignmentCategory", "locationId"))
        number = _number_parameter(body)
        target = _string_parameter(body, "assignmentTargetId")
        category = body.get("assignmentCategory") or "primary"
        if category not in _CATEGORIES:
            raise _bad_request(f"Invalid value '{category}' for parameter 'assignmentCategory' "
                               f"(expected one of {', '.join(sorted(_CATEGORIES))}).")
        location = body.get("locationId")
        if location is not None and not isinstance(location, str):
            raise _bad_request("Parameter 'locationId' must be a string.")
        operation = self._world.request_assign(number, _number_type_parameter(body), target,
                                               _category(category), location)
        return self._accepted(operation)

    def _unassign_number(self, route: _Route, request: GraphRequest) -> Reply:
        del route
        body = _action_body(request.body, "unassignNumber",
                            required=("telephoneNumber", "numberType"), optional=())
        operation = self._world.request_unassign(_number_parameter(body),
                                                 _number_type_parameter(body))
        return self._accepted(operation)

    def _accepted(self, operation: Operation) -> Reply:
        self._save_state()
        location = (f"{self.base_url}/admin/teams/telephoneNumberManagement/"
                    f"operations('{operation.id}')")
        return Reply(202, None, {"Location": location})

    def _get_operation(self, route: _Route, request: GraphRequest) -> Reply:
        del request
        operation = self._world.poll_operation(route.key)
        self._save_state()
        entity: dict[str, Any] = {
            "@odata.type": _OPERATION_TYPE,
            "id": operation.id,
            "createdDateTime": operation.created_date_time,
            "status": operation.status,
            "numbers": [{
                "resourceLocation": f"{self.base_url}/admin/teams/telephoneNumberManagement/"
                                    f"numberAssignments/"
                                    f"{quote(number_assignment_id(operation.telephone_number))}",
                "status": operation.status,
                "statusDetail": operation.status_detail,
            }],
        }
        if self._world.behaviour.operation_body_shape == "value":
            return Reply(200, {"value": entity})
        context = (f"{self.base_url}/$metadata#admin/teams/telephoneNumberManagement/"
                   "operations/$entity")
        return Reply(200, {"@odata.context": context, **entity})

    # -- users -------------------------------------------------------------------------------

    def _get_user(self, route: _Route, request: GraphRequest) -> Reply:
        options = _parse_query(request.raw_query)
        _reject_unsupported_options(options, frozenset({"$select"}))
        properties = self._selected_user_properties(options.get("$select"))
        user = self._world.find_user(route.key)
        if user is None:
            raise GraphHttpError(404, "Request_ResourceNotFound",
                                 f"Resource '{route.key}' does not exist or one of its queried "
                                 "reference-property objects are not present.")
        selection = f"({options['$select']})" if "$select" in options else ""
        return Reply(200, {"@odata.context": f"{self.base_url}/$metadata#users{selection}/$entity",
                           **_user_json(user, properties)})

    # -- Teams user configurations -----------------------------------------------------------

    def _get_user_configuration(self, route: _Route, request: GraphRequest) -> Reply:
        options = _parse_query(request.raw_query)
        _reject_unsupported_options(options, frozenset({"$select"}))
        properties = _selected_configuration_properties(options.get("$select"))
        try:
            configuration = self._world.read_user_configuration(route.key)
        finally:
            # A read can make a user visible (visibleAfterPolls), even one that answers 404.
            self._save_state()
        entity = _pick(user_configuration_json(configuration, self._world.tenant.id),
                       properties)
        if self._world.behaviour.user_configuration_body_shape == "value":
            return Reply(200, {"value": entity})
        selection = f"({options['$select']})" if "$select" in options else ""
        context = (f"{self.base_url}/$metadata#admin/teams/userConfigurations{selection}"
                   "/$entity")
        return Reply(200, {"@odata.context": context, **entity})

    def _list_user_configurations(self, route: _Route, request: GraphRequest) -> Reply:
        del route
        options = _parse_query(request.raw_query)
        _reject_unsupported_options(options, frozenset({"$select", "$top", "$skiptoken"}))
        properties = _selected_configuration_properties(options.get("$select"))
        top = _int_option(options, "$top", default=_DEFAULT_CONFIGURATION_PAGE, low=1,
                          high=_MAX_CONFIGURATION_PAGE)
        offset = self._decode_skiptoken(options.get("$skiptoken"), _USER_CONFIGURATIONS_SCOPE)
        tenant_id = self._world.tenant.id
        items = [_pick(user_configuration_json(configuration, tenant_id), properties)
                 for configuration in self._world.user_configurations()]
        body: dict[str, Any] = {
            "@odata.context": f"{self.base_url}/$metadata#admin/teams/userConfigurations",
        }
        if offset + top < len(items):
            link_options: dict[str, str] = {name: options[name] for name in ("$select", "$top")
                                            if name in options}
            link_options["$skiptoken"] = _encode_skiptoken(_USER_CONFIGURATIONS_SCOPE,
                                                           offset + top)
            body["@odata.nextLink"] = self._next_link(request, link_options)
        body["value"] = items[offset:offset + top]
        return Reply(200, body)

    # -- Teams policies ----------------------------------------------------------------------

    def _get_policy_id(self, route: _Route, request: GraphRequest) -> Reply:
        match = _POLICY_ID_ARGS_RE.fullmatch(route.key)
        if match is None or match["n1"] == match["n2"]:
            # Notably `getPolicyId(type='X'name='Y')`, which msgraph-sdk sends: OData needs
            # the comma between function parameters.
            raise _bad_request(f"Bad Request - Error in query syntax: '{route.key}' is not a "
                               "valid call of getPolicyId(type='...',name='...').")
        _reject_unsupported_options(_parse_query(request.raw_query), frozenset())
        arguments = {match["n1"]: match["v1"], match["n2"]: match["v2"]}
        policy_type, name = (arguments[key][1:-1].replace("''", "'") for key in ("type", "name"))
        value = [{"name": f"Tag:{policy.name}", "policyId": policy.id}
                 for policy in self._world.policies_named(policy_type, name)]
        context = (f"{self.base_url}/$metadata#Collection(microsoft.graph.teamsAdministration."
                   "policyIdentifierDetail)")
        return Reply(200, {"@odata.context": context, "value": value})

    def _assign_policy(self, route: _Route, request: GraphRequest) -> Reply:
        del route
        items = _policy_assignments(request.body, "assign", with_policy_id=True)
        self._world.assign_policies([(item["userId"], item["policyType"], item["policyId"])
                                     for item in items])
        self._save_state()
        return Reply(204)

    def _unassign_policy(self, route: _Route, request: GraphRequest) -> Reply:
        del route
        items = _policy_assignments(request.body, "unassign", with_policy_id=False)
        self._world.unassign_policies([(item["userId"], item["policyType"]) for item in items])
        self._save_state()
        return Reply(204)

    # -- delta -------------------------------------------------------------------------------

    def _users_delta(self, route: _Route, request: GraphRequest) -> Reply:
        del route
        return self._delta("users", request)

    def _groups_delta(self, route: _Route, request: GraphRequest) -> Reply:
        del route
        return self._delta("groups", request)

    def _delta(self, kind: DeltaKind, request: GraphRequest) -> Reply:
        options = _parse_query(request.raw_query)
        allowed = {"$select", "$skiptoken", "$deltatoken"}
        if kind == "groups":
            allowed.add("$filter")
        _reject_unsupported_options(options, frozenset(allowed))
        now = self._clock()
        latest = False
        # The round being read, as the skip token of its current page.
        state = self._delta_state(kind, request, options, now)
        if state is None:
            # A first call: query options here, a full read (or none, for $deltatoken=latest).
            select, filter_ = options.get("$select"), options.get("$filter")
            self._check_delta_query(kind, select, filter_)
            latest = options.get("$deltatoken") == "latest"
            state = DeltaToken(type="skip", kind=kind, select=select, filter=filter_,
                               sync_id=self._world.sync_id,
                               version=self._world.directory_version, since=None, page=0,
                               issued_at=now)
        pages = [[]] if latest else self._delta_pages(request, state)
        if state.page >= len(pages):
            raise _bad_request("Invalid $skiptoken.", "Request_BadRequest")
        body: dict[str, Any] = {"@odata.context": self._delta_context(kind, options)}
        if state.page + 1 < len(pages):
            # Every page of a round diffs the same two versions; expiry counts from its start.
            following = dataclasses.replace(state, page=state.page + 1)
            body["@odata.nextLink"] = self._next_link(request,
                                                      {"$skiptoken": following.encode()})
        else:
            delta = dataclasses.replace(state, type="delta", since=None, page=0, issued_at=now)
            body["@odata.deltaLink"] = self._next_link(request, {"$deltatoken": delta.encode()})
        body["value"] = pages[state.page]
        return Reply(200, body)

    def _delta_state(self, kind: DeltaKind, request: GraphRequest,
                     options: Mapping[str, str], now: float) -> DeltaToken | None:
        """The state token of a follow-up call (None for a first call), checked for expiry."""
        skip, delta = options.get("$skiptoken"), options.get("$deltatoken")
        if skip is None and delta in (None, "latest"):
            return None
        if skip is not None and delta is not None:
            raise _bad_request("Use either $skiptoken or $deltatoken, not both.")
        if any(name not in {"$skiptoken", "$deltatoken"} for name in options):
            raise _bad_request("Query options must not be repeated with a state token: they "
                               "are encoded in it. Call the nextLink or deltaLink as it is.")
        text = skip if skip is not None else delta
        assert text is not None
        token = DeltaToken.decode(text)
        expected_type = "skip" if skip is not None else "delta"
        if token is None or token.kind != kind or token.type != expected_type:
            raise _bad_request(f"Invalid ${'skiptoken' if skip is not None else 'deltatoken'}.",
                               "Request_BadRequest")
        world = self._world
        lifetime = world.behaviour.delta_token_lifetime_seconds
        known = (token.sync_id == world.sync_id
                 and world.directory_at(token.version) is not None
                 and (token.since is None or world.directory_at(token.since) is not None))
        if not known or now - token.issued_at > lifetime:
            fresh = {name: value for name, value in (("$select", token.select),
                                                     ("$filter", token.filter))
                     if value is not None}
            raise GraphHttpError(
                410, world.behaviour.delta_gone_error_code,
                "The sync state of this delta token is no longer available; restart with a "
                "full synchronization from the URL in the Location header.",
                {"Location": self._next_link(request, fresh)},
            )
        if token.type == "skip":
            return token
        # A delta token starts a new round: changes since its version, up to now.
        return dataclasses.replace(token, type="skip", version=world.directory_version,
                                   since=token.version, page=0, issued_at=now)

    def _check_delta_query(self, kind: DeltaKind, select: str | None,
                           filter_: str | None) -> None:
        if kind == "users":
            self._selected_user_properties(select)
            return
        _selected_group_properties(select)
        if filter_ is not None:
            try:
                parse_group_filter(filter_)
            except ValueError as error:
                raise _bad_request(str(error), "Request_UnsupportedQuery") from None

    def _delta_pages(self, request: GraphRequest,
                     state: DeltaToken) -> list[list[dict[str, Any]]]:
        world = self._world
        after = world.directory_at(state.version)
        before = world.directory_at(state.since) if state.since is not None else None
        assert after is not None  # checked with the token
        page_size = world.behaviour.default_page_size
        reason = world.behaviour.delta_removed_reason
        if state.kind == "users":
            properties = self._selected_user_properties(state.select)
            minimal = before is not None and "return=minimal" in request.headers.get("Prefer",
                                                                                     "")
            return page_users(user_changes(before, after, lambda u: _user_json(u, properties),
                                           minimal=minimal, removed_reason=reason), page_size)
        group_properties, members = _selected_group_properties(state.select)
        ids = parse_group_filter(state.filter) if state.filter is not None else None
        changes = group_changes(before, after, properties=group_properties, members=members,
                                ids=ids, removed_reason=reason)
        return page_groups(changes, page_size)

    def _delta_context(self, kind: DeltaKind, options: Mapping[str, str]) -> str:
        selection = f"({options['$select']})" if "$select" in options else ""
        return f"{self.base_url}/$metadata#{kind}{selection}"


def _encode_skiptoken(group_id: str, offset: int) -> str:
    # Opaque to clients, like Graph's; it names the group so a token cannot be replayed
    # against another one.
    raw = json.dumps([group_id, offset], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_skiptoken(token: str) -> tuple[str, int] | None:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        return None
    if (isinstance(decoded, list) and len(decoded) == 2 and isinstance(decoded[0], str)
            and isinstance(decoded[1], int) and decoded[1] >= 0):
        return decoded[0], decoded[1]
    return None


def _action_body(raw: bytes, action: str, *, required: tuple[str, ...],
                 optional: tuple[str, ...]) -> dict[str, Any]:
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise _bad_request("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise _bad_request(f"The request body of '{action}' must be a JSON object.")
    for name in body:
        if name not in required and name not in optional and not name.startswith("@odata."):
            raise _bad_request(f"The parameter '{name}' in the request payload is not a valid "
                               f"parameter for the operation '{action}'.")
    for name in required:
        if body.get(name) is None:
            raise _bad_request(f"The parameter '{name}' of the operation '{action}' is "
                               "required.")
    return body


def _string_parameter(body: Mapping[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not value:
        raise _bad_request(f"Parameter '{name}' must be a non-empty string.")
    return value


def _number_parameter(body: Mapping[str, Any]) -> str:
    try:
        return normalise_number(_string_parameter(body, "telephoneNumber"))
    except ValueError:
        raise _bad_request(f"Invalid telephoneNumber '{body['telephoneNumber']}'.") from None


def _number_type_parameter(body: Mapping[str, Any]) -> NumberType:
    value = body["numberType"]
    # Enum members are camelCase on the wire; PowerShell's PascalCase spellings are refused.
    if value == "directRouting":
        return "directRouting"
    if value == "callingPlan":
        return "callingPlan"
    if value == "operatorConnect":
        return "operatorConnect"
    raise _bad_request(f"Invalid value '{value}' for parameter 'numberType' (expected one of "
                       f"{', '.join(sorted(_NUMBER_TYPES))}).")


def _category(value: str) -> AssignmentCategory:
    if value == "private":
        return "private"
    if value == "alternate":
        return "alternate"
    return "primary"


def _pick(entity: dict[str, Any], properties: tuple[str, ...]) -> dict[str, Any]:
    return {name: entity[name] for name in properties}


def _selected_configuration_properties(select: str | None) -> tuple[str, ...]:
    if select is None:
        return _CONFIGURATION_PROPERTIES
    names = [name.strip() for name in select.split(",")]
    for name in names:
        if name not in _CONFIGURATION_PROPERTIES:
            raise _bad_request(f"Could not find a property named '{name}' on type "
                               "'microsoft.graph.teamsAdministration.teamsUserConfiguration'.")
    return tuple(dict.fromkeys(names))


def _selected_group_properties(select: str | None) -> tuple[tuple[str, ...], bool]:
    """(group properties, whether `members` is tracked); no $select: displayName and members."""
    if select is None:
        return GROUP_PROPERTIES, True
    names = [name.strip() for name in select.split(",")]
    for name in names:
        if name not in GROUP_PROPERTIES and name != "members":
            raise _bad_request(f"Could not find a property named '{name}' on type "
                               "'microsoft.graph.group' (the Graph simulator's groups delta "
                               f"tracks {', '.join(GROUP_PROPERTIES)} and members).",
                               "Request_BadRequest")
    return tuple(name for name in names if name != "members"), "members" in names


def _policy_assignments(raw: bytes, action: str, *,
                        with_policy_id: bool) -> list[dict[str, str]]:
    """The validated `value` items of a policy userAssignments assign/unassign body."""
    body = _action_body(raw, action, required=("value",), optional=())
    items = body["value"]
    if not isinstance(items, list) or not items:
        raise _bad_request(f"Parameter 'value' of the operation '{action}' must be a non-empty "
                           "array.")
    required = ("userId", "policyType", "policyId") if with_policy_id else ("userId",
                                                                            "policyType")
    validated: list[dict[str, str]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _bad_request(f"value[{index}] must be a teamsPolicyUserAssignment object.")
        odata_type = item.get("@odata.type", _POLICY_USER_ASSIGNMENT_TYPE)
        if odata_type != _POLICY_USER_ASSIGNMENT_TYPE:
            raise _bad_request(f"value[{index}]: unexpected @odata.type '{odata_type}' "
                               f"(expected '{_POLICY_USER_ASSIGNMENT_TYPE}').")
        for name in item:
            if name not in required and name != "@odata.type":
                raise _bad_request(f"value[{index}]: the property '{name}' is not valid for "
                                   f"the operation '{action}'.")
        for name in required:
            value = item.get(name)
            if not isinstance(value, str) or not value:
                raise _bad_request(f"value[{index}]: the property '{name}' is required and "
                                   "must be a non-empty string.")
        validated.append({name: item[name] for name in required})
    return validated


def user_configuration_json(configuration: UserConfiguration, tenant_id: str) -> dict[str, Any]:
    """A teamsUserConfiguration resource with exactly the documented v1.0 properties."""
    teams = configuration.teams
    return {
        "id": configuration.user.id,
        "userPrincipalName": configuration.user.user_principal_name,
        "tenantId": tenant_id,
        "isEnterpriseVoiceEnabled": teams.enterprise_voice_enabled,
        "telephoneNumbers": [
            {"telephoneNumber": number.telephone_number,
             "assignmentCategory": number.assignment_category}
            for number in configuration.numbers
        ],
        "effectivePolicyAssignments": [
            {"policyType": policy.type,
             "policyAssignment": {"displayName": policy.name, "assignmentType": "direct",
                                  "policyId": policy.id, "groupId": None}}
            for policy in configuration.policies
        ],
        # Teams Phone is what the simulator calls "licensed"; PhoneSystem is its feature name.
        "featureTypes": ["Teams", "PhoneSystem"] if teams.licensed else ["Teams"],
        "accountType": "user",
        "createdDateTime": teams.created_date_time,
        "modifiedDateTime": teams.modified_date_time,
    }



# -- aiohttp application ---------------------------------------------------------------------

SIMULATOR_KEY: Final = web.AppKey("simulator", Simulator)
_CONTROL_PREFIX: Final = "/_simulator/"


def _web_response(reply: Reply) -> web.Response:
    headers = dict(reply.headers)
    if reply.body is None:
        return web.Response(status=reply.status, headers=headers)
    headers["Content-Type"] = reply.content_type
    return web.Response(status=reply.status, headers=headers,
                        body=json.dumps(reply.body).encode())


def _control_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


_CONTROL_ROUTES: Final = {
    "requests": "GET", "requests/clear": "POST", "state": "GET", "scenario": "POST",
    "directory": "POST", "faults": "POST", "faults/latency": "POST",
    "faults/operation": "POST", "delta/expire": "POST",
}


async def _control(request: web.Request, simulator: Simulator, path: str) -> web.Response:
    """The `/_simulator/` routes: no auth, never counted as Graph requests."""
    name = path.removeprefix(_CONTROL_PREFIX)
    if name not in _CONTROL_ROUTES:
        return _control_error(404, "NotFound", f"No simulator control route {path}")
    if request.method != _CONTROL_ROUTES[name]:
        return _control_error(405, "MethodNotAllowed", f"{request.method} {path}")
    body = await request.read()
    try:
        if name == "requests":
            return web.json_response(
                {"counts": simulator.request_counts(), "log": simulator.request_log()})
        if name == "state":
            return web.json_response({
                "numberAssignments": simulator.number_assignment_resources(),
                "userConfigurations": simulator.user_configuration_resources(),
            })
        _control_action(simulator, name, body)
    except ScenarioError as error:
        return _control_error(400, "InvalidRequest", str(error))
    return web.json_response({"ok": True})


def _control_action(simulator: Simulator, name: str, body: bytes) -> None:
    if name == "requests/clear":
        simulator.clear_requests()
    elif name == "scenario":
        simulator.load_scenario(parse_scenario(body, "scenario"))
    elif name == "directory":
        simulator.replace_directory(parse_directory(body, "directory"))
    elif name == "faults":
        simulator.inject_fault(_parse_control_body(Fault, body, "fault"))
    elif name == "faults/latency":
        simulator.inject_latency(_parse_control_body(LatencyFault, body, "latency"))
    elif name == "faults/operation":
        simulator.inject_operation_failure(
            _parse_control_body(OperationFailure, body, "operationFailure"))
    else:
        simulator.expire_delta_tokens()


_ControlModel = TypeVar("_ControlModel", Fault, LatencyFault, OperationFailure)


def _parse_control_body(model: type[_ControlModel], body: bytes, source: str) -> _ControlModel:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise ScenarioError(describe_validation_error(error, source)) from None


async def _handle(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR_KEY]
    raw_path, _, raw_query = request.raw_path.partition("?")
    if raw_path.startswith(_CONTROL_PREFIX):
        return await _control(request, simulator, raw_path)
    graph_request = GraphRequest(
        method=request.method,
        raw_path=raw_path,
        raw_query=raw_query,
        headers=request.headers,
        body=await request.read(),
    )
    reply = simulator.handle(graph_request)
    if reply.delay_seconds > 0:
        # Injected latency: the request has been carried out, only the answer is late.
        await asyncio.sleep(reply.delay_seconds)
    return _web_response(reply)


def create_app(simulator: Simulator) -> web.Application:
    """An aiohttp application serving `simulator` (Graph routes and `/_simulator/` routes)."""
    # Whole scenarios are POSTed to /_simulator/scenario; aiohttp's 1 MB default is too small.
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[SIMULATOR_KEY] = simulator
    app.router.add_route("*", "/{tail:.*}", _handle)
    return app


async def start_runner(simulator: Simulator, port: int = 0) -> web.AppRunner:
    """Serve `simulator` on 127.0.0.1:`port` (0 = any free port) and set its base URL.

    The caller owns the returned runner and must `await runner.cleanup()`.
    """
    runner = web.AppRunner(create_app(simulator), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    simulator.base_url = f"http://127.0.0.1:{bound_port}/v1.0"
    return runner


# -- background-thread server ----------------------------------------------------------------


class SimulatorServer:
    """Runs the simulator on 127.0.0.1 in a background thread with its own event loop.

    Use as a context manager::

        with SimulatorServer(Path("scenarios/example-small.json")) as sim:
            client.request_adapter.base_url = sim.base_url
    """

    def __init__(
        self,
        scenario: Scenario | str | Path,
        *,
        token: str = DEFAULT_TOKEN,
        port: int = 0,
        state_file: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Validate the scenario (and state file) now; serving starts with `start()`/`with`.

        `clock` (monotonic seconds) drives the rate limit and delta token expiry.
        """
        loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.simulator = Simulator(loaded, token=token, state_file=state_file, clock=clock)
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    def start(self) -> Self:
        """Start serving; returns once the port is bound (raises if binding failed)."""
        if self._thread is not None:
            raise RuntimeError("SimulatorServer already started")
        self._thread = threading.Thread(target=self._run, name="graph-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("graph simulator did not start within 30 s")
        if self._loop is None:
            self._thread.join()
            if self._startup_error is not None:
                raise self._startup_error
            raise RuntimeError("graph simulator failed to start")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        runner: web.AppRunner | None = None
        try:
            runner = loop.run_until_complete(start_runner(self.simulator, self._port))
        except OSError as error:
            self._startup_error = error
        finally:
            # Wake start() whatever happened, so it never waits out its timeout on a crash.
            if runner is None:
                loop.close()
            else:
                self._loop = loop
            self._ready.set()
        if runner is None:
            return
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def stop(self) -> None:
        """Stop serving and join the thread; safe to call twice."""
        loop, thread = self._loop, self._thread
        self._loop = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=30)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1.0`, without a trailing slash."""
        return self.simulator.base_url

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`: where the `/_simulator/` control routes live."""
        return self.simulator.base_url.removesuffix("/v1.0")

    def request_counts(self) -> dict[str, int]:
        """Graph requests answered so far, per route name (plus `unauthorized`, `unknown`)."""
        return self.simulator.request_counts()

    def request_log(self) -> list[dict[str, Any]]:
        """One entry per Graph request: method, route, path, query, status, headers seen."""
        return self.simulator.request_log()

    def clear_requests(self) -> None:
        """Forget request counts and log."""
        self.simulator.clear_requests()

    def number_assignments(self) -> dict[str, str | None]:
        """Number → `assignmentTargetId` as Graph lists it (pending assignments included)."""
        return self.simulator.number_assignments()

    def state(self) -> list[dict[str, Any]]:
        """Every number as a Graph numberAssignment resource."""
        return self.simulator.number_assignment_resources()

    def load_scenario(self, scenario: Scenario | str | Path) -> None:
        """Replace the whole world and clear faults."""
        loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.simulator.load_scenario(loaded)

    def replace_directory(self, directory: Directory | Scenario | str | Path) -> None:
        """Replace users and groups only (Teams numbers stay): replays directory changes."""
        if isinstance(directory, str | Path):
            directory = load_directory(directory)
        if isinstance(directory, Scenario):
            directory = directory.directory
        self.simulator.replace_directory(directory)

    def inject_fault(
        self,
        route: str,
        status: int,
        *,
        count: int = 1,
        after: int = 0,
        retry_after_seconds: int | None = None,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        """Make `count` requests to `route`, after the next `after`, answer `status` with a
        Graph error body."""
        self.simulator.inject_fault(Fault(route=route, status=status, count=count, after=after,
                                          retry_after_seconds=retry_after_seconds,
                                          code=code, message=message))

    def inject_latency(self, route: str, latency_ms: int, *, count: int = 1) -> None:
        """Delay the answers to the next `count` requests to `route` by `latency_ms`.

        The requests are carried out at once; only their answers wait.
        """
        self.simulator.inject_latency(LatencyFault(route=route, latency_ms=latency_ms,
                                                   count=count))

    def inject_operation_failure(self, route: Literal["assignNumber", "unassignNumber"],
                                 status_detail: str, *, count: int = 1) -> None:
        """Make the next `count` operations accepted by `route` end `failed` with this detail."""
        self.simulator.inject_operation_failure(OperationFailure(
            route=route, status_detail=status_detail, count=count))

    def expire_delta_tokens(self) -> None:
        """Make every delta and skip token issued so far answer 410 Gone."""
        self.simulator.expire_delta_tokens()

    def user_configurations(self) -> list[dict[str, Any]]:
        """Every user present in Teams as a teamsUserConfiguration (not counted as a read)."""
        return self.simulator.user_configuration_resources()
