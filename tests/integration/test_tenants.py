"""Many customer tenants in one app, on Azurite and the simulator, as an operator runs it.

The app has no ``TENANT_ID``: every tenant is registered, checked and activated through the
app's own operations, Graph tokens come from the real azure-identity credentials exchanged at the
simulator's Entra and managed-identity stand-ins, and a timer tick fans out one ``tenant-syncs``
message per tenant that the real ``sync_tenant`` function runs.
"""

from __future__ import annotations

import asyncio
import base64
import html
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import azure.functions as func
import pytest
from azure.data.tables.aio import TableServiceClient
from azure.storage.queue.aio import QueueClient
from typer.testing import CliRunner, Result

import function_app
import shared.runtime as runtime_module
from graph_simulator import EVERY_TENANT, Scenario, SimulatorServer, parse_scenario
from local_runner.azurite import Azurite
from local_runner.customers import OPERATOR, Customer, merged_scenario, onboard, operator_settings
from local_runner.functions import function_json
from local_runner.session import app_environment, drain_queue, run_timer
from shared.adapters.storage import accounts
from shared.cli import cli
from shared.config import StorageSettings
from shared.core.outcomes import Outcome, Reason
from shared.core.tenant_registry import TenantAction, TenantHealthState
from shared.runtime import AppRuntime
from tests.integration.conftest import empty_registry

EVERY_PERMISSION = ["GroupMember.Read.All", "User.Read.All", "TeamsTelephoneNumber.ReadWrite.All",
                    "TeamsUserConfiguration.Read.All", "TeamsPolicyUserAssign.ReadWrite.All"]
NO_NUMBER_WRITES = [name for name in EVERY_PERMISSION
                    if name != "TeamsTelephoneNumber.ReadWrite.All"]
SHARED_USER_IDS = [f"5a5a5a5a-0000-4000-8000-{n:012d}" for n in range(1, 5)]


def customer(domain: str, phones: list[str], *, rules: dict[str, Any] | None = None,
             granted: list[str] | None = None) -> Scenario:
    """A small customer whose users have the SAME ids as every other customer's (Entra object
    ids are unique per tenant only as far as this app may assume) and ``phones`` in order."""
    group = str(uuid.uuid4())
    users = [
        {"id": user_id, "userPrincipalName": f"user{index}@{domain}",
         "businessPhones": [phone], "accountEnabled": True}
        for index, (user_id, phone) in enumerate(zip(SHARED_USER_IDS, phones, strict=True))
    ]
    return parse_scenario({
        "version": 1,
        "tenant": {"id": str(uuid.uuid4()), "voiceGroupId": group, "defaultDomain": domain,
                   "rules": rules or {}, "grantedPermissions": granted or EVERY_PERMISSION},
        "users": users,
        "groups": [{"id": group, "displayName": "EnterpriseVoiceEnabled",
                    "members": SHARED_USER_IDS[:len(users)]}],
        "numberAssignments": [
            {"telephoneNumber": f"+3185536300{n}", "numberType": "directRouting",
             "assignmentTargetId": None} for n in range(1, 8)
        ],
    })


# The same numbers in both tenants: an operator's customers may be given overlapping ranges in
# a test, and nothing of one may leak into the other.
PHONES = ["+31855363001", "+31855363002", "+31 85 536 3003", "+31855363004"]


@dataclass
class Operator:
    """The operator's app against a simulator serving its customers."""

    customers: list[Scenario]
    simulator: SimulatorServer
    settings: dict[str, str]

    async def runtime(self) -> AppRuntime:
        return await function_app.runtime.get()

    async def onboard(self, *, activate: bool = True) -> None:
        for scenario in self.customers:
            await onboard(await self.runtime(), Customer(scenario, activate=activate))

    async def tick(self) -> None:
        """One timer tick: every due tenant's run, then the number queue drained."""
        await run_timer(settings=self.settings, timeout_seconds=120)
        await drain_queue(self.settings, timeout_seconds=120)

    def teams(self, scenario: Scenario) -> dict[str, str]:
        """number → UPN of what Teams has it on, in the customer's own tenant."""
        upns = {user.id: user.user_principal_name for user in scenario.users}
        return {number: upns[target] for number, target
                in self.simulator.number_assignments(scenario.tenant.id).items() if target}


