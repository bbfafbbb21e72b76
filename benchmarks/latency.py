"""The one-hour promise, measured (issue 13): ``python -m benchmarks.latency [--hours 24]
[--users 500] [--per-kind 40] [--seed 1] [--grace-hours 0]``.

A simulated day on the Graph simulator and Azurite with the app's real schedule: the real timer
function (``sync_scheduled``) fires every 5 minutes of simulated time (the default
``SYNC_SCHEDULE``), each tick's ``tenant-syncs`` run the real ``sync_tenant`` (delta reads, and
the full read every ``FULL_READ_INTERVAL_MINUTES``, 60 by default: the app decides which, as in
Azure; both settings come from the environment, as the app reads them), and
``number-assignments`` is drained into the real ``assign_user`` with the Functions host's rules
(``local_runner.queue_host``). The app's clock and the simulator's are one ``SimulatedClock``
that jumps from tick to tick and runs at the wall clock's pace in between, so a day takes
minutes; a message the app delays (``send_later``) waits for its simulated time
(``ClockedDelayQueue``; the runner jumps the clock to it when it comes before the next tick).
The simulator limits Teams to 30 requests a second, and the app paces itself under it.

The tenant starts in steady state: ``--users`` members, a fifth of them through a nested group,
each with their valid number in Teams and the app's claim on it. At random (``--seed``) times of
the day the directory changes, each change at its own moment, ``--per-kind`` of each kind:

* ``direct joiner``: a new user with a free number, added to the voice group;
* ``nested joiner``: the same, added to the nested group (group delta sees direct members only);
* ``number change``: a member's ``businessPhones`` becomes another free number;
* ``leaver``: a direct member removed from the voice group (their number is measured from the end
  of the grace period, ``--grace-hours``; 0 by default, so from the change);
* ``late licence``: a new user who joins the voice group directly while Teams does not have them
  ready (alternately: no Teams Phone licence yet, not in Teams yet), and whose licence reaches
  Teams 10 minutes to 6 hours later; measured from the licence's arrival.

After every drain the simulator's Teams state is looked at: a change has landed when Teams shows
its effect (the number activated on the user, the new number on the user, the number off the
leaver). The day's ticks go on after its end until every change landed, at most ``--settle-hours``
more. Printed per kind: count, p50 / p95 / max minutes from the change in Graph to Teams showing
it, and whether the target holds (p95 <= 5 minutes for direct changes, <= 60 for nested-group
joiners and for licences: the app learns of those only by reading again). The exit code is 1 when
a change never landed.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import logging
import math
import os
import platform
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import function_app
from graph_simulator import Directory, Scenario, SimulatorServer, parse_scenario
from local_runner.azurite import Azurite
from local_runner.queue_host import DrainStats
from local_runner.session import (
    SIMULATOR_TOKEN,
    app_environment,
    app_settings_for,
    drain_queue,
    run_timer,
    seed_app_state,
)
from local_runner.simulated_time import ClockedDelayQueue, SimulatedClock, run_on_simulated_time
from shared.config import DEFAULT_SYNC_SCHEDULE, AppSettings
from shared.runtime import AppRuntime

DIRECT_JOINER: Final = "direct joiner"
NESTED_JOINER: Final = "nested joiner"
NUMBER_CHANGE: Final = "number change"
LEAVER: Final = "leaver"
LATE_LICENCE: Final = "late licence"
KINDS: Final = (DIRECT_JOINER, NESTED_JOINER, NUMBER_CHANGE, LEAVER, LATE_LICENCE)
#: p95 targets in minutes: five for what delta reads see, the hour for the rest.
TARGET_MINUTES: Final = {DIRECT_JOINER: 5.0, NUMBER_CHANGE: 5.0, LEAVER: 5.0,
                         NESTED_JOINER: 60.0, LATE_LICENCE: 60.0}
#: How long after joining a late licence reaches Teams (minutes), drawn uniformly.
LICENCE_DELAY_MINUTES: Final = (10.0, 360.0)

BASE = 31_855_000_000  # +31 85 5xx xxxx: valid Dutch numbers
DOMAIN = "contoso.example"
TENANT_ID = "0f5e2c1a-0000-4000-8000-00000000a7e1"
VOICE_GROUP = "0f5e2c1a-0000-4000-8000-000000000001"
NESTED_GROUP = "0f5e2c1a-0000-4000-8000-000000000002"
NESTED_SHARE = 0.2
#: Teams' limit per tenant: the simulator answers 429 beyond it, the app paces itself under it.
TEAMS_RATE_LIMIT = 30.0
PROGRESS_SECONDS = 30.0
_EVERY_N_MINUTES = re.compile(r"^0 \*/(?P<minutes>\d+) \* \* \* \*$")


def tick_minutes(schedule: str) -> int:
    """The minutes between timer ticks of an NCRONTAB ``0 */N * * * *`` schedule.

    Raises:
        ValueError: another form of schedule (the benchmark replays only this one).
    """
    found = _EVERY_N_MINUTES.match(schedule.strip())
    if found is None or not 0 < int(found["minutes"]) <= 60:
        raise ValueError(f"SYNC_SCHEDULE: only '0 */N * * * *' is replayed here, got "
                         f"{schedule!r}")
    return int(found["minutes"])


# -- the day's directory and its changes ---------------------------------------------------------


def _user_id(index: int) -> str:
    return f"00000000-0000-4000-8000-{index:012d}"


def _number(index: int) -> str:
    return f"+{BASE + 1 + index}"


@dataclass
class DayDirectory:
    """The tenant's users and groups as the day changes them (JSON-shaped, as a scenario)."""

    users: dict[str, dict[str, Any]]
    voice: list[str]
    nested: list[str]

    def directory(self) -> Directory:
        """The directory as the simulator takes it."""
        return Directory.model_validate({
            "users": list(self.users.values()),
            "groups": [
                {"id": VOICE_GROUP, "displayName": "EnterpriseVoiceEnabled",
                 "members": [*self.voice, NESTED_GROUP]},
                {"id": NESTED_GROUP, "displayName": "Sales", "members": list(self.nested)},
            ],
        })


