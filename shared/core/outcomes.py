"""What the rules decide for a user and what then happened, and why: the vocabulary every plan,
report, table row and log line shares.

A helpdesk reads these. Every decision that does not give the user their number carries a reason
code and a message that says what the customer can do about it (README, "How it decides").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Action(StrEnum):
    """What the planner decides for one user."""

    ASSIGN = "assign"  # give the user this number in Teams
    KEEP = "keep"  # Teams already has exactly this number on the user
    SKIP = "skip"  # the rules say the user does not get a number (reason says why)
    UNASSIGN = "unassign"  # take back a number this app gave the user
    HOLD = "hold"  # an unassignment stopped by a safety guard until someone approves


class Outcome(StrEnum):
    """What happened for one user in one run."""

    ASSIGNED = "assigned"  # Teams now has the number on the user; this run put it there
    KEPT = "kept"  # Teams already had exactly this number on the user; nothing was written
    SKIPPED = "skipped"  # the customer's rules say this user does not get this number
    UNASSIGNED = "unassigned"  # a number this app gave the user was taken back
    HELD = "held"  # an unassignment waits for approval
    FAILED = "failed"  # the rules allow it but Teams refused or could not be reached


class Reason(StrEnum):
    """Why a user got the decision or outcome they got."""

    ASSIGNED = "assigned"
    NUMBER_CHANGED = "number_changed"
    NORMALISED = "normalised"
    ALREADY_ASSIGNED = "already_assigned"
    NO_NUMBER = "no_number"
    INVALID_FORMAT = "invalid_format"
    INVALID_NUMBER = "invalid_number"
    MAIN_NUMBER = "main_number"
    NOT_IN_RANGE = "not_in_range"
    DUPLICATE = "duplicate"
    ASSIGNED_ELSEWHERE = "assigned_elsewhere"
    DISABLED = "disabled"
    LEFT_GROUP = "left_group"
    NUMBER_REMOVED = "number_removed"
    MASS_UNASSIGN_GUARD = "mass_unassign_guard"
    GRACE_PERIOD = "grace_period"
    APPROVED = "approved"
    COOLING = "cooling"
    EMPTY_MEMBER_LIST = "empty_member_list"
    STALE = "stale"
    NOT_IN_INVENTORY = "not_in_inventory"
    USER_NOT_FOUND = "user_not_found"
    NOT_LICENSED = "not_licensed"
    WAITING_FOR_TEAMS = "waiting_for_teams"
    EV_NOT_ENABLED = "ev_not_enabled"
    VERIFY_FAILED = "verify_failed"
    # Teams took the change but its read views do not show it yet (eventually consistent): the
    # app reads it back again with a backoff, and reports verify_failed only after its retries.
    READ_BACK_PENDING = "read_back_pending"
    GRAPH_FORBIDDEN = "graph_forbidden"
    ASSIGNMENT_FAILED = "assignment_failed"
    MAIN_NUMBER_REMOVED = "main_number_removed"  # no longer carries a main number: policies back
    POLICY_NOT_FOUND = "policy_not_found"  # a configured main-number policy does not exist
    GROUP_NOT_FOUND = "group_not_found"  # the tenant's voice group does not exist (any more)


#: Teams is not ready for the user yet (shared.core.teams_readiness): looked at again later.
WAITING_REASONS = frozenset({Reason.WAITING_FOR_TEAMS, Reason.NOT_LICENSED})
#: The number is on the user but the read-back found it unusable, or does not show it yet:
#: verified again with a backoff.
VERIFY_REASONS = frozenset({Reason.EV_NOT_ENABLED, Reason.VERIFY_FAILED,
                            Reason.READ_BACK_PENDING})
#: Teams refused the number for a reason the app cannot name (a text it does not know): the
#: same assignment is tried again after a backoff, not failed for good.
RETRY_REASONS = frozenset({Reason.ASSIGNMENT_FAILED})


def counts_as_attempt(outcome: Outcome, reason: Reason) -> bool:
    """Whether a stored outcome adds to the user's attempts in a row (which set the backoff):
    a failure, a wait for Teams, or a read-back still waiting for Teams to show the change;
    anything else starts the count again."""
    return outcome is Outcome.FAILED or reason in WAITING_REASONS or (
        reason is Reason.READ_BACK_PENDING
    )


@dataclass(frozen=True, slots=True)
class UserResult:
    """The outcome for one user, ready to be stored and shown."""

    outcome: Outcome
    reason: Reason
    message: str
    number: str | None
    retry_at: datetime | None = None
    """When the app looks at the user again (a wait for Teams, a failed read-back)."""
    waiting_since: datetime | None = None
    """When the user's current wait for Teams began (only while waiting)."""
