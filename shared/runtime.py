"""The composition root: settings → adapters → the service, built once per worker process.

``function_app.py`` and the local runner both go through ``AppRuntime``, so what runs locally is
exactly what runs in Azure. It is built lazily on first use, so a bad app setting is reported by
the first invocation with the full list of problems rather than crashing the host's indexing.

The app serves the tenants of its registry (the ``tenants`` table), plus the ``TENANT_ID`` one
when the settings name it: ``AppRuntime`` holds what is app-wide (stores, queues, the app's
Teams pace, the credentials) and builds a ``TenantRuntime`` per tenant on first use, every
adapter of which is bound to that tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import ClientAuthenticationError
from azure.data.tables.aio import TableServiceClient

from shared.adapters.graph.client import (
    GraphTransport,
    build_graph_client,
    close_graph_transport,
    graph_http_client,
)
from shared.adapters.graph.credentials import GraphCredentials
from shared.adapters.graph.delta import GraphDirectoryDelta
from shared.adapters.graph.directory import GraphUserReader, GraphVoiceGroupDirectory
from shared.adapters.graph.numbers import GraphTeamsNumbers
from shared.adapters.graph.pacing import TeamsRequestPacer
from shared.adapters.graph.policies import GraphPolicies
from shared.adapters.graph.user_configurations import GraphUserConfigurations
from shared.adapters.storage.accounts import queue_client, table_service
from shared.adapters.storage.audit import TableAuditLog
from shared.adapters.storage.claims_and_statuses import (
    TableClaimStore,
    TableStatusStore,
    ensure_tables,
)
from shared.adapters.storage.in_flight import TableInFlightStore
from shared.adapters.storage.operation_waits import TableOperationWaits
from shared.adapters.storage.pace import APP_PACE_PARTITION, TablePaceStore
from shared.adapters.storage.policy_grants import TablePolicyGrantStore
from shared.adapters.storage.queue import (
    ASSIGNMENT_QUEUE,
    POISON_QUEUE,
    TENANT_SYNC_POISON_QUEUE,
    TENANT_SYNC_QUEUE,
    StorageAssignmentQueue,
    StorageTenantSyncQueue,
)
from shared.adapters.storage.runs import TableRunLedger
from shared.adapters.storage.snapshots import TableSnapshotStore
from shared.adapters.storage.tenants import TableTenantHealthStore, TableTenantRegistry
from shared.adapters.telemetry import OpenTelemetryEvents
from shared.config import AppSettings, ConfigError
from shared.core.audit import (
    Actor,
    AuditEntry,
    AuditMonth,
    AuditOutcome,
    manual_sync,
    numbers_imported,
    reading_from,
    tenant_added,
    tenant_state_changed,
)
from shared.core.errors import PermanentError
from shared.core.helpdesk_report import HelpdeskReport, ReportFilters, build_report
from shared.core.messages import AssignmentMessage, MessageError
from shared.core.operation_wait import OperationWait
from shared.core.outcomes import Reason, UserResult
from shared.core.records import Hold, RunRecord, UserStatus
from shared.core.request_pace import Pace
from shared.core.telemetry_events import poisoned_event
from shared.core.tenant_export import TenantExport
from shared.core.tenant_registry import (
    TenantAction,
    TenantExistsError,
    TenantHealth,
    TenantNotFoundError,
    TenantRecord,
    TenantState,
    admin_consent_url,
    apply_action,
    parse_number_import,
    parse_tenant_record,
    record_from_settings,
    with_changes,
)
from shared.core.tenant_restore import RestorePlan
from shared.core.tenant_sync_messages import TenantSyncMessage
from shared.host_settings import QueueHostSettings, read_queue_settings
from shared.service.audit_trail import purge_expired, record_entry
from shared.service.context import TenantContext, TenantLimits, TenantPorts
from shared.service.directory_refresh import TeamsWritesNoted
from shared.service.holds import approve_holds
from shared.service.message_handler import process_assignment
from shared.service.ports import EventSink, TeamsNumbers
from shared.service.progress import NO_PROGRESS, WorkProgress
from shared.service.tenant_export import export_tenant, restore_tenant
from shared.service.tenant_runs import (
    FanOut,
    OperatorPorts,
    TenantCheck,
    TenantRun,
    check_tenant,
    fan_out,
    health_json,
    hold_numbers_for_release,
    report_poison_depths,
    run_tenant,
)
from shared.service.timer_run import SyncSummary, run_sync

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The wall clock, in UTC (the only clock the app reads)."""
    return datetime.now(UTC)


def new_run_id(now: datetime) -> str:
    """A run id that sorts by start time: ``20261129T020304.123456Z-1a2b3c4d``."""
    return f"{now:%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(4)}"


def tenant_limits(settings: AppSettings, record: TenantRecord) -> TenantLimits:
    """The service's limits for one tenant: the app's settings, and the tenant's own interval."""
    return TenantLimits(
        defer_beyond_seconds=settings.graph.inline_retry_max_seconds,
        readiness_patience=timedelta(hours=settings.teams_readiness_patience_hours),
        delta_reads=settings.delta_reads,
        full_read_interval=timedelta(minutes=record.full_read_interval_minutes),
        teams_requests_per_second=record.teams_requests_per_second,
        sync_interval_minutes=record.sync_interval_minutes,
    )


