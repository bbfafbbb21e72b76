"""The interfaces between the service and the world: Graph, Table Storage, the queue.

The adapters in ``shared.adapters`` implement them against msgraph-sdk and Azure Storage; the
in-memory fakes in ``tests/fakes.py`` implement them for fast unit tests, and one set of contract
tests runs against both so the fakes cannot drift.

Every per-tenant store is bound to its tenant when it is built (the tenant id is the partition
key of every row), so no method of those takes a tenant id: a tenant's context can only ever
touch its own rows. ``shared.service.context`` bundles one tenant's ports.


Every store of a tenant's sync is bound to the tenant when it is built (its id is the partition key
of every row), so their methods take no tenant id; ``shared.service.context`` bundles them. The
tenant registry and the tenants' health and sync schedules span the tenants: they take tenant ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from shared.core.audit import AuditEntry, AuditMonth
from shared.core.directory import Claim, Member
from shared.core.messages import AssignmentMessage
from shared.core.operation_wait import OperationWait
from shared.core.outcomes import Outcome
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
from shared.core.telemetry_events import TelemetryEvent
from shared.core.tenant_registry import RegistryError, SyncSchedule, TenantHealth, TenantRecord
from shared.core.tenant_sync_messages import TenantSyncMessage


class VoiceGroupDirectory(Protocol):
    """Reads the voice group's members from the directory."""

    async def read_members(self, group_id: str) -> list[Member]:
        """All transitive user members, in the order the directory returned them."""
        ...


class DirectoryDelta(Protocol):
    """Graph's delta queries on users and on the voice group.

    A link Graph no longer knows (``410 Gone``, an expired token) raises ``DeltaGoneError``.
    """

    async def users_link(self) -> str:
        """A ``users/delta`` link that reports changes from now on (``$deltatoken=latest``)."""
        ...

    async def group_link(self, group_id: str) -> str:
        """A ``groups/delta`` link on the voice group that reports changes from now on."""
        ...

    async def user_changes(self, link: str) -> UserDelta:
        """Every page of the users round behind ``link``."""
        ...

    async def group_changes(self, link: str) -> GroupDelta:
        """Every page of the voice-group round behind ``link``."""
        ...


class SnapshotStore(Protocol):
    """The tenant's ``DirectorySnapshot`` (one partition per tenant)."""

    async def load(self) -> DirectorySnapshot | None:
        """The stored snapshot, or None before the first full read."""
        ...

    async def save(
        self, snapshot: DirectorySnapshot, *, with_numbers: bool
    ) -> None:
        """Store ``snapshot``, writing only what differs from what is stored. Without
        ``with_numbers`` the stored numbers stay as they are (a delta run reads no numbers, and
        the queue functions may be noting their writes meanwhile)."""
        ...

    async def note_number(self, number: str, target_id: str | None) -> None:
        """Record a write of the app's own: Teams now has ``number`` on ``target_id`` (None:
        on nobody)."""
        ...

    async def has_member(self, user_id: str) -> bool | None:
        """Whether the stored voice group has the user; None before the first full read."""
        ...


class UserReader(Protocol):
    """A fresh read of one user, for the re-check at execution time."""

    async def read_user(self, user_id: str) -> Member | None:
        """The user as the directory has them now (``read_position`` 0), or None if gone."""
        ...


class TeamsUserReader(Protocol):
    """One user's Teams configuration (``teamsUserConfiguration``)."""

    async def read(self, user_id: str) -> TeamsUser | None:
        """The user as Teams sees them now, or None when Teams does not know the user (yet).

        Raises:
            TemporaryError: throttled or unavailable.
            PermanentError: refused (e.g. ``GRAPH_FORBIDDEN``: a permission is missing).
        """
        ...


class TeamsNumbers(Protocol):
    """Teams' telephone number management, with the tenant's number type (Direct Routing,
    Operator Connect, Calling Plan) bound at composition."""

    async def list_assignments(self) -> dict[str, str]:
        """Every number Teams has on a target: number → target id."""
        ...

    async def find_number(self, number: str) -> TeamsNumber | None:
        """The number's Teams record, or None when Teams has no record of it."""
        ...

    async def assign_number(self, number: str, user_id: str) -> str:
        """Ask Teams to assign the number as the user's primary one; returns the location of
        the operation that carries it out (accepted, not done: nothing waits for it here).

        Raises:
            TemporaryError: throttled or unavailable.
            PermanentError: Teams refused at once; the reason code says why.
        """
        ...

    async def read_operation(self, location: str) -> OperationState:
        """One read of an assignment's operation.

        Raises:
            TemporaryError: throttled, unavailable, or an answer the app cannot read.
            PermanentError: Teams does not know the operation (any more).
        """
        ...

    async def unassign_number(self, number: str) -> None:
        """Take the number off whoever has it and wait for the operation (same errors)."""
        ...


