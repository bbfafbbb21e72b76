"""The per-message flow as a pure function: the steps it asks for, given what was observed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.assignment_steps import (
    Defer,
    GiveUp,
    MessageLimits,
    RetryLater,
    after_temporary,
    carry_out,
    needs_reread,
)
from shared.core.directory import Claim, Member
from shared.core.errors import OperationPendingError, PermanentError, TemporaryError
from shared.core.messages import AssignmentMessage
from shared.core.outcomes import Outcome, Reason, UserResult
from shared.core.records import OperationState, TeamsNumber, UserStatus
from shared.core.steps import (
    Accepted,
    AssignmentSettled,
    AssignNumber,
    ClaimNumber,
    ClearInFlight,
    EffectDone,
    FindNumber,
    Flow,
    GetClaim,
    IsServed,
    LookAtTeamsUser,
    MarkAssigned,
    MarkAssigning,
    MarkEffectDone,
    Note,
    NoteFound,
    NoteOperationLook,
    Now,
    ReadDirectoryUser,
    ReadOperation,
    ReadStatus,
    ReadTeamsUser,
    RecordStatus,
    ReleaseClaim,
    Step,
    UnassignNumber,
    replay,
)
from shared.core.teams_readiness import TeamsUser
from shared.core.tenant_rules import TenantRules

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
RULES = TenantRules()
NUMBER = "+31201234567"
OLD = "+31201234500"


def _assign(previous: str | None = None, reason: str = "assigned") -> AssignmentMessage:
    return AssignmentMessage(
        tenant_id="t", run_id="run-1", user_id="ann", user_principal_name="ann@contoso.example",
        telephone_number=NUMBER, read_position=0, action="assign", reason=reason,
        number=NUMBER, previous_number=previous, idempotency_key="run-1|ann|assign",
    )


def _unassign() -> AssignmentMessage:
    return AssignmentMessage(
        tenant_id="t", run_id="run-1", user_id="ann", user_principal_name="ann@contoso.example",
        telephone_number=None, read_position=None, action="unassign", reason="left_group",
        previous_number=NUMBER, idempotency_key="run-1|ann|unassign",
    )


def _teams_user(*numbers: str, licensed: bool = True, ev: bool = True) -> TeamsUser:
    return TeamsUser("ann", ev, numbers, licensed_for_phone=licensed)


@dataclass
class World:
    """The smallest world that answers every step: one user, claims by number, Teams numbers."""

    claims: dict[str, Claim] = field(default_factory=dict)
    teams: dict[str, str] = field(default_factory=dict)
    member: Member | None = field(
        default_factory=lambda: Member("ann", "ann@contoso.example", (NUMBER,), True, 0)
    )
    licensed: bool = True
    refuse: PermanentError | None = None
    done: set[str] = field(default_factory=set)
    statuses: dict[str, UserStatus] = field(default_factory=dict)
    performed: list[Step[Any]] = field(default_factory=list)
    looked: list[TeamsUser | None] = field(default_factory=list)
    """What each look at the user's Teams configuration showed, in order."""
    operations: dict[str, OperationState] = field(default_factory=dict)
    """Location → state of each accepted assignment (carried out at once unless ``slow``)."""
    slow: bool = False

    def config(self) -> TeamsUser | None:
        numbers = tuple(n for n, who in self.teams.items() if who == "ann")
        return _teams_user(*numbers, licensed=self.licensed)

    def answer(self, step: Step[Any]) -> object:
        self.performed.append(step)
        if isinstance(step, Now):
            return NOW
        if isinstance(step, Note | NoteFound | RecordStatus | ClearInFlight | NoteOperationLook
                      | AssignmentSettled):
            if isinstance(step, RecordStatus):
                self.statuses[step.status.user_id] = step.status
            return None
        if isinstance(step, EffectDone):
            return step.key in self.done
        if isinstance(step, MarkEffectDone):
            self.done.add(step.key)
            return None
        if isinstance(step, ReadDirectoryUser):
            return self.member
        if isinstance(step, IsServed):
            return True
        if isinstance(step, ClaimNumber):
            return self.claims.setdefault(step.claim.number, step.claim)
        if isinstance(step, GetClaim):
            return self.claims.get(step.number)
        if isinstance(step, MarkAssigning):
            claim = self.claims.get(step.number)
            if claim is None or claim.holder_user_id != step.user_id:
                return False
            self.claims[step.number] = replace(claim, assigning_since=step.since)
            return True
        if isinstance(step, MarkAssigned):
            self.claims[step.number] = replace(self.claims[step.number], assigned=True)
            return True
        if isinstance(step, LookAtTeamsUser | ReadTeamsUser):
            self.looked.append(self.config())
            return self.looked[-1]
        if isinstance(step, ReadStatus):
            return self.statuses.get(step.user_id)
        if isinstance(step, AssignNumber):
            if self.refuse is not None:
                return self.refuse
            location = f"op-{len(self.operations) + 1}"
            if self.slow:
                self.operations[location] = OperationState("running", "")
            else:
                self.teams[step.number] = step.user_id
                self.operations[location] = OperationState("succeeded", "")
            return Accepted(location)
        if isinstance(step, ReadOperation):
            return self.operations[step.location]
        if isinstance(step, FindNumber):
            who = self.teams.get(step.number)
            return TeamsNumber(step.number, who, "active") if who else None
        if isinstance(step, UnassignNumber):
            self.teams.pop(step.number, None)
            return None
        if isinstance(step, ReleaseClaim):
            self.claims.pop(step.number, None)
            return True
        raise AssertionError(f"unexpected step {step}")


