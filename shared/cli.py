"""Operator commands: ``plan`` (preview a tenant's plan, offline), ``runs`` (how the latest sync
runs ended), ``holds list`` / ``holds approve`` (the mass-unassign guard's holds), ``tenants …``
(add, check, numbers import, activate, pause, resume, remove, list: the customer tenants),
``audit TENANT`` (who changed what, and when),
``export`` / ``restore`` (a tenant's state to a file, and back after a storage account is lost),
``report TENANT [--format html|csv|json] [-o FILE]`` (a tenant's helpdesk report).

Every command follows ``shared.cli_conventions``: exit code 0 ok, 1 findings, 2 bad input;
``--json`` on every listing and summary; progress on stderr, on a terminal only.

``python -m shared.cli plan SNAPSHOT.json [--json]``: preview a tenant's plan, offline.

Reads a directory snapshot (the scenario format: users, groups, the tenant's rules, the Teams
numbers that exist and the numbers this app holds), runs the planner, and prints every decision
with its reason, or ``{"decisions": [...], "summary": {...}}`` as JSON. Nothing is written
anywhere. A broken or incomplete file gets one line naming the field, and exit code 2.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from azure.core.exceptions import AzureError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shared.cli_conventions import (
    ExitCode,
    JsonOption,
    command_progress,
    exit_with_findings,
    print_json,
    refuse,
    stop_with_finding,
)
from shared.config import ConfigError
from shared.core.audit import AuditEntry, AuditOutcome
from shared.core.errors import SyncError
from shared.core.planner import Plan, plan
from shared.core.records import Hold, RunRecord
from shared.core.report_page import render_report
from shared.core.snapshot_file import SnapshotError, read_snapshot
from shared.core.tenant_export import ExportError, read_export, statuses_csv
from shared.core.tenant_registry import RegistryError, TenantAction, TenantExistsError
from shared.core.tenant_restore import RestorePlan
from shared.http_requests import (
    ApprovalRequest,
    AuditQuery,
    HoldsQuery,
    ReportQuery,
    RequestError,
    TenantChangeRequest,
    TenantPath,
)
from shared.runtime import (
    AppRuntime,
    RuntimeHolder,
    TenantNotActiveError,
    TenantOverview,
    UnknownTenantError,
    hold_json,
    run_json,
)
from shared.service.collector_pause import cycle_collection_paused

T = TypeVar("T")

cli = typer.Typer(add_completion=False, help="Teams Number Sync operator commands.")

_STYLE = {"assign": "green", "keep": "cyan", "skip": "yellow", "unassign": "magenta", "hold": "red"}


@cli.callback()
def _commands() -> None:
    """Teams Number Sync operator commands."""


@cli.command("plan")
def plan_command(
    snapshot: Annotated[Path, typer.Argument(help="directory snapshot / scenario JSON")],
    json_output: JsonOption = False,
) -> None:
    """Print what a sync would decide for every user, without touching anything."""
    with command_progress(json_output) as progress:
        progress.stage(f"reading {snapshot.name}")
        try:
            text = snapshot.read_text(encoding="utf-8")
        except OSError as error:
            refuse(f"{snapshot}: {error.strerror}")
        try:
            planned = read_snapshot(text, str(snapshot))
        except SnapshotError as error:
            refuse(str(error))
        progress.stage(f"planning {len(planned.members):,} users")
        with cycle_collection_paused():
            result = plan(planned.members, planned.rules, planned.state)
    if json_output:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
        return
    render_plan(result, Console(width=160), title=f"Plan for tenant {planned.tenant_id}")


def render_plan(result: Plan, console: Console, *, title: str) -> None:
    """The plan as a table and a summary line."""
    table = Table(title=title)
    for column in ("user", "raw number", "outcome", "reason", "number", "message"):
        table.add_column(column, overflow="fold")
    for decision in result.decisions:
        style = _STYLE.get(decision.action.value, "white")
        table.add_row(
            decision.user_principal_name, decision.raw_number or "",
            f"[{style}]{decision.action.value}[/]", decision.reason.value,
            decision.number or decision.previous_number or "", decision.message,
        )
    console.print(table)
    summary = result.summary()
    console.print(f"Summary — {summary['byOutcome']}; reasons: {summary['byReason']}")


TenantOption = Annotated[str | None, typer.Option(
    "--tenant", help="the tenant (default: the app's TENANT_ID tenant)")]


def _tenant_option(tenant: str | None) -> str | None:
    if tenant is None:
        return None
    return _checked(lambda: TenantPath.from_route({"tenantId": tenant}, "--tenant").key)


_RUN_STYLE = {"completed": "green", "skipped": "yellow", "held_empty_group": "red",
              "failed": "red"}


@cli.command("runs")
def runs_command(
    last: Annotated[int, typer.Option(min=1, max=1000, help="how many runs, newest last")] = 20,
    json_output: JsonOption = False,
    tenant: TenantOption = None,
) -> None:
    """How the latest sync runs ended (completed, skipped, held_empty_group, failed) and why
    (uses the app settings in the environment)."""
    key = _tenant_option(tenant)

    async def runs(runtime: AppRuntime) -> list[RunRecord]:
        ledger = runtime.ledger if key is None else (await runtime.tenant(key)).ledger
        return await ledger.runs()

    records = _run_tenant_command(runs)[-last:]
    if json_output:
        sys.stdout.write(json.dumps({"runs": [run_json(r) for r in records]}, indent=2) + "\n")
        return
    table = Table(title=f"The last {len(records)} sync run(s)")
    for column in ("run", "started", "outcome", "counts", "message"):
        table.add_column(column, overflow="fold")
    for record in records:
        style = _RUN_STYLE.get(record.outcome, "white")
        counts = ", ".join(f"{name} {count}" for name, count in sorted(record.counts.items()))
        table.add_row(record.run_id, f"{record.started_at:%Y-%m-%d %H:%M:%S}",
                      f"[{style}]{record.outcome}[/]", counts, record.message)
    Console(width=160).print(table)


holds_cli = typer.Typer(help="Unassignments held by the mass-unassign guard.")
cli.add_typer(holds_cli, name="holds")


@holds_cli.command("list")
def holds_list(
    status: Annotated[str, typer.Option(help="pending, approved, dropped or all")] = "pending",
    tenant: TenantOption = None,
    json_output: JsonOption = False,
) -> None:
    """List held unassignments (uses the app settings in the environment); with --json the
    body of GET /api/holds."""
    query = _checked(lambda: HoldsQuery.from_options(status, {"status": "--status"}))
    key = _tenant_option(tenant)

    async def holds(runtime: AppRuntime) -> list[Hold]:
        ledger = runtime.ledger if key is None else (await runtime.tenant(key)).ledger
        return await ledger.holds(query.ledger_status)

    rows = _run_tenant_command(holds)
    if json_output:
        print_json({"holds": [hold_json(h) for h in rows]})
        return
    render_holds(rows, Console(width=160))


_HOLD_STYLE = {"pending": "red", "approved": "green", "dropped": "dim"}


def render_holds(holds: Sequence[Hold], console: Console) -> None:
    """Held unassignments as a table, with how to approve them."""
    table = Table(title=f"{len(holds)} hold(s)")
    for column in ("run", "user", "number", "status", "decided", "message"):
        table.add_column(column, overflow="fold")
    for hold in holds:
        decided = (f"{hold.decided_by} {hold.decided_at:%Y-%m-%d %H:%M}"
                   if hold.decided_by and hold.decided_at else "-")
        table.add_row(hold.run_id, hold.user_principal_name, hold.number,
                      f"[{_HOLD_STYLE.get(hold.status, 'white')}]{hold.status}[/]", decided,
                      hold.message)
    console.print(table)
    if any(hold.status == "pending" for hold in holds):
        console.print("approve with: holds approve --by <who> [--run RUN] [--tenant TENANT]")


@holds_cli.command("approve")
def holds_approve(
    approved_by: Annotated[str, typer.Option("--by", help="who approves (name or e-mail)")],
    run_id: Annotated[str | None, typer.Option("--run", help="only this run's holds")] = None,
    tenant: TenantOption = None,
) -> None:
    """Approve held unassignments and enqueue them; records who approved.

    ``--by`` and ``--run`` follow the rules of ``POST /api/holds/approve``'s body.
    """
    approval = _checked(lambda: ApprovalRequest.from_options(
        approved_by, run_id, {"approvedBy": "--by", "runId": "--run"}))
    key = _tenant_option(tenant)
    approved = _run_tenant_command(lambda runtime: runtime.approve_holds(
        approval.approved_by, approval.run_id, tenant_id=key, caller=cli_caller()))
    if approval.run_id is not None and not approved:
        refuse(approval.no_pending_holds("--run", "holds list --status all").message)
    sys.stdout.write(json.dumps({"approved": [hold_json(h) for h in approved]}, indent=2) + "\n")


tenants_cli = typer.Typer(help="The operator's customer tenants: onboard, check, pause, remove.")
cli.add_typer(tenants_cli, name="tenants")
numbers_cli = typer.Typer(help="The numbers the operator supplied to a tenant.")
tenants_cli.add_typer(numbers_cli, name="numbers")

_STATE_STYLE = {"active": "green", "onboarding": "cyan", "paused": "yellow", "removed": "dim"}
_HEALTH_STYLE = {"healthy": "green", "auth_failed": "red", "group_missing": "red",
                 "graph_unavailable": "yellow"}
_LEVEL_STYLE = {"ok": "green", "warning": "yellow", "failed": "red"}

ByOption = Annotated[str, typer.Option("--by", help="who does it (name or e-mail)")]
TenantArgument = Annotated[str, typer.Argument(help="the customer tenant's id (a GUID)")]


@tenants_cli.command("add")
def tenants_add(  # noqa: PLR0917 - typer reads its options from the signature
    tenant_id: TenantArgument,
    display_name: Annotated[str, typer.Option("--name", help="the customer's name")],
    voice_group_id: Annotated[str, typer.Option("--voice-group", help="the voice group's id")],
    by: ByOption,
    number_type: Annotated[str | None, typer.Option(
        help="directRouting, callingPlan or operatorConnect")] = None,
    rules_file: Annotated[Path | None, typer.Option(
        "--rules", help="a JSON file of the tenant's rules (the scenario's tenant.rules)")] = None,
) -> None:
    """Register a customer tenant (state onboarding) and print the admin-consent URL."""
    fields: dict[str, object] = {"tenantId": tenant_id, "displayName": display_name,
                                 "voiceGroupId": voice_group_id}
    if number_type is not None:
        fields["numberType"] = number_type
    if rules_file is not None:
        fields["rules"] = _json_file(rules_file)
    who = _checked(lambda: TenantChangeRequest.from_options(by))
    added = _run_tenant_command(
        lambda runtime: runtime.add_tenant(fields, by=who, caller=cli_caller()))
    console = Console(width=160)
    console.print(f"[cyan]{added.record.key}[/] {added.record.display_name}: "
                  f"{added.record.state.value}")
    if added.consent_url:
        console.print("The customer's Global or Privileged Role Administrator opens, once:")
        console.print(added.consent_url, soft_wrap=True)
    else:
        console.print("[yellow]GRAPH_CLIENT_ID is not set: no app registration to consent "
                      "to[/]")
    console.print(f"Then: tenants check {added.record.key}")


@tenants_cli.command("check")
def tenants_check(
    tenant_id: TenantArgument,
    json_output: JsonOption = False,
) -> None:
    """Check a tenant before it goes active: its token and roles (naming every missing
    permission), the voice group, Teams' numbers, each main number's holder, and a dry run.
    Exit code 1 when a check failed."""
    key = _checked(lambda: TenantPath.from_route({"tenantId": tenant_id}, "tenants check").key)
    with command_progress(json_output) as progress:
        result = _run_tenant_command(
            lambda runtime: runtime.check_tenant(key, progress=progress))
    if json_output:
        print_json(result.to_json())
    else:
        table = Table(title=f"Check of tenant {key}")
        for column in ("check", "result", "message"):
            table.add_column(column, overflow="fold")
        for finding in result.findings:
            style = _LEVEL_STYLE[finding.level.value]
            table.add_row(finding.check, f"[{style}]{finding.level.value}[/]", finding.message)
        console = Console(width=160)
        console.print(table)
        console.print("passed: activate it with tenants activate" if result.passed
                      else "[red]failed[/]: fix what failed, then check again")
    exit_with_findings(not result.passed)


@numbers_cli.command("import")
def tenants_numbers_import(
    tenant_id: TenantArgument,
    csv_file: Annotated[Path, typer.Argument(help="CSV: one number, or first,last, per line")],
    by: ByOption,
) -> None:
    """Make the numbers in the CSV the tenant's number ranges (every bad line is named)."""
    key = _checked(lambda: TenantPath.from_route({"tenantId": tenant_id}, "tenants numbers").key)
    who = _checked(lambda: TenantChangeRequest.from_options(by))
    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        refuse(f"{csv_file}: {error}")
    record = _run_tenant_command(
        lambda runtime: runtime.import_numbers(key, text, str(csv_file), by=who,
                                               caller=cli_caller()))
    ranges = record.rules.number_ranges
    typer.echo(f"{key}: {len(ranges)} number ranges, "
               f"{sum(r.size for r in ranges):,} numbers")


