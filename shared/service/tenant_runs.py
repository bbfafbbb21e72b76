"""Many customer tenants in one app: the timer's fan-out, one tenant's run with its health, the
onboarding check and the release on removal.

The shell around ``shared.core.tenant_registry`` (which tenants are due, how health moves) and
``shared.core.tenant_checks`` (what a tenant must have granted, what a failure means). A tenant's
trouble ends in its health record and one log event, never in one failure per user, and never in
another tenant's run: each run works in its own ``TenantContext``, whose ports are bound to that
tenant's partitions.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shared.core.errors import SyncError
from shared.core.planner import Plan
from shared.core.records import Hold, RunRecord
from shared.core.telemetry_events import (
    APP_WIDE,
    PoisonQueueDepth,
    SyncRunFailed,
    TenantHealthChanged,
)
from shared.core.tenant_checks import (
    HEALTHY,
    CheckFinding,
    CheckLevel,
    ObservedHealth,
    health_of_failure,
    health_of_missing,
    main_number_findings,
    missing_permissions,
    permission_findings,
)
from shared.core.tenant_registry import (
    TenantHealth,
    TenantHealthState,
    TenantRecord,
    health_changed,
    next_health,
    tenants_due,
)
from shared.core.tenant_release import holds_for_release, release_run_id
from shared.core.tenant_sync_messages import TenantSyncMessage
from shared.service.context import TenantContext
from shared.service.ports import (
    EventSink,
    MessageCount,
    TenantAccess,
    TenantHealthStore,
    TenantSyncQueue,
)
from shared.service.progress import NO_PROGRESS, WorkProgress
from shared.service.timer_run import SyncSummary, run_sync

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FanOut:
    """What one timer tick (or ``POST /api/sync``) started."""

    enqueued: tuple[str, ...]
    not_due: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        """The JSON answer of ``POST /api/sync`` with a registry."""
        return {"enqueued": list(self.enqueued), "notDue": list(self.not_due)}


@dataclass(frozen=True, slots=True)
class OperatorPorts:
    """The app-wide ports the fan-out works on: the tenants' schedules and the sync queue."""

    health: TenantHealthStore
    tenant_syncs: TenantSyncQueue


async def fan_out(
    records: Sequence[TenantRecord], ports: OperatorPorts, *, now: datetime, requested_by: str,
) -> FanOut:
    """Enqueue one ``tenant-syncs`` message per active tenant that is due, and note it.

    The note comes after the send: a crash between them enqueues the tenant again next tick,
    which its run lease makes harmless; the other order could lose a tenant's run.
    """
    health = ports.health
    schedules = await health.list_schedules()
    due = tenants_due(records, schedules, now)
    await ports.tenant_syncs.send_syncs([
        TenantSyncMessage(tenant_id=record.tenant_id, requested_at=now, requested_by=requested_by)
        for record in due
    ])
    for record in due:
        await health.mark_enqueued(record.key, now)
    due_keys = {record.key for record in due}
    not_due = tuple(sorted(record.key for record in records if record.key not in due_keys))
    if due:
        log.info("sync of %d tenants enqueued (%d not due)", len(due), len(not_due))
    return FanOut(tuple(record.key for record in due), not_due)


@dataclass(frozen=True, slots=True)
class TenantRun:
    """One tenant's run as the operator sees it: the summary (None when the run could not
    start) and the tenant's health after it."""

    tenant_id: str
    summary: SyncSummary | None
    health: TenantHealth | None
    """None on a dry run: a preview does not change the record of how the tenant is."""

    def to_json(self) -> dict[str, object]:
        """The JSON answer of ``POST /api/tenants/{id}/sync``."""
        body: dict[str, object] = {"tenantId": self.tenant_id}
        if self.summary is not None:
            body.update(self.summary.to_json())
        if self.health is not None:
            body["health"] = health_json(self.health)
        return body


