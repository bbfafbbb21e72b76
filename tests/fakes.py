"""In-memory implementations of ``shared.service.ports`` for fast unit tests, and
``fake_context``: a ``TenantContext`` of fresh fakes.

The contract tests in ``tests/contract`` run the same assertions against these and against the
Azurite-backed adapters, so a fake cannot quietly behave differently from the real thing. Like
the adapters, each store is bound to one tenant at construction; its rows are keyed like the
table's, (PartitionKey, RowKey), so a test reads them as ``store.claims[(tenant, number)]``.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from shared.core.audit import (
    MARKER_PREFIX,
    AuditEntry,
    AuditMonth,
    entry_keys,
    marker_row_key,
    partition_month,
)
from shared.core.directory import Claim, Member
from shared.core.errors import PermanentError, TemporaryError
from shared.core.messages import AssignmentMessage
from shared.core.operation_wait import OperationWait
from shared.core.outcomes import Outcome, Reason, UserResult, counts_as_attempt
from shared.core.policy_planner import PolicyGrant
from shared.core.records import (
    DirectorySnapshot,
    GroupDelta,
    Hold,
    InFlight,
    OperationState,
    RunRecord,
    TeamsNumber,
    UserDelta,
    UserStatus,
)
from shared.core.request_pace import Pace, SlotBlock
from shared.core.teams_readiness import TeamsUser
from shared.core.telemetry_events import (
    DimensionValue,
    TelemetryEvent,
    counter_name,
    event_record,
)
from shared.core.tenant_registry import (
    NumberType,
    RegistryError,
    SyncSchedule,
    TenantExistsError,
    TenantHealth,
    TenantNotFoundError,
    TenantRecord,
    TenantSettings,
    stored_record,
)
from shared.core.tenant_rules import TenantRules
from shared.service.context import TenantContext, TenantLimits, TenantPorts
from shared.service.message_handler import process_assignment
from shared.service.ports import (
    AssignmentQueue,
    AuditLog,
    ClaimStore,
    DirectoryDelta,
    EventSink,
    InFlightStore,
    OperationWaits,
    PolicyGrantStore,
    RunLedger,
    SnapshotStore,
    StatusStore,
    TeamsNumbers,
    TeamsPolicies,
    TeamsUserReader,
    UserReader,
    VoiceGroupDirectory,
)

TENANT = TenantSettings(
    tenant_id=UUID("7e1b2c3d-0000-4000-8000-000000000001"),
    voice_group_id=UUID("7e1b2c3d-0000-4000-8000-000000000002"),
    number_type=NumberType.OPERATOR_CONNECT,
)
"""The tenant of ``fake_context`` (and of the unit tests)."""
NOW = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
"""Where ``fake_context``'s clock starts."""