class ClaimStore(Protocol):
    """Who each personal number belongs to (one partition per tenant)."""

    async def list_claims(self) -> dict[str, Claim]:
        """Every claim of the tenant, by number."""
        ...

    async def get_claim(self, number: str) -> Claim | None:
        """The claim on one number, if any."""
        ...

    async def claim(self, claim: Claim) -> Claim:
        """Insert the claim if the number is unclaimed; return the claim that holds the number."""
        ...

    async def claim_all(self, claims: Sequence[Claim]) -> None:
        """``claim`` each of many numbers believed unclaimed (a first run claims thousands):
        a number claimed meanwhile keeps its holder."""
        ...

    async def transfer(self, from_user_id: str, claim: Claim) -> Claim:
        """Give a number to ``claim``'s holder if ``from_user_id`` still holds it (and has not
        had it assigned by this app); return the claim that holds the number afterwards."""
        ...

    async def mark_assigned(self, number: str, user_id: str) -> bool:
        """Record that this app put the number on its holder in Teams (the ownership marker).

        False when the user no longer holds the claim.
        """
        ...

    async def mark_assigning(
        self, number: str, user_id: str, since: datetime | None
    ) -> bool:
        """Record (or, with None, withdraw) the app's intent to assign the number to its holder,
        before the write to Teams. False when the user no longer holds the claim; a withdrawal
        leaves a claim with the ownership marker as it is."""
        ...

    async def release(
        self, number: str, user_id: str, *, cooling_since: datetime | None = None
    ) -> bool:
        """Drop the user's claim on the number; False when they did not hold it.

        With ``cooling_since`` the row stays, marked released, so the number rests before it
        goes to anyone else.
        """
        ...

    async def set_release_pending(
        self, number: str, user_id: str, since: datetime | None
    ) -> bool:
        """Start (or, with None, cancel) the grace period of a number the user holds."""
        ...


class StatusStore(Protocol):
    """Each user's latest outcome (one partition per tenant)."""

    async def record(self, status: UserStatus) -> None:
        """Store the user's latest outcome."""
        ...

    async def record_first(self, statuses: Sequence[UserStatus]) -> None:
        """``record`` the outcomes of many users believed to have none stored yet (a first run
        records thousands); a user recorded meanwhile is recorded the usual way."""
        ...

    async def list_statuses(self) -> list[UserStatus]:
        """Every user's latest outcome in the tenant."""
        ...

    async def get_status(self, user_id: str) -> UserStatus | None:
        """One user's latest outcome, if any."""
        ...


class AssignmentQueue(Protocol):
    """The ``number-assignments`` queue."""

    async def send(self, messages: Sequence[AssignmentMessage]) -> None:
        """Enqueue the messages (order is not guaranteed by the queue)."""
        ...

    async def send_later(self, message: AssignmentMessage, delay_seconds: int) -> None:
        """Enqueue one message that stays invisible for ``delay_seconds``."""
        ...


class InFlightStore(Protocol):
    """The changes queued and not yet done (one partition per tenant)."""

    async def list_in_flight(self, now: datetime) -> list[InFlight]:
        """The markers that have not expired at ``now``."""
        ...

    async def mark_queued(self, markers: Sequence[InFlight]) -> None:
        """Store the markers (replacing a user's older marker of the same kind)."""
        ...

    async def clear(self, user_id: str, kind: str, idempotency_key: str) -> None:
        """Drop the user's marker of ``kind`` if it is still this change's (a newer marker for
        another change stays)."""
        ...


