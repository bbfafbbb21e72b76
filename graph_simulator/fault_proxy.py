"""A fault-injecting HTTP proxy between the app and the Graph simulator: a bad day at Graph,
reproducibly.

`FaultProxy` listens on 127.0.0.1 and forwards every request to an upstream simulator (its
origin, `SimulatorServer.url`). A `FaultPlan` says how often a Graph request goes wrong and how:

* `throttle_short` -- 429 `TooManyRequests` with a short `Retry-After` (the SDK waits it out
  and retries inside the request);
* `throttle_long` -- 429 with a `Retry-After` beyond `GRAPH_INLINE_RETRY_MAX_SECONDS` (the app
  puts the message back on the queue for that long);
* `unavailable` -- 503 `serviceNotAvailable`, `gateway_timeout` -- 504 `timeout` (no
  `Retry-After`: the SDK's exponential backoff);
* `drop_before` -- the connection is closed before the request is forwarded: the simulator
  never sees it, the client gets no answer;
* `drop_after` -- the request is forwarded and carried out, then the connection is reset
  instead of answering: the client cannot know it happened;
* `operation_failed` -- an `assignNumber`/`unassignNumber` is accepted (202), and its Teams
  operation ends `failed` with a transient `statusDetail` (through the simulator's own
  `/_simulator/faults/operation` knob, so the number really does not land).

Every answer's absolute links (`Location`, `@odata.nextLink`, `@odata.deltaLink`, operation
`resourceLocation`s) name the simulator's own origin; they are rewritten to the proxy's, so a
client's follow-up requests come through the proxy too and meet faults as well.

The decisions come from one `random.Random(seed)`: the sequence of faults is the same on every
run (which request meets which fault still depends on how concurrent clients interleave).
Control routes (`/_simulator/...`) pass through untouched and uncounted.

Like `SimulatorServer`, the proxy serves from a background thread with its own event loop, so
the test's loop and the app's are free; its counters are safe to read from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import struct
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import Final, Self

import aiohttp
from aiohttp import web
from yarl import URL

from graph_simulator.routing import ASSIGN_NUMBER, UNASSIGN_NUMBER, route_name
from graph_simulator.serving_thread import ServingThread


class FaultKind(StrEnum):
    """One way a Graph request can go wrong (see the module docstring)."""

    THROTTLE_SHORT = "throttle_short"
    THROTTLE_LONG = "throttle_long"
    UNAVAILABLE = "unavailable"
    GATEWAY_TIMEOUT = "gateway_timeout"
    DROP_BEFORE = "drop_before"
    DROP_AFTER = "drop_after"
    OPERATION_FAILED = "operation_failed"


#: Routes whose requests start a Teams operation (the only ones `operation_failed` applies to).
OPERATION_ROUTES: Final = frozenset({ASSIGN_NUMBER, UNASSIGN_NUMBER})
#: A `statusDetail` the app must read as temporary ("try again").
TRANSIENT_OPERATION_DETAIL: Final = "Service is unavailable. Please try again later."
_CONTROL_PREFIX: Final = "/_simulator/"
# Not forwarded in either direction: they describe one connection, not the message.
_HOP_BY_HOP: Final = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "host", "content-length",
})
_ERRORS: Final = {
    FaultKind.THROTTLE_SHORT: (429, "TooManyRequests",
                               "Too many requests: the application is being throttled."),
    FaultKind.THROTTLE_LONG: (429, "TooManyRequests",
                              "Too many requests: the application is being throttled."),
    FaultKind.UNAVAILABLE: (503, "serviceNotAvailable",
                            "The service is temporarily unavailable. Try again later."),
    FaultKind.GATEWAY_TIMEOUT: (504, "timeout",
                                "The request timed out at the gateway."),
}


def equal_mix() -> dict[FaultKind, float]:
    """Every kind of fault equally likely."""
    return dict.fromkeys(FaultKind, 1.0)


@dataclass(frozen=True)
class FaultPlan:
    """How often Graph requests go wrong, and how.

    `rate` is the chance that one request meets a fault (0 … 1); `mix` weighs the kinds (a
    kind left out never happens; `operation_failed` is drawn only for `OPERATION_ROUTES`).
    `routes`, when given, limits faults to those route names (`graph_simulator.ROUTE_NAMES`).
    """

    rate: float = 0.0
    mix: Mapping[FaultKind, float] = field(default_factory=equal_mix)
    routes: frozenset[str] | None = None
    seed: int = 0
    short_retry_after_seconds: int = 1
    long_retry_after_seconds: int = 4
    operation_failure_detail: str = TRANSIENT_OPERATION_DETAIL

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {self.rate!r}")
        if any(weight < 0 for weight in self.mix.values()):
            raise ValueError(f"mix weights must not be negative, got {dict(self.mix)!r}")


@dataclass(frozen=True)
class ProxiedRequest:
    """One Graph request that came through the proxy, and what became of it."""

    route: str
    method: str
    path: str
    fault: FaultKind | None
    forwarded: bool
    """Whether the simulator received it (it may still have gone unanswered)."""
    status: int | None
    """What the client was answered; None when it got no answer (a dropped connection)."""
    body: bytes = b""
    """The request body of a POST (which number an action was for), else empty."""


@dataclass(frozen=True)
class ForwardedAnswer:
    """The simulator's answer to a forwarded request, before the client sees it."""

    route: str
    method: str
    path: str
    status: int
    request_body: bytes
    body: bytes

    def json(self) -> object:
        """The answer's body as JSON (None when it has none)."""
        return json.loads(self.body) if self.body else None