class FakeClaimStore:
    """Claims in a dict; insert-if-absent like the table."""

    def __init__(self, tenant_id: str) -> None:
        self._tenant_id = tenant_id
        self.claims: dict[tuple[str, str], Claim] = {}
        self._lock = asyncio.Lock()

    async def list_claims(self) -> dict[str, Claim]:
        return {
            number: c for (tenant, number), c in self.claims.items() if tenant == self._tenant_id
        }

    async def get_claim(self, number: str) -> Claim | None:
        return self.claims.get((self._tenant_id, number))

    async def claim(self, claim: Claim) -> Claim:
        async with self._lock:
            return self.claims.setdefault((self._tenant_id, claim.number), claim)

    async def claim_all(self, claims: Sequence[Claim]) -> None:
        for claim in claims:
            await self.claim(claim)

    async def transfer(self, from_user_id: str, claim: Claim) -> Claim:
        async with self._lock:
            stored = self.claims.get((self._tenant_id, claim.number))
            if stored is None or (stored.holder_user_id == from_user_id and not stored.assigned):
                self.claims[(self._tenant_id, claim.number)] = claim
                return claim
            return stored

    async def mark_assigned(self, number: str, user_id: str) -> bool:
        async with self._lock:
            stored = self.claims.get((self._tenant_id, number))
            if stored is None or stored.holder_user_id != user_id:
                return False
            self.claims[(self._tenant_id, number)] = replace(stored, assigned=True)
            return True

    async def mark_assigning(
        self, number: str, user_id: str, since: datetime | None
    ) -> bool:
        async with self._lock:
            stored = self.claims.get((self._tenant_id, number))
            if stored is None or stored.holder_user_id != user_id:
                return False
            if since is None and stored.assigned:
                return True
            self.claims[(self._tenant_id, number)] = replace(stored, assigning_since=since)
            return True

    async def release(
        self, number: str, user_id: str, *, cooling_since: datetime | None = None
    ) -> bool:
        async with self._lock:
            stored = self.claims.get((self._tenant_id, number))
            if stored is None or stored.holder_user_id != user_id:
                return False
            if cooling_since is None:
                del self.claims[(self._tenant_id, number)]
            else:
                self.claims[(self._tenant_id, number)] = replace(
                    stored, assigned=False, released_at=cooling_since, release_pending_since=None,
                    assigning_since=None,
                )
            return True

    async def set_release_pending(
        self, number: str, user_id: str, since: datetime | None
    ) -> bool:
        async with self._lock:
            stored = self.claims.get((self._tenant_id, number))
            if stored is None or stored.holder_user_id != user_id:
                return False
            self.claims[(self._tenant_id, number)] = replace(stored, release_pending_since=since)
            return True


class FakeStatusStore:
    """Latest status per (tenant, user); a newer run is never overwritten by an older one."""

    def __init__(self, tenant_id: str) -> None:
        self._tenant_id = tenant_id
        self.statuses: dict[tuple[str, str], UserStatus] = {}

    async def record(self, status: UserStatus) -> None:
        existing = self.statuses.get((self._tenant_id, status.user_id))
        if existing is not None and existing.run_id > status.run_id:
            return
        counted = counts_as_attempt(status.outcome, status.reason)
        self.statuses[(self._tenant_id, status.user_id)] = replace(
            status,
            first_seen=(existing.first_seen if existing else None) or status.updated_at,
            attempts=((existing.attempts if existing else 0) + 1) if counted else 0,
        )

    async def record_first(self, statuses: Sequence[UserStatus]) -> None:
        for status in statuses:
            await self.record(status)

    async def list_statuses(self) -> list[UserStatus]:
        return [s for (tenant, _), s in self.statuses.items() if tenant == self._tenant_id]

    async def get_status(self, user_id: str) -> UserStatus | None:
        return self.statuses.get((self._tenant_id, user_id))


