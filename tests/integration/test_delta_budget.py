"""What a run of a 10,000-user tenant costs in Graph requests once delta reads take over.

Issue budget: with nothing changed a run sends at most 3 requests; with k changed users at most
3 + 3k. The tenant starts with every member's number already on them in Teams, so the first
(full) run writes nothing; the simulator's operations finish before the app's first look
(``operationPolls: 0``), as Teams' usually do within the poll interval; a slower operation costs
its polls on top, which the budget does not cover.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from graph_simulator import Scenario, parse_scenario
from shared.core.outcomes import Outcome
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import DOMAIN, build_scenario, user_id

MEMBERS = 10_000


def _number(index: int) -> str:
    return f"+3185530{index:04}"


@pytest.fixture
def scenario() -> Scenario:
    """10,000 members with their numbers in Teams, and three users outside the voice group."""
    members = [(f"user{i:05}", [_number(i)]) for i in range(MEMBERS)]
    base = build_scenario(
        [*members, ("out1", ["+31855319001"]), ("out2", ["+31855319002"]),
         ("out3", ["+31855319003"])],
        existing={_number(i): f"user{i:05}" for i in range(MEMBERS)},
        behaviour={"operationSeconds": 0},
    )
    data: dict[str, Any] = json.loads(base.model_dump_json(by_alias=True))
    outsiders = {user_id(name) for name in ("out1", "out2", "out3")}
    data["groups"][0]["members"] = [m for m in data["groups"][0]["members"]
                                    if m not in outsiders]
    return parse_scenario(data)


def _total(app: LocalApp) -> int:
    return sum(app.simulator.request_counts().values())


async def test_delta_runs_cost_at_most_three_requests_plus_three_per_changed_user(
    local_app: LocalApp,
) -> None:
    first = await local_app.sync()
    assert first.poisoned == 0
    assert local_app.simulator.request_counts().get("assignNumber", 0) == 0

    local_app.simulator.clear_requests()
    await local_app.sync()
    unchanged = local_app.simulator.request_counts()
    assert sum(unchanged.values()) <= 3, unchanged

    data: dict[str, Any] = json.loads(local_app.scenario.model_dump_json(by_alias=True))
    for index in (17, 4_711, 9_998):  # three members get a new number
        data["users"][index]["businessPhones"] = [f"+3185531{index:04}"]
    for name in ("out1", "out2", "out3"):  # three users join the voice group
        data["groups"][0]["members"].append(user_id(name))
    changed = parse_scenario(data)
    local_app.simulator.replace_directory(changed)
    local_app.scenario = changed
    local_app.simulator.clear_requests()

    stats = await local_app.sync()

    counts = local_app.simulator.request_counts()
    k = 6
    assert sum(counts.values()) <= 3 + 3 * k, counts
    assert (stats.poisoned, counts.get("listTransitiveMemberUsers", 0)) == (0, 0)
    teams = local_app.teams_by_upn()
    for index in (17, 4_711, 9_998):
        assert teams[f"+3185531{index:04}"] == f"user{index:05}@{DOMAIN}"
    for name, number in (("out1", "+31855319001"), ("out2", "+31855319002"),
                         ("out3", "+31855319003")):
        assert teams[number] == f"{name}@{DOMAIN}"
    statuses = await local_app.statuses()
    assert statuses[f"out1@{DOMAIN}"].outcome is Outcome.ASSIGNED
