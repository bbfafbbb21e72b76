"""The three functions called as the Functions host calls them, against Azurite + the simulator."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import azure.functions as func
import pytest
from typer.testing import CliRunner

import function_app
from graph_simulator import Scenario
from local_runner.functions import function_json, user_functions
from shared.cli import cli
from shared.config import DEFAULT_SYNC_SCHEDULE
from shared.core.outcomes import Outcome, Reason
from shared.core.records import Hold
from shared.host_settings import read_queue_settings
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario


@pytest.fixture
def scenario() -> Scenario:
    return build_scenario([
        ("ann", ["+31855363011"]),
        ("bob", ["+31855363012"]),
        ("cy", ["085 536 3013"]),
    ])


def _bindings(name: str) -> dict[str, object]:
    document = json.loads(function_json()[name])
    binding: dict[str, object] = document["bindings"][0]
    return binding


def test_bindings_are_what_the_host_and_the_portal_expect() -> None:
    timer = _bindings("sync_scheduled")
    assert (timer["type"], timer["schedule"], timer["runOnStartup"]) == (
        "timerTrigger", DEFAULT_SYNC_SCHEDULE, False,
    )
    queue = _bindings("assign_user")
    assert (queue["type"], queue["queueName"], queue["connection"]) == (
        "queueTrigger", "number-assignments", "AzureWebJobsStorage",
    )
    http = _bindings("sync_now")
    assert (http["type"], http["authLevel"], http["methods"], http["route"]) == (
        "httpTrigger", "FUNCTION", ["POST"], "sync",
    )


def _post(dry_run: bool) -> func.HttpRequest:
    params = {"dryRun": "true"} if dry_run else {}
    return func.HttpRequest(method="POST", url="/api/sync", params=params, body=b"")


async def test_sync_now_dry_run_answers_what_it_would_enqueue_and_enqueues_nothing(
    local_app: LocalApp,
) -> None:
    response = await user_functions()["sync_now"](_post(dry_run=True))

    assert response.status_code == 200
    body = json.loads(response.get_body())
    assert body["dryRun"] is True
    assert body["members"] == 3
    decisions = {d["userPrincipalName"]: d for d in body["decisions"]}
    assert [d["outcome"] for d in body["decisions"]] == ["assign", "assign", "skip"]
    assert decisions["cy@contoso.example"]["reason"] == "invalid_format"
    assert decisions["cy@contoso.example"]["rawNumber"] == "085 536 3013"
    assert body["summary"]["byOutcome"] == {"assign": 2, "skip": 1}
    async with local_app.queue() as queue:
        assert (await queue.get_queue_properties()).approximate_message_count == 0
    assert local_app.simulator.request_counts().get("assignNumber", 0) == 0


async def test_sync_now_enqueues_and_the_queue_function_assigns(local_app: LocalApp) -> None:
    response = await user_functions()["sync_now"](_post(dry_run=False))

    body = json.loads(response.get_body())
    assert (response.status_code, body["enqueued"], body["dryRun"]) == (200, 2, False)
    await local_app.drain()
    assert local_app.teams_by_upn() == {
        "+31855363011": "ann@contoso.example",
        "+31855363012": "bob@contoso.example",
    }


async def test_sync_now_reports_a_bad_app_setting_by_name(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICE_GROUP_ID", "EnterpriseVoiceEnabled")
    await function_app.runtime.close()
    response = await user_functions()["sync_now"](_post(dry_run=False))

    assert response.status_code == 500
    message = json.loads(response.get_body())["message"]
    assert "VOICE_GROUP_ID='EnterpriseVoiceEnabled'" in message
    await function_app.runtime.close()


async def test_an_unreadable_message_is_set_aside_in_the_poison_queue_at_once(
    local_app: LocalApp,
) -> None:
    await (await local_app.runtime()).queue.ensure_exists()
    async with local_app.queue() as queue:
        await queue.send_message('{"schema": "number-assignment/1", "userId": 42}')

    stats = await local_app.drain()

    assert (stats.succeeded, stats.failed_attempts) == (1, 0)
    async with local_app.queue("number-assignments-poison") as poison:
        (kept,) = [m async for m in poison.receive_messages()]
    assert "number-assignment/1" in str(kept.content)


async def test_a_message_that_keeps_failing_lands_in_poison_and_the_user_is_marked_failed(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPH_MAX_RETRIES", "0")
    local_app.simulator.inject_fault("assignNumber", 503, count=100)
    host = read_queue_settings()
    quick_retries = type(host)(
        batch_size=host.batch_size, new_batch_threshold=host.new_batch_threshold,
        max_dequeue_count=host.max_dequeue_count, visibility_timeout=timedelta(0),
        max_polling_interval=timedelta(milliseconds=50),
    )

    stats = await local_app.sync(host=quick_retries)

    assert stats.poisoned == 2  # ann and bob; cy never reaches Teams
    assert stats.failed_attempts == 2 * host.max_dequeue_count
    ann = (await local_app.statuses())["ann@contoso.example"]
    assert (ann.outcome, ann.reason) == (Outcome.FAILED, Reason.ASSIGNMENT_FAILED)
    assert "503" in ann.message
    assert local_app.simulator.number_assignments() == {}


async def test_a_short_throttle_is_absorbed_by_the_sdk_retry_middleware(
    local_app: LocalApp,
) -> None:
    local_app.simulator.inject_fault("assignNumber", 429, count=1, retry_after_seconds=1)

    stats = await local_app.sync()

    assert stats.failed_attempts == 0
    assert local_app.simulator.request_counts()["assignNumber"] == 3  # one 429, then two 202s
    assert set(local_app.teams_by_upn()) == {"+31855363011", "+31855363012"}


# -- HTTP input: a bad request is refused naming the field, and changes nothing -------------


def _approve(body: bytes, params: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest(
        method="POST", url="/api/holds/approve", params=params or {}, body=body
    )


async def _pending_holds(app: LocalApp) -> list[Hold]:
    runtime = await app.runtime()
    return await runtime.ledger.holds("pending")


async def _hold_bobs_unassignment(app: LocalApp, monkeypatch: pytest.MonkeyPatch) -> list[Hold]:
    """Real pending holds: the guard (threshold 0) holds bob's number when bob leaves."""
    for name in ("GRACE_PERIOD_HOURS", "MASS_UNASSIGN_MINIMUM", "MASS_UNASSIGN_PERCENT"):
        monkeypatch.setenv(name, "0")
    await function_app.runtime.close()
    await app.sync()
    app.simulator.replace_directory(build_scenario([("ann", ["+31855363011"])]).directory)
    await app.sync()
    pending = await _pending_holds(app)
    assert [(hold.user_principal_name, hold.number) for hold in pending] == [
        ("bob@contoso.example", "+31855363012"),
    ]
    return pending


