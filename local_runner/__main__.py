"""``python -m local_runner SCENARIO``: one full sync of a scenario on Azurite + the simulator."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

import function_app
from graph_simulator import EVERY_TENANT, Scenario, ScenarioError, load_scenario
from local_runner.customers import Customer, merged_scenario, onboard, operator_stack
from local_runner.report import (
    SyncReport,
    build_report,
    helpdesk_report_path,
    render,
    write_helpdesk_report,
)
from local_runner.session import (
    LocalStack,
    app_environment,
    local_stack,
    seed_app_state,
    sync_and_drain,
)
from shared.cli import render_tenants
from shared.config import ConfigError
from shared.runtime import TenantOverview, utc_now
from shared.service.tenant_runs import TenantCheck

cli = typer.Typer(add_completion=False, help=__doc__)


@cli.command()
def main(  # noqa: PLR0917 - typer reads its options from the signature
    scenario_file: Annotated[Path, typer.Argument(help="scenario JSON (see README)")],
    json_output: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="keep Azurite and Teams state here between runs (default: in memory)"),
    ] = None,
    customer: Annotated[list[Path] | None, typer.Option(
        help="another customer's scenario: registered and activated beside the first "
             "(an operator's app, no TENANT_ID)")] = None,
    just_added: Annotated[list[Path] | None, typer.Option(
        help="a customer just registered: its numbers imported and checked, not activated")
    ] = None,
    numbers: Annotated[list[Path] | None, typer.Option(
        help="the numbers CSV of each --just-added customer, in the same order")] = None,
) -> None:
    """Start Azurite and the Graph simulator, run the timer, drain the queue, print the report
    (with ``--state-dir``, the first tenant's helpdesk report page is written there too:
    ``report-<tenant>.html``, its path printed last).

    With ``--customer`` or ``--just-added`` the app serves several customer tenants as an
    operator deploys it (every tenant in the registry, tokens by federated identity), and the
    report ends with each just-added customer's check and the per-tenant summary."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    added = list(just_added or [])
    csv_files = list(numbers or [])
    if len(csv_files) > len(added):
        typer.echo("error: --numbers: one CSV per --just-added customer, no more", err=True)
        raise typer.Exit(2)
    try:
        scenario = load_scenario(scenario_file)
        customers = [Customer(load_scenario(path)) for path in customer or []]
        customers += [
            Customer(load_scenario(path), activate=False,
                     numbers_csv=csv_files[index] if index < len(csv_files) else None)
            for index, path in enumerate(added)
        ]
    except ScenarioError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    console = Console(width=160)
    try:
        if customers:
            operator = asyncio.run(_run_operator(scenario, customers, state_dir))
            reports = operator.reports
        else:
            reports = asyncio.run(_run(scenario, state_dir))
    except ConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    page = helpdesk_report_path(state_dir, scenario.tenant.id) if state_dir else None
    if json_output:
        body: dict[str, object] = {"steps": [report.to_json() for report in reports]}
        if customers:
            body["checks"] = [check.to_json() for check in operator.checks]
            body["tenants"] = [line.to_json() for line in operator.tenants]
        if page is not None:
            body["helpdeskReport"] = str(page.resolve())
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    for report in reports:
        render(report, console)
    if customers:
        render_operator(operator, console)
    if page is not None:
        console.print(f"Helpdesk report of tenant {scenario.tenant.id} (open it in a browser): "
                      f"{page.resolve()}", soft_wrap=True)


@dataclass
class OperatorRun:
    """What the operator's demo shows: the first customer's reports, the checks of the ones
    just added, and the per-tenant summary."""

    reports: list[SyncReport]
    checks: list[TenantCheck]
    tenants: list[TenantOverview]


def render_operator(run: OperatorRun, console: Console) -> None:
    """The checks of the customers just added, then every tenant's line."""
    for check in run.checks:
        table = Table(title=f"tenants check {check.tenant_id} (just added)")
        for column in ("check", "result", "message"):
            table.add_column(column, overflow="fold")
        for finding in check.findings:
            table.add_row(finding.check, finding.level.value, finding.message)
        console.print(table)
    render_tenants(run.tenants, console)


async def _run_operator(
    first: Scenario, customers: list[Customer], state_dir: Path | None
) -> OperatorRun:
    everyone = [Customer(first), *customers]
    merged = merged_scenario([each.scenario for each in everyone])
    with operator_stack(merged, state_dir=state_dir) as stack:
        async with app_environment(stack.settings):
            runtime = await function_app.runtime.get()
            runtime.clock = _later(_kept_offset(state_dir))
            checks = [check for each in everyone if (check := await onboard(runtime, each))]
            reports = await _sync_and_timeline(stack, first, state_dir, first.tenant.id)
            return OperatorRun(reports, checks, await runtime.overview())


async def _run(scenario: Scenario, state_dir: Path | None) -> list[SyncReport]:
    with local_stack(scenario, state_dir=state_dir) as stack:
        async with app_environment(stack.settings):
            runtime = await function_app.runtime.get()
            runtime.clock = _later(_kept_offset(state_dir))
            await seed_app_state(scenario)
            return await _sync_and_timeline(stack, scenario, state_dir, None)


def _kept_offset(state_dir: Path | None) -> timedelta:
    """Time a kept state has already lived through: a second run starts where it ended."""
    offset_file = state_dir / "clock-offset-hours" if state_dir else None
    if offset_file is None or not offset_file.exists():
        return timedelta(0)
    return timedelta(hours=float(offset_file.read_text()))


async def _sync_and_timeline(
    stack: LocalStack, scenario: Scenario, state_dir: Path | None, tenant: str | None
) -> list[SyncReport]:
    """The scenario's sync, then each timeline step's; the clock it reached is kept."""
    runtime = await function_app.runtime.get()
    offset = _kept_offset(state_dir)
    reports = [await _step(stack, scenario, "Sync of the directory", None, tenant)]
    for number, step in enumerate(scenario.timeline, start=1):
        offset += timedelta(hours=step.advance_hours)
        runtime.clock = _later(offset)
        if step.directory is not None:
            stack.simulator.replace_directory(step.directory, tenant=tenant)
        title = f"Timeline step {number}: {step.description}"
        reports.append(await _step(stack, scenario, title, reports[-1].run_id, tenant))
    if state_dir is not None:
        (state_dir / "clock-offset-hours").write_text(str(offset.total_seconds() / 3600))
        await write_helpdesk_report(runtime, scenario.tenant.id,
                                    helpdesk_report_path(state_dir, scenario.tenant.id))
    return reports


def _later(offset: timedelta) -> Callable[[], datetime]:
    def clock() -> datetime:
        return utc_now() + offset

    return clock


async def _step(
    stack: LocalStack, scenario: Scenario, title: str, since_run: str | None,
    tenant: str | None = None,
) -> SyncReport:
    stack.simulator.clear_requests(EVERY_TENANT)
    stats = await sync_and_drain(stack.settings)
    runtime = await function_app.runtime.get()
    statuses = await (runtime.default if tenant is None else await runtime.tenant(tenant)).report()
    return build_report(
        title,
        scenario=scenario,
        statuses=statuses,
        teams_numbers=stack.simulator.number_assignments(tenant),
        graph_requests=stack.simulator.request_counts(tenant),
        queue=stats,
        since_run=since_run,
    )


if __name__ == "__main__":
    cli()
