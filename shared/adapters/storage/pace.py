"""The shared Teams paces in Azure Table Storage: each tenant's, and the app's across tenants.

``graphpace``: PartitionKey = tenant id, or ``app`` for the app-wide pace (``APP_PACE_PARTITION``:
tenant ids are GUIDs, so it names no tenant); RowKey = ``teams`` (the throttling scope paced:
every request under ``/admin/teams/``), ``NextFreeAt`` = the pace's next free slot time in
seconds since the Unix epoch. Every function instance reserves its blocks of slots here (of the
app-wide row too, whichever tenant they are for): read the row, compute the block
(``Pace.reserve``), write the new time only if the row is unchanged (If-Match on its ETag); when
another instance wrote first (412) or created the row first (409), read again.
"""

from __future__ import annotations

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.core.errors import TemporaryError
from shared.core.request_pace import Pace, SlotBlock

PACE_TABLE = "graphpace"
TEAMS_SCOPE = "teams"
#: The partition of the app's pace across all its tenants.
APP_PACE_PARTITION = "app"

# Each lost race means another instance got a block, so the tenant is moving; this many losses in
# a row means something else is wrong (a storage fault), better retried by the host.
_MAX_ATTEMPTS = 50


class TablePaceStore:
    """Implements ``PaceStore`` on the ``graphpace`` table, for one pace: a tenant's (the
    partition is its id) or the app's (``app_wide``)."""

    def __init__(self, service: TableServiceClient, partition: str) -> None:
        self._partition = partition  # one pace per store: every row's PartitionKey
        self._table: TableClient = service.get_table_client(PACE_TABLE)

    @classmethod
    def app_wide(cls, service: TableServiceClient) -> TablePaceStore:
        """The app's pace across all its tenants, shared by every instance of every tenant."""
        return cls(service, APP_PACE_PARTITION)

    async def reserve(self, pace: Pace, now: float) -> SlotBlock:
        """Reserve the pace's next block, conditional on nobody reserving in between.

        Raises:
            TemporaryError: the row kept changing under this instance.
        """
        for _ in range(_MAX_ATTEMPTS):
            try:
                entity = await self._table.get_entity(self._partition, TEAMS_SCOPE)
            except ResourceNotFoundError:
                block = pace.reserve(None, now)
                try:
                    await self._table.create_entity(_pace_entity(self._partition, block))
                except ResourceExistsError:
                    continue  # another instance made the row first: reserve after its block
                return block
            block = pace.reserve(float(entity["NextFreeAt"]), now)
            try:
                await self._table.update_entity(
                    _pace_entity(self._partition, block), mode=UpdateMode.REPLACE,
                    etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # another instance reserved first: read its time and go after it
            return block
        whose = ("the app across tenants" if self._partition == APP_PACE_PARTITION
                 else f"tenant {self._partition}")
        raise TemporaryError(
            f"could not reserve Teams request slots for {whose} in {_MAX_ATTEMPTS} attempts"
        )


def _pace_entity(partition: str, block: SlotBlock) -> dict[str, object]:
    return {"PartitionKey": partition, "RowKey": TEAMS_SCOPE, "NextFreeAt": float(block.end)}