class HeldAnswer:
    """An answer the proxy keeps back: the request was carried out, the client still waits.

    `wait()` returns once one matching answer is held; the test can then, say, kill the
    client's process. `release()` lets the answer go (or resets the connection instead).
    """

    def __init__(self, route: str, matches: Callable[[ForwardedAnswer], bool] | None) -> None:
        self.route = route
        self._matches = matches
        self._held = threading.Event()
        self._released = threading.Event()
        self._lock = threading.Lock()
        self._drop = True
        self._wake: Callable[[], None] | None = None
        self.answer: ForwardedAnswer | None = None

    def wants(self, answer: ForwardedAnswer) -> bool:
        """Whether this hold takes `answer`: it holds none yet, and the route and the
        predicate match."""
        return (self.answer is None and answer.route == self.route
                and (self._matches is None or self._matches(answer)))

    def wait(self, timeout_seconds: float) -> bool:
        """Block until an answer is held; False when none was within the timeout."""
        return self._held.wait(timeout_seconds)

    @property
    def held(self) -> bool:
        """Whether an answer is being held (or was)."""
        return self._held.is_set()

    def release(self, *, drop: bool = True) -> None:
        """Let the held answer go: reset the connection (`drop`) or deliver the answer."""
        with self._lock:
            self._drop = drop
            self._released.set()
            wake = self._wake
        if wake is not None:
            wake()

    async def _keep(self) -> bool:
        """In the proxy's loop: hold the answer until released; True means drop it."""
        loop = asyncio.get_running_loop()
        released = asyncio.Event()

        def wake() -> None:
            loop.call_soon_threadsafe(released.set)

        with self._lock:
            self._wake = wake
            if self._released.is_set():
                released.set()
        self._held.set()
        await released.wait()
        return self._drop


@dataclass
class _Counters:
    requests: Counter[str] = field(default_factory=Counter)
    forwarded: Counter[str] = field(default_factory=Counter)
    injected: Counter[FaultKind] = field(default_factory=Counter)
    injected_by_route: dict[str, Counter[FaultKind]] = field(default_factory=dict)
    log: list[ProxiedRequest] = field(default_factory=list)


