"""Many customer tenants on one app (issue 12): ``python -m benchmarks.tenants [--tenants 200]
[--users 500] [--onboard-tenants 5] [--onboard-users 300] [--instances 3] [--tenant-limit 10]
[--app-limit 30] [--only steady|onboarding] [--quick]``.

Both parts run the app as an operator deploys it (``local_runner.customers``): no ``TENANT_ID``,
every tenant in the registry, Graph tokens by federated identity from the simulator's Entra and
managed-identity stand-ins, one simulator serving every tenant and one Azurite.

Steady state (``--tenants`` x ``--users``). Every tenant has a voice group whose users already
have their valid personal numbers in Teams, and the app's claims on them. Setup, untimed:
register and activate every tenant as the operator does (``onboard``), seed the claims (a
scenario's ``appState``, in transactions of 100), then one timer tick: each tenant's full read,
which plans ``keep`` for everyone and stores the statuses, the directory snapshot and the delta
links. (That is the quickest way to the steady state: onboarding 100,000 users through Teams would
cost six paced Teams requests each.) Then the timed tick with nothing changed, a delta round for
every tenant. It prints the Graph requests per tenant (target: 2, ``users/delta`` and
``groups/delta``) with their distribution and routes, the table requests per tenant and in all
(every request of the app's Table clients, counted by a raw-request hook and put down to the
tenant it names; those naming none, like the registry's list, are app-wide), the queue requests
by who sent them (the app, or the Functions host fetching and settling), and the tick's wall time
(the timer until its ``tenant-syncs`` are drained, and until the last tenant's run record says it
finished) with the CPU time the app and Azurite spent in it.

Onboarding (``--onboard-tenants`` x ``--onboard-users``). Every tenant has new users with valid
numbers free in Teams; the simulator limits each tenant's ``/admin/teams/`` requests to
``--tenant-limit`` (429 with ``Retry-After`` beyond it), the registry gives each tenant a pace just
under it, and the app's pace across tenants is ``--app-limit`` (``TEAMS_APP_REQUESTS_PER_SECOND``).
The simulator has no app-wide bucket (Teams' limit is per tenant; the app-wide pace is the
operator's own ceiling), so the aggregate rate is counted across the simulator's tenants: the
window runs from the first to the last Teams request answered while ``--instances`` processes,
each a Functions host running the real queue function, drain the queue. It prints the aggregate
rate as a fraction of ``--app-limit`` (target >= 0.9), each tenant's own window and rate, how many
tenants were sending at once and the rate while all of them were, the 429s the simulator answered
and the failures (target 0 each).

``--quick`` is a smoke run: 10 x 50 steady, 4 x 50 onboarding (four tenants, so that their paces
together exceed the app-wide one, as five do at the full size).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from unittest.mock import patch
from urllib.parse import unquote, urlsplit

from azure.core.pipeline import PipelineRequest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueClient

import function_app
import local_runner.session as session_module
import shared.runtime as runtime_module
from graph_simulator import EVERY_TENANT, TEAMS_ADMIN_ROUTES, Scenario, parse_scenario
from local_runner.customers import Customer, merged_scenario, onboard, operator_stack
from local_runner.instances import InstanceProcess, InstanceSettings
from local_runner.queue_host import DrainStats
from local_runner.session import app_environment, run_timer, teams_pace_for
from shared.adapters.storage import accounts
from shared.adapters.storage.accounts import RequestHook
from shared.config import StorageSettings
from shared.core.outcomes import Outcome
from shared.core.snapshot_file import read_snapshot
from shared.runtime import AppRuntime

BASE = 31_855_000_000  # +31 85 5xx xxxx: valid Dutch numbers (each tenant is a world of its own)
SAMPLE_SECONDS = 0.1
PROGRESS_SECONDS = 60.0
SETUP_CONCURRENCY = 16
#: Storage requests that name no tenant (the registry's list, the schedules, the app's pace).
APP_WIDE = "(app-wide)"
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_BATCH_TABLE = re.compile(r"(?:POST|PUT|MERGE|PATCH|DELETE|GET) \S*?/([A-Za-z][A-Za-z0-9]*)"
                          r"(?:\(|\?| |$)")


def tenant_id(index: int, kind: int) -> str:
    """Tenant ``index``'s id; ``kind`` keeps the two parts' tenants apart. No user or group id
    looks like one (they are counted by finding tenant ids in storage requests)."""
    return f"7e0a{kind:04x}-0000-4000-8000-{index:012x}"


def customer_scenario(index: int, users: int, *, kind: int, assigned: bool,
                      rate_limit: float | None = None) -> Scenario:
    """One customer: a voice group of ``users`` users, each with a valid personal number that
    Teams has on them already and the app claims (``assigned``), or that waits free in Teams."""
    key, group = tenant_id(index, kind), f"0f5e2c1a-0000-4000-8000-{index:012x}"
    domain = f"customer-{index:04d}.example"
    people: list[dict[str, Any]] = [
        {"id": f"00000000-0000-4000-8000-{user:012d}",
         "userPrincipalName": f"user-{user:05d}@{domain}",
         "businessPhones": [f"+{BASE + 1 + user}"], "accountEnabled": True}
        for user in range(users)
    ]
    data: dict[str, Any] = {
        "version": 1,
        "displayName": f"Customer {index:04d}",
        "tenant": {"id": key, "voiceGroupId": group, "defaultDomain": domain},
        "users": people,
        "groups": [{"id": group, "displayName": "EnterpriseVoiceEnabled",
                    "members": [person["id"] for person in people]}],
        "numberAssignments": [
            {"telephoneNumber": person["businessPhones"][0], "numberType": "directRouting",
             "assignmentTargetId": person["id"] if assigned else None}
            for person in people
        ],
    }
    if assigned:
        data["appState"] = {"claims": [
            {"telephoneNumber": person["businessPhones"][0], "userId": person["id"],
             "userPrincipalName": person["userPrincipalName"], "assigned": True}
            for person in people
        ]}
    if rate_limit is not None:
        data["behaviour"] = {"rateLimit": {"requestsPerSecond": rate_limit}}
    return parse_scenario(data)


# -- counting storage requests ---------------------------------------------------------------


@dataclass
class StorageCounter:
    """Every storage request of the clients built while ``counted_storage`` is on: table
    requests by the tenant they name (``APP_WIDE``: none) and table; queue requests by who sent
    them (``app``, or ``host`` for the runner's Functions host), queue and operation."""

    tenant_keys: frozenset[str]
    tables: Counter[tuple[str, str]] = field(default_factory=Counter)
    queues: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def clear(self) -> None:
        """Forget what was counted so far."""
        self.tables.clear()
        self.queues.clear()

    def table_request(self, request: PipelineRequest[Any]) -> None:
        """The tables' raw-request hook."""
        http = request.http_request
        url, body = unquote(http.url), _body_text(http)
        path = urlsplit(url).path
        last = path.rstrip("/").rsplit("/", 1)[-1]
        if last == "$batch":
            found = _BATCH_TABLE.search(body)
            table = f"{found.group(1) if found else '?'} (batch)"
        else:
            table = re.split(r"[(?]", last, maxsplit=1)[0]
        owners = {guid for guid in _GUID.findall(f"{url}\n{body}".lower())
                  if guid in self.tenant_keys}
        owner = owners.pop() if len(owners) == 1 else APP_WIDE
        self.tables[owner, table] += 1

    def queue_request(self, side: str) -> RequestHook:
        """The queues' raw-request hook for ``side`` (``app`` or ``host``)."""

        def hook(request: PipelineRequest[Any]) -> None:
            http = request.http_request
            parts = urlsplit(http.url)
            segments = [unquote(s) for s in parts.path.strip("/").split("/")]
            # Path style (Azurite): /<account>/<queue>[/messages[/<id>]]
            queue = segments[1] if len(segments) > 1 else "?"
            self.queues[side, queue, _queue_operation(http.method, segments, parts.query)] += 1

        return hook

    def per_tenant(self) -> dict[str, int]:
        """Table requests per tenant (every tenant, none left out)."""
        counts = dict.fromkeys(sorted(self.tenant_keys), 0)
        for (owner, _table), n in self.tables.items():
            if owner != APP_WIDE:
                counts[owner] += n
        return counts


def cpu_seconds(*pids: int) -> float:
    """The CPU time of processes so far, user and system, summed (Linux ``/proc``; NaN where
    one is unreadable)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return float("nan")
        # utime and stime are fields 14 and 15 of stat(5), counted after the command name here.
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _body_text(http: Any) -> str:
    body = getattr(http, "body", None)
    if body is None:
        body = getattr(http, "content", None)
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return body if isinstance(body, str) else ""


def _queue_operation(method: str, segments: list[str], query: str) -> str:
    if len(segments) <= 2:
        return "properties" if method == "GET" else f"queue {method}"
    if len(segments) == 3:  # /messages
        if method == "POST":
            return "send"
        return "peek" if "peekonly=true" in query.lower() else "receive"
    return {"DELETE": "delete", "PUT": "update (lease)"}.get(method, method)


@contextmanager
def counted_storage(counter: StorageCounter) -> Iterator[None]:
    """Hook ``counter`` into every Table and Queue client the app (``shared.runtime``) and the
    local Functions host (``local_runner.session``) build from now on, in this process."""
    real_tables, real_queue = accounts.table_service, accounts.queue_client

    def tables(settings: StorageSettings) -> TableServiceClient:
        return real_tables(settings, counter.table_request)

    def app_queue(settings: StorageSettings, name: str) -> QueueClient:
        return real_queue(settings, name, counter.queue_request("app"))

    def host_queue(settings: StorageSettings, name: str) -> QueueClient:
        return real_queue(settings, name, counter.queue_request("host"))

    with (patch.object(runtime_module, "table_service", tables),
          patch.object(runtime_module, "queue_client", app_queue),
          patch.object(session_module, "queue_client", host_queue)):
        yield


# -- (a) the steady state ----------------------------------------------------------------------


@dataclass
class SteadyFigures:
    """The figures of one tick with nothing changed."""

    tenants: int
    users: int
    setup_seconds: dict[str, float]
    setup_tick: DrainStats
    """The setup tick's tenant-syncs (failed attempts are retried, as the host retries)."""
    tick_seconds: float
    """From the timer's invocation to its tenant-syncs queue drained."""
    tick_cpu: dict[str, float]
    """CPU seconds spent in the tick, by process."""
    last_run_seconds: float
    """From the timer's invocation to the last tenant run's finish (its run record)."""
    graph: dict[str, dict[str, int]]
    """Tenant → route → Graph requests."""
    unattributed_graph: int
    identity_requests: int
    run_reads: Counter[str]
    run_outcomes: Counter[str]
    runs_missing: int
    tables: Counter[tuple[str, str]]
    table_per_tenant: dict[str, int]
    queues: Counter[tuple[str, str, str]]
    drained: DrainStats


async def _gathered(calls: Sequence[Callable[[], Awaitable[object]]],
                    limit: int = SETUP_CONCURRENCY) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one(call) for call in calls))


