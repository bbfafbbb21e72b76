"""What Graph faults cost an onboarding: ``python -m benchmarks.faults [--users 300]
[--fault-rate 0.2] [--instances 2] [--seed 9] [--storage-outage 0]``.

The same tenant (``local_runner.onboarding_tenant``: new users with valid numbers free in the
Teams inventory, and a few who must not get one) is onboarded twice, each time on a fresh
Azurite and simulator behind the fault proxy: once fault-free, once with ``--fault-rate`` of
the Graph requests failing (429 short and long, 503, 504, connections dropped before and after
Graph carried them out, Teams operations that fail, equally mixed). Each time the real timer
function plans (a run that raises is followed by the next one, as the schedule would), then
``--instances`` processes drain the queue together, then one more sync runs with the faults
paused, and the issue 9 invariants are checked. With ``--storage-outage S``, Azurite (on disk)
is also stopped for S seconds once a third of the users are under way in the faulted run.

It prints, for each run: users and outcomes, the Graph requests the app sent (faulted ones
included) and those that reached the simulator, then the extra requests the faults cost, the
faults injected by kind, failed message attempts by what they raised, poisoned messages, and
every invariant's violations.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import function_app
from graph_simulator import SimulatorServer
from graph_simulator.fault_proxy import FaultKind, FaultPlan, FaultProxy
from local_runner.azurite import Azurite
from local_runner.fault_drill import (
    DRILL_HOST,
    DrillLog,
    drill_app_settings,
    one_more_sync,
    run_timer_until_it_completes,
)
from local_runner.instances import InstanceProcess, InstanceSettings
from local_runner.invariants import Violation, check_invariants, read_tenant_state, summarise
from local_runner.onboarding_tenant import onboarding_tenant
from local_runner.session import SIMULATOR_TOKEN, app_environment
from shared.adapters.storage.accounts import queue_client
from shared.adapters.storage.queue import POISON_QUEUE
from shared.config import AppSettings

LEASE = timedelta(seconds=60)
POLL_SECONDS = 0.2


@dataclass
class RunFigures:
    """One onboarding's figures."""

    name: str
    users: int
    outcomes: Counter[str]
    sent: int
    """Graph requests the app sent while planning and draining (faulted ones included)."""
    reached: int
    """Of those, the requests that reached the simulator."""
    extra_sync_sent: int
    seconds: float
    injected: dict[FaultKind, int]
    log: DrillLog
    violations: list[Violation] = field(default_factory=list)


async def _storage_outage(storage: Azurite, proxy: FaultProxy, users: int,
                          seconds: float) -> None:
    """Once a third of the users are under way, stop Azurite for ``seconds``, then start it
    again on the same ports."""
    while True:
        if proxy.forwarded_counts().get("assignNumber", 0) >= users // 3:
            break
        await asyncio.sleep(POLL_SECONDS)
    await asyncio.to_thread(storage.stop)
    print(f"  … storage down for {seconds:g} s", flush=True)
    await asyncio.sleep(seconds)
    await asyncio.to_thread(storage.start)


async def _drain(settings: InstanceSettings, instances: int, log: DrillLog,
                 outage: asyncio.Task[None] | None) -> None:
    processes = [InstanceProcess(settings).start() for _ in range(instances)]
    try:
        log.drains.extend(await asyncio.gather(*(
            asyncio.to_thread(process.wait, settings.timeout_seconds + 60)
            for process in processes)))
    finally:
        for process in processes:
            process.kill()
        if outage is not None:
            outage.cancel()