class FakeTeamsNumbers:
    """Teams numbers in a dict; can be told to refuse or to fail temporarily."""

    def __init__(
        self,
        existing: dict[str, str] | None = None,
        *,
        number_type: NumberType = NumberType.OPERATOR_CONNECT,
    ) -> None:
        self.assignments: dict[str, str] = dict(existing or {})
        self.number_type = number_type
        """The tenant's number type (bound at composition, like the Graph adapter's)."""
        self.assign_calls: list[tuple[str, str, NumberType]] = []
        self.unassign_calls: list[tuple[str, NumberType]] = []
        self.refusal: PermanentError | None = None
        self.temporary: TemporaryError | None = None
        self.on_assigned: list[Callable[[str, str], None]] = []
        """Called with (number, user id) after each assignment that succeeded."""
        self.refuse_target: Callable[[str], PermanentError | None] = lambda user_id: None
        """Teams' refusal of a target (not in Teams, no licence), like the simulator's."""
        self.operations: dict[str, tuple[str, str, str, str]] = {}
        """Location → (number, user id, status, detail) of every accepted assignment."""
        self.operation_reads: list[str] = []
        self.hold_operations = False
        """Leave accepted assignments running until ``finish_operations``."""
        self.fail_operations: str | None = None
        """Finish assignments ``failed`` with this detail text instead."""

    async def list_assignments(self) -> dict[str, str]:
        return dict(self.assignments)

    async def unassign_number(self, number: str) -> None:
        self.unassign_calls.append((number, self.number_type))
        if self.temporary is not None:
            raise self.temporary
        self.assignments.pop(number, None)

    async def find_number(self, number: str) -> TeamsNumber | None:
        target = self.assignments.get(number)
        if target is not None:
            return TeamsNumber(number, target, "activated")
        pending = next((op for op in self.operations.values()
                        if op[0] == number and op[2] == "running"), None)
        return None if pending is None else TeamsNumber(number, pending[1], "assignmentPending")

    async def assign_number(self, number: str, user_id: str) -> str:
        """Accept the assignment as an operation: carried out at once, or (``hold_operations``)
        left running until ``finish_operations``; refusals of the request come at once."""
        self.assign_calls.append((number, user_id, self.number_type))
        if self.temporary is not None:
            raise self.temporary
        if self.refusal is not None:
            raise self.refusal
        refused = self.refuse_target(user_id)
        if refused is not None:
            raise refused
        if self.assignments.get(number, user_id) != user_id:
            raise PermanentError(
                Reason.ASSIGNED_ELSEWHERE,
                f"Telephone Number '{number}' has already been assigned to another user",
            )
        location = f"https://graph.example/operations('{len(self.operations) + 1}')"
        self.operations[location] = (number, user_id, "running", "")
        if not self.hold_operations:
            self._finish(location)
        return location

    async def read_operation(self, location: str) -> OperationState:
        self.operation_reads.append(location)
        if self.temporary is not None:
            raise self.temporary
        operation = self.operations.get(location)
        if operation is None:
            raise PermanentError(Reason.ASSIGNMENT_FAILED, f"Operation {location} not found")
        return OperationState(operation[2], operation[3])

    def finish_operations(self) -> None:
        """Carry out every operation still running (as ``fail_operations`` says)."""
        for location, operation in list(self.operations.items()):
            if operation[2] == "running":
                self._finish(location)

    def _finish(self, location: str) -> None:
        number, user_id, _, _ = self.operations[location]
        if self.fail_operations is not None:
            self.operations[location] = (number, user_id, "failed", self.fail_operations)
            return
        for held, target in list(self.assignments.items()):
            if target == user_id:
                del self.assignments[held]
        self.assignments[number] = user_id
        self.operations[location] = (number, user_id, "succeeded", "")
        for listener in self.on_assigned:
            listener(number, user_id)


class FakeTeamsUsers:
    """Teams user configurations, like the simulator's ``teams`` profiles.

    A user is known to Teams and licensed for Teams Phone unless told otherwise (``set``); their
    numbers are the ones ``teams`` has on them, and an assignment turns Enterprise Voice on
    unless ``assign_enables_ev`` is false (the simulator's ``assignEnablesEnterpriseVoice``).
    """

    def __init__(self, teams: FakeTeamsNumbers, *, assign_enables_ev: bool = True) -> None:
        self.teams = teams
        self.assign_enables_ev = assign_enables_ev
        self.present: dict[str, bool] = {}
        self.licensed: dict[str, bool] = {}
        self.voice_enabled: dict[str, bool] = {}
        self.numbers_hidden: set[str] = set()
        """Users whose configuration shows no number (a read-back that does not agree)."""
        self.failure: Exception | None = None
        self.reads: list[str] = []
        teams.on_assigned.append(self._assigned)
        teams.refuse_target = self._refusal

    def set(
        self,
        user_id: str,
        *,
        present: bool | None = None,
        licensed: bool | None = None,
        voice_enabled: bool | None = None,
    ) -> None:
        """Make the user appear in or vanish from Teams, (un)licensed, EV on or off."""
        if present is not None:
            self.present[user_id] = present
        if licensed is not None:
            self.licensed[user_id] = licensed
        if voice_enabled is not None:
            self.voice_enabled[user_id] = voice_enabled

    def _refusal(self, user_id: str) -> PermanentError | None:
        if not self.present.get(user_id, True):
            return PermanentError(Reason.USER_NOT_FOUND, f"The user '{user_id}' is not found")
        if not self.licensed.get(user_id, True):
            return PermanentError(
                Reason.NOT_LICENSED, f"User '{user_id}' lacks appropriate licenses"
            )
        return None

    def _assigned(self, number: str, user_id: str) -> None:
        del number
        if self.assign_enables_ev:
            self.voice_enabled[user_id] = True

    async def read(self, user_id: str) -> TeamsUser | None:
        self.reads.append(user_id)
        if self.failure is not None:
            raise self.failure
        if not self.present.get(user_id, True):
            return None
        numbers = () if user_id in self.numbers_hidden else tuple(
            number for number, target in self.teams.assignments.items() if target == user_id
        )
        return TeamsUser(
            user_id=user_id,
            enterprise_voice_enabled=self.voice_enabled.get(user_id, False),
            telephone_numbers=numbers,
            licensed_for_phone=self.licensed.get(user_id, True),
        )


