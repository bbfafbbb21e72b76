"""The audit trail through the real functions, on Azurite and the Graph simulator: a manual sync
by a signed-in operator and the assignments it leads to, an approval and the unassignment it
lets through, a main number's policies — each entry with who and when; a redelivered message
appends nothing; the trail reads back over HTTP and from the CLI."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage as FunctionsQueueMessage
from typer.testing import CliRunner

import function_app
from graph_simulator import Scenario
from local_runner.functions import user_functions
from shared.cli import cli
from shared.core.audit import FUNCTION_KEY, AuditEntry, AuditKind, AuditOutcome
from shared.http_requests import PRINCIPAL_HEADER
from shared.runtime import utc_now
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario, user_id
from tests.integration.test_main_number_policies import MAIN, _tenant

ANN_NUMBER, BOB_NUMBER = "+31855363011", "+31855363012"


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Scenario:
    if getattr(request, "param", None) == "main number":
        return _tenant()
    return build_scenario([("ann", [ANN_NUMBER]), ("bob", [BOB_NUMBER])])


async def _trail(app: LocalApp) -> list[AuditEntry]:
    runtime = await app.runtime()
    return await runtime.audit_entries(app.scenario.tenant.id)


def _of(entries: list[AuditEntry], kind: AuditKind) -> list[AuditEntry]:
    return [entry for entry in entries if entry.kind is kind]


def _between(entry: AuditEntry, start: datetime, end: datetime) -> bool:
    return start <= entry.at <= end


async def test_a_signed_in_manual_sync_and_its_assignments_are_on_record_once(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "true")
    await function_app.runtime.close()
    start = utc_now()

    response = await user_functions()["sync_now"](func.HttpRequest(
        method="POST", url="/api/sync", params={}, body=b"",
        headers={PRINCIPAL_HEADER: "alice@operator.example"},
    ))
    assert response.status_code == 200
    async with local_app.queue() as queue:
        bodies = {json.loads(m.content)["userId"]: m.content
                  for m in await queue.peek_messages(max_messages=32)}
    await local_app.drain()
    end = utc_now()

    trail = await _trail(local_app)
    (manual,) = _of(trail, AuditKind.MANUAL_SYNC)
    assert (manual.who, manual.caller, manual.outcome) == (
        "alice@operator.example", "alice@operator.example", AuditOutcome.DONE)
    assert _between(manual, start, end)
    assigned = {e.user_principal_name: e for e in _of(trail, AuditKind.NUMBER_ASSIGNED)}
    assert {upn: (e.after, e.who, e.outcome, e.run_id) for upn, e in assigned.items()} == {
        "ann@contoso.example": (ANN_NUMBER, "app", AuditOutcome.DONE, manual.run_id),
        "bob@contoso.example": (BOB_NUMBER, "app", AuditOutcome.DONE, manual.run_id),
    }
    assert all(_between(e, manual.at, end) for e in assigned.values())

    # The host delivers ann's message again: it was carried out, nothing is appended.
    await user_functions()["assign_user"](FunctionsQueueMessage(  # type: ignore[no-untyped-call]
        body=bodies[user_id("ann")], dequeue_count=2))
    assert await _trail(local_app) == trail

    # A tenant's sync by a caller App Service authentication did not sign in: the function key.
    tenant_sync = await user_functions()["tenants_sync"](func.HttpRequest(
        method="POST", url="/api/tenants/x/sync", params={}, body=b"",
        route_params={"tenantId": local_app.scenario.tenant.id},
    ))
    assert tenant_sync.status_code == 200
    (_, by_key) = _of(await _trail(local_app), AuditKind.MANUAL_SYNC)
    assert (by_key.who, by_key.caller, by_key.run_id) == (
        FUNCTION_KEY, FUNCTION_KEY, json.loads(tenant_sync.get_body())["runId"])

    get = await user_functions()["tenants_audit"](func.HttpRequest(
        method="GET", url="/api/tenants/x/audit", body=b"",
        route_params={"tenantId": local_app.scenario.tenant.id},
        params={"user": "ANN@contoso.example", "since": f"{start:%Y-%m-%d}"},
    ))
    assert get.status_code == 200
    # Teams accepted the assignment (pending), and the look after the wait found it (done).
    entries = json.loads(get.get_body())["entries"]
    assert sorted((e["kind"], e["number"], e["who"], e["outcome"]) for e in entries) == [
        ("number_assigned", ANN_NUMBER, "app", "done"),
        ("number_assigned", ANN_NUMBER, "app", "pending"),
    ]

    cli_json = await asyncio.to_thread(CliRunner().invoke, cli, [
        "audit", local_app.scenario.tenant.id, "--user", "bob@contoso.example", "--json"])
    assert cli_json.exit_code == 0, cli_json.output
    assert [e["after"] for e in json.loads(cli_json.output)["entries"]] == [BOB_NUMBER] * 2
    refused = await asyncio.to_thread(CliRunner().invoke, cli, [
        "audit", local_app.scenario.tenant.id, "--since", "last tuesday"])
    assert refused.exit_code == 2
    assert "--since" in refused.output


async def test_an_approval_and_the_unassignment_it_lets_through_are_on_record(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("GRACE_PERIOD_HOURS", "MASS_UNASSIGN_MINIMUM", "MASS_UNASSIGN_PERCENT"):
        monkeypatch.setenv(name, "0")  # bob leaving is held for approval
    await function_app.runtime.close()
    await local_app.sync()
    local_app.simulator.replace_directory(build_scenario([("ann", [ANN_NUMBER])]).directory)
    await local_app.sync()
    start = utc_now()

    response = await user_functions()["approve_holds"](func.HttpRequest(
        method="POST", url="/api/holds/approve", params={},
        body=b'{"approvedBy": "ops@operator.example"}',
    ))
    assert response.status_code == 200
    await local_app.drain()
    end = utc_now()

    trail = await _trail(local_app)
    (approval,) = _of(trail, AuditKind.HOLD_APPROVED)
    assert (approval.who, approval.caller, approval.user_principal_name, approval.number) == (
        "ops@operator.example", FUNCTION_KEY, "bob@contoso.example", BOB_NUMBER)
    assert _between(approval, start, end)
    (unassigned,) = _of(trail, AuditKind.NUMBER_UNASSIGNED)
    assert (unassigned.before, unassigned.after, unassigned.who, unassigned.message_id) == (
        BOB_NUMBER, None, "app", approval.message_id)
    assert _between(unassigned, approval.at, end)
    assert BOB_NUMBER not in local_app.teams_by_upn()


@pytest.mark.parametrize("scenario", ["main number"], indirect=True)
async def test_a_main_numbers_policy_grant_is_on_record(local_app: LocalApp) -> None:
    start = utc_now()
    await local_app.sync()
    end = utc_now()

    (granted,) = _of(await _trail(local_app), AuditKind.POLICIES_GRANTED)
    assert (granted.user_principal_name, granted.number, granted.who, granted.outcome) == (
        "ann@contoso.example", MAIN, "app", AuditOutcome.DONE)
    assert granted.policies == (
        "CallingLineIdentity: Contoso Main", "OnlineVoiceRoutingPolicy: NL-Route")
    assert _between(granted, start, end)
