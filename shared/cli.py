"""Operator commands: ``plan`` (preview a tenant's plan, offline), ``runs`` (how the latest sync
runs ended), ``holds list`` / ``holds approve`` (the mass-unassign guard's holds).

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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from shared.config import ConfigError
from shared.core.planner import Plan, plan
from shared.core.snapshot_file import SnapshotError, read_snapshot
from shared.http_requests import ApprovalRequest, HoldsQuery, RequestError
from shared.runtime import AppRuntime, RuntimeHolder, hold_json, run_json
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


_RUN_STYLE = {"completed": "green", "skipped": "yellow", "held_empty_group": "red",
              "failed": "red"}


@cli.command("runs")
def runs_command(
    last: Annotated[int, typer.Option(min=1, max=1000, help="how many runs, newest last")] = 20,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """How the latest sync runs ended (completed, skipped, held_empty_group, failed) and why
    (uses the app settings in the environment)."""
    records = asyncio.run(_with_runtime(lambda runtime: runtime.ledger.runs()))[-last:]
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
) -> None:
    """List held unassignments (uses the app settings in the environment)."""
    query = _checked(lambda: HoldsQuery.from_options(status, {"status": "--status"}))
    rows = asyncio.run(_with_runtime(lambda runtime: runtime.ledger.holds(query.ledger_status)))
    sys.stdout.write(json.dumps({"holds": [hold_json(h) for h in rows]}, indent=2) + "\n")


@holds_cli.command("approve")
def holds_approve(
    approved_by: Annotated[str, typer.Option("--by", help="who approves (name or e-mail)")],
    run_id: Annotated[str | None, typer.Option("--run", help="only this run's holds")] = None,
) -> None:
    """Approve held unassignments and enqueue them; records who approved.

    ``--by`` and ``--run`` follow the rules of ``POST /api/holds/approve``'s body.
    """
    approval = _checked(lambda: ApprovalRequest.from_options(
        approved_by, run_id, {"approvedBy": "--by", "runId": "--run"}))
    approved = asyncio.run(_with_runtime(
        lambda runtime: runtime.approve_holds(approval.approved_by, approval.run_id)))
    if approval.run_id is not None and not approved:
        refusal = approval.no_pending_holds("--run", "holds list --status all")
        typer.echo(f"error: {refusal.message}", err=True)
        raise typer.Exit(1)
    sys.stdout.write(json.dumps({"approved": [hold_json(h) for h in approved]}, indent=2) + "\n")


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