@pytest.fixture
def customers(request: pytest.FixtureRequest) -> list[Scenario]:
    """Two customers: Fabrikam accepts formatted numbers, or (``without_consent``, through
    indirect parametrisation) lacks the number permission."""
    if getattr(request, "param", None) == "without_consent":
        return [customer("contoso.example", PHONES),
                customer("fabrikam.example", PHONES, granted=NO_NUMBER_WRITES)]
    return [
        customer("contoso.example", PHONES),
        customer("fabrikam.example", PHONES, rules={"acceptFormatted": True}),
    ]


WITHOUT_CONSENT = pytest.mark.parametrize("customers", ["without_consent"], indirect=True)


@pytest.fixture
async def operator(
    azurite: Azurite, simulator: SimulatorServer, customers: list[Scenario]
) -> AsyncIterator[Operator]:
    simulator.load_scenario(merged_scenario(customers))
    simulator.clear_requests(EVERY_TENANT)
    settings = operator_settings(simulator=simulator,
                                 storage_connection_string=azurite.connection_string)
    async with app_environment(settings):
        yield Operator(customers, simulator, settings)
    await empty_registry(azurite.connection_string)  # for the one-tenant tests that follow


async def test_two_tenants_are_synced_in_one_tick_each_by_its_own_rules(
    operator: Operator,
) -> None:
    contoso, fabrikam = operator.customers
    await operator.onboard()

    await operator.tick()

    # Contoso does not accept formatted numbers; Fabrikam does (its registry record says so).
    assert operator.teams(contoso) == {
        "+31855363001": "user0@contoso.example", "+31855363002": "user1@contoso.example",
        "+31855363004": "user3@contoso.example"}
    assert operator.teams(fabrikam) == {
        "+31855363001": "user0@fabrikam.example", "+31855363002": "user1@fabrikam.example",
        "+31855363003": "user2@fabrikam.example", "+31855363004": "user3@fabrikam.example"}
    runtime = await operator.runtime()
    contoso_status = {s.user_principal_name: s for s in
                      await (await runtime.tenant(contoso.tenant.id)).report()}
    assert contoso_status["user2@contoso.example"].reason is Reason.INVALID_FORMAT
    lines = {line.record.key: line for line in await runtime.overview()}
    for scenario in operator.customers:
        line = lines[scenario.tenant.id]
        assert line.health is not None
        assert line.health.state is TenantHealthState.HEALTHY
        assert line.last_run is not None
        assert line.last_run.outcome == "completed"


@WITHOUT_CONSENT
async def test_a_tenant_lacking_a_permission_is_reported_once_and_isolated(
    operator: Operator, caplog: pytest.LogCaptureFixture,
) -> None:
    contoso, fabrikam = operator.customers
    await operator.onboard()
    caplog.set_level(logging.ERROR, logger="shared.service.tenant_runs")

    await operator.tick()
    await operator.tick()

    assert len(operator.teams(contoso)) == 3  # the healthy tenant ran as usual
    assert operator.teams(fabrikam) == {}
    fabrikam_requests = operator.simulator.request_log(fabrikam.tenant.id)
    assert not [entry for entry in fabrikam_requests if "/admin/teams/" in entry["path"]]
    runtime = await operator.runtime()
    assert await (await runtime.tenant(fabrikam.tenant.id)).report() == []  # untouched
    health = await runtime.health.health(fabrikam.tenant.id)
    assert health is not None
    assert health.state is TenantHealthState.AUTH_FAILED
    assert "TeamsTelephoneNumber.ReadWrite.All" in health.message
    events = [r for r in caplog.records if "health auth_failed" in r.getMessage()]
    assert len(events) == 1  # one event for the change, not one per run or per user


async def test_the_token_is_exchanged_at_each_customer_tenants_authority(
    operator: Operator,
) -> None:
    await operator.onboard()

    await operator.tick()

    for scenario in operator.customers:
        exchanges = [entry for entry in operator.simulator.identity_requests(scenario.tenant.id)
                     if entry["endpoint"] == "token"]
        # The stand-in answers 200 only to its own managed identity's token as the assertion,
        # at the authority of the tenant the token is for.
        assert exchanges
        assert {entry["status"] for entry in exchanges} == {200}
    imds = [entry for entry in operator.simulator.identity_requests(EVERY_TENANT)
            if entry["endpoint"] == "imds"]
    assert imds
    assert {entry["status"] for entry in imds} == {200}


