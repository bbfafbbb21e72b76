"""The directory snapshot a delta run plans on, in Azure Table Storage.

``directorysnapshot``: PartitionKey = tenant id. Members and numbers are kept in buckets, a row
each, as compact JSON: a 10,000-member tenant is about 250 rows, so a run loads its snapshot in a
few requests and a change rewrites only the buckets it touches.

* ``members|<bucket>``: ``Members`` = ``[[user id, UPN, [businessPhones], enabled, position],…]``
  for the members whose id hashes to the bucket;
* ``numbers|<bucket>``: ``Numbers`` = ``{number: target id}`` for the numbers Teams has on a
  target, as the last full read saw them and as the app's own writes changed them since;
* ``state``: the ``users/delta`` and voice-group delta links, when the last full read ran, and
  the bucket counts (they grow with the tenant, in powers of two).

A bucket holds ~100 members or ~300 numbers on average, well inside Table Storage's 64 KiB per
property (a bucket that would not fit doubles the count). The state row is written last, so a
save cut short is never loaded as complete; ``note_number`` changes one bucket under an ETag
condition, as queue functions run in parallel.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.core.directory import Member
from shared.core.records import DirectorySnapshot

log = logging.getLogger(__name__)

SNAPSHOT_TABLE = "directorysnapshot"
_MEMBERS = "members|"
_NUMBERS = "numbers|"
_STATE = "state"
_MEMBERS_PER_BUCKET = 100
_NUMBERS_PER_BUCKET = 300
# Table Storage takes 64 KiB per string property (32K UTF-16 characters); a bucket that would
# grow past this is not written (a note is dropped; the next full read brings it back).
_MAX_BODY_CHARACTERS = 30_000


class TableSnapshotStore:
    """Implements ``SnapshotStore`` on the ``directorysnapshot`` table."""

    def __init__(self, service: TableServiceClient, tenant_id: str) -> None:
        self._tenant_id = tenant_id  # one tenant per app: every row's PartitionKey
        self._table: TableClient = service.get_table_client(SNAPSHOT_TABLE)

    async def load(self) -> DirectorySnapshot | None:
        """The stored snapshot; None when no full read has been stored yet."""
        rows = await self._rows()
        return rows.snapshot if rows.state is not None else None

    async def save(
        self, snapshot: DirectorySnapshot, *, with_numbers: bool
    ) -> None:
        """Rewrite the buckets whose content differs from what is stored; the state row last."""
        rows = await self._rows()
        member_buckets = _bucket_count(len(snapshot.members), _MEMBERS_PER_BUCKET)
        if not with_numbers and rows.state is not None:
            number_buckets = int(rows.state.get("NumberBuckets", 1))
        else:
            # Sized for the members too: the queue functions add a number per member they serve.
            number_buckets = _bucket_count(
                len(snapshot.teams) + len(snapshot.members), _NUMBERS_PER_BUCKET
            )
        wanted: dict[str, str] = {}
        while True:
            members = {
                f"{_MEMBERS}{index:05}": json.dumps(
                    [[m.user_id, m.user_principal_name, list(m.business_phones),
                      m.account_enabled, m.read_position] for m in bucket],
                    separators=(",", ":"))
                for index, bucket in _split(snapshot.members, member_buckets).items()
            }
            if all(len(body) <= _MAX_BODY_CHARACTERS for body in members.values()):
                break
            member_buckets *= 2
        wanted.update(members)
        while with_numbers:
            numbers = {
                f"{_NUMBERS}{index:05}": json.dumps(bucket, separators=(",", ":"))
                for index, bucket in _split_numbers(snapshot.teams, number_buckets).items()
            }
            if all(len(body) <= _MAX_BODY_CHARACTERS for body in numbers.values()):
                wanted.update(numbers)
                break
            number_buckets *= 2
        if not with_numbers:
            wanted.update({key: body for key, body in rows.bodies.items()
                           if key.startswith(_NUMBERS)})
        for key, body in wanted.items():
            if rows.bodies.get(key) != body:
                await self._table.upsert_entity(
                    {**_key(self._tenant_id, key), _property(key): body}, mode=UpdateMode.REPLACE
                )
        for key in rows.bodies.keys() - wanted.keys():
            await self._table.delete_entity(self._tenant_id, key)
        await self._table.upsert_entity({
            **_key(self._tenant_id, _STATE),
            "UsersLink": snapshot.users_link or "",
            "GroupLink": snapshot.group_link or "",
            "MemberBuckets": member_buckets,
            "NumberBuckets": number_buckets,
            **({"FullReadAt": snapshot.full_read_at} if snapshot.full_read_at else {}),
        }, mode=UpdateMode.REPLACE)

    async def note_number(self, number: str, target_id: str | None) -> None:
        """Record one of the app's own writes to Teams in the number's bucket (idempotent)."""
        try:
            state = await self._table.get_entity(self._tenant_id, _STATE)
        except ResourceNotFoundError:
            return  # no snapshot yet: the first full read will see Teams as it is
        key = f"{_NUMBERS}{_bucket(number, int(state.get('NumberBuckets', 1))):05}"
        while True:
            try:
                entity = await self._table.get_entity(self._tenant_id, key)
            except ResourceNotFoundError:
                entity = None
            numbers: dict[str, str] = json.loads(entity["Numbers"]) if entity else {}
            if numbers.get(number) == target_id:
                return
            if target_id is None:
                numbers.pop(number)
            else:
                numbers[number] = target_id
            text = json.dumps(numbers, separators=(",", ":"))
            if len(text) > _MAX_BODY_CHARACTERS:
                log.warning("snapshot bucket %s is full; %s is noted by the next full read",
                            key, number)
                return
            body = {**_key(self._tenant_id, key), "Numbers": text}
            try:
                if entity is None:
                    await self._table.create_entity(body)
                else:
                    await self._table.update_entity(
                        body, mode=UpdateMode.REPLACE, etag=entity.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceModifiedError, ResourceExistsError):
                continue  # another worker changed the bucket first: read it again
            return

    async def has_member(self, user_id: str) -> bool | None:
        """Whether the stored voice group has the user: the state row and one member bucket."""
        try:
            state = await self._table.get_entity(self._tenant_id, _STATE)
        except ResourceNotFoundError:
            return None
        key = f"{_MEMBERS}{_bucket(user_id, int(state.get('MemberBuckets', 1))):05}"
        try:
            entity = await self._table.get_entity(self._tenant_id, key)
        except ResourceNotFoundError:
            return False  # an empty bucket is not written
        return any(row[0] == user_id for row in json.loads(str(entity["Members"])))

    async def _rows(self) -> _Rows:
        members: list[Member] = []
        teams: dict[str, str] = {}
        bodies: dict[str, str] = {}
        state: Any = None
        entities = self._table.query_entities(
            "PartitionKey eq @tenant", parameters={"tenant": self._tenant_id}
        )
        async for entity in entities:
            key = str(entity["RowKey"])
            if key.startswith(_MEMBERS):
                bodies[key] = str(entity["Members"])
                members += [Member(str(user_id), str(upn), tuple(phones), bool(enabled),
                                   int(position))
                            for user_id, upn, phones, enabled, position in json.loads(bodies[key])]
            elif key.startswith(_NUMBERS):
                bodies[key] = str(entity["Numbers"])
                teams.update(json.loads(bodies[key]))
            elif key == _STATE:
                state = entity
        members.sort(key=lambda member: member.read_position)
        snapshot = DirectorySnapshot(
            members=tuple(members),
            teams=teams,
            users_link=_text(state, "UsersLink"),
            group_link=_text(state, "GroupLink"),
            full_read_at=_time(state.get("FullReadAt")) if state is not None else None,
        )
        return _Rows(snapshot, bodies, state)


class _Rows:
    """What the partition holds: the snapshot, each bucket's JSON, the state row."""

    __slots__ = ("bodies", "snapshot", "state")

    def __init__(self, snapshot: DirectorySnapshot, bodies: dict[str, str], state: Any) -> None:
        self.snapshot = snapshot
        self.bodies = bodies
        self.state = state


def _bucket_count(items: int, per_bucket: int) -> int:
    count = 1
    while count * per_bucket < items:
        count *= 2
    return count


def _bucket(key: str, buckets: int) -> int:
    # crc32, not hash(): the bucket must be the same in every worker process.
    return zlib.crc32(key.encode()) % buckets


def _split(members: Iterable[Member], buckets: int) -> dict[int, list[Member]]:
    split: dict[int, list[Member]] = {}
    for member in members:
        split.setdefault(_bucket(member.user_id, buckets), []).append(member)
    return split


def _split_numbers(teams: Mapping[str, str], buckets: int) -> dict[int, dict[str, str]]:
    split: dict[int, dict[str, str]] = {}
    for number, target in sorted(teams.items()):
        split.setdefault(_bucket(number, buckets), {})[number] = target
    return split


def _property(key: str) -> str:
    return "Members" if key.startswith(_MEMBERS) else "Numbers"


def _key(tenant_id: str, row_key: str) -> dict[str, Any]:
    return {"PartitionKey": tenant_id, "RowKey": row_key}


def _text(state: Any, name: str) -> str | None:
    return (str(state.get(name) or "") or None) if state is not None else None


def _time(value: object) -> datetime | None:
    return value if isinstance(value, datetime) else None