class RunLedger(Protocol):
    """Run records, the sync lease, holds and effect markers (one partition per tenant)."""

    async def acquire_lease(
        self, run_id: str, now: datetime, ttl: timedelta
    ) -> str | None:
        """Take the tenant's sync lease; returns the run holding it when taken, else None."""
        ...

    async def release_lease(self, run_id: str) -> None:
        """Give the lease back if this run still holds it."""
        ...

    async def record_run(self, record: RunRecord) -> None:
        """Store or update a run record."""
        ...

    async def runs(self) -> list[RunRecord]:
        """Every run record, oldest first."""
        ...

    async def save_holds(self, holds: list[Hold]) -> None:
        """Store new holds."""
        ...

    async def holds(self, status: str | None = None) -> list[Hold]:
        """The tenant's holds (optionally of one status)."""
        ...

    async def update_hold(self, hold: Hold) -> None:
        """Store a hold's new status."""
        ...

    async def effect_done(self, key: str) -> bool:
        """Whether a message with this idempotency key has completed."""
        ...

    async def mark_effect_done(self, key: str, at: datetime) -> None:
        """Record a message's effect as complete."""
        ...


class TeamsPolicies(Protocol):
    """Teams policies: name → id, and direct assignment to one user."""

    async def policy_id(self, policy_type: str, name: str) -> str:
        """The id of the ``policy_type`` policy called ``name`` (cached: ids do not change).

        Raises:
            PermanentError: ``POLICY_NOT_FOUND`` naming the type and name, ``GRAPH_FORBIDDEN``.
            TemporaryError: throttled or unavailable.
        """
        ...

    async def assign_policies(self, user_id: str, assignments: Sequence[tuple[str, str]]) -> None:
        """Give the user every (policy type, policy id) directly, in one request.

        Raises:
            PermanentError: refused (``USER_NOT_FOUND`` when Teams does not know the user).
            TemporaryError: throttled or unavailable.
        """
        ...

    async def unassign_policies(self, user_id: str, policy_types: Sequence[str]) -> None:
        """Remove the user's direct policies of these types, in one request (same errors)."""
        ...


class PolicyGrantStore(Protocol):
    """The main-number policies this app granted, per user (one partition per tenant)."""

    async def list_grants(self) -> dict[str, PolicyGrant]:
        """Every grant of the tenant, by user id."""
        ...

    async def get_grant(self, user_id: str) -> PolicyGrant | None:
        """One user's grant, if any."""
        ...

    async def save_grant(self, grant: PolicyGrant) -> None:
        """Store the user's grant, replacing the one before (idempotent)."""
        ...

    async def remove_grant(self, user_id: str) -> bool:
        """Forget the user's grant; False when there was none (idempotent)."""
        ...


class OperationWaits(Protocol):
    """A tenant's learned wait between an accepted assignment and the first look at it
    (``shared.core.operation_wait``), shared by the tenant's function instances."""

    async def current(self) -> OperationWait:
        """The wait as this instance knows it (the shared one, read once and kept fresh)."""
        ...

    async def observe(self, elapsed_seconds: float, done: bool) -> None:
        """Learn from a look ``elapsed_seconds`` after Teams accepted an assignment."""
        ...


class PaceStore(Protocol):
    """One shared pace for Teams requests: its next free time (one row per tenant, and one for
    the app across its tenants), read and written by every function instance."""

    async def reserve(self, pace: Pace, now: float) -> SlotBlock:
        """Reserve the pace's next block of slots (``pace.reserve``) and move its next free
        time to the block's end, atomically: two instances never get overlapping blocks.

        ``now`` is the wall clock in seconds since the Unix epoch, shared by the instances (or
        later: the earliest time the block may start).
        """
        ...


class TenantAccess(Protocol):
    """The app's access to one customer tenant, as its Graph token shows it."""

    async def granted_roles(self) -> frozenset[str] | None:
        """The application permissions the tenant's admin consented to (the token's ``roles``);
        None when the token carries no such claim.

        Raises:
            PermanentError: ``GRAPH_FORBIDDEN`` when Entra ID refuses the app a token there
                (no consent, the app unknown in the tenant, a broken federated credential).
            TemporaryError: Entra ID could not be reached.
        """
        ...


