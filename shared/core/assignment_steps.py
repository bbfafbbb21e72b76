"""One queue message, decided step by step without doing any of it (sans-I/O).

``carry_out(message, limits)`` is the whole per-message flow as a generator of
``shared.core.steps``: the idempotency check, the number (or policy) change, the status, the
effect marker and the in-flight marker. The shell performs each step and sends back what it saw;
what to do next — look first, claim, record the intent, assign, read back, take back the old
number — is decided here, from the message and those observations alone.

Safe to run more than once for the same message: a completed message's idempotency key is
recorded and a redelivery ends at once; short of that, claims are conditional, the intent to
assign is recorded on the claim before Teams is asked, a redelivered or already-owned number is
looked up in Teams before any write, and a number already where it should be is not written
again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from shared.core.directory import Claim, Member
from shared.core.errors import OperationPendingError, PermanentError, TemporaryError
from shared.core.graph_errors import classify_operation_failure
from shared.core.messages import POLICY_ACTIONS, AssignmentMessage
from shared.core.operation_wait import OperationWait, next_look_after
from shared.core.outcomes import (
    RETRY_REASONS,
    WAITING_REASONS,
    Outcome,
    Reason,
    UserResult,
)
from shared.core.phone_numbers import check_number
from shared.core.policy_steps import policy_flow
from shared.core.recording import (
    MAX_DEFERRALS,
    awaiting_read_back,
    deferral,
    failed_with_backoff,
    gave_up,
    message_status,
    read_back_missed,
    reason_named,
    teams_ready,
    waiting_for_teams,
)
from shared.core.records import OperationState
from shared.core.run_decisions import change_kind
from shared.core.steps import (
    AssignmentSettled,
    AssignNumber,
    ClaimNumber,
    ClearInFlight,
    EffectDone,
    FindNumber,
    Flow,
    GetClaim,
    IsServed,
    LookAtTeamsUser,
    MarkAssigned,
    MarkAssigning,
    MarkEffectDone,
    Note,
    NoteFound,
    NoteOperationLook,
    Now,
    ReadDirectoryUser,
    ReadOperation,
    ReadStatus,
    ReadTeamsUser,
    RecordStatus,
    ReleaseClaim,
    UnassignNumber,
    ask,
)
from shared.core.teams_readiness import DEFAULT_PATIENCE, TeamsUser, verify_assignment
from shared.core.tenant_rules import TenantRules


@dataclass(frozen=True, slots=True)
class MessageLimits:
    """What the flow needs besides the message: the tenant's rules and this delivery."""

    rules: TenantRules
    patience: timedelta = DEFAULT_PATIENCE
    """How long a user may wait for Teams before the wait is a problem."""
    reread: bool = True
    """Read the user again from the directory before writing (see ``needs_reread``)."""
    look_first: bool = False
    """A redelivery: an earlier try may have written already, so look before writing."""
    operation_wait: OperationWait = field(default_factory=OperationWait)
    """The tenant's learned wait between an accepted assignment and the first look at it."""


def needs_reread(
    message: AssignmentMessage, now: datetime, recheck_after: timedelta, *, redelivered: bool
) -> bool:
    """Whether the user is read again before a write: on a redelivery or a deferral, or when
    the plan read them longer than ``recheck_after`` ago (a young plan is the directory as it
    is). A message back from waiting for Teams' operation is not read again: it comes to look
    whether the write made before the wait landed, not to write (a directory change meanwhile is
    the next run's to plan, as after any assignment)."""
    if message.operation_location is not None and not redelivered:
        return False
    fresh = (
        message.read_at is not None and message.deferrals == 0
        and timedelta(0) <= now - message.read_at <= recheck_after
    )
    return redelivered or not fresh


def carry_out(message: AssignmentMessage, limits: MessageLimits) -> Flow[UserResult | None]:
    """The whole message: returns the result recorded as the user's status, or None when the
    message was done already or leaves the status alone (a stale message for someone the app
    does not serve, a policy revocation for a member)."""
    key = message.idempotency_key
    kind = change_kind(message)
    if (yield from ask(EffectDone(key))):
        yield from ask(Note("info", f"message {key} was already carried out; nothing to do"))
        yield from ask(ClearInFlight(message.user_id, kind, key))
        return None
    result = yield from change_flow(message, limits)
    if result is not None:
        now = yield from ask(Now())
        yield from ask(RecordStatus(message_status(message, result, now)))
    now = yield from ask(Now())
    yield from ask(MarkEffectDone(key, now))
    yield from ask(ClearInFlight(message.user_id, kind, key))
    if result is not None:
        yield from ask(Note("info", (
            f"user {message.user_principal_name} ({message.user_id}): "
            f"{result.outcome}/{result.reason} {result.number or ''}"
        )))
    return result


