"""The one tenant an app serves, as the service sees it: settings, rules, ports, clock, limits.

An app serves exactly one tenant, so the composition root (``shared.runtime``) binds every port
to it once and hands the service one frozen ``TenantContext``; the service's entry points take
that context rather than a long list of ports and settings, and no port takes a tenant id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.core.teams_readiness import DEFAULT_PATIENCE
from shared.core.tenant_registry import TenantSettings
from shared.core.tenant_rules import TenantRules
from shared.service.ports import (
    AssignmentQueue,
    AuditLog,
    ClaimStore,
    DirectoryDelta,
    EventSink,
    InFlightStore,
    OperationWaits,
    PolicyGrantStore,
    RunLedger,
    SnapshotStore,
    StatusStore,
    TeamsNumbers,
    TeamsPolicies,
    TeamsUserReader,
    UserReader,
    VoiceGroupDirectory,
)

Clock = Callable[[], datetime]

# A plan this young is the directory as it is: the queue function acts without reading the user
# again (a redelivered or deferred message always reads again).
RECHECK_AFTER = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class TenantPorts:
    """Every port the service uses, each bound to the app's tenant.

    All are required: an app always has its stores and its Graph adapters, so the service never
    asks whether one is there.
    """

    directory: VoiceGroupDirectory
    users: UserReader
    teams_users: TeamsUserReader
    teams: TeamsNumbers
    delta: DirectoryDelta
    snapshots: SnapshotStore
    claims: ClaimStore
    statuses: StatusStore
    queue: AssignmentQueue
    ledger: RunLedger
    policies: TeamsPolicies
    grants: PolicyGrantStore
    in_flight: InFlightStore
    audit: AuditLog
    """The tenant's audit trail: every Teams write, manual trigger, approval and change."""
    operation_waits: OperationWaits
    """How long the tenant's assignments take in Teams, learned from the looks at them."""


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """The app's tunable limits (from its settings; the defaults are the settings' defaults)."""

    defer_beyond_seconds: float = 10.0
    """A Graph wait longer than this goes back on the queue instead of waiting on the worker."""
    readiness_patience: timedelta = DEFAULT_PATIENCE
    """How long a user may wait for Teams (unknown, unlicensed) before it counts as failed."""
    recheck_after: timedelta = RECHECK_AFTER
    """A plan younger than this is acted on without reading the user again."""
    delta_reads: bool = True
    """Whether runs may plan on the stored snapshot moved forward by delta queries."""
    full_read_interval: timedelta = timedelta(hours=1)
    """With delta reads, how often a run reads everything anyway."""
    teams_requests_per_second: float | None = None
    """The tenant's Teams pace: a run lets its changes onto the queue no faster than this can
    carry them (None: all at once)."""
    sync_interval_minutes: int = 0
    """The tenant's own interval between runs (0: every tick); reported with each run, so the
    missing-sync alert knows how long a quiet tenant may be quiet."""


@dataclass(frozen=True, slots=True)
class TenantContext:
    """What every service entry point works in: one tenant, its rules, ports, clock and limits."""

    tenant: TenantSettings
    rules: TenantRules
    ports: TenantPorts
    events: EventSink
    """Where the run's and the queue function's telemetry goes (app-wide: events name their
    tenant)."""
    clock: Clock
    """The app's only clock (the local runner moves it forward to replay days in seconds)."""
    limits: TenantLimits = field(default_factory=TenantLimits)
