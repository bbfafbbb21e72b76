"""What is recorded for a user, one path for numbers and main-number policies (pure).

When a status is news (so its row is written), the status a finished message leaves, a wait for
Teams with its patience and backoff, a failure looked at again after a backoff, a change given
up on, and when a temporary failure waits on the queue rather than on the worker. The number
flow (``shared.core.assignment_steps``), the policy flow (``shared.core.policy_steps``) and the
timer's decisions (``shared.core.run_decisions``) all record through these.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from shared.core.errors import OperationPendingError, TemporaryError
from shared.core.messages import AssignmentMessage
from shared.core.outcomes import WAITING_REASONS, Outcome, Reason, UserResult
from shared.core.records import UserStatus
from shared.core.teams_readiness import FIRST_BACKOFF, TeamsUser, backoff, readiness

#: How often one message may wait on the queue (a long Teams operation, a long Retry-After)
#: before it is given up and recorded failed.
MAX_DEFERRALS = 24
#: How long a change Teams took may stay out of its read views (a user's configuration, its
#: effective policies) before the read-back is a failure: Graph's views are eventually
#: consistent and document no bound; an hour allows the read-back three retries (after 15, 30
#: and 60 minutes) at the usual backoff.
READ_BACK_PATIENCE = timedelta(hours=1)


def status_news(before: UserStatus | None, after: UserStatus) -> bool:
    """Whether ``after`` says something the stored ``before`` does not (so the row is written).

    A ``kept`` after an ``assigned`` or ``kept`` of the same number (or of the same main
    number's policies) is not news: "assigned in run X" stays the better record of a change
    that is still in place, and a run that finds it so writes nothing.
    """
    if before is None:
        return True
    if (
        after.outcome is Outcome.KEPT
        and before.outcome in {Outcome.ASSIGNED, Outcome.KEPT}
        and before.reason is not Reason.READ_BACK_PENDING
        and before.number == after.number
        and (before.reason is Reason.MAIN_NUMBER) == (after.reason is Reason.MAIN_NUMBER)
    ):
        return False
    return (before.outcome, before.reason, before.number, before.message) != (
        after.outcome, after.reason, after.number, after.message
    )


def message_status(message: AssignmentMessage, result: UserResult, now: datetime) -> UserStatus:
    """The status a carried-out (or given-up) message leaves for its user."""
    return UserStatus(
        user_id=message.user_id,
        user_principal_name=message.user_principal_name,
        outcome=result.outcome,
        reason=result.reason,
        number=result.number,
        message=result.message,
        run_id=message.run_id,
        read_position=message.read_position if message.read_position is not None else -1,
        updated_at=now,
        retry_at=result.retry_at,
        waiting_since=result.waiting_since,
    )


def teams_ready(user: TeamsUser | None, now: datetime) -> bool:
    """Whether Teams knows the user and they have Teams Phone (no stored status needed)."""
    return readiness(user, first_seen=now, now=now).ready


def waiting_for_teams(
    user: TeamsUser | None,
    stored: UserStatus | None,
    *,
    now: datetime,
    patience: timedelta,
    number: str | None,
    then: str = "",
) -> UserResult:
    """The wait to record for a user Teams is not ready for (unknown, or without Teams Phone).

    The patience counts from when the user's current wait began (kept in their ``stored``
    status), the backoff from their attempts in a row. The wait is ``skipped`` until the
    patience has passed and ``failed`` from then on; ``then`` says what happens once Teams is
    ready (appended to the message).
    """
    waiting = stored is not None and stored.reason in WAITING_REASONS
    since = (stored.waiting_since if stored is not None and waiting else None) or now
    state = readiness(
        user, first_seen=since, now=now, patience=patience,
        attempts=stored.attempts if stored is not None else 0,
    )
    reason = Reason.WAITING_FOR_TEAMS if state.state == "ready" else state.state
    return UserResult(
        Outcome.FAILED if state.is_problem else Outcome.SKIPPED, reason,
        f"{state.message} {then}".strip(), number, retry_at=state.check_again_at,
        waiting_since=since,
    )


def failed_with_backoff(
    reason: Reason, text: str, number: str | None, stored: UserStatus | None, now: datetime
) -> UserResult:
    """A failure the app looks at again after the usual backoff (the timer waits until then)."""
    attempts = stored.attempts if stored is not None else 0
    return UserResult(Outcome.FAILED, reason, text, number, retry_at=now + backoff(attempts))


def awaiting_read_back(stored: UserStatus | None, number: str | None) -> bool:
    """Whether the stored status says the app changed ``number`` (or a main number's policies)
    in Teams and is still waiting for the read views to show it: the change is not written
    again while this holds (Teams has it; a second write would only repeat it)."""
    return (
        stored is not None and stored.reason is Reason.READ_BACK_PENDING
        and stored.number == number
    )


def read_back_missed(
    failure: str, waiting: str, number: str | None, stored: UserStatus | None, now: datetime
) -> UserResult:
    """A read-back that does not show a change Teams took: ``assigned``/``read_back_pending``,
    read back again after a backoff (15 minutes, then as long as it has waited so far), until
    ``READ_BACK_PATIENCE`` has passed since the first miss; then ``verify_failed`` (``failure``)
    with the usual backoff. ``waiting`` says what Teams took and does not show yet.

    The first miss is kept in ``waiting_since`` so the patience counts from it.
    """
    since = (stored.waiting_since if stored is not None and awaiting_read_back(stored, number)
             else None) or now
    deadline = since + READ_BACK_PATIENCE
    if now >= deadline:
        return failed_with_backoff(
            Reason.VERIFY_FAILED,
            f"{failure} (read back again for {_minutes(now - since)} minutes).", number, stored,
            now,
        )
    retry_at = min(now + max(FIRST_BACKOFF, now - since), deadline)
    return UserResult(
        Outcome.ASSIGNED, Reason.READ_BACK_PENDING,
        f"{waiting} Teams' read views are eventually consistent; the app reads it back again "
        f"at {retry_at:%Y-%m-%d %H:%M} UTC and reports a failure only if it is still missing "
        f"at {deadline:%H:%M} UTC.", number, retry_at=retry_at, waiting_since=since,
    )


def _minutes(span: timedelta) -> int:
    return round(span.total_seconds() / 60)


def gave_up(message: AssignmentMessage, why: str) -> UserResult:
    """The status of a change given up on (the next run plans the user again)."""
    return UserResult(
        Outcome.FAILED, Reason.ASSIGNMENT_FAILED, why, message.number or message.previous_number,
    )


def deferral(error: TemporaryError, defer_beyond_seconds: float) -> int | None:
    """Seconds the message waits on the queue for this error, or None to retry the usual way
    (the host's redelivery): a Teams operation still running, or a Retry-After longer than a
    worker should sit idle."""
    wait = error.retry_after_seconds
    pending = isinstance(error, OperationPendingError)
    if pending or (wait is not None and wait > defer_beyond_seconds):
        return math.ceil(wait or 30)
    return None


def reason_named(text: str, default: Reason) -> Reason:
    """The reason a message carries (its ``reason`` field), or ``default`` for one this version
    does not know (a message from a newer planner)."""
    try:
        return Reason(text)
    except ValueError:
        return default
