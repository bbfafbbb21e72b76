"""``python -m local_runner SCENARIO``: one full sync of a scenario on Azurite + the simulator."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import function_app
from graph_simulator import Scenario, ScenarioError, load_scenario
from local_runner.report import SyncReport, build_report, render
from local_runner.session import (
    LocalStack,
    app_environment,
    local_stack,
    seed_app_state,
    sync_and_drain,
)
from shared.config import ConfigError
from shared.runtime import utc_now

cli = typer.Typer(add_completion=False, help=__doc__)


@cli.command()
def main(
    scenario_file: Annotated[Path, typer.Argument(help="scenario JSON (see README)")],
    json_output: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="keep Azurite and Teams state here between runs (default: in memory)"),
    ] = None,
) -> None:
    """Start Azurite and the Graph simulator, run the timer, drain the queue, print the report."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        scenario = load_scenario(scenario_file)
    except ScenarioError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    try:
        reports = asyncio.run(_run(scenario, state_dir))
    except ConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if json_output:
        body = {"steps": [report.to_json() for report in reports]}
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
        return
    console = Console(width=160)
    for report in reports:
        render(report, console)


async def _run(scenario: Scenario, state_dir: Path | None) -> list[SyncReport]:
    with local_stack(scenario, state_dir=state_dir) as stack:
        async with app_environment(stack.settings):
            # Time a kept state has already lived through: a second run starts where it ended.
            offset_file = state_dir / "clock-offset-hours" if state_dir else None
            offset = timedelta(hours=float(offset_file.read_text())) \
                if offset_file and offset_file.exists() else timedelta(0)
            runtime = await function_app.runtime.get()
            runtime.clock = _later(offset)
            await seed_app_state(scenario)
            reports = [await _step(stack, scenario, "Sync of the directory", None)]
            for number, step in enumerate(scenario.timeline, start=1):
                offset += timedelta(hours=step.advance_hours)
                runtime.clock = _later(offset)
                if step.directory is not None:
                    stack.simulator.replace_directory(step.directory)
                title = f"Timeline step {number}: {step.description}"
                reports.append(await _step(stack, scenario, title, reports[-1].run_id))
            if offset_file is not None:
                offset_file.write_text(str(offset.total_seconds() / 3600))
            return reports


def _later(offset: timedelta) -> Callable[[], datetime]:
    def clock() -> datetime:
        return utc_now() + offset

    return clock


async def _step(
    stack: LocalStack, scenario: Scenario, title: str, since_run: str | None
) -> SyncReport:
    stack.simulator.clear_requests()
    stats = await sync_and_drain(stack.settings)
    runtime = await function_app.runtime.get()
    return build_report(
        title,
        scenario=scenario,
        statuses=await runtime.report(),
        teams_numbers=stack.simulator.number_assignments(),
        graph_requests=stack.simulator.request_counts(),
        queue=stats,
        since_run=since_run,
    )


if __name__ == "__main__":
    cli()
