"""The audit trail: who changed what, and when — every Teams write the app makes, and every
manual trigger, approval and tenant change a person makes (pure: the entries and their keys).

An ``AuditEntry`` says what happened (``kind``), to whom (the user, the number or the policies,
``before`` and ``after``), how it ended (``outcome``, with ``detail`` when it failed), who did it
(``who``) through which door (``caller``) and when (``at``), and for a queue message's write the
run and the message (its idempotency key) it came from.

Keys (table ``audit``): PartitionKey ``<tenant id>|<YYYY-MM>``, so one tenant's month reads in one
query and a month is purged as a whole; RowKey ``<time to the microsecond>Z-<digest>``, so a
month reads in time order. The digest is of the entry itself: an identical entry written twice at
the same microsecond is one row. A write of a queue message also has a *dedupe key* (message +
step + outcome); its marker row (RowKey ``~<digest>``, after every entry) is created in the same
transaction as the entry, so a redelivery that performs the same write again appends nothing.

Retention (``AUDIT_RETENTION_MONTHS``): the current month and the months before it up to that
many in all are kept; older months are deleted whole by the timer, and the purge is an entry too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from shared.core.errors import OperationPendingError, PermanentError, TemporaryError
from shared.core.messages import AssignmentMessage
from shared.core.policy_planner import PolicyGrant
from shared.core.records import Hold
from shared.core.steps import (
    Accepted,
    AssignmentSettled,
    AssignNumber,
    AssignPolicies,
    GetGrant,
    LookAtTeamsUser,
    ReadTeamsUser,
    Step,
    UnassignNumber,
    UnassignPolicies,
)
from shared.core.teams_readiness import TeamsUser
from shared.core.tenant_registry import TenantRecord

#: The default of ``AUDIT_RETENTION_MONTHS``: this month and the twelve before it (a year back
#: from any day, whole months).
DEFAULT_RETENTION_MONTHS = 13
MAX_RETENTION_MONTHS = 120
#: Who makes the Teams writes of a queue message: the app, on behalf of the run named.
APP = "app"
QUEUE_CALLER = "queue number-assignments"
TIMER_CALLER = "timer"
#: What an HTTP call is recorded as when no person can be named: the Python worker does not see
#: which function key authorised the call (see ``shared.http_requests.caller_of``).
FUNCTION_KEY = "function key"
#: Longer texts (a Graph refusal quoted in full) are cut to this many characters.
MAX_TEXT = 2000
#: RowKeys of marker rows start with this (it sorts after every entry's RowKey, a digit).
MARKER_PREFIX = "~"


class AuditKind(StrEnum):
    """What an entry records."""

    NUMBER_ASSIGNED = "number_assigned"
    NUMBER_UNASSIGNED = "number_unassigned"
    POLICIES_GRANTED = "policies_granted"
    POLICIES_REVOKED = "policies_revoked"
    MANUAL_SYNC = "manual_sync"
    HOLD_APPROVED = "hold_approved"
    TENANT_ADDED = "tenant_added"
    TENANT_STATE_CHANGED = "tenant_state_changed"
    NUMBERS_IMPORTED = "numbers_imported"
    AUDIT_PURGED = "audit_purged"


class AuditOutcome(StrEnum):
    """How the recorded action ended."""

    DONE = "done"
    FAILED = "failed"
    PENDING = "pending"
    """Teams accepted a write whose operation had not finished yet (looked at again later)."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit trail (see the module docstring)."""

    kind: AuditKind
    at: datetime
    who: str
    caller: str
    outcome: AuditOutcome = AuditOutcome.DONE
    detail: str = ""
    user_id: str | None = None
    user_principal_name: str | None = None
    number: str | None = None
    policies: tuple[str, ...] = ()
    before: str | None = None
    after: str | None = None
    run_id: str | None = None
    message_id: str | None = None
    """A queue message's idempotency key: the same for every delivery of one planned change."""
    step: str | None = None
    """Which write of the message (``assign +31…``): with the message, what makes it unique."""

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError(f"at={self.at.isoformat()}: an audit time must carry its time zone")

    @property
    def dedupe_key(self) -> str | None:
        """For a queue message's write, what a redelivery repeating it has in common with it
        (None: every entry is new)."""
        if self.message_id is None or self.step is None:
            return None
        return f"{self.message_id}|{self.step}|{self.outcome.value}"

    def concerns(self, user: str) -> bool:
        """Whether the entry is about ``user`` (an Entra user id or a UPN, any case)."""
        wanted = user.strip().casefold()
        return wanted in {(self.user_id or "").casefold(),
                          (self.user_principal_name or "").casefold()}

    def to_json(self) -> dict[str, object]:
        """The entry as JSON (camelCase), for ``audit --json`` and the HTTP answer."""
        return {
            "kind": self.kind.value, "at": self.at.isoformat(), "who": self.who,
            "caller": self.caller, "outcome": self.outcome.value, "detail": self.detail,
            "userId": self.user_id, "userPrincipalName": self.user_principal_name,
            "number": self.number, "policies": list(self.policies), "before": self.before,
            "after": self.after, "runId": self.run_id, "messageId": self.message_id,
            "step": self.step,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> AuditEntry:
        """The entry ``to_json`` wrote (how the table stores it).

        Raises:
            ValueError: a field is missing or not text (named).
            TypeError: ``policies`` is not a list.
        """
        def text(name: str) -> str | None:
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"audit entry: {name}={value!r} is not text")
            return value

        def required(name: str) -> str:
            value = text(name)
            if value is None:
                raise ValueError(f"audit entry: {name}: missing")
            return value

        policies = data.get("policies") or []
        if not isinstance(policies, list):
            raise TypeError(f"audit entry: policies={policies!r} is not a list")
        return cls(
            kind=AuditKind(required("kind")), at=datetime.fromisoformat(required("at")),
            who=required("who"), caller=required("caller"),
            outcome=AuditOutcome(required("outcome")), detail=text("detail") or "",
            user_id=text("userId"), user_principal_name=text("userPrincipalName"),
            number=text("number"), policies=tuple(str(p) for p in policies),
            before=text("before"), after=text("after"), run_id=text("runId"),
            message_id=text("messageId"), step=text("step"),
        )


