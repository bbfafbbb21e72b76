"""Read a directory snapshot file (the scenario format) into the planner's inputs.

The plan preview (``python -m shared.cli plan``) works offline on the same JSON files the Graph
simulator serves, so an operator can see what a tenant's plan would be before anything touches
Teams. Only what the planner needs is read; other keys (the simulator's ``behaviour``) are
ignored. Pure: parsing only; the caller reads the file.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from shared.core.directory import Claim, Member
from shared.core.planner import CurrentState
from shared.core.tenant_rules import TenantRules


class SnapshotError(ValueError):
    """A snapshot file that cannot be planned, with the field and value that are wrong."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True,
                              extra="ignore")


class _Tenant(_Model):
    id: Annotated[str, Field(min_length=1)]
    voice_group_id: Annotated[str, Field(min_length=1)]
    rules: TenantRules = TenantRules()


class _User(_Model):
    id: Annotated[str, Field(min_length=1)]
    user_principal_name: Annotated[str, Field(min_length=1)]
    business_phones: tuple[str, ...] = ()
    account_enabled: bool = True


class _Group(_Model):
    id: Annotated[str, Field(min_length=1)]
    members: tuple[str, ...] = ()


class _Assignment(_Model):
    telephone_number: str
    assignment_target_id: str | None = None


class _AppClaim(_Model):
    telephone_number: str
    user_id: str
    user_principal_name: str = ""
    assigned: bool = True


class _AppState(_Model):
    claims: tuple[_AppClaim, ...] = ()


class _Snapshot(_Model):
    tenant: _Tenant
    users: tuple[_User, ...] = ()
    groups: tuple[_Group, ...] = ()
    number_assignments: tuple[_Assignment, ...] = ()
    app_state: _AppState = _AppState()


@dataclass(frozen=True, slots=True)
class PlanInput:
    """Everything ``plan`` takes, read from a snapshot."""

    tenant_id: str
    members: tuple[Member, ...]
    rules: TenantRules
    state: CurrentState


def read_snapshot(text: str, source: str = "snapshot") -> PlanInput:
    """Parse a snapshot (scenario) JSON text.

    Raises:
        SnapshotError: naming the file, the field path and the offending value.
    """
    try:
        data = json.loads(text)
    except ValueError as error:
        raise SnapshotError(f"{source}: not JSON: {error}") from None
    try:
        snapshot = _Snapshot.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        if first["type"] == "missing":
            raise SnapshotError(f"{source}: {where}: missing") from None
        raise SnapshotError(
            f"{source}: {where}={first.get('input')!r}: {first['msg']}"
        ) from None
    groups = {group.id: group for group in snapshot.groups}
    if snapshot.tenant.voice_group_id not in groups:
        raise SnapshotError(
            f"{source}: tenant.voiceGroupId={snapshot.tenant.voice_group_id!r}: no such group"
        )
    users = {user.id: user for user in snapshot.users}
    upns = {user.id: user.user_principal_name for user in snapshot.users}
    ordered = _transitive_users(snapshot.tenant.voice_group_id, groups, users)
    members = tuple(
        Member(
            user_id=user.id,
            user_principal_name=user.user_principal_name,
            business_phones=tuple(phone for phone in user.business_phones if phone),
            account_enabled=user.account_enabled,
            read_position=position,
        )
        for position, user in enumerate(ordered)
    )
    claims = {
        claim.telephone_number: Claim(
            number=claim.telephone_number,
            holder_user_id=claim.user_id,
            holder_upn=claim.user_principal_name or upns.get(claim.user_id, claim.user_id),
            run_id="",
            read_position=0,
            assigned=claim.assigned,
        )
        for claim in snapshot.app_state.claims
    }
    teams = {
        assignment.telephone_number: assignment.assignment_target_id
        for assignment in snapshot.number_assignments
        if assignment.assignment_target_id
    }
    return PlanInput(snapshot.tenant.id, members, snapshot.tenant.rules,
                     CurrentState(claims=claims, teams=teams))


def _transitive_users(
    group_id: str, groups: dict[str, _Group], users: dict[str, _User]
) -> Sequence[_User]:
    """Users reachable from the group, depth-first in member order, each once (cycles safe)."""
    seen_groups: set[str] = set()
    seen_users: set[str] = set()
    ordered: list[_User] = []

    def visit(current: str) -> None:
        seen_groups.add(current)
        for member_id in groups[current].members:
            if member_id in users and member_id not in seen_users:
                seen_users.add(member_id)
                ordered.append(users[member_id])
            elif member_id in groups and member_id not in seen_groups:
                visit(member_id)

    visit(group_id)
    return ordered
