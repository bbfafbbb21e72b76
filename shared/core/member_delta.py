"""The voice group after a delta round: pure, so the rules of merging are tested on their own.

A delta run never reads the whole group. It starts from the stored member list and applies what
``users/delta`` (changed fields, deleted users) and ``groups/delta`` on the voice group (direct
members who joined or left) reported. Read order, on which the duplicate rule is defined, is kept:
a changed user stays where they were read, a joiner is read after everyone already known.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from shared.core.directory import Member


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
