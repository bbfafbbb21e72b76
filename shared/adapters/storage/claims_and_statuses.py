"""Claims and user statuses in Azure Table Storage, one partition per tenant.

``numberclaims``: PartitionKey = tenant id, RowKey = the E.164 number. Created insert-if-absent, so
of two concurrent claims exactly one is stored and the other reads it back; every change after
that is conditional on the row's ETag. ``AssignedByApp`` is the app's ownership marker.
``userstatus``: PartitionKey = tenant id, RowKey = the Entra user id; the user's latest outcome,
with ``Attempts`` (failures and waits for Teams in a row), ``RetryAt`` (when to look again) and
``WaitingSince`` (when the current wait for Teams began).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableTransactionError, TransactionOperation, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.adapters.storage.audit import AUDIT_TABLE
from shared.adapters.storage.in_flight import IN_FLIGHT_TABLE
from shared.adapters.storage.pace import PACE_TABLE
from shared.adapters.storage.policy_grants import GRANTS_TABLE
from shared.adapters.storage.runs import TABLES as RUN_TABLES
from shared.adapters.storage.snapshots import SNAPSHOT_TABLE
from shared.adapters.storage.tenants import TABLES as TENANT_TABLES
from shared.core.directory import Claim
from shared.core.outcomes import Outcome, Reason, counts_as_attempt
from shared.core.records import UserStatus

CLAIMS_TABLE = "numberclaims"
STATUS_TABLE = "userstatus"


async def ensure_tables(service: TableServiceClient) -> None:
    """Create the app's tables when they do not exist yet (idempotent)."""
    for name in (CLAIMS_TABLE, STATUS_TABLE, SNAPSHOT_TABLE, *RUN_TABLES, GRANTS_TABLE,
                 PACE_TABLE, IN_FLIGHT_TABLE, *TENANT_TABLES, AUDIT_TABLE):
        await service.create_table_if_not_exists(name)


