"""Teams as harsh as Graph documents it, end to end on Azurite and the simulator (issue 11):

* item 3 -- an operation that ends ``skipped`` (Graph v1.0 lists it; the SDK's enum does not):
  the number where it should be is assigned, a number not there is a temporary failure that
  names the status and is tried again;
* item 5 -- Teams carries an assignment out but its answer is a 504 or a dropped connection; the
  SDK's retry handler POSTs the same assignment again, and Teams takes the repeat as a second
  operation or refuses it "already assigned to this user": the number ends on the user once,
  assigned or kept, with no failure and no unassign;
* item 9 -- refusal texts the classifier has never seen: ``assignment_failed`` with the whole
  text, tried again after the usual backoff (and a text that says "try again" is temporary).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from graph_simulator import Scenario
from local_runner.session import SIMULATOR_TOKEN
from shared.adapters.graph.client import (
    build_graph_client,
    close_graph_transport,
    graph_http_client,
)
from shared.adapters.graph.credentials import GraphCredentials
from shared.adapters.graph.numbers import GraphTeamsNumbers
from shared.config import GraphAuth, GraphSettings, NumberType
from shared.core.outcomes import Outcome, Reason
from shared.core.records import UserStatus
from shared.host_settings import QueueHostSettings, read_queue_settings
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import DOMAIN, build_scenario, user_id

ANN_NUMBER = "+31855363011"
BOB_NUMBER = "+31855363012"
ANN = f"ann@{DOMAIN}"


@pytest.fixture
def scenario() -> Scenario:
    return build_scenario([("ann", [ANN_NUMBER]), ("bob", [BOB_NUMBER])])


def quick_host() -> QueueHostSettings:
    """The host's retries without their waits (visibility timeout 0)."""
    host = read_queue_settings()
    return type(host)(
        batch_size=host.batch_size, new_batch_threshold=host.new_batch_threshold,
        max_dequeue_count=host.max_dequeue_count, visibility_timeout=timedelta(0),
        max_polling_interval=timedelta(milliseconds=50),
    )


async def status_of(app: LocalApp, upn: str = ANN) -> UserStatus:
    return (await app.statuses())[upn]


def assign_answers(app: LocalApp) -> list[int]:
    return [entry["status"] for entry in app.simulator.request_log()
            if entry["route"] == "assignNumber"]


# -- item 3: skipped -----------------------------------------------------------------------


async def test_the_adapter_reads_a_skipped_operation_as_it_is(local_app: LocalApp) -> None:
    """The adapter sends the assignment and reads its operation; what ``skipped`` means is the
    queue function's to decide (from the user's configuration and the number's record)."""
    settings = GraphSettings(base_url=local_app.simulator.base_url, auth=GraphAuth.STATIC_TOKEN,
                             static_token=SIMULATOR_TOKEN)
    transport = graph_http_client(settings)
    try:
        auth = GraphCredentials(settings).auth_provider("admin")
        teams = GraphTeamsNumbers(build_graph_client(settings, auth, transport),
                                  number_type=NumberType.DIRECT_ROUTING,
                                  poll_interval_seconds=0.01, operation_timeout_seconds=10)
        local_app.simulator.set_behaviour(skipped_operations="alreadyDone")
        first = await teams.read_operation(await teams.assign_number(ANN_NUMBER, user_id("ann")))
        again = await teams.read_operation(await teams.assign_number(ANN_NUMBER, user_id("ann")))
        assert (first.status, again.status) == ("succeeded", "skipped")  # it was there already
        assert local_app.teams_by_upn() == {ANN_NUMBER: ANN}
        await teams.unassign_number(ANN_NUMBER)

        local_app.simulator.set_behaviour(skipped_operations="always")
        skipped = await teams.read_operation(
            await teams.assign_number(ANN_NUMBER, user_id("ann")))
        assert skipped.status == "skipped"
        assert skipped.finished
    finally:
        await close_graph_transport(transport)
    assert ANN_NUMBER not in local_app.teams_by_upn()


