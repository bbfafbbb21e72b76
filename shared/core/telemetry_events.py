"""The app's telemetry events, as values: one frozen type per event, each with fixed dimensions.

Application Insights keeps these as ``customEvents`` (the Azure Monitor OpenTelemetry exporter
turns a log record whose attributes carry ``microsoft.custom_event.name`` into a custom event,
and the other attributes into its ``customDimensions``). The alert queries in ``infra/alerts/``
read them by name and dimension, and ``tests/unit/test_alert_queries.py`` checks every name and
dimension a query uses against ``EVENT_NAMES`` and ``DIMENSIONS`` here, so an event renamed in
the code cannot leave an alert silently querying nothing.

Every event carries ``tenantId``. Facts that belong to no one tenant (the poison queues are
shared by every tenant of the app, and a message whose body cannot be read names none) carry
``APP_WIDE`` (``"*"``) instead of being split per tenant: splitting a queue's approximate count
would need every message read, and a tenant id is a GUID, so ``"*"`` never collides with one.

Dimension names are the fields' names in camelCase (``tenant_id`` → ``tenantId``); values are
strings, whole numbers or floats (the exporter stores them as text: queries convert with
``toint``/``todouble``). Pure: no I/O, nothing from the shell.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Final, Literal
from uuid import UUID

from shared.core.messages import MessageError
from shared.core.outcomes import WAITING_REASONS, Outcome
from shared.core.records import InFlight, UserStatus

#: The logger the Functions worker captures (``PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME``): the
#: app's package, so its log lines (``shared.*``) and its events reach Application Insights and
#: the SDKs' own chatter (``azure.*``, ``httpx``) does not. The events are logged on it.
APP_LOGGER_NAME: Final = "shared"

#: The log-record attribute that makes the exporter write a custom event of that name.
CUSTOM_EVENT_NAME_KEY: Final = "microsoft.custom_event.name"

#: ``tenantId`` of a fact that is no one tenant's (see the module docstring).
APP_WIDE: Final = "*"

#: ``runId`` of ``HoldsApproved`` when every pending hold was approved, not one run's.
ALL_RUNS: Final = "*"

DimensionValue = str | int | float

ReadMode = Literal["full", "delta"]
PoisonedBy = Literal["app", "host"]
"""Who set a message aside: the app (it could not be used: unreadable, or a permanent failure)
or the host (it failed on its last allowed dequeue, ``maxDequeueCount`` in host.json)."""


@dataclass(frozen=True, slots=True)
class SyncRunCompleted:
    """A timer (or manual) run planned the tenant and enqueued its changes."""

    tenant_id: str
    run_id: str
    read_mode: ReadMode
    """How the directory was read: ``full`` or ``delta``."""
    outcome: str
    """``completed``, or ``held_empty_group`` when the voice group read back empty."""
    members: int
    enqueued: int
    assign: int
    """The plan's decisions by action: to assign, kept as they are, skipped by the rules, to
    unassign, held by the mass-unassign guard."""
    keep: int
    skip: int
    unassign: int
    hold: int
    sync_interval_minutes: int
    """The tenant's own interval between runs (0: every tick): the missing-sync alert allows a
    slower tenant twice its interval before it calls a run missing."""
    graph_requests: int
    """Graph requests the run made for this tenant (its reads; the queue's writes come later)."""
    duration_ms: int
    oldest_waiting_minutes: float
    """Age of the oldest change still waiting to reach Teams (queued, or waiting for Teams to be
    ready for the user), 0 when none waits: the one-hour promise, watched in production."""


@dataclass(frozen=True, slots=True)
class SyncRunFailed:
    """A run could not finish (it is recorded ``failed`` with the reason)."""

    tenant_id: str
    run_id: str
    reason: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class SyncRunSkipped:
    """A run did not plan: another run still holds the tenant's lease."""

    tenant_id: str
    run_id: str
    lease_holder: str
    """The run id holding the lease."""


@dataclass(frozen=True, slots=True)
class UserAssignmentFailed:
    """Teams refused a user's change, or could not be reached on its last try."""

    tenant_id: str
    run_id: str
    user_id: str
    action: str
    """The message's action: ``assign``, ``unassign``, ``grant_policies`` or
    ``revoke_policies``."""
    number: str
    reason: str
    """The ``Reason`` code recorded on the user's status."""


@dataclass(frozen=True, slots=True)
class MassUnassignHeld:
    """The mass-unassign guard held a run's unassignments until someone approves them."""

    tenant_id: str
    run_id: str
    count: int
    threshold: int
    """The guard's limit: more unassignments than this in one run are held."""


@dataclass(frozen=True, slots=True)
class HoldsApproved:
    """Someone approved held unassignments (they are now enqueued)."""

    tenant_id: str
    approved_by: str
    count: int
    run_id: str
    """The run whose holds were approved, or ``ALL_RUNS`` (``*``) for every pending hold."""


@dataclass(frozen=True, slots=True)
class TenantHealthChanged:
    """A tenant's health changed state (or its first check found it unhealthy)."""

    tenant_id: str
    state: str
    """``healthy``, ``auth_failed``, ``group_missing`` or ``graph_unavailable``."""
    previous_state: str
    """The state before, ``""`` on the tenant's first check."""
    health_message: str
    """What the operator reads: what is wrong and what to do (``message`` is the log record's
    own attribute, so the dimension has this name)."""


@dataclass(frozen=True, slots=True)
class MessagePoisoned:
    """A queue message was set aside in a poison queue, by the app or by the host."""

    tenant_id: str
    queue: str
    """The poison queue the message went to (``number-assignments-poison`` or
    ``tenant-syncs-poison``), as ``PoisonQueueDepth`` names it."""
    poisoned_by: PoisonedBy
    action: str
    """The message's action (``assign``, ``unassign``, ``grant_policies``, ``revoke_policies``;
    ``sync`` for a tenant-sync message), ``""`` when the body could not be read."""
    user_id: str
    last_error: str


@dataclass(frozen=True, slots=True)
class PoisonQueueDepth:
    """A poison queue's approximate message count, read by the timer on every tick (the storage
    metric is account-wide and hourly, so it cannot watch one queue). App-wide: ``tenantId`` is
    ``APP_WIDE``."""

    tenant_id: str
    queue: str
    """The poison queue's name."""
    approximate_count: int


@dataclass(frozen=True, slots=True)
class GraphThrottled:
    """Graph answered 429 (logged for every attempt, the SDK's retried ones too)."""

    tenant_id: str
    method: str
    route: str
    """The request path with ids and numbers replaced by ``{id}`` (see ``route_template``)."""
    retry_after_seconds: float
    """The wait Graph asked for, -1 when it gave none."""
    throttle_scope: str
    """``x-ms-throttle-scope`` (e.g. ``Tenant_Application/ReadWrite/...``), ``""`` if absent."""
    throttle_information: str


TelemetryEvent = (
    SyncRunCompleted | SyncRunFailed | SyncRunSkipped | UserAssignmentFailed | MassUnassignHeld
    | HoldsApproved | TenantHealthChanged | MessagePoisoned | PoisonQueueDepth | GraphThrottled
)

EVENT_TYPES: Final[tuple[type[TelemetryEvent], ...]] = (
    SyncRunCompleted, SyncRunFailed, SyncRunSkipped, UserAssignmentFailed, MassUnassignHeld,
    HoldsApproved, TenantHealthChanged, MessagePoisoned, PoisonQueueDepth, GraphThrottled,
)


def dimension_name(field_name: str) -> str:
    """A field's dimension name: snake_case → camelCase (``tenant_id`` → ``tenantId``)."""
    head, *rest = field_name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def event_name(event: TelemetryEvent | type[TelemetryEvent]) -> str:
    """The event's name in ``customEvents``: its type's name."""
    kind = event if isinstance(event, type) else type(event)
    return kind.__name__


#: Every event name the app emits.
EVENT_NAMES: Final[frozenset[str]] = frozenset(event_name(kind) for kind in EVENT_TYPES)

#: Each event's dimension names (``customDimensions`` keys), by event name.
DIMENSIONS: Final[Mapping[str, frozenset[str]]] = {
    event_name(kind): frozenset(dimension_name(each.name) for each in fields(kind))
    for kind in EVENT_TYPES
}


def event_record(event: TelemetryEvent) -> tuple[str, dict[str, DimensionValue]]:
    """The event as its name and its flat dimensions, every field of the event, by dimension
    name. ``CUSTOM_EVENT_NAME_KEY`` is not among them: ``log_attributes`` adds it."""
    dimensions: dict[str, DimensionValue] = {}
    for each in fields(event):
        value = getattr(event, each.name)
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TypeError(
                f"{event_name(event)}.{each.name}: a dimension is text or a number, "
                f"got {value!r}")
        dimensions[dimension_name(each.name)] = value
    return event_name(event), dimensions


def log_attributes(event: TelemetryEvent) -> dict[str, DimensionValue]:
    """The log record's attributes (``extra=``) that make the exporter write this custom event."""
    name, dimensions = event_record(event)
    return {CUSTOM_EVENT_NAME_KEY: name, **dimensions}


def route_template(path: str) -> str:
    """A request path as a route: segments that are ids (GUIDs, numbers, phone numbers, e-mail
    style names) or key values in parentheses become ``{id}``, so throttling groups by route
    and no user's id or number ends up in a dimension."""
    parts = []
    for segment in path.split("/"):
        name, paren, _ = segment.partition("(")
        if paren:
            parts.append(f"{name}({{id}})")
        elif _is_identifier(segment):
            parts.append("{id}")
        else:
            parts.append(segment)
    return "/".join(parts)


def _is_identifier(segment: str) -> bool:
    if not segment:
        return False
    if "@" in segment or segment.lstrip("+").isdigit():
        return True
    try:
        UUID(segment)
    except ValueError:
        return False
    return True


#: The counters (OpenTelemetry metrics, ``customMetrics`` in Application Insights) by the
#: outcome they count, each with the dimension ``tenantId``: users given their number, users
#: whose change failed, users newly held by the mass-unassign guard. Lower case: OpenTelemetry
#: instrument names are case-insensitive and the SDK writes them in lower case.
COUNTERS: Final[Mapping[Outcome, str]] = {
    Outcome.ASSIGNED: "users.assigned",
    Outcome.FAILED: "users.failed",
    Outcome.HELD: "users.held",
}


def counter_name(outcome: Outcome) -> str:
    """The counter of ``outcome``.

    Raises:
        ValueError: the outcome has no counter (only those in ``COUNTERS`` are counted).
    """
    name = COUNTERS.get(outcome)
    if name is None:
        raise ValueError(f"outcome={outcome.value!r} is not counted; counted are "
                         f"{', '.join(o.value for o in COUNTERS)}")
    return name


def oldest_waiting_minutes(
    now: datetime, in_flight: Iterable[InFlight], statuses: Iterable[UserStatus]
) -> float:
    """How long the oldest change still on its way to Teams has waited, in minutes (0 when
    none waits): a change queued and not yet carried out (since it was queued), or a user
    waiting for Teams to be ready (visible, licensed; since the wait began). Holds wait for a
    person by design and are not counted."""
    since = [marker.queued_at for marker in in_flight if marker.expires_at > now]
    since.extend(status.waiting_since for status in statuses
                 if status.waiting_since is not None and status.reason in WAITING_REASONS)
    if not since:
        return 0.0
    return round(max(0.0, (now - min(since)).total_seconds() / 60), 1)


#: The longest ``lastError`` kept (an exception's text can be long; a person reads it).
LAST_ERROR_LIMIT: Final = 1000


def poisoned_event(
    poison_queue: str, by: PoisonedBy, error: BaseException, *, tenant_id: str = APP_WIDE,
    action: str = "", user_id: str = "",
) -> MessagePoisoned:
    """The ``MessagePoisoned`` of a message set aside in ``poison_queue`` after ``error``, with
    the tenant, action and user when the message could be read (``APP_WIDE`` and ``""``
    otherwise). A ``MessageError`` is its own text (it names the field); another error is
    prefixed with its type. Cut to ``LAST_ERROR_LIMIT`` characters."""
    text = str(error) if isinstance(error, MessageError) else f"{type(error).__name__}: {error}"
    if len(text) > LAST_ERROR_LIMIT:
        text = text[:LAST_ERROR_LIMIT - 1] + "…"
    return MessagePoisoned(tenant_id, poison_queue, by, action, user_id, text)