#: How far back ``audit`` reads when it is not told (``--since``, ``?since=``).
AUDIT_DEFAULT_SPAN = timedelta(days=31)

#: How long a worker trusts a tenant's registry record before reading it again (a queue message
#: of a tenant paused a moment ago may still be carried out within this time).
RECORD_TTL_SECONDS = 30.0


class CredentialAccess:
    """Implements ``TenantAccess`` with the app's credentials, bound to one tenant."""

    def __init__(self, credentials: GraphCredentials, tenant_id: str) -> None:
        self._credentials = credentials
        self._tenant_id = tenant_id

    async def granted_roles(self) -> frozenset[str] | None:
        """The roles of the tenant's Graph token; Entra's refusal as ``GRAPH_FORBIDDEN``."""
        try:
            return await self._credentials.granted_roles(self._tenant_id)
        except ClientAuthenticationError as error:
            raise PermanentError(Reason.GRAPH_FORBIDDEN, (
                f"Entra ID refused the app a token for tenant {self._tenant_id}: "
                f"{_first_line(error.message)} (check the customer's admin consent and the "
                f"app registration's federated credential)")) from None


def _first_line(text: str | None) -> str:
    return (text or "no reason given").strip().splitlines()[0]


@dataclass
class TenantRuntime:
    """One customer tenant's adapters, each bound to it, and the context the service runs in."""

    record: TenantRecord
    context: TenantContext
    access: CredentialAccess
    claims: TableClaimStore
    statuses: TableStatusStore
    ledger: TableRunLedger
    snapshots: TableSnapshotStore
    policies: GraphPolicies
    """Main-number policies: ids resolved once per tenant runtime (``getPolicyId``), cached."""
    grants: TablePolicyGrantStore
    in_flight: TableInFlightStore
    _graph_transport: GraphTransport
    audit: TableAuditLog | None = None
    """The tenant's audit trail (the one its context writes to)."""

    async def close(self) -> None:
        """Close the tenant's Graph connections."""
        await close_graph_transport(self._graph_transport)

    async def report(self) -> list[UserStatus]:
        """Every user's latest outcome, in read order."""
        statuses = await self.statuses.list_statuses()
        return sorted(statuses, key=lambda s: (s.read_position, s.user_principal_name))


@dataclass
class TenantOverview:
    """A line of ``tenants list``: the record, its health, its last run, its outcomes."""

    record: TenantRecord
    health: TenantHealth | None
    last_run: RunRecord | None
    outcomes: dict[str, int]
    pending_holds: int

    def to_json(self) -> dict[str, object]:
        """The JSON of ``GET /api/tenants`` and ``tenants list --json``."""
        return {
            "tenantId": self.record.key, "displayName": self.record.display_name,
            "state": self.record.state.value,
            "health": health_json(self.health) if self.health else None,
            "lastRun": run_json(self.last_run) if self.last_run else None,
            "outcomes": dict(self.outcomes), "pendingHolds": self.pending_holds,
        }


class UnknownTenantError(LookupError):
    """A tenant id the registry does not have."""

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"tenant {tenant_id} is not in the registry (tenants list shows every "
                         f"registered tenant)")


