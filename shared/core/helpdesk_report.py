"""The helpdesk report of one tenant: every user's latest outcome, what to do about it, and
since when, under a summary of the tenant (last run, counts by outcome, pending holds, health).

Pure: it is built from what the stores hold (``UserStatus`` rows, holds, the tenant's health,
its last ``RunRecord``) and rendered as JSON or CSV here, as HTML in ``shared.core.report_page``
(whose ``render_report`` renders any of the three). ``GET /api/tenants/{id}/report`` and
``shared.cli report`` both build it through ``AppRuntime.helpdesk_report``.

Order: failed users first, then the waiting ones (for Teams, for a read-back, for an approval),
then everyone else; by user within each group.

What "since" means depends on the user's state (``SinceMeaning``):

* ``waiting``: a user Teams is not ready for (``waiting_for_teams``, ``not_licensed``, whether
  still ``skipped`` or ``failed`` once the patience ran out) or whose change Teams does not show
  yet (``read_back_pending``): ``waiting_since``, when the current wait began (the patience
  counts from it).
* ``last_attempt``: any other ``failed``: ``updated_at``, when the queue function last tried
  (it records every attempt; ``attempts`` says how many in a row failed).
* ``changed``: everything else (assigned, kept, skipped, held, unassigned): ``updated_at``,
  when the current outcome was recorded (a run rewrites a user's row only when the outcome,
  reason, number or message changes, so a number still in place keeps the time it was
  assigned).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

from shared.core.outcomes import WAITING_REASONS, Outcome, Reason
from shared.core.records import Hold, RunRecord, UserStatus
from shared.core.spreadsheet_cells import spreadsheet_safe
from shared.core.tenant_registry import TenantHealth


class Attention(StrEnum):
    """Which group a user's row is in: the report lists ``failed`` first, then ``waiting``."""

    FAILED = "failed"
    """The rules allow the number but Teams refused it or could not be reached."""
    WAITING = "waiting"
    """Waiting for Teams (not ready, not licensed, a read-back) or for a person (a hold)."""
    SETTLED = "settled"
    """Nothing pending: assigned, kept, skipped by the rules, unassigned."""


_ATTENTION_ORDER: Final = {Attention.FAILED: 0, Attention.WAITING: 1, Attention.SETTLED: 2}
#: A wait that ``waiting_since`` dates: Teams not ready, or its read views behind a write.
_DATED_WAITS: Final = frozenset({*WAITING_REASONS, Reason.READ_BACK_PENDING})


class SinceMeaning(StrEnum):
    """What a row's ``since`` is (the module text says which outcome gets which)."""

    WAITING = "waiting"
    LAST_ATTEMPT = "last_attempt"
    CHANGED = "changed"


SINCE_LABELS: Final = {
    SinceMeaning.WAITING: "waiting since",
    SinceMeaning.LAST_ATTEMPT: "last tried",
    SinceMeaning.CHANGED: "since",
}
"""How each meaning reads in the HTML page and the CSV."""


class ReportFormat(StrEnum):
    """The formats the report is rendered in."""

    HTML = "html"
    CSV = "csv"
    JSON = "json"


_FORMATTING: Final = re.compile(r"[\s\-().\u00a0/]")
_DIGITS: Final = re.compile(r"\+?[0-9]+")


