"""The local host's processing lease, which the drills shorten: a message whose function runs
longer than the lease is renewed and never handed to a second host meanwhile."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import azure.functions as func
import pytest
from azure.storage.queue.aio import QueueClient

from local_runner.azurite import Azurite
from local_runner.fault_drill import DRILL_HOST
from local_runner.queue_host import QueueHost

pytestmark = [pytest.mark.integration, pytest.mark.faults]

#: Renewed at half the lease, so a renewal may come up to 2.5 s late (a loaded CI machine running
#: two test workers) before the message would show; 2 s once proved too tight.
LEASE = timedelta(seconds=5)


async def test_a_running_message_keeps_its_lease(azurite: Azurite) -> None:
    name = f"lease-{uuid.uuid4().hex[:12]}"
    started, finish = asyncio.Event(), asyncio.Event()
    calls: list[str] = []

    async def slow(message: func.QueueMessage) -> None:
        calls.append(message.get_body().decode())
        started.set()
        await finish.wait()

    async with (QueueClient.from_connection_string(azurite.connection_string, name) as queue,
                QueueClient.from_connection_string(azurite.connection_string,
                                                   f"{name}-poison") as poison):
        await queue.create_queue()
        await poison.create_queue()
        await queue.send_message("only one")
        host = QueueHost(queue, poison, slow, DRILL_HOST, processing_lease=LEASE)
        drain = asyncio.create_task(host.drain(timeout_seconds=60))
        await asyncio.wait_for(started.wait(), timeout=30)
        # Longer than the lease: without renewal the message would be visible to anyone by now.
        deadline = time.monotonic() + 1.5 * LEASE.total_seconds()
        while time.monotonic() < deadline:
            assert [m async for m in queue.receive_messages(visibility_timeout=1)] == []
            await asyncio.sleep(0.2)
        finish.set()
        stats = await asyncio.wait_for(drain, timeout=30)
        await queue.delete_queue()
        await poison.delete_queue()

    assert calls == ["only one"]
    assert (stats.invocations, stats.succeeded, stats.failed_attempts) == (1, 1, 0)
