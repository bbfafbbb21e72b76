"""Integration fixtures: Azurite and the Graph simulator, both started here and stopped after.

Every test gets a fresh tenant id (so its table rows are its own), empty queues, and the app's
runtime built from app settings that point at the two local services.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

import function_app
from graph_simulator import Scenario, SimulatorServer, load_scenario, parse_scenario
from local_runner.azurite import Azurite
from local_runner.queue_host import DrainStats
from local_runner.session import (
    SIMULATOR_TOKEN,
    app_environment,
    app_settings_for,
    drain_queue,
    seed_app_state,
)
from local_runner.session import run_timer as invoke_timer
from shared.adapters.storage.queue import ASSIGNMENT_QUEUE, POISON_QUEUE
from shared.adapters.storage.tenants import TENANT_HEALTH_TABLE, TENANTS_TABLE
from shared.core.records import UserStatus
from shared.host_settings import QueueHostSettings
from shared.runtime import AppRuntime, utc_now

REPO = Path(__file__).resolve().parents[2]
DEMO_SCENARIO = REPO / "scenarios" / "demo.json"

@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorServer]:
    with SimulatorServer(load_scenario(DEMO_SCENARIO), token=SIMULATOR_TOKEN) as running:
        yield running


@dataclass
class LocalApp:
    """The app wired to Azurite and the simulator for one test."""

    scenario: Scenario
    simulator: SimulatorServer
    settings: dict[str, str]
    offset: timedelta = timedelta(0)

    async def runtime(self) -> AppRuntime:
        return await function_app.runtime.get()

    async def run_timer(self) -> None:
        await invoke_timer()

    async def drain(self, host: QueueHostSettings | None = None) -> DrainStats:
        return await drain_queue(self.settings, host=host, timeout_seconds=120)

    async def sync(self, host: QueueHostSettings | None = None) -> DrainStats:
        """One full sync, as the runner does it (the scenario's appState is stored first)."""
        await seed_app_state(self.scenario)
        await self.run_timer()
        return await self.drain(host)

    async def advance(self, hours: float) -> None:
        """Move the app's clock forward (grace periods, cooling)."""
        self.offset += timedelta(hours=hours)
        offset = self.offset
        (await self.runtime()).clock = lambda: utc_now() + offset

    async def step(self, index: int, host: QueueHostSettings | None = None) -> DrainStats:
        """Play one step of the scenario's timeline, then sync."""
        step = self.scenario.timeline[index]
        await self.advance(step.advance_hours)
        if step.directory is not None:
            self.simulator.replace_directory(step.directory)
            self.scenario = self.scenario.model_copy(update={"users": step.directory.users})
        return await self.sync(host)

    async def statuses(self) -> dict[str, UserStatus]:
        report = await (await self.runtime()).report()
        return {status.user_principal_name: status for status in report}

    def teams_by_upn(self) -> dict[str, str]:
        """number → UPN of the Teams target, for numbers that are assigned."""
        upns = {user.id: user.user_principal_name for user in self.scenario.users}
        return {
            number: upns.get(target, target)
            for number, target in self.simulator.number_assignments().items()
            if target
        }

    def queue(self, name: str = ASSIGNMENT_QUEUE) -> QueueClient:
        """A client for one of the app's queues, Base64 as the Functions host encodes them."""
        return QueueClient.from_connection_string(
            self.settings["AzureWebJobsStorage"], name,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )


def with_fresh_tenant(scenario: Scenario) -> Scenario:
    """The same scenario under a new tenant id, so table rows never collide between tests."""
    data = scenario.model_dump(by_alias=True)
    data["tenant"]["id"] = str(uuid.uuid4())
    return parse_scenario(data)


@pytest.fixture
def scenario() -> Scenario:
    """The scenario a test runs on; override in a test module to use another."""
    return load_scenario(DEMO_SCENARIO)


@pytest.fixture
async def local_app(
    azurite: Azurite, simulator: SimulatorServer, scenario: Scenario
) -> AsyncIterator[LocalApp]:
    fresh = with_fresh_tenant(scenario)
    simulator.load_scenario(fresh)
    simulator.clear_requests()
    settings = app_settings_for(
        fresh, graph_base_url=simulator.base_url,
        storage_connection_string=azurite.connection_string,
    )
    for name in (ASSIGNMENT_QUEUE, POISON_QUEUE):
        async with QueueClient.from_connection_string(azurite.connection_string, name) as queue:
            if await _exists(queue):
                await queue.clear_messages()
    async with app_environment(settings):
        yield LocalApp(fresh, simulator, settings)
    await empty_registry(azurite.connection_string)


async def empty_registry(connection_string: str) -> None:
    """Delete every row of the tenant registry and its health: the registry is app-wide, and a
    test that changed its tenant (which writes the record) must not leave the next test's app a
    second tenant to serve. Each test's own tables are its fresh tenant's partitions."""
    async with TableServiceClient.from_connection_string(connection_string) as tables:
        for name in (TENANTS_TABLE, TENANT_HEALTH_TABLE):
            table = tables.get_table_client(name)
            try:
                async for entity in table.list_entities():
                    await table.delete_entity(entity["PartitionKey"], entity["RowKey"])
            except ResourceNotFoundError:
                continue


async def _exists(queue: QueueClient) -> bool:
    try:
        await queue.get_queue_properties()
    except ResourceNotFoundError:
        return False
    return True
