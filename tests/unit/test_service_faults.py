"""The service under faults, with in-memory fakes: lost answers, crashes, overlapping runs, an
empty group. Each test here failed before the fix it guards (issue 9)."""

from __future__ import annotations

import logging

import pytest

from shared.core.errors import PermanentError, TemporaryError
from shared.core.outcomes import Outcome, Reason
from shared.core.records import DirectorySnapshot
from shared.core.tenant_rules import TenantRules
from tests.fakes import TENANT
from tests.unit.test_service_with_fakes import World, _assign, _member

ANN = "+31855363011"


class LostAnswerError(TemporaryError):
    """What a dropped connection after Graph carried out the write looks like to the app."""


def _lose_answers(world: World) -> None:
    """Teams carries out every assignment, but the app never hears back."""
    original = world.teams.assign_number

    async def assign_and_drop(*args: object, **kwargs: object) -> str:
        await original(*args, **kwargs)  # type: ignore[arg-type]
        raise LostAnswerError("No answer from Graph: ReadError (the connection failed)")

    world.teams.assign_number = assign_and_drop  # type: ignore[method-assign]


# -- every last try leaves a status ---------------------------------------------------------------


@pytest.mark.parametrize(
    "failure",
    [RuntimeError("storage went away"), KeyError("id"), ConnectionResetError("reset")],
)
async def test_the_last_try_records_a_failed_status_whatever_the_exception(
    failure: Exception,
) -> None:
    world = World([_member("ann", ANN)])

    async def broken(*args: object, **kwargs: object) -> str:
        raise failure

    world.teams.assign_number = broken  # type: ignore[method-assign]

    with pytest.raises(type(failure)):
        await world.carry_out(_assign("ann", ANN), final=True)

    status = world.statuses.statuses[(TENANT.key, "ann")]
    assert (status.outcome, status.reason) == (Outcome.FAILED, Reason.ASSIGNMENT_FAILED)
    assert type(failure).__name__ in status.message


async def test_an_earlier_try_that_fails_unexpectedly_records_nothing_yet() -> None:
    world = World([_member("ann", ANN)])

    async def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("storage went away")

    world.teams.assign_number = broken  # type: ignore[method-assign]

    with pytest.raises(RuntimeError):
        await world.carry_out(_assign("ann", ANN))

    assert world.statuses.statuses == {}


# -- the ownership marker is an intent written before the write ----------------------------------


async def test_the_intent_to_assign_is_stored_before_teams_is_asked() -> None:
    world = World([_member("ann", ANN)])
    seen: list[object] = []
    world.teams.on_assigned.append(
        lambda number, user: seen.append(world.claims.claims[(TENANT.key, number)])
    )

    asked_at = world.now
    await world.process(_assign("ann", ANN))

    (at_write,) = seen
    assert at_write.assigning_since == asked_at  # type: ignore[attr-defined]
    assert not at_write.assigned  # type: ignore[attr-defined]


async def test_a_number_whose_answer_was_lost_on_the_last_try_is_still_taken_back() -> None:
    world = World([_member("ann", ANN), _member("bob", None, 1)])
    world.rules = TenantRules(grace_period_hours=0)
    _lose_answers(world)

    with pytest.raises(LostAnswerError):
        await world.carry_out(_assign("ann", ANN), final=True)  # poisoned after this
    assert world.teams.assignments == {ANN: "ann"}

    await world.sync(run_id="run-2")  # the next run finds the number on ann
    claim = world.claims.claims[(TENANT.key, ANN)]
    assert claim.assigned, "the number found with the app's intent must be the app's"

    world.directory.members = [_member("bob", None, 0)]  # ann leaves the voice group
    await world.sync(run_id="run-3")
    (leave,) = world.queue.sent[-1:]
    assert (leave.action, leave.previous_number) == ("unassign", ANN)
    world.queue.sent.clear()
    await world.process(leave)

    assert world.teams.assignments == {}


async def test_a_redelivery_after_a_lost_answer_finds_the_number_and_says_it_assigned() -> None:
    world = World([_member("ann", ANN)])
    _lose_answers(world)
    with pytest.raises(LostAnswerError):
        await world.carry_out(_assign("ann", ANN))

    world.teams.assign_number = type(world.teams).assign_number.__get__(world.teams)  # type: ignore[method-assign]
    result = await world.carry_out(_assign("ann", ANN), redelivered=True)

    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.ASSIGNED, Reason.ASSIGNED)
    assert len(world.teams.assign_calls) == 1  # looked first: not written again
    assert world.claims.claims[(TENANT.key, ANN)].assigned


async def test_a_look_that_fails_reads_the_operation_and_the_next_look_ends_it() -> None:
    world = World([_member("ann", ANN)])
    reads = world.teams_users.read
    failures = [TemporaryError("Graph answered 503")] * 2  # the first two looks

    async def read_fails_at_first(user_id: str) -> object:
        if failures:
            raise failures.pop()
        return await reads(user_id)

    world.teams_users.read = read_fails_at_first  # type: ignore[method-assign,assignment]

    result = await world.carry_out(_assign("ann", ANN))

    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.ASSIGNED, Reason.ASSIGNED)
    assert len(world.teams.assign_calls) == 1
    assert len(world.teams.operation_reads) == 2  # each failed look: "has it landed?"

async def test_a_number_assigned_by_an_earlier_run_and_found_again_is_kept() -> None:
    world = World([_member("ann", ANN)])
    await world.process(_assign("ann", ANN))
    later = _assign("ann", ANN).model_copy(
        update={"run_id": "run-2", "idempotency_key": f"run-2|ann|assign|{ANN}"}
    )

    assert await world.process(later) == (Outcome.KEPT, Reason.ALREADY_ASSIGNED)


