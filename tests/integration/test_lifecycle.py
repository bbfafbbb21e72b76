"""Number lifecycle on Azurite + the simulator: overlap, crashes, holds, empty and failed reads,
and a tenant of hundreds replayed with no Graph writes after the first sync."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage

import function_app
from graph_simulator import Scenario
from local_runner.functions import user_functions
from shared.core.outcomes import Outcome, Reason
from shared.core.tenant_registry import TenantHealthState
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario

MEMBERS = [(f"user{n:02d}", [f"+318553630{n + 11:02d}"]) for n in range(12)]


@pytest.fixture
def scenario() -> Scenario:
    return build_scenario(MEMBERS)


class CrashError(Exception):
    """A process dying at a chosen point (the host sees an exception and redelivers)."""


def _crash_once(target: object, name: str, *, after_call: bool) -> None:
    """Make ``target.name`` blow up on its first call, before or after doing its work."""
    original: Callable[..., Awaitable[Any]] = getattr(target, name)
    crashed = False

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal crashed
        if crashed:
            return await original(*args, **kwargs)
        crashed = True
        if after_call:
            await original(*args, **kwargs)
        raise CrashError(f"crash {'after' if after_call else 'before'} {name}")

    setattr(target, name, wrapper)


async def _one_message(app: LocalApp) -> func.QueueMessage:
    async with app.queue() as queue:
        (message,) = [m async for m in queue.receive_messages(max_messages=32)]
        await queue.delete_message(message)
    return QueueMessage(  # type: ignore[no-untyped-call]
        id=message.id, body=message.content.encode(), dequeue_count=1, pop_receipt="p"
    )


async def _waiting_copy(app: LocalApp) -> func.QueueMessage | None:
    """The copy of the message waiting on the queue (None when nothing waits), once visible."""
    async with app.queue() as queue:
        if (await queue.get_queue_properties()).approximate_message_count == 0:
            return None
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            received = [m async for m in queue.receive_messages(max_messages=1)]
            if received:
                (message,) = received
                await queue.delete_message(message)
                return QueueMessage(  # type: ignore[no-untyped-call]
                    id=message.id, body=message.content.encode(), dequeue_count=1,
                    pop_receipt="p",
                )
            await asyncio.sleep(0.1)  # polling the queue, as the host does
    raise AssertionError("the waiting copy never became visible")


async def _converged(app: LocalApp) -> None:
    assert app.teams_by_upn() == {number: f"{name}@contoso.example" for name, (number,) in
                                  [(MEMBERS[0][0], MEMBERS[0][1])]}
    runtime = await app.runtime()
    claim = await runtime.claims.get_claim(MEMBERS[0][1][0])
    assert claim is not None
    assert (claim.holder_user_id, claim.assigned) == (app.scenario.users[0].id, True)
    status = (await app.statuses())["user00@contoso.example"]
    assert status.outcome in {Outcome.ASSIGNED, Outcome.KEPT}


@pytest.mark.parametrize(
    ("port", "method", "after_call"),
    [
        ("teams", "assign_number", False),  # before the Graph call
        ("claims", "mark_assigned", False),  # after the Graph call, before the state write
        ("statuses", "record", True),  # after the state write, before the message is deleted
    ],
)
async def test_a_crash_at_any_point_converges_on_redelivery_without_a_second_write(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch, port: str, method: str,
    after_call: bool,
) -> None:
    local_app.simulator.load_scenario(
        build_scenario([MEMBERS[0]]).model_copy(update={"tenant": local_app.scenario.tenant})
    )
    local_app.scenario = local_app.scenario.model_copy(
        update={"users": local_app.scenario.users[:1]}
    )
    await local_app.run_timer()
    message = await _one_message(local_app)
    runtime = await local_app.runtime()
    _crash_once(getattr(runtime, port), method, after_call=after_call)
    assign_user = user_functions()["assign_user"]

    # As the host delivers: the message, again after a crash, and the copy it put back on the
    # queue to wait for Teams' operation once that is visible.
    current, crashed = message, False
    for _ in range(6):
        try:
            await assign_user(current)
        except CrashError:
            crashed = True
            current = QueueMessage(  # type: ignore[no-untyped-call]
                id="again", body=current.get_body(), dequeue_count=2, pop_receipt="p2"
            )
            continue
        waiting = await _waiting_copy(local_app)
        if waiting is None:
            break
        current = waiting
    assert crashed
    await assign_user(current)  # and once more: a completed message does nothing

    await _converged(local_app)
    expected_writes = 0 if method == "assign_number" else 1
    assert local_app.simulator.request_counts().get("assignNumber", 0) == max(expected_writes, 1)


async def test_two_overlapping_syncs_never_plan_at_the_same_time(local_app: LocalApp) -> None:
    runtime = await local_app.runtime()

    first, second = await asyncio.gather(runtime.sync(), runtime.sync())

    skipped = [s for s in (first, second) if s.skipped_because]
    done = [s for s in (first, second) if not s.skipped_because]
    assert len(skipped) == len(done) == 1
    assert done[0].run_id in (skipped[0].skipped_because or "")
    records = {r.run_id: r for r in await runtime.ledger.runs()}
    assert records[skipped[0].run_id].outcome == "skipped"
    assert records[done[0].run_id].outcome == "completed"
    await local_app.drain()
    assert local_app.simulator.request_counts()["assignNumber"] == len(MEMBERS)
    assert (await runtime.sync()).skipped_because is None  # the lease was given back


async def test_a_held_mass_unassignment_waits_for_approval_and_records_who(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRACE_PERIOD_HOURS", "0")
    await function_app.runtime.close()
    await local_app.sync()
    local_app.simulator.replace_directory(build_scenario(MEMBERS[:1]).directory)

    await local_app.sync()

    assert len(local_app.teams_by_upn()) == len(MEMBERS)  # nothing taken back
    runtime = await local_app.runtime()
    pending = await runtime.ledger.holds("pending")
    assert len(pending) == len(MEMBERS) - 1
    request = func.HttpRequest(
        method="POST", url="/api/holds/approve", params={},
        body=json.dumps({"approvedBy": "ops@operator.example"}).encode(),
    )
    response = await user_functions()["approve_holds"](request)
    assert response.status_code == 200
    assert len(json.loads(response.get_body())["approved"]) == len(MEMBERS) - 1
    await local_app.drain()

    assert local_app.teams_by_upn() == {MEMBERS[0][1][0]: "user00@contoso.example"}
    approved = await runtime.ledger.holds("approved")
    assert {h.decided_by for h in approved} == {"ops@operator.example"}
    gone = (await local_app.statuses())["user05@contoso.example"]
    assert (gone.outcome, gone.reason) == (Outcome.UNASSIGNED, Reason.APPROVED)


async def test_holds_no_later_run_wants_are_dropped(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRACE_PERIOD_HOURS", "0")
    await function_app.runtime.close()
    await local_app.sync()
    local_app.simulator.replace_directory(build_scenario(MEMBERS[:1]).directory)
    await local_app.sync()
    local_app.simulator.replace_directory(build_scenario(MEMBERS).directory)  # they are back

    await local_app.sync()

    runtime = await local_app.runtime()
    assert await runtime.ledger.holds("pending") == []
    assert len(await runtime.ledger.holds("dropped")) == len(MEMBERS) - 1
    assert len(local_app.teams_by_upn()) == len(MEMBERS)


async def test_an_empty_member_read_unassigns_nobody(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRACE_PERIOD_HOURS", "0")
    await function_app.runtime.close()
    await local_app.sync()
    local_app.simulator.replace_directory(build_scenario([]).directory)

    stats = await local_app.sync()

    assert stats.invocations == 0
    assert len(local_app.teams_by_upn()) == len(MEMBERS)
    statuses = await local_app.statuses()
    assert statuses["user03@contoso.example"].reason is Reason.EMPTY_MEMBER_LIST


async def test_a_read_that_fails_halfway_through_paging_unassigns_nobody(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRACE_PERIOD_HOURS", "0")
    monkeypatch.setenv("GRAPH_MAX_RETRIES", "0")
    await function_app.runtime.close()
    # Three pages of members (the simulator caps a page at 10, as Graph may answer fewer than
    # $top): the read fails on the second, after part of the group was seen.
    many = build_scenario(
        [(f"u{n:04d}", [f"+3185536{n:04d}"]) for n in range(30)],
        behaviour={"operationSeconds": 0, "maxPageSize": 10},
    ).model_copy(update={"tenant": local_app.scenario.tenant})
    local_app.simulator.load_scenario(many)
    local_app.scenario = many
    await local_app.sync()
    written = local_app.simulator.request_counts()["assignNumber"]
    local_app.simulator.expire_delta_tokens()  # so the next run is a full read
    local_app.simulator.inject_fault("listTransitiveMemberUsers", 503, after=1, count=1)

    await local_app.run_timer()  # the run fails: recorded, and the tenant's health says so

    await local_app.drain()
    assert local_app.simulator.request_counts().get("unassignNumber", 0) == 0
    assert local_app.simulator.request_counts()["assignNumber"] == written
    runtime = await local_app.runtime()
    runs = await runtime.ledger.runs()
    assert runs[-1].outcome == "failed"
    assert "503" in runs[-1].message
    health = await runtime.health.health(local_app.scenario.tenant.id)
    assert health is not None
    assert health.state is TenantHealthState.GRAPH_UNAVAILABLE
    assert (await runtime.sync()).skipped_because is None  # a failed run frees the lease


async def test_replaying_a_tenant_of_hundreds_three_times_writes_only_once(
    local_app: LocalApp,
) -> None:
    # 150 users: more than one table batch and queue batches; the 2,000-user onboarding is
    # benchmarks.onboarding's (a figure, not a test).
    tenant = build_scenario(
        [(f"u{n:04d}", [f"+3185536{n:04d}"]) for n in range(150)],
        behaviour={"operationSeconds": 0},
    ).model_copy(update={"tenant": local_app.scenario.tenant})
    local_app.simulator.load_scenario(tenant)
    local_app.scenario = tenant

    await local_app.sync()
    first = local_app.simulator.request_counts()
    local_app.simulator.clear_requests()
    await local_app.sync()
    await local_app.sync()
    replays = local_app.simulator.request_counts()

    assert first["assignNumber"] == 150
    assert replays.get("assignNumber", 0) == 0
    assert replays.get("unassignNumber", 0) == 0
    # Per replay: one page each of users/delta and groups/delta (nothing changed). A full read
    # would be a page of members ($top=999) and one of Teams numbers ($top=1000).
    assert replays == {"usersDelta": 2 * 1, "groupsDelta": 2 * 1}