async def _register(runtime: AppRuntime, scenario: Scenario) -> None:
    """As the operator registers a customer (``onboard``), the claims in one transaction per
    100 rather than one request each."""
    await onboard(runtime, Customer(scenario.model_copy(update={"app_state": {}})))
    claims = read_snapshot(scenario.model_dump_json(by_alias=True)).state.claims
    await (await runtime.tenant(scenario.tenant.id)).claims.claim_all(list(claims.values()))


def steady_state(tenants: int, users: int, *, progress: bool = True) -> SteadyFigures:
    """Set up ``tenants`` x ``users`` in steady state, then measure one timer tick."""
    setup: dict[str, float] = {}
    started = time.monotonic()
    scenarios = [customer_scenario(index, users, kind=1, assigned=True)
                 for index in range(tenants)]
    # The simulator ignores appState: the merged scenario is built (and validated) without it.
    merged = merged_scenario([scenario.model_copy(update={"app_state": {}})
                              for scenario in scenarios])
    setup["scenarios built"] = time.monotonic() - started
    keys = frozenset(scenario.tenant.id for scenario in scenarios)
    counter = StorageCounter(keys)
    with operator_stack(merged) as stack, counted_storage(counter):
        settings, simulator = stack.settings, stack.simulator

        async def run() -> SteadyFigures:
            async with app_environment(settings):
                runtime = await function_app.runtime.get()
                mark = time.monotonic()
                await _gathered([partial(_register, runtime, scenario) for scenario in scenarios])
                setup["registered, activated, claims seeded"] = time.monotonic() - mark
                if progress:
                    print(f"  … {tenants:,} tenants registered in "
                          f"{setup['registered, activated, claims seeded']:.1f} s", flush=True)
                mark = time.monotonic()
                first = await run_timer(settings=settings, timeout_seconds=3600)
                setup["first tick (full reads)"] = time.monotonic() - mark
                if first.succeeded != tenants:
                    raise RuntimeError(f"the setup tick did not run every tenant: {first}")
                if progress:
                    print(f"  … set up in {sum(setup.values()):.1f} s; the tick now",
                          flush=True)
                simulator.clear_requests(EVERY_TENANT)
                counter.clear()
                ticked_at = datetime.now(UTC)
                storage_cpu = cpu_seconds(*stack.azurite.pids.values())
                app_cpu = time.process_time()
                mark = time.monotonic()
                drained = await run_timer(settings=settings, timeout_seconds=3600)
                tick_seconds = time.monotonic() - mark
                cpu = {"app (and simulator)": time.process_time() - app_cpu,
                       "Azurite": cpu_seconds(*stack.azurite.pids.values()) - storage_cpu}
                tables, queues = Counter(counter.tables), Counter(counter.queues)
                table_per_tenant = counter.per_tenant()
                graph = {key: simulator.request_counts(key) for key in sorted(keys)}
                every = sum(simulator.request_counts(EVERY_TENANT).values())
                identity = len(simulator.identity_requests(EVERY_TENANT))
                reads, outcomes, missing, last_finish = await _tick_runs(
                    runtime, sorted(keys), ticked_at)
            return SteadyFigures(
                tenants=tenants, users=users, setup_seconds=setup, setup_tick=first,
                tick_seconds=tick_seconds, tick_cpu=cpu,
                last_run_seconds=(last_finish - ticked_at).total_seconds() if last_finish
                else float("nan"),
                graph=graph,
                unattributed_graph=every - sum(sum(r.values()) for r in graph.values()),
                identity_requests=identity, run_reads=reads, run_outcomes=outcomes,
                runs_missing=missing, tables=tables, table_per_tenant=table_per_tenant,
                queues=queues, drained=drained,
            )

        return asyncio.run(run())