async def test_a_refused_assignment_withdraws_the_intent() -> None:
    world = World([_member("ann", ANN)])
    world.teams.refusal = PermanentError(Reason.NOT_IN_INVENTORY, "not in the inventory")

    await world.process(_assign("ann", ANN))

    claim = world.claims.claims[(TENANT.key, ANN)]
    assert (claim.assigning_since, claim.assigned) == (None, False)


async def test_a_number_found_on_the_user_without_the_apps_intent_is_never_the_apps() -> None:
    world = World([_member("ann", ANN), _member("bob", None, 1)],
                  teams={ANN: "ann"})  # put there by someone else
    await world.sync()
    claim = world.claims.claims[(TENANT.key, ANN)]
    assert not claim.assigned

    world.rules = TenantRules(grace_period_hours=0)
    world.directory.members = [_member("bob", None, 0)]
    await world.sync(run_id="run-2")

    assert world.summary.plan.summary()["byOutcome"] == {"skip": 1}  # bob only
    assert [m for m in world.queue.sent if m.action == "unassign"] == []


# -- a number found on the user is noted in the snapshot, as the app's own writes are ----------


def _snapshot_of(world: World) -> None:
    world.snapshots.snapshots[TENANT.key] = DirectorySnapshot(
        members=tuple(world.directory.members), teams={}, users_link="u", group_link="g",
        full_read_at=world.now,
    )


async def test_a_number_found_by_looking_first_is_noted_in_the_snapshot() -> None:
    world = World([_member("ann", ANN)], teams={ANN: "ann"})
    _snapshot_of(world)

    await world.carry_out(_assign("ann", ANN), redelivered=True)

    assert world.teams.assign_calls == []
    assert world.snapshots.snapshots[TENANT.key].teams == {ANN: "ann"}


async def test_a_refused_number_that_teams_has_on_the_user_already_is_noted() -> None:
    world = World([_member("ann", ANN)], teams={ANN: "ann"})
    _snapshot_of(world)
    world.teams.refusal = PermanentError(
        Reason.ASSIGNED_ELSEWHERE, f"Telephone Number '{ANN}' has already been assigned"
    )

    result = await world.carry_out(_assign("ann", ANN))

    assert result is not None
    assert result.reason is not Reason.ASSIGNED_ELSEWHERE  # it is hers: read back, not refused
    assert world.claims.claims[(TENANT.key, ANN)].assigned
    assert world.snapshots.snapshots[TENANT.key].teams == {ANN: "ann"}


# -- a change still queued is not queued again ---------------------------------------------------


async def test_a_run_during_the_drain_enqueues_nothing_for_users_still_queued() -> None:
    world = World([_member("ann", ANN, 0), _member("bob", "+31855363012", 1)])
    await world.sync(run_id="run-1")
    first = list(world.queue.sent)
    assert len(first) == 2

    world.queue.sent.clear()
    await world.process(first[0])  # ann is done, bob is still queued
    await world.sync(run_id="run-2")  # the next timer fires meanwhile

    assert world.queue.sent == []
    await world.process(first[1])
    statuses = {user: s.outcome for (_, user), s in world.statuses.statuses.items()}
    assert statuses == {"ann": Outcome.ASSIGNED, "bob": Outcome.ASSIGNED}
    assert len(world.teams.assign_calls) == 2


async def test_a_user_is_planned_again_once_the_queued_change_is_done() -> None:
    world = World([_member("ann", ANN)])
    world.teams.refusal = PermanentError(Reason.NOT_IN_INVENTORY, "not in the inventory")
    await world.sync(run_id="run-1")
    await world.drain()  # failed: not in the inventory

    world.teams.refusal = None
    await world.sync(run_id="run-2")

    assert [m.user_id for m in world.queue.sent] == ["ann"]


async def test_a_queued_change_given_up_on_lets_the_next_run_plan_the_user() -> None:
    world = World([_member("ann", ANN)])
    world.teams.temporary = TemporaryError("Graph answered 503")
    await world.sync(run_id="run-1")
    (message,) = world.queue.sent
    world.queue.sent.clear()
    with pytest.raises(TemporaryError):
        await world.carry_out(message, final=True)  # to the poison queue

    world.teams.temporary = None
    await world.sync(run_id="run-2")

    assert [m.user_id for m in world.queue.sent] == ["ann"]


# -- an empty group and a failed run raise an alarm ----------------------------------------------


async def test_an_empty_group_is_an_error_and_the_run_says_held_empty_group(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = World([_member("ann", ANN)])
    await world.sync(run_id="run-1")
    await world.drain()
    world.directory.members = []

    with caplog.at_level(logging.WARNING):
        await world.sync(run_id="run-2")

    (record,) = [r for r in await world.ledger.runs() if r.run_id == "run-2"]
    assert record.outcome == "held_empty_group"
    assert "empty" in record.message
    alarms = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(TENANT.key in r.getMessage() and "empty" in r.getMessage() for r in alarms)
    assert world.queue.sent == []


async def test_a_run_that_cannot_read_the_directory_is_an_error_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    world = World([_member("ann", ANN)])

    async def refused(group_id: str) -> list[object]:
        raise PermanentError(Reason.GRAPH_FORBIDDEN, "Graph answered 403 Forbidden")

    world.directory.read_members = refused  # type: ignore[method-assign,assignment]

    with caplog.at_level(logging.WARNING), pytest.raises(PermanentError):
        await world.sync(run_id="run-1")

    (record,) = await world.ledger.runs()
    assert record.outcome == "failed"
    assert record.message.startswith("graph_forbidden: ")
    alarms = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(TENANT.key in r.getMessage() and "graph_forbidden" in r.getMessage()
               for r in alarms)