@dataclass
class Change:
    """One directory change: when it was made (minutes into the day) and what Teams must show
    once it landed (``number`` on ``user_id``, or off them for a leaver)."""

    kind: str
    at: float
    user_id: str
    user_principal_name: str
    number: str
    joined_at: float | None = None
    """A late licence's join (its change is the licence's arrival)."""
    landed_at: float | None = None
    made: bool = False

    @property
    def minutes(self) -> float | None:
        """Minutes from the change to Teams showing it (None: not landed)."""
        return None if self.landed_at is None else self.landed_at - self.at

    def shows(self, teams: dict[str, tuple[str | None, str]]) -> bool:
        """Whether Teams (number → target, activation state) shows this change's effect."""
        target, state = teams.get(self.number, (None, "activated"))
        on_user = target == self.user_id and state == "activated"
        return not on_user if self.kind == LEAVER else on_user


@dataclass(frozen=True, slots=True)
class _Edit:
    """A directory edit at a moment (minutes into the day); ``change`` is what it measures."""

    at: float
    apply: Callable[[DayDirectory], None]
    change: Change | None = None


@dataclass
class DayPlan:
    """The tenant at the start of the day and every edit of it, in time order."""

    scenario: Scenario
    start: DayDirectory
    edits: list[_Edit]
    changes: list[Change]


def _person(index: int, number: str, *, teams: dict[str, Any] | None = None) -> dict[str, Any]:
    person: dict[str, Any] = {"id": _user_id(index),
                              "userPrincipalName": f"user-{index:05d}@{DOMAIN}",
                              "businessPhones": [number], "accountEnabled": True}
    if teams is not None:
        person["teams"] = teams
    return person