class FakeUsers:
    """Fresh reads of single users."""

    def __init__(self, members: Sequence[Member] = ()) -> None:
        self.users = {member.user_id: member for member in members}

    async def read_user(self, user_id: str) -> Member | None:
        return self.users.get(user_id)


class FakeDirectory:
    """A voice group whose members are given in read order."""

    def __init__(self, members: Sequence[Member]) -> None:
        self.members = list(members)

    async def read_members(self, group_id: str) -> list[Member]:
        del group_id
        return list(self.members)


class FakeOperationWaits:
    """Implements ``OperationWaits`` in memory: the wait and every look it was told of."""

    def __init__(self, wait: OperationWait | None = None) -> None:
        self.wait = wait or OperationWait()
        self.looks: list[tuple[float, bool]] = []

    async def current(self) -> OperationWait:
        return self.wait

    async def observe(self, elapsed_seconds: float, done: bool) -> None:
        self.looks.append((elapsed_seconds, done))
        self.wait = self.wait.observe(elapsed_seconds, done, NOW)


class FakeQueue:
    """Collects what was sent."""

    def __init__(self) -> None:
        self.sent: list[AssignmentMessage] = []
        self.later: list[tuple[AssignmentMessage, int]] = []

    async def send(self, messages: Sequence[AssignmentMessage]) -> None:
        self.sent.extend(messages)

    async def send_later(self, message: AssignmentMessage, delay_seconds: int) -> None:
        self.later.append((message, delay_seconds))


class FakeInFlightStore:
    """In-flight markers in a dict keyed like the table's rows."""

    def __init__(self, tenant_id: str) -> None:
        self._tenant_id = tenant_id
        self.markers: dict[tuple[str, str, str], InFlight] = {}

    async def list_in_flight(self, now: datetime) -> list[InFlight]:
        return [m for (tenant, _, _), m in self.markers.items()
                if tenant == self._tenant_id and m.expires_at > now]

    async def mark_queued(self, markers: Sequence[InFlight]) -> None:
        for marker in markers:
            self.markers[(self._tenant_id, marker.user_id, marker.kind)] = marker

    async def clear(self, user_id: str, kind: str, idempotency_key: str) -> None:
        stored = self.markers.get((self._tenant_id, user_id, kind))
        if stored is not None and stored.idempotency_key == idempotency_key:
            del self.markers[(self._tenant_id, user_id, kind)]