def _state_command(action: TenantAction) -> Callable[..., None]:
    def command(tenant_id: TenantArgument, by: ByOption) -> None:
        key = _checked(lambda: TenantPath.from_route({"tenantId": tenant_id}, action.value).key)
        who = _checked(lambda: TenantChangeRequest.from_options(by))
        change = _run_tenant_command(
            lambda runtime: runtime.change_state(key, action, by=who, caller=cli_caller()))
        typer.echo(f"{key}: {change.record.state.value}")

    command.__doc__ = {
        TenantAction.ACTIVATE: "Start syncing a tenant (after tenants check passed).",
        TenantAction.PAUSE: "Stop syncing a tenant; nothing in Teams changes.",
        TenantAction.RESUME: "Sync a paused tenant again.",
    }.get(action)
    return command


for _action in (TenantAction.ACTIVATE, TenantAction.PAUSE, TenantAction.RESUME):
    tenants_cli.command(_action.value)(_state_command(_action))


@tenants_cli.command("remove")
def tenants_remove(
    tenant_id: TenantArgument,
    by: ByOption,
    release_numbers: Annotated[bool, typer.Option(
        "--release-numbers",
        help="also hold every number the app assigned there for release (holds approve)",
    )] = False,
) -> None:
    """Stop serving a tenant. Nothing is unassigned, unless --release-numbers: then every
    number the app put on a user is held, and leaves Teams only once the holds are approved."""
    key = _checked(lambda: TenantPath.from_route({"tenantId": tenant_id}, "remove").key)
    who = _checked(lambda: TenantChangeRequest.from_options(by))
    change = _run_tenant_command(lambda runtime: runtime.change_state(
        key, TenantAction.REMOVE, by=who, release_numbers=release_numbers,
        caller=cli_caller()))
    typer.echo(f"{key}: {change.record.state.value}")
    if change.held:
        typer.echo(f"{len(change.held)} numbers held for release; approve with: "
                   f"holds approve --tenant {key} --run {change.held[0].run_id} --by <who>")


