"""``python -m shared.cli holds ...``: the options follow the HTTP rules, checked before any
storage is touched."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from shared import cli as cli_module
from shared.cli import cli


class NoRuntimeError(AssertionError):
    """The command built the runtime: it would have touched storage."""


@pytest.fixture(autouse=True)
def no_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise NoRuntimeError

    monkeypatch.setattr(cli_module, "RuntimeHolder", refuse)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["approve", "--by", "   "], '--by="   ": say who approves'),
        (["approve", "--by", "x" * 40_000], "--by=\"xxxx"),
        (["approve", "--by", "ops\nforged"], "control characters"),
        (["approve", "--by", "ops", "--run", ""], '--run="": String should have at least'),
        (["list", "--status", "bogus"], '--status="bogus": say pending, approved, dropped or all'),
    ],
)
def test_a_bad_option_is_one_line_naming_it_and_exit_code_2(args: list[str], says: str) -> None:
    result = CliRunner().invoke(cli, ["holds", *args])

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: --")
    assert says in result.stderr
    assert len(result.stderr) < 300
