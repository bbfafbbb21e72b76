"""What a run plans on: a full read of the voice group and Teams, or the stored snapshot moved
forward by delta queries.

A full read (``transitiveMembers`` + every Teams number) costs a page per 999 members and per
1,000 numbers; a delta run costs one page of ``users/delta`` and one of ``groups/delta`` when
little changed, plus one user read per joiner. A full read still runs:

* on the first run, and whenever the delta links are missing or Graph no longer knows them
  (``410 Gone``, tokens expire after 7 days);
* every ``full_read_interval`` (group delta sees direct members only, so a user added to a
  nested group waits for this read);
* at once when a group joined or left the voice group.

The snapshot is saved before anything is planned from it: the planner works from state, not
from events, so a run that crashes after the save still finds the work on the next run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from shared.core.directory import Member
from shared.core.errors import DeltaGoneError
from shared.core.member_delta import full_read_due, joiners_to_read, move_forward
from shared.core.records import (
    DirectorySnapshot,
    GroupDelta,
    OperationState,
    TeamsNumber,
    UserDelta,
)
from shared.service.context import TenantContext
from shared.service.ports import SnapshotStore, TeamsNumbers, UserReader, VoiceGroupDirectory

log = logging.getLogger(__name__)

ReadKind = Literal["full", "delta"]
_JOINER_READS_AT_ONCE = 16


@dataclass(frozen=True, slots=True)
class DirectoryRead:
    """The members and Teams numbers a run plans on, and how they were read."""

    kind: ReadKind
    why: str
    members: tuple[Member, ...]
    teams: dict[str, str]
    read_now: frozenset[str]
    """Users whose fields were read from Graph in this run (the rest come from the snapshot)."""


async def read_directory(context: TenantContext, *, now: datetime, dry_run: bool) -> DirectoryRead:
    """Read the tenant fully or by delta (see the module text), and store the new snapshot
    unless this is a dry run. With delta reads off (``context.limits``) every run is a full
    read."""
    ports, group_id = context.ports, str(context.tenant.voice_group_id)
    if not context.limits.delta_reads:
        members, numbers = await _full(ports.directory, ports.teams, group_id)
        return DirectoryRead("full", "delta reads are off", members, numbers,
                             frozenset(m.user_id for m in members))
    stored = await ports.snapshots.load()
    why = full_read_due(stored, context.limits.full_read_interval, now)
    users_link = stored.users_link if stored else None
    group_link = stored.group_link if stored else None
    if why is None and stored is not None and users_link and group_link:
        try:
            user_round, group_round = await asyncio.gather(
                ports.delta.user_changes(users_link), ports.delta.group_changes(group_link)
            )
        except DeltaGoneError as error:
            why, users_link, group_link = f"the delta links expired ({error})", None, None
        else:
            if not group_round.nested_changed:
                read = await _moved_forward(stored, user_round, group_round, ports.users)
                if not dry_run:
                    await _save(ports.snapshots, read, (user_round.link, group_round.link),
                                stored.full_read_at)
                return read
            why = "a group joined or left the voice group"
            users_link, group_link = user_round.link, group_round.link
    assert why is not None
    if users_link and group_link:
        links = (users_link, group_link)
    else:
        # Links taken before the read, so nothing that changes during it is missed.
        links = await asyncio.gather(ports.delta.users_link(), ports.delta.group_link(group_id))
    members, numbers = await _full(ports.directory, ports.teams, group_id)
    read = DirectoryRead("full", why, members, numbers, frozenset(m.user_id for m in members))
    if not dry_run:
        await _save(ports.snapshots, read, links, now)
    return read


async def _full(
    directory: VoiceGroupDirectory, teams: TeamsNumbers, group_id: str
) -> tuple[tuple[Member, ...], dict[str, str]]:
    members, numbers = await asyncio.gather(
        directory.read_members(group_id), teams.list_assignments()
    )
    return tuple(members), numbers


async def _moved_forward(
    stored: DirectorySnapshot,
    user_round: UserDelta,
    group_round: GroupDelta,
    users: UserReader,
) -> DirectoryRead:
    to_read = joiners_to_read(stored, user_round, group_round)
    gate = asyncio.Semaphore(_JOINER_READS_AT_ONCE)

    async def read(user_id: str) -> Member | None:
        async with gate:
            return await users.read_user(user_id)

    fresh = dict(zip(to_read, await asyncio.gather(*map(read, to_read)), strict=True))
    moved = move_forward(stored, user_round, group_round, fresh)
    log.info(
        "delta read: %d users changed, %d deleted, %d joined, %d left",
        len(user_round.changed), len(user_round.removed), moved.joined, len(group_round.left),
    )
    return DirectoryRead("delta", "delta links", moved.members, dict(stored.teams),
                         moved.read_now)


async def _save(
    snapshots: SnapshotStore,
    read: DirectoryRead,
    links: tuple[str, str],
    full_read_at: datetime | None,
) -> None:
    """Store what the run plans on, with the (users, group) delta links that continue from it."""
    await snapshots.save(
        DirectorySnapshot(read.members, read.teams, links[0], links[1], full_read_at),
        with_numbers=read.kind == "full",
    )


class TeamsWritesNoted:
    """``TeamsNumbers`` that records each of the app's own successful writes in the snapshot,
    so delta runs plan on Teams as it is after them (a full read would see the same)."""

    def __init__(self, teams: TeamsNumbers, snapshots: SnapshotStore) -> None:
        self._teams = teams
        self._snapshots = snapshots  # bound to the tenant, like every store

    async def list_assignments(self) -> dict[str, str]:
        """Every number Teams has on a target."""
        return await self._teams.list_assignments()

    async def find_number(self, number: str) -> TeamsNumber | None:
        """The number's Teams record, or None."""
        return await self._teams.find_number(number)

    async def assign_number(self, number: str, user_id: str) -> str:
        """Ask Teams to assign (see ``TeamsNumbers``); the number is noted on the user once a
        look finds it there (the queue function's ``NoteFound``), not when Teams accepts."""
        return await self._teams.assign_number(number, user_id)

    async def read_operation(self, location: str) -> OperationState:
        """One read of an assignment's operation."""
        return await self._teams.read_operation(location)

    async def unassign_number(self, number: str) -> None:
        """Unassign (see ``TeamsNumbers``), then note the number as on nobody."""
        await self._teams.unassign_number(number)
        await self._snapshots.note_number(number, None)
