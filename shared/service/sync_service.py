"""The imperative shell: gather → plan → apply → record, for the timer/HTTP run and one message.

Each entry point takes the tenant's ``TenantContext`` (``shared.service.context``): its ports,
rules, clock and limits. Nothing here knows about msgraph, Azure Storage or the Functions host, so
the same code runs under the host, the local runner and the unit tests.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from shared.config import TenantSettings
from shared.core.directory import Claim, Member, adopted_by_intent
from shared.core.errors import OperationPendingError, PermanentError, TemporaryError
from shared.core.messages import POLICY_ACTIONS, AssignmentMessage, MessageError
from shared.core.outcomes import (
    VERIFY_REASONS,
    WAITING_REASONS,
    Action,
    Outcome,
    Reason,
    UserResult,
)
from shared.core.phone_numbers import check_number
from shared.core.planner import CurrentState, Decision, Plan, plan
from shared.core.records import Hold, InFlight, RunRecord, UserStatus
from shared.core.teams_readiness import TeamsUser, backoff, readiness, verify_assignment
from shared.core.tenant_rules import TenantRules
from shared.service.collector_pause import cycle_collection_paused
from shared.service.context import TenantContext
from shared.service.directory_refresh import ReadKind, read_directory
from shared.service.policy_service import (
    carry_out_policy_message,
    plan_policy_run,
    record_policy_statuses,
)
from shared.service.ports import (
    ClaimStore,
    InFlightStore,
    SnapshotStore,
    TeamsUserReader,
)

log = logging.getLogger(__name__)

# What a decision that needs no Teams write means once recorded.
_RECORDED = {Action.KEEP: Outcome.KEPT, Action.SKIP: Outcome.SKIPPED, Action.HOLD: Outcome.HELD}


LEASE_TTL = timedelta(minutes=10)  # the function timeout: a crashed run frees the tenant then


@dataclass(frozen=True, slots=True)
class SyncSummary:
    """What one planning run read, decided and enqueued."""

    tenant_id: str
    run_id: str
    dry_run: bool
    members: int
    enqueued: int
    plan: Plan
    skipped_because: str | None = None
    read: ReadKind = "full"
    """How the directory was read: ``full`` or ``delta``."""

    def to_json(self) -> dict[str, object]:
        """The JSON answer of the HTTP trigger (every decision on a dry run)."""
        body: dict[str, object] = {
            "tenantId": self.tenant_id,
            "runId": self.run_id,
            "dryRun": self.dry_run,
            "members": self.members,
            "enqueued": self.enqueued,
            "read": self.read,
            "summary": self.plan.summary(),
        }
        if self.skipped_because:
            body["skipped"] = self.skipped_because
        if self.dry_run:
            body["decisions"] = [decision.to_json() for decision in self.plan.decisions]
        return body


async def run_sync(context: TenantContext, run_id: str, *, dry_run: bool = False) -> SyncSummary:
    """Read the voice group and Teams, plan every user, enqueue the decisions that need work.

    With delta reads on (``context.limits``) most runs read only what changed since the last
    one (see ``shared.service.directory_refresh``); the plan is the same as after a full read.

    Only one run plans a tenant at a time (a lease with expiry); a second one is recorded as
    skipped and returns. Decisions without work (keep, skip, hold) are recorded here, only when
    they changed. A user with a change still queued (in flight) is neither enqueued again nor
    recorded: the queued change records them. A dry run reads and plans but writes nothing.

    A run that cannot finish is logged as an error naming the tenant and recorded ``failed``
    with the reason; a run whose voice group read back empty is logged as an error and recorded
    ``held_empty_group`` (nobody loses a number: an empty group is an outage).
    """
    tenant, ledger, clock = context.tenant, context.ports.ledger, context.clock
    started = clock()
    if not dry_run:
        holder = await ledger.acquire_lease(run_id, started, LEASE_TTL)
        if holder is not None:
            why = f"run {holder} is still planning this tenant"
            log.warning("sync run %s for tenant %s skipped: %s", run_id, tenant.key, why)
            await ledger.record_run(RunRecord(
                run_id, started, clock(), "skipped", f"Skipped: {why}.", {},
            ))
            return SyncSummary(tenant.key, run_id, dry_run, 0, 0, Plan(()), why)
    try:
        summary = await _plan_and_apply(context, run_id, dry_run=dry_run)
    except Exception as error:
        why = failure_reason(error)
        log.error("sync run %s for tenant %s failed: %s", run_id, tenant.key, why)  # noqa: TRY400 - the host logs the traceback; this line is the alert's
        if not dry_run:
            await ledger.record_run(RunRecord(run_id, started, clock(), "failed", why, {}))
            await ledger.release_lease(run_id)
        raise
    outcome, message = run_outcome(summary.plan)
    if outcome == RUN_HELD_EMPTY_GROUP:
        log.error("sync run %s for tenant %s: %s", run_id, tenant.key, message)
    if not dry_run:
        by_outcome = Counter(decision.action.value for decision in summary.plan.decisions)
        counts = {"members": summary.members, "enqueued": summary.enqueued,
                  f"{summary.read}Read": 1, **by_outcome}
        await ledger.record_run(RunRecord(run_id, started, clock(), outcome, message, counts))
        await ledger.release_lease(run_id)
    return summary


RUN_COMPLETED = "completed"
RUN_HELD_EMPTY_GROUP = "held_empty_group"


def run_outcome(decided: Plan) -> tuple[str, str]:
    """How a run that planned ``decided`` ended, as recorded in its run record: ``completed``,
    or ``held_empty_group`` with what was held (pure)."""
    held = sum(1 for d in decided.decisions if d.reason is Reason.EMPTY_MEMBER_LIST)
    if decided.decisions and not held:
        return RUN_COMPLETED, ""
    if not decided.decisions:
        # Nobody in the group and nobody to hold: still not a state a customer would choose.
        return RUN_HELD_EMPTY_GROUP, (
            "The voice group read back empty; nothing was assigned or taken back. Check the "
            "group (VOICE_GROUP_ID) and the app's permission to read its members."
        )
    return RUN_HELD_EMPTY_GROUP, (
        f"The voice group read back empty; {held} number(s) the app gave are held, not taken "
        "back, because an empty group is far more likely an outage than a company without "
        "phones. Check the group (VOICE_GROUP_ID) and the app's permission to read it."
    )


def failure_reason(error: BaseException) -> str:
    """What a failed run's record and alert say: the reason code and the failure (pure)."""
    if isinstance(error, PermanentError):
        return f"{error.reason.value}: {error.message}"
    if isinstance(error, TemporaryError):
        return f"temporary failure (the next run tries again): {error.message}"
    return f"{type(error).__name__}: {error}"


