"""Run records, the per-tenant sync lease, guard holds and done-markers in Table Storage.

``syncruns``  PartitionKey = tenant id, RowKey = run id: when a run started and ended, how it
              ended (completed, skipped because another run held the lease, failed) and counts.
``syncleases`` PartitionKey = tenant id, RowKey = "sync": the run that may plan now, until when.
              Taken insert-if-absent, or over an expired lease under an ETag condition.
``holds``     PartitionKey = tenant id, RowKey = "<run id>|<user id>": an unassignment the
              mass-unassign guard stopped; pending until approved (by whom, when) or dropped.
``effects``   PartitionKey = tenant id, RowKey = a message's idempotency key: the message's
              effect is complete, so a redelivery does nothing at all.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.core.records import Hold, RunRecord

RUNS_TABLE = "syncruns"
LEASES_TABLE = "syncleases"
HOLDS_TABLE = "holds"
EFFECTS_TABLE = "effects"
TABLES = (RUNS_TABLE, LEASES_TABLE, HOLDS_TABLE, EFFECTS_TABLE)


class TableRunLedger:
    """Implements ``RunLedger`` on four tables."""

    def __init__(self, service: TableServiceClient, tenant_id: str) -> None:
        self._tenant_id = tenant_id  # one tenant per app: every row's PartitionKey
        self._runs: TableClient = service.get_table_client(RUNS_TABLE)
        self._leases: TableClient = service.get_table_client(LEASES_TABLE)
        self._holds: TableClient = service.get_table_client(HOLDS_TABLE)
        self._effects: TableClient = service.get_table_client(EFFECTS_TABLE)

    async def acquire_lease(
        self, run_id: str, now: datetime, ttl: timedelta
    ) -> str | None:
        """Take the tenant's sync lease; None when it is taken, else the holder's run id."""
        entity = {"PartitionKey": self._tenant_id, "RowKey": "sync", "RunId": run_id,
                  "ExpiresAt": now + ttl}
        try:
            await self._leases.create_entity(entity)
        except ResourceExistsError:
            pass
        else:
            return None
        current = await self._leases.get_entity(self._tenant_id, "sync")
        if current["ExpiresAt"] > now:
            return str(current["RunId"])
        try:
            await self._leases.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=current.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            latest = await self._leases.get_entity(self._tenant_id, "sync")
            return str(latest["RunId"])
        return None

    async def release_lease(self, run_id: str) -> None:
        """Give the lease back if this run still holds it."""
        try:
            current = await self._leases.get_entity(self._tenant_id, "sync")
        except ResourceNotFoundError:
            return
        if current["RunId"] != run_id:
            return
        try:
            await self._leases.delete_entity(
                self._tenant_id, "sync", etag=current.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return

    async def record_run(self, record: RunRecord) -> None:
        """Store (or update) a run's record."""
        await self._runs.upsert_entity({
            "PartitionKey": self._tenant_id,
            "RowKey": record.run_id,
            "StartedAt": record.started_at,
            "FinishedAt": record.finished_at,
            "Outcome": record.outcome,
            "Message": record.message,
            "Counts": json.dumps(record.counts, sort_keys=True),
        }, mode=UpdateMode.REPLACE)

    async def runs(self) -> list[RunRecord]:
        """Every run record of the tenant, oldest first."""
        entities = self._runs.query_entities(
            "PartitionKey eq @tenant", parameters={"tenant": self._tenant_id}
        )
        records = [_run(entity) async for entity in entities]
        return sorted(records, key=lambda record: record.run_id)

    async def save_holds(self, holds: list[Hold]) -> None:
        """Store new holds (a hold already stored for the same run and user is kept as it is)."""
        for hold in holds:
            try:
                await self._holds.create_entity(_hold_entity(self._tenant_id, hold))
            except ResourceExistsError:
                continue

    async def holds(self, status: str | None = None) -> list[Hold]:
        """The tenant's holds, optionally only those with one status."""
        query, parameters = "PartitionKey eq @tenant", {"tenant": self._tenant_id}
        if status is not None:
            query += " and Status eq @status"
            parameters["status"] = status
        entities = self._holds.query_entities(query, parameters=parameters)
        return sorted([_hold(entity) async for entity in entities], key=lambda h: h.key)

    async def update_hold(self, hold: Hold) -> None:
        """Store a hold's new status (approval or drop)."""
        await self._holds.upsert_entity(
            _hold_entity(self._tenant_id, hold), mode=UpdateMode.REPLACE
        )

    async def effect_done(self, key: str) -> bool:
        """Whether a message with this idempotency key has completed its effect."""
        try:
            await self._effects.get_entity(self._tenant_id, _row_key(key))
        except ResourceNotFoundError:
            return False
        return True

    async def mark_effect_done(self, key: str, at: datetime) -> None:
        """Record that the message's effect is complete (idempotent)."""
        await self._effects.upsert_entity(
            {"PartitionKey": self._tenant_id, "RowKey": _row_key(key), "DoneAt": at}
        )


def _row_key(key: str) -> str:
    # Table keys may not contain '/', '\\', '#' or '?'.
    return "".join("_" if char in "/\\#?" else char for char in key)


def _hold_entity(tenant_id: str, hold: Hold) -> dict[str, object]:
    entity: dict[str, object] = {
        "PartitionKey": tenant_id,
        "RowKey": hold.key,
        "RunId": hold.run_id,
        "UserId": hold.user_id,
        "UserPrincipalName": hold.user_principal_name,
        "Number": hold.number,
        "Reason": hold.reason,
        "Message": hold.message,
        "Status": hold.status,
        "CreatedAt": hold.created_at,
    }
    if hold.decided_by:
        entity["DecidedBy"] = hold.decided_by
    if hold.decided_at:
        entity["DecidedAt"] = hold.decided_at
    return entity


def _hold(entity: Any) -> Hold:
    return Hold(
        run_id=str(entity["RunId"]),
        user_id=str(entity["UserId"]),
        user_principal_name=str(entity.get("UserPrincipalName", "")),
        number=str(entity["Number"]),
        reason=str(entity.get("Reason", "")),
        message=str(entity.get("Message", "")),
        status=str(entity.get("Status", "pending")),
        created_at=entity["CreatedAt"],
        decided_by=entity.get("DecidedBy"),
        decided_at=entity.get("DecidedAt"),
    )


def _run(entity: Any) -> RunRecord:
    return RunRecord(
        run_id=str(entity["RowKey"]),
        started_at=entity["StartedAt"],
        finished_at=entity.get("FinishedAt"),
        outcome=str(entity.get("Outcome", "")),
        message=str(entity.get("Message", "")),
        counts=json.loads(entity.get("Counts") or "{}"),
    )