@dataclass
class AppRuntime:
    """Everything one worker needs, wired once: the app-wide stores and queues, and one
    ``TenantRuntime`` per customer tenant, created on first use."""

    settings: AppSettings
    host: QueueHostSettings
    registry: TableTenantRegistry
    health: TableTenantHealthStore
    queue: StorageAssignmentQueue
    poison: StorageAssignmentQueue
    tenant_syncs: StorageTenantSyncQueue
    tenant_sync_poison: StorageAssignmentQueue
    credentials: GraphCredentials
    _tables: TableServiceClient
    _app_pacer: TeamsRequestPacer
    clock: Callable[[], datetime] = utc_now
    """The app's only clock; the local runner moves it forward to replay days in seconds."""
    events: EventSink = field(default_factory=OpenTelemetryEvents)
    """Where the app's telemetry goes (the worker's OpenTelemetry exporter in Azure)."""
    _tenants: dict[str, TenantRuntime] = field(default_factory=dict)
    _retired: list[TenantRuntime] = field(default_factory=list)
    _records: dict[str, tuple[float, TenantRecord | None]] = field(default_factory=dict)
    _audit_purged: dict[str, AuditMonth] = field(default_factory=dict)
    """Per tenant, the month whose purge this process has done (nothing expires again before
    the month turns: entries are written at the time they happen)."""
    _audit_purged_all: AuditMonth | None = None
    """The month every tenant's purge is done for (the timer then skips it until the next)."""

    @classmethod
    async def create(cls, settings: AppSettings) -> AppRuntime:
        """Wire the app-wide adapters and make sure the tables and queues exist."""
        tables = table_service(settings.storage)
        await ensure_tables(tables)
        queue = StorageAssignmentQueue(
            queue_client(settings.storage, ASSIGNMENT_QUEUE),
            concurrency=settings.enqueue_concurrency,
        )
        poison = StorageAssignmentQueue(queue_client(settings.storage, POISON_QUEUE), concurrency=1)
        tenant_syncs = StorageTenantSyncQueue(
            queue_client(settings.storage, TENANT_SYNC_QUEUE),
            concurrency=settings.enqueue_concurrency,
        )
        tenant_sync_poison = StorageAssignmentQueue(
            queue_client(settings.storage, TENANT_SYNC_POISON_QUEUE), concurrency=1
        )
        for each in (queue, poison, tenant_syncs, tenant_sync_poison):
            await each.ensure_exists()
        return cls(
            settings=settings,
            host=read_queue_settings(),
            registry=TableTenantRegistry(tables),
            health=TableTenantHealthStore(tables),
            queue=queue,
            poison=poison,
            tenant_syncs=tenant_syncs,
            tenant_sync_poison=tenant_sync_poison,
            credentials=GraphCredentials(settings.graph),
            _tables=tables,
            _app_pacer=TeamsRequestPacer(
                TablePaceStore(tables, APP_PACE_PARTITION),
                Pace.at(settings.graph.teams_app_requests_per_second),
            ),
        )

    def _now(self) -> datetime:
        # Read through the runtime, not bound once: the local runner swaps ``clock`` to replay
        # days, and every tenant's context must follow.
        return self.clock()

    # -- the registry -----------------------------------------------------------------------

    @property
    def settings_record(self) -> TenantRecord | None:
        """The ``TENANT_ID`` tenant as a registry record (active), when the settings name one."""
        tenant = self.settings.tenant
        if tenant is None:
            return None
        return record_from_settings(
            tenant, self.settings.rules,
            teams_requests_per_second=self.settings.graph.teams_requests_per_second,
            full_read_interval_minutes=self.settings.full_read_interval_minutes,
            at=_SETTINGS_EPOCH,
        )

    async def records(self) -> list[TenantRecord]:
        """Every tenant the app knows: the registry's, and the ``TENANT_ID`` one unless the
        registry has a record of it (which then wins)."""
        stored, unreadable = await self.registry.list_readable_tenants()
        for error in unreadable:
            # One bad hand edit must not stop every other customer's sync.
            log.error("tenant registry row skipped: %s", error)
        own = self.settings_record
        if own is not None and all(record.key != own.key for record in stored):
            stored = [own, *stored]
        now = time.monotonic()
        for record in stored:
            self._records[record.key] = (now, record)
        return sorted(stored, key=lambda record: record.key)

    async def record(self, tenant_id: str, *, fresh: bool = True) -> TenantRecord | None:
        """One tenant's record (None: unknown); ``fresh=False`` may answer from a record read
        up to ``RECORD_TTL_SECONDS`` ago (the queue function's per-message look)."""
        cached = self._records.get(tenant_id)
        if not fresh and cached is not None and time.monotonic() - cached[0] < RECORD_TTL_SECONDS:
            return cached[1]
        record = await self.registry.get(tenant_id)
        own = self.settings_record
        if record is None and own is not None and own.key == tenant_id:
            record = own
        self._records[tenant_id] = (time.monotonic(), record)
        return record

    async def change(
        self, tenant_id: str, change: Callable[[TenantRecord], TenantRecord]
    ) -> TenantRecord:
        """Change a tenant's record (the ``TENANT_ID`` tenant is written to the registry on its
        first change, and the registry's record wins from then on)."""
        own = self.settings_record
        if own is not None and own.key == tenant_id and await self.registry.get(tenant_id) is None:
            with contextlib.suppress(TenantExistsError):
                await self.registry.add(own)
        try:
            changed = await self.registry.update(tenant_id, change)
        except TenantNotFoundError:
            raise UnknownTenantError(tenant_id) from None
        self._records[tenant_id] = (time.monotonic(), changed)
        if changed.state is not TenantState.ACTIVE:
            await self.forget(tenant_id)
        return changed

    # -- tenant runtimes ----------------------------------------------------------------------

    def tenant_runtime(self, record: TenantRecord) -> TenantRuntime:
        """The tenant's adapters and context, built on first use; rebuilt when its record
        changed (the old one is closed with the app: a run may still be using it)."""
        current = self._tenants.get(record.key)
        if current is not None and current.record == record:
            return current
        if current is not None:
            self._retired.append(current)
        built = self._build_tenant(record)
        self._tenants[record.key] = built
        return built

    async def forget(self, tenant_id: str) -> None:
        """Close a tenant's Graph client and credential (paused or removed)."""
        current = self._tenants.pop(tenant_id, None)
        if current is not None:
            self._retired.append(current)
        await self.credentials.forget(tenant_id)

    def _build_tenant(self, record: TenantRecord) -> TenantRuntime:
        settings, tables, key = self.settings, self._tables, record.key
        teams_pacer = TeamsRequestPacer(
            TablePaceStore(tables, key), Pace.at(record.teams_requests_per_second),
            app_pacer=self._app_pacer,
        )
        graph_transport = graph_http_client(
            settings.graph, teams_pacer, tenant_id=key, events=self.events)
        graph = build_graph_client(
            settings.graph, self.credentials.auth_provider(key), graph_transport
        )
        snapshots = TableSnapshotStore(tables, key)
        claims, statuses = TableClaimStore(tables, key), TableStatusStore(tables, key)
        ledger, policies = TableRunLedger(tables, key), GraphPolicies(graph)
        grants, in_flight = TablePolicyGrantStore(tables, key), TableInFlightStore(tables, key)
        audit = self.audit_log(key)
        teams = TeamsWritesNoted(GraphTeamsNumbers(
            graph,
            number_type=record.number_type,
            poll_interval_seconds=settings.graph.operation_poll_interval_seconds,
            operation_timeout_seconds=settings.graph.operation_timeout_seconds,
        ), snapshots)
        context = TenantContext(
            tenant=record.settings,
            rules=record.rules,
            ports=TenantPorts(
                directory=GraphVoiceGroupDirectory(graph), users=GraphUserReader(graph),
                teams_users=GraphUserConfigurations(graph), teams=teams,
                delta=GraphDirectoryDelta(graph), snapshots=snapshots, claims=claims,
                statuses=statuses, queue=self.queue, ledger=ledger, policies=policies,
                grants=grants, in_flight=in_flight, audit=audit,
                operation_waits=TableOperationWaits(
                    tables, key, clock=self._now,
                    start=OperationWait(seconds=settings.graph.operation_wait_seconds),
                ),
            ),
            events=self.events,
            clock=self._now,
            limits=tenant_limits(settings, record),
        )
        return TenantRuntime(
            record=record, context=context, access=CredentialAccess(self.credentials, key),
            claims=claims, statuses=statuses, ledger=ledger, snapshots=snapshots,
            policies=policies, grants=grants, in_flight=in_flight,
            _graph_transport=graph_transport, audit=audit,
        )

    async def tenant(self, tenant_id: str) -> TenantRuntime:
        """The runtime of a registered tenant (whatever its state: reading its stores, holds
        and report is always allowed).

        Raises:
            UnknownTenantError: the registry has no such tenant.
        """
        record = await self.record(tenant_id)
        if record is None:
            raise UnknownTenantError(tenant_id)
        return self.tenant_runtime(record)

    # -- the one-tenant app (``TENANT_ID``): what it did before there was a registry -----------

    @property
    def default(self) -> TenantRuntime:
        """The ``TENANT_ID`` tenant's runtime.

        Raises:
            ConfigError: the settings name no tenant (use the per-tenant calls).
        """
        own = self.settings_record
        if own is None:
            raise ConfigError(
                "TENANT_ID is not set: this app serves the tenants of its registry; name the "
                "tenant (tenants list shows them)"
            )
        cached = self._tenants.get(own.key)
        return cached if cached is not None else self.tenant_runtime(own)

    @property
    def context(self) -> TenantContext:
        """The ``TENANT_ID`` tenant's context."""
        return self.default.context

    @property
    def claims(self) -> TableClaimStore:
        """The ``TENANT_ID`` tenant's claims."""
        return self.default.claims

    @property
    def statuses(self) -> TableStatusStore:
        """The ``TENANT_ID`` tenant's statuses."""
        return self.default.statuses

    @property
    def ledger(self) -> TableRunLedger:
        """The ``TENANT_ID`` tenant's runs and holds."""
        return self.default.ledger

    @property
    def snapshots(self) -> TableSnapshotStore:
        """The ``TENANT_ID`` tenant's directory snapshot."""
        return self.default.snapshots

    @property
    def policies(self) -> GraphPolicies:
        """The ``TENANT_ID`` tenant's policy adapter."""
        return self.default.policies

    @property
    def grants(self) -> TablePolicyGrantStore:
        """The ``TENANT_ID`` tenant's policy grants."""
        return self.default.grants

    @property
    def teams(self) -> TeamsNumbers:
        """The ``TENANT_ID`` tenant's Teams numbers adapter (the one its context uses)."""
        return self.default.context.ports.teams

    @property
    def in_flight(self) -> TableInFlightStore:
        """The ``TENANT_ID`` tenant's in-flight markers."""
        return self.default.in_flight

    async def serves_one_tenant(self) -> bool:
        """Whether the app serves exactly the ``TENANT_ID`` tenant (no other in the registry):
        ``POST /api/sync`` then runs it at once and answers its summary, as it always did."""
        own = self.settings_record
        if own is None:
            return False
        return all(record.key == own.key for record in await self.records())

    async def sync(self, *, dry_run: bool = False, actor: Actor | None = None) -> SyncSummary:
        """The ``TENANT_ID`` tenant's run, now (``POST /api/sync`` of a one-tenant app); with
        ``actor`` (a person's trigger) a real run is an audit entry."""
        run_id = new_run_id(self.clock())
        if actor is None or dry_run:
            return await run_sync(self.context, run_id, dry_run=dry_run)
        try:
            summary = await run_sync(self.context, run_id)
        except Exception as error:
            await self._audit_manual_sync(self.context.tenant.key, actor, run_id, None, error)
            raise
        await self._audit_manual_sync(self.context.tenant.key, actor, run_id, summary)
        return summary

    async def approve_holds(
        self, approved_by: str, run_id: str | None = None, *, tenant_id: str | None = None,
        caller: str = "unknown",
    ) -> list[Hold]:
        """Approve held unassignments (all pending, or one run's) and enqueue them; each is an
        audit entry (``caller``: the door the approval came through)."""
        tenant = self.default if tenant_id is None else await self.tenant(tenant_id)
        return await approve_holds(tenant.context, approved_by, run_id, caller=caller)

    async def report(self) -> list[UserStatus]:
        """The ``TENANT_ID`` tenant's users' latest outcomes, in read order."""
        return await self.default.report()

    # -- many tenants -------------------------------------------------------------------------

    async def fan_out(self, requested_by: str = "timer", *, actor: Actor | None = None
                      ) -> FanOut:
        """Enqueue a tenant-sync for every active tenant that is due (the timer); with
        ``actor`` (``POST /api/sync`` by a person) each tenant enqueued is an audit entry."""
        started = await fan_out(
            await self.records(), OperatorPorts(self.health, self.tenant_syncs),
            now=self.clock(), requested_by=requested_by,
        )
        if actor is not None:
            for key in started.enqueued:
                await record_entry(self.audit_log(key), manual_sync(
                    actor, self.clock(), run_id=None, outcome=AuditOutcome.DONE,
                    after=f"tenant-sync enqueued by {requested_by}"))
        await report_poison_depths(
            {POISON_QUEUE: self.poison, TENANT_SYNC_POISON_QUEUE: self.tenant_sync_poison},
            self.events,
        )
        return started

    async def sync_tenant(self, tenant_id: str, *, dry_run: bool = False,
                          actor: Actor | None = None) -> TenantRun:
        """One tenant's run now, with its consent check and health; with ``actor`` (a
        person's trigger) a real run is an audit entry.

        Raises:
            UnknownTenantError: the registry has no such tenant.
            TenantNotActiveError: a real run of a tenant that is not active.
        """
        record = await self.record(tenant_id)
        if record is None:
            raise UnknownTenantError(tenant_id)
        if not dry_run and record.state is not TenantState.ACTIVE:
            raise TenantNotActiveError(record)
        tenant = self.tenant_runtime(record)
        run_id = new_run_id(self.clock())
        if actor is None or dry_run:
            return await run_tenant(tenant.context, tenant.access, self.health, run_id,
                                    dry_run=dry_run)
        try:
            result = await run_tenant(tenant.context, tenant.access, self.health, run_id)
        except Exception as error:
            await self._audit_manual_sync(record.key, actor, run_id, None, error)
            raise
        failed = None if result.summary is not None or result.health is None else (
            result.health.message)
        await self._audit_manual_sync(record.key, actor, run_id, result.summary, failed)
        return result

    async def run_tenant_sync(self, body: bytes, dequeue_count: int = 1) -> TenantRun | None:
        """The ``tenant-syncs`` queue function: run the tenant the message names, if it is still
        active; None when there was nothing to run (the message is then done). A run that
        raises on the host's last dequeue is reported poisoned before the host sets it aside."""
        try:
            message = TenantSyncMessage.from_body(body)
        except MessageError as error:
            await _set_aside(self.tenant_sync_poison, TENANT_SYNC_POISON_QUEUE, body, error,
                             self.events)
            return None
        record = await self.record(message.tenant_key)
        if record is None or record.state is not TenantState.ACTIVE:
            state = "not registered" if record is None else record.state.value
            log.info("tenant-sync for %s dropped: the tenant is %s", message.tenant_key, state)
            return None
        tenant = self.tenant_runtime(record)
        try:
            return await run_tenant(
                tenant.context, tenant.access, self.health, new_run_id(self.clock()),
            )
        except Exception as error:
            if dequeue_count >= self.host.max_dequeue_count:
                self.events.emit(poisoned_event(
                    TENANT_SYNC_POISON_QUEUE, "host", error, tenant_id=message.tenant_key,
                    action="sync"))
            raise

    async def assign(self, body: bytes, dequeue_count: int) -> UserResult | None:
        """Process one queue message; None when the message was unreadable and set aside, or
        its tenant is not active (the next run after it is active again plans it anew)."""
        try:
            message = AssignmentMessage.from_body(body)
        except MessageError as error:
            # Retrying cannot fix a message; keep it for a person instead of failing it five
            # times.
            await _set_aside(self.poison, POISON_QUEUE, body, error, self.events)
            return None
        record = await self.record(message.tenant_id, fresh=False)
        if record is None:
            # Nothing can carry it out here; keep it for a person rather than drop it.
            await _set_aside(self.poison, POISON_QUEUE, body, MessageError(
                f"tenantId={message.tenant_id!r}: not a tenant this app serves "
                f"(tenants list shows them)"), self.events, message=message)
            return None
        if not _carries_out(record, message):
            log.info("%s for %s in tenant %s dropped: the tenant is %s (its next run after it "
                     "is active again plans it anew)", message.action,
                     message.user_principal_name, message.tenant_id, record.state.value)
            return None
        tenant = self.tenant_runtime(record)
        final_attempt = dequeue_count >= self.host.max_dequeue_count
        try:
            return await process_assignment(
                tenant.context, message,
                final_attempt=final_attempt,
                redelivered=dequeue_count > 1,
            )
        except MessageError as error:
            await _set_aside(self.poison, POISON_QUEUE, body, error, self.events, message=message)
            return None
        except Exception as error:
            if final_attempt:  # the host sets it aside now (maxDequeueCount in host.json)
                self.events.emit(poisoned_event(
                    POISON_QUEUE, "host", error, tenant_id=message.tenant_id,
                    action=message.action, user_id=message.user_id))
            raise

    # -- onboarding and offboarding -----------------------------------------------------------

    async def add_tenant(self, fields: Mapping[str, object], *, by: str,
                         caller: str = "unknown") -> AddedTenant:
        """Register a tenant (state ``onboarding``) and say how its admin consents (an audit
        entry: who ``by``, through ``caller``).

        Raises:
            RegistryError: a field is missing or wrong (named with its value).
            TenantExistsError: the tenant is registered already.
        """
        record = parse_tenant_record({
            **fields, "state": TenantState.ONBOARDING.value,
            "createdBy": by, "createdAt": self.clock().isoformat(),
            "changedBy": by, "changedAt": self.clock().isoformat(),
        }, "tenant")
        own = self.settings_record
        if own is not None and own.key == record.key:
            raise TenantExistsError(f"tenant {record.key} is the app's TENANT_ID tenant")
        await self.registry.add(record)
        self._records.pop(record.key, None)
        log.info("tenant %s (%s) added by %s", record.key, record.display_name, by)
        await record_entry(self.audit_log(record.key),
                           tenant_added(record, Actor.of(by, caller), self.clock()))
        return AddedTenant(record, self.consent_url(record.key))

    def consent_url(self, tenant_id: str) -> str | None:
        """The admin-consent URL of the app registration for this tenant (None without
        ``GRAPH_CLIENT_ID``: then there is no multi-tenant app registration to consent to)."""
        client_id = self.settings.graph.client_id
        if not client_id:
            return None
        return admin_consent_url(
            tenant_id=tenant_id, app_client_id=client_id,
            redirect_uri=self.settings.consent_redirect_uri, state=secrets.token_urlsafe(12),
        )

    async def check_tenant(
        self, tenant_id: str, *, progress: WorkProgress = NO_PROGRESS
    ) -> TenantCheck:
        """``tenants check``: token, roles, voice group, Teams numbers, main numbers, dry run."""
        tenant = await self.tenant(tenant_id)
        return await check_tenant(tenant.context, tenant.access, new_run_id(self.clock()),
                                  progress=progress)

    async def import_numbers(self, tenant_id: str, text: str, source: str, *, by: str,
                             caller: str = "unknown") -> TenantRecord:
        """Make the numbers the operator supplied (a CSV of numbers or ranges) the tenant's
        ranges (an audit entry: who ``by``, through ``caller``).

        Raises:
            NumberImportError: every bad line, each with its line number.
            UnknownTenantError: no such tenant.
        """
        record = await self.record(tenant_id)
        if record is None:
            raise UnknownTenantError(tenant_id)
        ranges = parse_number_import(text, source, default_region=record.rules.default_region)
        now = self.clock()

        before: list[TenantRecord] = []

        def with_ranges(current: TenantRecord) -> TenantRecord:
            before[:] = [current]
            rules = current.rules.model_copy(update={"number_ranges": tuple(ranges)})
            return with_changes(current, by=by, at=now, rules=rules)

        changed = await self.change(tenant_id, with_ranges)
        log.info("tenant %s: %d number ranges imported by %s from %s", tenant_id,
                 len(ranges), by, source)
        await record_entry(self.audit_log(changed.key), numbers_imported(
            before[0] if before else None, changed, source, Actor.of(by, caller), now))
        return changed

    async def change_state(
        self, tenant_id: str, action: TenantAction, *, by: str, release_numbers: bool = False,
        caller: str = "unknown",
    ) -> StateChange:
        """Activate, pause, resume or remove a tenant. Removal unassigns nothing; with
        ``release_numbers`` every number the app assigned there is held for approval. The
        change is an audit entry (who ``by``, through ``caller``).

        Raises:
            TransitionRefused: the action does not apply to the tenant's state.
            UnknownTenantError: no such tenant.
            ValueError: ``release_numbers`` with another action than remove.
        """
        if release_numbers and action is not TenantAction.REMOVE:
            raise ValueError("releaseNumbers: only removal releases numbers")
        now = self.clock()
        before: list[TenantRecord] = []

        def acted(current: TenantRecord) -> TenantRecord:
            before[:] = [current]
            return apply_action(current, action, by=by, at=now)

        changed = await self.change(tenant_id, acted)
        log.info("tenant %s: %s by %s, now %s", tenant_id, action.value, by,
                 changed.state.value)
        held: list[Hold] = []
        if release_numbers:
            held = await hold_numbers_for_release(self.tenant_runtime(changed).context, by)
        await record_entry(self.audit_log(changed.key), tenant_state_changed(
            before[0] if before else None, changed, action.value, Actor.of(by, caller), now,
            held=len(held)))
        return StateChange(changed, held)

    async def overview(self) -> list[TenantOverview]:
        """``tenants list``: every tenant with its state, health, last run, outcome counts and
        pending holds."""
        health = await self.health.list_health()
        lines = []
        for record in await self.records():
            tenant = self.tenant_runtime(record)
            runs = await tenant.ledger.runs()
            statuses = await tenant.statuses.list_statuses()
            lines.append(TenantOverview(
                record=record, health=health.get(record.key),
                last_run=runs[-1] if runs else None,
                outcomes=dict(sorted(Counter(s.outcome.value for s in statuses).items())),
                pending_holds=len(await tenant.ledger.holds("pending")),
            ))
        return lines

    # -- the audit trail -----------------------------------------------------------------------

    def audit_log(self, tenant_id: str) -> TableAuditLog:
        """The tenant's audit trail (its runtime's, when it has one)."""
        current = self._tenants.get(tenant_id)
        if current is not None and current.audit is not None:
            return current.audit
        return TableAuditLog(self._tables, tenant_id)

    async def audit_entries(
        self, tenant_id: str, *, since: datetime | None = None, user: str | None = None,
    ) -> list[AuditEntry]:
        """A tenant's audit entries from ``since`` (default: the last 31 days; never before the
        oldest month kept), oldest first; ``user``: only the entries about that user (id or UPN).

        Raises:
            UnknownTenantError: the registry has no such tenant.
        """
        record = await self.record(tenant_id)
        if record is None:
            raise UnknownTenantError(tenant_id)
        now = self.clock()
        start = reading_from(since if since is not None else now - AUDIT_DEFAULT_SPAN, now,
                             self.settings.audit_retention_months)
        entries = await self.audit_log(record.key).entries(start, now)
        return [entry for entry in entries if user is None or entry.concerns(user)]

    async def purge_expired_audit(self) -> dict[str, dict[AuditMonth, int]]:
        """Delete every tenant's audit months older than ``AUDIT_RETENTION_MONTHS`` keeps (the
        timer, once per month and process for each tenant); the rows deleted per tenant and
        month. A tenant whose purge fails is logged and tried again on the next tick."""
        now = self.clock()
        month = AuditMonth.of(now)
        done: dict[str, dict[AuditMonth, int]] = {}
        if self._audit_purged_all == month:
            return done
        complete = True
        for record in await self.records():
            if self._audit_purged.get(record.key) == month:
                continue
            try:
                gone = await purge_expired(
                    self.audit_log(record.key), record.key, now=now,
                    retention_months=self.settings.audit_retention_months,
                )
            except Exception as error:  # noqa: BLE001 - one tenant's storage trouble stops no other's purge
                log.error("audit trail of tenant %s not purged: %s: %s", record.key,  # noqa: TRY400
                          type(error).__name__, error)
                complete = False
                continue
            self._audit_purged[record.key] = month
            if gone:
                done[record.key] = gone
        if complete:
            self._audit_purged_all = month
        return done

    async def _audit_manual_sync(
        self, tenant_id: str, actor: Actor, run_id: str, summary: SyncSummary | None,
        failure: BaseException | str | None = None,
    ) -> None:
        if summary is not None and failure is None:
            after = (f"{summary.enqueued} changes enqueued ({summary.members} members, "
                     f"{summary.read} read)")
            if summary.skipped_because:
                after = f"skipped: {summary.skipped_because}"
            entry = manual_sync(actor, self.clock(), run_id=run_id, outcome=AuditOutcome.DONE,
                                after=after)
        else:
            detail = failure if isinstance(failure, str) else (
                f"{type(failure).__name__}: {failure}" if failure is not None else "")
            entry = manual_sync(actor, self.clock(), run_id=run_id,
                                outcome=AuditOutcome.FAILED, after="run failed", detail=detail)
        await record_entry(self.audit_log(tenant_id), entry)
    # -- the helpdesk report -------------------------------------------------------------------

    async def helpdesk_report(
        self, tenant_id: str, filters: ReportFilters | None = None
    ) -> HelpdeskReport:
        """One tenant's helpdesk report (``GET /api/tenants/{id}/report``, ``report TENANT``):
        its stored statuses, pending holds, health and last run, under its display name. Any
        state's tenant has one (reading is always allowed).

        Raises:
            UnknownTenantError: the registry has no such tenant.
        """
        tenant = await self.tenant(tenant_id)
        runs = await tenant.ledger.runs()
        return build_report(
            tenant_id=tenant.record.key, display_name=tenant.record.display_name,
            statuses=await tenant.statuses.list_statuses(),
            holds=await tenant.ledger.holds("pending"),
            health=await self.health.health(tenant.record.key),
            last_run=runs[-1] if runs else None, now=self.clock(), filters=filters,
        )

    # -- export and restore -------------------------------------------------------------------

    async def export_tenant(
        self, tenant_id: str, *, progress: WorkProgress = NO_PROGRESS
    ) -> TenantExport:
        """``export``: the tenant's claims, statuses, policy grants and holds as one document.

        Raises:
            UnknownTenantError: no such tenant.
            ExportError: a stored row the document cannot hold.
        """
        tenant = await self.tenant(tenant_id)
        return await export_tenant(tenant.context, progress=progress)

    async def restore_tenant(
        self,
        tenant_id: str,
        document: TenantExport,
        *,
        source: str,
        dry_run: bool = False,
        progress: WorkProgress = NO_PROGRESS,
    ) -> RestorePlan:
        """``restore``: rebuild the tenant's claims, grants and holds from an export into its
        empty store, cross-checked against Teams' number assignments.

        Raises:
            UnknownTenantError: no such tenant (register it again first).
            ExportError: another tenant's export.
            RestoreRefusedError: the store is not empty.
            SyncError: Teams could not be read.
        """
        tenant = await self.tenant(tenant_id)
        return await restore_tenant(tenant.context, document, source=source, dry_run=dry_run,
                                    progress=progress)

    async def close(self) -> None:
        """Close every client's connections (the Functions host never needs this; runners do)."""
        for tenant in [*self._tenants.values(), *self._retired]:
            await tenant.close()
        self._tenants.clear()
        self._retired.clear()
        await self.credentials.close()
        await self._tables.close()
        for each in (self.queue, self.poison, self.tenant_syncs, self.tenant_sync_poison):
            await each.close()


