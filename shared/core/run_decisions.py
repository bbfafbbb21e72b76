"""What the timer run does after ``plan()``, as pure functions: the plan and what is stored →
every write the run makes (pure: no I/O, no clock).

``decide_run`` is the one entry point: given the plan and what the run read (claims, Teams'
numbers, statuses, in-flight markers, policy grants, pending holds), it returns a frozen
``RunActions`` holding every write in the order the shell makes them, and the counts its log
line and summary report. The small functions it is built from are public so that each rule can
be tested (and read) on its own:

* which users are left alone this run (``look_later``, ``verify_again``, in-flight markers);
* the ownership and grace bookkeeping on claims (``claims_with_adopted``, ``grace_changes``,
  ``claims_for_winners``) and the mass-unassign guard's holds (``hold_changes``);
* the statuses of decisions without Teams work (``unchanged_statuses``, ``policy_statuses``),
  recorded only when ``shared.core.recording.status_news`` says they are news;
* the queue messages (``number_message``, ``policy_message``) and their in-flight markers
  (``in_flight_markers``);
* how a run ended (``run_outcome``, ``failure_reason``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from shared.core.directory import Claim, adopted_by_intent
from shared.core.errors import PermanentError, TemporaryError
from shared.core.messages import POLICY_ACTIONS, AssignmentMessage
from shared.core.outcomes import (
    RETRY_REASONS,
    VERIFY_REASONS,
    WAITING_REASONS,
    Action,
    Outcome,
    Reason,
)
from shared.core.planner import Decision, Plan
from shared.core.policy_planner import PolicyAction, PolicyDecision, PolicyGrant, plan_policies
from shared.core.recording import status_news
from shared.core.records import Hold, InFlight, UserStatus
from shared.core.tenant_rules import TenantRules

#: In-flight marker kinds: a user can have a number change and a policy change queued at once.
NUMBER_CHANGE = "number"
POLICY_CHANGE = "policies"
#: How long a queued change keeps its user from being enqueued again. Longer than a large
#: onboarding's queue (10,000 users drain in ~20 minutes at Teams' pace) and the host's retries;
#: a message lost for good is planned again after this.
IN_FLIGHT_TTL = timedelta(hours=1)

RUN_COMPLETED = "completed"
RUN_HELD_EMPTY_GROUP = "held_empty_group"

#: What a decision that needs no Teams write means once recorded.
RECORDED_OUTCOMES: Mapping[Action, Outcome] = {
    Action.KEEP: Outcome.KEPT, Action.SKIP: Outcome.SKIPPED, Action.HOLD: Outcome.HELD,
}


# -- how a run ended ------------------------------------------------------------------------


def run_outcome(decided: Plan) -> tuple[str, str]:
    """How a run that planned ``decided`` ended, as recorded in its run record: ``completed``
    with no message, or ``held_empty_group`` with what was held."""
    held = sum(1 for d in decided.decisions if d.reason is Reason.EMPTY_MEMBER_LIST)
    if decided.decisions and not held:
        return RUN_COMPLETED, ""
    if not decided.decisions:
        # Nobody in the group and nobody to hold: still not a state a customer would choose.
        return RUN_HELD_EMPTY_GROUP, (
            "The voice group read back empty; nothing was assigned or taken back. Check the "
            "group (VOICE_GROUP_ID) and the app's permission to read its members."
        )
    return RUN_HELD_EMPTY_GROUP, (
        f"The voice group read back empty; {held} number(s) the app gave are held, not taken "
        "back, because an empty group is far more likely an outage than a company without "
        "phones. Check the group (VOICE_GROUP_ID) and the app's permission to read it."
    )


def failure_reason(error: BaseException) -> str:
    """What a failed run's record and alert say: the reason code and the failure."""
    if isinstance(error, PermanentError):
        return f"{error.reason.value}: {error.message}"
    if isinstance(error, TemporaryError):
        return f"temporary failure (the next run tries again): {error.message}"
    return f"{type(error).__name__}: {error}"


# -- who is left alone this run -------------------------------------------------------------


def failed_read_back(decision: Decision, status: UserStatus) -> bool:
    """Whether the plan keeps the very number whose read-back failed last time (the number is
    on the user, but Teams did not show it usable)."""
    return (
        decision.action is Action.KEEP and status.reason in VERIFY_REASONS
        and status.number == decision.number
    )