def _run(flow: Flow[UserResult | None], answer: Callable[[Step[Any]], object]) -> UserResult | None:
    try:
        step = next(flow)
        while True:
            step = flow.send(answer(step))
    except StopIteration as finished:
        result: UserResult | None = finished.value
        return result


def _carry(
    message: AssignmentMessage, limits: MessageLimits, world: World, *, deliveries: int = 5
) -> UserResult | None:
    """The message and, while it waits on the queue for a Teams operation, its later
    deliveries (as the queue function gets them back), until it ends."""
    for _ in range(deliveries):
        try:
            return _run(carry_out(message, limits), world.answer)
        except OperationPendingError as pending:
            decided = after_temporary(pending, message, final_attempt=False,
                                      defer_beyond_seconds=10)
            assert isinstance(decided, Defer)
            message = decided.message
            limits = replace(limits, reread=False, look_first=False)
    raise AssertionError(f"still waiting after {deliveries} deliveries")


def _kinds(world: World) -> list[str]:
    return [type(step).__name__ for step in world.performed if step.io]


def test_a_new_user_costs_one_assignment_then_one_look_after_the_wait() -> None:
    world = World()
    result = _carry(_assign(), MessageLimits(RULES, reread=False), world)
    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.ASSIGNED, Reason.ASSIGNED)
    assert _kinds(world) == [
        "EffectDone", "ClaimNumber", "MarkAssigning", "AssignNumber",  # then it waits
        "EffectDone", "ClaimNumber", "LookAtTeamsUser", "NoteOperationLook", "MarkAssigned",
        "NoteFound", "RecordStatus", "MarkEffectDone", "ClearInFlight",
    ]
    assert world.claims[NUMBER].assigned


def test_the_intent_is_recorded_before_teams_is_asked() -> None:
    flow = carry_out(_assign(), MessageLimits(RULES, reread=False))
    claim = Claim(NUMBER, "ann", "ann@contoso.example", "run-1", 0)
    step = replay(flow, [False, claim, NOW])
    assert step == MarkAssigning(NUMBER, "ann", NOW)
    step = replay(carry_out(_assign(), MessageLimits(RULES, reread=False)),
                  [False, claim, NOW, True])
    assert step == AssignNumber(NUMBER, "ann")


def test_a_redelivery_finds_the_number_and_writes_nothing_to_teams() -> None:
    world = World(teams={NUMBER: "ann"}, claims={NUMBER: Claim(
        NUMBER, "ann", "ann@contoso.example", "run-1", 0, assigning_since=NOW,
    )})
    result = _carry(_assign(), MessageLimits(RULES, look_first=True), world)
    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.ASSIGNED, Reason.ASSIGNED)
    assert not [s for s in world.performed if isinstance(s, AssignNumber)]


def test_a_completed_message_ends_at_once() -> None:
    world = World(done={"run-1|ann|assign"})
    assert _carry(_assign(), MessageLimits(RULES), world) is None
    assert _kinds(world) == ["EffectDone", "ClearInFlight"]