@tenants_cli.command("list")
def tenants_list(json_output: JsonOption = False) -> None:
    """Every tenant: state, health, last run, outcome counts and pending holds."""
    lines = _run_tenant_command(lambda runtime: runtime.overview())
    if json_output:
        print_json({"tenants": [line.to_json() for line in lines]})
        return
    render_tenants(lines, Console(width=160))


def render_tenants(lines: Sequence[TenantOverview], console: Console) -> None:
    """The operator's per-tenant summary as a table."""
    table = Table(title=f"{len(lines)} tenant(s)")
    for column in ("tenant", "name", "state", "health", "last run", "outcomes", "holds"):
        table.add_column(column, overflow="fold")
    for line in lines:
        state = line.record.state.value
        health = line.health.state.value if line.health else "-"
        health_text = f"[{_HEALTH_STYLE.get(health, 'white')}]{health}[/]"
        if line.health and line.health.state.value != "healthy":
            health_text += f"\n{line.health.message}"
        last = (f"{line.last_run.outcome} {line.last_run.started_at:%Y-%m-%d %H:%M}"
                if line.last_run else "-")
        outcomes = ", ".join(f"{name} {count}" for name, count in line.outcomes.items()) or "-"
        table.add_row(line.record.key, line.record.display_name,
                      f"[{_STATE_STYLE.get(state, 'white')}]{state}[/]", health_text, last,
                      outcomes, str(line.pending_holds))
    console.print(table)


