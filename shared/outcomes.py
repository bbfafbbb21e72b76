"""What happened to a user, and why: the vocabulary every report, table row and log line shares.

A helpdesk reads these. Every outcome that is not ``assigned``/``kept`` carries a reason code and a
message that says what the customer can do about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """The result for one user in one run."""

    ASSIGNED = "assigned"  # Teams now has the number on the user; this run put it there
    KEPT = "kept"  # Teams already had exactly this number on the user; nothing was written
    SKIPPED = "skipped"  # the customer's rules say this user does not get this number
    FAILED = "failed"  # the rules allow it but Teams refused or could not be reached


class Reason(StrEnum):
    """Why a user got the outcome they got."""

    ASSIGNED = "assigned"
    ALREADY_ASSIGNED = "already_assigned"
    NO_NUMBER = "no_number"
    INVALID_FORMAT = "invalid_format"
    INVALID_NUMBER = "invalid_number"
    DUPLICATE = "duplicate"
    ASSIGNED_ELSEWHERE = "assigned_elsewhere"
    NOT_IN_INVENTORY = "not_in_inventory"
    USER_NOT_FOUND = "user_not_found"
    NOT_LICENSED = "not_licensed"
    GRAPH_FORBIDDEN = "graph_forbidden"
    ASSIGNMENT_FAILED = "assignment_failed"


@dataclass(frozen=True, slots=True)
class UserResult:
    """The outcome for one user, ready to be stored and shown."""

    outcome: Outcome
    reason: Reason
    message: str
    number: str | None
