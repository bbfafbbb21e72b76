"""The timer's (and the HTTP trigger's) run: read → plan → decide → write, for one tenant.

The shell around two pure functions: ``shared.core.planner.plan`` (who gets which number) and
``shared.core.run_decisions.decide_run`` (what the run then writes: claims, grace periods,
holds, statuses, queue messages and their in-flight markers). This module reads what they need,
holds the tenant's lease, performs the writes in the order ``RunActions`` lists them and keeps
the run record. It decides nothing itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.core.messages import AssignmentMessage
from shared.core.outcomes import Outcome
from shared.core.planner import CurrentState, Plan, plan
from shared.core.records import InFlight, RunRecord
from shared.core.request_pace import release_delays
from shared.core.run_decisions import (
    RUN_HELD_EMPTY_GROUP,
    RunActions,
    RunInputs,
    claims_with_adopted,
    decide_run,
    failure_reason,
    run_outcome,
)
from shared.core.telemetry_events import (
    MassUnassignHeld,
    SyncRunCompleted,
    SyncRunFailed,
    SyncRunSkipped,
    oldest_waiting_minutes,
)
from shared.service.collector_pause import cycle_collection_paused
from shared.service.context import TenantContext
from shared.service.directory_refresh import ReadKind, read_directory
from shared.service.graph_request_tally import graph_requests_counted

log = logging.getLogger(__name__)

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
    oldest_waiting_minutes: float = 0.0
    """Age of the oldest change still on its way to Teams when the run read (0: none)."""

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
            context.events.emit(SyncRunSkipped(tenant.key, run_id, lease_holder=holder))
            return SyncSummary(tenant.key, run_id, dry_run, 0, 0, Plan(()), why)
    with graph_requests_counted() as tally:
        try:
            summary = await _plan_and_apply(context, run_id, dry_run=dry_run)
        except Exception as error:
            why = failure_reason(error)
            log.error("sync run %s for tenant %s failed: %s", run_id, tenant.key, why)  # noqa: TRY400 - the host logs the traceback; this line is the alert's
            if not dry_run:
                await ledger.record_run(RunRecord(run_id, started, clock(), "failed", why, {}))
                await ledger.release_lease(run_id)
                context.events.emit(SyncRunFailed(
                    tenant.key, run_id, why, _milliseconds(started, clock())))
            raise
    outcome, message = run_outcome(summary.plan)
    if outcome == RUN_HELD_EMPTY_GROUP:
        log.error("sync run %s for tenant %s: %s", run_id, tenant.key, message)
    if not dry_run:
        by_outcome = Counter(decision.action.value for decision in summary.plan.decisions)
        counts = {"members": summary.members, "enqueued": summary.enqueued,
                  f"{summary.read}Read": 1, **by_outcome}
        finished = clock()
        await ledger.record_run(RunRecord(run_id, started, finished, outcome, message, counts))
        await ledger.release_lease(run_id)
        context.events.emit(SyncRunCompleted(
            tenant.key, run_id, read_mode=summary.read, outcome=outcome,
            members=summary.members, enqueued=summary.enqueued,
            assign=by_outcome["assign"], keep=by_outcome["keep"], skip=by_outcome["skip"],
            unassign=by_outcome["unassign"], hold=by_outcome["hold"],
            sync_interval_minutes=context.limits.sync_interval_minutes,
            graph_requests=tally.requests, duration_ms=_milliseconds(started, finished),
            oldest_waiting_minutes=summary.oldest_waiting_minutes,
        ))
    return summary


def _milliseconds(started: datetime, finished: datetime) -> int:
    return max(0, round((finished - started).total_seconds() * 1000))


async def _plan_and_apply(context: TenantContext, run_id: str, *, dry_run: bool) -> SyncSummary:
    tenant, ports, clock = context.tenant, context.ports, context.clock
    read_at = clock()
    read, stored, recorded, queued, grants, pending = await asyncio.gather(
        read_directory(context, now=read_at, dry_run=dry_run),
        ports.claims.list_claims(),
        ports.statuses.list_statuses(),
        ports.in_flight.list_in_flight(read_at),
        ports.grants.list_grants(),
        ports.ledger.holds("pending"),
    )
    now = clock()
    # A number Teams has on its holder after the app set out to assign it is planned as the
    # app's (decide_run marks it so), even when the answer to that write was lost.
    _, planned_claims = claims_with_adopted(stored, read.teams)
    state = CurrentState(claims=planned_claims, teams=read.teams, now=now)
    with cycle_collection_paused():
        decided = plan(read.members, context.rules, state)
    actions = decide_run(RunInputs(
        tenant_id=tenant.key, run_id=run_id, decided=decided, rules=context.rules, now=now,
        claims=stored, teams=read.teams,
        statuses={status.user_id: status for status in recorded}, in_flight=queued,
        grants=grants, pending_holds=pending, read_now=read.read_now, read_at=read_at,
    ))
    if not dry_run:
        await _apply(context, run_id, actions)
        _tell_holds(context, run_id, actions, state)
    summary = SyncSummary(
        tenant_id=tenant.key, run_id=run_id, dry_run=dry_run, members=len(read.members),
        enqueued=0 if dry_run else actions.enqueued, plan=decided, read=read.kind,
        oldest_waiting_minutes=oldest_waiting_minutes(now, queued, recorded),
    )
    log.info(
        "sync run %s for tenant %s: %s read (%s), %d members, %d changes enqueued%s "
        "(%d looked at later, %d still queued, %d found assigned by the app); %s; "
        "main-number policies %s",
        run_id, tenant.key, read.kind, read.why, summary.members, summary.enqueued,
        " (dry run)" if dry_run else "", actions.looked_at_later, actions.still_queued,
        len(actions.adopted), decided.summary()["byReason"], dict(actions.policy_summary),
    )
    return summary


def _tell_holds(
    context: TenantContext, run_id: str, actions: RunActions, state: CurrentState
) -> None:
    """Once the run's holds are saved: the guard's event, and the users newly held counted."""
    key = context.tenant.key
    if actions.holds_to_save:
        threshold = context.rules.mass_unassign_threshold(len(state.holdings_by_user()))
        context.events.emit(MassUnassignHeld(key, run_id, len(actions.holds_to_save), threshold))
    newly_held = sum(1 for status in (*actions.statuses_first, *actions.statuses_changed)
                     if status.outcome is Outcome.HELD)
    context.events.count(key, Outcome.HELD, newly_held)


async def _apply(context: TenantContext, run_id: str, actions: RunActions) -> None:
    """Perform the run's writes in the order ``RunActions`` lists them (claims first, so that
    queue messages running in any order find read order settled)."""
    ports, key = context.ports, context.tenant.key
    claims, ledger, statuses = ports.claims, ports.ledger, ports.statuses
    await _bounded(claims.mark_assigned(c.number, c.holder_user_id) for c in actions.adopted)
    await _bounded(
        claims.set_release_pending(g.number, g.holder_user_id, g.since) for g in actions.grace
    )
    for hold in actions.holds_to_drop:
        await ledger.update_hold(hold)
    if actions.holds_to_save:
        log.error(
            "sync run %s for tenant %s: the mass-unassign guard held %d unassignments; nothing "
            "is taken back until someone approves (POST /api/holds/approve or "
            "'python -m shared.cli holds approve')", run_id, key, len(actions.holds_to_save),
        )
        await ledger.save_holds(list(actions.holds_to_save))
    if actions.policy_holds:
        log.error(
            "sync run %s for tenant %s: %d main-number policy revocations held (%s)",
            run_id, key, len(actions.policy_holds), actions.policy_holds[0].reason.value,
        )
    await _bounded([
        claims.claim_all(actions.claims_to_create),
        *(claims.transfer(t.from_user_id, t.claim) for t in actions.transfers),
    ])
    await _bounded([
        statuses.record_first(actions.statuses_first),
        *(statuses.record(status) for status in actions.statuses_changed),
    ])
    await _enqueue(context, actions.messages, actions.in_flight)
    for status in actions.policy_statuses:
        await statuses.record(status)


async def _enqueue(
    context: TenantContext, messages: Sequence[AssignmentMessage], markers: Sequence[InFlight]
) -> None:
    """Mark each message's user in flight, then send the messages.

    Marked first, so that no later run can slip in between; should sending fail, the markers
    are withdrawn again (best effort: a marker left behind only delays its user until it
    expires, and a message sent twice is carried out once).
    """
    if not messages:
        return
    in_flight = context.ports.in_flight
    await in_flight.mark_queued(markers)
    pace = context.limits.teams_requests_per_second
    delays = release_delays(len(messages), pace) if pace else [0] * len(messages)
    queue = context.ports.queue
    try:
        await queue.send([m for m, delay in zip(messages, delays, strict=True) if not delay])
        await _bounded(queue.send_later(m, delay)
                       for m, delay in zip(messages, delays, strict=True) if delay)
    except Exception:
        await _bounded(in_flight.clear(m.user_id, m.kind, m.idempotency_key) for m in markers)
        raise


async def _bounded(calls: Iterable[Awaitable[object]], limit: int = 16) -> None:
    gate = asyncio.Semaphore(limit)

    async def run(call: Awaitable[object]) -> None:
        async with gate:
            await call

    await asyncio.gather(*(run(call) for call in calls))