def plan_day(
    *, users: int, per_kind: int, hours: float, seed: int, grace_hours: float = 0.0,
    licence_delay: tuple[float, float] = LICENCE_DELAY_MINUTES,
) -> DayPlan:
    """The steady-state tenant and ``per_kind`` changes of every kind at random moments.

    Raises:
        ValueError: too few users for the number changes and leavers asked for, or a size out
            of range (named with its value).
    """
    if users < 1:
        raise ValueError(f"--users: at least 1, got {users}")
    if per_kind < 1:
        raise ValueError(f"--per-kind: at least 1, got {per_kind}")
    if hours <= 0:
        raise ValueError(f"--hours: more than 0, got {hours}")
    nested_count = max(1, round(users * NESTED_SHARE)) if users > 1 else 0
    direct = [_user_id(index) for index in range(nested_count, users)]
    if len(direct) < 2 * per_kind:
        raise ValueError(f"--users: {users} users leave {len(direct)} direct members, fewer than "
                         f"the {2 * per_kind} the number changes and leavers need (--per-kind "
                         f"{per_kind})")
    rng = random.Random(seed)
    day = hours * 60
    people = {_user_id(index): _person(index, _number(index)) for index in range(users)}
    start = DayDirectory(users=people, voice=list(direct),
                         nested=[_user_id(index) for index in range(nested_count)])
    free = iter(range(users, users + 4 * per_kind))  # a free Teams number for each new one
    edits: list[_Edit] = []
    changes: list[Change] = []

    def moment() -> float:
        return rng.uniform(0, day)

    for _ in range(per_kind):
        for kind in (DIRECT_JOINER, NESTED_JOINER):
            index = next(free)
            person = _person(index, _number(index))
            change = Change(kind, moment(), person["id"], person["userPrincipalName"],
                            _number(index))
            edits.append(_Edit(change.at, _joins(person, nested=kind == NESTED_JOINER), change))
            changes.append(change)
    movers = rng.sample(direct, 2 * per_kind)
    for user_id in movers[:per_kind]:
        number = _number(next(free))
        change = Change(NUMBER_CHANGE, moment(), user_id,
                        people[user_id]["userPrincipalName"], number)
        edits.append(_Edit(change.at, _renumbered(user_id, number), change))
        changes.append(change)
    for user_id in movers[per_kind:]:
        old = people[user_id]["businessPhones"][0]
        change = Change(LEAVER, moment() + grace_hours * 60, user_id,
                        people[user_id]["userPrincipalName"], old)
        left = change.at - grace_hours * 60
        edits.append(_Edit(left, _leaves(user_id), None))
        edits.append(_Edit(change.at, _nothing, change))
        changes.append(change)
    for position in range(per_kind):
        index = next(free)
        # Alternately: no Teams Phone licence yet, or not in Teams at all yet.
        waiting = {"licensed": False} if position % 2 == 0 else {"present": False}
        person = _person(index, _number(index), teams=waiting)
        arrives = moment()
        joined = max(0.0, arrives - rng.uniform(*licence_delay))
        change = Change(LATE_LICENCE, arrives, person["id"], person["userPrincipalName"],
                        _number(index), joined_at=joined)
        edits.append(_Edit(joined, _joins(person, nested=False), None))
        edits.append(_Edit(arrives, _licensed(person["id"]), change))
        changes.append(change)
    edits.sort(key=lambda edit: edit.at)
    inventory = [
        {"telephoneNumber": _number(index), "numberType": "directRouting",
         "assignmentTargetId": _user_id(index) if index < users else None}
        for index in range(users + 4 * per_kind)
    ]
    claims = [{"telephoneNumber": person["businessPhones"][0], "userId": person["id"],
               "userPrincipalName": person["userPrincipalName"], "assigned": True}
              for person in people.values()]
    first = start.directory().model_dump(mode="json", by_alias=True, exclude_defaults=True)
    scenario = parse_scenario({
        "version": 1,
        "tenant": {"id": TENANT_ID, "voiceGroupId": VOICE_GROUP, "defaultDomain": DOMAIN,
                   "rules": {"gracePeriodHours": grace_hours}},
        **first,
        "numberAssignments": inventory,
        "appState": {"claims": claims},
        "behaviour": {"rateLimit": {"requestsPerSecond": TEAMS_RATE_LIMIT}},
    })
    return DayPlan(scenario=scenario, start=start, edits=edits, changes=changes)


