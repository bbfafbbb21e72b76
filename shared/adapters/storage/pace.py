"""The tenants' shared Teams pace in Azure Table Storage.

``graphpace``: PartitionKey = tenant id, RowKey = ``teams`` (the throttling scope paced: every
request under ``/admin/teams/``), ``NextFreeAt`` = the tenant's next free slot time in seconds
since the Unix epoch. Every function instance reserves its blocks of slots here: read the row,
compute the block (``Pace.reserve``), write the new time only if the row is unchanged (If-Match
on its ETag); when another instance wrote first (412) or created the row first (409), read again.
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

# Each lost race means another instance got a block, so the tenant is moving; this many losses in
# a row means something else is wrong (a storage fault), better retried by the host.
_MAX_ATTEMPTS = 50


class TablePaceStore:
    """Implements ``PaceStore`` on the ``graphpace`` table."""

    def __init__(self, service: TableServiceClient, tenant_id: str) -> None:
        self._tenant_id = tenant_id  # one tenant per app: every row's PartitionKey
        self._table: TableClient = service.get_table_client(PACE_TABLE)

    async def reserve(self, pace: Pace, now: float) -> SlotBlock:
        """Reserve the tenant's next block, conditional on nobody reserving in between.

        Raises:
            TemporaryError: the row kept changing under this instance.
        """
        for _ in range(_MAX_ATTEMPTS):
            try:
                entity = await self._table.get_entity(self._tenant_id, TEAMS_SCOPE)
            except ResourceNotFoundError:
                block = pace.reserve(None, now)
                try:
                    await self._table.create_entity(_pace_entity(self._tenant_id, block))
                except ResourceExistsError:
                    continue  # another instance made the row first: reserve after its block
                return block
            block = pace.reserve(float(entity["NextFreeAt"]), now)
            try:
                await self._table.update_entity(
                    _pace_entity(self._tenant_id, block), mode=UpdateMode.REPLACE,
                    etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # another instance reserved first: read its time and go after it
            return block
        raise TemporaryError(
            f"could not reserve Teams request slots for tenant {self._tenant_id} in "
            f"{_MAX_ATTEMPTS} attempts"
        )


def _pace_entity(tenant_id: str, block: SlotBlock) -> dict[str, object]:
    return {"PartitionKey": tenant_id, "RowKey": TEAMS_SCOPE, "NextFreeAt": float(block.end)}
