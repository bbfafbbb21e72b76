"""The sync report a helpdesk reads: one row per user, a summary, and what Graph was asked; and
the tenant's helpdesk report page the demo writes (``write_helpdesk_report``)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from graph_simulator import Scenario
from local_runner.queue_host import DrainStats
from shared.core.helpdesk_report import ReportFormat, report_filename
from shared.core.records import UserStatus
from shared.core.report_page import render_html
from shared.runtime import AppRuntime

_STYLE = {
    "assigned": "green", "kept": "cyan", "skipped": "yellow", "unassigned": "magenta",
    "held": "red", "failed": "red",
}


@dataclass(frozen=True)
class ReportRow:
    """One user's outcome in the run."""

    user_principal_name: str
    telephone_number: str
    outcome: str
    reason: str
    message: str


@dataclass
class SyncReport:
    """Everything one local sync did."""

    title: str
    tenant_id: str
    run_id: str
    rows: list[ReportRow]
    not_in_group: list[ReportRow]
    graph_requests: dict[str, int]
    queue: DrainStats
    summary: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The report as JSON (``--json``)."""
        return {
            "step": self.title,
            "tenantId": self.tenant_id,
            "runId": self.run_id,
            "summary": self.summary,
            "graphRequests": self.graph_requests,
            "queue": asdict(self.queue),
            "users": [_row_json(row) for row in self.rows],
            "notInVoiceGroup": [_row_json(row) for row in self.not_in_group],
        }


def build_report(
    title: str,
    *,
    scenario: Scenario,
    statuses: list[UserStatus],
    teams_numbers: dict[str, str | None],
    graph_requests: dict[str, int],
    queue: DrainStats,
    since_run: str | None = None,
) -> SyncReport:
    """Assemble the report from the status table (every user's latest outcome) and the
    simulator. With ``since_run``, only users whose status changed after that run are listed."""
    run_id = max((status.run_id for status in statuses), default="")
    current = [s for s in statuses if since_run is None or s.run_id > since_run]
    rows = [
        ReportRow(s.user_principal_name, s.number or "", s.outcome.value, s.reason.value, s.message)
        for s in sorted(current, key=lambda s: (s.read_position < 0, s.read_position))
    ]
    served = {status.user_id for status in current}
    holders = {target: number for number, target in teams_numbers.items() if target}
    not_in_group = [] if since_run is not None else [
        ReportRow(
            user.user_principal_name,
            user.business_phones[0] if user.business_phones else "",
            "not served",
            "not_in_group",
            "Not a member of the voice group (EnterpriseVoiceEnabled); the app does not touch them."
            + (f" Teams has {holders[user.id]} on them, put there by someone else."
               if user.id in holders else ""),
        )
        for user in scenario.users
        if user.id not in served
    ]
    summary = dict(Counter(row.outcome for row in rows))
    summary["users listed"] = len(rows)
    if since_run is None:
        summary["notInVoiceGroup"] = len(not_in_group)
    return SyncReport(
        title, scenario.tenant.id, run_id, rows, not_in_group, graph_requests, queue, summary
    )


def render(report: SyncReport, console: Console) -> None:
    """Print the per-user table and the summary."""
    table = Table(title=f"{report.title} — tenant {report.tenant_id}, run {report.run_id}")
    for column in ("user", "number", "outcome", "reason", "what to do"):
        table.add_column(column, overflow="fold")
    for row in [*report.rows, *report.not_in_group]:
        style = _STYLE.get(row.outcome, "dim")
        table.add_row(
            row.user_principal_name, row.telephone_number, f"[{style}]{row.outcome}[/]",
            row.reason, row.message,
        )
    console.print(table)
    counts = ", ".join(f"{key}: {value}" for key, value in sorted(report.summary.items()))
    console.print(f"Summary — {counts}")
    writes = report.graph_requests.get("assignNumber", 0) + report.graph_requests.get(
        "unassignNumber", 0
    )
    console.print(
        f"Graph requests this run: {sum(report.graph_requests.values())} "
        f"({writes} number writes: assignNumber {report.graph_requests.get('assignNumber', 0)}); "
        f"queue: {report.queue.succeeded} processed, {report.queue.failed_attempts} retried, "
        f"{report.queue.poisoned} poisoned"
    )
    if writes == 0:
        console.print("Nothing changed in Teams this run.")


def _row_json(row: ReportRow) -> dict[str, str]:
    return {
        "userPrincipalName": row.user_principal_name,
        "telephoneNumber": row.telephone_number,
        "outcome": row.outcome,
        "reason": row.reason,
        "message": row.message,
    }


# -- the helpdesk report (``make demo`` writes the demo tenant's) --------------------------------


def helpdesk_report_path(state_dir: Path, tenant_id: str) -> Path:
    """Where the demo keeps a tenant's helpdesk report: ``<state dir>/report-<tenant>.html``."""
    return state_dir / report_filename(tenant_id, ReportFormat.HTML)


async def write_helpdesk_report(runtime: AppRuntime, tenant_id: str, path: Path) -> Path:
    """Write the tenant's helpdesk report page (what ``GET /api/tenants/{id}/report`` answers)
    to ``path``."""
    page = render_html(await runtime.helpdesk_report(tenant_id))
    await asyncio.to_thread(_write, path, page)
    return path


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
