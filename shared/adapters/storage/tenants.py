"""The tenant registry and the tenants' health and sync times, in Azure Table Storage.

``tenants``      PartitionKey = ``tenant``, RowKey = the tenant id. ``Record`` is the tenant's
                 ``TenantRecord`` as JSON (camelCase, the admin API's form); ``State`` is a copy
                 of its state, to read and filter in a table browser. A record longer than one
                 property takes (Table Storage: 64 KiB, 32K UTF-16 characters) goes on in
                 ``Record2``, ``Record3``, …. Registered insert-if-absent; every change is a
                 whole-row replace under the row's ETag, read again and redone on a 412.
``tenanthealth`` PartitionKey = the tenant id. RowKey ``health``: ``State``, ``Message``,
                 ``Since``, ``CheckedAt``. RowKey ``schedule``: ``EnqueuedAt``, ``StartedAt``,
                 ``FinishedAt``, each written by a merge of its own property, so concurrent marks
                 of different times do not overwrite each other.

A row edited by hand so that it no longer holds a valid record is a ``RegistryError`` naming the
row and the field, wherever it is read.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.core.errors import TemporaryError
from shared.core.tenant_registry import (
    RegistryError,
    SyncSchedule,
    TenantExistsError,
    TenantHealth,
    TenantHealthState,
    TenantNotFoundError,
    TenantRecord,
    stored_record,
)

TENANTS_TABLE = "tenants"
TENANT_HEALTH_TABLE = "tenanthealth"
TABLES = (TENANTS_TABLE, TENANT_HEALTH_TABLE)

_PARTITION: Final = "tenant"
_HEALTH: Final = "health"
_SCHEDULE: Final = "schedule"
# UTF-16 code units per property: under Table Storage's 32K, as in the snapshot store.
_PART_UNITS: Final = 30_000
# An entity takes 1 MiB in all: fifteen full parts (900 KB in UTF-16) and the rest leave room.
_MAX_PARTS: Final = 15
# Each lost race means another writer changed the tenant; this many in a row is a storage fault.
_MAX_ATTEMPTS: Final = 50


class TableTenantRegistry:
    """Implements ``TenantRegistry`` on the ``tenants`` table."""

    def __init__(self, service: TableServiceClient, table: str = TENANTS_TABLE) -> None:
        self._table: TableClient = service.get_table_client(table)
        self._table_name = table

    async def list_tenants(self) -> list[TenantRecord]:
        """Every registered tenant, sorted by tenant id; the first invalid row raises."""
        records, problems = await self.list_readable_tenants()
        if problems:
            raise problems[0]
        return records

    async def list_readable_tenants(self) -> tuple[list[TenantRecord], list[RegistryError]]:
        """The tenants whose rows hold valid records, and an error for each row that does not."""
        records: list[TenantRecord] = []
        problems: list[RegistryError] = []
        entities = self._table.query_entities(
            "PartitionKey eq @partition", parameters={"partition": _PARTITION}
        )
        async for entity in entities:
            try:
                records.append(self._record(entity))
            except RegistryError as problem:
                problems.append(problem)
        return sorted(records, key=lambda record: record.key), problems

    async def get(self, tenant_id: str) -> TenantRecord | None:
        """One tenant's record, or None when it is not registered."""
        entity = await self._entity(tenant_id)
        return None if entity is None else self._record(entity)

    async def add(self, record: TenantRecord) -> None:
        """Insert the tenant's row if absent.

        Raises:
            TenantExistsError: a row for the tenant exists.
            RegistryError: the record does not fit one row.
        """
        try:
            await self._table.create_entity(self._row(record))
        except ResourceExistsError:
            raise TenantExistsError(f"tenant {record.key} is registered already") from None

    async def update(
        self, tenant_id: str, change: Callable[[TenantRecord], TenantRecord]
    ) -> TenantRecord:
        """Replace the tenant's record by ``change(record)`` under the row's ETag, reading and
        changing again when another writer came first.

        Raises:
            TenantNotFoundError: no row for the tenant.
            RegistryError: the stored record is not valid, or the change altered the tenant id.
            TemporaryError: the row kept changing under this writer.
        """
        for _ in range(_MAX_ATTEMPTS):
            entity = await self._entity(tenant_id)
            if entity is None:
                raise TenantNotFoundError(f"tenant {tenant_id} is not registered")
            record = self._record(entity)
            changed = change(record)
            if changed.key != record.key:
                raise RegistryError(
                    f"{record}: tenantId={changed.key!r}: a change may not give a tenant "
                    "another id"
                )
            if changed == record:
                return record
            try:
                await self._table.update_entity(
                    self._row(changed), mode=UpdateMode.REPLACE, etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # changed (or removed) meanwhile: read again and decide again
            return changed
        raise TemporaryError(
            f"could not change tenant {tenant_id} in {_MAX_ATTEMPTS} attempts: its row kept "
            "changing"
        )

    async def _entity(self, tenant_id: str) -> Any:
        try:
            return await self._table.get_entity(_PARTITION, tenant_id)
        except ResourceNotFoundError:
            return None

    def _source(self, row_key: str) -> str:
        return f"{self._table_name} table row {row_key!r}"

    def _record(self, entity: Any) -> TenantRecord:
        row_key = str(entity["RowKey"])
        source = self._source(row_key)
        text = _joined(entity)
        if text is None:
            raise RegistryError(f"{source}: Record: missing (the row holds no tenant record)")
        record = stored_record(text, row_key, source)
        column = entity.get("State")
        if column is not None and str(column) != record.state:
            # A hand edit of the copy alone: say so rather than act on either value.
            raise RegistryError(
                f"{source}: State={column!r}: the record's state is {record.state!r}; change a "
                "tenant's state with an action (activate, pause, resume, remove), not by hand"
            )
        return record

    def _row(self, record: TenantRecord) -> dict[str, object]:
        parts = _split(record.to_json())
        if len(parts) > _MAX_PARTS:
            raise RegistryError(
                f"{record}: the record is too large for one table row ({len(parts)} parts of "
                f"{_PART_UNITS} characters, at most {_MAX_PARTS}); write numberRanges as ranges "
                "rather than single numbers"
            )
        row: dict[str, object] = {"PartitionKey": _PARTITION, "RowKey": record.key,
                                  "State": record.state.value}
        for index, part in enumerate(parts, start=1):
            row[_part_name(index)] = part
        return row


def _part_name(index: int) -> str:
    return "Record" if index == 1 else f"Record{index}"


def _split(text: str) -> list[str]:
    """The text in parts of at most ``_PART_UNITS`` UTF-16 code units (what the table counts)."""
    if text.isascii():
        return [text[start:start + _PART_UNITS] for start in range(0, len(text), _PART_UNITS)]
    parts: list[str] = []
    current: list[str] = []
    units = 0
    for char in text:
        size = 2 if ord(char) > 0xFFFF else 1
        if units + size > _PART_UNITS:
            parts.append("".join(current))
            current, units = [], 0
        current.append(char)
        units += size
    parts.append("".join(current))
    return parts


def _joined(entity: Any) -> str | None:
    first = entity.get("Record")
    if first is None:
        return None
    parts = [str(first)]
    index = 2
    while (part := entity.get(_part_name(index))) is not None:
        parts.append(str(part))
        index += 1
    return "".join(parts)


class TableTenantHealthStore:
    """Implements ``TenantHealthStore`` on the ``tenanthealth`` table."""

    def __init__(self, service: TableServiceClient, table: str = TENANT_HEALTH_TABLE) -> None:
        self._table: TableClient = service.get_table_client(table)
        self._table_name = table

    async def health(self, tenant_id: str) -> TenantHealth | None:
        """The tenant's last health, or None before its first check."""
        entity = await self._entity(tenant_id, _HEALTH)
        return None if entity is None else self._health(entity)

    async def list_health(self) -> dict[str, TenantHealth]:
        """Every tenant's last health, by tenant id."""
        entities = self._table.query_entities(
            "RowKey eq @row", parameters={"row": _HEALTH}
        )
        return {str(entity["PartitionKey"]): self._health(entity) async for entity in entities}

    async def save_health(self, health: TenantHealth) -> None:
        """Replace the tenant's health row."""
        await self._table.upsert_entity({
            "PartitionKey": health.tenant_id,
            "RowKey": _HEALTH,
            "State": health.state.value,
            "Message": health.message,
            "Since": health.since,
            "CheckedAt": health.checked_at,
        }, mode=UpdateMode.REPLACE)

    async def schedule(self, tenant_id: str) -> SyncSchedule:
        """The tenant's sync times; all None when none was ever marked."""
        entity = await self._entity(tenant_id, _SCHEDULE)
        return SyncSchedule(tenant_id) if entity is None else _schedule(entity)

    async def list_schedules(self) -> dict[str, SyncSchedule]:
        """Every tenant's sync times that were ever marked, by tenant id."""
        entities = self._table.query_entities(
            "RowKey eq @row", parameters={"row": _SCHEDULE}
        )
        return {str(entity["PartitionKey"]): _schedule(entity) async for entity in entities}

    async def mark_enqueued(self, tenant_id: str, at: datetime) -> None:
        """Set the time a sync of the tenant was enqueued."""
        await self._mark(tenant_id, "EnqueuedAt", at)

    async def mark_started(self, tenant_id: str, at: datetime) -> None:
        """Set the time a sync of the tenant started."""
        await self._mark(tenant_id, "StartedAt", at)

    async def mark_finished(self, tenant_id: str, at: datetime) -> None:
        """Set the time a sync of the tenant finished."""
        await self._mark(tenant_id, "FinishedAt", at)

    async def _mark(self, tenant_id: str, name: str, at: datetime) -> None:
        # A merge of one property: the other times in the row stay as another writer left them.
        await self._table.upsert_entity(
            {"PartitionKey": tenant_id, "RowKey": _SCHEDULE, name: at}, mode=UpdateMode.MERGE
        )

    async def _entity(self, tenant_id: str, row: str) -> Any:
        try:
            return await self._table.get_entity(tenant_id, row)
        except ResourceNotFoundError:
            return None

    def _health(self, entity: Any) -> TenantHealth:
        tenant_id = str(entity["PartitionKey"])
        source = f"{self._table_name} table row ({tenant_id!r}, {_HEALTH!r})"
        state = entity.get("State")
        try:
            health_state = TenantHealthState(str(state))
        except ValueError:
            known = ", ".join(TenantHealthState)
            raise RegistryError(f"{source}: State={state!r}: not one of {known}") from None
        since, checked = _time(entity.get("Since")), _time(entity.get("CheckedAt"))
        if since is None or checked is None:
            raise RegistryError(f"{source}: Since and CheckedAt must be dates, got "
                                f"{entity.get('Since')!r} and {entity.get('CheckedAt')!r}")
        return TenantHealth(tenant_id, health_state, str(entity.get("Message", "")), since,
                            checked)


def _schedule(entity: Any) -> SyncSchedule:
    return SyncSchedule(
        tenant_id=str(entity["PartitionKey"]),
        enqueued_at=_time(entity.get("EnqueuedAt")),
        started_at=_time(entity.get("StartedAt")),
        finished_at=_time(entity.get("FinishedAt")),
    )


def _time(value: object) -> datetime | None:
    # A plain datetime, not the SDK's subclass: records compare and print like the fakes'.
    if not isinstance(value, datetime):
        return None
    return datetime.combine(value.date(), value.timetz())
