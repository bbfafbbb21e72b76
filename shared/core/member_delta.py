"""The voice group after a delta round: pure, so the rules of merging are tested on their own.

A delta run never reads the whole group. It starts from the stored member list and applies what
``users/delta`` (changed fields, deleted users) and ``groups/delta`` on the voice group (direct
members who joined or left) reported. Read order, on which the duplicate rule is defined, is kept:
a changed user stays where they were read, a joiner is read after everyone already known.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shared.core.directory import Member
from shared.core.records import DirectorySnapshot, GroupDelta, UserDelta

FULL_READ_SLACK = timedelta(minutes=1)
"""How much earlier than its interval a regular full read may come (see ``full_read_due``)."""


def apply_delta(
    members: Sequence[Member],
    *,
    changed: Mapping[str, Member],
    gone: Collection[str],
    joined: Sequence[Member],
) -> tuple[Member, ...]:
    """The member list after a delta round.

    ``changed`` holds users whose fields changed (only members are affected: a change to anyone
    else in the tenant is not the app's business); ``gone`` holds users deleted or no longer
    direct members; ``joined`` holds the new members, freshly read, in the order they joined.
    A joiner who is a member already (say, through a nested group) keeps their place.
    """
    kept: list[Member] = []
    for member in members:
        if member.user_id in gone:
            continue
        update = changed.get(member.user_id)
        kept.append(member if update is None else replace(
            update, read_position=member.read_position
        ))
    next_position = max((member.read_position for member in members), default=-1) + 1
    known = {member.user_id for member in kept}
    for member in joined:
        if member.user_id in known:
            continue
        kept.append(replace(changed.get(member.user_id, member), read_position=next_position))
        known.add(member.user_id)
        next_position += 1
    return tuple(kept)


def full_read_due(
    stored: DirectorySnapshot | None, interval: timedelta, now: datetime
) -> str | None:
    """Why this run must read everything (for the log and the run's summary), or None when the
    stored snapshot may be moved forward by delta queries."""
    if stored is None:
        return "no snapshot yet"
    if not (stored.users_link and stored.group_link):
        return "no delta links yet"
    # A minute's slack: the full read is stamped a few seconds into its tick, and the tick one
    # interval later may start a few seconds earlier in its own; without it every other
    # regular full read came a tick late (65 minutes instead of 60, benchmarks.latency).
    if stored.full_read_at is None or now - stored.full_read_at >= interval - FULL_READ_SLACK:
        return f"the regular full read (every {interval})"
    return None


def joiners_to_read(
    stored: DirectorySnapshot, user_round: UserDelta, group_round: GroupDelta
) -> list[str]:
    """The users who joined the voice group and must be read: a joiner whose fields are in
    this users round already is not read again."""
    known = {member.user_id for member in stored.members}
    changed = {member.user_id for member in user_round.changed}
    return [user_id for user_id in group_round.joined
            if user_id not in known and user_id not in changed]


@dataclass(frozen=True, slots=True)
class MovedForward:
    """The voice group after one delta round."""

    members: tuple[Member, ...]
    read_now: frozenset[str]
    """Members whose fields were read from Graph in this round (the rest are the snapshot's)."""
    joined: int
    """How many users joined the group in this round."""


def move_forward(
    stored: DirectorySnapshot,
    user_round: UserDelta,
    group_round: GroupDelta,
    fresh: Mapping[str, Member | None],
) -> MovedForward:
    """The stored members moved forward by one users round and one group round; ``fresh`` holds
    the joiners read for it (``joiners_to_read``; None: the user is gone again)."""
    known = {member.user_id for member in stored.members}
    changed = {member.user_id: member for member in user_round.changed}
    new_ids = [user_id for user_id in group_round.joined if user_id not in known]
    joined = [
        member for user_id in new_ids
        if (member := changed.get(user_id) or fresh.get(user_id)) is not None
    ]
    gone = (set(user_round.removed) | set(group_round.left)) - set(group_round.joined)
    members = apply_delta(stored.members, changed=changed, gone=gone, joined=joined)
    read_now = frozenset(changed) | frozenset(member.user_id for member in joined)
    return MovedForward(members, read_now & {m.user_id for m in members}, len(new_ids))