async def _plan_and_apply(context: TenantContext, run_id: str, *, dry_run: bool) -> SyncSummary:
    tenant, ports, clock = context.tenant, context.ports, context.clock
    read_at = clock()
    read, stored, recorded, queued = await asyncio.gather(
        read_directory(context, now=read_at, dry_run=dry_run),
        ports.claims.list_claims(),
        ports.statuses.list_statuses(),
        ports.in_flight.list_in_flight(read_at),
    )
    members = read.members
    now = clock()
    # A number Teams has on its holder after the app set out to assign it is the app's, even
    # when the answer to that write was lost: marked now, it is planned as the app's.
    adopted = adopted_by_intent(stored, read.teams)
    stored = {**stored, **{claim.number: replace(claim, assigned=True) for claim in adopted}}
    with cycle_collection_paused():
        decided = plan(
            members, context.rules, CurrentState(claims=stored, teams=read.teams, now=now)
        )
    existing = {status.user_id: status for status in recorded}
    busy = {marker.user_id for marker in queued if marker.kind == NUMBER_CHANGE}
    # Users Teams was not ready for, or whose read-back failed, are looked at again only once
    # their retry time has passed (backoff); until then nothing is enqueued or recorded for them.
    # A user whose change is still queued is left to it: enqueued again, the change would be
    # carried out twice and its outcome recorded as "kept".
    later = {id(d) for d in decided.decisions if _look_later(d, existing.get(d.user_id), now)}
    waiting = {id(d) for d in decided.decisions if d.user_id in busy}
    recheck = [d for d in decided.decisions if _verify_again(d, existing.get(d.user_id), now)
               and id(d) not in waiting]
    work = [d for d in decided.work() if id(d) not in later | waiting] + recheck
    aside = later | waiting | {id(d) for d in recheck}
    unchanged = [d for d in decided.decisions if id(d) not in aside]
    # Main-number policies (shared.service.policy_service) record their users' statuses.
    policy_run = await plan_policy_run(context, run_id, decided, existing, now)
    unchanged = [d for d in unchanged if d.user_id not in policy_run.status_owned]
    policy_run = policy_run.without(
        {marker.user_id for marker in queued if marker.kind == POLICY_CHANGE}
    )
    messages = [
        _message(tenant.key, run_id, decision,
                 read_at if decision.user_id in read.read_now else None)
        for decision in work
    ]
    if not dry_run:
        await _bounded(
            ports.claims.mark_assigned(claim.number, claim.holder_user_id) for claim in adopted
        )
        await _track_grace(ports.claims, decided.decisions, stored, now)
        await _store_holds(context, run_id, decided.decisions, now)
        await _claim_for_winners(ports.claims, run_id, decided.decisions, stored)
        await _record_unchanged(context, run_id, unchanged, existing=existing)
        await _enqueue(context, [*messages, *policy_run.messages], now)
        await record_policy_statuses(context, run_id, clock(), policy_run, existing=existing)
    summary = SyncSummary(
        tenant_id=tenant.key, run_id=run_id, dry_run=dry_run, members=len(members),
        enqueued=0 if dry_run else len(work) + len(policy_run.messages), plan=decided,
        read=read.kind,
    )
    log.info(
        "sync run %s for tenant %s: %s read (%s), %d members, %d changes enqueued%s "
        "(%d looked at later, %d still queued, %d found assigned by the app); %s",
        run_id, tenant.key, read.kind, read.why, summary.members, summary.enqueued,
        " (dry run)" if dry_run else "", len(later), len(waiting), len(adopted),
        decided.summary()["byReason"],
    )
    return summary