# --- keys ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class AuditMonth:
    """A calendar month (UTC): one partition of a tenant's audit trail."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not (1 <= self.month <= 12 and 1 <= self.year <= 9999):
            raise ValueError(f"{self.year}-{self.month}: not a month")

    @classmethod
    def of(cls, at: datetime) -> AuditMonth:
        """The month ``at`` falls in, in UTC."""
        utc = _utc(at)
        return cls(utc.year, utc.month)

    @classmethod
    def parse(cls, text: str) -> AuditMonth:
        """``2026-11`` as a month.

        Raises:
            ValueError: not ``YYYY-MM``.
        """
        year, dash, month = text.partition("-")
        if not (dash and len(year) == 4 and len(month) == 2
                and year.isdigit() and month.isdigit()):
            raise ValueError(f"{text!r}: not a month (YYYY-MM)")
        return cls(int(year), int(month))

    def minus(self, months: int) -> AuditMonth:
        """The month ``months`` before this one."""
        index = self.year * 12 + self.month - 1 - months
        return AuditMonth(index // 12, index % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def partition_key(tenant_key: str, month: AuditMonth) -> str:
    """The PartitionKey of one tenant's month: ``<tenant id>|<YYYY-MM>``."""
    return f"{tenant_key}|{month}"


def partition_month(tenant_key: str, key: str) -> AuditMonth | None:
    """The month of a PartitionKey of ``tenant_key``'s audit trail; None for any other key (the
    purge's guard: it deletes nothing it cannot read as the tenant's own month)."""
    tenant, bar, month = key.rpartition("|")
    if not bar or tenant != tenant_key:
        return None
    try:
        return AuditMonth.parse(month)
    except ValueError:
        return None


