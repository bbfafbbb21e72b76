"""The project's Azurite: the storage every local run, test and benchmark stands on.

Azurite's queue service pauses for seconds each minute under load (it sweeps deleted messages);
Azure Storage's tables do not pause with it. So the project runs each service in its own
process, and a queue service that stops answering leaves table calls (the pace reservations
every Teams request waits on) answering as before.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from local_runner.azurite import Azurite, AzuriteError


@pytest.fixture
def storage() -> Iterator[Azurite]:
    with Azurite() as running:
        yield running


async def test_tables_answer_while_the_queue_service_is_stalled(storage: Azurite) -> None:
    async with TableServiceClient.from_connection_string(
        storage.connection_string, retry_total=0, read_timeout=5, connection_timeout=5,
    ) as tables:
        table = await tables.create_table_if_not_exists("paceprobe")
        os.kill(storage.pids["queue"], signal.SIGSTOP)
        try:
            # The queue service answers nothing now (a client gives up on it)...
            async with QueueServiceClient.from_connection_string(
                storage.connection_string, retry_total=0, read_timeout=1, connection_timeout=1,
            ) as queues:
                with pytest.raises((ServiceRequestError, ServiceResponseError)):
                    await queues.create_queue("stalled")
            # ...and a table write and read go through as before.
            await table.upsert_entity({"PartitionKey": "tenant", "RowKey": "pace", "Slots": 3})
            row = await table.get_entity("tenant", "pace")
        finally:
            os.kill(storage.pids["queue"], signal.SIGCONT)
    assert row["Slots"] == 3


def test_every_service_stops_with_the_emulator() -> None:
    running = Azurite().start()
    pids = running.pids
    running.stop()
    assert set(pids) == {"blob", "queue", "table"}
    assert len(set(pids.values())) == 3
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # gone, and reaped


def test_the_queue_service_sweeps_as_often_as_it_is_told(tmp_path: Path) -> None:
    with Azurite(queue_sweep_every=timedelta(minutes=7), debug_log=tmp_path):
        log = tmp_path / "queue.log"
        deadline = time.monotonic() + 30
        # The service sweeps once as it starts, then sleeps the interval: it logs both.
        while "Sleep for" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the queue service never logged its sweep"
            time.sleep(0.05)  # polling a log file with a deadline; nothing to wait on instead
    assert "Sleep for 420000" in log.read_text()  # 7 minutes, not Azurite's one


def test_a_sweep_interval_under_a_second_is_refused() -> None:
    with pytest.raises(AzuriteError, match="queue_sweep_every must be at least 1 s"):
        Azurite(queue_sweep_every=timedelta(milliseconds=10))
