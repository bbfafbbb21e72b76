"""Export and restore on Azurite + the Graph simulator, through the real CLI and functions.

A small tenant is synced (numbers and a main number's policies put in Teams by the app), its
state exported with ``export``, its table rows lost, ``restore`` run, and the next sync must
write nothing in Teams: the claims come back with the app's ownership marker and the grants with
their policies, so the app neither writes again nor forgets what is its own to take back. A
claim Teams shows elsewhere by then is reported and left alone, and a file it cannot trust is
refused before anything is written.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient
from typer.testing import CliRunner, Result

import function_app
from graph_simulator import Scenario, parse_scenario
from shared.cli import cli
from shared.core.outcomes import Reason
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario, user_id

MAIN, BOB_N, CARA_N = "+31855363010", "+31855363012", "+31855363013"
ANN, BOB, CARA, DAVE = user_id("ann"), user_id("bob"), user_id("cara"), user_id("dave")
CLI_POLICY, ROUTE = "CallingLineIdentity", "OnlineVoiceRoutingPolicy"
#: Every Graph route that changes something in Teams.
TEAMS_WRITES = ("assignNumber", "unassignNumber", "assignPolicy", "unassignPolicy")


@pytest.fixture
def scenario() -> Scenario:
    """ann carries the main number (policies), bob and cara personal numbers; dave is in the
    directory but not in the voice group."""
    data: dict[str, Any] = build_scenario(
        [("ann", [MAIN]), ("bob", [BOB_N]), ("cara", [CARA_N]), ("dave", [])]
    ).model_dump(by_alias=True, mode="json")
    data["groups"][0]["members"] = [ANN, BOB, CARA]
    data["tenant"]["rules"] = {
        "mainNumbers": {"contoso.example": MAIN},
        "mainNumberPolicies": f"contoso.example={CLI_POLICY}:Contoso Main,{ROUTE}:NL-Route",
    }
    data["policies"] = [
        {"type": CLI_POLICY, "name": "Contoso Main", "id": "cli-contoso-main"},
        {"type": ROUTE, "name": "NL-Route", "id": "route-nl"},
    ]
    return parse_scenario(data)


async def run(*args: str) -> Result:
    # The CLI runs its own event loop and builds its own runtime, as it does in a shell.
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


def teams_writes(app: LocalApp) -> list[str]:
    """The Teams writes in the simulator's request log since it was last cleared."""
    return [entry["route"] for entry in app.simulator.request_log()
            if entry["route"] in TEAMS_WRITES]


async def lose_the_tables(app: LocalApp) -> int:
    """The storage account is lost: every row of the tenant, in every table, is deleted, and
    the app starts afresh (nothing kept in memory either). Returns how many rows went."""
    tenant = app.scenario.tenant.id
    lost = 0
    async with TableServiceClient.from_connection_string(
        app.settings["AzureWebJobsStorage"]
    ) as service:
        async for table in service.list_tables():
            client = service.get_table_client(table.name)
            rows = client.query_entities("PartitionKey eq @tenant", parameters={"tenant": tenant})
            async for row in rows:
                await client.delete_entity(row["PartitionKey"], row["RowKey"])
                lost += 1
    await function_app.runtime.close()
    return lost