async def _nothing_enqueued(app: LocalApp) -> bool:
    async with app.queue() as queue:
        return (await queue.get_queue_properties()).approximate_message_count == 0


_NESTED_10000 = b"[" * 10_000 + b"]" * 10_000


@pytest.mark.parametrize(
    ("body", "params", "status", "field"),
    [
        pytest.param(b'{"approvedBy": null}', {}, 400, "approvedBy", id="approvedBy-null"),
        pytest.param(b'{"approvedBy": false}', {}, 400, "approvedBy", id="approvedBy-false"),
        pytest.param(b'{"approvedBy": 123}', {}, 400, "approvedBy", id="approvedBy-123"),
        pytest.param(b'{"approvedBy": {}}', {}, 400, "approvedBy", id="approvedBy-object"),
        pytest.param(b'{"approvedBy": []}', {}, 400, "approvedBy", id="approvedBy-list"),
        pytest.param(b"[]", {}, 400, "body", id="empty-list-body"),
        pytest.param(b'["ops@operator.example"]', {}, 400, "body", id="list-body"),
        pytest.param(b"null", {}, 400, "body", id="null-body"),
        pytest.param(b'"x"', {}, 400, "body", id="string-body"),
        pytest.param(b"123", {}, 400, "body", id="number-body"),
        pytest.param(_NESTED_10000, {}, 413, "body", id="nested-10000-deep"),
        pytest.param(b"[" * 2_000 + b"]" * 2_000, {}, 400, "body", id="nested-2000-deep"),
        pytest.param(
            json.dumps({"approvedBy": "x" * 40_000}).encode(), {}, 413, "body",
            id="approvedBy-40000-characters",
        ),
        pytest.param(
            json.dumps({"approvedBy": "x" * 300}).encode(), {}, 400, "approvedBy",
            id="approvedBy-300-characters",
        ),
        pytest.param(
            b'{"approvedBy": "ops@operator.example", "runId": 123}', {}, 400, "runId",
            id="integer-runId",
        ),
        pytest.param(
            b'{"approvedBy": "ops@operator.example", "runId": null}', {}, 400, "runId",
            id="null-runId",
        ),
        pytest.param(
            b'{"approvedBy": "ops@operator.example", "runIds": ["r"]}', {}, 400, "runIds",
            id="unknown-field",
        ),
        pytest.param(
            b'{"approvedBy": "ops@operator.example"}', {"runId": "r"}, 400, "runId",
            id="runId-in-the-query",
        ),
    ],
)
async def test_a_hostile_approval_is_refused_naming_the_field_and_approves_nothing(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch,
    body: bytes, params: dict[str, str], status: int, field: str,
) -> None:
    pending = await _hold_bobs_unassignment(local_app, monkeypatch)

    response = await user_functions()["approve_holds"](_approve(body, params))

    answer = json.loads(response.get_body())
    assert response.status_code == status, answer
    assert answer["error"] == field
    assert field in answer["message"]
    assert len(answer["message"]) < 500
    assert await _pending_holds(local_app) == pending  # still pending, decided by nobody
    assert await _nothing_enqueued(local_app)
    assert local_app.teams_by_upn()["+31855363012"] == "bob@contoso.example"


