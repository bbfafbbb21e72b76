"""The composition root: settings → adapters → the service, built once per worker process.

``function_app.py`` and the local runner both go through ``AppRuntime``, so what runs locally is
exactly what runs in Azure. It is built lazily on first use, so a bad app setting is reported by
the first invocation with the full list of problems rather than crashing the host's indexing.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from azure.data.tables.aio import TableServiceClient

from shared.adapters.graph.client import (
    GraphTransport,
    build_graph_client,
    close_graph_transport,
    graph_http_client,
)
from shared.adapters.graph.delta import GraphDirectoryDelta
from shared.adapters.graph.directory import GraphUserReader, GraphVoiceGroupDirectory
from shared.adapters.graph.numbers import GraphTeamsNumbers
from shared.adapters.graph.pacing import TeamsRequestPacer
from shared.adapters.graph.policies import GraphPolicies
from shared.adapters.graph.user_configurations import GraphUserConfigurations
from shared.adapters.storage.accounts import queue_client, table_service
from shared.adapters.storage.claims_and_statuses import (
    TableClaimStore,
    TableStatusStore,
    ensure_tables,
)
from shared.adapters.storage.in_flight import TableInFlightStore
from shared.adapters.storage.pace import TablePaceStore
from shared.adapters.storage.policy_grants import TablePolicyGrantStore
from shared.adapters.storage.queue import ASSIGNMENT_QUEUE, POISON_QUEUE, StorageAssignmentQueue
from shared.adapters.storage.runs import TableRunLedger
from shared.adapters.storage.snapshots import TableSnapshotStore
from shared.config import AppSettings
from shared.core.messages import AssignmentMessage, MessageError
from shared.core.outcomes import UserResult
from shared.core.records import Hold, RunRecord, UserStatus
from shared.core.request_pace import Pace
from shared.host_settings import QueueHostSettings, read_queue_settings
from shared.service.context import TenantContext, TenantLimits, TenantPorts
from shared.service.directory_refresh import TeamsWritesNoted
from shared.service.holds import approve_holds
from shared.service.message_handler import process_assignment
from shared.service.timer_run import SyncSummary, run_sync

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The wall clock, in UTC (the only clock the app reads)."""
    return datetime.now(UTC)


def new_run_id(now: datetime) -> str:
    """A run id that sorts by start time: ``20261129T020304.123456Z-1a2b3c4d``."""
    return f"{now:%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(4)}"


def tenant_limits(settings: AppSettings) -> TenantLimits:
    """The service's limits, as the app settings set them."""
    return TenantLimits(
        defer_beyond_seconds=settings.graph.inline_retry_max_seconds,
        readiness_patience=timedelta(hours=settings.teams_readiness_patience_hours),
        delta_reads=settings.delta_reads,
        full_read_interval=timedelta(minutes=settings.full_read_interval_minutes),
    )