async def export_to(app: LocalApp, folder: Path) -> tuple[Path, dict[str, Any]]:
    exported = folder / "contoso-export.json"
    result = await run("export", app.scenario.tenant.id, "-o", str(exported),
                       "--statuses-csv", str(folder / "statuses.csv"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["counts"] == {"claims": 2, "statuses": 3, "grants": 1, "holds": 0}
    document: dict[str, Any] = json.loads(exported.read_text(encoding="utf-8"))
    return exported, document


async def test_restore_after_lost_tables_leads_to_a_sync_with_zero_teams_writes(
    local_app: LocalApp, tmp_path: Path
) -> None:
    await local_app.sync()
    assert sorted(teams_writes(local_app)) == ["assignNumber", "assignNumber", "assignPolicy"]
    exported, document = await export_to(local_app, tmp_path)
    assert {(c["number"], c["holderUserId"], c["assignedByApp"])
            for c in document["claims"]} == {(BOB_N, BOB, True), (CARA_N, CARA, True)}
    assert [(g["userId"], g["verified"]) for g in document["grants"]] == [(ANN, True)]
    csv_lines = (tmp_path / "statuses.csv").read_text(encoding="utf-8").splitlines()
    assert len(csv_lines) == 4  # a header and the three users

    assert await lose_the_tables(local_app) > 0
    key = local_app.scenario.tenant.id
    runtime = await local_app.runtime()
    assert await runtime.claims.list_claims() == {}
    assert await runtime.grants.list_grants() == {}

    broken = tmp_path / "broken.json"
    broken.write_text(exported.read_text(encoding="utf-8")[:200], encoding="utf-8")
    refused = await run("restore", key, str(broken))
    assert refused.exit_code == 2
    assert f"{broken}: not JSON" in refused.stderr
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**document, "schema": "teams-number-sync-export/2"}),
                     encoding="utf-8")
    refused = await run("restore", key, str(newer))
    assert refused.exit_code == 2
    assert "schema='teams-number-sync-export/2': not an export this app reads" in (
        refused.stderr)
    assert await runtime.claims.list_claims() == {}  # nothing was written

    restored = await run("restore", key, str(exported), "--json")

    assert restored.exit_code == 0, restored.output
    summary = json.loads(restored.stdout)
    assert summary["restored"] == {"claims": 2, "grants": 1, "holds": 0}
    assert summary["reported"] == []
    local_app.simulator.clear_requests()

    await local_app.sync()

    assert teams_writes(local_app) == []
    claims = await (await local_app.runtime()).claims.list_claims()
    # Still the app's own to take back (a sync on lost tables finds the same numbers and
    # policies in Teams, writes nothing either, but records them as someone else's, for good).
    assert {number: (c.holder_user_id, c.assigned) for number, c in claims.items()} == {
        BOB_N: (BOB, True), CARA_N: (CARA, True)}
    grant = (await (await local_app.runtime()).grants.list_grants())[ANN]
    assert [(p.policy_type, p.assigned_by_app) for p in grant.policies] == [
        (CLI_POLICY, True), (ROUTE, True)]
    statuses = await local_app.statuses()
    assert {upn: status.reason for upn, status in statuses.items()} == {
        "ann@contoso.example": Reason.MAIN_NUMBER,
        "bob@contoso.example": Reason.ALREADY_ASSIGNED,
        "cara@contoso.example": Reason.ALREADY_ASSIGNED,
    }


async def test_a_claim_teams_shows_on_someone_else_is_reported_not_restored(
    local_app: LocalApp, tmp_path: Path
) -> None:
    await local_app.sync()
    exported, _ = await export_to(local_app, tmp_path)
    # After the export, someone gives bob's number to dave in Teams by hand.
    teams = (await local_app.runtime()).teams
    await teams.unassign_number(BOB_N)
    await teams.assign_number(BOB_N, DAVE)
    await lose_the_tables(local_app)
    key = local_app.scenario.tenant.id

    restored = await run("restore", key, str(exported), "--json")

    assert restored.exit_code == 1, restored.output  # something was reported
    summary = json.loads(restored.stdout)
    assert summary["restored"] == {"claims": 1, "grants": 1, "holds": 0}
    assert [(r["number"], r["userId"], r["reason"]) for r in summary["reported"]] == [
        (BOB_N, BOB, "assigned_elsewhere")]
    runtime = await local_app.runtime()
    assert set(await runtime.claims.list_claims()) == {CARA_N}
    local_app.simulator.clear_requests()

    await local_app.sync()

    assert teams_writes(local_app) == []  # never forced
    assert local_app.simulator.number_assignments()[BOB_N] == DAVE
    bob = (await local_app.statuses())["bob@contoso.example"]
    assert bob.reason is Reason.ASSIGNED_ELSEWHERE
