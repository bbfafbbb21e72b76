"""Graph as harsh as documented about the app's grants, on Azurite and the simulator.

* Without ``User.Read.All`` the voice group's members come back 200 as "limited information"
  (only ``id`` and ``@odata.type``): the run fails naming the permission, and nobody gets or
  loses a number because of members the app could not read.
* Without the Teams permissions Graph answers 403 ``Authorization_RequestDenied``: the run (or
  the user's assignment) fails ``graph_forbidden`` naming the permission.
"""

from __future__ import annotations

import pytest

from graph_simulator import Scenario
from shared.core.outcomes import Outcome, Reason
from shared.core.tenant_registry import TenantHealthState
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario

TEAMS = ["TeamsTelephoneNumber.ReadWrite.All", "TeamsUserConfiguration.Read.All",
         "TeamsPolicyUserAssign.ReadWrite.All"]
#: Everything the app needs but User.Read.All: the group's members are readable, they are not.
WITHOUT_USER_READ = ["GroupMember.Read.All", *TEAMS]
USERS = 5


@pytest.fixture
def scenario() -> Scenario:
    return build_scenario([(f"user{n:02d}", [f"+318553630{n:02d}"]) for n in range(10, 10 + USERS)],
                          behaviour={"operationSeconds": 0})


async def _failed_run(local_app: LocalApp) -> str:
    """Run the timer, whose run must fail: it ends in the run record and the tenant's health
    (auth_failed), not in an exception; the run record's message."""
    await local_app.run_timer()
    runtime = await local_app.runtime()
    runs = await runtime.ledger.runs()
    assert runs[-1].outcome == "failed"
    health = await runtime.health.health(local_app.scenario.tenant.id)
    assert health is not None
    assert health.state is TenantHealthState.AUTH_FAILED
    assert health.message in runs[-1].message
    return runs[-1].message


async def _queued(local_app: LocalApp) -> int:
    async with local_app.queue() as queue:
        return (await queue.get_queue_properties()).approximate_message_count or 0


@pytest.fixture
def full_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run reads the members transitively (with delta reads on, ``users/delta`` comes
    first and is refused outright without User.Read.All)."""
    monkeypatch.setenv("DELTA_READS", "false")


@pytest.mark.usefixtures("full_reads")
async def test_members_without_user_read_all_fail_the_first_run_and_nobody_gets_a_number(
    local_app: LocalApp,
) -> None:
    local_app.simulator.grant_permissions(WITHOUT_USER_READ)
    before = local_app.teams_by_upn()

    message = await _failed_run(local_app)

    assert message.startswith("graph_forbidden: ")
    assert "User.Read.All" in message
    assert "transitiveMembers" in message
    assert await _queued(local_app) == 0
    await local_app.drain()
    assert local_app.teams_by_upn() == before
    assert local_app.simulator.request_counts().get("assignNumber", 0) == 0
    assert await local_app.statuses() == {}
    pages = [entry for entry in local_app.simulator.request_log()
             if entry["route"] == "listTransitiveMemberUsers"]
    assert pages
    assert {entry["status"] for entry in pages} == {200}  # Graph did not refuse: it withheld


@pytest.mark.parametrize("delta_reads", ["false", "true"])
async def test_losing_user_read_all_later_takes_no_number_back(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch, delta_reads: str,
) -> None:
    # Full reads: the members come back as limited information; delta reads: users/delta is
    # refused (403). Either way the run stops before it plans anybody.
    monkeypatch.setenv("DELTA_READS", delta_reads)
    await local_app.sync()
    assigned = local_app.teams_by_upn()
    statuses = await local_app.statuses()
    assert len(assigned) == USERS
    local_app.simulator.grant_permissions(WITHOUT_USER_READ)
    local_app.simulator.clear_requests()

    message = await _failed_run(local_app)
    await local_app.drain()

    assert message.startswith("graph_forbidden: The app may not read users' properties; grant "
                              "it User.Read.All" if delta_reads == "false" else
                              "graph_forbidden: The app was refused by Microsoft Graph; grant "
                              "it User.Read.All")
    assert local_app.teams_by_upn() == assigned
    assert await local_app.statuses() == statuses
    counts = local_app.simulator.request_counts()
    assert counts.get("unassignNumber", 0) == counts.get("assignNumber", 0) == 0


async def test_without_any_teams_number_permission_the_run_fails_forbidden(
    local_app: LocalApp,
) -> None:
    local_app.simulator.grant_permissions(["GroupMember.Read.All", "User.Read.All"])
    before = local_app.teams_by_upn()

    message = await _failed_run(local_app)

    assert message.startswith("graph_forbidden: ")
    assert "TeamsTelephoneNumber.ReadWrite.All" in message
    assert "Authorization_RequestDenied" in message
    assert await _queued(local_app) == 0
    assert local_app.teams_by_upn() == before


async def test_reading_numbers_without_writing_them_fails_each_assignment_forbidden(
    local_app: LocalApp,
) -> None:
    local_app.simulator.grant_permissions([
        "GroupMember.Read.All", "User.Read.All", "TeamsTelephoneNumber.Read.All",
        "TeamsUserConfiguration.Read.All", "TeamsPolicyUserAssign.ReadWrite.All",
    ])
    before = local_app.teams_by_upn()

    await local_app.sync()

    statuses = await local_app.statuses()
    assert len(statuses) == USERS
    for status in statuses.values():
        assert (status.outcome, status.reason) == (Outcome.FAILED, Reason.GRAPH_FORBIDDEN)
        assert "grant it TeamsTelephoneNumber.ReadWrite.All" in status.message
    assert local_app.teams_by_upn() == before == {}
    assert all(entry["status"] == 403 for entry in local_app.simulator.request_log()
               if entry["route"] == "assignNumber")