@dataclass(frozen=True, slots=True)
class AddedTenant:
    """A tenant just registered, and the URL its admin opens to consent."""

    record: TenantRecord
    consent_url: str | None


@dataclass(frozen=True, slots=True)
class StateChange:
    """A tenant after an action, and the holds a removal with ``--release-numbers`` filed."""

    record: TenantRecord
    held: list[Hold]


class TenantNotActiveError(Exception):
    """A real run asked of a tenant that is onboarding, paused or removed."""

    def __init__(self, record: TenantRecord) -> None:
        super().__init__(
            f"tenant {record.key} is {record.state.value}: only an active tenant is synced "
            f"(a dry run works in every state; tenants activate or resume makes it active)"
        )
        self.record = record


#: The creation time the ``TENANT_ID`` tenant's record shows (it has no registry row).
_SETTINGS_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _carries_out(record: TenantRecord, message: AssignmentMessage) -> bool:
    """Whether a queued change of this tenant is carried out: every change of an active
    tenant; of a removed one only the approved releases (``tenants remove --release-numbers``);
    nothing of a paused or onboarding one."""
    if record.state is TenantState.ACTIVE:
        return True
    return (record.state is TenantState.REMOVED and message.action == "unassign"
            and message.reason == Reason.APPROVED.value)


