"""The HTTP face of the simulator: Graph v1.0 routes, `/_simulator/` control routes, a server.

`Simulator` turns a request (method, raw path, raw query, headers, body) into a reply and is
plain synchronous code guarded by one lock, so it can be driven from the aiohttp loop thread and
from test code at the same time. `create_app` wraps it in an aiohttp application;
`SimulatorServer` runs that application on 127.0.0.1 in a background thread.

Requests and replies are `graph_simulator.protocol`'s; paths are matched to routes by
`graph_simulator.routing`, and each route is answered by its handler in `graph_simulator.routes`
(one module per resource).

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
import json
import math
import os
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeVar

from aiohttp import web
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
    Directory,
    Fault,
    LatencyFault,
    OperationFailure,
    RateLimit,
    Scenario,
    ScenarioError,
    describe_validation_error,
    load_directory,
    load_scenario,
    parse_directory,
    parse_scenario,
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