async def test_a_valid_approval_still_works_and_a_run_with_nothing_pending_is_a_404(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    (held,) = await _hold_bobs_unassignment(local_app, monkeypatch)
    approve = user_functions()["approve_holds"]
    body = json.dumps({"approvedBy": " ops@operator.example ", "runId": held.run_id}).encode()

    response = await approve(_approve(body, {"code": "function-key"}))

    assert response.status_code == 200
    (approved,) = json.loads(response.get_body())["approved"]
    assert (approved["userPrincipalName"], approved["status"], approved["decidedBy"]) == (
        "bob@contoso.example", "approved", "ops@operator.example",
    )
    again = await approve(_approve(body))
    assert again.status_code == 404
    assert json.loads(again.get_body())["error"] == "runId"
    assert held.run_id in json.loads(again.get_body())["message"]
    await local_app.drain()
    assert "+31855363012" not in local_app.teams_by_upn()


async def test_dry_run_maybe_is_refused_and_nothing_runs(local_app: LocalApp) -> None:
    for params, body in (({"dryRun": "maybe"}, b""), ({}, b'{"dryRun": true}')):
        response = await user_functions()["sync_now"](
            func.HttpRequest(method="POST", url="/api/sync", params=params, body=body)
        )

        answer = json.loads(response.get_body())
        assert response.status_code == 400, answer
        assert answer["error"] == ("dryRun" if params else "body")
    runtime = await local_app.runtime()
    assert await runtime.ledger.runs() == []
    assert await _nothing_enqueued(local_app)


async def test_holds_status_bogus_is_refused_and_all_lists_every_hold(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    (held,) = await _hold_bobs_unassignment(local_app, monkeypatch)
    list_holds = user_functions()["list_holds"]

    def get(status: str) -> func.HttpRequest:
        return func.HttpRequest(
            method="GET", url="/api/holds", params={"status": status}, body=b""
        )

    bogus = await list_holds(get("bogus"))
    assert bogus.status_code == 400
    assert json.loads(bogus.get_body()) == {
        "error": "status",
        "message": 'status="bogus": say pending, approved, dropped or all (empty: all)',
    }
    every = json.loads((await list_holds(get("all"))).get_body())["holds"]
    assert [hold["runId"] for hold in every] == [held.run_id]


async def test_the_runs_command_shows_how_each_run_ended(local_app: LocalApp) -> None:
    """``python -m shared.cli runs``: the operator's run history, from the run records."""
    await local_app.run_timer()
    await local_app.run_timer()
    # The CLI runs its own event loop, as it does in a shell.
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["runs", "--json", "--last", "1"])

    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)["runs"]
    assert run["outcome"] == "completed"
    assert run["counts"]["members"] == 3
    every = await asyncio.to_thread(CliRunner().invoke, cli, ["runs"])
    assert every.exit_code == 0, every.output
    assert every.stdout.count("completed") == 2
