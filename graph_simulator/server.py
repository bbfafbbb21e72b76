"""The simulated Graph service: `Simulator.handle(request) → reply`, with no network I/O.

`Simulator` turns a `GraphRequest` (method, raw path, raw query, headers, body) into a `Reply`
and is plain synchronous code guarded by one lock, so it can be driven from the aiohttp loop
thread and from test code at the same time. Here it checks the token and finds the tenant it
names, matches the route (`graph_simulator.routing`), checks the token's roles and the tenant's
granted permissions (`graph_simulator.permissions`), applies the tenant's rate limit
(`/admin/teams` requests, or directory resource units) and injected faults, hands the request to
its route's handler (`graph_simulator.routes`) with the tenant's world, and counts and logs it;
injected latency is returned with the reply for the server to wait out. It also holds the
worlds, writes Teams state to the state file, takes the control calls (scenario, directory,
faults), and answers the Entra token endpoint and IMDS stand-ins (`graph_simulator.identity`).
The HTTP server around it is `graph_simulator.http_server`.

Tenants: every tenant of the scenario is a world of its own, with its own granted permissions,
consent, rate-limit bucket, faults and latency. A JWT's `tid` picks the world; the fixed token
(`token`, `DEFAULT_TOKEN`) means the first tenant, as when the simulator served only one.

Time: everything that measures time (the `/admin/teams` rate limit, delta token expiry) reads
the `clock` given to `Simulator` -- `time.monotonic` unless a test injects its own, so tests
move time forward instead of sleeping. Token lifetimes and the times Graph shows (operations,
Teams users, error dates) read `wall_clock` (`time.time`), which tests can move the same way.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import TypeAdapter, ValidationError

from graph_simulator.identity import (
    GRAPH_TOKEN_SECONDS,
    SIMULATOR_APP_ID,
    InvalidTokenError,
    TenantAccess,
    TokenSigner,
    answer_imds_request,
    answer_token_request,
)
from graph_simulator.permissions import (
    KNOWN_PERMISSIONS,
    limited_information,
    missing_permission,
    reads_users,
)
from graph_simulator.protocol import GraphHttpError, GraphRequest, Reply, bad_request
from graph_simulator.routes import HANDLERS, RouteContext
from graph_simulator.routes.numbers import number_assignment_json
from graph_simulator.routes.user_configurations import user_configuration_json
from graph_simulator.routing import (
    ASSIGN_NUMBER,
    DIRECTORY_ROUTES,
    LIST_TRANSITIVE_MEMBER_USERS,
    RESOURCE_UNITS,
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
    TenantEntry,
    describe_validation_error,
)
from graph_simulator.world import TEAMS_STATE_ADAPTER, TeamsState, World, WorldError

DEFAULT_TOKEN: Final = "simulator-token"  # noqa: S105 -- a fixed test token, not a secret
#: `tenant` for `request_counts`, `request_log`, `identity_requests` and `clear_requests` (and
#: `?tenant=*` on their control routes): every tenant's requests, and those of no tenant.
EVERY_TENANT: Final = "*"

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
    """Refills continuously at the limit's rate per second up to one second's worth (at least
    the dearest request's cost), in the limit's unit (requests or resource units)."""

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.limit = limit
        self._rate = limit.per_second
        dearest = 1 if limit.scope == "teamsAdmin" else max(RESOURCE_UNITS.values())
        self._capacity = max(float(dearest), self._rate)
        self._tokens = self._capacity
        self._updated = now

    def covers(self, route_name: str) -> bool:
        """Whether requests to this route count against this bucket."""
        routes = TEAMS_ADMIN_ROUTES if self.limit.scope == "teamsAdmin" else DIRECTORY_ROUTES
        return route_name in routes

    def cost(self, route_name: str) -> int:
        """What one request to the route takes from the bucket."""
        return 1 if self.limit.scope == "teamsAdmin" else RESOURCE_UNITS[route_name]

    def take(self, now: float, cost: int = 1) -> int | None:
        """Spend `cost`; None if there was that much, else the whole seconds until there is."""
        # max(): a test clock may be set back; never refill by a negative amount.
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        self._updated = now
        if self._tokens >= cost:
            self._tokens -= cost
            return None
        return max(1, math.ceil((cost - self._tokens) / self._rate))


def _granted(permissions: tuple[str, ...] | None) -> frozenset[str] | None:
    return None if permissions is None else frozenset(permissions)


def _iso(unix_seconds: float, *, zone: str = "Z") -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + zone


@dataclass
class _TenantsState:
    """The state file of a simulator serving several tenants: each one's `TeamsState` by id.
    (Serving one tenant, the file is that tenant's `TeamsState`, as it always was.)"""

    version: Literal[1] = 1
    tenants: dict[str, TeamsState] = field(default_factory=dict)


_TENANTS_STATE_ADAPTER: TypeAdapter[_TenantsState] = TypeAdapter(_TenantsState)


@dataclass
class _Tenant:
    """One customer tenant the simulator serves: its world and everything else that is its
    own (granted permissions, consent, rate-limit bucket, injected faults and latency)."""

    entry: TenantEntry
    world: World
    granted: frozenset[str] | None
    consented: bool
    bucket: _TokenBucket | None
    faults: dict[str, _ActiveFault] = field(default_factory=dict)
    latency: dict[str, _ActiveLatency] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The tenant id (tokens' `tid`)."""
        return self.world.tenant.id

    def roles(self) -> tuple[str, ...]:
        """The roles a token issued now carries: the granted permissions, or all known ones."""
        return tuple(sorted(KNOWN_PERMISSIONS if self.granted is None else self.granted))


class _UnauthenticatedError(GraphHttpError):
    """A 401 for a request whose token was refused, put down to the tenant it names when the
    simulator can trust that (None otherwise)."""

    def __init__(self, message: str, tenant_id: str | None) -> None:
        super().__init__(401, "InvalidAuthenticationToken", message)
        self.tenant_id = tenant_id


class Simulator:
    """The simulated Graph service behind the HTTP server: thread-safe, synchronous.

    It serves every tenant of its scenario, each in a world of its own. A Graph request is
    served by the world of the tenant its token names (a JWT from `issue_token` or the token
    endpoint stand-in); the fixed `token` means the first tenant. Methods that read or change
    one tenant take `tenant` (its id; None: the first tenant).
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        token: str = DEFAULT_TOKEN,
        state_file: Path | None = None,
        base_url: str = "http://127.0.0.1/v1.0",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """Build one world per tenant; with a `state_file` that exists, Teams state comes
        from it.

        `clock` is a monotonic clock in seconds, used for the rate limit and delta token
        expiry; `wall_clock` (Unix seconds) stamps and checks the JWTs' `iat`/`nbf`/`exp` and
        stamps the times Graph shows (operations, Teams users, error dates). Tests and the local
        runner's simulated days pass clocks they can move forward. Raises ScenarioError if the
        state file cannot be read or validated.
        """
        self._lock = threading.RLock()
        self._token = token
        self._state_file = state_file
        self._clock = clock
        self._wall_clock = wall_clock
        self._signer = TokenSigner(wall_clock)
        self.base_url = base_url
        # Keyed by tenant id; None: requests refused before a tenant could be trusted. Counts
        # are never trimmed; the log is bounded so a long demo run cannot grow without limit.
        self._counts: dict[str | None, Counter[str]] = {}
        self._log: deque[dict[str, Any]] = deque(maxlen=_MAX_LOG_ENTRIES)
        self._identity_log: deque[dict[str, Any]] = deque(maxlen=_MAX_LOG_ENTRIES)
        saved = self._read_state_file()
        self._tenants = {tenant.id: tenant for tenant in (
            self._new_tenant(entry, _saved_state(saved, entry.tenant.id, index))
            for index, entry in enumerate(scenario.tenant_entries())
        )}
        self._save_state()

    # -- tenants -----------------------------------------------------------------------------

    def _new_tenant(self, entry: TenantEntry, teams_state: TeamsState | None) -> _Tenant:
        world = World(entry, clock=lambda: _iso(self._wall_clock()), now=self._wall_clock,
                      new_id=lambda: str(uuid.uuid4()), teams_state=teams_state)
        return _Tenant(entry=entry, world=world,
                       granted=_granted(entry.tenant.granted_permissions),
                       consented=entry.consented, bucket=self._new_bucket(world.behaviour))

    def _new_bucket(self, behaviour: Behaviour) -> _TokenBucket | None:
        limit = behaviour.rate_limit
        return None if limit is None else _TokenBucket(limit, self._clock())

    def _tenant(self, tenant: str | None) -> _Tenant:
        """The tenant with this id (None: the first); ScenarioError naming the served ones."""
        if tenant is None:
            return next(iter(self._tenants.values()))
        found = self._tenants.get(tenant)
        if found is None:
            raise ScenarioError(f"tenant: the simulator serves no tenant {tenant!r} (it serves "
                                f"{', '.join(self._tenants)})")
        return found

    def tenant_ids(self) -> list[str]:
        """The ids of the tenants served, first one first."""
        with self._lock:
            return list(self._tenants)

    def tenants(self) -> list[dict[str, Any]]:
        """Each tenant served: id, displayName, consented and grantedPermissions (null: all)."""
        with self._lock:
            return [{"id": tenant.id, "displayName": tenant.entry.display_name,
                     "consented": tenant.consented,
                     "grantedPermissions": None if tenant.granted is None
                     else sorted(tenant.granted)}
                    for tenant in self._tenants.values()]

    # -- persistence -------------------------------------------------------------------------

    def _read_state_file(self) -> TeamsState | _TenantsState | None:
        if self._state_file is None or not self._state_file.exists():
            return None
        source = str(self._state_file)
        try:
            data = json.loads(self._state_file.read_bytes())
            if isinstance(data, dict) and "tenants" in data:
                return _TENANTS_STATE_ADAPTER.validate_python(data)
            return TEAMS_STATE_ADAPTER.validate_python(data)
        except ValidationError as error:
            raise ScenarioError(describe_validation_error(error, source)) from None
        except json.JSONDecodeError as error:
            raise ScenarioError(f"{source}: not valid JSON: {error.msg} at line {error.lineno} "
                                f"column {error.colno}") from None
        except OSError as error:
            raise ScenarioError(f"{source}: cannot read: {error.strerror}") from None

    def _save_state(self) -> None:
        if self._state_file is None:
            return
        tenants = list(self._tenants.values())
        if len(tenants) == 1:
            data = TEAMS_STATE_ADAPTER.dump_json(tenants[0].world.teams_state(), by_alias=True,
                                                 indent=2)
        else:
            data = _TENANTS_STATE_ADAPTER.dump_json(_TenantsState(tenants={
                tenant.id: tenant.world.teams_state() for tenant in tenants}), indent=2)
        # Write-then-rename so a demo killed mid-write never leaves a truncated state file.
        temporary = self._state_file.with_name(self._state_file.name + ".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, self._state_file)

    # -- control -----------------------------------------------------------------------------

    def load_scenario(self, scenario: Scenario, tenant: str | None = None) -> None:
        """Replace whole worlds (directory, Teams state) and clear their faults and rate limit.

        Without `tenant`: the simulator serves the scenario's tenants from now on, each in a
        fresh world. With `tenant`: only that tenant's world is replaced, by a one-tenant
        scenario of the same tenant id. Delta tokens issued before answer 410 afterwards: they
        belong to the old world.
        """
        with self._lock:
            if tenant is None:
                self._tenants = {entry.tenant.id: self._new_tenant(entry, None)
                                 for entry in scenario.tenant_entries()}
            else:
                self._tenant(tenant)
                if scenario.other_tenants or scenario.tenant.id != tenant:
                    raise ScenarioError(f"scenario: replacing tenant {tenant!r} takes a "
                                        "one-tenant scenario of that tenant (got "
                                        f"{', '.join(scenario.tenant_ids())})")
                self._tenants[tenant] = self._new_tenant(scenario, None)
            self._save_state()

    def replace_directory(self, directory: Directory, tenant: str | None = None) -> None:
        """Replace one tenant's users and groups (a new directory version for delta); its
        Teams numbers stay. Teams users follow: see `World.replace_directory`."""
        with self._lock:
            self._tenant(tenant).world.replace_directory(directory)
            self._save_state()

    def grant_permissions(self, permissions: tuple[str, ...] | None,
                          tenant: str | None = None) -> None:
        """The tenant's granted application permissions from now on (None: every one). Tokens
        issued before keep their roles, but a request needs its permission in both."""
        with self._lock:
            self._tenant(tenant).granted = _granted(permissions)

    def set_consent(self, consented: bool, tenant: str | None = None) -> None:
        """Grant (True) or revoke (False) the customer admin's consent to the app: without it
        the token endpoint refuses the tenant (AADSTS7000229). Tokens issued before stay valid
        until they expire, as Entra's do."""
        with self._lock:
            self._tenant(tenant).consented = consented

    def update_behaviour(self, changes: Behaviour, tenant: str | None = None) -> Behaviour:
        """Set the behaviour fields `changes` was given explicitly (a partial `Behaviour`);
        the others stay. A new `rateLimit` starts a fresh bucket. Returns the behaviour now."""
        with self._lock:
            served = self._tenant(tenant)
            before = served.world.behaviour
            served.world.behaviour = before.model_copy(update={
                name: getattr(changes, name) for name in changes.model_fields_set
            })
            if served.world.behaviour.rate_limit != before.rate_limit:
                served.bucket = self._new_bucket(served.world.behaviour)
            return served.world.behaviour

    def expire_delta_tokens(self, tenant: str | None = None) -> None:
        """Make every delta and skip token of the tenant issued so far answer as expired (410
        Gone, or the `deltaGoneStatus` behaviour)."""
        with self._lock:
            self._tenant(tenant).world.expire_delta_state()

    @staticmethod
    def _check_route(route: str, source: str) -> None:
        if route not in ROUTE_NAMES:
            raise ScenarioError(f"{source}: route: unknown route {route!r} "
                                f"(known: {', '.join(ROUTE_NAMES)})")

    def inject_fault(self, fault: Fault, tenant: str | None = None) -> None:
        """Make the tenant's next `fault.count` requests to `fault.route` fail with
        `fault.status`."""
        self._check_route(fault.route, "fault")
        with self._lock:
            self._tenant(tenant).faults[fault.route] = _ActiveFault(
                fault.status, fault.count, fault.after, fault.retry_after_seconds, fault.code,
                fault.message,
            )

    def inject_latency(self, latency: LatencyFault, tenant: str | None = None) -> None:
        """Delay the answers to the tenant's next `latency.count` requests to `latency.route`."""
        self._check_route(latency.route, "latency")
        with self._lock:
            self._tenant(tenant).latency[latency.route] = _ActiveLatency(
                latency.latency_ms / 1000, latency.count)

    def inject_operation_failure(self, failure: OperationFailure,
                                 tenant: str | None = None) -> None:
        """Make the tenant's next `failure.count` operations of `failure.route` end `failed`."""
        kind: Literal["assign", "unassign"] = (
            "assign" if failure.route == ASSIGN_NUMBER else "unassign"
        )
        with self._lock:
            self._tenant(tenant).world.fail_next_operations(kind, failure.status_detail,
                                                            failure.count)

    def issue_token(self, tenant: str | None = None, *, roles: tuple[str, ...] | None = None,
                    lifetime_seconds: int = GRAPH_TOKEN_SECONDS) -> str:
        """A Graph token for the tenant, as the token endpoint would issue it now (consent is
        not asked for); `roles` replaces the tenant's granted permissions in it."""
        with self._lock:
            served = self._tenant(tenant)
            return self._signer.graph_token(served.id, served.roles() if roles is None
                                            else roles, lifetime_seconds)

    # -- observability -----------------------------------------------------------------------

    def _selected(self, tenant: str | None) -> set[str | None] | None:
        """The log keys a tenant argument selects: the tenant's own; for None the first
        tenant's plus requests put down to no tenant (so one tenant sees every request, as it
        always did); None for `EVERY_TENANT` (everything)."""
        if tenant == EVERY_TENANT:
            return None
        served = self._tenant(tenant)
        return {served.id, None} if tenant is None else {served.id}

    def request_counts(self, tenant: str | None = None) -> dict[str, int]:
        """Graph requests answered so far for the tenant, per route name (plus `unauthorized`,
        `unknown`); `EVERY_TENANT`: for all of them."""
        with self._lock:
            selected = self._selected(tenant)
            total: Counter[str] = Counter()
            for key, counts in self._counts.items():
                if selected is None or key in selected:
                    total.update(counts)
            return dict(total)

    def request_log(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """One entry per Graph request served for the tenant (`EVERY_TENANT`: all), oldest
        first; its `tenant` is the tenant whose world served it (null: the token was refused
        before a tenant could be trusted); `at` is when it was answered, on the simulator's
        `clock` (before any latency the scenario adds)."""
        with self._lock:
            selected = self._selected(tenant)
            return [dict(entry) for entry in self._log
                    if selected is None or entry["tenant"] in selected]

    def identity_requests(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """One entry per request to the token endpoint and IMDS stand-ins, selected by tenant
        as `request_log` does (IMDS requests belong to no customer tenant)."""
        with self._lock:
            selected = self._selected(tenant)
            return [dict(entry) for entry in self._identity_log
                    if selected is None or entry["tenant"] in selected]

    def clear_requests(self, tenant: str | None = None) -> None:
        """Forget counts and logs (Graph and identity requests) of the tenant (`EVERY_TENANT`:
        all)."""
        with self._lock:
            selected = self._selected(tenant)
            for key in list(self._counts):
                if selected is None or key in selected:
                    del self._counts[key]
            for log in (self._log, self._identity_log):
                kept = [entry for entry in log
                        if selected is not None and entry["tenant"] not in selected]
                log.clear()
                log.extend(kept)

    def number_assignment_resources(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every number of the tenant as Graph's list would show it."""
        with self._lock:
            return [number_assignment_json(r)
                    for r in self._tenant(tenant).world.number_assignments()]

    def number_assignments(self, tenant: str | None = None) -> dict[str, str | None]:
        """The tenant's numbers → `assignmentTargetId` as Graph lists it (pending included)."""
        with self._lock:
            return {r.telephone_number: r.assignment_target_id
                    for r in self._tenant(tenant).world.number_assignments()}

    def user_configuration_resources(self, tenant: str | None = None) -> list[dict[str, Any]]:
        """Every user of the tenant present in Teams as a teamsUserConfiguration (not counted
        as a read)."""
        with self._lock:
            world = self._tenant(tenant).world
            return [user_configuration_json(configuration, world.tenant.id, world.behaviour)
                    for configuration in world.user_configurations()]

    # -- identity stand-ins ------------------------------------------------------------------

    def _tenant_access(self, segment: str) -> TenantAccess | None:
        """The tenant a token endpoint path names, by id or (case-insensitively) domain."""
        served = self._tenants.get(segment) or next(
            (tenant for tenant in self._tenants.values()
             if tenant.world.tenant.default_domain.lower() == segment.lower()), None)
        return None if served is None else TenantAccess(served.id, served.consented,
                                                        served.roles())

    def answer_token_request(self, tenant: str, method: str, form: Mapping[str, str],
                             headers: Mapping[str, str]) -> Reply:
        """Entra's token endpoint of `tenant` (`/{tenant}/oauth2/v2.0/token`):
        `graph_simulator.identity`."""
        with self._lock:
            access = self._tenant_access(tenant)
            reply = answer_token_request(self._signer, tenant, method=method, form=form,
                                         headers=headers, find_tenant=self._tenant_access)
            self._log_identity("token", None if access is None else access.tenant_id, reply)
            return reply

    def answer_imds_request(self, method: str, query: Mapping[str, str],
                            headers: Mapping[str, str]) -> Reply:
        """IMDS's token endpoint (`/metadata/identity/oauth2/token`): `graph_simulator.identity`."""
        with self._lock:
            reply = answer_imds_request(self._signer, method=method, query=query,
                                        headers=headers)
            self._log_identity("imds", None, reply)
            return reply

    def _log_identity(self, endpoint: str, tenant_id: str | None, reply: Reply) -> None:
        body = reply.body if isinstance(reply.body, dict) else {}
        self._identity_log.append({
            "endpoint": endpoint, "tenant": tenant_id, "status": reply.status,
            "error": body.get("error"), "errorCodes": body.get("error_codes"),
        })

    # -- Graph requests ----------------------------------------------------------------------

    def handle(self, request: GraphRequest) -> Reply:
        """Answer one Graph request, counting and logging it."""
        client_request_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        request_id = str(uuid.uuid4())
        route_name = UNKNOWN
        tenant_id: str | None = None
        served: _Tenant | None = None
        with self._lock:
            try:
                served, roles = self._authenticate(request)
                tenant_id = served.id
                route = self._route(request)
                route_name = route.name
                granted = _effective_permissions(served.granted, roles)
                self._check_permission(route, granted)
                resource_units = self._apply_rate_limit(served, route.name)
                self._apply_fault(served, route.name)
                reply = self._dispatch(served, route, request)
                if route.name == LIST_TRANSITIVE_MEMBER_USERS and not reads_users(granted):
                    reply.body = limited_information(reply.body)
                if resource_units is not None:
                    reply.headers["x-ms-resource-unit"] = str(resource_units)
            except GraphHttpError as error:
                if isinstance(error, _RoutedError):
                    route_name = error.route.name
                elif isinstance(error, _UnauthenticatedError):
                    route_name = UNAUTHORIZED
                    tenant_id = error.tenant_id
                reply = self._error_reply(error, request_id, client_request_id)
            except WorldError as error:
                reply = self._error_reply(
                    GraphHttpError(error.status, error.code, error.message),
                    request_id, client_request_id,
                )
            reply.headers["request-id"] = request_id
            reply.headers["client-request-id"] = client_request_id
            reply.delay_seconds = 0.0 if served is None else _take_latency(served, route_name)
            self._counts.setdefault(tenant_id, Counter())[route_name] += 1
            self._log.append({
                "method": request.method,
                "route": route_name,
                "path": request.raw_path,
                "query": request.raw_query,
                "status": reply.status,
                "consistencyLevel": request.headers.get("ConsistencyLevel"),
                "authorization": "Authorization" in request.headers,
                "tenant": tenant_id,
                "at": self._clock(),
            })
        return reply

    def _error_reply(self, error: GraphHttpError, request_id: str,
                     client_request_id: str) -> Reply:
        body = {"error": {
            "code": error.code,
            "message": error.message,
            "innerError": {
                "date": _iso(self._wall_clock(), zone=""),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }}
        return Reply(error.status, body, dict(error.headers), "application/json")

    def _authenticate(self, request: GraphRequest) -> tuple[_Tenant, frozenset[str] | None]:
        """The tenant whose world serves the request and the roles its token carries (None for
        the fixed token, which carries whatever the first tenant granted); raises
        _UnauthenticatedError otherwise."""
        authorization = request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        if not authorization:
            raise _UnauthenticatedError("Access token is empty.", None)
        if scheme.lower() != "bearer":
            raise _UnauthenticatedError("Access token validation failure. Invalid audience.", None)
        if token == self._token:
            return next(iter(self._tenants.values())), None
        if token.count(".") != 2:
            # Not a JWT at all (e.g. a wrong fixed token): what Graph says to a foreign token.
            raise _UnauthenticatedError("Access token validation failure. Invalid audience.", None)
        try:
            claims = self._signer.read_graph_token(token)
        except InvalidTokenError as rejected:
            raise _UnauthenticatedError(f"Access token validation failure. {rejected.message}",
                                        rejected.tenant_id) from None
        served = self._tenants.get(claims.tenant_id)
        if served is None:
            raise _UnauthenticatedError("Access token validation failure. Invalid tenant: the "
                                        f"simulator serves no tenant '{claims.tenant_id}'.", None)
        return served, claims.roles

    @staticmethod
    def _route(request: GraphRequest) -> Route:
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

    @staticmethod
    def _check_permission(route: Route, granted: frozenset[str] | None) -> None:
        needed = missing_permission(route.name, granted)
        if needed is not None:
            # Graph does not name the missing permission; the simulator says it for people
            # reading its log, and the app must not depend on it.
            raise _RoutedError(route, GraphHttpError(
                403, "Authorization_RequestDenied",
                f"Insufficient privileges to complete the operation. (simulator: the token "
                f"lacks {needed} or a higher permission)"))

    def _apply_rate_limit(self, served: _Tenant, route_name: str) -> int | None:
        """Take the request's cost from the tenant's bucket of its scope; raise 429 when it is
        empty. Returns the resource units spent on a directory request (None otherwise)."""
        bucket = served.bucket
        if bucket is None or not bucket.covers(route_name):
            return None
        cost = bucket.cost(route_name)
        wait = bucket.take(self._clock(), cost)
        directory = bucket.limit.scope == "directory"
        if wait is not None:
            # Graph's documented throttle headers: <Scope>/<Limit>/<ApplicationId>/<TenantId>
            # and a free-text reason; Teams documents none, so the same form is used there.
            raise GraphHttpError(429, "TooManyRequests", (
                "Too many requests: the resource unit limit for directory requests of this "
                "application in this tenant was exceeded." if directory else
                "Too many requests: the rate limit for Teams administration requests in this "
                "tenant was exceeded."), {
                "Retry-After": str(wait),
                "x-ms-throttle-scope":
                    f"Tenant_Application/ReadWrite/{SIMULATOR_APP_ID}/{served.id}",
                "x-ms-throttle-information":
                    "ResourceUnitLimitExceeded" if directory else "RequestLimitExceeded",
            })
        return cost if directory else None

    @staticmethod
    def _apply_fault(served: _Tenant, route_name: str) -> None:
        fault = served.faults.get(route_name)
        if fault is None:
            return
        if fault.passes > 0:
            fault.passes -= 1
            return
        fault.remaining -= 1
        if fault.remaining <= 0:
            del served.faults[route_name]
        headers = {}
        if fault.retry_after_seconds is not None:
            headers["Retry-After"] = str(fault.retry_after_seconds)
        raise GraphHttpError(
            fault.status,
            fault.code or _FAULT_CODES.get(fault.status, "UnknownError"),
            fault.message or f"Injected fault: HTTP {fault.status}.",
            headers,
        )

    def _dispatch(self, served: _Tenant, route: Route, request: GraphRequest) -> Reply:
        context = RouteContext(world=served.world, base_url=self.base_url, clock=self._clock,
                               save_state=self._save_state)
        return HANDLERS[route.name](context, route, request)


def _effective_permissions(granted: frozenset[str] | None,
                           roles: frozenset[str] | None) -> frozenset[str] | None:
    """What a request may do: its token's roles AND what the tenant grants now (None: every
    permission). Graph itself goes by the token's roles alone; also asking the current grants
    is a simplification so that `POST /_simulator/permissions` takes effect at once, without
    waiting for the client's token to expire."""
    if roles is None:
        return granted
    return roles if granted is None else roles & granted


def _take_latency(served: _Tenant, route_name: str) -> float:
    latency = served.latency.get(route_name)
    if latency is None:
        return 0.0
    latency.remaining -= 1
    if latency.remaining <= 0:
        del served.latency[route_name]
    return latency.seconds


def _saved_state(saved: TeamsState | _TenantsState | None, tenant_id: str,
                 index: int) -> TeamsState | None:
    """A tenant's Teams state from the state file: by id, or a one-tenant file's for the first
    tenant (None: the tenant starts from its scenario)."""
    if isinstance(saved, _TenantsState):
        return saved.tenants.get(tenant_id)
    return saved if index == 0 else None