async def run_tenant(
    context: TenantContext,
    access: TenantAccess,
    health: TenantHealthStore,
    run_id: str,
    *,
    dry_run: bool = False,
) -> TenantRun:
    """Check the tenant's consent, run its sync, and record what that says about the tenant.

    A token whose roles lack a needed permission stops the run before any Graph request: the
    health names every missing permission and the tenant's users are left as they are.
    """
    key, now = context.tenant.key, context.clock()
    if not dry_run:
        await health.mark_started(key, now)
    summary: SyncSummary | None = None
    observed: ObservedHealth = HEALTHY
    try:
        roles = await access.granted_roles()
        missing = missing_permissions(roles, context.rules) if roles is not None else ()
        if missing:
            observed = health_of_missing(missing)
            if not dry_run:
                finished = context.clock()
                await context.ports.ledger.record_run(RunRecord(
                    run_id, now, finished, "failed", observed.message, {},
                ))
                context.events.emit(SyncRunFailed(
                    key, run_id, observed.message,
                    max(0, round((finished - now).total_seconds() * 1000))))
        else:
            summary = await run_sync(context, run_id, dry_run=dry_run)
    except SyncError as error:
        # run_sync has logged and recorded the failed run; the health says it for the tenant.
        observed = health_of_failure(error)
    except Exception:
        if not dry_run:
            await _unfinished(health, context)
        raise
    if dry_run:
        if observed.state is not TenantHealthState.HEALTHY and summary is None:
            summary = SyncSummary(key, run_id, True, 0, 0, Plan(()), observed.message)
        return TenantRun(key, summary, None)
    current = await _record_health(context, health, observed)
    await health.mark_finished(key, context.clock())
    return TenantRun(key, summary, current)


async def _unfinished(health: TenantHealthStore, context: TenantContext) -> None:
    """A run that raised past its health (storage failing under it) still ends its schedule
    mark, so the next tick may try again instead of waiting out ``PENDING_PATIENCE``."""
    await health.mark_finished(context.tenant.key, context.clock())


async def _record_health(
    context: TenantContext, store: TenantHealthStore, observed: ObservedHealth
) -> TenantHealth:
    key = context.tenant.key
    previous = await store.health(key)
    current = next_health(previous, key, observed.state, observed.message, context.clock())
    await store.save_health(current)
    if health_changed(previous, current):
        # The one event per change an alert fires on; the run's own line says the rest.
        if current.state is TenantHealthState.HEALTHY:
            log.warning("tenant %s is healthy again", key)
        else:
            log.error("tenant %s health %s: %s", key, current.state.value, current.message)
        context.events.emit(TenantHealthChanged(
            key, current.state.value, previous.state.value if previous is not None else "",
            current.message,
        ))
    return current


async def report_poison_depths(
    queues: Mapping[str, MessageCount], events: EventSink
) -> dict[str, int]:
    """Read each poison queue's approximate length and report it (``PoisonQueueDepth``, app-wide:
    the poison queues are every tenant's). A queue that cannot be read is logged and left out:
    the timer's fan-out must not fail over its telemetry."""
    depths: dict[str, int] = {}
    for name, queue in queues.items():
        try:
            depths[name] = await queue.approximate_message_count()
        except Exception as error:  # noqa: BLE001 - reported and skipped, never the tick's end
            log.warning("could not read the length of %s: %s: %s", name,
                        type(error).__name__, error)
            continue
        events.emit(PoisonQueueDepth(APP_WIDE, name, depths[name]))
    return depths


