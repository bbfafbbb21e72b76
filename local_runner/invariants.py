"""What must hold once a tenant's queue is drained and one more sync has run, however badly
Graph, the workers or storage behaved on the way (issue 9's invariants).

``read_tenant_state`` gathers the evidence: Teams' numbers (the simulator's own view, not
through any proxy), the app's claims and user statuses, and the poison queue.
``check_invariants`` is pure: it compares that with ``Expectations`` and returns every
violation, each naming its invariant, the user or number, and what was found.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from azure.storage.queue.aio import QueueClient

from local_runner.onboarding_tenant import Expectations
from shared.core.directory import Claim
from shared.core.messages import AssignmentMessage, MessageError
from shared.core.outcomes import WAITING_REASONS, Outcome
from shared.core.records import UserStatus
from shared.runtime import AppRuntime

HAS_AN_OUTCOME = "every user assigned or with a status and reason"
NO_UNWANTED_NUMBER = "no number on a user who should not have it"
NO_SHARED_NUMBER = "no number on two users"
NO_ORPHAN_CLAIM = "no claim without its holder"
OWNERSHIP_MARKED = "every number the app put in Teams carries the ownership marker"
POISON_NEEDS_A_PERSON = "the poison queue holds only what a person must look at"
EVERYONE_SERVED = "every user who should have a number has it"

#: Every invariant, in the order they are reported.
INVARIANTS = (HAS_AN_OUTCOME, NO_UNWANTED_NUMBER, NO_SHARED_NUMBER, NO_ORPHAN_CLAIM,
              OWNERSHIP_MARKED, POISON_NEEDS_A_PERSON, EVERYONE_SERVED)

_SERVED = frozenset({Outcome.ASSIGNED, Outcome.KEPT})


@dataclass(frozen=True)
class Violation:
    """One broken invariant: which, about whom (a user's UPN or a number), and the evidence."""

    invariant: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.subject}: {self.detail}"


@dataclass(frozen=True)
class TenantState:
    """Everything the invariants look at, read at one moment."""

    teams: Mapping[str, str | None]
    """Number → the Teams target Graph lists for it (pending assignments included)."""
    claims: Mapping[str, Claim]
    statuses: Sequence[UserStatus]
    poison: Sequence[str]
    """The bodies in ``number-assignments-poison`` that belong to the tenant (or are
    unreadable)."""


async def read_poison(queue: QueueClient, tenant_id: str) -> list[str]:
    """Every poison message body of the tenant, and every unreadable one.

    The messages are received (hidden for a second) because a peek shows at most 32.
    """
    bodies: dict[str, str] = {}
    while True:
        batch = [message async for message in queue.receive_messages(
            max_messages=32, messages_per_page=32, visibility_timeout=1)]
        fresh = [message for message in batch if message.id not in bodies]
        if not fresh:
            break
        for message in fresh:
            bodies[message.id] = str(message.content)
    kept = []
    for body in bodies.values():
        try:
            if AssignmentMessage.from_body(body).tenant_id != tenant_id:
                continue
        except MessageError:
            pass  # unreadable: whoever's it is, a person has to look at it
        kept.append(body)
    return kept


async def read_tenant_state(
    runtime: AppRuntime, teams: Mapping[str, str | None], poison: QueueClient
) -> TenantState:
    """The tenant's state as the invariants need it; ``teams`` is
    ``SimulatorServer.number_assignments()``."""
    return TenantState(
        teams=dict(teams),
        claims=await runtime.claims.list_claims(),
        statuses=await runtime.report(),
        poison=await read_poison(poison, runtime.default.record.key),
    )


def check_invariants(expected: Expectations, state: TenantState) -> list[Violation]:
    """Every violation of the invariants in ``state`` (an empty list: all hold)."""
    return [
        *_outcomes(expected, state),
        *_unwanted_numbers(expected, state),
        *_shared_numbers(expected, state),
        *_orphan_claims(expected, state),
        *_ownership(expected, state),
        *_poison(expected, state),
        *_served(expected, state),
    ]


def summarise(violations: Sequence[Violation]) -> dict[str, int]:
    """Violations per invariant (every invariant listed, 0 when it holds)."""
    counts = Counter(violation.invariant for violation in violations)
    return {invariant: counts.get(invariant, 0) for invariant in INVARIANTS}


def _targets(state: TenantState) -> dict[str, list[str]]:
    """Target id → the numbers Teams has on it."""
    by_target: dict[str, list[str]] = defaultdict(list)
    for number, target in state.teams.items():
        if target:
            by_target[target].append(number)
    return by_target


def _describe(status: UserStatus | None) -> str:
    if status is None:
        return "no status"
    return f"status {status.outcome.value}/{status.reason.value} {status.number or ''}".strip()


def _outcomes(expected: Expectations, state: TenantState) -> list[Violation]:
    statuses = {status.user_id: status for status in state.statuses}
    on_user = _targets(state)
    found = []
    for user_id, upn in expected.members.items():
        status = statuses.get(user_id)
        if status is None:
            found.append(Violation(HAS_AN_OUTCOME, upn, "no status at all"))
            continue
        if not status.message:
            found.append(Violation(HAS_AN_OUTCOME, upn, f"{_describe(status)} without a message"))
        if user_id in expected.refused:
            reason = expected.refused[user_id]
            if (status.outcome, status.reason) != (Outcome.SKIPPED, reason):
                found.append(Violation(HAS_AN_OUTCOME, upn,
                                       f"{_describe(status)}; expected skipped/{reason.value}"))
            continue
        number = expected.numbers[user_id]
        has_it = number in on_user.get(user_id, [])
        if status.outcome in _SERVED and not (status.number == number and has_it):
            found.append(Violation(HAS_AN_OUTCOME, upn,
                                   f"{_describe(status)}, but Teams has "
                                   f"{on_user.get(user_id) or 'nothing'} on the user"))
        elif status.outcome is Outcome.FAILED and has_it:
            found.append(Violation(HAS_AN_OUTCOME, upn,
                                   f"{_describe(status)}, but Teams has {number} on the user"))
        elif status.outcome not in {*_SERVED, Outcome.FAILED}:
            found.append(Violation(HAS_AN_OUTCOME, upn,
                                   f"{_describe(status)}; expected {number} or a failure"))
    return found