async def _tick_runs(
    runtime: AppRuntime, keys: list[str], since: datetime
) -> tuple[Counter[str], Counter[str], int, datetime | None]:
    """How each tenant's run of the tick read, its outcome, the tenants without a finished run
    since ``since``, and the last finish."""
    reads: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    missing, last = 0, None
    for key in keys:
        runs = [run for run in await (await runtime.tenant(key)).ledger.runs()
                if run.started_at >= since and run.finished_at is not None]
        if not runs:
            missing += 1
            continue
        run = runs[-1]
        reads.update(name.removesuffix("Read") for name in ("fullRead", "deltaRead")
                     if run.counts.get(name))
        outcomes[run.outcome] += 1
        finished = run.finished_at or run.started_at
        last = finished if last is None or finished > last else last
    return reads, outcomes, missing, last


def _spread(values: Sequence[int]) -> str:
    if not values:
        return "none"
    return (f"min {min(values):,}, median {statistics.median(values):g}, max {max(values):,}")


def print_steady(figures: SteadyFigures) -> None:
    """The steady state's figures."""
    n = figures.tenants
    print(f"steady state: {n:,} tenants x {figures.users:,} users = {n * figures.users:,} users, "
          "one timer tick with nothing changed")
    print("  setup (untimed): " + ", ".join(
        f"{name} {seconds:.1f} s" for name, seconds in figures.setup_seconds.items())
        + (f"; its failed attempts (retried) {dict(figures.setup_tick.errors)}"
           if figures.setup_tick.failed_attempts else ""))
    print(f"  runs: {figures.drained.succeeded:,} tenant-syncs run, reads "
          f"{dict(sorted(figures.run_reads.items()))}, outcomes "
          f"{dict(sorted(figures.run_outcomes.items()))}, tenants without a finished run "
          f"{figures.runs_missing}")
    print(f"  wall time: tick {figures.tick_seconds:.2f} s (timer → tenant-syncs drained), "
          f"last run finished at {figures.last_run_seconds:.2f} s; "
          f"{figures.tick_seconds / max(n, 1) * 1000:.1f} ms per tenant; CPU "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in figures.tick_cpu.items()))
    per_tenant = [sum(routes.values()) for routes in figures.graph.values()]
    routes: Counter[str] = Counter()
    for counts in figures.graph.values():
        routes.update(counts)
    print(f"  Graph requests per tenant: {_spread(per_tenant)} (target 2); total "
          f"{sum(per_tenant):,}, routes {dict(sorted(routes.items()))}; not of a tenant "
          f"{figures.unattributed_graph}; identity (token) requests {figures.identity_requests}")
    odd = {key: counts for key, counts in figures.graph.items() if sum(counts.values()) != 2}
    for key, counts in list(odd.items())[:5]:
        print(f"    tenant {key}: {dict(sorted(counts.items()))}")
    tables = figures.table_per_tenant
    app_wide = sum(n for (owner, _), n in figures.tables.items() if owner == APP_WIDE)
    total = sum(figures.tables.values())
    print(f"  table requests per tenant: {_spread(list(tables.values()))}; app-wide {app_wide:,}; "
          f"total {total:,} = {total / max(n, 1):.1f} per tenant")
    by_table: Counter[str] = Counter()
    for (owner, table), count in figures.tables.items():
        if owner != APP_WIDE:
            by_table[table] += count
    print("    per tenant by table: " + ", ".join(
        f"{table} {count / max(n, 1):.2f}" for table, count in sorted(by_table.items())))
    print("    app-wide by table: " + ", ".join(
        f"{table} {count}" for (owner, table), count in sorted(figures.tables.items())
        if owner == APP_WIDE))
    queues = figures.queues
    for side in ("app", "host"):
        mine = {f"{queue} {op}": count for (who, queue, op), count in sorted(queues.items())
                if who == side}
        print(f"  queue requests by the {side}: {sum(mine.values()):,} {mine}")


