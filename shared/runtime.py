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
from dataclasses import dataclass
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
from shared.core.records import Hold, UserStatus
from shared.core.request_pace import Pace
from shared.host_settings import QueueHostSettings, read_queue_settings
from shared.service.directory_refresh import DeltaReads, TeamsWritesNoted
from shared.service.sync_service import (
    SyncSummary,
    approve_holds,
    check_tenant,
    process_assignment,
    run_sync,
)

log = logging.getLogger(__name__)



def utc_now() -> datetime:
    """The wall clock, in UTC (the only clock the app reads)."""
    return datetime.now(UTC)


def new_run_id(now: datetime) -> str:
    """A run id that sorts by start time: ``20261129T020304.123456Z-1a2b3c4d``."""
    return f"{now:%Y%m%dT%H%M%S.%fZ}-{secrets.token_hex(4)}"


@dataclass
class AppRuntime:
    """Everything one worker needs, wired once."""

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

    @classmethod
    async def create(cls, settings: AppSettings) -> AppRuntime:
        """Wire the adapters and make sure the tables and queues exist."""
        tables = table_service(settings.storage)
        teams_pacer = TeamsRequestPacer(
            TablePaceStore(tables), settings.tenant.key,
            Pace.at(settings.graph.teams_requests_per_second),
        )
        graph_transport = graph_http_client(settings.graph, teams_pacer)
        graph = build_graph_client(settings.graph, settings.tenant.key, graph_transport)
        await ensure_tables(tables)
        queue = StorageAssignmentQueue(
            queue_client(settings.storage, ASSIGNMENT_QUEUE),
            concurrency=settings.enqueue_concurrency,
        )
        poison = StorageAssignmentQueue(queue_client(settings.storage, POISON_QUEUE), concurrency=1)
        await queue.ensure_exists()
        await poison.ensure_exists()
        snapshots = TableSnapshotStore(tables)
        return cls(
            settings=settings,
            host=read_queue_settings(),
            directory=GraphVoiceGroupDirectory(graph),
            users=GraphUserReader(graph),
            teams_users=GraphUserConfigurations(graph),
            teams=TeamsWritesNoted(GraphTeamsNumbers(
                graph,
                poll_interval_seconds=settings.graph.operation_poll_interval_seconds,
                operation_timeout_seconds=settings.graph.operation_timeout_seconds,
            ), snapshots, settings.tenant.key),
            delta=GraphDirectoryDelta(graph),
            snapshots=snapshots,
            claims=TableClaimStore(tables),
            statuses=TableStatusStore(tables),
            queue=queue,
            poison=poison,
            ledger=TableRunLedger(tables),
            policies=GraphPolicies(graph),
            grants=TablePolicyGrantStore(tables),
            in_flight=TableInFlightStore(tables),
            _tables=tables,
            _graph_transport=graph_transport,
        )

    async def sync(self, *, dry_run: bool = False) -> SyncSummary:
        """Enumerate the voice group and enqueue one message per member."""
        return await run_sync(
            tenant=self.settings.tenant,
            rules=self.settings.rules,
            run_id=new_run_id(self.clock()),
            clock=self.clock,
            directory=self.directory,
            teams=self.teams,
            claims=self.claims,
            statuses=self.statuses,
            queue=self.queue,
            ledger=self.ledger,
            dry_run=dry_run,
            delta_reads=DeltaReads(
                self.delta, self.snapshots, self.users,
                timedelta(minutes=self.settings.full_read_interval_minutes),
            ) if self.settings.delta_reads else None,
            grants=self.grants,
            in_flight=self.in_flight,
        )

    async def approve_holds(self, approved_by: str, run_id: str | None = None) -> list[Hold]:
        """Approve held unassignments (all pending, or one run's) and enqueue them."""
        return await approve_holds(
            tenant=self.settings.tenant, ledger=self.ledger, queue=self.queue,
            approved_by=approved_by, clock=self.clock, run_id=run_id,
        )

    async def assign(self, body: bytes, dequeue_count: int) -> UserResult | None:
        """Process one queue message; None when the message was unreadable and set aside."""
        try:
            message = AssignmentMessage.from_body(body)
            check_tenant(message, self.settings.tenant)
            return await process_assignment(
                message,
                tenant=self.settings.tenant,
                rules=self.settings.rules,
                claims=self.claims,
                teams=self.teams,
                users=self.users,
                teams_users=self.teams_users,
                statuses=self.statuses,
                ledger=self.ledger,
                queue=self.queue,
                clock=self.clock,
                final_attempt=dequeue_count >= self.host.max_dequeue_count,
                redelivered=dequeue_count > 1,
                defer_beyond_seconds=self.settings.graph.inline_retry_max_seconds,
                readiness_patience=timedelta(hours=self.settings.teams_readiness_patience_hours),
                policies=self.policies,
                grants=self.grants,
                snapshots=self.snapshots,
                in_flight=self.in_flight,
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
        statuses = await self.statuses.list_statuses(self.settings.tenant.key)
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
