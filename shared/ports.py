"""The interfaces between the service and the world: Graph, Table Storage, the queue.

The adapters in ``shared.adapters`` implement them against msgraph-sdk and Azure Storage; the
in-memory fakes in ``tests/fakes.py`` implement them for fast unit tests, and one set of contract
tests runs against both so the fakes cannot drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from shared.config import NumberType
from shared.directory import Claim, Member
from shared.messages import AssignmentMessage
from shared.outcomes import Outcome, Reason
from shared.request_pace import Pace, SlotBlock
from shared.teams_readiness import TeamsUser


class VoiceGroupDirectory(Protocol):
    """Reads the voice group's members from the directory."""

    async def read_members(self, group_id: str) -> list[Member]:
        """All transitive user members, in the order the directory returned them."""
        ...


@dataclass(frozen=True, slots=True)
class TeamsNumber:
    """A telephone number as Teams knows it."""

    number: str
    target_id: str | None
    activation_state: str | None


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
    """Teams' telephone number management."""

    async def list_assignments(self) -> dict[str, str]:
        """Every number Teams has on a target: number → target id."""
        ...

    async def find_number(self, number: str) -> TeamsNumber | None:
        """The number's Teams record, or None when Teams has no record of it."""
        ...

    async def assign_number(
        self,
        number: str,
        user_id: str,
        number_type: NumberType,
        *,
        operation_location: str | None = None,
    ) -> None:
        """Assign and wait for the asynchronous operation to finish; with
        ``operation_location``, follow that earlier operation instead of assigning again.

        Raises:
            OperationPendingError: the operation is still running after a short wait.
            TemporaryError: throttled or unavailable.
            PermanentError: Teams refused; the reason code says why.
        """
        ...

    async def unassign_number(self, number: str, number_type: NumberType) -> None:
        """Take the number off whoever has it and wait for the operation (same errors)."""
        ...


class ClaimStore(Protocol):
    """Who each personal number belongs to (one partition per tenant)."""

    async def list_claims(self, tenant_id: str) -> dict[str, Claim]:
        """Every claim of the tenant, by number."""
        ...

    async def get_claim(self, tenant_id: str, number: str) -> Claim | None:
        """The claim on one number, if any."""
        ...

    async def claim(self, tenant_id: str, claim: Claim) -> Claim:
        """Insert the claim if the number is unclaimed; return the claim that holds the number."""
        ...

    async def transfer(self, tenant_id: str, from_user_id: str, claim: Claim) -> Claim:
        """Give a number to ``claim``'s holder if ``from_user_id`` still holds it (and has not
        had it assigned by this app); return the claim that holds the number afterwards."""
        ...

    async def mark_assigned(self, tenant_id: str, number: str, user_id: str) -> bool:
        """Record that this app put the number on its holder in Teams (the ownership marker).

        False when the user no longer holds the claim.
        """
        ...

    async def release(
        self, tenant_id: str, number: str, user_id: str, *, cooling_since: datetime | None = None
    ) -> bool:
        """Drop the user's claim on the number; False when they did not hold it.

        With ``cooling_since`` the row stays, marked released, so the number rests before it
        goes to anyone else.
        """
        ...

    async def set_release_pending(
        self, tenant_id: str, number: str, user_id: str, since: datetime | None
    ) -> bool:
        """Start (or, with None, cancel) the grace period of a number the user holds."""
        ...


@dataclass(frozen=True, slots=True)
class UserStatus:
    """A user's last outcome as stored: what the report shows."""

    user_id: str
    user_principal_name: str
    outcome: Outcome
    reason: Reason
    number: str | None
    message: str
    run_id: str
    read_position: int
    updated_at: datetime
    first_seen: datetime | None = None
    """When the app first recorded anything for the user (kept across updates by the store)."""
    attempts: int = 0
    """Failed outcomes and waits for Teams in a row (the store counts them; anything else
    resets it): sets the backoff of the next look."""
    retry_at: datetime | None = None
    """When the app looks at the user again: a wait for Teams (``waiting_for_teams``,
    ``not_licensed``) or a failed read-back (``ev_not_enabled``, ``verify_failed``); the timer
    does not enqueue the user before then. Stored as given."""
    waiting_since: datetime | None = None
    """When the user's current wait for Teams began (the patience counts from here). Stored as
    given; None when the user is not waiting."""


class StatusStore(Protocol):
    """Each user's latest outcome (one partition per tenant)."""

    async def record(self, tenant_id: str, status: UserStatus) -> None:
        """Store the user's latest outcome."""
        ...

    async def list_statuses(self, tenant_id: str) -> list[UserStatus]:
        """Every user's latest outcome in the tenant."""
        ...

    async def get_status(self, tenant_id: str, user_id: str) -> UserStatus | None:
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


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One planning run: when, how it ended (completed / skipped / failed), counts."""

    run_id: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str
    message: str
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class Hold:
    """An unassignment stopped by the mass-unassign guard, waiting for a person."""

    run_id: str
    user_id: str
    user_principal_name: str
    number: str
    reason: str
    message: str
    status: str  # pending | approved | dropped
    created_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None

    @property
    def key(self) -> str:
        """The hold's row key: one hold per user per run."""
        return f"{self.run_id}|{self.user_id}"


class RunLedger(Protocol):
    """Run records, the sync lease, holds and effect markers (one partition per tenant)."""

    async def acquire_lease(
        self, tenant_id: str, run_id: str, now: datetime, ttl: timedelta
    ) -> str | None:
        """Take the tenant's sync lease; returns the run holding it when taken, else None."""
        ...

    async def release_lease(self, tenant_id: str, run_id: str) -> None:
        """Give the lease back if this run still holds it."""
        ...

    async def record_run(self, tenant_id: str, record: RunRecord) -> None:
        """Store or update a run record."""
        ...

    async def runs(self, tenant_id: str) -> list[RunRecord]:
        """Every run record, oldest first."""
        ...

    async def save_holds(self, tenant_id: str, holds: list[Hold]) -> None:
        """Store new holds."""
        ...

    async def holds(self, tenant_id: str, status: str | None = None) -> list[Hold]:
        """The tenant's holds (optionally of one status)."""
        ...

    async def update_hold(self, tenant_id: str, hold: Hold) -> None:
        """Store a hold's new status."""
        ...

    async def effect_done(self, tenant_id: str, key: str) -> bool:
        """Whether a message with this idempotency key has completed."""
        ...

    async def mark_effect_done(self, tenant_id: str, key: str, at: datetime) -> None:
        """Record a message's effect as complete."""
        ...


class PaceStore(Protocol):
    """Each tenant's shared pace for Teams requests: its next free time (one row per tenant),
    read and written by every function instance."""

    async def reserve(self, tenant_id: str, pace: Pace, now: float) -> SlotBlock:
        """Reserve the tenant's next block of slots (``pace.reserve``) and move its next free
        time to the block's end, atomically: two instances never get overlapping blocks.

        ``now`` is the wall clock in seconds since the Unix epoch, shared by the instances.
        """
        ...