# -- (b) onboarding at the app-wide pace ---------------------------------------------------------


@dataclass
class OnboardingFigures:
    """The figures of many tenants onboarded at once."""

    tenants: int
    users: int
    instances: int
    tenant_limit: float
    tenant_pace: float
    app_limit: float
    planned_seconds: float
    window: float
    windows: dict[str, float]
    """Tenant → its own window (first to last of its Teams requests)."""
    starts: dict[str, float]
    """Tenant → when its first Teams request came, in seconds into the window."""
    all_sending: tuple[float, float] | None
    drain_seconds: float
    """From the instances' start to their end."""
    drain_cpu: dict[str, float]
    """CPU seconds spent in the drain, by process (the machine has ``os.cpu_count()``)."""
    """(seconds, aggregate rate) while every tenant was sending."""
    teams: dict[str, int]
    """Tenant → Teams requests while draining."""
    throttled: int
    """429s the simulator answered on Teams routes (from its request log)."""
    log_complete: bool
    outcomes: Counter[str]
    drains: list[DrainStats]

    @property
    def rate(self) -> float:
        """The aggregate Teams requests per second across tenants."""
        return sum(self.teams.values()) / self.window if self.window > 0 else 0.0

    @property
    def failures(self) -> int:
        """Users whose outcome is ``failed``."""
        return self.outcomes.get(Outcome.FAILED.value, 0)


