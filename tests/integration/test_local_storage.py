"""The project's Azurite: the storage every local run, test and benchmark stands on.

Azurite's queue service pauses for seconds each minute under load (it sweeps deleted messages);
Azure Storage's tables do not pause with it. So the project runs each service in its own
process, and a queue service that stops answering leaves table calls (the pace reservations
every Teams request waits on) answering as before.

Azurite also finds a table row by walking its whole partition (a tenant's rows), and re-sorts a
collection's indices whenever it removes a list, even an empty one or one of a single document
(every queue call; each extent its sweep deletes); ``local_runner/azurite_lookups.cjs``, preloaded
into each service, uses the most selective key's index and removes one document in place, with
the same answers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import ServiceRequestError, ServiceResponseError
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueServiceClient

from local_runner.azurite import LOOKUPS_PRELOAD, REPO, Azurite, AzuriteError

PROBE = Path(__file__).with_name("azurite_lookups_probe.cjs")


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


def _probe(*preload: str) -> dict[str, object]:
    """What LokiJS lookups built as Azurite builds them answer, and the work they did."""
    node = shutil.which("node")
    assert node is not None, "Azurite runs on Node.js: node must be on PATH"
    done = subprocess.run([node, *preload, str(PROBE)], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=True)
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


@pytest.fixture(scope="module")
def probes() -> tuple[dict[str, object], dict[str, object]]:
    """The probe's answers as Azurite ships, then with the preload: run once for the module."""
    return _probe(), _probe("--require", str(LOOKUPS_PRELOAD))


def test_a_point_read_in_a_large_partition_compares_one_row_not_all(
    probes: tuple[dict[str, object], dict[str, object]],
) -> None:
    as_azurite_ships, preloaded = probes
    assert as_azurite_ships["comparisons"] == 2003  # every row of the tenant's partition
    assert preloaded["comparisons"] == 1
    assert preloaded["found"] == ["tenant-a", "+31855001500"]


def test_the_preloaded_lookups_answer_as_azurite_does(
    probes: tuple[dict[str, object], dict[str, object]],
) -> None:
    as_azurite_ships, preloaded = probes
    # Keys the index compares as numbers ("+31855000001", "31855000001"; "1", "1.0"), one RowKey
    # in two partitions, a row that is not there: the same document, or none, either way.
    assert preloaded["lookups"] == as_azurite_ships["lookups"] == {
        "plus": ["tenant-a", "+31855000001", None],
        "noPlus": ["tenant-a", "31855000001", "no plus"],
        "one": ["tenant-a", "1", "one"],
        "onePointZero": ["tenant-a", "1.0", "one point zero"],
        "otherTenant": ["tenant-b", "+31855000001", "other tenant"],
        "missing": None,
        "otherPartitionOnly": None,
    }
    for answers in (as_azurite_ships, preloaded):
        # One message removed as the sweep removes an extent, two as a list: gone, the rest
        # found through the indices as before.
        assert answers["messagesLeft"] == 1997
        assert answers["removedGone"] is True
        assert answers["pairGone"] is True
        assert answers["message"] == "m8"
        assert answers["byIndex"] == [0, 6, 8, 11, 1999]


def test_removing_nothing_or_one_document_rebuilds_no_index(
    probes: tuple[dict[str, object], dict[str, object]],
) -> None:
    as_azurite_ships, preloaded = probes
    # Each queue call clears the expired messages it finds (none): a rebuild each, before.
    assert as_azurite_ships["rebuildsForNothing"] == 1
    assert preloaded["rebuildsForNothing"] == 0
    # The queue's sweep deletes each unreferenced extent as a list of one: a rebuild each, before.
    assert as_azurite_ships["rebuildsForOne"] == 1
    assert preloaded["rebuildsForOne"] == 0


async def test_rows_whose_keys_read_as_the_same_number_stay_apart(storage: Azurite) -> None:
    async with TableServiceClient.from_connection_string(storage.connection_string) as tables:
        table = await tables.create_table_if_not_exists("keyprobe")
        for partition, row in (("tenant-a", "+31855000001"), ("tenant-a", "31855000001"),
                               ("tenant-a", "1"), ("tenant-a", "1.0"),
                               ("tenant-b", "+31855000001")):
            await table.create_entity({"PartitionKey": partition, "RowKey": row,
                                       "Seen": f"{partition}/{row}"})
        for partition, row in (("tenant-a", "31855000001"), ("tenant-a", "1.0"),
                               ("tenant-b", "+31855000001"), ("tenant-a", "+31855000001")):
            assert (await table.get_entity(partition, row))["Seen"] == f"{partition}/{row}"
            await table.update_entity({"PartitionKey": partition, "RowKey": row,
                                       "Seen": f"changed {partition}/{row}"})
        assert sorted([entity["Seen"] async for entity in table.list_entities()]) == [
            "changed tenant-a/+31855000001", "changed tenant-a/1.0", "changed tenant-a/31855000001",
            "changed tenant-b/+31855000001", "tenant-a/1",
        ]
