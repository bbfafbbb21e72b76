"""One local sync: Azurite + the Graph simulator + the app's real entry points, as in Azure.

``LocalStack`` starts what is missing and stops what it started. ``sync_and_drain`` runs the timer
function, then drains ``number-assignments`` into the queue function with the host's semantics.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from azure.functions.timer import TimerRequest

import function_app
from graph_simulator import Scenario, SimulatorServer
from local_runner.azurite import Azurite
from local_runner.functions import user_functions
from local_runner.queue_host import PROCESSING_LEASE, DrainStats, QueueHost
from shared.adapters.storage.accounts import queue_client
from shared.adapters.storage.queue import (
    ASSIGNMENT_QUEUE,
    POISON_QUEUE,
    TENANT_SYNC_POISON_QUEUE,
    TENANT_SYNC_QUEUE,
)
from shared.config import AppSettings
from shared.core.snapshot_file import read_snapshot
from shared.core.tenant_rules import TenantRules, format_main_number_policies
from shared.host_settings import QueueHostSettings, read_queue_settings

SIMULATOR_TOKEN = "simulator-token"  # noqa: S105 - the local simulator's fixed test token


def app_settings_for(
    scenario: Scenario, *, graph_base_url: str, storage_connection_string: str
) -> dict[str, str]:
    """The app settings that point the app at a local simulator and Azurite."""
    return {
        **rules_as_app_settings(TenantRules.model_validate(scenario.tenant.rules)),
        "TENANT_ID": scenario.tenant.id,
        "VOICE_GROUP_ID": scenario.tenant.voice_group_id,
        "NUMBER_TYPE": "directRouting",
        "GRAPH_BASE_URL": graph_base_url,
        "GRAPH_AUTH": "staticToken",
        "GRAPH_STATIC_TOKEN": SIMULATOR_TOKEN,
        "GRAPH_OPERATION_POLL_INTERVAL_SECONDS": "0.05",
        "GRAPH_OPERATION_WAIT_SECONDS": str(operation_wait_for(scenario)),
        "TEAMS_REQUESTS_PER_SECOND": str(teams_pace_for(scenario)),
        "AzureWebJobsStorage": storage_connection_string,
    }


#: The pace when the simulator has no Teams rate limit: as fast as the setting allows.
UNTHROTTLED_TEAMS_PACE = 1000.0


def operation_wait_for(scenario: Scenario) -> float:
    """The first wait after an accepted assignment against this scenario's operations: their
    fixed duration, or their median (the app learns the rest), and never under a second."""
    spec = scenario.behaviour.operation_seconds
    seconds = float(spec) if isinstance(spec, int | float) else spec.median
    return max(1.0, seconds)


def teams_pace_for(scenario: Scenario) -> float:
    """The app's Teams pace against this scenario: just under its rate limit, as the default
    (29) is just under Teams' 30; without a limit, as fast as allowed, so local runs and tests
    against an unthrottled simulator do not wait for slots."""
    limit = scenario.behaviour.rate_limit
    if limit is None or limit.requests_per_second is None:  # none, or on the directory only
        return UNTHROTTLED_TEAMS_PACE
    return max(limit.requests_per_second - 1, limit.requests_per_second * 0.9)


def rules_as_app_settings(rules: TenantRules) -> dict[str, str]:
    """A scenario's ``tenant.rules`` written the way an operator sets them as app settings."""
    settings = {
        "ACCEPT_FORMATTED": str(rules.accept_formatted).lower(),
        "ALLOW_EXTENSIONS": str(rules.allow_extensions).lower(),
        "GRACE_PERIOD_HOURS": str(rules.grace_period_hours),
        "COOLING_DAYS": str(rules.cooling_days),
        "MASS_UNASSIGN_MINIMUM": str(rules.mass_unassign_minimum),
        "MASS_UNASSIGN_PERCENT": str(rules.mass_unassign_percent),
        "NUMBER_DEFAULT_REGION": rules.default_region or "",
        "MAIN_NUMBERS": ";".join(f"{d}={n}" for d, n in sorted(rules.main_numbers.items())),
        "NUMBER_RANGES": ",".join(f"{r.first}-{r.last}" for r in rules.number_ranges),
        "MAIN_NUMBER_POLICIES": format_main_number_policies(rules.main_number_policies),
    }
    return settings