def time_key(at: datetime) -> str:
    """A time as the start of a RowKey: ``20261129T020304.123456Z`` (sorts as time does)."""
    utc = _utc(at)
    return (f"{utc.year:04d}{utc.month:02d}{utc.day:02d}T{utc.hour:02d}{utc.minute:02d}"
            f"{utc.second:02d}.{utc.microsecond:06d}Z")


def row_key(entry: AuditEntry) -> str:
    """The entry's RowKey: its time, then a digest of the entry (unique, deterministic)."""
    canonical = json.dumps(entry.to_json(), sort_keys=True, ensure_ascii=False)
    return f"{time_key(entry.at)}-{_digest(canonical, 16)}"


def marker_row_key(dedupe_key: str) -> str:
    """The RowKey of the marker that says a message's write was recorded."""
    return f"{MARKER_PREFIX}{_digest(dedupe_key, 40)}"


def entry_keys(tenant_key: str, entry: AuditEntry) -> tuple[str, str]:
    """(PartitionKey, RowKey) of the entry."""
    return partition_key(tenant_key, AuditMonth.of(entry.at)), row_key(entry)


def months_between(since: datetime, until: datetime) -> list[AuditMonth]:
    """Every month from ``since``'s to ``until``'s, oldest first (none when since > until)."""
    first, last = AuditMonth.of(since), AuditMonth.of(until)
    months = []
    current = last
    while current >= first:
        months.append(current)
        current = current.minus(1)
    return months[::-1]


# --- retention ----------------------------------------------------------------------------------


def oldest_kept(now: datetime, retention_months: int) -> AuditMonth:
    """The oldest month the retention keeps: the current month counts as the first.

    Raises:
        ValueError: a retention below one month (the current month is never purged).
    """
    if not 1 <= retention_months <= MAX_RETENTION_MONTHS:
        raise ValueError(
            f"AUDIT_RETENTION_MONTHS={retention_months}: keep 1 to {MAX_RETENTION_MONTHS} months"
        )
    return AuditMonth.of(now).minus(retention_months - 1)


def expired(month: AuditMonth, now: datetime, retention_months: int) -> bool:
    """Whether the retention lets ``month`` go (it is older than the oldest month kept)."""
    return month < oldest_kept(now, retention_months)


def reading_from(since: datetime, now: datetime, retention_months: int) -> datetime:
    """Where a read asked to start at ``since`` starts: no earlier than the oldest month the
    retention keeps (nothing older is stored)."""
    first = oldest_kept(now, retention_months)
    start = datetime(first.year, first.month, 1, tzinfo=UTC)
    return max(_utc(since), start)


def purged(purged_months: dict[AuditMonth, int], *, at: datetime, retention_months: int
           ) -> AuditEntry:
    """The entry a purge leaves: which months went, how many rows, and why."""
    months = ", ".join(f"{month} ({rows} rows)" for month, rows in sorted(purged_months.items()))
    return AuditEntry(
        kind=AuditKind.AUDIT_PURGED, at=at, who=APP, caller=TIMER_CALLER,
        before=months, after=None,
        detail=f"AUDIT_RETENTION_MONTHS={retention_months}: months before "
               f"{oldest_kept(at, retention_months)} are deleted",
    )


# --- the Teams writes of a queue message --------------------------------------------------------

TEAMS_WRITES = (AssignNumber, UnassignNumber, AssignPolicies, UnassignPolicies)
TeamsWrite = AssignNumber | UnassignNumber | AssignPolicies | UnassignPolicies