def _joins(person: dict[str, Any], *, nested: bool) -> Callable[[DayDirectory], None]:
    def apply(directory: DayDirectory) -> None:
        directory.users[person["id"]] = dict(person)
        (directory.nested if nested else directory.voice).append(person["id"])

    return apply


def _renumbered(user_id: str, number: str) -> Callable[[DayDirectory], None]:
    def apply(directory: DayDirectory) -> None:
        directory.users[user_id] = {**directory.users[user_id], "businessPhones": [number]}

    return apply


def _leaves(user_id: str) -> Callable[[DayDirectory], None]:
    def apply(directory: DayDirectory) -> None:
        directory.voice.remove(user_id)

    return apply


def _licensed(user_id: str) -> Callable[[DayDirectory], None]:
    def apply(directory: DayDirectory) -> None:
        directory.users[user_id] = {**directory.users[user_id], "teams": {}}

    return apply


def _nothing(directory: DayDirectory) -> None:
    del directory  # the end of a grace period: the app's clock, not the directory, moves


# -- playing the day -----------------------------------------------------------------------------


@dataclass
class Look:
    """What the app's status of a waiting user said at a moment (minutes into the day)."""

    at: float
    reason: str
    attempts: int
    retry_at: float | None


@dataclass
class DayFigures:
    """What the day measured."""

    hours: float
    users: int
    seed: int
    tick_minutes: int
    full_read_minutes: int
    grace_hours: float
    changes: list[Change]
    ticks: int = 0
    releases: int = 0
    """Delayed queue messages let out by the simulated clock."""
    drained: DrainStats = field(default_factory=DrainStats)
    reads: Counter[str] = field(default_factory=Counter)
    full_reads_at: list[float] = field(default_factory=list)
    looks: dict[str, list[Look]] = field(default_factory=dict)
    """A late licence's user → how the app's status of them went (evidence for the waits)."""
    outcomes: Counter[str] = field(default_factory=Counter)
    graph_requests: Counter[str] = field(default_factory=Counter)
    wall_seconds: float = 0.0
    simulated_minutes: float = 0.0

    def never_landed(self) -> list[Change]:
        """The changes Teams never showed."""
        return [change for change in self.changes if change.landed_at is None]


def _minutes_since(start: datetime, moment: datetime) -> float:
    return (moment - start).total_seconds() / 60


def _teams_view(simulator: SimulatorServer) -> dict[str, tuple[str | None, str]]:
    return {resource["telephoneNumber"]: (resource["assignmentTargetId"],
                                          resource["activationState"])
            for resource in simulator.state()}


def _add(total: DrainStats, more: DrainStats) -> None:
    total.invocations += more.invocations
    total.succeeded += more.succeeded
    total.failed_attempts += more.failed_attempts
    total.poisoned += more.poisoned
    total.errors.update(more.errors)
    total.poisoned_errors.update(more.poisoned_errors)