def _teams_requests(counts: dict[str, int]) -> int:
    return sum(n for route, n in counts.items() if route in TEAMS_ADMIN_ROUTES)


@dataclass
class Window:
    """When Teams requests grew, as sampled: from the sample before the first growth to the
    last."""

    first: float | None = None
    last: float | None = None

    def grew(self, now: float) -> None:
        """Teams requests grew by ``now``."""
        self.first = self.first if self.first is not None else now - SAMPLE_SECONDS
        self.last = now

    @property
    def seconds(self) -> float:
        """The window's length (0 when nothing grew)."""
        return 0.0 if self.first is None or self.last is None else self.last - self.first


@dataclass
class Watched:
    """What sampling the simulator while the queue drained saw."""

    every: Window
    each: dict[str, Window]
    samples: list[tuple[float, int]]
    """(time, Teams requests so far across tenants), one per sample."""
    cpu: dict[str, float]
    """CPU seconds spent while the queue drained, by process."""

    def rate_while_all_sent(self) -> tuple[float, float] | None:
        """(seconds, Teams requests per second across tenants) while every tenant was sending:
        from the last tenant's first request to the first tenant's last; None if never."""
        firsts = [w.first for w in self.each.values() if w.first is not None]
        lasts = [w.last for w in self.each.values() if w.last is not None]
        if len(firsts) < len(self.each) or not lasts:
            return None
        start, end = max(firsts), min(lasts)
        inside = [(at, count) for at, count in self.samples if start <= at <= end]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return None
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return t1 - t0, (c1 - c0) / (t1 - t0)


