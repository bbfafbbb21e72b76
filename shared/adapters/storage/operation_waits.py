"""A tenant's learned Teams operation wait in Azure Table Storage, beside its pace.

``graphpace``: PartitionKey = tenant id, RowKey = ``operation-wait``; ``Seconds`` (the wait
before the first look at an accepted assignment), ``Looks`` (how many looks taught it),
``UpdatedAt``. Every instance keeps its own copy in memory and learns from its own looks (a
message's look is one in-memory update, no storage request); it writes its copy at most every
``SAVE_EVERY`` and, while it has learned nothing new, takes the stored one at most every
``READ_EVERY``, so a new instance starts from what the others learned. The row is an estimate,
not a record: the last instance to write wins, unconditionally, and a storage fault only leaves
the instance on its own copy (logged; the message it was learning from goes on).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from azure.core.exceptions import AzureError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.adapters.storage.pace import PACE_TABLE
from shared.core.operation_wait import MAX_WAIT_SECONDS, MIN_WAIT_SECONDS, OperationWait

log = logging.getLogger(__name__)

OPERATION_WAIT_ROW = "operation-wait"
#: How often an instance that learned something writes it.
SAVE_EVERY = timedelta(seconds=30)
#: How often an instance with nothing new reads what the others learned.
READ_EVERY = timedelta(seconds=60)


class TableOperationWaits:
    """Implements ``OperationWaits`` for one tenant on the ``graphpace`` table."""

    def __init__(
        self,
        service: TableServiceClient,
        partition: str,
        *,
        clock: Callable[[], datetime],
        start: OperationWait | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``start``: the wait before anything is stored or learned (the app's setting)."""
        self._partition = partition  # the tenant's id: the row sits beside its pace
        self._table: TableClient = service.get_table_client(PACE_TABLE)
        self._clock = clock
        self._monotonic = monotonic
        self._wait = start or OperationWait()
        self._read_at: float | None = None
        self._saved_at: float | None = None
        self._unsaved = 0

    async def current(self) -> OperationWait:
        """The instance's wait; the stored one when this instance has nothing unsaved and its
        copy is older than ``READ_EVERY``."""
        now = self._monotonic()
        if self._unsaved == 0 and (
            self._read_at is None or now - self._read_at >= READ_EVERY.total_seconds()
        ):
            self._read_at = now
            stored = await self._read()
            if stored is not None:
                self._wait = stored
        return self._wait

    async def observe(self, elapsed_seconds: float, done: bool) -> None:
        """Learn from one look; written when the last write is ``SAVE_EVERY`` old."""
        learned = self._wait.observe(elapsed_seconds, done, self._clock())
        if learned is self._wait:
            return
        self._wait = learned
        self._unsaved += 1
        now = self._monotonic()
        if self._saved_at is None or now - self._saved_at >= SAVE_EVERY.total_seconds():
            self._saved_at = now
            if await self._write(learned):
                self._unsaved = 0

    async def _read(self) -> OperationWait | None:
        try:
            entity = await self._table.get_entity(self._partition, OPERATION_WAIT_ROW)
        except ResourceNotFoundError:
            return None
        except AzureError as error:
            log.warning("could not read the operation wait of tenant %s (%s); using %.0f s",
                        self._partition, error, self._wait.seconds)
            return None
        return _wait_from(entity, self._partition)

    async def _write(self, wait: OperationWait) -> bool:
        try:
            entity: dict[str, object] = {
                "PartitionKey": self._partition, "RowKey": OPERATION_WAIT_ROW,
                "Seconds": float(wait.seconds), "Looks": int(wait.looks),
            }
            if wait.updated_at is not None:
                entity["UpdatedAt"] = wait.updated_at
            await self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except AzureError as error:
            log.warning("could not save the operation wait of tenant %s (%s); kept in memory",
                        self._partition, error)
            return False
        return True


def _wait_from(entity: dict[str, object], partition: str) -> OperationWait | None:
    """The stored wait; None (and a warning) for a row that does not read as one."""
    seconds, looks, updated = entity.get("Seconds"), entity.get("Looks"), entity.get("UpdatedAt")
    if (not isinstance(seconds, int | float) or isinstance(seconds, bool)
            or not MIN_WAIT_SECONDS <= float(seconds) <= MAX_WAIT_SECONDS
            or not isinstance(looks, int) or isinstance(looks, bool) or looks < 0):
        log.warning("the operation wait of tenant %s does not read (Seconds=%r, Looks=%r); "
                    "learning it again", partition, seconds, looks)
        return None
    return OperationWait(float(seconds), looks,
                         updated if isinstance(updated, datetime) else None)