async def _set_aside(
    poison: StorageAssignmentQueue, name: str, body: bytes, error: MessageError,
    events: EventSink, *, message: AssignmentMessage | None = None,
) -> None:
    text = body.decode("utf-8", errors="replace")
    named = {} if message is None else {
        "tenant_id": message.tenant_id, "action": message.action, "user_id": message.user_id}
    if await poison.send_raw(text):
        log.error("queue message set aside in %s: %s", name, error)
        events.emit(poisoned_event(name, "app", error, **named))
        return
    # Too large for any queue: what a person needs to find its sender is its size and start.
    log.error(
        "queue message of %d bytes dropped: too large for %s (%s); it began %r",
        len(body), name, error, body[:200],
    )
    events.emit(poisoned_event(name, "app", MessageError(
        f"dropped, {len(body)} bytes are too large for the poison queue: {error}"), **named))


def hold_json(hold: Hold) -> dict[str, object]:
    """A hold as JSON, for the HTTP answers and the CLI."""
    return {
        "runId": hold.run_id,
        "userId": hold.user_id,
        "userPrincipalName": hold.user_principal_name,
        "number": hold.number,
        "status": hold.status,
        "message": hold.message,
        "createdAt": hold.created_at.isoformat(),
        "decidedBy": hold.decided_by,
        "decidedAt": hold.decided_at.isoformat() if hold.decided_at else None,
    }