def _watch(simulator: Any, keys: list[str], processes: list[InstanceProcess],
           storage_pids: tuple[int, ...], timeout: float) -> Watched:
    """Wait for the instances, sampling the simulator: when Teams requests grew, in all and per
    tenant; and the CPU time each process spent meanwhile."""
    every, each = Window(), {key: Window() for key in keys}
    samples: list[tuple[float, int]] = []
    seen = dict.fromkeys(keys, 0)
    shown = started = time.monotonic()
    pids = {process.pid: cpu_seconds(process.pid) for process in processes}
    cpu_start = {"instances": sum(pids.values()), "Azurite": cpu_seconds(*storage_pids),
                 "simulator (and this process)": time.process_time()}
    while any(process.running for process in processes):
        time.sleep(SAMPLE_SECONDS)
        for pid, seen_cpu in pids.items():
            # Read while the process lives: its time is gone with it (then NaN, not kept).
            now_cpu = cpu_seconds(pid)
            pids[pid] = now_cpu if now_cpu > seen_cpu else seen_cpu
        now = time.monotonic()
        counts = {key: _teams_requests(simulator.request_counts(key)) for key in keys}
        for key, count in counts.items():
            if count != seen[key]:
                each[key].grew(now)
                every.grew(now)
        seen = counts
        samples.append((now, sum(counts.values())))
        if every.first is not None and now - shown >= PROGRESS_SECONDS:
            total = sum(counts.values())
            print(f"  … {now - every.first:.0f} s: {total:,} Teams requests, "
                  f"{total / max(now - every.first, 1e-9):.1f}/s", flush=True)
            shown = now
        if now - started > timeout + 60:
            break
    if every.first is None:
        raise RuntimeError("the instances sent no Teams request")
    cpu_end = {"instances": sum(pids.values()), "Azurite": cpu_seconds(*storage_pids),
               "simulator (and this process)": time.process_time()}
    return Watched(every, each, samples,
                   {name: cpu_end[name] - cpu_start[name] for name in cpu_start})


