"""The audit trail in Azure Table Storage (table ``audit``), append-only.

PartitionKey ``<tenant id>|<YYYY-MM>``, RowKey ``<UTC time>Z-<digest>`` (``shared.core.audit``):
a month of one tenant is one partition, read in time order by one query and deleted whole once
the retention lets it go. Entries are only ever *created*; nothing updates a row. A queue
message's write also creates its marker row (RowKey ``~<digest of the dedupe key>``) in the same
transaction, so a redelivery that repeats the write conflicts and appends nothing.

Columns: ``Kind``, ``At`` (ISO 8601, exact to the microsecond), ``Who``, ``Caller``, ``Outcome``,
``Detail``, ``UserId``, ``UserPrincipalName``, ``Number``, ``Policies`` (a JSON list),
``Before``, ``After``, ``RunId``, ``MessageId``, ``Step`` — a property left out when empty.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, TransactionOperation
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.core.audit import (
    MARKER_PREFIX,
    AuditEntry,
    AuditMonth,
    entry_keys,
    marker_row_key,
    months_between,
    partition_key,
    partition_month,
    time_key,
)

AUDIT_TABLE = "audit"
_TRANSACTION_LIMIT = 100
_COLUMNS = {
    "kind": "Kind", "at": "At", "who": "Who", "caller": "Caller", "outcome": "Outcome",
    "detail": "Detail", "userId": "UserId", "userPrincipalName": "UserPrincipalName",
    "number": "Number", "policies": "Policies", "before": "Before", "after": "After",
    "runId": "RunId", "messageId": "MessageId", "step": "Step",
}


class TableAuditLog:
    """Implements ``AuditLog`` on the ``audit`` table, bound to one tenant."""

    def __init__(self, service: TableServiceClient, tenant_id: str) -> None:
        self._tenant_id = tenant_id  # the first part of every PartitionKey this store touches
        self._table: TableClient = service.get_table_client(AUDIT_TABLE)

    async def record(self, entry: AuditEntry) -> bool:
        """Create the entry's row (with its marker, in one transaction, for a message's write);
        False when the row or the marker exists already."""
        partition, row = entry_keys(self._tenant_id, entry)
        entity = {"PartitionKey": partition, "RowKey": row, **_columns(entry)}
        dedupe = entry.dedupe_key
        if dedupe is None:
            try:
                await self._table.create_entity(entity)
            except ResourceExistsError:
                return False
            return True
        marker = {"PartitionKey": partition, "RowKey": marker_row_key(dedupe), "Entry": row}
        try:
            await self._table.submit_transaction([
                (TransactionOperation.CREATE, marker), (TransactionOperation.CREATE, entity),
            ])
        except (TableTransactionError, ResourceExistsError):
            # A conflict is the marker (or the row) being there; anything else is raised.
            if await self._exists(partition, marker["RowKey"]) or await self._exists(
                partition, row
            ):
                return False
            raise
        return True

    async def entries(self, since: datetime, until: datetime) -> list[AuditEntry]:
        """One query per month from ``since`` to ``until``; markers are not entries."""
        found: list[AuditEntry] = []
        for month in months_between(since, until):
            rows = self._table.query_entities(
                "PartitionKey eq @partition and RowKey ge @first and RowKey lt @marker",
                parameters={"partition": partition_key(self._tenant_id, month),
                            "first": time_key(since), "marker": MARKER_PREFIX},
            )
            found.extend([_entry(row) async for row in rows])
        return [entry for entry in found if since <= entry.at <= until]

    async def purge_before(self, month: AuditMonth) -> dict[AuditMonth, int]:
        """Delete the rows of this tenant's months before ``month``, a partition at a time.

        The query asks only for this tenant's PartitionKeys below that month; each row's key is
        read again as the tenant's month before anything is deleted (a key of another form is
        left alone).
        """
        rows = self._table.query_entities(
            "PartitionKey ge @low and PartitionKey lt @high",
            parameters={"low": f"{self._tenant_id}|", "high": partition_key(self._tenant_id,
                                                                            month)},
            select=["PartitionKey", "RowKey"],
        )
        by_partition: dict[str, list[str]] = defaultdict(list)
        async for row in rows:
            of = partition_month(self._tenant_id, str(row["PartitionKey"]))
            if of is not None and of < month:
                by_partition[str(row["PartitionKey"])].append(str(row["RowKey"]))
        gone: dict[AuditMonth, int] = {}
        for partition, keys in sorted(by_partition.items()):
            for start in range(0, len(keys), _TRANSACTION_LIMIT):
                chunk = keys[start:start + _TRANSACTION_LIMIT]
                await self._table.submit_transaction([
                    (TransactionOperation.DELETE, {"PartitionKey": partition, "RowKey": key})
                    for key in chunk
                ])
            of = partition_month(self._tenant_id, partition)
            assert of is not None  # kept above only when it reads as the tenant's month
            gone[of] = sum(1 for key in keys if not key.startswith(MARKER_PREFIX))
        return gone

    async def _exists(self, partition: str, row: str) -> bool:
        try:
            await self._table.get_entity(partition, row, select=["RowKey"])
        except ResourceNotFoundError:
            return False
        return True


def _columns(entry: AuditEntry) -> dict[str, object]:
    data = entry.to_json()
    data["policies"] = json.dumps(data["policies"]) if data["policies"] else None
    return {_COLUMNS[name]: value for name, value in data.items() if value not in {None, ""}}


def _entry(row: Any) -> AuditEntry:
    data: dict[str, object] = {name: row.get(column) for name, column in _COLUMNS.items()}
    policies = data.get("policies")
    data["policies"] = json.loads(str(policies)) if policies else []
    return AuditEntry.from_json(data)