class TableClaimStore:
    """Implements ``ClaimStore`` on the ``numberclaims`` table."""

    def __init__(self, service: TableServiceClient, tenant_id: str) -> None:
        self._tenant_id = tenant_id  # one tenant per app: every row's PartitionKey
        self._table: TableClient = service.get_table_client(CLAIMS_TABLE)

    async def list_claims(self) -> dict[str, Claim]:
        """Every claim of the tenant, by number."""
        entities = self._table.query_entities(
            "PartitionKey eq @tenant", parameters={"tenant": self._tenant_id}
        )
        return {entity["RowKey"]: _claim(entity) async for entity in entities}

    async def get_claim(self, number: str) -> Claim | None:
        """The claim on one number, if any."""
        entity = await self._entity(number)
        return None if entity is None else _claim(entity)

    async def claim(self, claim: Claim) -> Claim:
        """Insert-if-absent; the stored claim (this one or an earlier one) is returned."""
        # Read first: the timer claims a run's numbers in batches (``claim_all``) before their
        # messages are sent, so the queue function nearly always finds its claim stored. An
        # insert first would cost that common case a refused insert and then the read anyway.
        stored = await self._entity(claim.number)
        if stored is not None:
            return _claim(stored)
        try:
            await self._table.create_entity(_claim_entity(self._tenant_id, claim))
        except ResourceExistsError:
            return _claim(await self._table.get_entity(self._tenant_id, claim.number))
        return claim

    async def claim_all(self, claims: Sequence[Claim]) -> None:
        """Insert-if-absent in transactions of 100; a transaction that meets a stored claim is
        done again one claim at a time."""
        await _insert_all(
            self._table, [_claim_entity(self._tenant_id, claim) for claim in claims],
            lambda index: self.claim(claims[index]),
        )

    async def transfer(self, from_user_id: str, claim: Claim) -> Claim:
        """Move an unassigned claim to a new holder, conditional on the row not having changed."""
        entity = await self._entity(claim.number)
        if entity is None:
            return await self.claim(claim)
        stored = _claim(entity)
        if stored.holder_user_id != from_user_id or stored.assigned:
            return stored
        try:
            await self._table.update_entity(
                _claim_entity(self._tenant_id, claim), mode=UpdateMode.REPLACE,
                etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            return _claim(await self._table.get_entity(self._tenant_id, claim.number))
        return claim

    async def mark_assigned(self, number: str, user_id: str) -> bool:
        """Set the ownership marker on the user's claim (idempotent)."""
        return await self._change_holders_claim(
            number, user_id,
            lambda entity: None if entity.get("AssignedByApp")
            else {"AssignedByApp": True, "AssignedAt": datetime.now(UTC)},
        )

    async def mark_assigning(
        self, number: str, user_id: str, since: datetime | None
    ) -> bool:
        """Record or withdraw the app's intent to assign, under the row's ETag condition."""
        def change(entity: Any) -> dict[str, object] | None:
            if since is None and (entity.get("AssignedByApp") or not entity.get("AssigningSince")):
                return None  # nothing to withdraw, or the number is the app's already
            return {"AssigningSince": since}

        return await self._change_holders_claim(number, user_id, change)

    async def release(
        self, number: str, user_id: str, *, cooling_since: datetime | None = None
    ) -> bool:
        """Delete the user's claim (or mark it released, to cool down), under an ETag condition."""
        entity = await self._entity(number)
        if entity is None or entity["HolderUserId"] != user_id:
            return False
        try:
            if cooling_since is None:
                await self._table.delete_entity(
                    self._tenant_id, number, etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
            else:
                await self._table.update_entity(
                    _with(entity, AssignedByApp=False, ReleasedAt=cooling_since,
                          ReleasePendingSince=None, AssigningSince=None),
                    mode=UpdateMode.REPLACE, etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
        except ResourceModifiedError:
            return await self.release(number, user_id, cooling_since=cooling_since)
        return True

    async def set_release_pending(
        self, number: str, user_id: str, since: datetime | None
    ) -> bool:
        """Start or cancel the grace period on the user's claim, under an ETag condition."""
        return await self._change_holders_claim(
            number, user_id, lambda entity: {"ReleasePendingSince": since}
        )

    async def _change_holders_claim(
        self,
        number: str,
        user_id: str,
        change: Callable[[Any], dict[str, object] | None],
    ) -> bool:
        """Apply ``change`` (the properties to set; None: nothing to do) to the claim while
        ``user_id`` holds it, under the row's ETag; read again and retry when another writer came
        first. False when the user does not hold the claim."""
        while True:
            entity = await self._entity(number)
            if entity is None or entity["HolderUserId"] != user_id:
                return False
            changes = change(entity)
            if changes is None:
                return True
            try:
                await self._table.update_entity(
                    _with(entity, **changes), mode=UpdateMode.REPLACE,
                    etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified,
                )
            except ResourceModifiedError:
                continue
            return True

    async def _entity(self, number: str) -> Any:
        try:
            return await self._table.get_entity(self._tenant_id, number)
        except ResourceNotFoundError:
            return None


class TableStatusStore:
    """Implements ``StatusStore`` on the ``userstatus`` table."""

    def __init__(self, service: TableServiceClient, tenant_id: str) -> None:
        self._tenant_id = tenant_id  # one tenant per app: every row's PartitionKey
        self._table: TableClient = service.get_table_client(STATUS_TABLE)

    async def record(self, status: UserStatus) -> None:
        """Store the user's latest outcome; a newer run's row is never overwritten by an older."""
        counted = counts_as_attempt(status.outcome, status.reason)
        entity = _status_entity(self._tenant_id, status)
        try:
            existing = await self._table.get_entity(self._tenant_id, status.user_id)
        except ResourceNotFoundError:
            try:
                await self._table.create_entity(entity)
            except ResourceExistsError:
                # Another delivery of a message for this user wrote first; read it and compare.
                existing = await self._table.get_entity(self._tenant_id, status.user_id)
            else:
                return
        if str(existing.get("RunId", "")) > status.run_id:
            return  # run ids sort by start time: a stale redelivery must not hide a newer outcome
        entity["FirstSeen"] = existing.get("FirstSeen") or status.updated_at
        if counted:
            entity["Attempts"] = int(existing.get("Attempts", 0)) + 1
        await self._table.update_entity(
            entity,
            mode=UpdateMode.REPLACE,
            etag=existing.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )

    async def record_first(self, statuses: Sequence[UserStatus]) -> None:
        """Insert in transactions of 100; a transaction that meets a stored status is done again
        one ``record`` at a time."""
        await _insert_all(
            self._table, [_status_entity(self._tenant_id, status) for status in statuses],
            lambda index: self.record(statuses[index]),
        )

    async def list_statuses(self) -> list[UserStatus]:
        """Every user's latest outcome in the tenant."""
        entities = self._table.query_entities(
            "PartitionKey eq @tenant", parameters={"tenant": self._tenant_id}
        )
        return [_status(entity) async for entity in entities]

    async def get_status(self, user_id: str) -> UserStatus | None:
        """One user's latest outcome, if any."""
        try:
            return _status(await self._table.get_entity(self._tenant_id, user_id))
        except ResourceNotFoundError:
            return None


_TRANSACTION_LIMIT = 100  # the most entities one Table Storage transaction takes


async def _insert_all(
    table: TableClient,
    entities: Sequence[dict[str, object]],
    one_by_one: Callable[[int], Awaitable[object]],
) -> None:
    """Create ``entities`` (one partition) in transactions; a transaction that fails because a
    row exists is replayed through ``one_by_one(index)``, which knows how to meet it."""
    for start in range(0, len(entities), _TRANSACTION_LIMIT):
        chunk = entities[start:start + _TRANSACTION_LIMIT]
        try:
            await table.submit_transaction(
                [(TransactionOperation.CREATE, entity) for entity in chunk]
            )
        except (TableTransactionError, ResourceExistsError):
            for index in range(start, start + len(chunk)):
                await one_by_one(index)


def _status_entity(tenant_id: str, status: UserStatus) -> dict[str, object]:
    counted = counts_as_attempt(status.outcome, status.reason)
    entity: dict[str, object] = {
        "PartitionKey": tenant_id,
        "RowKey": status.user_id,
        "UserPrincipalName": status.user_principal_name,
        "Outcome": status.outcome.value,
        "Reason": status.reason.value,
        "Number": status.number or "",
        "Message": status.message,
        "RunId": status.run_id,
        "ReadPosition": status.read_position,
        "UpdatedAt": status.updated_at,
        "FirstSeen": status.updated_at,
        "Attempts": 1 if counted else 0,
    }
    # Absent rather than null: a REPLACE then drops a time an earlier outcome had set.
    if status.retry_at is not None:
        entity["RetryAt"] = status.retry_at
    if status.waiting_since is not None:
        entity["WaitingSince"] = status.waiting_since
    return entity


def _claim_entity(tenant_id: str, claim: Claim) -> dict[str, object]:
    return {
        "PartitionKey": tenant_id,
        "RowKey": claim.number,
        "HolderUserId": claim.holder_user_id,
        "HolderUpn": claim.holder_upn,
        "RunId": claim.run_id,
        "ReadPosition": claim.read_position,
        "AssignedByApp": claim.assigned,
        "ClaimedAt": datetime.now(UTC),
        **({"AssigningSince": claim.assigning_since} if claim.assigning_since else {}),
    }


def _claim(entity: Any) -> Claim:
    return Claim(
        number=str(entity["RowKey"]),
        holder_user_id=str(entity["HolderUserId"]),
        holder_upn=str(entity.get("HolderUpn", "")),
        run_id=str(entity.get("RunId", "")),
        read_position=int(entity.get("ReadPosition", 0)),
        assigned=bool(entity.get("AssignedByApp", False)),
        release_pending_since=_time(entity.get("ReleasePendingSince")),
        released_at=_time(entity.get("ReleasedAt")),
        assigning_since=_time(entity.get("AssigningSince")),
    )


def _with(entity: Any, **changes: object) -> dict[str, object]:
    """The entity with some properties changed; None removes a property (REPLACE drops it)."""
    merged = {**dict(entity), **changes}
    return {key: value for key, value in merged.items() if value is not None}


def _time(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _status(entity: Any) -> UserStatus:
    updated = entity.get("UpdatedAt")
    return UserStatus(
        user_id=str(entity["RowKey"]),
        user_principal_name=str(entity.get("UserPrincipalName", "")),
        outcome=Outcome(entity["Outcome"]),
        reason=Reason(entity["Reason"]),
        number=str(entity.get("Number") or "") or None,
        message=str(entity.get("Message", "")),
        run_id=str(entity.get("RunId", "")),
        read_position=int(entity.get("ReadPosition", 0)),
        updated_at=updated if isinstance(updated, datetime) else datetime.fromtimestamp(0, UTC),
        first_seen=_time(entity.get("FirstSeen")),
        attempts=int(entity.get("Attempts", 0)),
        retry_at=_time(entity.get("RetryAt")),
        waiting_since=_time(entity.get("WaitingSince")),
    )