#: In-flight marker kinds: a user can have a number change and a policy change queued at once.
NUMBER_CHANGE = "number"
POLICY_CHANGE = "policies"
#: How long a queued change keeps its user from being enqueued again. Longer than a large
#: onboarding's queue (10,000 users drain in ~20 minutes at Teams' pace) and the host's retries;
#: a message lost for good is planned again after this.
IN_FLIGHT_TTL = timedelta(hours=1)


def change_kind(message: AssignmentMessage) -> str:
    """The in-flight marker kind of a message."""
    return POLICY_CHANGE if message.action in POLICY_ACTIONS else NUMBER_CHANGE


async def _enqueue(
    context: TenantContext, messages: Sequence[AssignmentMessage], now: datetime
) -> None:
    """Mark each message's user in flight, then send the messages.

    Marked first, so that no later run can slip in between; should sending fail, the markers
    are withdrawn again (best effort: a marker left behind only delays its user until it
    expires, and a message sent twice is carried out once).
    """
    if not messages:
        return
    markers = [
        InFlight(m.user_id, change_kind(m), m.idempotency_key, now, now + IN_FLIGHT_TTL)
        for m in messages
    ]
    in_flight = context.ports.in_flight
    await in_flight.mark_queued(markers)
    try:
        await context.ports.queue.send(messages)
    except Exception:
        await _bounded(in_flight.clear(m.user_id, m.kind, m.idempotency_key) for m in markers)
        raise


def _look_later(decision: Decision, status: UserStatus | None, now: datetime) -> bool:
    """Whether the user's stored status says not to look at them before its retry time: an
    assignment Teams was not ready for, or a number whose read-back failed."""
    if status is None or status.retry_at is None or status.retry_at <= now:
        return False
    if decision.action is Action.ASSIGN:
        return status.reason in WAITING_REASONS
    return _failed_read_back(decision, status)


def _verify_again(decision: Decision, status: UserStatus | None, now: datetime) -> bool:
    """Whether a number Teams has on the user failed its read-back and is due to be checked
    again (by the queue function, which records kept once it reads back fine)."""
    return (
        status is not None and _failed_read_back(decision, status)
        and (status.retry_at is None or status.retry_at <= now)
    )


def _failed_read_back(decision: Decision, status: UserStatus) -> bool:
    return (
        decision.action is Action.KEEP and status.reason in VERIFY_REASONS
        and status.number == decision.number
    )


def _message(
    tenant_id: str, run_id: str, decision: Decision, read_at: datetime | None
) -> AssignmentMessage:
    # A kept number is enqueued only to verify it again: the assign path finds it in Teams.
    action: Literal["assign", "unassign"] = (
        "assign" if decision.action in {Action.ASSIGN, Action.KEEP} else "unassign"
    )
    return AssignmentMessage(
        idempotency_key=f"{run_id}|{decision.user_id}|{action}|"
                        f"{decision.number or decision.previous_number}",
        tenant_id=tenant_id,
        run_id=run_id,
        user_id=decision.user_id,
        user_principal_name=decision.user_principal_name,
        telephone_number=decision.raw_number,
        read_position=decision.read_position,
        action=action,
        reason=decision.reason.value,
        number=decision.number,
        previous_number=decision.previous_number,
        read_at=read_at,
    )


async def _bounded(calls: Iterable[Awaitable[object]], limit: int = 16) -> None:
    gate = asyncio.Semaphore(limit)

    async def run(call: Awaitable[object]) -> None:
        async with gate:
            await call

    await asyncio.gather(*(run(call) for call in calls))