async def test_a_skipped_operation_with_the_number_on_the_user_ends_assigned(
    local_app: LocalApp,
) -> None:
    # The first POST is carried out and lost; the SDK's retry is a second operation, which Teams
    # skips (nothing left to do). The configuration lags one read, so the app's first look
    # misses the number, reads the operation (`skipped`) and the number's record (on the user),
    # and looks again from the queue: the configuration shows it then.
    local_app.simulator.set_behaviour(
        assign_answer_lost="gatewayTimeout", skipped_operations="alreadyDone",
        configuration_lag_reads=1,
    )

    await local_app.sync()

    for upn, number in ((ANN, ANN_NUMBER), (f"bob@{DOMAIN}", BOB_NUMBER)):
        status = await status_of(local_app, upn)
        assert (status.outcome, status.reason) == (Outcome.ASSIGNED, Reason.ASSIGNED)
        assert local_app.teams_by_upn()[number] == upn
    operations = [e for e in local_app.simulator.request_log() if e["route"] == "getOperation"]
    assert operations, "the skipped operations were followed to their end"


async def test_an_operation_that_is_always_skipped_is_retried_and_names_the_status(
    local_app: LocalApp,
) -> None:
    local_app.simulator.set_behaviour(skipped_operations="always")

    drained = await local_app.sync(quick_host())

    # Both users' messages, on every try of the host: tried again, not failed at the first skip.
    assert drained.failed_attempts == 2 * quick_host().max_dequeue_count
    ann = await status_of(local_app)
    assert (ann.outcome, ann.reason) == (Outcome.FAILED, Reason.ASSIGNMENT_FAILED)
    assert "ended 'skipped'" in ann.message
    assert local_app.teams_by_upn() == {}

    local_app.simulator.set_behaviour(skipped_operations="never")
    await local_app.sync()

    assert (await status_of(local_app)).outcome is Outcome.ASSIGNED
    assert local_app.teams_by_upn() == {ANN_NUMBER: ANN, BOB_NUMBER: f"bob@{DOMAIN}"}


# -- item 5: accepted, then a 504 or a dropped connection; the SDK posts again -----------


@pytest.mark.parametrize("lost", ["gatewayTimeout", "connectionDropped"])
@pytest.mark.parametrize(("repeat", "errors"), [
    ("newOperation", "async"), ("refused", "sync"), ("refused", "async"),
])
async def test_an_assignment_whose_answer_was_lost_ends_on_the_user_once(
    local_app: LocalApp, lost: str, repeat: str, errors: str
) -> None:
    local_app.simulator.set_behaviour(
        assign_answer_lost=lost, repeated_assign=repeat, assign_errors=errors,
    )

    drained = await local_app.sync()

    assert drained.failed_attempts == 0
    assert local_app.teams_by_upn() == {ANN_NUMBER: ANN, BOB_NUMBER: f"bob@{DOMAIN}"}
    for configuration in local_app.simulator.user_configurations():
        numbers = [n["telephoneNumber"] for n in configuration["telephoneNumbers"]]
        assert len(numbers) == 1, configuration
    for upn in (ANN, f"bob@{DOMAIN}"):
        status = await status_of(local_app, upn)
        assert status.outcome in {Outcome.ASSIGNED, Outcome.KEPT}, status
    counts = local_app.simulator.request_counts()
    assert counts.get("unassignNumber", 0) == 0
    first_answer = 504 if lost == "gatewayTimeout" else 202  # a dropped one is logged as sent
    assert sorted(assign_answers(local_app)) == sorted(
        [first_answer, first_answer] + [400 if errors == "sync" else 202] * 2
    )
    runtime = await local_app.runtime()
    claims = await runtime.claims.list_claims()
    assert claims[ANN_NUMBER].assigned, "the app owns what it put there (taken back later)"

    await local_app.sync()  # the next run finds everything in place and writes nothing

    assert local_app.simulator.request_counts()["assignNumber"] == 4
    assert local_app.teams_by_upn() == {ANN_NUMBER: ANN, BOB_NUMBER: f"bob@{DOMAIN}"}