class FakeRunLedger:
    """Run records, lease, holds and effect markers in dicts."""

    def __init__(self, tenant_id: str) -> None:
        self._tenant_id = tenant_id
        self.leases: dict[str, tuple[str, datetime]] = {}
        self.run_records: dict[tuple[str, str], RunRecord] = {}
        self.hold_rows: dict[tuple[str, str], Hold] = {}
        self.effects: dict[tuple[str, str], datetime] = {}

    async def acquire_lease(
        self, run_id: str, now: datetime, ttl: timedelta
    ) -> str | None:
        current = self.leases.get(self._tenant_id)
        if current is not None and current[1] > now:
            return current[0]
        self.leases[self._tenant_id] = (run_id, now + ttl)
        return None

    async def release_lease(self, run_id: str) -> None:
        current = self.leases.get(self._tenant_id)
        if current is not None and current[0] == run_id:
            del self.leases[self._tenant_id]

    async def record_run(self, record: RunRecord) -> None:
        self.run_records[(self._tenant_id, record.run_id)] = record

    async def runs(self) -> list[RunRecord]:
        return sorted(
            (r for (t, _), r in self.run_records.items() if t == self._tenant_id),
            key=lambda r: r.run_id,
        )

    async def save_holds(self, holds: list[Hold]) -> None:
        for hold in holds:
            self.hold_rows.setdefault((self._tenant_id, hold.key), hold)

    async def holds(self, status: str | None = None) -> list[Hold]:
        return sorted(
            (h for (t, _), h in self.hold_rows.items()
             if t == self._tenant_id and (status is None or h.status == status)),
            key=lambda h: h.key,
        )

    async def update_hold(self, hold: Hold) -> None:
        self.hold_rows[(self._tenant_id, hold.key)] = hold

    async def effect_done(self, key: str) -> bool:
        return (self._tenant_id, key) in self.effects

    async def mark_effect_done(self, key: str, at: datetime) -> None:
        self.effects[(self._tenant_id, key)] = at


class FakeSnapshotStore:
    """The directory snapshot in a dict; counts saves so tests can see what was written."""

    def __init__(self, tenant_id: str) -> None:
        self._tenant_id = tenant_id
        self.snapshots: dict[str, DirectorySnapshot] = {}
        self.saves = 0

    async def load(self) -> DirectorySnapshot | None:
        return self.snapshots.get(self._tenant_id)

    async def save(
        self, snapshot: DirectorySnapshot, *, with_numbers: bool
    ) -> None:
        self.saves += 1
        stored = self.snapshots.get(self._tenant_id)
        teams = snapshot.teams if with_numbers or stored is None else stored.teams
        self.snapshots[self._tenant_id] = replace(
            snapshot, teams=dict(teams),
            members=tuple(sorted(snapshot.members, key=lambda member: member.read_position)),
        )

    async def note_number(self, number: str, target_id: str | None) -> None:
        stored = self.snapshots.get(self._tenant_id)
        if stored is None:
            return
        if target_id is None:
            stored.teams.pop(number, None)
        else:
            stored.teams[number] = target_id

    async def has_member(self, user_id: str) -> bool | None:
        stored = self.snapshots.get(self._tenant_id)
        if stored is None:
            return None
        return any(member.user_id == user_id for member in stored.members)


class FakePolicyGrantStore:
    """Main-number policy grants in a dict, by (tenant, user)."""

    def __init__(self, tenant_id: str) -> None:
        self._tenant_id = tenant_id
        self.grants: dict[tuple[str, str], PolicyGrant] = {}

    async def list_grants(self) -> dict[str, PolicyGrant]:
        return {user: g for (tenant, user), g in self.grants.items() if tenant == self._tenant_id}

    async def get_grant(self, user_id: str) -> PolicyGrant | None:
        return self.grants.get((self._tenant_id, user_id))

    async def save_grant(self, grant: PolicyGrant) -> None:
        self.grants[(self._tenant_id, grant.user_id)] = grant

    async def remove_grant(self, user_id: str) -> bool:
        return self.grants.pop((self._tenant_id, user_id), None) is not None


class FakePaceStore:
    """Next free times in a dict, by partition (a tenant id, or ``APP_PACE_PARTITION``); pass
    one dict to several stores to play several instances."""

    def __init__(self, partition: str, next_free: dict[str, float] | None = None) -> None:
        self._partition = partition
        self.next_free: dict[str, float] = {} if next_free is None else next_free
        self.reservations: list[SlotBlock] = []

    async def reserve(self, pace: Pace, now: float) -> SlotBlock:
        # No await between the read and the write: atomic, as the table's ETag makes it.
        block = pace.reserve(self.next_free.get(self._partition), now)
        self.next_free[self._partition] = block.end
        self.reservations.append(block)
        return block


