"""Delta tokens that expire the other documented way, end to end on Azurite + the simulator.

Besides ``410 Gone`` with a ``Location``, Graph documents that an expired token answers "a
40X-series error with error codes such as syncStateNotFound". Whatever the status, the run
falls back to a full read (the change made meanwhile is picked up), stores fresh links, and the
next run reads by delta again: an expired link is never a failed run.
"""

from __future__ import annotations

import pytest

from graph_simulator import Scenario, parse_scenario
from shared.core.outcomes import Outcome, Reason
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import DOMAIN, build_scenario

FULL_READ = "listTransitiveMemberUsers"
ANN, BOB, BOB_NEW = "+31855363011", "+31855363012", "+31855363022"


@pytest.fixture
def scenario() -> Scenario:
    return build_scenario([("ann", [ANN]), ("bob", [BOB])])


def _give_bob(app: LocalApp, number: str) -> None:
    data = app.scenario.model_dump(by_alias=True, mode="json")
    bob = next(u for u in data["users"] if u["displayName"] == "bob")
    bob["businessPhones"] = [number]
    changed = parse_scenario(data)
    app.simulator.replace_directory(changed)
    app.scenario = changed


@pytest.mark.parametrize(("status", "code"), [
    (400, "syncStateNotFound"), (404, "syncStateNotFound"), (409, "syncStateNotFound"),
    (409, "resyncRequired"),
])
async def test_a_40x_expired_token_falls_back_to_a_full_read_then_delta_resumes(
    local_app: LocalApp, status: int, code: str,
) -> None:
    await local_app.sync()
    local_app.simulator.set_behaviour(delta_gone_status=status, delta_gone_error_code=code)
    local_app.simulator.expire_delta_tokens()
    _give_bob(local_app, BOB_NEW)
    local_app.simulator.clear_requests()

    await local_app.sync()

    log = local_app.simulator.request_log()
    # The stored link was refused with the status under test, not 410.
    assert next(e["status"] for e in log if e["route"] == "usersDelta") == status
    counts = local_app.simulator.request_counts()
    assert counts[FULL_READ] == 1
    assert local_app.teams_by_upn()[BOB_NEW] == f"bob@{DOMAIN}"
    bob = (await local_app.statuses())[f"bob@{DOMAIN}"]
    assert (bob.outcome, bob.reason, bob.number) == (
        Outcome.ASSIGNED, Reason.NUMBER_CHANGED, BOB_NEW)
    runs = await (await local_app.runtime()).ledger.runs()
    assert runs[-1].counts.get("fullRead") == 1
    assert runs[-1].outcome == "completed"

    local_app.simulator.clear_requests()
    await local_app.sync()
    assert local_app.simulator.request_counts() == {"usersDelta": 1, "groupsDelta": 1}