def play_day(
    plan: DayPlan, *, hours: float, seed: int, settle_hours: float = 8.0,
    grace_hours: float = 0.0, progress: bool = True,
) -> DayFigures:
    """Start Azurite and the simulator on one simulated clock and play the day's plan."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    clock = SimulatedClock(start)
    with Azurite() as azurite, SimulatorServer(
            plan.scenario, token=SIMULATOR_TOKEN, clock=clock.monotonic,
            wall_clock=lambda: clock.now().timestamp()) as simulator:
        settings = app_settings_for(plan.scenario, graph_base_url=simulator.base_url,
                                    storage_connection_string=azurite.connection_string)

        async def run() -> DayFigures:
            async with app_environment(settings):
                runtime = await function_app.runtime.get()
                queue = await run_on_simulated_time(runtime, clock)
                await seed_app_state(plan.scenario)
                return await _play(plan, runtime, queue, clock, simulator, settings,
                                   hours=hours, seed=seed, settle_hours=settle_hours,
                                   grace_hours=grace_hours, progress=progress)

        return asyncio.run(run())


async def _play(  # noqa: PLR0917 - the day's parts, passed once
    plan: DayPlan, runtime: AppRuntime, queue: ClockedDelayQueue, clock: SimulatedClock,
    simulator: SimulatorServer, settings: dict[str, str], *, hours: float, seed: int,
    settle_hours: float, grace_hours: float, progress: bool,
) -> DayFigures:
    app_settings = AppSettings.from_environ(os.environ)  # as the app reads them
    every = tick_minutes(app_settings.sync_schedule)
    start = clock.now()
    figures = DayFigures(
        hours=hours, users=len(plan.start.users), seed=seed, tick_minutes=every,
        full_read_minutes=app_settings.full_read_interval_minutes, grace_hours=grace_hours,
        changes=plan.changes,
    )
    day = _Day(plan, start, simulator)
    tick, day_end = timedelta(minutes=every), start + timedelta(hours=hours)
    give_up = day_end + timedelta(hours=settle_hours)
    next_tick = start
    wall = shown = time.monotonic()
    while True:
        due = queue.next_due()
        moment = next_tick if due is None or due > next_tick else due
        if moment > give_up:
            break
        day.make_edits(moment)
        clock.move_to(moment)
        if moment == next_tick:
            _add(figures.drained, await run_timer(settings=settings))
            figures.ticks += 1
            next_tick += tick
        figures.releases += await queue.release_due()
        _add(figures.drained, await drain_queue(settings))
        day.observe(_minutes_since(start, clock.now()))
        await _note_looks(runtime, day.late, figures, start)
        if progress and time.monotonic() - shown >= PROGRESS_SECONDS:
            print(f"  … simulated {_minutes_since(start, clock.now()) / 60:.1f} h in "
                  f"{time.monotonic() - wall:.0f} s: {day.landed}/{len(plan.changes)} changes "
                  "landed", flush=True)
            shown = time.monotonic()
        if moment >= day_end and day.all_landed:
            break
    figures.wall_seconds = time.monotonic() - wall
    figures.simulated_minutes = _minutes_since(start, clock.now())
    for run in await runtime.ledger.runs():
        figures.reads.update(name.removesuffix("Read") for name in ("fullRead", "deltaRead")
                             if run.counts.get(name))
        if run.counts.get("fullRead"):
            figures.full_reads_at.append(_minutes_since(start, run.started_at))
    figures.outcomes = Counter(status.outcome.value for status in await runtime.report())
    figures.graph_requests = Counter(simulator.request_counts())
    return figures


class _Day:
    """The directory as the day has changed it so far, and what Teams has shown of it."""

    def __init__(self, plan: DayPlan, start: datetime, simulator: SimulatorServer) -> None:
        self._directory = copy.deepcopy(plan.start)
        self._edits = list(plan.edits)
        self._changes = plan.changes
        self._start = start
        self._simulator = simulator
        self.late = {change.user_id: change for change in plan.changes
                     if change.kind == LATE_LICENCE}

    def make_edits(self, moment: datetime) -> None:
        """Make every edit due by ``moment`` in the simulator's directory (one new version)."""
        made = [edit for edit in self._edits
                if self._start + timedelta(minutes=edit.at) <= moment]
        if not made:
            return
        self._edits = self._edits[len(made):]
        for edit in made:
            edit.apply(self._directory)
            if edit.change is not None:
                edit.change.made = True
        self._simulator.replace_directory(self._directory.directory())

    def observe(self, now: float) -> None:
        """Note ``now`` as the landing of every change Teams shows for the first time."""
        teams = _teams_view(self._simulator)
        for change in self._changes:
            if change.made and change.landed_at is None and change.shows(teams):
                change.landed_at = now

    @property
    def landed(self) -> int:
        """Changes Teams showed so far."""
        return sum(change.landed_at is not None for change in self._changes)

    @property
    def all_landed(self) -> bool:
        """Every edit made and every change shown."""
        return not self._edits and self.landed == len(self._changes)