@WITHOUT_CONSENT
async def test_tenants_check_names_the_missing_permission(operator: Operator) -> None:
    _, fabrikam = operator.customers
    await operator.onboard(activate=False)

    response = await function_app.tenants_check(func.HttpRequest(
        "POST", f"/api/tenants/{fabrikam.tenant.id}/check", body=b"",
        route_params={"tenantId": fabrikam.tenant.id}))

    assert response.status_code == 200
    body = json.loads(response.get_body())
    assert body["passed"] is False
    failed = [f for f in body["findings"] if f["level"] == "failed"]
    assert [f["check"] for f in failed] == ["permission TeamsTelephoneNumber.ReadWrite.All"]
    assert "admin consent" in failed[0]["message"]
    assert operator.simulator.number_assignments(fabrikam.tenant.id) == {
        f"+3185536300{n}": None for n in range(1, 8)}  # a check writes nothing


async def test_removing_a_tenant_unassigns_nothing_unless_released_through_holds(
    operator: Operator,
) -> None:
    contoso, fabrikam = operator.customers
    await operator.onboard()
    await operator.tick()
    before = operator.teams(contoso)
    runtime = await operator.runtime()

    await runtime.change_state(contoso.tenant.id, TenantAction.REMOVE, by=OPERATOR)
    operator.simulator.replace_directory(contoso.model_copy(update={"groups": (
        contoso.groups[0].model_copy(update={"members": ()}),)}).directory,
        tenant=contoso.tenant.id)  # every user leaves: a removed tenant must not notice
    await operator.tick()

    assert operator.teams(contoso) == before
    assert len(operator.teams(fabrikam)) == 4

    released = await runtime.change_state(
        fabrikam.tenant.id, TenantAction.REMOVE, by=OPERATOR, release_numbers=True)
    await operator.tick()
    assert len(operator.teams(fabrikam)) == 4  # held, not gone
    assert {hold.status for hold in released.held} == {"pending"}
    assert len(released.held) == 4

    await runtime.approve_holds(OPERATOR, released.held[0].run_id,
                                tenant_id=fabrikam.tenant.id)
    await drain_queue(operator.settings, timeout_seconds=120)

    assert operator.teams(fabrikam) == {}
    assert operator.teams(contoso) == before
    statuses = await (await runtime.tenant(fabrikam.tenant.id)).report()
    assert {s.outcome for s in statuses} == {Outcome.UNASSIGNED}


@dataclass
class StorageRequest:
    """One request the app sent to Table or Queue storage."""

    method: str
    url: str
    body: str


class StorageRecorder:
    """Records every storage request of the app's clients (a raw-request hook on each)."""

    def __init__(self) -> None:
        self.requests: list[StorageRequest] = []

    def hook(self, request: Any) -> None:
        http = request.http_request
        body = http.body if isinstance(http.body, str) else (
            http.body.decode("utf-8", "replace") if isinstance(http.body, bytes) else "")
        self.requests.append(StorageRequest(http.method, unquote(http.url), body))

    def take(self) -> list[StorageRequest]:
        taken, self.requests = self.requests, []
        return taken


@pytest.fixture
def storage_requests(monkeypatch: pytest.MonkeyPatch) -> StorageRecorder:
    """Every Table and Queue client the app builds from now on reports its requests here."""
    recorder = StorageRecorder()
    real_tables, real_queue = accounts.table_service, accounts.queue_client

    def tables(settings: StorageSettings) -> TableServiceClient:
        return real_tables(settings, recorder.hook)

    def queue(settings: StorageSettings, name: str) -> QueueClient:
        return real_queue(settings, name, recorder.hook)

    monkeypatch.setattr(runtime_module, "table_service", tables)
    monkeypatch.setattr(runtime_module, "queue_client", queue)
    return recorder


def _queued_tenants(requests: list[StorageRequest]) -> set[str]:
    """The tenant ids of every message the app put on a queue."""
    tenants = set()
    for request in requests:
        if request.method != "POST" or "/messages" not in request.url:
            continue
        for text in re.findall(r"<MessageText>(.*?)</MessageText>", request.body, re.S):
            tenants.add(json.loads(base64.b64decode(html.unescape(text)))["tenantId"])
    return tenants


