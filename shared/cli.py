"""Operator commands: ``plan`` (preview a tenant's plan, offline), ``runs`` (how the latest sync
runs ended), ``holds list`` / ``holds approve`` (the mass-unassign guard's holds), ``tenants …``
(add, check, numbers import, activate, pause, resume, remove, list: the customer tenants),
``report TENANT [--format html|csv|json] [-o FILE]`` (a tenant's helpdesk report).

``python -m shared.cli plan SNAPSHOT.json [--json]``: preview a tenant's plan, offline.

Reads a directory snapshot (the scenario format: users, groups, the tenant's rules, the Teams
numbers that exist and the numbers this app holds), runs the planner, and prints every decision
with its reason, or ``{"decisions": [...], "summary": {...}}`` as JSON. Nothing is written
anywhere. A broken or incomplete file gets one line naming the field, and exit code 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from shared.config import ConfigError
from shared.core.planner import Plan, plan
from shared.core.records import Hold, RunRecord
from shared.core.report_page import render_report
from shared.core.snapshot_file import SnapshotError, read_snapshot
from shared.core.tenant_registry import RegistryError, TenantAction, TenantExistsError
from shared.http_requests import (
    ApprovalRequest,
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
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Print what a sync would decide for every user, without touching anything."""
    try:
        text = snapshot.read_text(encoding="utf-8")
    except OSError as error:
        typer.echo(f"error: {snapshot}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    try:
        planned = read_snapshot(text, str(snapshot))
    except SnapshotError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
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
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
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
) -> None:
    """List held unassignments (uses the app settings in the environment)."""
    query = _checked(lambda: HoldsQuery.from_options(status, {"status": "--status"}))
    key = _tenant_option(tenant)

    async def holds(runtime: AppRuntime) -> list[Hold]:
        ledger = runtime.ledger if key is None else (await runtime.tenant(key)).ledger
        return await ledger.holds(query.ledger_status)

    rows = _run_tenant_command(holds)
    sys.stdout.write(json.dumps({"holds": [hold_json(h) for h in rows]}, indent=2) + "\n")


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
        approval.approved_by, approval.run_id, tenant_id=key))
    if approval.run_id is not None and not approved:
        refusal = approval.no_pending_holds("--run", "holds list --status all")
        typer.echo(f"error: {refusal.message}", err=True)
        raise typer.Exit(1)
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
    added = _run_tenant_command(lambda runtime: runtime.add_tenant(fields, by=who))
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
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Check a tenant before it goes active: its token and roles (naming every missing
    permission), the voice group, Teams' numbers, each main number's holder, and a dry run.
    Exit code 1 when a check failed."""
    key = _checked(lambda: TenantPath.from_route({"tenantId": tenant_id}, "tenants check").key)
    result = _run_tenant_command(lambda runtime: runtime.check_tenant(key))
    if json_output:
        sys.stdout.write(json.dumps(result.to_json(), indent=2) + "\n")
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
    if not result.passed:
        raise typer.Exit(1)


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
        typer.echo(f"error: {csv_file}: {error}", err=True)
        raise typer.Exit(2) from None
    record = _run_tenant_command(
        lambda runtime: runtime.import_numbers(key, text, str(csv_file), by=who))
    ranges = record.rules.number_ranges
    typer.echo(f"{key}: {len(ranges)} number ranges, "
               f"{sum(r.size for r in ranges):,} numbers")


def _state_command(action: TenantAction) -> Callable[..., None]:
    def command(tenant_id: TenantArgument, by: ByOption) -> None:
        key = _checked(lambda: TenantPath.from_route({"tenantId": tenant_id}, action.value).key)
        who = _checked(lambda: TenantChangeRequest.from_options(by))
        change = _run_tenant_command(lambda runtime: runtime.change_state(key, action, by=who))
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
        key, TenantAction.REMOVE, by=who, release_numbers=release_numbers))
    typer.echo(f"{key}: {change.record.state.value}")
    if change.held:
        typer.echo(f"{len(change.held)} numbers held for release; approve with: "
                   f"holds approve --tenant {key} --run {change.held[0].run_id} --by <who>")


@tenants_cli.command("list")
def tenants_list(
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Every tenant: state, health, last run, outcome counts and pending holds."""
    lines = _run_tenant_command(lambda runtime: runtime.overview())
    if json_output:
        body = {"tenants": [line.to_json() for line in lines]}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
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
    json_output: Annotated[bool, typer.Option("--json", help="the same as --format json")] = False,
) -> None:
    """A tenant's helpdesk report: every user's outcome, what to do and since when, under a
    summary (last run, counts, pending holds, health); the same as
    GET /api/tenants/{id}/report. Exit code 2 for bad input."""
    if json_output and report_format is not None and report_format.strip().lower() != "json":
        typer.echo(f"error: --json and --format {report_format}: give one of them", err=True)
        raise typer.Exit(2)
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
        typer.echo(f"error: --output {output}: {error.strerror}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{output}: the {query.format.value} report of tenant {key} "
               f"({report.summary.shown} of {report.summary.users} users)")


def _json_file(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        typer.echo(f"error: {path}: {error}", err=True)
        raise typer.Exit(2) from None


def _run_tenant_command(work: Callable[[AppRuntime], Awaitable[T]]) -> T:
    """Run a tenants command; a refusal is one line naming what is wrong, exit code 2."""
    try:
        return asyncio.run(_with_runtime(work))
    except (UnknownTenantError, RegistryError, TenantExistsError, TenantNotActiveError,
            ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None


def _checked(read: Callable[[], T]) -> T:
    """An option read by the HTTP rules; a refused one is one line naming it, and exit code 2."""
    try:
        return read()
    except RequestError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(2) from None


async def _with_runtime(work: Callable[[AppRuntime], Awaitable[T]]) -> T:
    holder = RuntimeHolder(os.environ)
    try:
        return await work(await holder.get())
    except ConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    finally:
        await holder.close()


if __name__ == "__main__":
    cli()