async def _store_holds(
    context: TenantContext, run_id: str, decisions: Sequence[Decision], now: datetime
) -> None:
    """Keep this run's guard holds for approval; drop earlier ones no run wants any more."""
    ledger = context.ports.ledger
    held = [d for d in decisions if d.reason is Reason.MASS_UNASSIGN_GUARD and d.previous_number]
    wanted = {(d.user_id, d.previous_number) for d in held}
    for hold in await ledger.holds("pending"):
        if (hold.user_id, hold.number) not in wanted:
            await ledger.update_hold(replace(
                hold, status="dropped", decided_by=f"sync run {run_id}", decided_at=now,
            ))
    if not held:
        return
    log.error(
        "sync run %s for tenant %s: the mass-unassign guard held %d unassignments; nothing is "
        "taken back until someone approves (POST /api/holds/approve or "
        "'python -m shared.cli holds approve')", run_id, context.tenant.key, len(held),
    )
    await ledger.save_holds([
        Hold(run_id, d.user_id, d.user_principal_name, d.previous_number or "",
             d.reason.value, d.message, "pending", now)
        for d in held
    ])


async def approve_holds(
    context: TenantContext, approved_by: str, run_id: str | None = None
) -> list[Hold]:
    """Approve the pending holds (of one run, or all) and enqueue their unassignments.

    The queue function still only takes back numbers with this app's ownership marker.
    """
    if not approved_by.strip():
        raise ValueError("approvedBy: say who approves (a name or e-mail), got an empty value")
    ledger = context.ports.ledger
    now = context.clock()
    approved = []
    for hold in await ledger.holds("pending"):
        if run_id is not None and hold.run_id != run_id:
            continue
        decided = replace(hold, status="approved", decided_by=approved_by, decided_at=now)
        await ledger.update_hold(decided)
        approved.append(decided)
    await context.ports.queue.send([
        AssignmentMessage(
            idempotency_key=f"approved|{hold.key}",
            tenant_id=context.tenant.key, run_id=hold.run_id, user_id=hold.user_id,
            user_principal_name=hold.user_principal_name, telephone_number=None,
            read_position=None, action="unassign", reason=Reason.APPROVED.value,
            previous_number=hold.number,
        )
        for hold in approved
    ])
    log.warning("%d held unassignments approved by %s", len(approved), approved_by)
    return approved


async def _track_grace(
    claims: ClaimStore,
    decisions: Sequence[Decision],
    stored: dict[str, Claim],
    now: datetime,
) -> None:
    """Start the grace period of numbers a run first wants back; cancel it for users who came
    back (or whose number came back) before it ended."""
    pending = {
        d.previous_number for d in decisions
        if d.previous_number and (
            d.reason is Reason.GRACE_PERIOD or d.action is Action.UNASSIGN
            or (d.action is Action.HOLD and d.reason is Reason.MASS_UNASSIGN_GUARD)
        )
    }
    calls = []
    for number, claim in stored.items():
        if not claim.held:
            continue
        if number in pending and claim.release_pending_since is None:
            calls.append(claims.set_release_pending(number, claim.holder_user_id, now))
        elif number not in pending and claim.release_pending_since is not None:
            calls.append(claims.set_release_pending(number, claim.holder_user_id, None))
    await _bounded(calls)


async def _claim_for_winners(
    claims: ClaimStore,
    run_id: str,
    decisions: Sequence[Decision],
    stored: dict[str, Claim],
) -> None:
    """Claim each number for the member the plan gave it to, before any message is processed.

    Queue messages run concurrently and in any order, so read order is settled here: a later
    reader's message then finds the number claimed. A stale claim (its holder no longer carries
    the number and never had it assigned) moves to the winner.
    """
    calls = []
    first: list[Claim] = []
    for decision in decisions:
        if decision.action not in {Action.ASSIGN, Action.KEEP} or decision.number is None:
            continue
        wanted = Claim(
            number=decision.number,
            holder_user_id=decision.user_id,
            holder_upn=decision.user_principal_name,
            run_id=run_id,
            read_position=decision.read_position or 0,
        )
        current = stored.get(decision.number)
        if current is None:
            first.append(wanted)
        elif current.holder_user_id != decision.user_id:
            calls.append(claims.transfer(current.holder_user_id, wanted))
    await _bounded([claims.claim_all(first), *calls])


async def _record_unchanged(
    context: TenantContext,
    run_id: str,
    decisions: Sequence[Decision],
    *,
    existing: dict[str, UserStatus],
) -> None:
    """Record keep/skip/hold decisions, skipping users whose stored status says the same."""
    statuses = context.ports.statuses
    now = context.clock()
    calls = []
    first: list[UserStatus] = []
    for decision in decisions:
        outcome = _RECORDED.get(decision.action)
        if outcome is None:
            continue
        status = _status(decision, outcome, run_id, now)
        before = existing.get(decision.user_id)
        if before is None:
            first.append(status)
        elif _news(before, status):
            calls.append(statuses.record(status))
    await _bounded([statuses.record_first(first), *calls])