async def test_two_tenants_with_the_same_users_and_numbers_never_touch_each_other(
    operator: Operator, storage_requests: StorageRecorder,
) -> None:
    # Same user ids, same numbers: only the tenant id tells them apart.
    contoso, fabrikam = operator.customers
    await function_app.runtime.close()  # the next use builds clients with the recorder
    await operator.onboard()
    runtime = await operator.runtime()
    storage_requests.take()

    phases = {}
    for scenario in (contoso, fabrikam):
        operator.simulator.clear_requests(EVERY_TENANT)
        await runtime.sync_tenant(scenario.tenant.id)
        await drain_queue(operator.settings, timeout_seconds=120)
        phases[scenario.tenant.id] = (storage_requests.take(),
                                      operator.simulator.request_log(EVERY_TENANT))

    for own, other in ((contoso, fabrikam), (fabrikam, contoso)):
        storage, graph = phases[own.tenant.id]
        assert storage
        touched = [r for r in storage if other.tenant.id in r.url or other.tenant.id in r.body]
        assert touched == [], f"{own.tenant.id}'s run touched {other.tenant.id}'s rows"
        partitions = set(re.findall(r"PartitionKey(?:=| eq )'([^']+)'", " ".join(
            r.url for r in storage)))
        assert partitions <= {own.tenant.id, "app", "tenant"}
        assert own.tenant.id in partitions
        paced = [r for r in storage if "graphpace" in r.url]
        assert paced
        assert {p for r in paced for p in re.findall(r"PartitionKey='([^']+)'", r.url)} <= {
            own.tenant.id, "app"}
        assert _queued_tenants(storage) == {own.tenant.id}
        assert graph
        assert {entry["tenant"] for entry in graph} == {own.tenant.id}
    assert operator.teams(contoso) == {
        "+31855363001": "user0@contoso.example", "+31855363002": "user1@contoso.example",
        "+31855363004": "user3@contoso.example"}
    assert len(operator.teams(fabrikam)) == 4


def _http(method: str, route: str, body: object = None, *,
          params: dict[str, str] | None = None, **route_params: str) -> func.HttpRequest:
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return func.HttpRequest(method, f"/api/{route}", body=data, params=params or {},
                            route_params=route_params)


def test_the_tenant_routes_are_bound_as_the_host_expects() -> None:
    routes = {name: json.loads(text)["bindings"][0] for name, text in function_json().items()}
    assert routes["sync_tenant"]["queueName"] == "tenant-syncs"
    assert {(routes[name]["route"], tuple(routes[name]["methods"])) for name in (
        "tenants_list", "tenants_add", "tenants_check", "tenants_numbers", "tenants_change",
        "tenants_sync", "tenants_holds", "tenants_approve_holds")} == {
        ("tenants", ("GET",)), ("tenants", ("POST",)), ("tenants/{tenantId}/check", ("POST",)),
        ("tenants/{tenantId}/numbers", ("PUT",)),
        ("tenants/{tenantId}/{action:regex(^(activate|pause|resume|remove)$)}", ("POST",)),
        ("tenants/{tenantId}/sync", ("POST",)), ("tenants/{tenantId}/holds", ("GET",)),
        ("tenants/{tenantId}/holds/approve", ("POST",))}
    assert {routes[name]["authLevel"] for name in routes if name.startswith("tenants_")} == {
        "FUNCTION"}


