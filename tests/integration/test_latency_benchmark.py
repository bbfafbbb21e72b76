"""The latency benchmark (``benchmarks.latency``) on a tiny day: two simulated hours, ten users,
two changes of every kind. How many minutes each kind takes is the benchmark's to print, never
a test's; what every run must show is that each change made in Graph lands in Teams and that
the report has a line for every kind, and a change that never lands fails the run."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import pytest

from benchmarks.latency import KINDS, by_kind, main, plan_day, play_day, print_day


def test_a_tiny_day_lands_every_change_and_reports_each_kind() -> None:
    plan = plan_day(users=10, per_kind=2, hours=2, seed=3, licence_delay=(10.0, 30.0))

    figures = play_day(plan, hours=2, seed=3, settle_hours=2, progress=False)

    assert figures.never_landed() == []
    assert [(row.kind, row.count, row.landed) for row in by_kind(figures.changes)] == [
        (kind, 2, 2) for kind in KINDS]
    assert set(figures.reads) == {"full", "delta"}  # the app chose both, on its own schedule
    assert figures.drained.poisoned == 0
    printed = io.StringIO()
    with redirect_stdout(printed):
        print_day(figures)
    table = printed.getvalue()
    assert all(f"  {kind:<15} {2:>5} " in table for kind in KINDS)


def test_a_change_that_never_lands_fails_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    # Half an hour and no time to settle: a nested joiner waits for the hourly full read.
    code = main(["--hours", "0.5", "--users", "4", "--per-kind", "1", "--settle-hours", "0"])

    assert code == 1
    assert "never landed: nested joiner" in capsys.readouterr().out