@dataclass
class AppRuntime:
    """Everything one worker needs, wired once: the adapters, each bound to the tenant, and the
    ``TenantContext`` the service runs in (built from them with the runtime)."""

    settings: AppSettings
    host: QueueHostSettings
    directory: GraphVoiceGroupDirectory
    users: GraphUserReader
    teams_users: GraphUserConfigurations
    teams: TeamsWritesNoted
    delta: GraphDirectoryDelta
    snapshots: TableSnapshotStore
    claims: TableClaimStore
    statuses: TableStatusStore
    queue: StorageAssignmentQueue
    poison: StorageAssignmentQueue
    ledger: TableRunLedger
    policies: GraphPolicies
    """Main-number policies: ids resolved once per worker (``getPolicyId``), then cached."""
    grants: TablePolicyGrantStore
    in_flight: TableInFlightStore
    """The changes queued and not yet done: a run enqueues nothing more for their users."""
    _tables: TableServiceClient
    _graph_transport: GraphTransport
    clock: Callable[[], datetime] = utc_now
    """The app's only clock; the local runner moves it forward to replay days in seconds."""

    context: TenantContext = field(init=False)
    """The one tenant context the service runs in: these adapters, the settings, the clock."""

    def __post_init__(self) -> None:
        self.context = TenantContext(
            tenant=self.settings.tenant,
            rules=self.settings.rules,
            ports=TenantPorts(
                directory=self.directory, users=self.users, teams_users=self.teams_users,
                teams=self.teams, delta=self.delta, snapshots=self.snapshots,
                claims=self.claims, statuses=self.statuses, queue=self.queue,
                ledger=self.ledger, policies=self.policies, grants=self.grants,
                in_flight=self.in_flight,
            ),
            clock=self._now,
            limits=tenant_limits(self.settings),
        )

    @classmethod
    async def create(cls, settings: AppSettings) -> AppRuntime:
        """Wire the adapters and make sure the tables and queues exist."""
        tables = table_service(settings.storage)
        tenant_id = settings.tenant.key  # every store and the pace are bound to it
        # One app-wide pacer per worker, shared by its tenants' pacers (all tenants' instances
        # share its row).
        app_pacer = TeamsRequestPacer(
            TablePaceStore.app_wide(tables), Pace.at(settings.graph.teams_app_requests_per_second),
        )
        teams_pacer = TeamsRequestPacer(
            TablePaceStore(tables, tenant_id), Pace.at(settings.graph.teams_requests_per_second),
            app_pacer=app_pacer,
        )
        graph_transport = graph_http_client(settings.graph, teams_pacer, tenant_id=tenant_id)
        graph = build_graph_client(settings.graph, settings.tenant.key, graph_transport)
        await ensure_tables(tables)
        queue = StorageAssignmentQueue(
            queue_client(settings.storage, ASSIGNMENT_QUEUE),
            concurrency=settings.enqueue_concurrency,
        )
        poison = StorageAssignmentQueue(queue_client(settings.storage, POISON_QUEUE), concurrency=1)
        await queue.ensure_exists()
        await poison.ensure_exists()
        snapshots = TableSnapshotStore(tables, tenant_id)
        return cls(
            settings=settings,
            host=read_queue_settings(),
            directory=GraphVoiceGroupDirectory(graph),
            users=GraphUserReader(graph),
            teams_users=GraphUserConfigurations(graph),
            teams=TeamsWritesNoted(GraphTeamsNumbers(
                graph,
                number_type=settings.tenant.number_type,
                poll_interval_seconds=settings.graph.operation_poll_interval_seconds,
                operation_timeout_seconds=settings.graph.operation_timeout_seconds,
            ), snapshots),
            delta=GraphDirectoryDelta(graph),
            snapshots=snapshots,
            claims=TableClaimStore(tables, tenant_id),
            statuses=TableStatusStore(tables, tenant_id),
            queue=queue,
            poison=poison,
            ledger=TableRunLedger(tables, tenant_id),
            policies=GraphPolicies(graph),
            grants=TablePolicyGrantStore(tables, tenant_id),
            in_flight=TableInFlightStore(tables, tenant_id),
            _tables=tables,
            _graph_transport=graph_transport,
        )

    def _now(self) -> datetime:
        # Read through the runtime, not bound once: the local runner swaps ``clock`` to replay
        # days, and the context must follow.
        return self.clock()

    async def sync(self, *, dry_run: bool = False) -> SyncSummary:
        """Enumerate the voice group and enqueue one message per member."""
        return await run_sync(self.context, new_run_id(self.clock()), dry_run=dry_run)

    async def approve_holds(self, approved_by: str, run_id: str | None = None) -> list[Hold]:
        """Approve held unassignments (all pending, or one run's) and enqueue them."""
        return await approve_holds(self.context, approved_by, run_id)

    async def assign(self, body: bytes, dequeue_count: int) -> UserResult | None:
        """Process one queue message; None when the message was unreadable and set aside."""
        try:
            message = AssignmentMessage.from_body(body)
            return await process_assignment(
                self.context, message,
                final_attempt=dequeue_count >= self.host.max_dequeue_count,
                redelivered=dequeue_count > 1,
            )
        except MessageError as error:
            # Retrying cannot fix a message; keep it for a person instead of failing it five
            # times.
            await self._set_aside(body, error)
            return None

    async def _set_aside(self, body: bytes, error: MessageError) -> None:
        text = body.decode("utf-8", errors="replace")
        if await self.poison.send_raw(text):
            log.error("queue message set aside in %s: %s", POISON_QUEUE, error)
            return
        # Too large for any queue: what a person needs to find its sender is its size and start.
        log.error(
            "queue message of %d bytes dropped: too large for %s (%s); it began %r",
            len(body), POISON_QUEUE, error, body[:200],
        )

    async def close(self) -> None:
        """Close every client's connections (the Functions host never needs this; runners do)."""
        await close_graph_transport(self._graph_transport)
        await self._tables.close()
        await self.queue.close()
        await self.poison.close()

    async def report(self) -> list[UserStatus]:
        """Every user's latest outcome, in read order."""
        statuses = await self.statuses.list_statuses()
        return sorted(statuses, key=lambda s: (s.read_position, s.user_principal_name))


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