def onboarding(tenants: int, users: int, *, instances: int, tenant_limit: float,
               app_limit: float, timeout: float = 3600.0) -> OnboardingFigures:
    """Onboard ``tenants`` x ``users`` at once and measure the aggregate Teams rate."""
    scenarios = [customer_scenario(index, users, kind=2, assigned=False, rate_limit=tenant_limit)
                 for index in range(tenants)]
    keys = [scenario.tenant.id for scenario in scenarios]
    with operator_stack(merged_scenario(scenarios)) as stack:
        settings = {**stack.settings, "TEAMS_APP_REQUESTS_PER_SECOND": f"{app_limit:g}"}
        simulator = stack.simulator

        async def plan() -> float:
            async with app_environment(settings):
                runtime = await function_app.runtime.get()
                for scenario in scenarios:
                    await onboard(runtime, Customer(scenario))
                mark = time.monotonic()
                stats = await run_timer(settings=settings, timeout_seconds=timeout)
                if stats.succeeded != tenants:
                    raise RuntimeError(f"the timer did not run every tenant: {stats}")
                return time.monotonic() - mark

        planned = asyncio.run(plan())
        simulator.clear_requests(EVERY_TENANT)
        instance = InstanceSettings(settings, timeout_seconds=timeout)
        drain_started = time.monotonic()
        processes = [InstanceProcess(instance).start() for _ in range(instances)]
        try:
            storage_pids = tuple(stack.azurite.pids.values())
            watched = _watch(simulator, keys, processes, storage_pids, timeout)
            drains = [process.wait(60) for process in processes]
            drain_seconds = time.monotonic() - drain_started
        finally:
            for process in processes:
                process.kill()
        teams = {key: _teams_requests(simulator.request_counts(key)) for key in keys}
        log = simulator.request_log(EVERY_TENANT)
        throttled = sum(1 for entry in log
                        if entry["route"] in TEAMS_ADMIN_ROUTES and entry["status"] == 429)
        complete = len(log) >= sum(simulator.request_counts(EVERY_TENANT).values())

        async def report() -> Counter[str]:
            async with app_environment(settings):
                runtime = await function_app.runtime.get()
                outcomes: Counter[str] = Counter()
                for key in keys:
                    outcomes.update(s.outcome.value for s in await (await runtime.tenant(key))
                                    .report())
                return outcomes

        outcomes = asyncio.run(report())
    return OnboardingFigures(
        tenants=tenants, users=users, instances=instances, tenant_limit=tenant_limit,
        tenant_pace=teams_pace_for(scenarios[0]), app_limit=app_limit, planned_seconds=planned,
        window=watched.every.seconds,
        windows={key: w.seconds for key, w in watched.each.items()},
        starts={key: (w.first or 0.0) - (watched.every.first or 0.0)
                for key, w in watched.each.items()},
        all_sending=watched.rate_while_all_sent(), drain_seconds=drain_seconds,
        drain_cpu=watched.cpu,
        teams=teams, throttled=throttled, log_complete=complete,
        outcomes=outcomes, drains=drains,
    )


