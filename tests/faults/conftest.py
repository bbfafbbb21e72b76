"""Fault drills: the simulator behind the fault proxy, the app's settings pointing at the proxy,
Azurite (the session's, or a drill's own), and the invariants checked at the end.

Each drill has its own simulator, proxy and tenant id, and starts with empty queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue.aio import QueueClient

import function_app
from graph_simulator import SimulatorServer
from graph_simulator.fault_proxy import FaultPlan, FaultProxy
from local_runner.azurite import Azurite
from local_runner.fault_drill import DRILL_HOST, DrillLog, drill_app_settings
from local_runner.instances import InstanceSettings
from local_runner.invariants import (
    Violation,
    check_invariants,
    read_tenant_state,
    summarise,
)
from local_runner.onboarding_tenant import Expectations, onboarding_tenant, with_tenant_id
from local_runner.session import SIMULATOR_TOKEN, app_environment
from shared.adapters.storage.accounts import queue_client
from shared.adapters.storage.queue import ASSIGNMENT_QUEUE, POISON_QUEUE
from shared.config import AppSettings
from shared.runtime import AppRuntime

#: How long a fetched message stays hidden in a drill (renewed while it runs): a killed
#: instance's messages come back after this.
DRILL_LEASE = timedelta(seconds=4)


@dataclass
class Drill:
    """One tenant's fault drill: the stack it runs on and what it must end with."""

    expected: Expectations
    simulator: SimulatorServer
    proxy: FaultProxy
    azurite: Azurite
    settings: dict[str, str]
    log: DrillLog = field(default_factory=DrillLog)
    before_sync: list[Violation] | None = None
    """The invariants right after the drain, before the extra sync: evidence, not asserted."""

    def instance(
        self, *, timeout_seconds: float = 240.0, lease: timedelta = DRILL_LEASE
    ) -> InstanceSettings:
        """Settings for an instance process of this drill."""
        return InstanceSettings(self.settings, host=DRILL_HOST, processing_lease=lease,
                                timeout_seconds=timeout_seconds)

    async def runtime(self) -> AppRuntime:
        """The test process's own runtime (the app settings of this drill)."""
        return await function_app.runtime.get()

    async def violations(self) -> list[Violation]:
        """The invariants, checked on the tenant as it is now."""
        storage = AppSettings.from_environ(self.settings).storage
        async with queue_client(storage, POISON_QUEUE) as poison:
            state = await read_tenant_state(
                await self.runtime(), self.simulator.number_assignments(), poison
            )
        return check_invariants(self.expected, state)

    async def until_assignments(self, accepted: int, timeout_seconds: float = 60.0) -> None:
        """Poll until Teams has received ``accepted`` assignments: the drain is underway."""
        deadline = time.monotonic() + timeout_seconds
        while self.proxy.forwarded_counts().get("assignNumber", 0) < accepted:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {accepted} assignments within "
                                     f"{timeout_seconds:.0f}s: the drain did not get underway")
            await asyncio.sleep(0.05)

    async def note_before_sync(self) -> None:
        """Keep the invariants as they stand after the drain, for the report."""
        self.before_sync = await self.violations()

    def report(self, violations: list[Violation]) -> str:
        """The evidence, for the assertion message: faults injected, timer runs that raised,
        what failed message attempts raised, the invariants before the extra sync, and every
        violation after it."""
        errors = self.log.errors()
        phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.log.phases.items())
        lines = [
            f"phases: {phases}",
            f"faults injected: {dict(sorted(self.proxy.injected().items()))}",
            f"Graph requests through the proxy: {sum(self.proxy.request_counts().values())}",
            f"timer runs that raised: {len(self.log.timer_failures)} "
            f"{self.log.timer_failures[:5]}",
            f"failed message attempts: {self.log.failed_attempts} {dict(sorted(errors.items()))}",
            f"poisoned: {self.log.poisoned} {self.log.poisoned_errors()}",
        ]
        if self.before_sync is not None:
            lines.append(f"after the drain, before the extra sync: {summarise(self.before_sync)}")
            lines += _first_of_each(self.before_sync)
        lines.append(f"after the extra sync: {summarise(violations)}")
        lines += _first_of_each(violations)
        return "\n".join(lines)


def _first_of_each(violations: list[Violation], shown: int = 8) -> list[str]:
    seen: dict[str, int] = {}
    lines = []
    for violation in violations:
        seen[violation.invariant] = seen.get(violation.invariant, 0) + 1
        if seen[violation.invariant] <= shown:
            lines.append(f"  {violation}")
    return lines


async def _clear_queues(connection_string: str) -> None:
    for name in (ASSIGNMENT_QUEUE, POISON_QUEUE):
        async with QueueClient.from_connection_string(connection_string, name) as queue:
            # A queue that does not exist yet is created by the runtime on first use.
            with contextlib.suppress(ResourceNotFoundError):
                await queue.clear_messages()


#: Drill tenants' operation times: most done before the first look, some not (read, waited for).
DRILL_OPERATIONS = {"median": 0.5, "p95": 2}


@asynccontextmanager
async def open_drill(
    azurite: Azurite, users: int, plan: FaultPlan | None = None, *,
    behaviour: dict[str, Any] | None = None,
) -> AsyncIterator[Drill]:
    """A fresh tenant of ``users`` on a new simulator behind a new fault proxy; Teams takes
    its time over operations (``DRILL_OPERATIONS``) unless ``behaviour`` says otherwise."""
    behaviour = {"operationSeconds": DRILL_OPERATIONS, **(behaviour or {})}
    scenario, expected = with_tenant_id(*onboarding_tenant(users, behaviour=behaviour),
                                        str(uuid.uuid4()))
    with (SimulatorServer(scenario, token=SIMULATOR_TOKEN) as simulator,
          FaultProxy(simulator.url, plan) as proxy):
        settings = drill_app_settings(scenario, graph_base_url=proxy.base_url,
                                      storage_connection_string=azurite.connection_string)
        await _clear_queues(azurite.connection_string)
        async with app_environment(settings):
            yield Drill(expected, simulator, proxy, azurite, settings)


@pytest.fixture
def drill_factory(azurite: Azurite) -> Callable[..., Any]:
    """``open_drill`` on the session's Azurite."""
    def factory(users: int, plan: FaultPlan | None = None,
                **options: Any) -> Any:
        return open_drill(azurite, users, plan, **options)
    return factory