def change_flow(message: AssignmentMessage, limits: MessageLimits) -> Flow[UserResult | None]:
    """The change the message asks for, without the bookkeeping around it."""
    if message.action in POLICY_ACTIONS:
        return (yield from policy_flow(message, limits.rules, limits.patience,
                                       redelivered=limits.look_first))
    if message.action == "unassign":
        return (yield from unassign_flow(message, limits))
    return (yield from assign_flow(message, limits))


@dataclass(frozen=True, slots=True)
class Defer:
    """Send the message again, invisible for ``delay_seconds`` (wait on the queue)."""

    message: AssignmentMessage
    delay_seconds: int


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Record ``result`` and let the next run plan the user; ``done``: the message ends here
    (otherwise the error is raised after recording, for the host's poison queue)."""

    result: UserResult
    done: bool


@dataclass(frozen=True, slots=True)
class RetryLater:
    """Raise the error: the host redelivers the message after its visibility timeout."""


def after_temporary(
    error: TemporaryError,
    message: AssignmentMessage,
    *,
    final_attempt: bool,
    defer_beyond_seconds: float,
) -> Defer | GiveUp | RetryLater:
    """What a temporary failure means for the message: wait on the queue (a long Teams
    operation, a long Retry-After), give up (deferred too often, or the host's last try), or
    let the host retry."""
    delay = deferral(error, defer_beyond_seconds)
    if delay is not None and message.deferrals < MAX_DEFERRALS:
        return Defer(message.model_copy(update={
            "deferrals": message.deferrals + 1,
            "operation_location": getattr(error, "location", message.operation_location),
        }), delay)
    if delay is not None or final_attempt:
        return GiveUp(
            gave_up(message, f"Gave up after repeated temporary failures: {error.message}"),
            done=delay is not None,
        )
    return RetryLater()


# --- assign -------------------------------------------------------------------------------------


def assign_flow(message: AssignmentMessage, limits: MessageLimits) -> Flow[UserResult | None]:
    """Give the user the number: re-check, claim, look first when the app may have written
    already, record the intent, assign, read back, then take back the number it replaces."""
    number = message.number
    assert number is not None  # AssignmentMessage refuses an assign without a number
    user_id = message.user_id
    if limits.reread:
        fresh = yield from ask(ReadDirectoryUser(user_id))
        if _stale(fresh, number, limits.rules):
            member = yield from ask(IsServed(user_id))
            if not (member if member is not None else fresh is not None):
                yield from ask(Note("warning", (
                    f"assign message for user {message.user_principal_name} ({user_id}), who "
                    "is not in the voice group and whom the directory does not give "
                    f"{number}: nothing done, nothing recorded"
                )))
                return None
            return UserResult(
                Outcome.SKIPPED, Reason.STALE,
                f"The directory changed after this run planned to assign {number}; the next "
                "run decides again.", number,
            )
    holder = yield from ask(ClaimNumber(Claim(
        number=number, holder_user_id=user_id, holder_upn=message.user_principal_name,
        run_id=message.run_id, read_position=message.read_position or 0,
    )))
    if holder.holder_user_id != user_id:
        return _duplicate(number, holder)
    looked = yield from _look_first(message, number, holder, limits)
    if looked is not None:
        return looked
    # The intent is stored before Teams is asked: should the answer be lost, the number found on
    # the user later is known to be the app's (and is taken back when they leave).
    if not (yield from ask(MarkAssigning(number, user_id, (yield from ask(Now()))))):
        moved = yield from ask(GetClaim(number))
        if moved is not None and moved.holder_user_id != user_id:
            return _duplicate(number, moved)
        raise TemporaryError(f"the claim on {number} changed while it was being assigned")
    # Teams is asked nothing before the write: the assignment itself says whether the user is
    # ready and the number free.
    answer = yield from ask(AssignNumber(number, user_id))
    if isinstance(answer, PermanentError):
        return (yield from _not_taken(answer, message, number, limits))
    # Teams took the request and carries it out in its own time, whoever asks: the message waits
    # on the queue about as long as the tenant's operations take, then one look says whether it
    # landed. Asking sooner only spends the tenant's Teams requests.
    wait = limits.operation_wait.first_look_after()
    raise OperationPendingError(
        f"Teams accepted {number} for the user; the app looks whether it landed in {wait} s",
        location=answer.location, retry_after_seconds=wait,
    )


def _look_first(
    message: AssignmentMessage, number: str, holder: Claim, limits: MessageLimits
) -> Flow[UserResult | None]:
    """Look at the user before any write when the app may have written already; the result
    when that ends the change, None when the number is to be assigned."""
    user_id = message.user_id
    intended = holder.assigning_since is not None and not holder.assigned
    # An earlier try of this run's change put the number there (its intent is recorded, and the
    # claim is this run's): found now, the app assigned it, and the status says so.
    assigned_by_this_change = holder.assigning_since is not None and (
        not holder.assigned or holder.run_id == message.run_id
    ) and message.reason != Reason.ALREADY_ASSIGNED.value
    follow = intended or message.operation_location is not None
    if not (limits.look_first or holder.assigned or follow
            or message.reason == Reason.ALREADY_ASSIGNED.value):
        return None
    # This app put the number there before (a later run planned it again), an assignment of
    # this change may be under way or done (its intent is recorded, its operation known), or
    # Teams had it and it is due to be read back: look first, write only if it is not there.
    # For an assignment waiting on the queue, this look is the one request that usually ends it.
    seen = yield from ask(LookAtTeamsUser(user_id))
    if seen is not None and seen.has_number(number):
        if follow:
            elapsed = yield from _elapsed(holder)
            if message.operation_location is not None:
                yield from _note_look(elapsed, done=True)
            yield from ask(AssignmentSettled(number, user_id, True, (
                f"seen on the user in Teams{_after_asking(elapsed)}")))
        yield from ask(MarkAssigned(number, user_id))
        yield from ask(NoteFound(number, user_id))
        # An earlier try may have died between the assignment and taking back the old number:
        # the old one is released here as it would have been then.
        yield from _release_previous(message, number, seen, limits.rules)
        found = _assigned(message, number) if assigned_by_this_change else _already(number)
        return (yield from _read_back(message, number, found, seen))
    if follow:
        # Never a second assignment while the first may still land: follow it.
        return (yield from _follow_assignment(message, number, holder, seen, limits))
    if holder.assigned and awaiting_read_back((yield from ask(ReadStatus(user_id))), number):
        # The app's own assignment, which Teams took and its views do not show yet (a later
        # run's numberAssignments may not either): read back again, never written twice while
        # the read-back waits.
        return (yield from _read_back(message, number, _already(number), seen))
    return None


def _not_taken(
    error: PermanentError, message: AssignmentMessage, number: str, limits: MessageLimits
) -> Flow[UserResult]:
    """Teams refused the assignment, at once or in its operation."""
    refused = yield from _refused(error, message, number, limits)
    # Teams did not take it: the intent is withdrawn (a number found on the user keeps the
    # ownership marker it was just given).
    yield from ask(MarkAssigning(number, message.user_id, None))
    if refused.reason not in WAITING_REASONS:
        # The directory no longer gives the user the old number, whatever became of the
        # new one; a user Teams is not ready for keeps theirs until it is.
        yield from _release_previous(message, number, None, limits.rules)
    return refused


def _follow_assignment(
    message: AssignmentMessage,
    number: str,
    holder: Claim,
    seen: TeamsUser | None,
    limits: MessageLimits,
) -> Flow[UserResult | None]:
    """An assignment of this change that the user's configuration does not show: read its
    operation (one request) and end the change, or wait again; without an operation to read
    (a try that died between the write and the wait, one Teams no longer knows or skipped),
    the number's Teams record says whether an assignment is under way.

    Returns None when nothing is under way: the number may be assigned (again). Raises
    ``OperationPendingError`` to wait on the queue while Teams is still at it.
    """
    user_id = message.user_id
    elapsed = yield from _elapsed(holder)
    location = message.operation_location
    state: OperationState | PermanentError | None = None
    if location is not None:
        state = yield from ask(ReadOperation(location))
        if isinstance(state, OperationState):
            yield from _note_look(elapsed, done=state.finished)
            if not state.finished:
                after = next_look_after(elapsed, limits.operation_wait)
                raise OperationPendingError(
                    f"Teams is still carrying out the assignment of {number} "
                    f"({state.status}, {elapsed:.0f} s after it was accepted); the app looks "
                    f"again in {after} s",
                    location=location, retry_after_seconds=after,
                )
            if state.status == "failed":
                failure = classify_operation_failure(
                    state.detail or f"assignment of {number} failed"
                )
                if isinstance(failure, TemporaryError):
                    # Teams' passing trouble: the number's record (nobody, once the failure
                    # freed it) lets the next look assign it again, after the usual wait.
                    raise OperationPendingError(
                        f"Teams' assignment of {number} failed for now: {failure.message}",
                        location=None,
                        retry_after_seconds=limits.operation_wait.first_look_after(),
                    )
                yield from ask(AssignmentSettled(number, user_id, False, (
                    f"Teams' operation failed: {failure.message}")))
                return (yield from _not_taken(failure, message, number, limits))
            if state.status == "succeeded":
                return (yield from _landed_unseen(message, number, holder, seen, limits, detail=(
                    "Teams' operation succeeded; the user's configuration does not show the "
                    "number yet")))
    record = yield from ask(FindNumber(number))
    if record is None or record.target_id != user_id:
        if isinstance(state, OperationState) and state.status == "skipped":
            # Teams skipped it and the number is not there: what was skipped is not documented,
            # so the host tries again, and a later run assigns anew (nothing is under way).
            detail = f": {state.detail}" if state.detail else ""
            raise TemporaryError(
                f"the Teams operation of assignNumber for {number} ended 'skipped'{detail}, "
                "and Teams does not show the change made; it is tried again"
            )
        return None
    if record.activation_state not in (None, "activated"):
        after = next_look_after(elapsed, limits.operation_wait)
        raise OperationPendingError(
            f"Teams shows {number} {record.activation_state} on the user "
            f"({elapsed:.0f} s after the app asked); the app looks again in {after} s",
            location=location, retry_after_seconds=after,
        )
    return (yield from _landed_unseen(message, number, holder, seen, limits, detail=(
        "Teams' number record shows it on the user; their configuration does not yet")))


def _landed_unseen(
    message: AssignmentMessage,
    number: str,
    holder: Claim,
    seen: TeamsUser | None,
    limits: MessageLimits,
    *,
    detail: str,
) -> Flow[UserResult]:
    """Teams says the number is on the user, and their configuration does not show it yet: the
    number is the app's. The message waits and looks once more (the configuration view lags by
    seconds, usually); after that the read-back waits for later runs (``read_back_pending``)."""
    yield from ask(AssignmentSettled(number, message.user_id, True, detail))
    yield from ask(MarkAssigned(number, message.user_id))
    yield from ask(NoteFound(number, message.user_id))
    if message.operation_location is not None and not holder.assigned:
        # Once: a later miss is the read-back's to wait for (the claim is marked by now).
        elapsed = yield from _elapsed(holder)
        after = next_look_after(elapsed, limits.operation_wait)
        raise OperationPendingError(
            f"Teams has {number} on the user; their configuration does not show it yet "
            f"({elapsed:.0f} s after the app asked); the app looks again in {after} s",
            location=message.operation_location, retry_after_seconds=after,
        )
    yield from _release_previous(message, number, seen, limits.rules)
    return (yield from _read_back(message, number, _assigned(message, number), seen))


def _elapsed(holder: Claim) -> Flow[float]:
    """Seconds since the intent to assign was recorded (just before Teams was asked)."""
    if holder.assigning_since is None:
        return float("nan")
    now = yield from ask(Now())
    return (now - holder.assigning_since).total_seconds()


def _after_asking(elapsed: float) -> str:
    """`` N s after the app asked`` when that moment is known (``elapsed`` not NaN)."""
    return "" if math.isnan(elapsed) else f" {elapsed:.0f} s after the app asked"


def _note_look(elapsed: float, *, done: bool) -> Flow[None]:
    """Teach the tenant's operation wait what a look ``elapsed`` seconds after the app asked
    found (nothing when that moment is not known)."""
    if not math.isnan(elapsed):
        yield from ask(NoteOperationLook(elapsed, done))


def _refused(
    error: PermanentError, message: AssignmentMessage, number: str, limits: MessageLimits
) -> Flow[UserResult]:
    """What a refused assignment means for the user.

    A user Teams does not know or has no Teams Phone licence for waits (with patience); a number
    Teams says is taken is looked up, because it may be on this very user already; a refusal
    the classifier cannot name is tried again after a backoff.
    """
    if error.reason in {Reason.USER_NOT_FOUND, Reason.NOT_LICENSED}:
        user = yield from ask(ReadTeamsUser(message.user_id))
        if isinstance(user, PermanentError):
            return UserResult(Outcome.FAILED, user.reason, user.message, number)
        now = yield from ask(Now())
        if teams_ready(user, now):
            # Teams caught up between refusing and the look: the redelivery will succeed.
            raise TemporaryError(
                f"Teams refused {number} but now shows the user ready: {error.message}"
            )
        stored = yield from ask(ReadStatus(message.user_id))
        return waiting_for_teams(
            user, stored, now=now, patience=limits.patience, number=number,
        )
    if error.reason is Reason.ASSIGNED_ELSEWHERE:
        # "Already assigned" may mean to this very user: an earlier try whose answer was lost
        # (a 504 after Teams accepted, and the SDK's retry posted it again).
        in_teams = yield from ask(FindNumber(number))
        on_user = in_teams is not None and in_teams.target_id == message.user_id
        seen: TeamsUser | None = None
        if in_teams is None or in_teams.target_id is None:
            # Teams' number list shows nobody; the user's configuration is a second look.
            seen = yield from ask(LookAtTeamsUser(message.user_id))
            on_user = seen is not None and seen.has_number(number)
        if on_user:
            yield from ask(MarkAssigned(number, message.user_id))
            yield from ask(NoteFound(number, message.user_id))
            return (yield from _read_back(message, number, _already(number), seen))
    if error.reason in RETRY_REASONS:
        # A refusal nobody can name yet may be Teams' passing trouble in words the classifier
        # has not seen: the full text is recorded, and a later run tries again after a backoff.
        stored = yield from ask(ReadStatus(message.user_id))
        now = yield from ask(Now())
        return failed_with_backoff(
            error.reason, f"{error.message} The app tries again after a backoff.", number,
            stored, now,
        )
    return UserResult(Outcome.FAILED, error.reason, error.message, number)


def _read_back(
    message: AssignmentMessage, number: str, done: UserResult, seen: TeamsUser | None
) -> Flow[UserResult]:
    """``done`` when the user's Teams configuration shows the number with Enterprise Voice on;
    otherwise a failure to verify again after a backoff (the number stays the app's). A
    configuration that does not show the number yet is ``read_back_pending`` until
    ``READ_BACK_PATIENCE`` has passed, and only then ``verify_failed``.

    ``seen`` is a configuration already read after the write, so it is not read twice.
    """
    user: TeamsUser | PermanentError | None = seen
    if user is None:
        user = yield from ask(ReadTeamsUser(message.user_id))
    if isinstance(user, PermanentError):
        return UserResult(
            Outcome.FAILED, user.reason,
            f"{number} is on the user in Teams, but reading it back failed: {user.message}",
            number,
        )
    check = verify_assignment(user, number)
    if check.ok or not isinstance(check.reason, Reason):
        return done
    stored = yield from ask(ReadStatus(message.user_id))
    now = yield from ask(Now())
    if check.reason is Reason.VERIFY_FAILED:
        return read_back_missed(
            check.message,
            f"Teams took {number} for the user but their Teams configuration does not show it "
            "yet.", number, stored, now,
        )
    return failed_with_backoff(check.reason, check.message, number, stored, now)


def _release_previous(
    message: AssignmentMessage, number: str, seen: TeamsUser | None, rules: TenantRules
) -> Flow[bool]:
    previous = message.previous_number
    if not previous or previous == number:
        return False
    cooling = (yield from ask(Now())) if rules.cooling_days else None
    released = yield from release_flow(
        previous, message.user_id, cooling_since=cooling,
        still_on_user=None if seen is None else seen.has_number(previous),
    )
    return released is Release.RELEASED


# --- unassign -----------------------------------------------------------------------------------


def unassign_flow(message: AssignmentMessage, limits: MessageLimits) -> Flow[UserResult]:
    """Take back a number this app gave the user (only with its ownership marker).

    On a redelivery, a claim the app already let go of and a number no longer on the user mean
    an earlier try took it back and died before saying so: the result is the same as then.
    """
    number = message.previous_number
    assert number is not None  # AssignmentMessage refuses an unassign without previousNumber
    cooling = (yield from ask(Now())) if limits.rules.cooling_days else None
    released = yield from release_flow(number, message.user_id, cooling_since=cooling)
    if released is Release.LET_GO and limits.look_first:
        in_teams = yield from ask(FindNumber(number))
        if in_teams is None or in_teams.target_id != message.user_id:
            released = Release.RELEASED
    if released is not Release.RELEASED:
        return UserResult(
            Outcome.SKIPPED, Reason.STALE,
            f"This app does not hold {number} for the user (any more); nothing was taken back.",
            number,
        )
    reason = reason_named(message.reason, Reason.LEFT_GROUP)
    return UserResult(Outcome.UNASSIGNED, reason, f"Took back {number} in Teams.", number)


class Release(Enum):
    """What became of a number the app was to take back."""

    RELEASED = "released"  # taken back now (from Teams if it was still there) and let go
    LET_GO = "let_go"  # no claim for the user any more, or one the app released before
    NOT_HELD = "not_held"  # the user's claim has no ownership marker: never the app's to take


def release_flow(
    number: str,
    user_id: str,
    *,
    cooling_since: datetime | None,
    still_on_user: bool | None = None,
) -> Flow[Release]:
    """Take back a number this app gave the user: only with the ownership marker set.

    ``still_on_user`` is what a configuration read just now showed (None: not known, so Teams
    is asked); a number no longer on the user needs no write. A refusal to take it back is
    retried like a temporary failure, then reported.
    """
    claim = yield from ask(GetClaim(number))
    if claim is None or claim.holder_user_id != user_id:
        return Release.LET_GO
    if not claim.held:
        return Release.LET_GO if claim.released_at is not None else Release.NOT_HELD
    if still_on_user is None:
        in_teams = yield from ask(FindNumber(number))
        if in_teams is None:
            still_on_user = yield from _on_user_after_all(number, user_id)
        else:
            still_on_user = in_teams.target_id == user_id
    if still_on_user:
        refused = yield from ask(UnassignNumber(number))
        if isinstance(refused, PermanentError):
            yield from ask(Note(
                "warning", f"could not take back {number} from {user_id}: {refused.message}",
            ))
            raise TemporaryError(refused.message) from refused
    yield from ask(ReleaseClaim(number, user_id, cooling_since))
    return Release.RELEASED


def _on_user_after_all(number: str, user_id: str) -> Flow[bool]:
    """Whether the user's Teams configuration shows ``number`` although the number list has no
    record of it: a second, independent look before a claim is let go on "no record" (a list
    answer the app misread, or one Teams has not caught up with, must not make the app forget
    a number it still has on the user)."""
    user = yield from ask(ReadTeamsUser(user_id))
    if isinstance(user, PermanentError):
        raise TemporaryError(
            f"Teams lists no record of {number}, and the configuration of {user_id} that "
            f"would confirm it could not be read: {user.message}"
        ) from user
    if user is None or not user.has_number(number):
        return False
    yield from ask(Note("warning", (
        f"Teams lists no record of {number}, but the configuration of {user_id} still shows "
        "it: taking it back"
    )))
    return True


# --- results ------------------------------------------------------------------------------------


def _stale(fresh: Member | None, number: str, rules: TenantRules) -> bool:
    """Whether the directory no longer gives the user ``number`` (gone, disabled, changed)."""
    current = check_number(fresh.telephone_number, rules) if fresh else None
    return (
        fresh is None or not fresh.account_enabled or current is None
        or current.number != number
    )


def _assigned(message: AssignmentMessage, number: str) -> UserResult:
    reason = reason_named(message.reason, Reason.ASSIGNED)
    if reason is Reason.ALREADY_ASSIGNED:  # a re-check message that found it gone: written
        reason = Reason.ASSIGNED
    return UserResult(Outcome.ASSIGNED, reason, f"Assigned {number} in Teams.", number)


def _already(number: str) -> UserResult:
    return UserResult(
        Outcome.KEPT, Reason.ALREADY_ASSIGNED, f"Teams already has {number} on this user.",
        number,
    )


def _duplicate(number: str, holder: Claim) -> UserResult:
    return UserResult(
        Outcome.SKIPPED, Reason.DUPLICATE,
        f"{number} already belongs to {holder.holder_upn}; a personal number goes to one "
        "user only. Correct one of the two telephoneNumbers.", number,
    )
