"""Command line for the Graph simulator.

`python -m graph_simulator --scenario FILE [--port N] [--token T] [--state-file F]`

Prints one line, `graph simulator listening on http://127.0.0.1:<port>/v1.0`, then serves until
SIGTERM or SIGINT. The same port serves the Entra token endpoint and IMDS stand-ins
(`graph_simulator.identity`) for every tenant of the scenario; `--token` is the fixed token that
means the scenario's first tenant. A broken scenario or state file gives a one-line error and
exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from graph_simulator.http_server import start_runner
from graph_simulator.scenario import ScenarioError, load_scenario
from graph_simulator.server import DEFAULT_TOKEN, Simulator

EXIT_USAGE = 2
EXIT_CANNOT_SERVE = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m graph_simulator",
                                     description="Serve a simulated Microsoft Graph v1.0.")
    parser.add_argument("--scenario", required=True, type=Path, help="scenario JSON file")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any)")
    parser.add_argument("--token", default=DEFAULT_TOKEN,
                        help="fixed bearer token meaning the first tenant (tokens from the "
                        "token endpoint stand-in are taken too)")
    parser.add_argument("--state-file", type=Path, default=None,
                        help="keep Teams number state in this file across runs")
    return parser


async def _serve(simulator: Simulator, port: int) -> None:
    runner = await start_runner(simulator, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"graph simulator listening on {simulator.base_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        simulator = Simulator(load_scenario(args.scenario), token=args.token,
                              state_file=args.state_file)
    except ScenarioError as error:
        print(f"graph_simulator: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        asyncio.run(_serve(simulator, args.port))
    except OSError as error:
        print(f"graph_simulator: error: cannot listen on 127.0.0.1:{args.port}: "
              f"{error.strerror}", file=sys.stderr)
        return EXIT_CANNOT_SERVE
    return 0


if __name__ == "__main__":
    sys.exit(main())