class FakeDirectoryDelta:
    """Delta links on which nothing changes, unless a test queues rounds
    (``user_rounds``, ``group_rounds``: each read takes the first)."""

    def __init__(self) -> None:
        self.user_rounds: list[UserDelta] = []
        self.group_rounds: list[GroupDelta] = []

    async def users_link(self) -> str:
        return "users-delta-latest"

    async def group_link(self, group_id: str) -> str:
        return f"groups-delta-{group_id}-latest"

    async def user_changes(self, link: str) -> UserDelta:
        return self.user_rounds.pop(0) if self.user_rounds else UserDelta((), (), link)

    async def group_changes(self, link: str) -> GroupDelta:
        return self.group_rounds.pop(0) if self.group_rounds else GroupDelta((), (), False, link)


class FakeTeamsPolicies:
    """Teams policies by (type, name) → id; the policies each user was given directly."""

    def __init__(self, ids: dict[tuple[str, str], str] | None = None) -> None:
        self.ids: dict[tuple[str, str], str] = dict(ids or {})
        self.assigned: dict[str, dict[str, str]] = {}

    async def policy_id(self, policy_type: str, name: str) -> str:
        policy_id = self.ids.get((policy_type, name))
        if policy_id is None:
            raise PermanentError(
                Reason.POLICY_NOT_FOUND, f"No {policy_type} policy is called {name!r}"
            )
        return policy_id

    async def assign_policies(self, user_id: str, assignments: Sequence[tuple[str, str]]) -> None:
        self.assigned.setdefault(user_id, {}).update(assignments)

    async def unassign_policies(self, user_id: str, policy_types: Sequence[str]) -> None:
        for policy_type in policy_types:
            self.assigned.get(user_id, {}).pop(policy_type, None)


class FakeTenantRegistry:
    """Tenant records as the table keeps them, JSON text by tenant id (``rows``): a test may
    write a hand-edited row there."""

    def __init__(self) -> None:
        self.rows: dict[str, str] = {}

    async def list_tenants(self) -> list[TenantRecord]:
        records, problems = await self.list_readable_tenants()
        if problems:
            raise problems[0]
        return records

    async def list_readable_tenants(self) -> tuple[list[TenantRecord], list[RegistryError]]:
        records, problems = [], []
        for key in sorted(self.rows):
            try:
                records.append(self._record(key))
            except RegistryError as problem:
                problems.append(problem)
        return records, problems

    async def get(self, tenant_id: str) -> TenantRecord | None:
        return self._record(tenant_id) if tenant_id in self.rows else None

    async def add(self, record: TenantRecord) -> None:
        if record.key in self.rows:
            raise TenantExistsError(f"tenant {record.key} is registered already")
        self.rows[record.key] = record.to_json()

    async def update(
        self, tenant_id: str, change: Callable[[TenantRecord], TenantRecord]
    ) -> TenantRecord:
        # No await between the read and the write: atomic, as the table's ETag makes it.
        if tenant_id not in self.rows:
            raise TenantNotFoundError(f"tenant {tenant_id} is not registered")
        record = self._record(tenant_id)
        changed = change(record)
        if changed.key != record.key:
            raise RegistryError(
                f"{record}: tenantId={changed.key!r}: a change may not give a tenant another id"
            )
        self.rows[tenant_id] = changed.to_json()
        return changed

    def _record(self, tenant_id: str) -> TenantRecord:
        return stored_record(self.rows[tenant_id], tenant_id, f"tenants table row {tenant_id!r}")