async def test_an_operator_onboards_a_tenant_over_http(operator: Operator) -> None:
    contoso, _ = operator.customers
    key = contoso.tenant.id
    added = await function_app.tenants_add(_http("POST", "tenants", {
        "createdBy": "ops@operator.example", "tenantId": key, "displayName": "Contoso",
        "voiceGroupId": contoso.tenant.voice_group_id}))
    assert added.status_code == 201
    assert f"/{key}/v2.0/adminconsent?client_id=" in json.loads(added.get_body())["consentUrl"]

    imported = await function_app.tenants_numbers(_http(
        "PUT", f"tenants/{key}/numbers", b"first,last\n+31855363001,+31855363009\n",
        params={"changedBy": "ops"}, tenantId=key))
    assert imported.status_code == 200
    assert json.loads(imported.get_body())["tenant"]["rules"]["numberRanges"] == [
        {"first": "+31855363001", "last": "+31855363009"}]
    bad_csv = await function_app.tenants_numbers(_http(
        "PUT", f"tenants/{key}/numbers", b"+31855363001\n0855363002\n",
        params={"changedBy": "ops"}, tenantId=key))
    assert bad_csv.status_code == 400
    assert "line 2" in json.loads(bad_csv.get_body())["message"]

    not_active = await function_app.tenants_sync(_http("POST", f"tenants/{key}/sync",
                                                       tenantId=key))
    assert not_active.status_code == 409
    preview = await function_app.tenants_sync(_http(
        "POST", f"tenants/{key}/sync", params={"dryRun": "true"}, tenantId=key))
    assert preview.status_code == 200
    assert json.loads(preview.get_body())["summary"]["byOutcome"] == {"assign": 3, "skip": 1}

    activated = await function_app.tenants_change(_http(
        "POST", f"tenants/{key}/activate", {"changedBy": "ops"}, tenantId=key,
        action="activate"))
    assert json.loads(activated.get_body())["tenant"]["state"] == "active"
    refused = await function_app.tenants_change(_http(
        "POST", f"tenants/{key}/resume", {"changedBy": "ops"}, tenantId=key, action="resume"))
    assert refused.status_code == 409
    assert "active" in json.loads(refused.get_body())["message"]

    ran = await function_app.tenants_sync(_http("POST", f"tenants/{key}/sync", tenantId=key))
    assert ran.status_code == 200
    assert json.loads(ran.get_body())["health"]["state"] == "healthy"
    listed = json.loads((await function_app.tenants_list(_http("GET", "tenants"))).get_body())
    assert [(t["tenantId"], t["state"]) for t in listed["tenants"]] == [(key, "active")]


async def test_tenant_routes_refuse_bad_ids_unknown_tenants_and_bad_bodies(
    operator: Operator,
) -> None:
    bad_id = await function_app.tenants_check(_http("POST", "tenants/x/check", tenantId="x"))
    assert bad_id.status_code == 400
    assert json.loads(bad_id.get_body())["error"] == "tenantId"
    unknown = str(uuid.uuid4())
    missing = await function_app.tenants_holds(_http("GET", f"tenants/{unknown}/holds",
                                                     tenantId=unknown))
    assert missing.status_code == 404
    bad_record = await function_app.tenants_add(_http("POST", "tenants", {
        "createdBy": "ops", "tenantId": unknown, "displayName": "X", "voiceGroupId": "nope"}))
    assert bad_record.status_code == 400
    assert "voiceGroupId" in json.loads(bad_record.get_body())["message"]
    several = await function_app.sync_now(_http("POST", "sync", params={"dryRun": "true"}))
    assert several.status_code == 400  # an operator's app previews one tenant at a time
    fanned = await function_app.sync_now(_http("POST", "sync"))
    assert fanned.status_code == 202
    assert json.loads(fanned.get_body()) == {"enqueued": [], "notDue": []}


@WITHOUT_CONSENT
async def test_the_cli_onboards_checks_and_lists_tenants(
    operator: Operator, tmp_path: Path,
) -> None:
    _, fabrikam = operator.customers
    key = fabrikam.tenant.id

    async def run(*args: str) -> Result:
        return await asyncio.to_thread(CliRunner().invoke, cli, list(args))

    added = await run("tenants", "add", key, "--name", "Fabrikam BV", "--voice-group",
                      fabrikam.tenant.voice_group_id, "--by", "ops@operator.example")
    assert added.exit_code == 0, added.output
    assert "adminconsent" in added.output
    csv = tmp_path / "numbers.csv"
    csv.write_text("+31855363001\n+31855363002,+31855363001\n", encoding="utf-8")
    refused = await run("tenants", "numbers", "import", key, str(csv), "--by", "ops")
    assert refused.exit_code == 2
    assert "line 2" in refused.output
    checked = await run("tenants", "check", key, "--json")
    assert checked.exit_code == 1  # a check failed
    findings = json.loads(checked.stdout)["findings"]
    assert [f["check"] for f in findings if f["level"] == "failed"] == [
        "permission TeamsTelephoneNumber.ReadWrite.All"]
    assert (await run("tenants", "activate", key, "--by", "ops")).exit_code == 0
    assert (await run("tenants", "pause", key, "--by", "ops")).exit_code == 0
    again = await run("tenants", "pause", key, "--by", "ops")
    assert again.exit_code == 2
    assert "paused" in again.output
    listed = await run("tenants", "list", "--json")
    assert [(t["tenantId"], t["state"]) for t in json.loads(listed.stdout)["tenants"]] == [
        (key, "paused")]