_OUTCOME_STYLE = {AuditOutcome.DONE: "green", AuditOutcome.FAILED: "red",
                  AuditOutcome.PENDING: "yellow"}


@cli.command("audit")
def audit_command(
    tenant_id: TenantArgument,
    since: Annotated[str | None, typer.Option(
        help="from this date (2026-11-01) or time (ISO); default: the last 31 days")] = None,
    user: Annotated[str | None, typer.Option(help="only this user (Entra id or UPN)")] = None,
    json_output: JsonOption = False,
) -> None:
    """Who changed what, and when: every Teams write the app made, every manual sync,
    approval and tenant change, oldest first (uses the app settings in the environment)."""
    key = _checked(lambda: TenantPath.from_route({"tenantId": tenant_id}, "audit").key)
    query = _checked(lambda: AuditQuery.from_options(since, user,
                                                     {"since": "--since", "user": "--user"}))
    entries = _run_tenant_command(lambda runtime: runtime.audit_entries(
        key, since=query.since, user=query.user))
    if json_output:
        print_json({"entries": [entry.to_json() for entry in entries]})
        return
    render_audit(entries, Console(width=160), title=f"Audit trail of tenant {key}")


def render_audit(entries: Sequence[AuditEntry], console: Console, *, title: str) -> None:
    """The audit entries as a table, oldest first."""
    table = Table(title=f"{title}: {len(entries)} entries")
    for column in ("when (UTC)", "what", "user", "number / policies", "before → after",
                   "outcome", "who", "run"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        style = _OUTCOME_STYLE[entry.outcome]
        outcome = f"[{style}]{entry.outcome.value}[/]"
        if entry.detail:
            outcome += f"\n{escape(entry.detail)}"
        who = entry.who if entry.who == entry.caller else f"{entry.who}\nvia {entry.caller}"
        table.add_row(
            f"{entry.at:%Y-%m-%d %H:%M:%S}", entry.kind.value,
            escape(entry.user_principal_name or entry.user_id or ""),
            escape(entry.number or "; ".join(entry.policies)),
            escape(f"{entry.before or '-'} → {entry.after or '-'}"), outcome, escape(who),
            entry.run_id or "",
        )
    console.print(table)


def cli_caller() -> str:
    """The door a CLI command comes through, for the audit trail: ``cli:<OS user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in the environment or the password database
        return "cli:unknown"


# -- the helpdesk report ------------------------------------------------------------------------

@cli.command("report")
def report_command(  # noqa: PLR0917 - typer reads its options from the signature
    tenant_id: TenantArgument,
    report_format: Annotated[str | None, typer.Option(
        "--format", help="html (the default: one self-contained page), csv or json")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="write it to this file (default: print it)")] = None,
    outcome: Annotated[str | None, typer.Option(
        help="only users with this outcome (several: separated by commas)")] = None,
    reason: Annotated[str | None, typer.Option(
        help="only users with this reason code (several: separated by commas)")] = None,
    search: Annotated[str | None, typer.Option(
        help="only users whose principal name, id or number contains this")] = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help="the same as --format json (printed on stdout unless -o)")] = False,
) -> None:
    """A tenant's helpdesk report: every user's outcome, what to do and since when, under a
    summary (last run, counts, pending holds, health); the same as
    GET /api/tenants/{id}/report. Exit code 2 for bad input."""
    if json_output and report_format is not None and report_format.strip().lower() != "json":
        refuse(f"--json and --format {report_format}: give one of them")
    key = _checked(lambda: TenantPath.from_route({"tenantId": tenant_id}, "report").key)
    query = _checked(lambda: ReportQuery.from_options(
        {"format": "json" if json_output else report_format, "outcome": outcome,
         "reason": reason, "search": search},
        {"format": "--format", "outcome": "--outcome", "reason": "--reason",
         "search": "--search"}))
    report = _run_tenant_command(lambda runtime: runtime.helpdesk_report(key, query.filters))
    rendered = render_report(report, query.format)
    if output is None:
        sys.stdout.write(rendered.body)
        return
    try:
        # newline="": the CSV module ends its lines itself (RFC 4180's CRLF).
        with output.open("w", encoding="utf-8", newline="") as file:
            file.write(rendered.body)
    except OSError as error:
        refuse(f"--output {output}: {error.strerror}")
    typer.echo(f"{output}: the {query.format.value} report of tenant {key} "
               f"({report.summary.shown} of {report.summary.users} users)")


def _json_file(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        refuse(f"{path}: {error}")


def _run_tenant_command(work: Callable[[AppRuntime], Awaitable[T]]) -> T:
    """Run a command on the app's runtime; a refusal is one line naming what is wrong, exit
    code 2; storage that fails is one line too, exit code 1 (not a traceback)."""
    try:
        return asyncio.run(_with_runtime(work))
    except (UnknownTenantError, RegistryError, TenantExistsError, TenantNotActiveError,
            ValueError) as error:
        refuse(str(error))
    except AzureError as error:
        stop_with_finding(f"Azure Storage failed: {_first_line(error.message)} (the storage "
                          f"account of AzureWebJobsStorage)")


def _first_line(text: str | None) -> str:
    return (text or "no reason given").strip().splitlines()[0]


def _checked(read: Callable[[], T]) -> T:
    """An option read by the HTTP rules; a refused one is one line naming it, and exit code 2."""
    try:
        return read()
    except RequestError as error:
        refuse(error.message)


async def _with_runtime(work: Callable[[AppRuntime], Awaitable[T]]) -> T:
    holder = RuntimeHolder(os.environ)
    try:
        return await work(await holder.get())
    except ConfigError as error:
        refuse(str(error))
    finally:
        await holder.close()


# -- export and restore ---------------------------------------------------------------------


@cli.command("export")
def export_command(
    tenant_id: TenantArgument,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="write the JSON here (default: stdout)")] = None,
    statuses_csv_file: Annotated[Path | None, typer.Option(
        "--statuses-csv", help="also write the users' statuses here as CSV")] = None,
    json_output: JsonOption = False,
) -> None:
    """Write the tenant's claims, statuses, policy grants and holds to a file.

    One JSON document (schema teams-number-sync-export/1), and the statuses as CSV: what
    restore reads back after a storage account is lost. Reads only (uses the app settings in
    the environment)."""
    key = _checked(lambda: TenantPath.from_route({"tenantId": tenant_id}, "export").key)
    with command_progress(json_output) as progress:
        document = _run_tenant_command(
            lambda runtime: runtime.export_tenant(key, progress=progress))
    if output is None:
        sys.stdout.write(document.to_text())
    else:
        write_private_file(output, document.to_text())
    if statuses_csv_file is not None:
        write_private_file(statuses_csv_file, statuses_csv(document.statuses))
    if output is None:
        return  # stdout holds the document itself
    summary = {"tenantId": document.tenant_id, "exportedAt": document.exported_at.isoformat(),
               "file": str(output),
               "statusesCsv": str(statuses_csv_file) if statuses_csv_file else None,
               "counts": document.counts.to_json()}
    if json_output:
        print_json(summary)
        return
    counts = document.counts
    typer.echo(f"{key}: {counts.claims} claims, {counts.statuses} statuses, {counts.grants} "
               f"policy grants, {counts.holds} holds -> {output}"
               + (f" (statuses CSV -> {statuses_csv_file})" if statuses_csv_file else ""))


@cli.command("restore")
def restore_command(
    tenant_id: TenantArgument,
    export_file: Annotated[Path, typer.Argument(help="a file written by export")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="decide and report, write nothing")] = False,
    json_output: JsonOption = False,
) -> None:
    """Rebuild a lost store's claims, policy grants and holds from an export.

    Into the tenant's EMPTY store (after a storage account was lost), cross-checked against
    Teams' number assignments: a claim whose number Teams shows on someone else, or on no one,
    is reported and not restored. Statuses are not restored: the next sync writes them. Exit
    code 1 when anything was reported, 2 when the file or the store is refused (nothing
    written)."""
    key = _checked(lambda: TenantPath.from_route({"tenantId": tenant_id}, "restore").key)
    try:
        text = export_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        refuse(f"{export_file}: {getattr(error, 'strerror', None) or error}")
    try:
        document = read_export(text, str(export_file))
    except ExportError as error:
        refuse(str(error))
    with command_progress(json_output) as progress:
        restored = _run_tenant_command(lambda runtime: _teams_readable(runtime.restore_tenant(
            key, document, source=str(export_file), dry_run=dry_run, progress=progress)))
    if json_output:
        print_json(restored.summary_json(dry_run=dry_run))
    else:
        render_restore(restored, Console(width=160), dry_run=dry_run)
    exit_with_findings(bool(restored.reported))


def render_restore(restored: RestorePlan, console: Console, *, dry_run: bool) -> None:
    """What a restore did (or would do): the rows reported, then the counts."""
    reported = restored.reported
    if reported:
        table = Table(title=f"{len(reported)} row(s) reported, not restored")
        for column in ("kind", "user", "number", "reason", "message"):
            table.add_column(column, overflow="fold")
        for row in reported:
            table.add_row(row.kind.value, row.user_principal_name or row.user_id, row.number,
                          f"[red]{row.reason.value}[/]", row.message)
        console.print(table)
    verb = "would restore" if dry_run else "restored"
    console.print(
        f"{restored.tenant_id}: {verb} {len(restored.claims)} claims, "
        f"{len(restored.grants)} policy grants, {len(restored.holds)} holds; "
        f"{len(reported)} reported; {restored.statuses_not_restored} statuses left to the "
        f"next sync" + (" (dry run: nothing written)" if dry_run else ""))


async def _teams_readable(restoring: Awaitable[T]) -> T:
    """A restore whose read of Teams failed stops with exit code 1 (nothing was written)."""
    try:
        return await restoring
    except SyncError as error:
        typer.echo(f"error: Teams could not be read, nothing was restored: {error.message}",
                   err=True)
        raise typer.Exit(ExitCode.FINDINGS) from None


def write_private_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file renamed over it), readable
    by the owner only: an export names every user and number. A path that cannot be written is
    refused (exit code 2)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        temporary.replace(path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        refuse(f"{path}: {error.strerror or error}")


if __name__ == "__main__":
    cli()