@dataclass
class TeamsWrites:
    """The audit entries of one queue message's Teams writes, told the flow's steps one by one
    (what the shell performed and what it saw), as they happen.

    What *before* and *after* mean: an assignment — before, the number the plan says it replaces
    (the message's ``previousNumber``; none for a new user), after, the number given; an
    unassignment — before, the number taken back, after none; a policy grant — before, the
    user's effective policies of those types as the flow last read them from Teams (none when it
    did not read them), after, the policies given; a revocation — before, the policies this app
    had granted (its stored grant), after none (the tenant's default applies again).
    """

    message: AssignmentMessage
    _seen: TeamsUser | None = field(default=None, init=False)
    _grant: PolicyGrant | None = field(default=None, init=False)

    def answered(self, step: Step[Any], answer: object, at: datetime) -> AuditEntry | None:
        """The entry for ``step`` now that it was answered ``answer`` (None: not a Teams write;
        a refusal the flow decides on is a failed write)."""
        if isinstance(step, ReadTeamsUser | LookAtTeamsUser) and isinstance(answer, TeamsUser):
            self._seen = answer
        if isinstance(step, GetGrant) and (answer is None or isinstance(answer, PolicyGrant)):
            self._grant = answer
        if isinstance(step, AssignmentSettled):
            # The end of an assignment accepted earlier: what became of that write.
            return self._entry(AssignNumber(step.number, step.user_id), at,
                               AuditOutcome.DONE if step.landed else AuditOutcome.FAILED,
                               step.detail)
        if not isinstance(step, TEAMS_WRITES):
            return None
        if isinstance(answer, PermanentError):
            return self._entry(step, at, AuditOutcome.FAILED,
                               f"{answer.reason.value}: {answer.message}")
        if isinstance(answer, Accepted):
            return self._entry(step, at, AuditOutcome.PENDING, (
                "Teams accepted it and carries it out; the app looks whether it landed later"))
        return self._entry(step, at, AuditOutcome.DONE, "")

    def raised(self, step: Step[Any], error: BaseException, at: datetime) -> AuditEntry | None:
        """The entry for ``step`` when performing it raised ``error`` (None: not a Teams write,
        or not a failure of the write: the worker being stopped)."""
        if not isinstance(step, TEAMS_WRITES) or not isinstance(error, Exception):
            return None
        if isinstance(error, OperationPendingError):
            return self._entry(step, at, AuditOutcome.PENDING, (
                f"Teams accepted it; its operation was still running: {error.message}"))
        if isinstance(error, TemporaryError):
            return self._entry(step, at, AuditOutcome.FAILED,
                               f"temporary: {error.message} (tried again later)")
        if isinstance(error, PermanentError):
            return self._entry(step, at, AuditOutcome.FAILED,
                               f"{error.reason.value}: {error.message}")
        return self._entry(step, at, AuditOutcome.FAILED, f"{type(error).__name__}: {error}")

    def _entry(self, step: TeamsWrite, at: datetime, outcome: AuditOutcome, detail: str
               ) -> AuditEntry:
        message = self.message
        kind, policies, before, after, label = self._change(step)
        return AuditEntry(
            kind=kind, at=at, who=APP, caller=QUEUE_CALLER, outcome=outcome,
            detail=_cut(detail), user_id=message.user_id,
            user_principal_name=message.user_principal_name or None,
            number=step.number if isinstance(step, AssignNumber | UnassignNumber) else (
                message.number),
            policies=policies, before=before, after=after, run_id=message.run_id,
            message_id=message.idempotency_key, step=label,
        )

    def _change(self, step: TeamsWrite
                ) -> tuple[AuditKind, tuple[str, ...], str | None, str | None, str]:
        """The kind, the policies, before, after and the step's label."""
        if isinstance(step, AssignNumber):
            previous = self.message.previous_number
            before = previous if previous != step.number else None
            return AuditKind.NUMBER_ASSIGNED, (), before, step.number, f"assign {step.number}"
        if isinstance(step, UnassignNumber):
            return AuditKind.NUMBER_UNASSIGNED, (), step.number, None, f"unassign {step.number}"
        if isinstance(step, AssignPolicies):
            types = [policy_type for policy_type, _ in step.assignments]
            given = tuple(_named(policy_type, self._wanted_name(policy_type, policy_id))
                          for policy_type, policy_id in step.assignments)
            return (AuditKind.POLICIES_GRANTED, given, self._effective(types), "; ".join(given),
                    f"grant {','.join(types)}")
        taken = tuple(_named(t, self._granted_name(t)) for t in step.policy_types)
        return (AuditKind.POLICIES_REVOKED, taken, "; ".join(taken), None,
                f"revoke {','.join(step.policy_types)}")

    def _wanted_name(self, policy_type: str, policy_id: str) -> str:
        wanted = policy_type.casefold()
        return next((p.name for p in self.message.policies
                     if p.policy_type.casefold() == wanted), policy_id)

    def _granted_name(self, policy_type: str) -> str | None:
        wanted = policy_type.casefold()
        policies = self._grant.policies if self._grant else ()
        return next((p.name for p in policies if p.policy_type.casefold() == wanted), None)

    def _effective(self, types: Sequence[str]) -> str | None:
        if self._seen is None:
            return None
        names = {kind.casefold(): name for kind, name in self._seen.effective_policy_names.items()}
        return "; ".join(_named(t, names.get(t.casefold()) or "(none)") for t in types)


