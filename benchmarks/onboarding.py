"""Onboard a large tenant against Teams' rate limit: ``python -m benchmarks.onboarding
[--users 10000] [--instances 3] [--rate-limit 30]``.

Target (issue 5): a 10,000-user onboarding flows at >= 0.9 of Teams' limit of 30 requests per
second per tenant, with 0 failures. Azurite and the Graph simulator (``rateLimit`` on every
``/admin/teams/`` route, answering 429 with ``Retry-After`` beyond it) are started here; every
user of the voice group has a valid personal number waiting in the Teams inventory. The real
timer function plans and enqueues, then ``--instances`` worker processes, each a Functions host
running the real queue function (``local_runner``'s ``QueueHost``), drain the queue together,
sharing the pace table in Azurite as instances in Azure share the storage account.

The onboarding window runs from the first to the last Teams request the simulator answered while
the queue was drained (worker start-up is not in it).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import time
from collections import Counter
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from typing import Any

import function_app
from graph_simulator import TEAMS_ADMIN_ROUTES, Scenario, SimulatorServer, parse_scenario
from local_runner.queue_host import DrainStats
from local_runner.session import app_environment, drain_queue, local_stack, run_timer
from shared.core.outcomes import Outcome

BASE = 31_855_000_000  # +31 85 5xx xxxx: valid Dutch numbers
DOMAIN = "contoso.example"
SAMPLE_SECONDS = 0.1
PROGRESS_SECONDS = 60.0


def build_tenant(users: int, rate_limit: float) -> Scenario:
    """A voice group of ``users`` new users, each with a valid number free in Teams."""
    group = "0f5e2c1a-0000-4000-8000-000000000001"
    people = [
        {"id": f"00000000-0000-4000-8000-{index:012d}",
         "userPrincipalName": f"user-{index:05d}@{DOMAIN}",
         "businessPhones": [f"+{BASE + 1 + index}"], "accountEnabled": True}
        for index in range(users)
    ]
    return parse_scenario({
        "version": 1,
        "tenant": {"id": "0f5e2c1a-0000-4000-8000-000000000000", "voiceGroupId": group,
                   "defaultDomain": DOMAIN},
        "users": people,
        "groups": [{"id": group, "displayName": "EnterpriseVoiceEnabled",
                    "members": [person["id"] for person in people]}],
        "numberAssignments": [
            {"telephoneNumber": f"+{BASE + 1 + index}", "numberType": "directRouting",
             "assignmentTargetId": None}
            for index in range(users)
        ],
        "behaviour": {"rateLimit": {"requestsPerSecond": rate_limit}},
    })


def drain_as_instance(settings: dict[str, str], timeout_seconds: float) -> DrainStats:
    """One function instance (its own process): drain the queue into the real queue function."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    os.environ.update(settings)

    async def drain() -> DrainStats:
        async with app_environment(settings):
            return await drain_queue(settings, timeout_seconds=timeout_seconds)

    return asyncio.run(drain())


def _teams_requests(simulator: SimulatorServer) -> int:
    return sum(n for route, n in simulator.request_counts().items() if route in TEAMS_ADMIN_ROUTES)


def _watch(simulator: SimulatorServer, futures: list[Future[DrainStats]]) -> tuple[float, float]:
    """Wait for the workers, sampling the simulator: (first, last) time Teams requests grew."""
    first = last = None
    seen = _teams_requests(simulator)
    shown = time.monotonic()
    while True:
        done, pending = wait(futures, timeout=SAMPLE_SECONDS, return_when=FIRST_EXCEPTION)
        now, count = time.monotonic(), _teams_requests(simulator)
        if count != seen:
            first = first if first is not None else now - SAMPLE_SECONDS
            last, seen = now, count
        if first is not None and now - shown >= PROGRESS_SECONDS:
            # A long run says where it is, so a stall shows before the end.
            print(f"  … {now - first:.0f} s: {count:,} Teams requests, "
                  f"{count / max(now - first, 1e-9):.1f}/s", flush=True)
            shown = now
        if not pending or any(future.exception() for future in done):
            break
    if first is None or last is None:
        raise RuntimeError("the workers sent no Teams request")
    return first, last


async def _outcomes() -> Counter[str]:
    runtime = await function_app.runtime.get()
    return Counter(status.outcome.value for status in await runtime.report())


def main() -> None:
    """Run the onboarding and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--instances", type=int, default=3)
    parser.add_argument("--rate-limit", type=float, default=30.0,
                        help="the simulator's Teams requests per second per tenant")
    parser.add_argument("--timeout", type=float, default=4 * 3600.0,
                        help="give up draining after this many seconds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    scenario = build_tenant(args.users, args.rate_limit)
    with local_stack(scenario) as stack:
        settings, simulator = stack.settings, stack.simulator

        async def plan() -> None:
            async with app_environment(settings):
                await run_timer()

        started = time.monotonic()
        asyncio.run(plan())
        planned = time.monotonic() - started
        simulator.clear_requests()
        spawn = multiprocessing.get_context("spawn")  # a fresh interpreter, as each host has
        with ProcessPoolExecutor(max_workers=args.instances, mp_context=spawn) as pool:
            futures = [pool.submit(drain_as_instance, settings, args.timeout)
                       for _ in range(args.instances)]
            first, last = _watch(simulator, futures)
            drained = [future.result() for future in futures]

        async def report() -> Counter[str]:
            async with app_environment(settings):
                return await _outcomes()

        outcomes = asyncio.run(report())
        _print(args, settings=settings, simulator=simulator, drained=drained,
               outcomes=outcomes, planned=planned, window=last - first)


def _print(args: Any, *, settings: dict[str, str], simulator: SimulatorServer,
           drained: list[DrainStats], outcomes: Counter[str], planned: float,
           window: float) -> None:
    log = simulator.request_log()
    teams = [entry for entry in log if entry["route"] in TEAMS_ADMIN_ROUTES]
    throttled = sum(1 for entry in teams if entry["status"] == 429)
    teams_total = _teams_requests(simulator)
    rate = teams_total / window
    failures = outcomes.get(Outcome.FAILED.value, 0)
    print(f"onboarding: {args.users:,} users, {args.instances} instances, Teams limit "
          f"{args.rate_limit:g} requests/s, app pace {settings['TEAMS_REQUESTS_PER_SECOND']}/s")
    print(f"  plan and enqueue (timer function): {planned:.1f} s")
    print(f"  users {sum(outcomes.values()):,}, assigned {outcomes.get('assigned', 0):,}, "
          f"outcomes {dict(sorted(outcomes.items()))}")
    print(f"  Teams requests {teams_total:,}, answered 429 {throttled:,}"
          + (" (request log full: at least)" if len(log) < sum(
              simulator.request_counts().values()) else ""))
    print(f"  message attempts {sum(s.invocations for s in drained):,}, failed attempts "
          f"{sum(s.failed_attempts for s in drained):,}, poisoned "
          f"{sum(s.poisoned for s in drained):,}")
    print(f"  onboarding window {window:.1f} s, {teams_total / max(args.users, 1):.1f} Teams "
          "requests per user")
    print(f"  achieved {rate:.2f} Teams requests/s = {rate / args.rate_limit:.3f} of the limit "
          "(target >= 0.9)")
    print(f"  failures {failures} (target 0)")


if __name__ == "__main__":
    main()