def _unwanted_numbers(expected: Expectations, state: TenantState) -> list[Violation]:
    found = []
    for number, target in state.teams.items():
        if not target or expected.kept_elsewhere.get(number) == target:
            continue
        upn = expected.members.get(target)
        if upn is None:
            found.append(Violation(NO_UNWANTED_NUMBER, number,
                                   f"on {target}, who is not in the voice group"))
        elif target in expected.refused:
            found.append(Violation(NO_UNWANTED_NUMBER, upn,
                                   f"has {number} but must not get a number "
                                   f"({expected.refused[target].value})"))
        elif expected.numbers.get(target) != number:
            found.append(Violation(NO_UNWANTED_NUMBER, upn,
                                   f"has {number} instead of {expected.numbers.get(target)}"))
    for number, holder in expected.kept_elsewhere.items():
        if state.teams.get(number) != holder:
            found.append(Violation(NO_UNWANTED_NUMBER, number,
                                   f"taken from {holder}, who had it before: now on "
                                   f"{state.teams.get(number)}"))
    return found


def _shared_numbers(expected: Expectations, state: TenantState) -> list[Violation]:
    found = []
    for target, numbers in _targets(state).items():
        if len(numbers) > 1:
            found.append(Violation(NO_SHARED_NUMBER, expected.members.get(target, target),
                                   f"has {len(numbers)} numbers in Teams: {sorted(numbers)}"))
    for number, claim in state.claims.items():
        on = state.teams.get(number)
        if claim.released_at is None and on and on != claim.holder_user_id:
            found.append(Violation(NO_SHARED_NUMBER, number,
                                   f"claimed for {claim.holder_upn}, but on "
                                   f"{expected.members.get(on, on)} in Teams"))
    told: dict[str, list[str]] = defaultdict(list)
    for status in state.statuses:
        if status.outcome in _SERVED and status.number:
            told[status.number].append(status.user_principal_name)
    for number, upns in told.items():
        if len(upns) > 1:
            found.append(Violation(NO_SHARED_NUMBER, number,
                                   f"{len(upns)} users are told they have it: {sorted(upns)}"))
    return found


def _orphan_claims(expected: Expectations, state: TenantState) -> list[Violation]:
    statuses = {status.user_id: status for status in state.statuses}
    found = []
    for number, claim in state.claims.items():
        if claim.released_at is not None:
            continue
        holder = claim.holder_user_id
        if holder not in expected.members:
            found.append(Violation(NO_ORPHAN_CLAIM, number,
                                   f"claimed for {claim.holder_upn}, who is not in the voice "
                                   "group"))
            continue
        if state.teams.get(number) == holder:
            continue
        status = statuses.get(holder)
        # A claim may keep a number for a holder who is told why they do not have it yet.
        explained = status is not None and status.number == number and (
            status.outcome is Outcome.FAILED or status.reason in WAITING_REASONS)
        if not explained:
            found.append(Violation(NO_ORPHAN_CLAIM, number,
                                   f"claimed for {claim.holder_upn}, who does not have it in "
                                   f"Teams (on {state.teams.get(number)}; {_describe(status)})"))
    return found


def _ownership(expected: Expectations, state: TenantState) -> list[Violation]:
    found = []
    for number in sorted(expected.free_at_start):
        target = state.teams.get(number)
        if not target or target not in expected.members:
            continue
        claim = state.claims.get(number)
        upn = expected.members[target]
        if claim is None:
            found.append(Violation(OWNERSHIP_MARKED, number, f"on {upn} in Teams, no claim"))
        elif claim.holder_user_id != target:
            found.append(Violation(OWNERSHIP_MARKED, number,
                                   f"on {upn} in Teams, claimed for {claim.holder_upn}"))
        elif not claim.assigned:
            found.append(Violation(OWNERSHIP_MARKED, number,
                                   f"on {upn} in Teams, claim without AssignedByApp"))
    return found


def _poison(expected: Expectations, state: TenantState) -> list[Violation]:
    statuses = {status.user_id: status for status in state.statuses}
    found = []
    for body in state.poison:
        try:
            message = AssignmentMessage.from_body(body)
        except MessageError:
            continue  # unreadable: exactly what a person must look at
        status = statuses.get(message.user_id)
        if status is not None and status.outcome is not Outcome.FAILED:
            upn = expected.members.get(message.user_id, message.user_principal_name)
            found.append(Violation(POISON_NEEDS_A_PERSON, upn,
                                   f"poisoned {message.action} {message.number or ''} (run "
                                   f"{message.run_id}), but the user's {_describe(status)}"))
    return found


def _served(expected: Expectations, state: TenantState) -> list[Violation]:
    statuses = {status.user_id: status for status in state.statuses}
    found = []
    for user_id, number in expected.numbers.items():
        if state.teams.get(number) != user_id:
            found.append(Violation(EVERYONE_SERVED, expected.members[user_id],
                                   f"{number} is on {state.teams.get(number)} in Teams; "
                                   f"{_describe(statuses.get(user_id))}"))
    return found
