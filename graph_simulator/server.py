"""The simulated Graph service: `Simulator.handle(request) → reply`, with no network I/O.

`Simulator` turns a `GraphRequest` (method, raw path, raw query, headers, body) into a `Reply`
and is plain synchronous code guarded by one lock, so it can be driven from the aiohttp loop
thread and from test code at the same time. Here it checks the token, matches the route
(`graph_simulator.routing`), applies the `/admin/teams` rate limit and injected faults, hands
the request to its route's handler (`graph_simulator.routes`), and counts and logs it; injected
latency is returned with the reply for the server to wait out. It also holds the world, writes
Teams state to the state file, and takes the control calls (scenario, directory, faults).
The HTTP server around it is `graph_simulator.http_server`.

Time: everything that measures time (the `/admin/teams` rate limit, delta token expiry) reads
the `clock` given to `Simulator` -- `time.monotonic` unless a test injects its own, so tests
move time forward instead of sleeping.
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import ValidationError

from graph_simulator.protocol import GraphHttpError, GraphRequest, Reply, bad_request
from graph_simulator.routes import HANDLERS, RouteContext
from graph_simulator.routes.numbers import number_assignment_json
from graph_simulator.routes.user_configurations import user_configuration_json
from graph_simulator.routing import (
    ASSIGN_NUMBER,
    ROUTE_NAMES,
    TEAMS_ADMIN_ROUTES,
    UNAUTHORIZED,
    UNKNOWN,
    Route,
    match_path,
)
from graph_simulator.scenario import (
    Behaviour,
    Directory,
    Fault,
    LatencyFault,
    OperationFailure,
    RateLimit,
    Scenario,
    ScenarioError,
    describe_validation_error,
)
from graph_simulator.world import TEAMS_STATE_ADAPTER, TeamsState, World, WorldError

DEFAULT_TOKEN: Final = "simulator-token"  # noqa: S105 -- a fixed test token, not a secret

_MAX_LOG_ENTRIES: Final = 100_000
_FAULT_CODES: Final = {
    429: "TooManyRequests",
    500: "generalException",
    502: "BadGateway",
    503: "serviceNotAvailable",
    504: "timeout",
}


class _RoutedError(GraphHttpError):
    """An error for a request that did match a route (so it is counted under that route)."""

    def __init__(self, route: Route, error: GraphHttpError) -> None:
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


def _camel_keys(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {"".join(part.capitalize() if index else part
                    for index, part in enumerate(str(key).split("_"))): value
            for key, value in changes.items()}


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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

    def update_behaviour(self, changes: Mapping[str, Any]) -> Behaviour:
        """Change some behaviour knobs (camelCase or snake_case names), keep the rest; returns
        the behaviour now in force. Raises ScenarioError naming a knob or value it refuses."""
        with self._lock:
            before = self._world.behaviour
            current = before.model_dump(by_alias=True)
            try:
                behaviour = Behaviour.model_validate({**current, **_camel_keys(changes)})
            except ValidationError as error:
                raise ScenarioError(describe_validation_error(error, "behaviour")) from None
            self._world.behaviour = behaviour
            if behaviour.rate_limit != before.rate_limit:
                self._bucket = self._new_bucket()
            return behaviour

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

    def _authorise_and_route(self, request: GraphRequest) -> Route:
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
            raise bad_request(f"Invalid request path '{request.raw_path}': empty path segment "
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

    def _dispatch(self, route: Route, request: GraphRequest) -> Reply:
        context = RouteContext(world=self._world, base_url=self.base_url, clock=self._clock,
                               save_state=self._save_state)
        return HANDLERS[route.name](context, route, request)