DUE_SLACK = timedelta(minutes=1)
"""A retry time this close ahead counts as due now. The timer ticks on the schedule and the queue
function sets a retry time a few seconds into a tick: the tick one backoff later starts a few
seconds before it, and without the slack every look would come one tick (5 minutes) late."""


def is_due(retry_at: datetime | None, now: datetime) -> bool:
    """Whether a stored retry time has come (none: at once), with ``DUE_SLACK``."""
    return retry_at is None or retry_at <= now + DUE_SLACK


def look_later(decision: Decision, status: UserStatus | None, now: datetime) -> bool:
    """Whether the user's stored status says not to look at them before its retry time: an
    assignment Teams was not ready for, the same number refused for a reason nobody could name,
    or a number whose read-back failed or waits for Teams' views to show it. Such a user is
    neither enqueued nor recorded this run.

    A number the app just assigned may be missing from a later run's numberAssignments list
    (eventually consistent, like the configuration): planned as an assign again, it waits for
    its read-back's retry time like a kept one."""
    if status is None or is_due(status.retry_at, now):
        return False
    if decision.action is Action.ASSIGN:
        return status.reason in WAITING_REASONS or (
            status.reason in {Reason.READ_BACK_PENDING, *RETRY_REASONS}
            and status.number == decision.number
        )
    return failed_read_back(decision, status)


def verify_again(decision: Decision, status: UserStatus | None, now: datetime) -> bool:
    """Whether a number Teams has on the user failed its read-back and is due to be checked
    again (by the queue function, which records kept once it reads back fine)."""
    return (
        status is not None and failed_read_back(decision, status)
        and is_due(status.retry_at, now)
    )


def users_in_flight(markers: Iterable[InFlight], kind: str) -> frozenset[str]:
    """The users with a change of ``kind`` still queued (the markers as the store lists them,
    expired ones already left out)."""
    return frozenset(marker.user_id for marker in markers if marker.kind == kind)


@dataclass(frozen=True, slots=True)
class NumberSorting:
    """The plan's decisions sorted by what the run does with them."""

    work: tuple[Decision, ...]
    """Enqueued, in this order: ``Plan.work()`` (releases first), then the re-checks."""
    unchanged: tuple[Decision, ...]
    """Recorded when news (keep/skip/hold; assigns and unassigns have no status to record)."""
    looked_at_later: int
    """Decisions left alone until their retry time."""
    still_queued: int
    """Decisions of users whose number change is still queued."""


def sort_decisions(
    decided: Plan, existing: Mapping[str, UserStatus], busy: Collection[str], now: datetime
) -> NumberSorting:
    """Sort the plan into work to enqueue and decisions to record.

    Users Teams was not ready for, or whose read-back failed, are looked at again only once
    their retry time has passed; until then nothing is enqueued or recorded for them. A user in
    ``busy`` (their number change is still queued) is left to it: enqueued again, the change
    would be carried out twice and its outcome recorded as "kept".
    """
    later = [d for d in decided.decisions if look_later(d, existing.get(d.user_id), now)]
    queued = [d for d in decided.decisions if d.user_id in busy]
    recheck = tuple(
        d for d in decided.decisions
        if verify_again(d, existing.get(d.user_id), now) and d.user_id not in busy
    )

    def set_aside(decision: Decision) -> bool:
        return decision.user_id in busy or look_later(
            decision, existing.get(decision.user_id), now
        )

    return NumberSorting(
        work=tuple(d for d in decided.work() if not set_aside(d)) + recheck,
        unchanged=tuple(
            d for d in decided.decisions
            if not set_aside(d) and not verify_again(d, existing.get(d.user_id), now)
        ),
        looked_at_later=len(later),
        still_queued=len(queued),
    )


# -- claims, grace and holds ----------------------------------------------------------------


def claims_with_adopted(
    stored: Mapping[str, Claim], teams: Mapping[str, str]
) -> tuple[tuple[Claim, ...], dict[str, Claim]]:
    """The claims adopted by intent (as stored), and the claims to plan on: the stored ones
    with those marked assigned.

    A number Teams has on its holder after the app set out to assign it is the app's, even when
    the answer to that write was lost: marked now, it is planned (and later taken back) as the
    app's. The shell plans on the second value; the run marks the first ones assigned.
    """
    adopted = tuple(adopted_by_intent(stored, teams))
    return adopted, {**stored, **{c.number: replace(c, assigned=True) for c in adopted}}