def _named(policy_type: str, name: str | None) -> str:
    return f"{policy_type}: {name}" if name else policy_type


# --- what people do -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Actor:
    """Who does something by hand (``who``: the name they gave, or their authenticated name)
    and through which door (``caller``: the authenticated principal, ``function key``,
    ``cli:<OS user>``)."""

    who: str
    caller: str

    @classmethod
    def of(cls, given: str | None, caller: str) -> Actor:
        """``given`` (approvedBy, changedBy, --by) when there is one, else the caller."""
        name = (given or "").strip()
        return cls(name or caller, caller)


def manual_sync(actor: Actor, at: datetime, *, run_id: str | None, outcome: AuditOutcome,
                after: str, detail: str = "") -> AuditEntry:
    """A sync a person started (a run now, or its tenant-sync enqueued)."""
    return AuditEntry(kind=AuditKind.MANUAL_SYNC, at=at, who=actor.who, caller=actor.caller,
                      outcome=outcome, detail=_cut(detail), run_id=run_id, after=_cut(after))


def holds_approved(holds: Iterable[Hold], actor: Actor) -> list[AuditEntry]:
    """One entry per approved hold: the number whose unassignment was let through, and the
    message id of that unassignment (its own entry follows when the queue function takes the
    number back)."""
    return [
        AuditEntry(
            kind=AuditKind.HOLD_APPROVED, at=hold.decided_at or hold.created_at, who=actor.who,
            caller=actor.caller, user_id=hold.user_id,
            user_principal_name=hold.user_principal_name, number=hold.number,
            before="pending", after="approved", run_id=hold.run_id,
            message_id=f"approved|{hold.key}", detail=_cut(hold.message),
        )
        for hold in holds
    ]


def tenant_added(record: TenantRecord, actor: Actor, at: datetime) -> AuditEntry:
    """A tenant registered (state onboarding)."""
    return AuditEntry(kind=AuditKind.TENANT_ADDED, at=at, who=actor.who, caller=actor.caller,
                      before=None, after=f"{record.state.value}: {record.display_name}")


def tenant_state_changed(before: TenantRecord | None, after: TenantRecord, action: str,
                         actor: Actor, at: datetime, *, held: int = 0) -> AuditEntry:
    """A tenant activated, paused, resumed or removed (``held``: numbers held for release)."""
    detail = f"{action}" + (f"; {held} numbers held for release" if held else "")
    return AuditEntry(kind=AuditKind.TENANT_STATE_CHANGED, at=at, who=actor.who,
                      caller=actor.caller, before=before.state.value if before else None,
                      after=after.state.value, detail=detail)


def numbers_imported(before: TenantRecord | None, after: TenantRecord, source: str,
                     actor: Actor, at: datetime) -> AuditEntry:
    """A tenant's number ranges replaced by an import."""
    return AuditEntry(kind=AuditKind.NUMBERS_IMPORTED, at=at, who=actor.who,
                      caller=actor.caller, before=_ranges(before) if before else None,
                      after=_ranges(after), detail=_cut(f"from {source}"))


def _ranges(record: TenantRecord) -> str:
    ranges = record.rules.number_ranges
    return f"{len(ranges)} ranges, {sum(r.size for r in ranges):,} numbers"


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError(f"{at.isoformat()}: an audit time must carry its time zone")
    return at.astimezone(UTC)