def _news(before: UserStatus | None, after: UserStatus) -> bool:
    """Whether a status says something the stored one does not (so the row is written)."""
    if before is None:
        return True
    if after.outcome is Outcome.KEPT and before.outcome in {Outcome.ASSIGNED, Outcome.KEPT}:
        # "assigned in run X" stays the better record of a number that is still there.
        return before.number != after.number
    return (before.outcome, before.reason, before.number, before.message) != (
        after.outcome, after.reason, after.number, after.message
    )


def _status(decision: Decision, outcome: Outcome, run_id: str, now: datetime) -> UserStatus:
    return UserStatus(
        user_id=decision.user_id,
        user_principal_name=decision.user_principal_name,
        outcome=outcome,
        reason=decision.reason,
        number=decision.number or decision.previous_number or decision.raw_number,
        message=decision.message,
        run_id=run_id,
        read_position=decision.read_position if decision.read_position is not None else -1,
        updated_at=now,
    )


def check_tenant(message: AssignmentMessage, tenant: TenantSettings) -> None:
    """Refuse a message planned for another tenant.

    Raises:
        MessageError: naming the message's tenant and this app's.
    """
    if message.tenant_id != tenant.key:
        raise MessageError(
            f"tenantId={message.tenant_id!r} is not the tenant this app serves ({tenant.key})"
        )


async def process_assignment(
    context: TenantContext,
    message: AssignmentMessage,
    *,
    final_attempt: bool = False,
    redelivered: bool = False,
) -> UserResult | None:
    """Carry out one planned change, after re-checking it against the directory and the claims.

    An assignment first asks Teams whether it is ready for the user (known, licensed for Teams
    Phone); a user it is not ready for is ``skipped`` (``waiting_for_teams``, ``not_licensed``)
    with a time to look again, and ``failed`` once ``readiness_patience`` (like every limit
    named here, from ``context.limits``) has passed since the wait began. After the assignment
    the user's Teams configuration is read back: without the number or without Enterprise
    Voice the user is ``failed`` (``verify_failed``, ``ev_not_enabled``), though the number
    stays marked as the app's.

    The user is read again from the directory before a write unless the plan read them less
    than ``recheck_after`` ago (and this is the first delivery): a change planned from older
    data that no longer holds is ``skipped``/``stale`` (a user the app has never recorded gets
    no status row: the message may be forged or far older than the directory).

    Safe to run more than once for the same message: a completed message's idempotency key is
    recorded and a redelivery returns None at once; short of that, claims are conditional, the
    intent to assign is recorded on the claim before Teams is asked, a redelivered or
    already-owned number is looked up in Teams before any write, and a number already where it
    should be is not written again. Once the change is done (or given up) its user's in-flight
    marker is cleared, so the next run may plan the user again. A message that comes back
    after a long Graph wait (over ``defer_beyond_seconds``) is put back on the queue instead.
    ``final_attempt``: the host's last delivery; ``redelivered``: not its first.

    Raises:
        MessageError: the message belongs to another tenant or plans nothing.
        TemporaryError: retry later. On the final attempt any failure, temporary or not, is
            recorded as the user's status first.
    """
    check_tenant(message, context.tenant)
    ports, clock = context.ports, context.clock
    if await ports.ledger.effect_done(message.idempotency_key):
        log.info("message %s was already carried out; nothing to do", message.idempotency_key)
        await _done_in_flight(ports.in_flight, message)
        return None
    result: UserResult | None
    try:
        if message.action in POLICY_ACTIONS:
            result = await carry_out_policy_message(context, message)
        elif message.action == "unassign":
            result = await _unassign(context, message)
        else:
            result = await _assign(
                context, message, look_first=redelivered,
                reread=redelivered or not _fresh(message, clock(), context.limits.recheck_after),
            )
    except TemporaryError as error:
        return await _after_temporary(context, error, message, final_attempt=final_attempt)
    except Exception as error:
        # Whatever failed (a storage outage, a bug), the last try leaves the user a status a
        # helpdesk can read, rather than a message in the poison queue and nothing else.
        if final_attempt:
            await _give_up(context, message, f"Gave up after {type(error).__name__}: {error}")
        raise
    if result is not None:  # None: a policy revocation whose user's status is the number flow's
        await _record(context, message, result)
    await ports.ledger.mark_effect_done(message.idempotency_key, clock())
    await _done_in_flight(ports.in_flight, message)
    if result is not None:
        log.info(
            "user %s (%s): %s/%s %s", message.user_principal_name, message.user_id,
            result.outcome, result.reason, result.number or "",
        )
    return result


