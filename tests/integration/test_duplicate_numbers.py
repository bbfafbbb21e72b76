"""The customer's duplicate rule on real queues: the user read later never gets the number,
whatever order the queue function happens to process the two messages in."""

from __future__ import annotations

import asyncio
import json

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage

from graph_simulator import Scenario
from local_runner.functions import user_functions
from shared.core.outcomes import Outcome, Reason
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario, user_id

SHARED_NUMBER = "+31855363011"


@pytest.fixture
def scenario() -> Scenario:
    return build_scenario([
        ("first.reader", [SHARED_NUMBER]),
        ("someone.else", ["+31855363012"]),
        ("later.reader", [SHARED_NUMBER]),
    ])


async def _queued_messages(app: LocalApp) -> dict[str, func.QueueMessage]:
    """Take the timer's messages off the queue, keyed by UPN, as the host would hand them over."""
    messages: dict[str, func.QueueMessage] = {}
    async with app.queue() as queue:
        async for message in queue.receive_messages(max_messages=32, visibility_timeout=300):
            body = json.loads(message.content)
            messages[body["userPrincipalName"]] = _trigger_message(message.content)
            await queue.delete_message(message)
    return messages


def _trigger_message(body: str) -> func.QueueMessage:
    return QueueMessage(  # type: ignore[no-untyped-call]
        id="m", body=body.encode(), dequeue_count=1, pop_receipt="p"
    )


def _forged_for_later_reader(first_reader_message: func.QueueMessage) -> func.QueueMessage:
    """The later reader's assign, as a stale or overlapping plan could have queued it."""
    body = json.loads(first_reader_message.get_body())
    body.update(
        userId=user_id("later.reader"), userPrincipalName="later.reader@contoso.example",
        readPosition=2, idempotencyKey=f"forged|{user_id('later.reader')}",
    )
    return _trigger_message(json.dumps(body))


async def _assert_first_reader_won(app: LocalApp) -> None:
    assert app.teams_by_upn() == {
        SHARED_NUMBER: "first.reader@contoso.example",
        "+31855363012": "someone.else@contoso.example",
    }
    statuses = await app.statuses()
    later = statuses["later.reader@contoso.example"]
    assert (later.outcome, later.reason) == (Outcome.SKIPPED, Reason.DUPLICATE)
    assert "first.reader@contoso.example" in later.message
    assert statuses["first.reader@contoso.example"].outcome is Outcome.ASSIGNED


async def test_the_plan_gives_a_shared_number_to_the_first_reader_only(
    local_app: LocalApp,
) -> None:
    await local_app.sync()

    await _assert_first_reader_won(local_app)
    assert local_app.simulator.request_counts().get("assignNumber") == 2


async def test_a_later_readers_message_loses_even_when_it_is_processed_first(
    local_app: LocalApp,
) -> None:
    await local_app.run_timer()
    messages = await _queued_messages(local_app)
    first = messages["first.reader@contoso.example"]
    assign_user = user_functions()["assign_user"]

    await assign_user(_forged_for_later_reader(first))
    for message in messages.values():
        await assign_user(message)
    await local_app.drain()  # the assignments back from waiting for Teams' operations

    await _assert_first_reader_won(local_app)


async def test_a_later_readers_message_loses_when_both_run_concurrently(
    local_app: LocalApp,
) -> None:
    await local_app.run_timer()
    messages = await _queued_messages(local_app)
    first = messages["first.reader@contoso.example"]
    assign_user = user_functions()["assign_user"]

    await asyncio.gather(
        assign_user(_forged_for_later_reader(first)),
        *(assign_user(message) for message in messages.values()),
    )
    await local_app.drain()  # the assignments back from waiting for Teams' operations

    await _assert_first_reader_won(local_app)
    assert local_app.simulator.request_counts().get("assignNumber") == 2


async def test_a_holder_from_an_earlier_run_keeps_the_number_against_a_newcomer(
    local_app: LocalApp,
) -> None:
    await local_app.sync()  # first.reader holds the number now

    # Next run, a newcomer carrying the same number is read before everyone else.
    next_directory = build_scenario([
        ("newcomer", [SHARED_NUMBER]),
        ("first.reader", [SHARED_NUMBER]),
        ("someone.else", ["+31855363012"]),
        ("later.reader", [SHARED_NUMBER]),
    ])
    local_app.simulator.replace_directory(next_directory.directory)
    local_app.scenario = local_app.scenario.model_copy(update={"users": next_directory.users})
    local_app.simulator.clear_requests()
    await local_app.sync()

    newcomer = (await local_app.statuses())["newcomer@contoso.example"]
    assert (newcomer.outcome, newcomer.reason) == (Outcome.SKIPPED, Reason.DUPLICATE)
    assert "first.reader@contoso.example" in newcomer.message
    assert local_app.teams_by_upn()[SHARED_NUMBER] == "first.reader@contoso.example"
    assert local_app.simulator.request_counts().get("assignNumber", 0) == 0