def test_a_number_claimed_by_someone_else_is_a_duplicate_and_not_written() -> None:
    world = World(claims={NUMBER: Claim(NUMBER, "bob", "bob@contoso.example", "run-0", 0)})
    result = _carry(_assign(), MessageLimits(RULES, reread=False), world)
    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.SKIPPED, Reason.DUPLICATE)
    assert "bob@contoso.example" in result.message
    assert not [s for s in world.performed if s.writes and not isinstance(
        s, ClaimNumber | RecordStatus | MarkEffectDone | ClearInFlight)]


def test_a_user_teams_does_not_know_waits_and_the_intent_is_withdrawn() -> None:
    world = World(licensed=False, refuse=PermanentError(Reason.NOT_LICENSED, "no licence"))
    result = _carry(_assign(), MessageLimits(RULES, reread=False), world)
    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.SKIPPED, Reason.NOT_LICENSED)
    assert result.retry_at is not None
    assert result.retry_at > NOW
    assert world.claims[NUMBER].assigning_since is None


def test_a_refusal_for_a_user_teams_now_shows_ready_is_retried() -> None:
    world = World(refuse=PermanentError(Reason.USER_NOT_FOUND, "unknown"))
    with pytest.raises(TemporaryError, match="now shows the user ready"):
        _carry(_assign(), MessageLimits(RULES, reread=False), world)


def test_a_stale_message_for_a_changed_user_is_skipped_without_a_claim() -> None:
    world = World(member=Member("ann", "ann@contoso.example", ("+31209999999",), True, 0))
    result = _carry(_assign(), MessageLimits(RULES, reread=True), world)
    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.SKIPPED, Reason.STALE)
    assert not [s for s in world.performed if isinstance(s, ClaimNumber)]


def test_a_new_number_takes_back_the_old_one_the_app_gave() -> None:
    world = World(teams={OLD: "ann"}, claims={OLD: Claim(
        OLD, "ann", "ann@contoso.example", "run-0", 0, assigned=True,
    )})
    result = _carry(_assign(previous=OLD), MessageLimits(RULES, reread=False), world)
    assert result is not None
    assert result.outcome is Outcome.ASSIGNED
    assert OLD not in world.teams
    assert OLD not in world.claims
    assert UnassignNumber(OLD) in world.performed


def test_an_unassign_without_the_ownership_marker_writes_nothing() -> None:
    world = World(teams={NUMBER: "ann"}, claims={NUMBER: Claim(
        NUMBER, "ann", "ann@contoso.example", "run-0", 0, assigned=False,
    )})
    result = _carry(_unassign(), MessageLimits(RULES), world)
    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.SKIPPED, Reason.STALE)
    assert world.teams == {NUMBER: "ann"}


class NumberListBlind(World):
    """Teams' number list has no record of any number; the user's configuration still does
    (a list answer the app misread, or one Teams has not caught up with)."""

    def answer(self, step: Step[Any]) -> object:
        if isinstance(step, FindNumber):
            self.performed.append(step)
            return None
        return super().answer(step)


def _held_by_ann() -> dict[str, Claim]:
    return {NUMBER: Claim(NUMBER, "ann", "ann@contoso.example", "run-0", 0, assigned=True)}


def test_no_record_in_the_number_list_is_checked_on_the_user_before_letting_go() -> None:
    world = NumberListBlind(teams={NUMBER: "ann"}, claims=_held_by_ann())

    result = _carry(_unassign(), MessageLimits(RULES), world)

    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.UNASSIGNED, Reason.LEFT_GROUP)
    assert _kinds(world)[:5] == [
        "EffectDone", "GetClaim", "FindNumber", "ReadTeamsUser", "UnassignNumber",
    ]
    assert NUMBER not in world.teams  # taken back, not forgotten on the user
    assert NUMBER not in world.claims


def test_no_record_anywhere_lets_go_without_a_write() -> None:
    world = NumberListBlind(claims=_held_by_ann())

    result = _carry(_unassign(), MessageLimits(RULES), world)

    assert result is not None
    assert result.outcome is Outcome.UNASSIGNED
    assert "ReadTeamsUser" in _kinds(world)
    assert not [step for step in world.performed if isinstance(step, UnassignNumber)]
    assert NUMBER not in world.claims


