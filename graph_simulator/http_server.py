"""The simulator over HTTP: an aiohttp application, and a server on 127.0.0.1.

`create_app` serves a `Simulator`: Graph requests go to `Simulator.handle` exactly as sent (raw
path and query; aiohttp's router is not used, see `graph_simulator.routing`), paths under
`/_simulator/` to the control routes (`graph_simulator.control`), and two more to the identity
stand-ins (`graph_simulator.identity`): `POST /{tenant}/oauth2/v2.0/token` (Entra's token
endpoint; a client reaches it by sending `https://login.microsoftonline.com` here) and
`GET /metadata/identity/oauth2/token` (IMDS; `http://169.254.169.254` sent here).
`start_runner` serves it on a port of the running loop; `SimulatorServer` runs it in a
background thread with its own event loop, for tests and tools that want a Graph URL and
nothing else to manage.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Self
from urllib.parse import parse_qsl

from aiohttp import web
from pydantic import ValidationError

from graph_simulator.control import CONTROL_PREFIX, answer_control
from graph_simulator.identity import GRAPH_TOKEN_SECONDS
from graph_simulator.protocol import GraphRequest, Reply
from graph_simulator.scenario import (
    Behaviour,
    Directory,
    Fault,
    GrantedPermissions,
    LatencyFault,
    OperationFailure,
    Scenario,
    ScenarioError,
    describe_validation_error,
    load_directory,
    load_scenario,
)
from graph_simulator.server import DEFAULT_TOKEN, Simulator
from graph_simulator.serving_thread import ServingThread

SIMULATOR_KEY: Final = web.AppKey("simulator", Simulator)
#: Entra's token endpoint of one tenant (by id or domain), as azure-identity builds its URL.
_TOKEN_PATH_RE: Final = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$")
#: IMDS's token path.
IMDS_TOKEN_PATH: Final = "/metadata/identity/oauth2/token"  # noqa: S105 -- a path


def _web_response(reply: Reply) -> web.Response:
    headers = dict(reply.headers)
    if reply.body is None:
        return web.Response(status=reply.status, headers=headers)
    headers["Content-Type"] = reply.content_type
    return web.Response(status=reply.status, headers=headers,
                        body=json.dumps(reply.body).encode())


async def _handle(request: web.Request) -> web.Response:
    simulator = request.app[SIMULATOR_KEY]
    raw_path, _, raw_query = request.raw_path.partition("?")
    if raw_path.startswith(CONTROL_PREFIX):
        return await answer_control(request, simulator, raw_path)
    if raw_path == IMDS_TOKEN_PATH:
        return _web_response(simulator.answer_imds_request(
            request.method, dict(parse_qsl(raw_query)), request.headers))
    token_path = _TOKEN_PATH_RE.fullmatch(raw_path)
    if token_path:
        # Entra reads the form whatever the Content-Type says; so does the stand-in.
        form = dict(parse_qsl((await request.read()).decode("utf-8", "replace")))
        return _web_response(simulator.answer_token_request(
            token_path["tenant"], request.method, form, request.headers))
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
    if reply.drop_connection:
        _reset_connection(request)
    return _web_response(reply)


def _reset_connection(request: web.Request) -> None:
    """Reset the connection (RST) instead of answering; aiohttp drops the unsent reply."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger 0: the close sends RST, which the client sees as "connection reset".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


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

    Methods about one tenant take `tenant` (its id; None: the scenario's first tenant, the one
    the fixed token means); an unknown tenant raises ScenarioError.
    """

    def __init__(
        self,
        scenario: Scenario | str | Path,
        *,
        token: str = DEFAULT_TOKEN,
        port: int = 0,
        state_file: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Validate the scenario (and state file) now; serving starts with `start()`/`with`.

        `clock` (monotonic seconds) drives the rate limit and delta token expiry, `wall_clock`
        (Unix seconds) the lifetimes of the tokens the simulator issues.
        """
        loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.simulator = Simulator(loaded, token=token, state_file=state_file, clock=clock,
                                   wall_clock=wall_clock)
        self._serving = ServingThread(
            "graph-simulator", lambda: start_runner(self.simulator, port), _cleanup,
        )

    def start(self) -> Self:
        """Start serving; returns once the port is bound (raises if binding failed)."""
        self._serving.start()
        return self

    def stop(self) -> None:
        """Stop serving and join the thread; safe to call twice."""
        self._serving.stop()

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
        """`http://127.0.0.1:<port>`: where the `/_simulator/` control routes live, and the
        identity stand-ins (Entra's authority host and IMDS both map here)."""
        return self.simulator.base_url.removesuffix("/v1.0")

    def tenant_ids(self) -> list[str]:
        """The ids of the tenants served, first one first."""
        return self.simulator.tenant_ids()

    def issue_token(self, tenant: str | None = None, *, roles: Sequence[str] | None = None,
                    lifetime_seconds: int = GRAPH_TOKEN_SECONDS) -> str:
        """A valid Graph token (JWT) for the tenant, as the token endpoint stand-in issues it
        now: its `roles` the tenant's granted permissions unless `roles` says otherwise."""
        return self.simulator.issue_token(tenant, roles=None if roles is None else tuple(roles),
                                          lifetime_seconds=lifetime_seconds)

    def set_consent(self, consented: bool, tenant: str | None = None) -> None:
        """Grant or revoke the tenant admin's consent to the app (the token endpoint refuses a
        tenant without it: AADSTS7000229); tokens issued before stay valid."""
        self.simulator.set_consent(consented, tenant)

    def request_counts(self, tenant: str | None = None) -> dict[str, int]:
        """Graph requests answered so far for the tenant, per route name (plus `unauthorized`,
        `unknown`); `EVERY_TENANT`: all. None also counts the requests refused before a tenant
        was known (so a one-tenant simulator counts everything)."""
        return self.simulator.request_counts(tenant)

    def request_log(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """One entry per Graph request: method, route, path, query, status, headers seen and
        the tenant it was served for (selected as `request_counts` does)."""
        return self.simulator.request_log(tenant)

    def identity_requests(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """One entry per token endpoint or IMDS request: endpoint, tenant, status, error."""
        return self.simulator.identity_requests(tenant)

    def clear_requests(self, tenant: str | None = None) -> None:
        """Forget request counts and logs of the tenant (None: the first tenant's and those of
        no tenant; `EVERY_TENANT`: all)."""
        self.simulator.clear_requests(tenant)

    def number_assignments(self, tenant: str | None = None) -> dict[str, str | None]:
        """Number → `assignmentTargetId` as Graph lists it (pending assignments included)."""
        return self.simulator.number_assignments(tenant)

    def state(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every number of the tenant as a Graph numberAssignment resource."""
        return self.simulator.number_assignment_resources(tenant)

    def load_scenario(self, scenario: Scenario | str | Path, tenant: str | None = None) -> None:
        """Replace whole worlds and clear their faults: every tenant (the scenario's tenants
        are served from now on), or only `tenant`'s (by a one-tenant scenario of that id)."""
        loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.simulator.load_scenario(loaded, tenant)

    def replace_directory(self, directory: Directory | Scenario | str | Path,
                          tenant: str | None = None) -> None:
        """Replace the tenant's users and groups only (Teams numbers stay): replays directory
        changes. A scenario gives its first tenant's directory."""
        if isinstance(directory, str | Path):
            directory = load_directory(directory)
        if isinstance(directory, Scenario):
            directory = directory.directory
        self.simulator.replace_directory(directory, tenant)

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
        tenant: str | None = None,
    ) -> None:
        """Make `count` of the tenant's requests to `route`, after the next `after`, answer
        `status` with a Graph error body."""
        self.simulator.inject_fault(Fault(route=route, status=status, count=count, after=after,
                                          retry_after_seconds=retry_after_seconds,
                                          code=code, message=message), tenant)

    def inject_latency(self, route: str, latency_ms: int, *, count: int = 1,
                       tenant: str | None = None) -> None:
        """Delay the answers to the tenant's next `count` requests to `route` by `latency_ms`.

        The requests are carried out at once; only their answers wait.
        """
        self.simulator.inject_latency(LatencyFault(route=route, latency_ms=latency_ms,
                                                   count=count), tenant)

    def inject_operation_failure(self, route: Literal["assignNumber", "unassignNumber"],
                                 status_detail: str, *, count: int = 1,
                                 tenant: str | None = None) -> None:
        """Make the tenant's next `count` operations accepted by `route` end `failed` with this
        detail."""
        self.simulator.inject_operation_failure(OperationFailure(
            route=route, status_detail=status_detail, count=count), tenant)

    def set_behaviour(self, tenant: str | None = None, **changes: Any) -> Behaviour:
        """Change some of the tenant's `Behaviour` fields (by their Python or JSON names); the
        others stay. Returns the behaviour now.

        Raises ScenarioError when a field is unknown or its value invalid.
        """
        try:
            parsed = Behaviour.model_validate(changes)
        except ValidationError as error:
            raise ScenarioError(describe_validation_error(error, "behaviour")) from None
        return self.simulator.update_behaviour(parsed, tenant)

    def expire_delta_tokens(self, tenant: str | None = None) -> None:
        """Make every delta and skip token of the tenant issued so far answer as expired (410
        Gone, or the `deltaGoneStatus` behaviour)."""
        self.simulator.expire_delta_tokens(tenant)

    def grant_permissions(self, permissions: Sequence[str] | None,
                          tenant: str | None = None) -> None:
        """The tenant's granted application permissions from now on (None: every one)."""
        checked = GrantedPermissions(granted_permissions=None if permissions is None
                                     else tuple(permissions))
        self.simulator.grant_permissions(checked.granted_permissions, tenant)

    def user_configurations(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every user of the tenant present in Teams as a teamsUserConfiguration (not counted
        as a read)."""
        return self.simulator.user_configuration_resources(tenant)


async def _cleanup(runner: web.AppRunner) -> None:
    await runner.cleanup()
