"""The records the core decides on and the shell stores: what a directory read, Teams and the
tables hold, as plain frozen dataclasses (claims and members are in ``shared.core.directory``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.core.directory import Member
from shared.core.outcomes import Outcome, Reason


@dataclass(frozen=True, slots=True)
class UserDelta:
    """One ``users/delta`` round: users whose selected fields changed, users deleted, and the
    link that reports the changes after these."""

    changed: tuple[Member, ...]
    removed: tuple[str, ...]
    link: str


@dataclass(frozen=True, slots=True)
class GroupDelta:
    """One ``groups/delta`` round on the voice group: its *direct* members who joined or left,
    whether a group joined or left it (its members need a transitive read), and the next link."""

    joined: tuple[str, ...]
    left: tuple[str, ...]
    nested_changed: bool
    link: str


@dataclass(frozen=True, slots=True)
class DirectorySnapshot:
    """The voice group and Teams' numbers as the app last knew them, with the delta links that
    continue from there; what a delta run plans on instead of reading everything again."""

    members: tuple[Member, ...]
    """In read order (``read_position``); joiners since the last full read come last."""
    teams: dict[str, str]
    """Number → target id: as the last full read saw it, updated by the app's own writes."""
    users_link: str | None
    group_link: str | None
    full_read_at: datetime | None


@dataclass(frozen=True, slots=True)
class TeamsNumber:
    """A telephone number as Teams knows it."""

    number: str
    target_id: str | None
    activation_state: str | None


@dataclass(frozen=True, slots=True)
class OperationState:
    """What a Teams operation says of itself: ``status`` (``notStarted``, ``running``,
    ``succeeded``, ``failed``, ``skipped``, or a value Graph adds later) and its detail text."""

    status: str
    detail: str

    @property
    def finished(self) -> bool:
        """Whether the operation has ended, one way or another."""
        return self.status in {"succeeded", "failed", "skipped"}


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


@dataclass(frozen=True, slots=True)
class InFlight:
    """A change queued for a user and not yet carried out: the timer enqueues nothing more for
    the user (of this ``kind``) until it is done or the marker expires."""

    user_id: str
    kind: str
    """``number`` (assign/unassign) or ``policies`` (grant/revoke): a user can have one of each."""
    idempotency_key: str
    queued_at: datetime
    expires_at: datetime


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

