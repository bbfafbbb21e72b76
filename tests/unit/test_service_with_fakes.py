"""The service with in-memory fakes: the timer's run and the queue function's re-check."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from shared.config import NumberType
from shared.core.directory import Claim, Member
from shared.core.errors import OperationPendingError, PermanentError, TemporaryError
from shared.core.messages import AssignmentMessage, MessageError
from shared.core.outcomes import Outcome, Reason, UserResult
from shared.core.policy_planner import GrantedPolicy, PolicyGrant
from shared.core.records import UserStatus
from shared.core.teams_readiness import WAIT_LOOK_CAP
from shared.core.tenant_rules import MainNumberPolicy, TenantRules
from shared.service.context import TenantContext
from shared.service.message_handler import process_assignment
from shared.service.timer_run import run_sync
from tests.fakes import (
    NOW,
    TENANT,
    FakeClaimStore,
    FakeDirectory,
    FakeInFlightStore,
    FakePolicyGrantStore,
    FakeQueue,
    FakeRunLedger,
    FakeSnapshotStore,
    FakeStatusStore,
    FakeTeamsNumbers,
    FakeTeamsPolicies,
    FakeTeamsUsers,
    FakeUsers,
    SettableClock,
    deliver,
    fake_context,
)

RULES = TenantRules()


def _member(user: str, number: str | None, position: int = 0, enabled: bool = True) -> Member:
    return Member(user, f"{user}@contoso.example", (number,) if number else (), enabled, position)


def _assign(
    user: str, number: str, position: int = 0, previous: str | None = None
) -> AssignmentMessage:
    return AssignmentMessage(
        tenant_id=TENANT.key, run_id="run-1", user_id=user,
        user_principal_name=f"{user}@contoso.example", telephone_number=number,
        read_position=position, action="assign", reason="assigned", number=number,
        previous_number=previous, idempotency_key=f"run-1|{user}|assign|{number}",
    )


def _unassign(user: str, number: str, reason: str = "left_group") -> AssignmentMessage:
    return AssignmentMessage(
        tenant_id=TENANT.key, run_id="run-1", user_id=user,
        user_principal_name=f"{user}@contoso.example", telephone_number=None,
        read_position=None, action="unassign", reason=reason, previous_number=number,
        idempotency_key=f"run-1|{user}|unassign|{number}",
    )


class World:
    """A tenant of fakes (``fake_context``), keeping the fakes typed for the tests to look at.

    ``rules`` and ``now`` may be changed between calls: each call runs in a context with them.
    """

    def __init__(self, members: list[Member], teams: dict[str, str] | None = None) -> None:
        self.claims = FakeClaimStore(TENANT.key)
        self.statuses = FakeStatusStore(TENANT.key)
        self.teams = FakeTeamsNumbers(teams)
        self.teams_users = FakeTeamsUsers(self.teams)
        self.users = FakeUsers(members)
        self.directory = FakeDirectory(members)
        self.queue = FakeQueue()
        self.ledger = FakeRunLedger(TENANT.key)
        self.in_flight = FakeInFlightStore(TENANT.key)
        self.snapshots = FakeSnapshotStore(TENANT.key)
        self.rules = RULES
        self.clock = SettableClock(NOW)
        self._context = fake_context(
            clock=self.clock, claims=self.claims, statuses=self.statuses, teams=self.teams,
            teams_users=self.teams_users, users=self.users, directory=self.directory,
            queue=self.queue, ledger=self.ledger, in_flight=self.in_flight,
            snapshots=self.snapshots,
        )

    @property
    def now(self) -> datetime:
        return self.clock.now

    @now.setter
    def now(self, value: datetime) -> None:
        self.clock.now = value

    @property
    def context(self) -> TenantContext:
        return replace(self._context, rules=self.rules)

    async def process(
        self, message: AssignmentMessage, *, final: bool = False
    ) -> tuple[Outcome, Reason]:
        result = await self.carry_out(message, final=final)
        assert result is not None
        stored = self.statuses.statuses[(TENANT.key, message.user_id)]
        assert (stored.outcome, stored.reason) == (result.outcome, result.reason)
        return result.outcome, result.reason

    async def carry_out(
        self, message: AssignmentMessage, *, final: bool = False, redelivered: bool = False
    ) -> UserResult | None:
        return await deliver(self.context, message, final_attempt=final,
                             redelivered=redelivered)

    async def sync(self, *, dry_run: bool = False, run_id: str = "run-1") -> None:
        self.summary = await run_sync(self.context, run_id, dry_run=dry_run)

    async def drain(self) -> None:
        while self.queue.sent:
            await self.process(self.queue.sent.pop(0))


async def test_a_planned_assignment_is_carried_out_and_marked_as_the_apps() -> None:
    world = World([_member("ann", "+31855363011")])
    assert await world.process(_assign("ann", "+31855363011")) == (
        Outcome.ASSIGNED, Reason.ASSIGNED,
    )
    assert world.teams.assignments == {"+31855363011": "ann"}
    assert world.teams.assign_calls == [("+31855363011", "ann", NumberType.OPERATOR_CONNECT)]
    claim = await world.claims.get_claim("+31855363011")
    assert claim is not None
    assert claim.assigned


async def test_a_redelivered_message_does_nothing_at_all() -> None:
    world = World([_member("ann", "+31855363011")])
    await world.process(_assign("ann", "+31855363011"))
    again = await process_assignment(world.context, _assign("ann", "+31855363011"))
    assert again is None
    assert len(world.teams.assign_calls) == 1


async def test_the_same_change_planned_by_a_later_run_finds_it_done_and_writes_nothing() -> None:
    world = World([_member("ann", "+31855363011")])
    await world.process(_assign("ann", "+31855363011"))
    later = _assign("ann", "+31855363011").model_copy(
        update={"run_id": "run-2", "idempotency_key": "run-2|ann|assign|+31855363011"}
    )
    assert await world.process(later) == (Outcome.KEPT, Reason.ALREADY_ASSIGNED)
    assert len(world.teams.assign_calls) == 1


async def test_a_message_the_directory_no_longer_agrees_with_assigns_nothing() -> None:
    world = World([_member("ann", "+31855363099")])  # the number changed after planning
    assert await world.process(_assign("ann", "+31855363011")) == (Outcome.SKIPPED, Reason.STALE)
    assert world.teams.assign_calls == []
    assert world.claims.claims == {}


async def test_a_disabled_account_at_execution_time_gets_nothing() -> None:
    world = World([_member("ann", "+31855363011", enabled=False)])
    assert await world.process(_assign("ann", "+31855363011")) == (Outcome.SKIPPED, Reason.STALE)
    assert world.teams.assign_calls == []


async def test_a_number_claimed_by_another_user_is_a_duplicate_naming_the_holder() -> None:
    world = World([_member("bob", "+31855363011", 1)])
    ann = Claim("+31855363011", "ann", "ann@contoso.example", "r", 0)
    await world.claims.claim(ann)
    assert await world.process(_assign("bob", "+31855363011", 1)) == (
        Outcome.SKIPPED, Reason.DUPLICATE,
    )
    assert "ann@contoso.example" in world.statuses.statuses[(TENANT.key, "bob")].message
    assert world.teams.assign_calls == []


async def test_a_teams_refusal_is_recorded_with_its_reason() -> None:
    world = World([_member("ann", "+31855363011")])
    world.teams.refusal = PermanentError(Reason.NOT_IN_INVENTORY, "not in the inventory")
    assert await world.process(_assign("ann", "+31855363011")) == (
        Outcome.FAILED, Reason.NOT_IN_INVENTORY,
    )


async def test_a_temporary_failure_is_retried_and_recorded_only_on_the_last_attempt() -> None:
    world = World([_member("ann", "+31855363011")])
    world.teams.temporary = TemporaryError("throttled", retry_after_seconds=5)  # a short wait
    with pytest.raises(TemporaryError):
        await world.process(_assign("ann", "+31855363011"))
    assert world.statuses.statuses == {}

    with pytest.raises(TemporaryError):
        await world.process(_assign("ann", "+31855363011"), final=True)
    (status,) = world.statuses.statuses.values()
    assert (status.outcome, status.reason) == (Outcome.FAILED, Reason.ASSIGNMENT_FAILED)
    assert "throttled" in status.message


async def test_a_message_for_another_tenant_is_refused() -> None:
    world = World([_member("ann", "+31855363011")])
    foreign = _assign("ann", "+31855363011").model_copy(update={"tenant_id": "someone-else"})
    with pytest.raises(MessageError, match="someone-else"):
        await world.process(foreign)


async def test_unassign_takes_back_only_a_number_the_app_assigned() -> None:
    world = World([], teams={"+31855363011": "ann", "+31855363012": "bob"})
    await world.claims.claim(
        Claim("+31855363011", "ann", "ann@contoso.example", "r", 0, assigned=True)
    )
    bob = Claim("+31855363012", "bob", "bob@contoso.example", "r", 1)  # reserved, not assigned
    await world.claims.claim(bob)

    assert await world.process(_unassign("ann", "+31855363011")) == (
        Outcome.UNASSIGNED, Reason.LEFT_GROUP,
    )
    assert await world.process(_unassign("bob", "+31855363012")) == (
        Outcome.SKIPPED, Reason.STALE,
    )
    assert world.teams.assignments == {"+31855363012": "bob"}
    assert await world.claims.get_claim("+31855363011") is None


async def test_a_number_change_releases_the_old_number_and_assigns_the_new_one() -> None:
    world = World([_member("ann", "+31855363022")], teams={"+31855363011": "ann"})
    await world.claims.claim(
        Claim("+31855363011", "ann", "ann@contoso.example", "r", 0, assigned=True)
    )
    assert await world.process(_assign("ann", "+31855363022", previous="+31855363011")) == (
        Outcome.ASSIGNED, Reason.ASSIGNED,
    )
    assert world.teams.assignments == {"+31855363022": "ann"}
    # The new primary number replaced the old one in Teams: no separate unassign was needed.
    assert world.teams.unassign_calls == []
    assert await world.claims.get_claim("+31855363011") is None


async def test_a_new_number_teams_refuses_still_releases_the_old_one() -> None:
    world = World([_member("ann", "+31855363022")], teams={"+31855363011": "ann"})
    await world.claims.claim(
        Claim("+31855363011", "ann", "ann@contoso.example", "r", 0, assigned=True)
    )
    world.teams.refusal = PermanentError(Reason.NOT_IN_INVENTORY, "not in the inventory")
    assert await world.process(_assign("ann", "+31855363022", previous="+31855363011")) == (
        Outcome.FAILED, Reason.NOT_IN_INVENTORY,
    )
    assert world.teams.unassign_calls == [("+31855363011", NumberType.OPERATOR_CONNECT)]
    assert world.teams.assignments == {}
    assert await world.claims.get_claim("+31855363011") is None


async def test_run_sync_claims_in_read_order_and_enqueues_only_changes() -> None:
    world = World(
        [
            _member("ann", "+31855363011", 0),
            _member("bob", "+31855363011", 1),
            _member("cy", None, 2),
            _member("dee", "+31855363014", 3),
        ],
        teams={"+31855363014": "dee"},
    )
    await world.sync()

    assert [(m.user_id, m.action, m.number) for m in world.queue.sent] == [
        ("ann", "assign", "+31855363011"),
    ]
    claim = await world.claims.get_claim("+31855363011")
    assert claim is not None
    assert claim.holder_user_id == "ann"
    recorded = {user: s.outcome for (_, user), s in world.statuses.statuses.items()}
    assert recorded == {"bob": Outcome.SKIPPED, "cy": Outcome.SKIPPED, "dee": Outcome.KEPT}


async def test_a_second_run_over_the_same_state_enqueues_and_writes_nothing() -> None:
    world = World([_member("ann", "+31855363011", 0), _member("cy", None, 1)])
    await world.sync()
    await world.drain()
    await world.sync()
    written_before = dict(world.statuses.statuses)

    await world.sync()

    assert world.queue.sent == []
    assert world.statuses.statuses == written_before
    assert len(world.teams.assign_calls) == 1


async def test_a_dry_run_writes_nothing_and_shows_every_decision() -> None:
    world = World([_member("ann", "+31855363011")])
    await world.sync(dry_run=True)
    assert world.queue.sent == []
    assert world.claims.claims == {}
    assert world.statuses.statuses == {}
    body = world.summary.to_json()
    assert body["dryRun"] is True
    assert body["enqueued"] == 0
    assert "decisions" in body


async def test_a_long_throttle_waits_on_the_queue_not_on_the_worker() -> None:
    world = World([_member("ann", "+31855363011")])
    world.teams.temporary = TemporaryError("throttled", retry_after_seconds=120)

    result = await process_assignment(world.context, _assign("ann", "+31855363011"))

    assert result is None
    ((later, delay),) = world.queue.later
    assert (delay, later.deferrals, later.idempotency_key) == (
        120, 1, "run-1|ann|assign|+31855363011",
    )
    assert world.statuses.statuses == {}


async def test_a_slow_operation_is_followed_later_without_assigning_twice() -> None:
    world = World([_member("ann", "+31855363011")])
    world.teams.temporary = OperationPendingError(
        "still running", location="http://graph/operations('1')", retry_after_seconds=30
    )
    await process_assignment(world.context, _assign("ann", "+31855363011"))
    ((later, delay),) = world.queue.later
    assert (delay, later.operation_location) == (30, "http://graph/operations('1')")


async def test_a_change_deferred_too_often_is_recorded_as_failed() -> None:
    world = World([_member("ann", "+31855363011")])
    world.teams.temporary = TemporaryError("throttled", retry_after_seconds=600)
    tired = _assign("ann", "+31855363011").model_copy(update={"deferrals": 24})

    assert await world.process(tired) == (Outcome.FAILED, Reason.ASSIGNMENT_FAILED)
    assert world.queue.later == []


# -- Teams readiness and the read-back ------------------------------------------------------------


def _in_run(message: AssignmentMessage, run: str) -> AssignmentMessage:
    """The same planned change as a later run sends it."""
    return message.model_copy(update={
        "run_id": run, "idempotency_key": message.idempotency_key.replace("run-1", run, 1),
    })


def _stored(world: World, user: str = "ann") -> UserStatus:
    return world.statuses.statuses[(TENANT.key, user)]


async def test_an_assignment_reads_the_teams_configuration_once_after_the_write() -> None:
    world = World([_member("ann", "+31855363011")])
    assert await world.process(_assign("ann", "+31855363011")) == (
        Outcome.ASSIGNED, Reason.ASSIGNED,
    )
    # The read-back is also the "operation done?" look: one read, nothing before the write.
    assert world.teams_users.reads == ["ann"]
    assert (_stored(world).retry_at, _stored(world).waiting_since) == (None, None)


async def test_a_user_teams_does_not_know_yet_waits_and_nothing_is_written() -> None:
    world = World([_member("ann", "+31855363011")])
    world.teams_users.set("ann", present=False)

    assert await world.process(_assign("ann", "+31855363011")) == (
        Outcome.SKIPPED, Reason.WAITING_FOR_TEAMS,
    )

    assert world.teams.assignments == {}  # Teams refused the one attempt
    status = _stored(world)
    assert (status.retry_at, status.waiting_since, status.attempts) == (
        NOW + timedelta(minutes=15), NOW, 1,
    )
    assert "will look again" in status.message
    claim = await world.claims.get_claim("+31855363011")
    assert claim is not None
    assert (claim.holder_user_id, claim.assigned) == ("ann", False)  # reserved for ann


async def test_an_unlicensed_user_waits_and_fails_only_after_the_patience() -> None:
    world = World([_member("ann", "+31855363011")])
    world.teams_users.set("ann", licensed=False)
    assert await world.process(_assign("ann", "+31855363011")) == (
        Outcome.SKIPPED, Reason.NOT_LICENSED,
    )

    world.now = NOW + timedelta(hours=23, minutes=45)  # a 30-minute backoff would overrun
    assert await world.process(_in_run(_assign("ann", "+31855363011"), "run-2")) == (
        Outcome.SKIPPED, Reason.NOT_LICENSED,
    )
    assert _stored(world).retry_at == NOW + timedelta(hours=24)  # never later than the deadline

    world.now = NOW + timedelta(hours=24)
    assert await world.process(_in_run(_assign("ann", "+31855363011"), "run-3")) == (
        Outcome.FAILED, Reason.NOT_LICENSED,
    )
    status = _stored(world)
    assert "give the user a Teams Phone licence" in status.message
    assert (status.waiting_since, status.attempts) == (NOW, 3)
    assert status.retry_at == world.now + WAIT_LOOK_CAP  # backoff(2) = 1 h, capped at 50 min
    assert world.teams.assignments == {}


async def test_the_patience_is_a_parameter() -> None:
    world = World([_member("ann", "+31855363011")])
    world.teams_users.set("ann", licensed=False)
    patient_for_nothing = replace(
        world.context, limits=replace(world.context.limits, readiness_patience=timedelta(0))
    )
    result = await process_assignment(patient_for_nothing, _assign("ann", "+31855363011"))
    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.FAILED, Reason.NOT_LICENSED)


async def test_the_patience_counts_from_the_wait_not_from_the_users_first_status() -> None:
    world = World([_member("ann", "+31855363011")])
    long_ago = NOW - timedelta(days=30)
    await world.statuses.record(UserStatus(
        "ann", "ann@contoso.example", Outcome.SKIPPED, Reason.DISABLED, "+31855363011",
        "disabled", "run-0", 0, long_ago,
    ))
    world.teams_users.set("ann", licensed=False)  # enabled today, licence on its way

    assert await world.process(_assign("ann", "+31855363011")) == (
        Outcome.SKIPPED, Reason.NOT_LICENSED,
    )
    assert _stored(world).first_seen == long_ago
    assert _stored(world).waiting_since == NOW


async def test_a_waiting_user_keeps_the_number_they_have() -> None:
    world = World([_member("ann", "+31855363022")], teams={"+31855363011": "ann"})
    await world.claims.claim(
        Claim("+31855363011", "ann", "ann@contoso.example", "r", 0, assigned=True)
    )
    world.teams_users.set("ann", licensed=False)

    assert await world.process(_assign("ann", "+31855363022", previous="+31855363011")) == (
        Outcome.SKIPPED, Reason.NOT_LICENSED,
    )
    assert world.teams.unassign_calls == []
    assert world.teams.assignments == {"+31855363011": "ann"}


async def test_the_timer_looks_at_a_waiting_user_again_only_after_the_backoff() -> None:
    world = World([_member("ann", "+31855363011"), _member("bob", None, 1)])
    world.teams_users.set("ann", present=False)
    await world.sync()
    await world.drain()
    waiting = _stored(world)
    assert (waiting.outcome, waiting.reason) == (Outcome.SKIPPED, Reason.WAITING_FOR_TEAMS)

    world.now = NOW + timedelta(minutes=13)  # DUE_SLACK: a minute before is due, two is not
    await world.sync(run_id="run-2")
    assert world.queue.sent == []
    assert _stored(world) == waiting  # nothing new recorded either
    assert world.summary.enqueued == 0

    world.now = NOW + timedelta(minutes=15)
    await world.sync(run_id="run-3")
    assert [(m.user_id, m.action) for m in world.queue.sent] == [("ann", "assign")]
    await world.drain()  # still not there: the next look is 30 minutes on
    assert (_stored(world).attempts, _stored(world).retry_at) == (
        2, world.now + timedelta(minutes=30),
    )

    world.teams_users.set("ann", present=True)
    world.now += timedelta(minutes=30)
    await world.sync(run_id="run-4")
    await world.drain()
    done = _stored(world)
    assert (done.outcome, done.reason, done.attempts) == (Outcome.ASSIGNED, Reason.ASSIGNED, 0)
    assert (done.retry_at, done.waiting_since) == (None, None)
    assert world.teams.assignments == {"+31855363011": "ann"}


async def test_an_assignment_that_leaves_enterprise_voice_off_is_ev_not_enabled() -> None:
    world = World([_member("ann", "+31855363011")])
    world.teams_users.assign_enables_ev = False

    assert await world.process(_assign("ann", "+31855363011")) == (
        Outcome.FAILED, Reason.EV_NOT_ENABLED,
    )

    status = _stored(world)
    assert "Set-CsPhoneNumberAssignment -Identity ann -EnterpriseVoiceEnabled $true" in (
        status.message
    )
    assert status.retry_at == world.now + timedelta(minutes=15)  # from the look that saw it
    assert world.teams.assignments == {"+31855363011": "ann"}
    claim = await world.claims.get_claim("+31855363011")
    assert claim is not None
    assert claim.assigned  # the number is on the user: it stays the app's to take back


async def test_a_read_back_without_the_number_waits_and_is_verify_failed_after_its_retries(
) -> None:
    world = World([_member("ann", "+31855363011")])
    world.teams_users.numbers_hidden.add("ann")
    await world.sync()
    await world.drain()
    first = _stored(world)
    assert (first.outcome, first.reason, first.retry_at, first.waiting_since) == (
        Outcome.ASSIGNED, Reason.READ_BACK_PENDING, world.now + timedelta(minutes=15),
        world.now,
    )

    # Read back again after 15, 30 and 60 minutes (the patience: an hour); never written again.
    seen, looked_at = [], world.now
    for minutes, run_id in ((15, "run-2"), (30, "run-3"), (60, "run-4")):
        world.now = looked_at + timedelta(minutes=minutes)
        await world.sync(run_id=run_id)
        await world.drain()
        status = _stored(world)
        seen.append((status.outcome, status.reason, status.retry_at))

    assert seen[:2] == [
        (Outcome.ASSIGNED, Reason.READ_BACK_PENDING, looked_at + timedelta(minutes=30)),
        (Outcome.ASSIGNED, Reason.READ_BACK_PENDING, looked_at + timedelta(minutes=60)),
    ]
    assert seen[2][:2] == (Outcome.FAILED, Reason.VERIFY_FAILED)
    assert "shows no number" in _stored(world).message
    assert len(world.teams.assign_calls) == 1


async def test_a_read_back_that_waited_is_kept_once_teams_shows_the_number() -> None:
    world = World([_member("ann", "+31855363011")])
    world.teams_users.numbers_hidden.add("ann")
    await world.sync()
    await world.drain()
    assert _stored(world).reason is Reason.READ_BACK_PENDING

    world.teams_users.numbers_hidden.clear()  # the configuration caught up
    world.now += timedelta(minutes=15)
    await world.sync(run_id="run-2")
    await world.drain()

    kept = _stored(world)
    assert (kept.outcome, kept.reason, kept.retry_at) == (
        Outcome.KEPT, Reason.ALREADY_ASSIGNED, None,
    )
    assert len(world.teams.assign_calls) == 1


async def test_a_number_found_already_there_is_verified_too() -> None:
    world = World([_member("ann", "+31855363011")], teams={"+31855363011": "ann"})
    recheck = _assign("ann", "+31855363011").model_copy(update={"reason": "already_assigned"})
    assert await world.process(recheck) == (
        Outcome.FAILED, Reason.EV_NOT_ENABLED,  # put there by hand, Enterprise Voice never on
    )
    world.teams_users.set("ann", voice_enabled=True)
    assert await world.process(_in_run(recheck, "run-2")) == (
        Outcome.KEPT, Reason.ALREADY_ASSIGNED,
    )
    assert world.teams.assign_calls == []


async def test_a_failed_read_back_stays_visible_and_is_verified_again_after_the_backoff() -> None:
    world = World([_member("ann", "+31855363011")])
    world.teams_users.assign_enables_ev = False
    await world.sync()
    await world.drain()
    failed = _stored(world)
    assert failed.reason is Reason.EV_NOT_ENABLED

    world.now = NOW + timedelta(minutes=5)
    await world.sync(run_id="run-2")  # the plan keeps the number: not recorded as kept
    assert world.queue.sent == []
    assert _stored(world) == failed

    world.teams_users.set("ann", voice_enabled=True)  # someone ran the PowerShell
    world.now = NOW + timedelta(minutes=15)
    await world.sync(run_id="run-3")
    assert [(m.user_id, m.action, m.number) for m in world.queue.sent] == [
        ("ann", "assign", "+31855363011"),
    ]
    await world.drain()
    kept = _stored(world)
    assert (kept.outcome, kept.reason, kept.attempts, kept.retry_at) == (
        Outcome.KEPT, Reason.ALREADY_ASSIGNED, 0, None,
    )
    assert len(world.teams.assign_calls) == 1


async def test_a_refused_configuration_read_is_recorded_with_the_missing_permission() -> None:
    world = World([_member("ann", "+31855363011")])
    world.teams_users.failure = PermanentError(
        Reason.GRAPH_FORBIDDEN, "grant it TeamsUserConfiguration.Read.All"
    )
    assert await world.process(_assign("ann", "+31855363011")) == (
        Outcome.FAILED, Reason.GRAPH_FORBIDDEN,
    )
    assert "reading it back failed" in _stored(world).message
    assert "TeamsUserConfiguration.Read.All" in _stored(world).message


async def test_a_temporary_failure_reading_the_configuration_is_retried() -> None:
    world = World([_member("ann", "+31855363011")])
    world.teams_users.failure = TemporaryError("throttled", retry_after_seconds=5)
    with pytest.raises(TemporaryError):
        await world.process(_assign("ann", "+31855363011"))
    assert world.statuses.statuses == {}  # nothing recorded: the redelivery reads it back

    world.teams_users.failure = None
    # The first try of this very change put the number there: the status says assigned.
    assert await world.process(_assign("ann", "+31855363011")) == (
        Outcome.ASSIGNED, Reason.ASSIGNED,
    )
    assert len(world.teams.assign_calls) == 1


# -- main-number policies: every context has its policy ports (fakes here) -----------------------

CLI = MainNumberPolicy(policy_type="CallingLineIdentity", name="Contoso Main")
ROUTE = MainNumberPolicy(policy_type="OnlineVoiceRoutingPolicy", name="NL")


def _revoke(user: str) -> AssignmentMessage:
    return AssignmentMessage(
        tenant_id=TENANT.key, run_id="run-1", user_id=user,
        user_principal_name=f"{user}@contoso.example", telephone_number=None,
        read_position=None, action="revoke_policies", reason="left_group",
        number="+31855363010", domain="contoso.example", policies=(CLI, ROUTE),
        idempotency_key=f"run-1|{user}|revoke_policies|contoso.example|cli,route",
    )


async def test_a_policy_revocation_takes_back_only_what_the_app_gave() -> None:
    policies = FakeTeamsPolicies()
    policies.assigned["ann"] = {CLI.policy_type: "cli-1", ROUTE.policy_type: "route-1"}
    grants = FakePolicyGrantStore(TENANT.key)
    await grants.save_grant(PolicyGrant(
        user_id="ann", user_principal_name="ann@contoso.example", domain="contoso.example",
        main_number="+31855363010",
        policies=(GrantedPolicy(CLI.policy_type, CLI.name, "cli-1", assigned_by_app=True),
                  GrantedPolicy(ROUTE.policy_type, ROUTE.name, "route-1", assigned_by_app=False)),
        granted_at=NOW, verified=True,
    ))
    context = fake_context(policies=policies, grants=grants)

    result = await process_assignment(context, _revoke("ann"))

    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.UNASSIGNED, Reason.LEFT_GROUP)
    assert policies.assigned["ann"] == {ROUTE.policy_type: "route-1"}  # not the app's: stays
    assert await grants.get_grant("ann") is None


async def test_a_policy_revocation_without_a_grant_takes_nothing_back_and_is_done() -> None:
    world = World([])

    assert await world.carry_out(_revoke("ann")) is None

    assert world.statuses.statuses == {}
    assert await world.ledger.effect_done(_revoke("ann").idempotency_key)