# -- item 9: refusal texts nobody has seen -------------------------------------------------


def licence_bob(app: LocalApp, *, licensed: bool) -> None:
    """Give bob a Teams Phone licence, or take it away (Teams' side only)."""
    users = tuple(
        user.model_copy(update={"teams": user.teams.model_copy(update={"licensed": licensed})})
        if user.id == user_id("bob") else user
        for user in app.scenario.users
    )
    app.scenario = app.scenario.model_copy(update={"users": users})
    app.simulator.replace_directory(app.scenario)


@pytest.mark.parametrize("errors", ["sync", "async"])
async def test_an_unseen_refusal_is_assignment_failed_and_tried_again_after_the_backoff(
    local_app: LocalApp, errors: str
) -> None:
    # Teams refuses bob (no Teams Phone licence) in words no classifier knows.
    licence_bob(local_app, licensed=False)
    local_app.simulator.set_behaviour(refusal_texts="unseen", assign_errors=errors)

    await local_app.sync()

    assert (await status_of(local_app)).outcome is Outcome.ASSIGNED  # ann was not refused
    bob = await status_of(local_app, f"bob@{DOMAIN}")
    assert (bob.outcome, bob.reason) == (Outcome.FAILED, Reason.ASSIGNMENT_FAILED)
    assert "The number service declined this request (decision " in bob.message
    assert bob.retry_at is not None
    assert timedelta(minutes=14) < bob.retry_at - bob.updated_at <= timedelta(minutes=15)
    posts = local_app.simulator.request_counts()["assignNumber"]

    await local_app.sync()  # within the backoff: bob is left alone, not failed again

    assert local_app.simulator.request_counts()["assignNumber"] == posts
    assert await status_of(local_app, f"bob@{DOMAIN}") == bob

    licence_bob(local_app, licensed=True)
    await local_app.advance(0.5)  # past the first backoff (15 minutes)
    await local_app.sync()  # tried again; this time Teams takes it

    bob = await status_of(local_app, f"bob@{DOMAIN}")
    assert (bob.outcome, bob.reason) == (Outcome.ASSIGNED, Reason.ASSIGNED)
    assert local_app.teams_by_upn()[BOB_NUMBER] == f"bob@{DOMAIN}"
    assert local_app.simulator.request_counts()["assignNumber"] == posts + 1


async def test_a_refusal_the_app_keeps_getting_backs_off_longer_each_time(
    local_app: LocalApp,
) -> None:
    licence_bob(local_app, licensed=False)
    local_app.simulator.set_behaviour(refusal_texts="unseen", assign_errors="sync")
    await local_app.sync()
    first = await status_of(local_app, f"bob@{DOMAIN}")

    await local_app.advance(0.5)
    await local_app.sync()

    second = await status_of(local_app, f"bob@{DOMAIN}")
    assert second.reason is Reason.ASSIGNMENT_FAILED
    assert second.updated_at > first.updated_at, "tried again once the backoff ran out"
    assert first.retry_at is not None
    assert second.retry_at is not None
    assert second.retry_at - second.updated_at > first.retry_at - first.updated_at


async def test_an_unseen_refusal_that_says_try_again_is_retried_as_temporary(
    local_app: LocalApp,
) -> None:
    licence_bob(local_app, licensed=False)
    local_app.simulator.set_behaviour(refusal_texts="unseenTryAgain", assign_errors="sync")

    drained = await local_app.sync(quick_host())

    assert drained.failed_attempts == quick_host().max_dequeue_count  # every try, the last too
    assert drained.poisoned == 1
    bob = await status_of(local_app, f"bob@{DOMAIN}")
    assert (bob.outcome, bob.reason) == (Outcome.FAILED, Reason.ASSIGNMENT_FAILED)
    assert bob.message.startswith("Gave up after repeated temporary failures")
    assert "Please try again later." in bob.message
