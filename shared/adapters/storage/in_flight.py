"""The changes queued and not yet done, in Azure Table Storage: table ``inflight``.

PartitionKey = tenant id, RowKey = ``<user id>|<kind>`` (``number`` or ``policies``); IdempotencyKey
(the queued change), QueuedAt, ExpiresAt. The timer writes a row per message before it sends the
message and enqueues nothing for a user whose row has not expired; the queue function deletes the
row once the change is done, under the row's ETag and only while the row is still that change's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TransactionOperation
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.core.records import InFlight

IN_FLIGHT_TABLE = "inflight"
_TRANSACTION_LIMIT = 100  # the most entities one Table Storage transaction takes


class TableInFlightStore:
    """Implements ``InFlightStore`` on the ``inflight`` table."""

    def __init__(self, service: TableServiceClient, tenant_id: str) -> None:
        self._tenant_id = tenant_id  # one tenant per app: every row's PartitionKey
        self._table: TableClient = service.get_table_client(IN_FLIGHT_TABLE)

    async def list_in_flight(self, now: datetime) -> list[InFlight]:
        """The tenant's markers that have not expired at ``now``."""
        entities = self._table.query_entities(
            "PartitionKey eq @tenant and ExpiresAt gt @now",
            parameters={"tenant": self._tenant_id, "now": now},
        )
        return [_marker(entity) async for entity in entities]

    async def mark_queued(self, markers: Sequence[InFlight]) -> None:
        """Upsert the markers, in transactions of 100 (a run may queue thousands)."""
        for start in range(0, len(markers), _TRANSACTION_LIMIT):
            chunk = _last_per_row(markers[start:start + _TRANSACTION_LIMIT])
            await self._table.submit_transaction([
                (TransactionOperation.UPSERT, _entity(self._tenant_id, marker)) for marker in chunk
            ])

    async def clear(self, user_id: str, kind: str, idempotency_key: str) -> None:
        """Delete the user's marker of ``kind`` if it is still this change's."""
        row = _row_key(user_id, kind)
        try:
            entity = await self._table.get_entity(self._tenant_id, row)
        except ResourceNotFoundError:
            return
        if entity.get("IdempotencyKey") != idempotency_key:
            return  # a later run queued another change for the user: that one is in flight
        try:
            await self._table.delete_entity(
                self._tenant_id, row, etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return  # replaced meanwhile by a newer change, or cleared by another delivery


def _row_key(user_id: str, kind: str) -> str:
    return f"{user_id}|{kind}"


def _last_per_row(markers: Sequence[InFlight]) -> list[InFlight]:
    # One transaction may not touch a row twice.
    return list({_row_key(m.user_id, m.kind): m for m in markers}.values())


def _entity(tenant_id: str, marker: InFlight) -> dict[str, object]:
    return {
        "PartitionKey": tenant_id,
        "RowKey": _row_key(marker.user_id, marker.kind),
        "IdempotencyKey": marker.idempotency_key,
        "QueuedAt": marker.queued_at,
        "ExpiresAt": marker.expires_at,
    }


def _marker(entity: object) -> InFlight:
    assert isinstance(entity, dict)
    user_id, _, kind = str(entity["RowKey"]).rpartition("|")
    return InFlight(
        user_id=user_id,
        kind=kind,
        idempotency_key=str(entity["IdempotencyKey"]),
        queued_at=entity["QueuedAt"],
        expires_at=entity["ExpiresAt"],
    )