def print_onboarding(figures: OnboardingFigures) -> None:
    """The onboarding's figures."""
    n, total = figures.tenants, sum(figures.teams.values())
    print(f"onboarding: {n} tenants x {figures.users:,} new users, {figures.instances} "
          f"instances; Teams limit {figures.tenant_limit:g}/s per tenant (the simulator's), "
          f"tenant pace {figures.tenant_pace:g}/s (the registry's), app pace "
          f"{figures.app_limit:g}/s across tenants (the simulator has no app-wide bucket: the "
          "rate is counted across its tenants)")
    bound = min(figures.app_limit, n * figures.tenant_pace)
    print(f"  plan and enqueue (timer tick, every tenant): {figures.planned_seconds:.1f} s")
    print(f"  users {sum(figures.outcomes.values()):,}, outcomes "
          f"{dict(sorted(figures.outcomes.items()))}")
    print(f"  Teams requests {total:,} in a window of {figures.window:.1f} s, "
          f"{total / max(n * figures.users, 1):.1f} per user")
    for key, count in figures.teams.items():
        window = figures.windows[key]
        rate = count / window if window > 0 else 0.0
        start = figures.starts[key]
        print(f"    tenant {key}: {count:,} from {start:.1f} s to {start + window:.1f} s = "
              f"{rate:.2f}/s = {rate / figures.tenant_limit:.3f} of its limit")
    print(f"  achieved {figures.rate:.2f} Teams requests/s across tenants = "
          f"{figures.rate / figures.app_limit:.3f} of the app-wide {figures.app_limit:g}/s "
          f"(target >= 0.9; the paces allow at most {bound:g}/s = "
          f"{bound / figures.app_limit:.3f})")
    sending = sum(figures.windows.values()) / figures.window if figures.window > 0 else 0.0
    print(f"  tenants sending at once: {sending:.2f} on average over the window" + (
        f"; all {n} for {figures.all_sending[0]:.1f} s, at {figures.all_sending[1]:.2f}/s = "
        f"{figures.all_sending[1] / figures.app_limit:.3f} of the app-wide pace"
        if figures.all_sending else f"; never all {n} at once"))
    print(f"  CPU in the drain ({figures.drain_seconds:.1f} s, {os.cpu_count()} cores): "
          + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in figures.drain_cpu.items()))
    print(f"  answered 429 {figures.throttled:,} (target 0)"
          + ("" if figures.log_complete else " (request log full: at least)"))
    drains = figures.drains
    attempts = sum(s.invocations for s in drains)
    again = attempts - sum(figures.outcomes.values())
    print(f"  message attempts {attempts:,}"
          + (f" ({again:,} more than users: deferred or redelivered)" if again > 0 else "")
          + f", failed attempts {sum(s.failed_attempts for s in drains):,}, poisoned "
          f"{sum(s.poisoned for s in drains):,}")
    print(f"  failures {figures.failures} (target 0)")


QUICK = {"tenants": 10, "users": 50, "onboard_tenants": 4, "onboard_users": 50}


def main() -> None:
    """Run both parts and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--users", type=int, default=500, help="users per steady tenant")
    parser.add_argument("--onboard-tenants", type=int, default=5)
    parser.add_argument("--onboard-users", type=int, default=300,
                        help="new users per onboarding tenant")
    parser.add_argument("--instances", type=int, default=3,
                        help="processes draining the onboarding queue")
    parser.add_argument("--tenant-limit", type=float, default=10.0,
                        help="the simulator's Teams requests per second per tenant")
    parser.add_argument("--app-limit", type=float, default=30.0,
                        help="TEAMS_APP_REQUESTS_PER_SECOND: the app's pace across tenants")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run (overrides the sizes): {QUICK['tenants']} x "
                             f"{QUICK['users']} steady, {QUICK['onboard_tenants']} x "
                             f"{QUICK['onboard_users']} onboarding")
    parser.add_argument("--only", choices=("steady", "onboarding"),
                        help="run one part only")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="give up draining after this many seconds")
    args = parser.parse_args()
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    logging.basicConfig(level=logging.CRITICAL)
    # The app's telemetry events log at INFO on their own logger (for the Functions worker);
    # the figures are what this prints, so the events stay out of its output.
    logging.getLogger("shared.events").propagate = False
    if args.only in (None, "steady"):
        print_steady(steady_state(args.tenants, args.users))
    if args.only in (None, "onboarding"):
        print_onboarding(onboarding(
            args.onboard_tenants, args.onboard_users, instances=args.instances,
            tenant_limit=args.tenant_limit, app_limit=args.app_limit, timeout=args.timeout,
        ))


if __name__ == "__main__":
    main()