def test_no_record_and_an_unreadable_configuration_keeps_the_claim() -> None:
    world = NumberListBlind(teams={NUMBER: "ann"}, claims=_held_by_ann())
    refusal = PermanentError(Reason.GRAPH_FORBIDDEN, "grant TeamsUserConfiguration.Read.All")

    def answer(step: Step[Any]) -> object:
        return refusal if isinstance(step, ReadTeamsUser) else world.answer(step)

    with pytest.raises(TemporaryError, match=r"TeamsUserConfiguration\.Read\.All"):
        _run(carry_out(_unassign(), MessageLimits(RULES)), answer)
    assert world.claims[NUMBER].assigned
    assert world.teams == {NUMBER: "ann"}


def test_a_step_answered_with_the_wrong_type_names_the_step() -> None:
    with pytest.raises(TypeError, match="ClaimNumber was answered with str"):
        replay(carry_out(_assign(), MessageLimits(RULES, reread=False)), [False, "a claim"])


def test_a_finished_flow_replays_to_its_result() -> None:
    assert replay(carry_out(_assign(), MessageLimits(RULES)), [True, None, None]) == (None,)


def test_a_young_plan_is_acted_on_without_reading_the_user_again() -> None:
    young = _assign().model_copy(update={"read_at": NOW - timedelta(seconds=30)})
    assert not needs_reread(young, NOW, timedelta(minutes=2), redelivered=False)
    assert needs_reread(young, NOW, timedelta(minutes=2), redelivered=True)
    assert needs_reread(young, NOW + timedelta(minutes=3), timedelta(minutes=2),
                        redelivered=False)
    assert needs_reread(_assign(), NOW, timedelta(minutes=2), redelivered=False)


def test_a_message_back_from_waiting_for_teams_only_looks_and_reads_nobody_again() -> None:
    waited = _assign().model_copy(update={"deferrals": 1, "operation_location": "ops/1"})
    assert not needs_reread(waited, NOW, timedelta(minutes=2), redelivered=False)
    assert needs_reread(waited, NOW, timedelta(minutes=2), redelivered=True)  # a crash: re-check


def test_a_running_teams_operation_waits_on_the_queue() -> None:
    pending = OperationPendingError("running", location="ops/1", retry_after_seconds=12)
    decided = after_temporary(pending, _assign(), final_attempt=False, defer_beyond_seconds=10)
    assert isinstance(decided, Defer)
    assert decided.delay_seconds == 12
    assert (decided.message.deferrals, decided.message.operation_location) == (1, "ops/1")


def test_a_message_deferred_too_often_is_given_up_and_done() -> None:
    tired = _assign().model_copy(update={"deferrals": 24})
    pending = OperationPendingError("running", location="ops/1", retry_after_seconds=12)
    decided = after_temporary(pending, tired, final_attempt=False, defer_beyond_seconds=10)
    assert isinstance(decided, GiveUp)
    assert decided.done
    assert decided.result.reason is Reason.ASSIGNMENT_FAILED


def test_a_short_throttle_is_the_hosts_retry_until_the_last_try() -> None:
    throttled = TemporaryError("429", retry_after_seconds=2)
    assert isinstance(after_temporary(throttled, _assign(), final_attempt=False,
                                      defer_beyond_seconds=10), RetryLater)
    last = after_temporary(throttled, _assign(), final_attempt=True, defer_beyond_seconds=10)
    assert isinstance(last, GiveUp)
    assert not last.done


# --- properties over many worlds ----------------------------------------------------------------

_claims = st.one_of(
    st.none(),
    st.builds(
        lambda holder, assigned, intent, released: Claim(
            NUMBER, holder, f"{holder}@contoso.example", "run-0", 0, assigned=assigned,
            assigning_since=NOW if intent else None,
            released_at=NOW if released else None,
        ),
        st.sampled_from(["ann", "bob"]), st.booleans(), st.booleans(), st.booleans(),
    ),
)
_refusals = st.one_of(st.none(), st.sampled_from([
    PermanentError(Reason.USER_NOT_FOUND, "unknown"),
    PermanentError(Reason.NOT_LICENSED, "no licence"),
    PermanentError(Reason.ASSIGNED_ELSEWHERE, "taken"),
    PermanentError(Reason.NOT_IN_INVENTORY, "not ours"),
]))


