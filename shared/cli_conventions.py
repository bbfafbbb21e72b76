"""What every operator command of ``shared.cli`` does the same way: exit codes, JSON output,
refusals and progress bars.

- Exit codes (``ExitCode``): 0 done, nothing to look at; 1 done (or stopped), with findings a
  person must look at (a failed check, rows a restore reported, Teams that could not be read);
  2 bad input, nothing was done (an option, a file, an unknown tenant, a refused change).
- ``--json`` (``JsonOption``) on every command that lists or summarises: the same facts as the
  table, as one JSON document on stdout (``print_json``), and no progress.
- A refusal (``refuse``) is one line on stderr, ``error: <what> naming the field and value``.
- Progress (``command_progress``) is drawn on stderr, only when stderr is a terminal and the
  command is not printing JSON, and vanishes when the work is done, so scripts and pipes get
  clean output.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import Annotated, NoReturn, TextIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from shared.service.progress import NO_PROGRESS, WorkProgress


class ExitCode(IntEnum):
    """The exit codes of every command."""

    OK = 0
    FINDINGS = 1
    BAD_INPUT = 2


JsonOption = Annotated[bool, typer.Option(
    "--json", help="print JSON on stdout (no table, no progress)")]
"""The ``--json`` option of a command that lists or summarises."""


def print_json(body: object) -> None:
    """Print one JSON document on stdout (indented, UTF-8 as it is, a newline at the end)."""
    sys.stdout.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n")


def refuse(message: str) -> NoReturn:
    """Stop the command on bad input: ``error: message`` on stderr, exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(ExitCode.BAD_INPUT)


def exit_with_findings(found: bool) -> None:
    """End the command with exit code 1 when it found something a person must look at."""
    if found:
        raise typer.Exit(ExitCode.FINDINGS)


def stop_with_finding(message: str) -> NoReturn:
    """Stop the command on a failure that is not the input's fault (Graph unreachable):
    ``error: message`` on stderr, exit code 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(ExitCode.FINDINGS)


def progress_wanted(json_output: bool, stream: TextIO | None = None) -> bool:
    """Whether to draw progress: not for JSON, and only on a terminal (``stream``: stderr)."""
    target = sys.stderr if stream is None else stream
    return not json_output and target.isatty()


class BarProgress:
    """Implements ``WorkProgress`` as rich progress bars, a line per stage: a bar when the
    stage's steps are counted, a spinner when not."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    def stage(self, description: str, total: int | None = None) -> None:
        """Finish the stage before and show a new one."""
        self.finish()
        self._task = self._progress.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        """Move the current stage's bar on."""
        if self._task is not None:
            self._progress.advance(self._task, steps)

    def finish(self) -> None:
        """Show the current stage as done (a spinner's has no total: it is done when the next
        stage begins, or the work ends)."""
        if self._task is None:
            return
        (task,) = [each for each in self._progress.tasks if each.id == self._task]
        done = task.total or task.completed or 1
        self._progress.update(self._task, total=done, completed=done)


@contextmanager
def command_progress(json_output: bool, stream: TextIO | None = None) -> Iterator[WorkProgress]:
    """The progress a command's work reports to: bars on stderr (``stream``) when
    ``progress_wanted``, else nothing. The bars vanish when the block ends."""
    if not progress_wanted(json_output, stream):
        yield NO_PROGRESS
        return
    console = Console(file=sys.stderr if stream is None else stream)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bars:
        shown = BarProgress(bars)
        yield shown
        shown.finish()