async def _after_temporary(
    context: TenantContext,
    error: TemporaryError,
    message: AssignmentMessage,
    *,
    final_attempt: bool,
) -> UserResult | None:
    """Defer the message on the queue, give up on it, or raise for the host's retry."""
    delay = _deferral(error, context.limits.defer_beyond_seconds)
    if delay is not None and message.deferrals < MAX_DEFERRALS:
        # Wait on the queue, not on the worker: the message comes back after the delay.
        await context.ports.queue.send_later(message.model_copy(update={
            "deferrals": message.deferrals + 1,
            "operation_location": getattr(error, "location", message.operation_location),
        }), delay)
        log.info("user %s: %s; looking again in %d s", message.user_principal_name,
                 error.message, delay)
        return None
    if delay is not None or final_attempt:
        failed = await _give_up(
            context, message, f"Gave up after repeated temporary failures: {error.message}"
        )
        if delay is not None:
            return failed  # deferred too often: recorded as failed, the message is done
    raise error


async def _give_up(context: TenantContext, message: AssignmentMessage, why: str) -> UserResult:
    """Record the change as failed (best effort: storage may be what failed) and let the next
    run plan the user again."""
    failed = UserResult(
        Outcome.FAILED, Reason.ASSIGNMENT_FAILED, why, message.number or message.previous_number,
    )
    try:
        await _record(context, message, failed)
        await _done_in_flight(context.ports.in_flight, message)
    except Exception as error:  # noqa: BLE001 - the original failure is what the host must see
        log.error(  # noqa: TRY400 - the failure being given up on is raised after this
            "user %s: could not record the failure (%s: %s); the message goes to the poison "
            "queue", message.user_principal_name, type(error).__name__, error,
        )
    return failed


async def _done_in_flight(in_flight: InFlightStore, message: AssignmentMessage) -> None:
    await in_flight.clear(message.user_id, change_kind(message), message.idempotency_key)


async def _assign(
    context: TenantContext, message: AssignmentMessage, *, look_first: bool, reread: bool
) -> UserResult | None:
    ports, clock = context.ports, context.clock
    claims, teams_users = ports.claims, ports.teams_users
    number = message.number
    assert number is not None  # AssignmentMessage refuses an assign without a number
    fresh = await ports.users.read_user(message.user_id) if reread else None
    if reread and _stale(fresh, number, context.rules):
        if not await _served(ports.snapshots, message.user_id, fresh):
            log.warning(
                "assign message for user %s (%s), who is not in the voice group and whom the "
                "directory does not give %s: nothing done, nothing recorded",
                message.user_principal_name, message.user_id, number,
            )
            return None
        return UserResult(
            Outcome.SKIPPED, Reason.STALE,
            f"The directory changed after this run planned to assign {number}; the next run "
            "decides again.", number,
        )
    holder = await claims.claim(Claim(
        number=number, holder_user_id=message.user_id, holder_upn=message.user_principal_name,
        run_id=message.run_id, read_position=message.read_position or 0,
    ))
    if holder.holder_user_id != message.user_id:
        return _duplicate(number, holder)
    intended = holder.assigning_since is not None and not holder.assigned
    # An earlier try of this run's change put the number there (its intent is recorded, and the
    # claim is this run's): found now, the app assigned it, and the status says so.
    assigned_by_this_change = holder.assigning_since is not None and (
        not holder.assigned or holder.run_id == message.run_id
    ) and message.reason != Reason.ALREADY_ASSIGNED.value
    if look_first or holder.assigned or intended or (
        message.reason == Reason.ALREADY_ASSIGNED.value
    ):
        # This app put the number there before (a later run planned it again), an earlier try
        # may have (its intent is recorded), or Teams had it and it is due to be read back:
        # look first, write only if it is not there.
        seen = await _look(teams_users, message.user_id)
        if seen is not None and seen.has_number(number):
            await claims.mark_assigned(number, message.user_id)
            await ports.snapshots.note_number(number, message.user_id)
            found = _assigned(message, number) if assigned_by_this_change else _already(number)
            return await _read_back(context, message, number, found, seen=seen)
    # The intent is stored before Teams is asked: should the answer be lost, the number found on
    # the user later is known to be the app's (and is taken back when they leave).
    if not await claims.mark_assigning(number, message.user_id, clock()):
        moved = await claims.get_claim(number)
        if moved is not None and moved.holder_user_id != message.user_id:
            return _duplicate(number, moved)
        raise TemporaryError(f"the claim on {number} changed while it was being assigned")
    looked: list[TeamsUser] = []

    async def landed() -> bool:
        seen = await _look(teams_users, message.user_id)
        if seen is None or not seen.has_number(number):
            return False
        looked.append(seen)
        return True

    # Teams is asked nothing before the write: the assignment itself says whether the user is
    # ready and the number free, and the read-back doubles as the "operation done?" check, so a
    # new user costs three Graph requests (user, assignNumber, configuration).
    try:
        await ports.teams.assign_number(
            number, message.user_id, context.tenant.number_type,
            operation_location=message.operation_location, landed=landed,
        )
    except PermanentError as error:
        refused = await _refused(context, error, message, number)
        # Teams did not take it: the intent is withdrawn (a number found on the user keeps
        # the ownership marker it was just given).
        await claims.mark_assigning(number, message.user_id, None)
        if refused.reason not in WAITING_REASONS:
            # The directory no longer gives the user the old number, whatever became of the
            # new one; a user Teams is not ready for keeps theirs until it is.
            await _release_previous(context, message, number, None)
        return refused
    await claims.mark_assigned(number, message.user_id)
    # The read-back, taken once: it also says whether the old number is still there.
    seen = looked[-1] if looked else await _look(teams_users, message.user_id)
    # A new primary number replaces the old one in Teams; the old one is only taken back
    # (by its own write) if it is still there.
    await _release_previous(context, message, number, seen)
    return await _read_back(context, message, number, _assigned(message, number), seen=seen)


