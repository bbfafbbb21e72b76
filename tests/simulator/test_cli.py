import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.simulator.support import EXAMPLE

REPO = Path(__file__).resolve().parents[2]


def read_line(process: subprocess.Popen[str], deadline_seconds: float) -> str:
    """The first stdout line, or AssertionError if none arrives before the deadline."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + deadline_seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if selector.select(timeout=remaining):
                return process.stdout.readline()
    raise AssertionError("simulator printed nothing before the deadline")


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "graph_simulator", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_cli_prints_its_url_and_serves_until_terminated(tmp_path: Path) -> None:
    with start("--scenario", str(EXAMPLE), "--token", "cli-token",
               "--state-file", str(tmp_path / "state.json")) as process:
        try:
            serve_and_check(process)
        finally:
            process.terminate()
            process.wait(timeout=30)
    assert process.returncode == 0
    assert (tmp_path / "state.json").exists()


def serve_and_check(process: subprocess.Popen[str]) -> None:
    line = read_line(process, 30)
    prefix = "graph simulator listening on "
    assert line.startswith(prefix)
    base_url = line.removeprefix(prefix).strip()
    assert base_url.startswith("http://127.0.0.1:")
    assert base_url.endswith("/v1.0")
    response = httpx.get(f"{base_url}/admin/teams/telephoneNumberManagement/numberAssignments",
                         headers={"Authorization": "Bearer cli-token"})
    assert response.status_code == 200
    assert len(response.json()["value"]) == 4


def test_cli_broken_scenario_is_one_line_naming_the_field_exit_2(tmp_path: Path) -> None:
    data = json.loads(EXAMPLE.read_text())
    data["users"][0]["accountEnabled"] = "sometimes"
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    with start("--scenario", str(broken)) as process:
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1
    assert "users[0].accountEnabled" in lines[0]
    assert "sometimes" in lines[0]
    assert "Traceback" not in stderr