class FaultProxy:
    """A reverse proxy on 127.0.0.1 in front of `upstream` that injects faults (`FaultPlan`).

    Use as a context manager, then point the app at `base_url`::

        with SimulatorServer(scenario) as sim, FaultProxy(sim.url, FaultPlan(rate=0.2)) as proxy:
            settings["GRAPH_BASE_URL"] = proxy.base_url
    """

    def __init__(self, upstream: str, plan: FaultPlan | None = None, *, port: int = 0) -> None:
        """`upstream` is the simulator's origin (`http://127.0.0.1:<port>`, no path)."""
        self._upstream = upstream.rstrip("/")
        self._plan = plan or FaultPlan()
        self._random = random.Random(self._plan.seed)  # noqa: S311 - test faults, not secrets
        self._port = port
        self._lock = threading.Lock()
        self._counters = _Counters()
        self._paused = False
        self._holds: list[HeldAnswer] = []
        self._serving = ServingThread("fault-proxy", self._serve, self._shutdown)
        self._origin = ""
        self._session: aiohttp.ClientSession | None = None
        # Actions are forwarded one at a time, so an operation failure armed in the simulator
        # for one request is taken by that request and not by another one in flight.
        self._actions: asyncio.Lock | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving; returns once the port is bound (raises if binding failed)."""
        self._serving.start()
        return self

    async def _serve(self) -> web.AppRunner:
        self._session = aiohttp.ClientSession(
            auto_decompress=False,
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=120),
        )
        self._actions = asyncio.Lock()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self._session.close()
            raise
        self._origin = f"http://127.0.0.1:{runner.addresses[0][1]}"
        return runner

    async def _shutdown(self, runner: web.AppRunner) -> None:
        await runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def stop(self) -> None:
        """Stop serving (held answers are dropped, holds end) and join the thread; safe to call
        twice."""
        with self._lock:
            holds, self._holds = self._holds, []
        for hold in holds:
            hold.release(drop=True)
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
    def url(self) -> str:
        """`http://127.0.0.1:<port>`: the proxy's origin (control routes pass through here)."""
        return self._origin

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1.0`: what the app's `GRAPH_BASE_URL` is set to."""
        return f"{self._origin}/v1.0"

    # -- control -----------------------------------------------------------------------------

    @property
    def plan(self) -> FaultPlan:
        """The faults being injected."""
        return self._plan

    def set_plan(self, plan: FaultPlan) -> None:
        """Inject faults by another plan from now on (its seed starts a new sequence)."""
        with self._lock:
            self._plan = plan
            self._random = random.Random(plan.seed)  # noqa: S311 - test faults, not secrets

    def pause(self) -> None:
        """Forward everything faithfully (still counted) until `resume()`."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        """Inject faults again."""
        with self._lock:
            self._paused = False

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No faults inside the block."""
        self.pause()
        try:
            yield
        finally:
            self.resume()

    def hold_next(
        self, route: str, matches: Callable[[ForwardedAnswer], bool] | None = None
    ) -> HeldAnswer:
        """Keep back the simulator's next answer on `route` (that `matches`) until released."""
        hold = HeldAnswer(route, matches)
        with self._lock:
            self._holds.append(hold)
        return hold

    # -- observability -----------------------------------------------------------------------

    def request_counts(self) -> dict[str, int]:
        """Graph requests the client sent through the proxy, per route (faulted ones too)."""
        with self._lock:
            return dict(self._counters.requests)

    def forwarded_counts(self) -> dict[str, int]:
        """Graph requests the proxy passed on to the simulator, per route."""
        with self._lock:
            return dict(self._counters.forwarded)

    def injected(self) -> dict[FaultKind, int]:
        """Faults injected so far, per kind."""
        with self._lock:
            return dict(self._counters.injected)

    def injected_by_route(self) -> dict[str, dict[FaultKind, int]]:
        """Faults injected so far, per route and kind."""
        with self._lock:
            return {route: dict(kinds) for route, kinds in self._counters.injected_by_route.items()}

    def request_log(self) -> list[ProxiedRequest]:
        """Every Graph request that came through, oldest first."""
        with self._lock:
            return list(self._counters.log)

    def clear(self) -> None:
        """Forget every count and the log (the plan and its random sequence go on)."""
        with self._lock:
            self._counters = _Counters()

    # -- handling ----------------------------------------------------------------------------

    def _draw(self, route: str) -> FaultKind | None:
        """Count the request and decide its fault (None: none), under the lock."""
        with self._lock:
            self._counters.requests[route] += 1
            plan = self._plan
            if self._paused or plan.rate <= 0 or (plan.routes is not None
                                                  and route not in plan.routes):
                return None
            if self._random.random() >= plan.rate:
                return None
            kinds = [kind for kind, weight in plan.mix.items() if weight > 0
                     and (kind is not FaultKind.OPERATION_FAILED or route in OPERATION_ROUTES)]
            if not kinds:
                return None
            kind = self._random.choices(kinds, weights=[plan.mix[k] for k in kinds])[0]
            self._counters.injected[kind] += 1
            self._counters.injected_by_route.setdefault(route, Counter())[kind] += 1
            return kind

    def _record(self, entry: ProxiedRequest) -> None:
        with self._lock:
            self._counters.log.append(entry)
            if entry.forwarded:
                self._counters.forwarded[entry.route] += 1

    def _take_hold(self, answer: ForwardedAnswer) -> HeldAnswer | None:
        with self._lock:
            for hold in self._holds:
                if hold.wants(answer):
                    hold.answer = answer  # taken: the next answer goes to the next hold
                    return hold
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.raw_path.partition("?")[0]
        body = await request.read()
        if path.startswith(_CONTROL_PREFIX):
            status, headers, answer = await self._forward(request, body)
            return self._response(status, headers, answer)
        route = route_name(path)
        fault = self._draw(route)
        recorded = body if request.method == "POST" else b""

        def record(*, forwarded: bool, status: int | None) -> None:
            self._record(ProxiedRequest(route, request.method, path, fault, forwarded, status,
                                        recorded))

        if fault in _ERRORS:
            record(forwarded=False, status=_ERRORS[fault][0])
            return self._fault_response(fault, request)
        if fault is FaultKind.DROP_BEFORE:
            record(forwarded=False, status=None)
            return _drop(request, reset=False)
        status, headers, answer = await self._forward_action(request, body, route, fault)
        if fault is FaultKind.DROP_AFTER:
            record(forwarded=True, status=None)
            return _drop(request, reset=True)
        forwarded = ForwardedAnswer(route, request.method, path, status, body, answer)
        hold = self._take_hold(forwarded)
        if hold is not None and await hold._keep():
            record(forwarded=True, status=None)
            return _drop(request, reset=True)
        record(forwarded=True, status=status)
        return self._response(status, headers, answer)

    async def _forward_action(
        self, request: web.Request, body: bytes, route: str, fault: FaultKind | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        if route not in OPERATION_ROUTES:
            return await self._forward(request, body)
        assert self._actions is not None
        async with self._actions:
            if fault is FaultKind.OPERATION_FAILED:
                await self._arm_operation_failure(route)
            return await self._forward(request, body)

    async def _arm_operation_failure(self, route: str) -> None:
        assert self._session is not None
        async with self._session.post(
            f"{self._upstream}{_CONTROL_PREFIX}faults/operation",
            json={"route": route, "statusDetail": self._plan.operation_failure_detail,
                  "count": 1},
        ) as armed:
            armed.raise_for_status()

    async def _forward(
        self, request: web.Request, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request upstream as it came; (status, headers, body) with links rewritten."""
        assert self._session is not None
        headers = [(name, value) for name, value in request.headers.items()
                   if name.lower() not in _HOP_BY_HOP]
        # encoded=True: the path goes upstream exactly as sent (the simulator refuses '//' and
        # reads quotes and commas in getPolicyId(...) as they are).
        target = URL(f"{self._upstream}{request.raw_path}", encoded=True)
        try:
            async with self._session.request(request.method, target, headers=headers,
                                             data=body or None, allow_redirects=False) as answer:
                content = await answer.read()
                status = answer.status
                answer_headers = [(name, value) for name, value in answer.headers.items()
                                  if name.lower() not in _HOP_BY_HOP]
        except aiohttp.ClientError as error:
            problem = {"error": {"code": "BadGateway",
                                 "message": f"fault proxy: the simulator did not answer: {error}"}}
            return 502, [("Content-Type", "application/json")], json.dumps(problem).encode()
        return status, [(name, self._rewrite_text(value)) for name, value in answer_headers], \
            self._rewrite(content)

    def _rewrite(self, content: bytes) -> bytes:
        # The simulator's links are absolute, with its own origin; a client following one must
        # come back through the proxy.
        return content.replace(self._upstream.encode(), self._origin.encode())

    def _rewrite_text(self, value: str) -> str:
        return value.replace(self._upstream, self._origin)

    @staticmethod
    def _response(status: int, headers: list[tuple[str, str]], body: bytes) -> web.Response:
        response = web.Response(status=status, body=body or None)
        for name, value in headers:
            response.headers.add(name, value)
        return response

    def _fault_response(self, fault: FaultKind, request: web.Request) -> web.Response:
        status, code, message = _ERRORS[fault]
        headers = {"request-id": str(uuid.uuid4()),
                   "client-request-id": request.headers.get("client-request-id", "")}
        if fault is FaultKind.THROTTLE_SHORT:
            headers["Retry-After"] = str(self._plan.short_retry_after_seconds)
        elif fault is FaultKind.THROTTLE_LONG:
            headers["Retry-After"] = str(self._plan.long_retry_after_seconds)
        error = {"error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": headers["request-id"],
                "client-request-id": headers["client-request-id"],
            },
        }}
        return web.json_response(error, status=status, headers=headers)


def _drop(request: web.Request, *, reset: bool) -> web.Response:
    """End the connection without an answer: closed (`reset=False`) or reset (RST)."""
    transport = request.transport
    if transport is not None:
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                # Linger 0: the close sends RST, which the client sees as "connection reset".
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    # Never written: the transport is gone; aiohttp drops it quietly.
    return web.Response(status=499)