@dataclass(frozen=True, slots=True)
class TenantCheck:
    """``tenants check``: every finding, the voice group's size and the dry run's summary."""

    tenant_id: str
    findings: tuple[CheckFinding, ...]
    members: int | None = None
    plan_summary: dict[str, object] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Nothing failed (warnings do not stop activation)."""
        return all(finding.level is not CheckLevel.FAILED for finding in self.findings)

    def to_json(self) -> dict[str, object]:
        """The JSON answer of ``POST /api/tenants/{id}/check``."""
        return {
            "tenantId": self.tenant_id, "passed": self.passed, "members": self.members,
            "findings": [finding.to_json() for finding in self.findings],
            "planSummary": dict(self.plan_summary),
        }


async def check_tenant(
    context: TenantContext, access: TenantAccess, run_id: str,
    *, progress: WorkProgress = NO_PROGRESS,
) -> TenantCheck:
    """Everything onboarding must know before a tenant goes active, each as a finding: the
    token and its roles, the voice group and its members, Teams' numbers, each main number's
    holder, and a dry-run plan (each a stage of ``progress``). Writes nothing."""
    key, ports = context.tenant.key, context.ports
    findings: list[CheckFinding] = []
    progress.stage("token and permissions")
    try:
        roles = await access.granted_roles()
    except SyncError as error:
        findings.append(CheckFinding("token", CheckLevel.FAILED, error.message))
        return TenantCheck(key, tuple(findings))
    findings.append(CheckFinding("token", CheckLevel.OK, "Entra ID issued a Graph token"))
    findings.extend(permission_findings(roles, context.rules))
    if any(finding.level is CheckLevel.FAILED for finding in findings):
        return TenantCheck(key, tuple(findings))
    group = str(context.tenant.voice_group_id)
    progress.stage("voice group")
    try:
        members = await ports.directory.read_members(group)
    except SyncError as error:
        findings.append(CheckFinding("voice group", CheckLevel.FAILED, error.message))
        return TenantCheck(key, tuple(findings))
    level = CheckLevel.OK if members else CheckLevel.WARNING
    findings.append(CheckFinding("voice group", level, f"{group}: {len(members)} members"))
    progress.stage("Teams numbers")
    try:
        holders = await ports.teams.list_assignments()
    except SyncError as error:
        findings.append(CheckFinding("Teams numbers", CheckLevel.FAILED, error.message))
        return TenantCheck(key, tuple(findings), len(members))
    findings.append(CheckFinding("Teams numbers", CheckLevel.OK,
                                 f"{len(holders)} numbers assigned in Teams"))
    account_types: dict[str, str | None] = {}
    progress.stage("main numbers")
    for number in context.rules.main_numbers.values():
        holder = holders.get(number)
        if holder is not None and holder not in account_types:
            teams_user = await ports.teams_users.read(holder)
            account_types[holder] = teams_user.account_type if teams_user else None
    findings.extend(main_number_findings(context.rules.main_numbers, holders, account_types))
    progress.stage("dry run")
    try:
        preview = await run_sync(context, run_id, dry_run=True)
    except SyncError as error:
        findings.append(CheckFinding("dry run", CheckLevel.FAILED, error.message))
        return TenantCheck(key, tuple(findings), len(members))
    summary = preview.plan.summary()
    by_outcome = Counter(decision.action.value for decision in preview.plan.decisions)
    findings.append(CheckFinding("dry run", CheckLevel.OK, ", ".join(
        f"{count} {action}" for action, count in sorted(by_outcome.items())
    ) or "nothing to do"))
    return TenantCheck(key, tuple(findings), len(members), summary)


async def hold_numbers_for_release(context: TenantContext, by: str) -> list[Hold]:
    """File a pending hold for every number the app put on a user in this tenant (removal
    with ``--release-numbers``); they leave Teams only once approved."""
    now = context.clock()
    claims = await context.ports.claims.list_claims()
    holds = holds_for_release(claims.values(), run_id=release_run_id(now), by=by, now=now)
    await context.ports.ledger.save_holds(holds)
    log.warning("tenant %s removed by %s: %d numbers held for release, waiting for approval",
                context.tenant.key, by, len(holds))
    return holds


def health_json(health: TenantHealth) -> dict[str, object]:
    """A health record as JSON."""
    return {
        "state": health.state.value, "message": health.message,
        "since": health.since.isoformat(), "checkedAt": health.checked_at.isoformat(),
    }