@dataclass(frozen=True, slots=True)
class GraceChange:
    """Start (``since`` set) or cancel (``since`` None) the grace period of a number the app
    holds: ``ClaimStore.set_release_pending(number, holder_user_id, since)``."""

    number: str
    holder_user_id: str
    since: datetime | None


def grace_changes(
    decisions: Sequence[Decision], claims: Mapping[str, Claim], now: datetime
) -> tuple[GraceChange, ...]:
    """Start the grace period of numbers a run first wants back; cancel it for users who came
    back (or whose number came back) before it ended. In the order of ``claims``."""
    pending = {
        d.previous_number for d in decisions
        if d.previous_number and (
            d.reason is Reason.GRACE_PERIOD or d.action is Action.UNASSIGN
            or (d.action is Action.HOLD and d.reason is Reason.MASS_UNASSIGN_GUARD)
        )
    }
    changes = []
    for number, claim in claims.items():
        if not claim.held:
            continue
        if number in pending and claim.release_pending_since is None:
            changes.append(GraceChange(number, claim.holder_user_id, now))
        elif number not in pending and claim.release_pending_since is not None:
            changes.append(GraceChange(number, claim.holder_user_id, None))
    return tuple(changes)


@dataclass(frozen=True, slots=True)
class HoldChanges:
    """The mass-unassign guard's holds: earlier ones to drop, this run's to save."""

    dropped: tuple[Hold, ...] = ()
    """Pending holds no decision of this run wants any more, updated to ``dropped``."""
    saved: tuple[Hold, ...] = ()
    """This run's guard holds, pending until someone approves."""


def hold_changes(
    decisions: Sequence[Decision], pending: Iterable[Hold], run_id: str, now: datetime
) -> HoldChanges:
    """Keep this run's guard holds for approval; drop earlier ones no run wants any more (a hold
    this run makes again is kept as it is, so its approval still applies)."""
    held = [d for d in decisions if d.reason is Reason.MASS_UNASSIGN_GUARD and d.previous_number]
    wanted = {(d.user_id, d.previous_number) for d in held}
    return HoldChanges(
        dropped=tuple(
            replace(hold, status="dropped", decided_by=f"sync run {run_id}", decided_at=now)
            for hold in pending if (hold.user_id, hold.number) not in wanted
        ),
        saved=tuple(
            Hold(run_id, d.user_id, d.user_principal_name, d.previous_number or "",
                 d.reason.value, d.message, "pending", now)
            for d in held
        ),
    )


@dataclass(frozen=True, slots=True)
class Transfer:
    """A stale claim moving to the member the plan gave the number:
    ``ClaimStore.transfer(from_user_id, claim)``."""

    from_user_id: str
    claim: Claim


@dataclass(frozen=True, slots=True)
class WinnerClaims:
    """Claims for the members the plan gave a number to."""

    created: tuple[Claim, ...] = ()
    """Numbers nobody claimed yet (``ClaimStore.claim_all``, in plan order)."""
    transfers: tuple[Transfer, ...] = ()
    """Numbers claimed by someone else (the store moves only a stale claim)."""


def claims_for_winners(
    decisions: Sequence[Decision], claims: Mapping[str, Claim], run_id: str
) -> WinnerClaims:
    """Claim each number for the member the plan gave it to, before any message is processed.

    Queue messages run concurrently and in any order, so read order is settled here: a later
    reader's message then finds the number claimed. A stale claim (its holder no longer carries
    the number and never had it assigned) moves to the winner.
    """
    created: list[Claim] = []
    transfers: list[Transfer] = []
    for decision in decisions:
        if decision.action not in {Action.ASSIGN, Action.KEEP} or decision.number is None:
            continue
        wanted = Claim(
            number=decision.number,
            holder_user_id=decision.user_id,
            holder_upn=decision.user_principal_name,
            run_id=run_id,
            read_position=decision.read_position or 0,
        )
        current = claims.get(decision.number)
        if current is None:
            created.append(wanted)
        elif current.holder_user_id != decision.user_id:
            transfers.append(Transfer(current.holder_user_id, wanted))
    return WinnerClaims(tuple(created), tuple(transfers))


# -- statuses -------------------------------------------------------------------------------


def decision_status(
    decision: Decision, outcome: Outcome, run_id: str, now: datetime
) -> UserStatus:
    """The status a decision without Teams work leaves (its number, else the one it takes
    back, else what the directory says)."""
    return UserStatus(
        user_id=decision.user_id,
        user_principal_name=decision.user_principal_name,
        outcome=outcome,
        reason=decision.reason,
        number=decision.number or decision.previous_number or decision.raw_number,
        message=decision.message,
        run_id=run_id,
        read_position=decision.read_position if decision.read_position is not None else -1,
        updated_at=now,
    )