class TenantRegistry(Protocol):
    """The tenants the app serves, a record each (``TenantRecord``), keyed by tenant id.

    A stored record that no longer validates (edited by hand) raises ``RegistryError`` naming
    the row and the field wherever it is read.
    """

    async def list_tenants(self) -> list[TenantRecord]:
        """Every registered tenant (removed ones too), sorted by tenant id.

        Raises:
            RegistryError: a stored record is not valid (the first one met).
        """
        ...

    async def list_readable_tenants(self) -> tuple[list[TenantRecord], list[RegistryError]]:
        """Every tenant whose record is valid, sorted by tenant id, and an error for each row
        that is not: one bad hand edit need not stop the other tenants' syncs."""
        ...

    async def get(self, tenant_id: str) -> TenantRecord | None:
        """One tenant's record, or None when it is not registered."""
        ...

    async def add(self, record: TenantRecord) -> None:
        """Register a tenant (insert-if-absent).

        Raises:
            TenantExistsError: the tenant is registered already (its record is left as it is).
            RegistryError: the record is too large for the registry to store.
        """
        ...

    async def update(
        self, tenant_id: str, change: Callable[[TenantRecord], TenantRecord]
    ) -> TenantRecord:
        """Store ``change(record)`` in place of the tenant's record and return it. The write is
        conditional on the record being unchanged since it was read; when another writer came
        first, the record is read and ``change`` applied again. An exception from ``change``
        (e.g. ``TransitionRefused``) is raised with nothing stored.

        Raises:
            TenantNotFoundError: the tenant is not registered.
            RegistryError: the stored record is not valid, or ``change`` changed the tenant id.
        """
        ...


class TenantSyncQueue(Protocol):
    """The ``tenant-syncs`` queue: one message per tenant run to start."""

    async def send_syncs(self, messages: Sequence[TenantSyncMessage]) -> None:
        """Enqueue every message (each exactly once)."""
        ...


class TenantHealthStore(Protocol):
    """Per tenant: its health as the last check saw it, and when its syncs were enqueued,
    started and finished (what ``tenants_due`` decides on)."""

    async def health(self, tenant_id: str) -> TenantHealth | None:
        """The tenant's last health, or None before its first check."""
        ...

    async def list_health(self) -> dict[str, TenantHealth]:
        """Every tenant's last health, by tenant id."""
        ...

    async def save_health(self, health: TenantHealth) -> None:
        """Store the tenant's health in place of the one before."""
        ...

    async def schedule(self, tenant_id: str) -> SyncSchedule:
        """The tenant's sync times (all None when it was never synced)."""
        ...

    async def list_schedules(self) -> dict[str, SyncSchedule]:
        """Every tenant's sync times that were ever marked, by tenant id."""
        ...

    async def mark_enqueued(self, tenant_id: str, at: datetime) -> None:
        """A sync of the tenant was enqueued at ``at`` (its other times stay as they are)."""
        ...

    async def mark_started(self, tenant_id: str, at: datetime) -> None:
        """A sync of the tenant started at ``at``."""
        ...

    async def mark_finished(self, tenant_id: str, at: datetime) -> None:
        """A sync of the tenant finished (however it ended) at ``at``."""
        ...


class AuditLog(Protocol):
    """The tenant's audit trail (table ``audit``): append-only, a partition per month."""

    async def record(self, entry: AuditEntry) -> bool:
        """Append the entry (create only: no row is ever changed). False when it is recorded
        already: the same entry, or a queue message's write with the same dedupe key (a
        redelivery that performed the write again)."""
        ...

    async def entries(self, since: datetime, until: datetime) -> list[AuditEntry]:
        """The tenant's entries from ``since`` to ``until`` (both included), oldest first; one
        query per month."""
        ...

    async def purge_before(self, month: AuditMonth) -> dict[AuditMonth, int]:
        """Delete every row of the tenant's months before ``month`` (whole months, nothing of
        any other tenant or table); the rows deleted per month."""
# --- Telemetry -----------------------------------------------------------------------------------


class EventSink(Protocol):
    """Where the app's telemetry goes: the events of ``shared.core.telemetry_events`` (custom
    events in Application Insights) and the per-tenant counters of its ``COUNTERS``.

    App-wide, not bound to a tenant: every event names its tenant itself, and so does a count.
    Neither method waits for I/O, and neither raises for a sink that cannot deliver: telemetry
    never fails the work it reports on.
    """

    def emit(self, event: TelemetryEvent) -> None:
        """Send one event with its dimensions.

        Raises:
            TypeError: a dimension of the event is neither text nor a number (a bug).
        """
        ...

    def count(self, tenant_id: str, outcome: Outcome, amount: int = 1) -> None:
        """Add ``amount`` users to the tenant's counter of ``outcome``.

        Raises:
            ValueError: the outcome has no counter, or ``amount`` is negative.
        """
        ...


class MessageCount(Protocol):
    """A queue whose length can be read: the poison queues, read on every timer tick."""

    async def approximate_message_count(self) -> int:
        """The queue's approximate number of messages (Queue Storage's own estimate)."""
        ...