class FakeTenantHealthStore:
    """Tenants' health and sync times in dicts, by tenant id."""

    def __init__(self) -> None:
        self.healths: dict[str, TenantHealth] = {}
        self.schedules: dict[str, SyncSchedule] = {}

    async def health(self, tenant_id: str) -> TenantHealth | None:
        return self.healths.get(tenant_id)

    async def list_health(self) -> dict[str, TenantHealth]:
        return dict(self.healths)

    async def save_health(self, health: TenantHealth) -> None:
        self.healths[health.tenant_id] = health

    async def schedule(self, tenant_id: str) -> SyncSchedule:
        return self.schedules.get(tenant_id, SyncSchedule(tenant_id))

    async def list_schedules(self) -> dict[str, SyncSchedule]:
        return dict(self.schedules)

    async def mark_enqueued(self, tenant_id: str, at: datetime) -> None:
        self.schedules[tenant_id] = replace(await self.schedule(tenant_id), enqueued_at=at)

    async def mark_started(self, tenant_id: str, at: datetime) -> None:
        self.schedules[tenant_id] = replace(await self.schedule(tenant_id), started_at=at)

    async def mark_finished(self, tenant_id: str, at: datetime) -> None:
        self.schedules[tenant_id] = replace(await self.schedule(tenant_id), finished_at=at)


class FakeAuditLog:
    """The audit table in a dict keyed (PartitionKey, RowKey) like the table's, markers
    included; create-only like the adapter."""

    def __init__(self, tenant_id: str) -> None:
        self._tenant_id = tenant_id
        self.rows: dict[tuple[str, str], AuditEntry | str] = {}

    async def record(self, entry: AuditEntry) -> bool:
        partition, row = entry_keys(self._tenant_id, entry)
        keys = [(partition, row)]
        if entry.dedupe_key is not None:
            keys.append((partition, marker_row_key(entry.dedupe_key)))
        if any(key in self.rows for key in keys):
            return False
        self.rows[(partition, row)] = entry
        if entry.dedupe_key is not None:
            self.rows[keys[1]] = row
        return True

    async def entries(self, since: datetime, until: datetime) -> list[AuditEntry]:
        mine = sorted(
            (key, row) for key, row in self.rows.items()
            if isinstance(row, AuditEntry) and partition_month(self._tenant_id, key[0])
        )
        return [row for _, row in mine
                if isinstance(row, AuditEntry) and since <= row.at <= until]

    async def purge_before(self, month: AuditMonth) -> dict[AuditMonth, int]:
        gone: dict[AuditMonth, int] = {}
        for key in sorted(self.rows):
            of = partition_month(self._tenant_id, key[0])
            if of is not None and of < month:
                del self.rows[key]
                if not key[1].startswith(MARKER_PREFIX):
                    gone[of] = gone.get(of, 0) + 1
                else:
                    gone.setdefault(of, 0)
        return gone

    def recorded(self) -> list[AuditEntry]:
        """Every entry, in key order (time order within a month)."""
        return [row for _, row in sorted(self.rows.items()) if isinstance(row, AuditEntry)]