@dataclass(frozen=True, slots=True)
class StatusWrites:
    """Statuses to write: ``first`` for users without a stored row (``record_first``, one
    batch), ``changed`` for users whose stored row says something else (``record``)."""

    first: tuple[UserStatus, ...] = ()
    changed: tuple[UserStatus, ...] = ()


def unchanged_statuses(
    decisions: Iterable[Decision], existing: Mapping[str, UserStatus], run_id: str, now: datetime
) -> StatusWrites:
    """Record keep/skip/hold decisions, skipping users whose stored status says the same
    (``status_news``); assigns and unassigns are recorded by the queue function."""
    first: list[UserStatus] = []
    changed: list[UserStatus] = []
    for decision in decisions:
        outcome = RECORDED_OUTCOMES.get(decision.action)
        if outcome is None:
            continue
        status = decision_status(decision, outcome, run_id, now)
        before = existing.get(decision.user_id)
        if before is None:
            first.append(status)
        elif status_news(before, status):
            changed.append(status)
    return StatusWrites(tuple(first), tuple(changed))


# -- messages and in-flight markers ---------------------------------------------------------


def number_message(
    tenant_id: str, run_id: str, decision: Decision, read_at: datetime | None
) -> AssignmentMessage:
    """The queue message of an assign, unassign or re-check; ``read_at`` is when Graph was read
    for this user in this run (None: the plan used the stored snapshot)."""
    # A kept number is enqueued only to verify it again: the assign path finds it in Teams.
    action: Literal["assign", "unassign"] = (
        "assign" if decision.action in {Action.ASSIGN, Action.KEEP} else "unassign"
    )
    return AssignmentMessage(
        idempotency_key=f"{run_id}|{decision.user_id}|{action}|"
                        f"{decision.number or decision.previous_number}",
        tenant_id=tenant_id,
        run_id=run_id,
        user_id=decision.user_id,
        user_principal_name=decision.user_principal_name,
        telephone_number=decision.raw_number,
        read_position=decision.read_position,
        action=action,
        reason=decision.reason.value,
        number=decision.number,
        previous_number=decision.previous_number,
        read_at=read_at,
    )


def policy_message(tenant_id: str, run_id: str, decision: PolicyDecision) -> AssignmentMessage:
    """The queue message of a policy grant or revocation (its key names the policy types)."""
    action: Literal["grant_policies", "revoke_policies"] = (
        "grant_policies" if decision.action is PolicyAction.GRANT else "revoke_policies"
    )
    types = ",".join(policy.policy_type for policy in decision.policies)
    return AssignmentMessage(
        idempotency_key=f"{run_id}|{decision.user_id}|{action}|{decision.domain}|{types}",
        tenant_id=tenant_id,
        run_id=run_id,
        user_id=decision.user_id,
        user_principal_name=decision.user_principal_name,
        telephone_number=decision.raw_number,
        read_position=decision.read_position,
        action=action,
        reason=decision.reason.value,
        number=decision.main_number,
        domain=decision.domain,
        policies=decision.policies,
    )


def change_kind(message: AssignmentMessage) -> str:
    """The in-flight marker kind of a message."""
    return POLICY_CHANGE if message.action in POLICY_ACTIONS else NUMBER_CHANGE


def in_flight_markers(
    messages: Iterable[AssignmentMessage], now: datetime
) -> tuple[InFlight, ...]:
    """One marker per message, written before the messages are sent so that no later run can
    slip in between; each keeps its user from being enqueued again for ``IN_FLIGHT_TTL``."""
    return tuple(
        InFlight(m.user_id, change_kind(m), m.idempotency_key, now, now + IN_FLIGHT_TTL)
        for m in messages
    )


