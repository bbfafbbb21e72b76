"""``python -m local_runner SCENARIO``: one full sync of a scenario on Azurite + the simulator."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import function_app
from graph_simulator import Scenario, ScenarioError, load_scenario
from local_runner.report import SyncReport, build_report, render
from local_runner.session import app_environment, local_stack, sync_and_drain
from shared.config import ConfigError

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
        report = asyncio.run(_run(scenario, state_dir))
    except ConfigError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if json_output:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        render(report, Console(width=160))


async def _run(scenario: Scenario, state_dir: Path | None) -> SyncReport:
    with local_stack(scenario, state_dir=state_dir) as stack:
        async with app_environment(stack.settings):
            stack.simulator.clear_requests()
            stats = await sync_and_drain(stack.settings)
            runtime = await function_app.runtime.get()
            return build_report(
                scenario,
                await runtime.report(),
                stack.simulator.number_assignments(),
                stack.simulator.request_counts(),
                stats,
            )


if __name__ == "__main__":
    cli()