def onboard(name: str, args: argparse.Namespace, plan: FaultPlan, *,
            storage_outage: float) -> RunFigures:
    """One onboarding of the tenant on a fresh stack, with ``plan``'s faults."""
    scenario, expected = onboarding_tenant(args.users)
    with tempfile.TemporaryDirectory(prefix="faults-azurite-") as data:
        storage = Azurite(location=Path(data) if storage_outage else None)
        with (storage, SimulatorServer(scenario, token=SIMULATOR_TOKEN) as simulator,
              FaultProxy(simulator.url, plan) as proxy):
            settings = drill_app_settings(scenario, graph_base_url=proxy.base_url,
                                          storage_connection_string=storage.connection_string)
            instance = InstanceSettings(settings, host=DRILL_HOST, processing_lease=LEASE,
                                        timeout_seconds=args.timeout)
            log = DrillLog()

            async def run() -> RunFigures:
                async with app_environment(settings):
                    started = time.monotonic()
                    await run_timer_until_it_completes(log)
                    outage = asyncio.create_task(_storage_outage(
                        storage, proxy, args.users, storage_outage)) if storage_outage else None
                    await _drain(instance, args.instances, log, outage)
                    seconds = time.monotonic() - started
                    sent = sum(proxy.request_counts().values())
                    reached = sum(proxy.forwarded_counts().values())
                    injected = proxy.injected()
                    await one_more_sync(settings, proxy, log)
                    runtime = await function_app.runtime.get()
                    async with queue_client(AppSettings.from_environ(settings).storage,
                                            POISON_QUEUE) as poison:
                        state = await read_tenant_state(
                            runtime, simulator.number_assignments(), poison)
                return RunFigures(
                    name=name, users=args.users,
                    outcomes=Counter(status.outcome.value for status in state.statuses),
                    sent=sent, reached=reached,
                    extra_sync_sent=sum(proxy.request_counts().values()) - sent,
                    seconds=seconds, injected=injected, log=log,
                    violations=check_invariants(expected, state),
                )

            return asyncio.run(run())


def _print_run(figures: RunFigures) -> None:
    log = figures.log
    print(f"{figures.name}: {figures.users:,} users, onboarded in {figures.seconds:.1f} s")
    print(f"  outcomes {dict(sorted(figures.outcomes.items()))}")
    print(f"  Graph requests sent {figures.sent:,} (reached the simulator {figures.reached:,}), "
          f"{figures.sent / figures.users:.2f} per user; the extra sync sent "
          f"{figures.extra_sync_sent:,}")
    print(f"  faults injected {sum(figures.injected.values()):,} "
          f"{ {kind.value: n for kind, n in sorted(figures.injected.items())} }")
    print(f"  timer runs that raised {len(log.timer_failures)} "
          f"{dict(Counter(failure.split(':')[0] for failure in log.timer_failures))}")
    print(f"  message attempts {sum(s.invocations for s in log.drains):,}, failed "
          f"{log.failed_attempts:,} {dict(sorted(log.errors().items()))}, poisoned "
          f"{log.poisoned} {log.poisoned_errors()}")
    print(f"  invariant violations {len(figures.violations)}")
    for invariant, count in summarise(figures.violations).items():
        print(f"    {count:4d}  {invariant}")
    for violation in figures.violations[:10]:
        print(f"          {violation}")


def main() -> None:
    """Run both onboardings and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--fault-rate", type=float, default=0.2,
                        help="the share of Graph requests that meet a fault (0 … 1)")
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--seed", type=int, default=9, help="the fault sequence's seed")
    parser.add_argument("--storage-outage", type=float, default=0.0, metavar="SECONDS",
                        help="also stop Azurite this long mid-drain in the faulted run")
    parser.add_argument("--timeout", type=float, default=3600.0,
                        help="give up draining after this many seconds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    # The app's telemetry events log at INFO on their own logger (for the Functions worker);
    # the figures are what this prints, so the events stay out of its output.
    logging.getLogger("shared.events").propagate = False
    clean = onboard("fault-free", args, FaultPlan(), storage_outage=0.0)
    _print_run(clean)
    faulted = onboard(f"{args.fault_rate:.0%} faults", args,
                      FaultPlan(rate=args.fault_rate, seed=args.seed),
                      storage_outage=args.storage_outage)
    _print_run(faulted)
    extra = faulted.sent - clean.sent
    print(f"the faults cost {extra:+,} Graph requests = {extra / clean.sent:+.0%} of the "
          f"fault-free onboarding's {clean.sent:,} ({args.fault_rate:.0%} faults, "
          f"{args.instances} instances, seed {args.seed})")


if __name__ == "__main__":
    main()