# -- main-number policies -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyRun:
    """What the run decided about main-number policies."""

    decisions: tuple[PolicyDecision, ...] = ()
    messages: tuple[AssignmentMessage, ...] = ()
    status_owned: frozenset[str] = frozenset()
    """Users whose status the policy flow records (the number plan's is not recorded)."""
    held: tuple[PolicyDecision, ...] = ()
    """Revocations held by a guard, users with a queued policy change included (the shell logs
    them as an error)."""

    def without(self, users: Iterable[str]) -> PolicyRun:
        """The run less the decisions and messages of ``users`` (their policy change is still
        queued: it carries itself out and records them); their statuses stay this flow's."""
        left_out = set(users)
        if not left_out:
            return self
        return PolicyRun(
            tuple(d for d in self.decisions if d.user_id not in left_out),
            tuple(m for m in self.messages if m.user_id not in left_out),
            self.status_owned,
            self.held,
        )

    def summary(self) -> dict[str, int]:
        """Counts by policy action."""
        counts: dict[str, int] = {}
        for decision in self.decisions:
            counts[decision.action.value] = counts.get(decision.action.value, 0) + 1
        return dict(sorted(counts.items()))


def policy_look_later(existing: Mapping[str, UserStatus], now: datetime) -> frozenset[str]:
    """Users whose stored status (of any kind) asks not to be looked at before its retry time:
    their policies wait too."""
    return frozenset(
        user_id for user_id, status in existing.items()
        if not is_due(status.retry_at, now)
    )


def policy_status_owners(
    decisions: Iterable[PolicyDecision], decided: Plan
) -> frozenset[str]:
    """Users whose status the policy flow records: those granted or keeping the policies, and
    those waiting for them whose number decision is a plain skip (the main number)."""
    number_actions = {d.user_id: d.action for d in decided.decisions}
    return frozenset(
        d.user_id for d in decisions
        if d.action in {PolicyAction.GRANT, PolicyAction.KEEP}
        or (d.action is PolicyAction.WAIT and number_actions.get(d.user_id) is Action.SKIP)
    )


def plan_policy_run(inputs: RunInputs) -> PolicyRun:
    """Plan the run's main-number policies and build the queue messages for the work; nothing
    without a grant store, or without grants and configured policies."""
    if inputs.grants is None or (not inputs.grants and not inputs.rules.main_number_policies):
        return PolicyRun()
    decisions = plan_policies(
        inputs.decided, inputs.rules, inputs.grants,
        look_later=policy_look_later(inputs.statuses, inputs.now),
    )
    return PolicyRun(
        decisions,
        tuple(
            policy_message(inputs.tenant_id, inputs.run_id, d) for d in decisions
            if d.action in {PolicyAction.GRANT, PolicyAction.REVOKE}
        ),
        policy_status_owners(decisions, inputs.decided),
        tuple(d for d in decisions if d.action is PolicyAction.HOLD),
    )


def policy_statuses(
    run: PolicyRun, existing: Mapping[str, UserStatus], run_id: str, now: datetime
) -> tuple[UserStatus, ...]:
    """Record ``keep`` for main-number users, and held revocations of former members, when the
    stored status says something else (``status_news``; a user without a row is news)."""
    statuses = []
    for decision in run.decisions:
        if decision.action is PolicyAction.KEEP:
            outcome = Outcome.KEPT
        elif decision.action is PolicyAction.HOLD and decision.read_position is None:
            outcome = Outcome.HELD
        else:
            continue
        status = UserStatus(
            user_id=decision.user_id, user_principal_name=decision.user_principal_name,
            outcome=outcome, reason=decision.reason, number=decision.main_number,
            message=decision.message, run_id=run_id,
            read_position=decision.read_position if decision.read_position is not None else -1,
            updated_at=now,
        )
        if status_news(existing.get(decision.user_id), status):
            statuses.append(status)
    return tuple(statuses)


# -- the run --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunInputs:
    """Everything the run decides on after planning, as read at its start."""

    tenant_id: str
    run_id: str
    decided: Plan
    """The plan, made on ``claims_with_adopted(claims, teams)[1]``."""
    rules: TenantRules
    now: datetime
    """The time the plan was made for (grace, holds, markers and statuses are stamped with it)."""
    claims: Mapping[str, Claim] = field(default_factory=dict)
    """Number → claim, as stored (before adoption by intent: the run adopts)."""
    teams: Mapping[str, str] = field(default_factory=dict)
    """Number → the Teams target that has it."""
    statuses: Mapping[str, UserStatus] = field(default_factory=dict)
    """User id → stored status."""
    in_flight: Sequence[InFlight] = ()
    """The in-flight markers the store listed (expired ones already left out)."""
    grants: Mapping[str, PolicyGrant] | None = None
    """User id → stored policy grant; None when the run has no grant store (no policy flow)."""
    pending_holds: Sequence[Hold] = ()
    """The guard holds still pending, as the ledger lists them."""
    read_now: Collection[str] = frozenset()
    """Users read from Graph in this run (not from the stored snapshot)."""
    read_at: datetime | None = None
    """When the users in ``read_now`` were read (a message for them carries it)."""


