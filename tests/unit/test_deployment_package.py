"""What ships to Azure: the files ``.funcignore`` leaves in the deployment package import nothing
that stays behind (the simulator, the local runner, the tests, the benchmarks)."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pathspec

REPO = Path(__file__).resolve().parents[2]
LEFT_BEHIND = ("graph_simulator", "local_runner", "tests", "benchmarks")


def _shipped() -> list[str]:
    ignore = pathspec.PathSpec.from_lines(
        "gitignore", (REPO / ".funcignore").read_text().splitlines()
    )
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [path for path in tracked if not ignore.match_file(path)]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_the_package_ships_the_app_and_none_of_the_local_tools() -> None:
    shipped = _shipped()

    assert {"function_app.py", "host.json", "requirements.txt", "shared/runtime.py"} <= set(
        shipped
    )
    assert not [path for path in shipped if path.split("/")[0] in LEFT_BEHIND]


def test_nothing_shipped_imports_what_is_left_behind() -> None:
    offenders = {
        path: sorted(_imports(REPO / path) & set(LEFT_BEHIND))
        for path in _shipped() if path.endswith(".py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}