async def _note_looks(runtime: AppRuntime, late: dict[str, Change], figures: DayFigures,
                      start: datetime) -> None:
    """Keep how the app's status of each joined, still waiting late-licence user changed."""
    now = _minutes_since(start, runtime.clock())
    for user_id, change in late.items():
        if change.landed_at is not None or change.joined_at is None or change.joined_at > now:
            continue
        status = await runtime.statuses.get_status(user_id)
        if status is None:
            continue
        retry = None if status.retry_at is None else _minutes_since(start, status.retry_at)
        look = Look(now, status.reason.value, status.attempts, retry)
        trail = figures.looks.setdefault(user_id, [])
        if not trail or (trail[-1].reason, trail[-1].attempts) != (look.reason, look.attempts):
            trail.append(look)


# -- the report ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..100) of ``values``.

    Raises:
        ValueError: no values, or ``share`` out of range.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= share <= 100:
        raise ValueError(f"share: 0..100, got {share}")
    ordered = sorted(values)
    rank = max(1, math.ceil(share / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class KindFigures:
    """One kind of change: how many, their latencies' p50 / p95 / max, the target."""

    kind: str
    count: int
    landed: int
    p50: float | None
    p95: float | None
    max: float | None
    target: float

    @property
    def holds(self) -> bool:
        """Every change landed and the p95 is within the target."""
        return self.landed == self.count and self.p95 is not None and self.p95 <= self.target


def by_kind(changes: Sequence[Change]) -> list[KindFigures]:
    """The figures of every kind, in ``KINDS`` order."""
    rows = []
    for kind in KINDS:
        mine = [change for change in changes if change.kind == kind]
        minutes = [m for change in mine if (m := change.minutes) is not None]
        rows.append(KindFigures(
            kind=kind, count=len(mine), landed=len(minutes),
            p50=percentile(minutes, 50) if minutes else None,
            p95=percentile(minutes, 95) if minutes else None,
            max=max(minutes) if minutes else None,
            target=TARGET_MINUTES[kind],
        ))
    return rows


def machine() -> str:
    """The CPU and Python this ran on, for the figures' record."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        model = found.group(1).strip() if found else model
    return f"{model}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _clock_time(minutes: float) -> str:
    return f"{int(minutes // 60):02d}:{int(minutes % 60):02d}"


def print_day(figures: DayFigures) -> None:
    """The per-kind table, the run's totals, and the evidence behind a missed target."""
    print(f"latency: {figures.hours:g} simulated hours ({figures.simulated_minutes / 60:.1f} h "
          f"played), {figures.users:,} users, seed {figures.seed}; timer every "
          f"{figures.tick_minutes} min, full read every {figures.full_read_minutes} min, grace "
          f"{figures.grace_hours:g} h")
    print(f"  {figures.ticks} timer ticks, runs {dict(sorted(figures.reads.items()))}, "
          f"delayed messages let out by the clock {figures.releases}, message attempts "
          f"{figures.drained.invocations:,} (failed {figures.drained.failed_attempts}, poisoned "
          f"{figures.drained.poisoned}); wall {figures.wall_seconds:.0f} s")
    print(f"  outcomes at the end {dict(sorted(figures.outcomes.items()))}")
    print(f"  {'kind':<15} {'count':>5} {'p50 min':>8} {'p95 min':>8} {'max min':>8} "
          f"{'target p95':>11}  holds")
    for row in by_kind(figures.changes):
        verdict = "yes" if row.holds else (
            f"NO ({row.count - row.landed} never landed)" if row.landed < row.count else "NO")
        print(f"  {row.kind:<15} {row.count:>5} {_fmt(row.p50):>8} {_fmt(row.p95):>8} "
              f"{_fmt(row.max):>8} {'<= ' + format(row.target, 'g'):>11}  {verdict}")
    _print_full_reads(figures)
    _print_licence_waits(figures)
    for change in figures.never_landed():
        print(f"  never landed: {change.kind} {change.user_principal_name} "
              f"({change.number}) at {_clock_time(change.at)}")


def full_read_gaps(figures: DayFigures) -> Counter[int]:
    """Minutes between one full read's start and the next's (rounded), counted."""
    reads = sorted(figures.full_reads_at)
    return Counter(round(later - earlier) for earlier, later in itertools.pairwise(reads))


def look_slips(figures: DayFigures) -> Counter[int]:
    """For every look at a waiting user after the first: minutes from the retry time the
    previous look set to the look (rounded), counted."""
    slips: Counter[int] = Counter()
    for looks in figures.looks.values():
        for earlier, later in itertools.pairwise(looks):
            if earlier.retry_at is not None:
                slips[round(later.at - earlier.retry_at)] += 1
    return slips


def _print_full_reads(figures: DayFigures) -> None:
    nested = [c for c in figures.changes if c.kind == NESTED_JOINER and c.landed_at is not None]
    if not figures.full_reads_at:
        return
    gaps = dict(sorted(full_read_gaps(figures).items()))
    print(f"  full reads: {len(figures.full_reads_at)}, minutes from one to the next {gaps} "
          f"(FULL_READ_INTERVAL_MINUTES {figures.full_read_minutes})")
    if nested:
        at_full = sum(any(0 <= c.landed_at - read < figures.tick_minutes
                          for read in figures.full_reads_at)
                      for c in nested if c.landed_at is not None)
        print(f"  nested joiners landed in the tick of a full read: {at_full} of {len(nested)}")


def _print_licence_waits(figures: DayFigures) -> None:
    late = sorted((c for c in figures.changes if c.kind == LATE_LICENCE),
                  key=lambda c: -(c.minutes if c.minutes is not None else math.inf))
    if not late:
        return
    slips = dict(sorted(look_slips(figures).items()))
    print(f"  looks at waiting users, minutes after the retry time the previous look set: {slips}")
    print("  late licences, slowest first (joined → licence in Teams → number in Teams; the "
          "app's looks: reason, attempts, next look):")
    for change in late[:5]:
        looks = figures.looks.get(change.user_id, [])
        trail = "; ".join(
            f"{_clock_time(look.at)} {look.reason} #{look.attempts}"
            + (f" next {_clock_time(look.retry_at)}" if look.retry_at is not None else "")
            for look in looks)
        landed = "never" if change.landed_at is None else _clock_time(change.landed_at)
        print(f"    {change.user_principal_name}: {_clock_time(change.joined_at or 0)} → "
              f"{_clock_time(change.at)} → {landed} ({_fmt(change.minutes)} min) | {trail}")


def main(argv: Sequence[str] | None = None) -> int:
    """Play the day and print its figures; 1 when a change never landed."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=24.0, help="the simulated day's length")
    parser.add_argument("--users", type=int, default=500,
                        help="members at the start (a fifth through the nested group)")
    parser.add_argument("--per-kind", type=int, default=40, help="changes of each kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--grace-hours", type=float, default=0.0,
                        help="GRACE_PERIOD_HOURS: how long a leaver keeps the number")
    parser.add_argument("--settle-hours", type=float, default=8.0,
                        help="go on ticking after the day for at most this long")
    args = parser.parse_args(argv)
    # The figures are the output: no app log lines (the telemetry events log at INFO on a
    # logger of their own level, so the handler's level is what keeps them out).
    quiet = logging.StreamHandler()
    quiet.setLevel(logging.ERROR)
    logging.basicConfig(level=logging.ERROR, handlers=[quiet])
    tick_minutes(os.environ.get("SYNC_SCHEDULE", DEFAULT_SYNC_SCHEDULE))
    try:
        plan = plan_day(users=args.users, per_kind=args.per_kind, hours=args.hours,
                        seed=args.seed, grace_hours=args.grace_hours)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"machine: {machine()}", flush=True)
    figures = play_day(plan, hours=args.hours, seed=args.seed, settle_hours=args.settle_hours,
                       grace_hours=args.grace_hours)
    print_day(figures)
    return 1 if figures.never_landed() else 0


if __name__ == "__main__":
    sys.exit(main())