@dataclass(frozen=True, slots=True)
class RunActions:
    """Every write of one run, in the order the shell makes them, and what it reports."""

    adopted: tuple[Claim, ...] = ()
    """1. Claims to mark assigned (``mark_assigned(number, holder_user_id)``)."""
    grace: tuple[GraceChange, ...] = ()
    """2. Grace periods to start or cancel."""
    holds_to_drop: tuple[Hold, ...] = ()
    """3. Pending guard holds no longer wanted (``update_hold``)."""
    holds_to_save: tuple[Hold, ...] = ()
    """4. This run's guard holds (``save_holds``; the shell logs their count as an error)."""
    claims_to_create: tuple[Claim, ...] = ()
    """5. ``claim_all``."""
    transfers: tuple[Transfer, ...] = ()
    """6. ``transfer`` (alongside 5)."""
    statuses_first: tuple[UserStatus, ...] = ()
    """7. ``record_first``: number-flow statuses of users without a stored row."""
    statuses_changed: tuple[UserStatus, ...] = ()
    """8. ``record`` (alongside 7): number-flow statuses that are news."""
    number_messages: tuple[AssignmentMessage, ...] = ()
    """9. Enqueued with the policy messages, these first."""
    policy_messages: tuple[AssignmentMessage, ...] = ()
    in_flight: tuple[InFlight, ...] = ()
    """Marked before the messages are sent, one per message in the same order."""
    policy_statuses: tuple[UserStatus, ...] = ()
    """10. ``record``, after the messages: policy-flow statuses that are news."""
    policy_holds: tuple[PolicyDecision, ...] = ()
    """Policy revocations held by a guard (logged as an error, with the first one's reason)."""
    policy_summary: Mapping[str, int] = field(default_factory=dict)
    """Policy decisions by action (users with a queued policy change left out)."""
    looked_at_later: int = 0
    still_queued: int = 0

    @property
    def messages(self) -> tuple[AssignmentMessage, ...]:
        """All messages to enqueue: the number changes, then the policy changes."""
        return self.number_messages + self.policy_messages

    @property
    def enqueued(self) -> int:
        """How many changes a (not dry) run enqueues."""
        return len(self.number_messages) + len(self.policy_messages)


def decide_run(inputs: RunInputs) -> RunActions:
    """Everything the run writes after planning (``inputs.decided``), and what it reports."""
    adopted, claims = claims_with_adopted(inputs.claims, inputs.teams)
    decisions = inputs.decided.decisions
    existing = inputs.statuses
    sorting = sort_decisions(
        inputs.decided, existing, users_in_flight(inputs.in_flight, NUMBER_CHANGE), inputs.now
    )
    policies = plan_policy_run(inputs)
    # The status of a main-number user is the policy flow's, even while their policy change is
    # still queued (so ``status_owned`` is taken before leaving those users out).
    unchanged = [d for d in sorting.unchanged if d.user_id not in policies.status_owned]
    policies = policies.without(users_in_flight(inputs.in_flight, POLICY_CHANGE))
    read_now = inputs.read_now
    number_messages = tuple(
        number_message(
            inputs.tenant_id, inputs.run_id, d, inputs.read_at if d.user_id in read_now else None,
        )
        for d in sorting.work
    )
    holds = hold_changes(decisions, inputs.pending_holds, inputs.run_id, inputs.now)
    winners = claims_for_winners(decisions, claims, inputs.run_id)
    statuses = unchanged_statuses(unchanged, existing, inputs.run_id, inputs.now)
    return RunActions(
        adopted=adopted,
        grace=grace_changes(decisions, claims, inputs.now),
        holds_to_drop=holds.dropped,
        holds_to_save=holds.saved,
        claims_to_create=winners.created,
        transfers=winners.transfers,
        statuses_first=statuses.first,
        statuses_changed=statuses.changed,
        number_messages=number_messages,
        policy_messages=policies.messages,
        in_flight=in_flight_markers((*number_messages, *policies.messages), inputs.now),
        policy_statuses=policy_statuses(policies, existing, inputs.run_id, inputs.now),
        policy_holds=policies.held,
        policy_summary=policies.summary(),
        looked_at_later=sorting.looked_at_later,
        still_queued=sorting.still_queued,
    )