@settings(max_examples=300, deadline=None)
@given(
    claim=_claims, on_ann=st.booleans(), on_bob=st.booleans(), licensed=st.booleans(),
    refuse=_refusals, look_first=st.booleans(), reread=st.booleans(),
    action=st.sampled_from(["assign", "unassign"]),
)
def test_no_teams_write_without_its_marker(
    claim: Claim | None, on_ann: bool, on_bob: bool, licensed: bool,
    refuse: PermanentError | None, look_first: bool, reread: bool, action: str,
) -> None:
    """Whatever the world: an assignment is sent only with the intent recorded and never for a
    number Teams was just seen to have on the user; a number is taken back only from its holder
    and only with the app's ownership marker."""
    teams = {NUMBER: "ann"} if on_ann else ({NUMBER: "bob"} if on_bob else {})
    world = World(claims={NUMBER: claim} if claim else {}, teams=dict(teams),
                  licensed=licensed, refuse=refuse)
    message = _assign() if action == "assign" else _unassign()
    with contextlib.suppress(TemporaryError):
        _carry(message, MessageLimits(RULES, reread=reread, look_first=look_first), world)
    intent_recorded = False
    seen_with_number = False
    looks = iter(world.looked)
    for step in world.performed:
        if isinstance(step, MarkAssigning):
            intent_recorded = step.since is not None
        if isinstance(step, LookAtTeamsUser | ReadTeamsUser):
            seen = next(looks)
            seen_with_number = seen is not None and seen.has_number(NUMBER)
        if isinstance(step, AssignNumber):
            assert intent_recorded, world.performed
            assert not seen_with_number, world.performed
        if isinstance(step, UnassignNumber):
            assert claim is not None
            assert claim.holder_user_id == "ann"
            assert claim.held


def test_a_refusal_nobody_can_name_is_failed_with_its_text_and_tried_again_after_a_backoff(
) -> None:
    text = "Teams refused the assignment (Graph answered 400 BadRequest: Declined, ref 4821)"
    stored = UserStatus(
        user_id="ann", user_principal_name="ann@contoso.example", outcome=Outcome.FAILED,
        reason=Reason.ASSIGNMENT_FAILED, number=NUMBER, message=text, run_id="run-0",
        read_position=0, updated_at=NOW, attempts=2,
    )
    world = World(refuse=PermanentError(Reason.ASSIGNMENT_FAILED, text),
                  statuses={"ann": stored})

    result = _carry(_assign(), MessageLimits(RULES, reread=False), world)

    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.FAILED, Reason.ASSIGNMENT_FAILED)
    assert result.message == f"{text} The app tries again after a backoff."
    assert result.retry_at == NOW + timedelta(hours=1)  # 15 min doubled per earlier attempt
    assert world.claims[NUMBER].assigning_since is None


def test_a_known_permanent_refusal_is_not_looked_at_again_on_a_timer() -> None:
    world = World(refuse=PermanentError(Reason.NOT_IN_INVENTORY, "not in the inventory"))

    result = _carry(_assign(), MessageLimits(RULES, reread=False), world)

    assert result is not None
    assert (result.reason, result.retry_at) == (Reason.NOT_IN_INVENTORY, None)


def test_already_assigned_to_this_user_is_kept_when_only_the_configuration_shows_it() -> None:
    # An earlier try's answer was lost and its repeat refused; Teams' number list lags behind.
    world = World(teams={NUMBER: "ann"}, refuse=PermanentError(
        Reason.ASSIGNED_ELSEWHERE, f"Telephone Number '{NUMBER}' is already assigned to this user",
    ))

    def answer(step: Step[Any]) -> object:
        if isinstance(step, FindNumber):
            world.performed.append(step)
            return None
        return world.answer(step)

    result = _run(carry_out(_assign(), MessageLimits(RULES, reread=False)), answer)

    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.KEPT, Reason.ALREADY_ASSIGNED)
    assert world.claims[NUMBER].assigned
    assert not [s for s in world.performed if isinstance(s, UnassignNumber)]
    assert len(world.looked) == 1, "the look that found it doubles as the read-back"


def test_a_number_teams_lists_on_someone_else_is_assigned_elsewhere_without_a_second_look(
) -> None:
    world = World(teams={NUMBER: "bob"}, refuse=PermanentError(
        Reason.ASSIGNED_ELSEWHERE, "has already been assigned to another user",
    ))

    result = _carry(_assign(), MessageLimits(RULES, reread=False), world)

    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.FAILED, Reason.ASSIGNED_ELSEWHERE)
    assert not [s for s in world.performed if isinstance(s, LookAtTeamsUser)]