@dataclass(frozen=True, slots=True)
class ReportFilters:
    """Which users the report lists; empty sets and an empty search list everyone.

    The search matches, case-insensitively, a part of the user principal name, the user id or
    the number; a search of digits (``+``, spaces and dashes allowed) also matches the number's
    digits, so ``85 536 3011`` finds ``+31855363011``.
    """

    outcomes: frozenset[Outcome] = frozenset()
    reasons: frozenset[Reason] = frozenset()
    search: str = ""

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return bool(self.outcomes or self.reasons or self.search.strip())

    def matches(self, status: UserStatus) -> bool:
        """Whether the user's status passes every filter."""
        if self.outcomes and status.outcome not in self.outcomes:
            return False
        if self.reasons and status.reason not in self.reasons:
            return False
        return self._found(status)

    def _found(self, status: UserStatus) -> bool:
        needle = self.search.strip().casefold()
        if not needle:
            return True
        number = status.number or ""
        if any(needle in text.casefold()
               for text in (status.user_principal_name, status.user_id, number)):
            return True
        compact = _FORMATTING.sub("", needle)
        if _DIGITS.fullmatch(compact):
            return compact.lstrip("+") in number.lstrip("+")
        return False

    def to_json(self) -> dict[str, object]:
        """The filters as JSON (in the order of their enums, so the same filters read alike)."""
        return {
            "outcome": [o.value for o in Outcome if o in self.outcomes],
            "reason": [r.value for r in Reason if r in self.reasons],
            "search": self.search,
        }

    def describe(self) -> str:
        """The filters in a line a person reads (``outcome failed; search "ann"``)."""
        parts = []
        if self.outcomes:
            parts.append("outcome " + ", ".join(o.value for o in Outcome if o in self.outcomes))
        if self.reasons:
            parts.append("reason " + ", ".join(r.value for r in Reason if r in self.reasons))
        if self.search.strip():
            parts.append(f"search {self.search.strip()!r}")
        return "; ".join(parts) or "none"


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One user in the report."""

    user_id: str
    user_principal_name: str
    number: str | None
    outcome: Outcome
    reason: Reason
    what_to_do: str
    """The status message: what happened and what the customer can do about it."""
    attention: Attention
    since: datetime
    since_meaning: SinceMeaning
    attempts: int
    """Failures and waits in a row (the store's count)."""
    retry_at: datetime | None
    """When the app looks at the user again (a wait, a failure with backoff)."""
    first_seen: datetime | None
    updated_at: datetime
    run_id: str

    def to_json(self) -> dict[str, object]:
        """The row as JSON."""
        return {
            "userId": self.user_id,
            "userPrincipalName": self.user_principal_name,
            "number": self.number,
            "outcome": self.outcome.value,
            "reason": self.reason.value,
            "whatToDo": self.what_to_do,
            "attention": self.attention.value,
            "since": self.since.isoformat(),
            "sinceMeaning": self.since_meaning.value,
            "attempts": self.attempts,
            "retryAt": _iso(self.retry_at),
            "firstSeen": _iso(self.first_seen),
            "updatedAt": self.updated_at.isoformat(),
            "runId": self.run_id,
        }


@dataclass(frozen=True, slots=True)
class PendingHolds:
    """The unassignments the mass-unassign guard holds until someone approves them."""

    count: int
    oldest: datetime | None
    runs: tuple[str, ...]
    """The runs that held them, oldest first (``holds approve --run`` takes one)."""

    def to_json(self) -> dict[str, object]:
        """The holds' summary as JSON."""
        return {"count": self.count, "oldest": _iso(self.oldest), "runs": list(self.runs)}


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """The top of the report: the whole tenant, whatever the filters."""

    users: int
    shown: int
    """Users the filters let through (the rows)."""
    by_outcome: dict[Outcome, int]
    """Every outcome, in the enum's order, zeros included."""
    by_attention: dict[Attention, int]
    pending_holds: PendingHolds
    health: TenantHealth | None
    """None: the tenant has not been checked yet (no run through the registry)."""
    last_run: RunRecord | None

    def to_json(self) -> dict[str, object]:
        """The summary as JSON."""
        health = self.health
        run = self.last_run
        return {
            "users": self.users,
            "shown": self.shown,
            "byOutcome": {outcome.value: count for outcome, count in self.by_outcome.items()},
            "failed": self.by_attention[Attention.FAILED],
            "waiting": self.by_attention[Attention.WAITING],
            "pendingHolds": self.pending_holds.to_json(),
            "health": None if health is None else {
                "state": health.state.value, "message": health.message,
                "since": health.since.isoformat(), "checkedAt": health.checked_at.isoformat(),
            },
            "lastRun": None if run is None else {
                "runId": run.run_id, "startedAt": run.started_at.isoformat(),
                "finishedAt": _iso(run.finished_at), "outcome": run.outcome,
                "message": run.message, "counts": dict(run.counts),
            },
        }


@dataclass(frozen=True, slots=True)
class HelpdeskReport:
    """One tenant's report: who it is, when it was made, the summary and the rows."""

    tenant_id: str
    display_name: str
    generated_at: datetime
    filters: ReportFilters
    summary: ReportSummary
    rows: tuple[ReportRow, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        """The report as JSON (``format=json``)."""
        return {
            "tenantId": self.tenant_id,
            "displayName": self.display_name,
            "generatedAt": self.generated_at.isoformat(),
            "filters": self.filters.to_json(),
            "summary": self.summary.to_json(),
            "users": [row.to_json() for row in self.rows],
        }


def attention_of(status: UserStatus) -> Attention:
    """The group a user's row is in: failed, waiting (for Teams, a read-back or approval), or
    settled."""
    if status.outcome is Outcome.FAILED:
        return Attention.FAILED
    if status.outcome is Outcome.HELD or status.reason in _DATED_WAITS:
        return Attention.WAITING
    return Attention.SETTLED


def since_of(status: UserStatus) -> tuple[datetime, SinceMeaning]:
    """Since when the user is in their state, and what that time is (the module text)."""
    if status.reason in _DATED_WAITS and status.waiting_since is not None:
        return status.waiting_since, SinceMeaning.WAITING
    if status.outcome is Outcome.FAILED:
        return status.updated_at, SinceMeaning.LAST_ATTEMPT
    return status.updated_at, SinceMeaning.CHANGED


def build_report(
    *,
    tenant_id: str,
    display_name: str,
    statuses: list[UserStatus],
    holds: list[Hold],
    health: TenantHealth | None,
    last_run: RunRecord | None,
    now: datetime,
    filters: ReportFilters | None = None,
) -> HelpdeskReport:
    """The tenant's report: the summary of every user, and a row per user the filters let
    through, failed first, then waiting, then the rest, by user within each group.

    ``holds`` may hold holds of any status: only the pending ones count.
    """
    chosen = filters or ReportFilters()
    rows = tuple(sorted(
        (_row(status) for status in statuses if chosen.matches(status)),
        key=lambda row: (_ATTENTION_ORDER[row.attention], row.user_principal_name.casefold(),
                         row.user_id),
    ))
    by_outcome = dict.fromkeys(Outcome, 0)
    by_attention = dict.fromkeys(Attention, 0)
    for status in statuses:
        by_outcome[status.outcome] += 1
        by_attention[attention_of(status)] += 1
    pending = sorted((hold for hold in holds if hold.status == "pending"),
                     key=lambda hold: (hold.created_at, hold.run_id))
    runs = tuple(dict.fromkeys(hold.run_id for hold in pending))
    summary = ReportSummary(
        users=len(statuses), shown=len(rows), by_outcome=by_outcome, by_attention=by_attention,
        pending_holds=PendingHolds(len(pending), pending[0].created_at if pending else None,
                                   runs),
        health=health, last_run=last_run,
    )
    return HelpdeskReport(tenant_id, display_name, now, chosen, summary, rows)


def _row(status: UserStatus) -> ReportRow:
    since, meaning = since_of(status)
    return ReportRow(
        user_id=status.user_id, user_principal_name=status.user_principal_name,
        number=status.number, outcome=status.outcome, reason=status.reason,
        what_to_do=status.message, attention=attention_of(status), since=since,
        since_meaning=meaning, attempts=status.attempts, retry_at=status.retry_at,
        first_seen=status.first_seen, updated_at=status.updated_at, run_id=status.run_id,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# -- CSV ---------------------------------------------------------------------------------------

CSV_COLUMNS: Final = (
    "user", "user id", "number", "outcome", "reason", "what to do", "attention", "since",
    "since means", "attempts", "next look", "run",
)
#: A cell a spreadsheet would read as a formula (OWASP's list: = + - @, tab, carriage return).




def render_csv(report: HelpdeskReport) -> str:
    """The rows as CSV (a header line, then one line per user; the summary is not repeated),
    every cell guarded by ``spreadsheet_safe``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in report.rows:
        writer.writerow([spreadsheet_safe(cell) for cell in (
            row.user_principal_name, row.user_id, row.number or "", row.outcome.value,
            row.reason.value, row.what_to_do, row.attention.value, row.since.isoformat(),
            SINCE_LABELS[row.since_meaning], str(row.attempts), _iso(row.retry_at) or "",
            row.run_id,
        )])
    return out.getvalue()


# -- every format ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RenderedReport:
    """The report in one format, with what an HTTP answer or a file needs."""

    body: str
    content_type: str
    """Without the charset: the body is always UTF-8."""
    filename: str


def report_filename(tenant_id: str, report_format: ReportFormat) -> str:
    """``report-<tenant id>.<format>``: what the CSV download and ``make demo`` are named."""
    return f"report-{tenant_id}.{report_format.value}"