def run_json(record: RunRecord) -> dict[str, object]:
    """A run record as JSON, for the CLI's run history."""
    return {
        "runId": record.run_id,
        "startedAt": record.started_at.isoformat(),
        "finishedAt": record.finished_at.isoformat() if record.finished_at else None,
        "outcome": record.outcome,
        "message": record.message,
        "counts": dict(record.counts),
    }


class RuntimeHolder:
    """Builds the ``AppRuntime`` from the environment on first use and keeps it."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._runtime: AppRuntime | None = None
        # The host invokes a batch of messages at once: the first use must build one runtime
        # (one connection pool, one share of the Teams pace), not one per message.
        self._building = asyncio.Lock()

    async def get(self) -> AppRuntime:
        """The runtime; raises ``ConfigError`` with every problem when settings are wrong."""
        if self._runtime is None:
            async with self._building:
                if self._runtime is None:
                    self._runtime = await AppRuntime.create(
                        AppSettings.from_environ(self._environ)
                    )
        return self._runtime

    async def close(self) -> None:
        """Close and forget the runtime, so the next use reads the settings again."""
        if self._runtime is not None:
            await self._runtime.close()
        self._runtime = None
        self._building = asyncio.Lock()  # the next use may run on another event loop


def record_json(record: TenantRecord) -> dict[str, object]:
    """A registry record as JSON (camelCase, as the registry stores it)."""
    data: dict[str, object] = record.model_dump(mode="json", by_alias=True)
    return data