@dataclass
class LocalStack:
    """A running Azurite and Graph simulator, and the app settings that reach them."""

    azurite: Azurite
    simulator: SimulatorServer
    settings: dict[str, str]


@contextmanager
def local_stack(scenario: Scenario, *, state_dir: Path | None = None) -> Iterator[LocalStack]:
    """Start Azurite and the simulator; with ``state_dir`` both keep their state between runs."""
    azurite = Azurite(location=state_dir / "azurite" if state_dir else None)
    state_file = state_dir / "teams-state.json" if state_dir else None
    with azurite, SimulatorServer(scenario, token=SIMULATOR_TOKEN, state_file=state_file) as sim:
        yield LocalStack(
            azurite=azurite,
            simulator=sim,
            settings=app_settings_for(
                scenario,
                graph_base_url=sim.base_url,
                storage_connection_string=azurite.connection_string,
            ),
        )


@asynccontextmanager
async def app_environment(
    settings: dict[str, str], environ: MutableMapping[str, str] | None = None
) -> AsyncIterator[None]:
    """Set the app settings in the environment for the app's runtime, and restore it afterwards."""
    target = os.environ if environ is None else environ
    saved = {key: target.get(key) for key in settings}
    target.update(settings)
    await function_app.runtime.close()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value
        await function_app.runtime.close()


async def seed_app_state(scenario: Scenario) -> int:
    """Store the scenario's ``appState`` claims (numbers the app assigned in earlier runs) when
    the tenant has no claims yet, so a demo that keeps its state is seeded once only."""
    runtime = await function_app.runtime.get()
    if await runtime.claims.list_claims():
        return 0
    seeded = read_snapshot(scenario.model_dump_json(by_alias=True)).state.claims
    for claim in seeded.values():
        await runtime.claims.claim(claim)
    return len(seeded)


async def run_timer(
    *, past_due: bool = False, settings: dict[str, str] | None = None,
    timeout_seconds: float = 600.0,
) -> DrainStats:
    """Invoke ``sync_scheduled`` as the host does when the schedule fires, then feed the
    ``tenant-syncs`` it enqueued into ``sync_tenant`` (the host runs that queue function at
    once): when this returns, every due tenant's run has planned and enqueued its changes."""
    await user_functions()["sync_scheduled"](TimerRequest(past_due=past_due))
    storage = AppSettings.from_environ(os.environ if settings is None else settings).storage
    async with (
        queue_client(storage, TENANT_SYNC_QUEUE) as queue,
        queue_client(storage, TENANT_SYNC_POISON_QUEUE) as poison,
    ):
        queue_host = QueueHost(queue, poison, user_functions()["sync_tenant"],
                               read_queue_settings())
        return await queue_host.drain(timeout_seconds=timeout_seconds)


async def drain_queue(
    settings: dict[str, str],
    *,
    host: QueueHostSettings | None = None,
    timeout_seconds: float = 600.0,
    processing_lease: timedelta = PROCESSING_LEASE,
) -> DrainStats:
    """Feed ``number-assignments`` into ``assign_user`` until the queue is empty."""
    storage = AppSettings.from_environ(settings).storage
    async with (
        queue_client(storage, ASSIGNMENT_QUEUE) as queue,
        queue_client(storage, POISON_QUEUE) as poison,
    ):
        queue_host = QueueHost(
            queue, poison, user_functions()["assign_user"], host or read_queue_settings(),
            processing_lease=processing_lease,
        )
        return await queue_host.drain(timeout_seconds=timeout_seconds)


async def sync_and_drain(
    settings: dict[str, str], *, host: QueueHostSettings | None = None
) -> DrainStats:
    """One full sync: the timer function, then the queue drained into the queue function."""
    await run_timer(settings=settings)
    return await drain_queue(settings, host=host)