async def _served(snapshots: SnapshotStore, user_id: str, fresh: Member | None) -> bool:
    """Whether the user is one the app serves: in the stored voice group, or (before the first
    snapshot) known to the directory. A stale message for anyone else — a forged or mistyped
    user id — leaves no status row behind."""
    member = await snapshots.has_member(user_id)
    return member if member is not None else fresh is not None


def _assigned(message: AssignmentMessage, number: str) -> UserResult:
    reason = _reason(message.reason, Reason.ASSIGNED)
    if reason is Reason.ALREADY_ASSIGNED:  # a re-check message that found it gone: written
        reason = Reason.ASSIGNED
    return UserResult(Outcome.ASSIGNED, reason, f"Assigned {number} in Teams.", number)


def _duplicate(number: str, holder: Claim) -> UserResult:
    return UserResult(
        Outcome.SKIPPED, Reason.DUPLICATE,
        f"{number} already belongs to {holder.holder_upn}; a personal number goes to one "
        "user only. Correct one of the two telephoneNumbers.", number,
    )


async def _release_previous(
    context: TenantContext, message: AssignmentMessage, number: str, seen: TeamsUser | None
) -> None:
    previous = message.previous_number
    if not previous or previous == number:
        return
    await _release(
        context, previous, message.user_id, cooling_since=_cooling(context),
        still_on_user=None if seen is None else seen.has_number(previous),
    )


def _fresh(message: AssignmentMessage, now: datetime, recheck_after: timedelta) -> bool:
    """Whether the plan read this user from Graph recently enough to act without a re-read."""
    return (
        message.read_at is not None and message.deferrals == 0
        and timedelta(0) <= now - message.read_at <= recheck_after
    )


def _stale(fresh: Member | None, number: str, rules: TenantRules) -> bool:
    """Whether the directory no longer gives the user ``number`` (gone, disabled, changed)."""
    current = check_number(fresh.telephone_number, rules) if fresh else None
    return (
        fresh is None or not fresh.account_enabled or current is None
        or current.number != number
    )


def _already(number: str) -> UserResult:
    return UserResult(
        Outcome.KEPT, Reason.ALREADY_ASSIGNED, f"Teams already has {number} on this user.",
        number,
    )


async def _look(teams_users: TeamsUserReader, user_id: str) -> TeamsUser | None:
    """The user's Teams configuration for a quick look; None when unknown or unreadable (the
    caller then learns the answer the slower way)."""
    try:
        return await teams_users.read(user_id)
    except (PermanentError, TemporaryError) as error:
        log.info("could not look at %s in Teams: %s", user_id, error.message)
        return None


async def _refused(
    context: TenantContext, error: PermanentError, message: AssignmentMessage, number: str
) -> UserResult:
    """What a refused assignment means for the user.

    A user Teams does not know or has no Teams Phone licence for waits (with patience); a number
    Teams says is taken is looked up, because it may be on this very user already.
    """
    if error.reason in {Reason.USER_NOT_FOUND, Reason.NOT_LICENSED}:
        waiting = await _not_ready(context, message, number)
        if waiting is None:
            # Teams caught up between refusing and the look: the redelivery will succeed.
            raise TemporaryError(f"Teams refused {number} but now shows the user ready: "
                                 f"{error.message}")
        return waiting
    if error.reason is Reason.ASSIGNED_ELSEWHERE:
        in_teams = await context.ports.teams.find_number(number)
        if in_teams is not None and in_teams.target_id == message.user_id:
            await context.ports.claims.mark_assigned(number, message.user_id)
            # Noted in the snapshot like the app's own writes, so that delta runs stop
            # planning it until the next full read.
            await context.ports.snapshots.note_number(number, message.user_id)
            return await _read_back(context, message, number, _already(number), seen=None)
    return UserResult(Outcome.FAILED, error.reason, error.message, number)


