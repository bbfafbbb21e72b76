"""What the queue function does with messages it cannot or must not carry out, as the host
delivers them: set aside on the first delivery, never retried five times, no stray status."""

from __future__ import annotations

import logging
import uuid

import pytest
from azure.functions.queue import QueueMessage

from graph_simulator import Scenario
from local_runner.functions import user_functions
from shared.adapters.storage.queue import POISON_QUEUE
from shared.core.messages import AssignmentMessage
from shared.core.tenant_rules import MainNumberPolicy
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario

NUMBER = "+31855363011"


@pytest.fixture
def scenario() -> Scenario:
    return build_scenario([("ann", [NUMBER])])


def _message(local_app: LocalApp, **changes: object) -> AssignmentMessage:
    ann = local_app.scenario.users[0]
    fields: dict[str, object] = {
        "tenant_id": local_app.scenario.tenant.id, "run_id": "20261201T000000.000000Z-feed",
        "user_id": ann.id, "user_principal_name": ann.user_principal_name,
        "telephone_number": NUMBER, "read_position": 0, "action": "assign",
        "reason": "assigned", "number": NUMBER, "idempotency_key": f"forged|{uuid.uuid4()}",
    }
    fields.update(changes)
    return AssignmentMessage.model_construct(**fields)  # type: ignore[arg-type]


def _wire(message: AssignmentMessage) -> str:
    return message.model_dump_json(by_alias=True)


async def _poisoned(local_app: LocalApp) -> list[str]:
    async with local_app.queue(POISON_QUEUE) as poison:
        return [str(m.content) async for m in poison.receive_messages()]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"tenant_id": "11111111-1111-1111-1111-111111111111"}, "tenantId="),
        ({"number": None}, "action='assign' needs number: missing"),
        ({"action": "unassign", "number": None, "previous_number": None},
         "action='unassign' needs previousNumber: missing"),
        ({"action": "grant_policies", "domain": "contoso.example"},
         "action='grant_policies' needs policies: missing"),
        ({"action": "revoke_policies", "domain": None,
          "policies": (MainNumberPolicy(policy_type="CallingLineIdentity", name="Main"),)},
         "action='revoke_policies' needs domain: missing"),
    ],
)
async def test_a_message_that_can_never_be_carried_out_is_set_aside_on_its_first_delivery(
    local_app: LocalApp, caplog: pytest.LogCaptureFixture, changes: dict[str, object],
    named: str,
) -> None:
    await (await local_app.runtime()).queue.ensure_exists()
    body = _wire(_message(local_app, **changes))
    async with local_app.queue() as queue:
        await queue.send_message(body)

    with caplog.at_level(logging.ERROR):
        stats = await local_app.drain()

    assert (stats.invocations, stats.failed_attempts, stats.poisoned) == (1, 0, 0)
    assert await _poisoned(local_app) == [body]
    assert any(named in record.getMessage() for record in caplog.records)
    assert await local_app.statuses() == {}
    assert local_app.simulator.request_counts().get("assignNumber", 0) == 0


async def test_a_body_too_large_for_the_poison_queue_is_logged_and_dropped_not_retried(
    local_app: LocalApp, caplog: pytest.LogCaptureFixture,
) -> None:
    await (await local_app.runtime()).queue.ensure_exists()
    body = b"not json at all " + b"x" * (1024 * 1024)
    delivered = QueueMessage(body=body, dequeue_count=1)  # type: ignore[no-untyped-call]

    with caplog.at_level(logging.ERROR):
        await user_functions()["assign_user"](delivered)  # returns: the host deletes it

    assert await _poisoned(local_app) == []
    (line,) = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert f"{len(body)} bytes" in line
    assert "not json at all" in line


async def test_a_forged_message_for_a_user_the_app_does_not_serve_leaves_no_status(
    local_app: LocalApp,
) -> None:
    await local_app.sync()  # the real run: ann is assigned, the snapshot knows the group
    stranger = str(uuid.uuid4())
    forged = _message(local_app, user_id=stranger, user_principal_name="mallory@contoso.example",
                      number="+31855363019", telephone_number="+31855363019", read_at=None)
    async with local_app.queue() as queue:
        await queue.send_message(_wire(forged))

    stats = await local_app.drain()

    assert (stats.succeeded, stats.failed_attempts) == (1, 0)
    assert set(await local_app.statuses()) == {"ann@contoso.example"}
    assert local_app.teams_by_upn() == {NUMBER: "ann@contoso.example"}
