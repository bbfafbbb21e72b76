"""In-memory implementations of ``shared.ports`` for fast unit tests.

The contract tests in ``tests/contract`` run the same assertions against these and against the
Azurite-backed adapters, so a fake cannot quietly behave differently from the real thing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shared.config import NumberType
from shared.directory import Claim, Member
from shared.errors import PermanentError, TemporaryError
from shared.messages import AssignmentMessage
from shared.ports import TeamsNumber, UserStatus


class FakeClaimStore:
    """Claims in a dict; insert-if-absent like the table."""

    def __init__(self) -> None:
        self.claims: dict[tuple[str, str], Claim] = {}
        self._lock = asyncio.Lock()

    async def list_claims(self, tenant_id: str) -> dict[str, Claim]:
        return {number: c for (tenant, number), c in self.claims.items() if tenant == tenant_id}

    async def claim(self, tenant_id: str, claim: Claim) -> Claim:
        async with self._lock:
            return self.claims.setdefault((tenant_id, claim.number), claim)


class FakeStatusStore:
    """Latest status per (tenant, user); a newer run is never overwritten by an older one."""

    def __init__(self) -> None:
        self.statuses: dict[tuple[str, str], UserStatus] = {}

    async def record(self, tenant_id: str, status: UserStatus) -> None:
        existing = self.statuses.get((tenant_id, status.user_id))
        if existing is not None and existing.run_id > status.run_id:
            return
        self.statuses[(tenant_id, status.user_id)] = status

    async def list_statuses(self, tenant_id: str) -> list[UserStatus]:
        return [s for (tenant, _), s in self.statuses.items() if tenant == tenant_id]


class FakeTeamsNumbers:
    """Teams numbers in a dict; can be told to refuse or to fail temporarily."""

    def __init__(self, existing: dict[str, str] | None = None) -> None:
        self.assignments: dict[str, str] = dict(existing or {})
        self.assign_calls: list[tuple[str, str, NumberType]] = []
        self.refusal: PermanentError | None = None
        self.temporary: TemporaryError | None = None

    async def find_number(self, number: str) -> TeamsNumber | None:
        target = self.assignments.get(number)
        return None if target is None else TeamsNumber(number, target, "activated")

    async def assign_number(self, number: str, user_id: str, number_type: NumberType) -> None:
        self.assign_calls.append((number, user_id, number_type))
        if self.temporary is not None:
            raise self.temporary
        if self.refusal is not None:
            raise self.refusal
        for held, target in list(self.assignments.items()):
            if target == user_id:
                del self.assignments[held]
        self.assignments[number] = user_id


class FakeDirectory:
    """A voice group whose members are given in read order."""

    def __init__(self, members: Sequence[Member]) -> None:
        self.members = list(members)

    async def read_members(self, group_id: str) -> list[Member]:
        del group_id
        return list(self.members)


class FakeQueue:
    """Collects what was sent."""

    def __init__(self) -> None:
        self.sent: list[AssignmentMessage] = []

    async def send(self, messages: Sequence[AssignmentMessage]) -> None:
        self.sent.extend(messages)