async def _not_ready(
    context: TenantContext, message: AssignmentMessage, number: str
) -> UserResult | None:
    """None when Teams knows the user and they have Teams Phone; otherwise the wait to record.

    The patience counts from when the user's current wait began (kept in their status), the
    backoff from their attempts in a row; the stored status is read only for a user who waits.
    """
    patience = context.limits.readiness_patience
    try:
        user = await context.ports.teams_users.read(message.user_id)
    except PermanentError as error:
        return UserResult(Outcome.FAILED, error.reason, error.message, number)
    now = context.clock()
    if readiness(user, first_seen=now, now=now, patience=patience).ready:
        return None
    stored = await context.ports.statuses.get_status(message.user_id)
    waiting = stored is not None and stored.reason in WAITING_REASONS
    since = (stored.waiting_since if stored is not None and waiting else None) or now
    state = readiness(
        user, first_seen=since, now=now, patience=patience,
        attempts=stored.attempts if stored is not None else 0,
    )
    return UserResult(
        Outcome.FAILED if state.is_problem else Outcome.SKIPPED, Reason(state.state),
        state.message, number, retry_at=state.check_again_at, waiting_since=since,
    )


async def _read_back(
    context: TenantContext,
    message: AssignmentMessage,
    number: str,
    done: UserResult,
    *,
    seen: TeamsUser | None,
) -> UserResult:
    """``done`` when the user's Teams configuration shows the number with Enterprise Voice on;
    otherwise a failure to verify again after a backoff (the number stays the app's).

    ``seen`` is a configuration already read after the write, so it is not read twice.
    """
    try:
        user = seen or await context.ports.teams_users.read(message.user_id)
    except PermanentError as error:
        return UserResult(
            Outcome.FAILED, error.reason,
            f"{number} is on the user in Teams, but reading it back failed: {error.message}",
            number,
        )
    check = verify_assignment(user, number)
    if check.ok:
        return done
    stored = await context.ports.statuses.get_status(message.user_id)
    attempts = stored.attempts if stored is not None else 0
    return UserResult(
        Outcome.FAILED, Reason(check.reason), check.message, number,
        retry_at=context.clock() + backoff(attempts),
    )


def _cooling(context: TenantContext) -> datetime | None:
    return context.clock() if context.rules.cooling_days else None


async def _unassign(context: TenantContext, message: AssignmentMessage) -> UserResult:
    number = message.previous_number
    assert number is not None  # AssignmentMessage refuses an unassign without previousNumber
    released = await _release(
        context, number, message.user_id, cooling_since=_cooling(context)
    )
    reason = _reason(message.reason, Reason.LEFT_GROUP)
    if not released:
        return UserResult(
            Outcome.SKIPPED, Reason.STALE,
            f"This app does not hold {number} for the user (any more); nothing was taken back.",
            number,
        )
    return UserResult(Outcome.UNASSIGNED, reason, f"Took back {number} in Teams.", number)


MAX_DEFERRALS = 24


def _deferral(error: TemporaryError, defer_beyond_seconds: float) -> int | None:
    """Seconds to wait on the queue for this error, or None to retry the usual way."""
    wait = error.retry_after_seconds
    pending = isinstance(error, OperationPendingError)
    if pending or (wait is not None and wait > defer_beyond_seconds):
        return math.ceil(wait or 30)
    return None


def _reason(text: str, default: Reason) -> Reason:
    try:
        return Reason(text)
    except ValueError:
        return default


async def _release(
    context: TenantContext,
    number: str,
    user_id: str,
    *,
    cooling_since: datetime | None = None,
    still_on_user: bool | None = None,
) -> bool:
    """Take back a number this app gave the user: only with the ownership marker set.

    ``still_on_user`` is what a configuration read just now showed (None: not known, so Teams
    is asked); a number no longer on the user needs no write.
    """
    claims, teams = context.ports.claims, context.ports.teams
    claim = await claims.get_claim(number)
    if claim is None or claim.holder_user_id != user_id or not claim.held:
        return False
    if still_on_user is None:
        in_teams = await teams.find_number(number)
        still_on_user = in_teams is not None and in_teams.target_id == user_id
    if still_on_user:
        try:
            await teams.unassign_number(number, context.tenant.number_type)
        except PermanentError as error:
            log.warning("could not take back %s from %s: %s", number, user_id, error.message)
            raise TemporaryError(error.message) from error
    await claims.release(number, user_id, cooling_since=cooling_since)
    return True


async def _record(
    context: TenantContext, message: AssignmentMessage, result: UserResult
) -> None:
    await context.ports.statuses.record(UserStatus(
        user_id=message.user_id,
        user_principal_name=message.user_principal_name,
        outcome=result.outcome,
        reason=result.reason,
        number=result.number,
        message=result.message,
        run_id=message.run_id,
        read_position=message.read_position if message.read_position is not None else -1,
        updated_at=context.clock(),
        retry_at=result.retry_at,
        waiting_since=result.waiting_since,
    ))