class SettableClock:
    """A clock the test sets (``clock.now = ...``)."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def deliver(
    context: TenantContext,
    message: AssignmentMessage,
    *,
    redelivered: bool = False,
    final_attempt: bool = False,
) -> UserResult | None:
    """Process ``message`` as the queue function does and, while it waits on the (fake) queue
    for a Teams operation, deliver it again once its wait is over (the clock, a
    ``SettableClock``, moved on by the wait): the change as the host would end it."""
    queue, clock = context.ports.queue, context.clock
    assert isinstance(queue, FakeQueue)
    assert isinstance(clock, SettableClock)
    result = await process_assignment(
        context, message, redelivered=redelivered, final_attempt=final_attempt
    )
    while (result is None and queue.later
           and queue.later[-1][0].idempotency_key == message.idempotency_key
           and queue.later[-1][0].operation_location is not None):
        message, delay = queue.later.pop()
        clock.now += timedelta(seconds=delay)
        result = await process_assignment(context, message, final_attempt=final_attempt)
    return result


def fake_context(
    *,
    tenant: TenantSettings = TENANT,
    rules: TenantRules | None = None,
    clock: Callable[[], datetime] | None = None,
    limits: TenantLimits | None = None,
    directory: VoiceGroupDirectory | None = None,
    users: UserReader | None = None,
    teams_users: TeamsUserReader | None = None,
    teams: TeamsNumbers | None = None,
    delta: DirectoryDelta | None = None,
    snapshots: SnapshotStore | None = None,
    claims: ClaimStore | None = None,
    statuses: StatusStore | None = None,
    queue: AssignmentQueue | None = None,
    ledger: RunLedger | None = None,
    policies: TeamsPolicies | None = None,
    grants: PolicyGrantStore | None = None,
    in_flight: InFlightStore | None = None,
    audit: AuditLog | None = None,
    events: EventSink | None = None,
    operation_waits: OperationWaits | None = None,
) -> TenantContext:
    """A tenant context of fresh, empty fakes bound to ``tenant``, with the given ones instead.

    The defaults are the unit tests': ``TenantRules()``, a ``SettableClock`` at ``NOW``, and
    the default limits with delta reads off (every run reads the fake directory in full).
    ``teams_users`` follows ``teams`` when that is a ``FakeTeamsNumbers``.
    """
    key = tenant.key
    teams = teams if teams is not None else FakeTeamsNumbers(number_type=tenant.number_type)
    if teams_users is None:
        teams_users = FakeTeamsUsers(
            teams if isinstance(teams, FakeTeamsNumbers) else FakeTeamsNumbers()
        )
    return TenantContext(
        tenant=tenant,
        rules=rules if rules is not None else TenantRules(),
        clock=clock if clock is not None else SettableClock(),
        limits=limits if limits is not None else TenantLimits(delta_reads=False),
        ports=TenantPorts(
            directory=directory if directory is not None else FakeDirectory(()),
            users=users if users is not None else FakeUsers(),
            teams_users=teams_users,
            teams=teams,
            delta=delta if delta is not None else FakeDirectoryDelta(),
            snapshots=snapshots if snapshots is not None else FakeSnapshotStore(key),
            claims=claims if claims is not None else FakeClaimStore(key),
            statuses=statuses if statuses is not None else FakeStatusStore(key),
            queue=queue if queue is not None else FakeQueue(),
            ledger=ledger if ledger is not None else FakeRunLedger(key),
            policies=policies if policies is not None else FakeTeamsPolicies(),
            grants=grants if grants is not None else FakePolicyGrantStore(key),
            in_flight=in_flight if in_flight is not None else FakeInFlightStore(key),
            audit=audit if audit is not None else FakeAuditLog(key),
            operation_waits=(operation_waits if operation_waits is not None
                             else FakeOperationWaits()),
        ),
        events=events if events is not None else RecordedEvents(),
    )


EventT = TypeVar("EventT", bound=TelemetryEvent)


class RecordedEvents:
    """Implements ``EventSink`` in memory: the events in the order emitted, the counts by
    (tenant, outcome). Refuses what the real sink refuses (a dimension that is not text or a
    number, an outcome without a counter, a negative amount)."""

    def __init__(self) -> None:
        self.events: list[TelemetryEvent] = []
        self.counts: Counter[tuple[str, Outcome]] = Counter()

    def emit(self, event: TelemetryEvent) -> None:
        """Keep the event (checked as the real sink checks it)."""
        event_record(event)
        self.events.append(event)

    def count(self, tenant_id: str, outcome: Outcome, amount: int = 1) -> None:
        """Add to the tenant's count of ``outcome``."""
        counter_name(outcome)
        if amount < 0:
            raise ValueError(f"amount={amount!r}: a count only grows")
        if amount:
            self.counts[(tenant_id, outcome)] += amount

    def records(self) -> list[tuple[str, dict[str, DimensionValue]]]:
        """Each event as its name and dimensions, in order."""
        return [event_record(event) for event in self.events]

    def of(self, kind: type[EventT]) -> list[EventT]:
        """The events of one type, in order."""
        return [event for event in self.events if isinstance(event, kind)]
