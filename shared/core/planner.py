"""The customer's rules as one pure function: members + tenant rules + current state → decisions.

Pure and deterministic: no I/O, no clock, no environment. The timer plans the whole tenant with
it; ``python -m shared.cli plan`` previews a plan; the queue function re-checks its own decision at
execution time with the same number rule.

Rules, in order of precedence (the customer's text is the seed in the team reference):

1. A number this app assigned to a user who is no longer a member → ``unassign``/``left_group``.
   A member whose account is disabled is not assigned (``disabled``); a number this app gave
   them → ``unassign``.
2. No ``telephoneNumber`` → ``skip``/``no_number``; a number this app gave them before →
   ``unassign``/``number_removed``.
3. Not strictly E.164 with ``+`` → ``skip``/``invalid_format`` with a suggestion when one is
   unambiguous (``acceptFormatted`` assigns the suggestion instead, reported ``normalised``);
   ``;ext=`` only with ``allowExtensions``. E.164 but not a real number → ``invalid_number``.
   A typo never takes away a number the user already has from this app.
4. A SIP domain's main number → ``skip``/``main_number``, never given to the person (a personal
   number this app gave them is taken back).
5. Ranges configured and the number outside all of them → ``skip``/``not_in_range``.
6. Held by another user who still carries it, or read earlier in this run → ``skip``/
   ``duplicate`` naming the holder. A holder from an earlier run wins over a newcomer.
7. Teams has the number on another target that this app did not put there →
   ``skip``/``assigned_elsewhere``: never take a number away from someone else.
8. Teams already has exactly this number on the user → ``keep``.
9. Otherwise → ``assign`` (``number_changed`` with ``previousNumber`` when the app gave the user
   another number before: the old one is released first).

Safety: when a plan holds more unassignments than the tenant's threshold (the larger of
``massUnassignMinimum`` and ``massUnassignPercent`` of the numbers the app holds), every one of
them becomes ``hold``/``mass_unassign_guard``. An empty member list unassigns nobody: it is far
more likely an outage than a company without phones.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import NamedTuple

from shared.core.directory import Claim, Member
from shared.core.outcomes import Action, Reason
from shared.core.phone_numbers import NumberCheck, number_checker
from shared.core.tenant_rules import TenantRules


@dataclass(frozen=True, slots=True)
class CurrentState:
    """What exists before the run: stored claims (incl. the app's holdings) and Teams numbers."""

    claims: Mapping[str, Claim] = field(default_factory=dict)
    """Number → who it belongs to; ``assigned`` marks numbers this app put in Teams."""
    teams: Mapping[str, str] = field(default_factory=dict)
    """Number → the Teams target (user or resource id) that has it."""
    now: datetime | None = None
    """The time of the run. Grace periods and cooling count from it; without it (a preview of
    the rules alone) they count as elapsed."""

    def holdings_by_user(self) -> dict[str, Claim]:
        """User id → the number this app assigned to them and still holds."""
        held: dict[str, Claim] = {}
        for claim in self.claims.values():
            if not claim.held:
                continue
            # One number per user is the rule; should a user hold two, the lowest one counts.
            current = held.get(claim.holder_user_id)
            if current is None or claim.number < current.number:
                held[claim.holder_user_id] = claim
        return held

    def cooling_until(self, number: str, rules: TenantRules) -> datetime | None:
        """When a number the app took back may go to someone else, if that is still ahead."""
        claim = self.claims.get(number)
        if claim is None or claim.released_at is None or self.now is None:
            return None
        until = claim.released_at + timedelta(days=rules.cooling_days)
        return until if until > self.now else None


class Decision(NamedTuple):
    """One user's decision, with everything a helpdesk needs to understand it.

    A NamedTuple: immutable, and cheap to build for the hundred thousand a large tenant needs.
    """

    user_id: str
    user_principal_name: str
    action: Action
    reason: Reason
    message: str
    number: str | None = None
    previous_number: str | None = None
    suggestion: str | None = None
    raw_number: str | None = None
    read_position: int | None = None

    def to_json(self) -> dict[str, object]:
        """The decision as JSON (plan preview, dry run, logs)."""
        return {
            "userId": self.user_id,
            "userPrincipalName": self.user_principal_name,
            "outcome": self.action.value,
            "reason": self.reason.value,
            "number": self.number,
            "previousNumber": self.previous_number,
            "suggestion": self.suggestion,
            "rawNumber": self.raw_number,
            "readPosition": self.read_position,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """All decisions of a run: members in read order, then former members."""

    decisions: tuple[Decision, ...]

    def summary(self) -> dict[str, object]:
        """Counts by outcome and by reason."""
        return {
            "decisions": len(self.decisions),
            "byOutcome": dict(sorted(Counter(d.action.value for d in self.decisions).items())),
            "byReason": dict(sorted(Counter(d.reason.value for d in self.decisions).items())),
        }

    def work(self) -> tuple[Decision, ...]:
        """Decisions that change Teams, releases first so a freed number can be reused: plain
        unassigns, then number changes (which release their previous number), then assigns."""
        changing = [d for d in self.decisions if d.action in {Action.UNASSIGN, Action.ASSIGN}]
        return tuple(sorted(changing, key=lambda d: (
            d.action is Action.ASSIGN, d.previous_number is None,
        )))

    def to_json(self) -> dict[str, object]:
        """``{"decisions": [...], "summary": {...}}``."""
        return {"decisions": [d.to_json() for d in self.decisions], "summary": self.summary()}


def plan(members: Sequence[Member], rules: TenantRules, state: CurrentState) -> Plan:
    """Decide, for every member and every former member the app served, what the run does.

    Pure, and it changes no process-wide state: a caller planning a large tenant pauses the
    cycle collector around it (``shared.service.collector_pause``).
    """
    return _plan(members, rules, state)


def _plan(members: Sequence[Member], rules: TenantRules, state: CurrentState) -> Plan:
    ordered = _in_read_order(members)
    held = state.holdings_by_user()
    check = number_checker(rules)
    main_domains = rules.domains_by_main_number()
    ranges = [(block.first, block.last) for block in rules.number_ranges]
    verdicts: list[Decision | _Candidate] = []
    contenders: dict[str, str] = {}  # user id → number, in read order
    for member in ordered:
        verdict = _screen(member, check, main_domains, ranges, held.get(member.user_id))
        if rules.cooling_days:
            verdict = _cool(verdict, state, rules)
        if isinstance(verdict, _Candidate):
            contenders[member.user_id] = verdict.number
        verdicts.append(verdict)
    winners = _winners(contenders, state.claims)
    by_id = {member.user_id: member for member in ordered}

    decisions: list[Decision] = []
    for member, verdict in zip(ordered, verdicts, strict=True):
        if isinstance(verdict, Decision):
            decisions.append(verdict)
            continue
        winner_id = winners[verdict.number]
        if winner_id != member.user_id:
            decisions.append(_duplicate(member, verdict, by_id[winner_id]))
            continue
        decisions.append(_for_winner(member, verdict, state, held.get(member.user_id)))

    former = [claim for user_id, claim in held.items() if user_id not in by_id]
    for claim in sorted(former, key=attrgetter("holder_upn", "number")):
        decisions.append(_left_group(claim, empty_directory=not ordered))
    graced = _grace(decisions, rules, state)
    guarded = _guard_mass_unassign(graced, rules, len(held))
    return Plan(_wait_for_releases(guarded, state.claims))


def _cool(
    verdict: Decision | _Candidate, state: CurrentState, rules: TenantRules
) -> Decision | _Candidate:
    """A number the app took back rests for ``coolingDays`` before someone else gets it."""
    if not isinstance(verdict, _Candidate) or not rules.cooling_days:
        return verdict
    until = state.cooling_until(verdict.number, rules)
    claim = state.claims.get(verdict.number)
    if until is None or claim is None or claim.holder_user_id == verdict.member.user_id:
        return verdict
    return _decision(
        verdict.member, Action.SKIP, Reason.COOLING,
        f"{verdict.number} was taken back from {claim.holder_upn} and rests until "
        f"{until:%Y-%m-%d %H:%M} UTC before anyone else gets it; it is assigned after that.",
        number=verdict.number,
    )


# Removals that wait out the grace period; a number change and guard holds do not.
_GRACEFUL = frozenset(
    {Reason.LEFT_GROUP, Reason.DISABLED, Reason.NUMBER_REMOVED, Reason.MAIN_NUMBER}
)


def _grace(decisions: list[Decision], rules: TenantRules, state: CurrentState) -> list[Decision]:
    """Hold removals until the grace period, counted from the first run that wanted them, ends:
    a membership blip or a directory hiccup must not drop anyone's phone."""
    if state.now is None or not rules.grace_period_hours:
        return decisions
    grace = timedelta(hours=rules.grace_period_hours)
    result = []
    for decision in decisions:
        if decision.action is not Action.UNASSIGN or decision.reason not in _GRACEFUL:
            result.append(decision)
            continue
        claim = state.claims.get(decision.previous_number or "")
        if claim is None:
            result.append(decision)
            continue
        since = claim.release_pending_since or state.now
        if state.now - since >= grace:
            result.append(decision)
            continue
        result.append(decision._replace(
            action=Action.HOLD, reason=Reason.GRACE_PERIOD,
            message=f"{decision.message.removesuffix('.')} after the grace period, at "
                    f"{since + grace:%Y-%m-%d %H:%M} UTC, unless this changes back before then "
                    f"(reason: {decision.reason.value}).",
        ))
    return result


class _Candidate(NamedTuple):
    """A member whose number passed the number rules and now competes for it."""

    number: str
    check: NumberCheck
    member: Member


def _in_read_order(members: Iterable[Member]) -> list[Member]:
    seen: set[str] = set()
    ordered = []
    positions = [member.read_position for member in members]
    in_order = all(a < b for a, b in itertools.pairwise(positions))
    # The directory returns members in read order; sort only when a caller did not.
    by_position = attrgetter("read_position", "user_id")
    for member in members if in_order else sorted(members, key=by_position):
        if member.user_id not in seen:
            seen.add(member.user_id)
            ordered.append(member)
    return ordered


def _decision(
    member: Member,
    action: Action,
    reason: Reason,
    message: str,
    *,
    number: str | None = None,
    previous_number: str | None = None,
    suggestion: str | None = None,
) -> Decision:
    # Positional: this runs once per member of every run, and keywords cost a third more.
    return Decision(
        member.user_id, member.user_principal_name, action, reason, message, number,
        previous_number, suggestion, member.telephone_number, member.read_position,
    )


def _in_ranges(number: str, ranges: Sequence[tuple[str, str]]) -> bool:
    # Equal-length digit strings compare like the numbers they spell.
    for first, last in ranges:  # noqa: SIM110 - a plain loop; any() costs a generator per member
        if first <= number <= last and len(number) == len(first):
            return True
    return False


def _screen(
    member: Member,
    check_number: Callable[[str | None], NumberCheck],
    main_domains: Mapping[str, str],
    ranges: Sequence[tuple[str, str]],
    holding: Claim | None,
) -> Decision | _Candidate:
    """Rules 1 to 5: everything that can be decided from the member alone."""
    given = holding.number if holding else None
    if not member.account_enabled:
        if given:
            return _decision(member, Action.UNASSIGN, Reason.DISABLED,
                             f"The account is disabled; {given}, given by this app, is taken back.",
                             previous_number=given)
        return _decision(member, Action.SKIP, Reason.DISABLED,
                         "The account is disabled; enable it to give the user a number.")
    check = check_number(member.telephone_number)
    if check.reason is Reason.NO_NUMBER:
        if given:
            return _decision(member, Action.UNASSIGN, Reason.NUMBER_REMOVED,
                             f"telephoneNumber was cleared; {given}, given by this app, is taken "
                             "back.", previous_number=given)
        return _decision(member, Action.SKIP, Reason.NO_NUMBER, check.message)
    if check.number is None:
        assert check.reason is not None
        keeps = f" The user keeps {given} until it is fixed." if given else ""
        return _decision(member, Action.SKIP, check.reason, check.message + keeps,
                         suggestion=check.suggestion)
    number = check.number
    bare = number.partition(";")[0]
    domain = main_domains.get(bare)
    if domain is not None:
        message = (f"{number} is the main number of {domain}; it is never given to a person. "
                   "The user gets the main number's policies instead.")
        if given:
            return _decision(member, Action.UNASSIGN, Reason.MAIN_NUMBER,
                             f"{message} {given}, given by this app, is taken back.",
                             number=number, previous_number=given)
        return _decision(member, Action.SKIP, Reason.MAIN_NUMBER, message, number=number)
    if ranges and not _in_ranges(bare, ranges):
        supplied = ", ".join(f"{first}…{last}" for first, last in ranges)
        keeps = f" The user keeps {given} until it is fixed." if given else ""
        return _decision(member, Action.SKIP, Reason.NOT_IN_RANGE,
                         f"{number} is not among the numbers supplied for this tenant "
                         f"({supplied}); use one of them or ask the operator to add it.{keeps}",
                         number=number)
    return _Candidate(number, check, member)


def _winners(contenders: Mapping[str, str], claims: Mapping[str, Claim]) -> dict[str, str]:
    """Number → the member who gets it: a stored holder who still carries it, else first read.

    ``contenders`` maps user id → number in read order.
    """
    winners: dict[str, str] = {}
    for user_id, number in contenders.items():
        if number in winners:
            continue
        claim = claims.get(number)
        holder = claim.holder_user_id if claim and claim.released_at is None else None
        holder_still_carries_it = holder is not None and contenders.get(holder) == number
        winners[number] = holder if holder_still_carries_it and holder else user_id
    return winners


def _duplicate(member: Member, candidate: _Candidate, winner: Member) -> Decision:
    earlier = "holds it from an earlier run" if winner.read_position > member.read_position \
        else "was read earlier"
    return _decision(
        member, Action.SKIP, Reason.DUPLICATE,
        f"{candidate.number} also belongs to {winner.user_principal_name}, who {earlier}; a "
        "personal number goes to one user only. Correct one of the two telephoneNumbers.",
        number=candidate.number,
    )


def _for_winner(
    member: Member, candidate: _Candidate, state: CurrentState, holding: Claim | None
) -> Decision:
    """Rules 7 to 9 for the member who is entitled to the number."""
    number = candidate.number
    target = state.teams.get(number)
    normalised = candidate.check.normalised
    if target == member.user_id:  # most members of most runs: built directly, it is hot
        return Decision(
            member.user_id, member.user_principal_name, Action.KEEP, Reason.ALREADY_ASSIGNED,
            f"Teams already has {number} on this user.", number, None, None,
            member.telephone_number, member.read_position,
        )
    claim = state.claims.get(number)
    ours = claim is not None and claim.assigned and claim.holder_user_id == target
    if target is not None and not ours:
        return _decision(member, Action.SKIP, Reason.ASSIGNED_ELSEWHERE,
                         f"Teams has {number} on another user or resource ({target}) that this "
                         "app did not put there; it is never taken away. Remove it there or "
                         "correct the telephoneNumber.", number=number)
    previous = holding.number if holding and holding.number != number else None
    release = (f" It is taken back from {claim.holder_upn} first."
               if target is not None and claim is not None else "")
    if previous:
        return _decision(member, Action.ASSIGN, Reason.NUMBER_CHANGED,
                         f"The number changed from {previous} to {number}; {previous} is taken "
                         f"back and {number} assigned.{release}",
                         number=number, previous_number=previous)
    if normalised:
        return _decision(member, Action.ASSIGN, Reason.NORMALISED,
                         f"{candidate.check.message} Assigned in that form.{release}",
                         number=number, suggestion=candidate.check.suggestion)
    return _decision(member, Action.ASSIGN, Reason.ASSIGNED, f"Assign {number}.{release}",
                     number=number)


def _left_group(claim: Claim, *, empty_directory: bool) -> Decision:
    if empty_directory:
        return Decision(
            user_id=claim.holder_user_id, user_principal_name=claim.holder_upn,
            action=Action.HOLD, reason=Reason.EMPTY_MEMBER_LIST,
            message=f"The voice group read back empty; {claim.number} is not taken back, because "
                    "an empty group is far more likely an outage than a company without phones.",
            previous_number=claim.number,
        )
    return Decision(
        user_id=claim.holder_user_id, user_principal_name=claim.holder_upn,
        action=Action.UNASSIGN, reason=Reason.LEFT_GROUP,
        message=f"No longer in the voice group; {claim.number}, given by this app, is taken back.",
        previous_number=claim.number,
    )


def _wait_for_releases(
    decisions: Sequence[Decision], claims: Mapping[str, Claim]
) -> tuple[Decision, ...]:
    """An assign of a number the app gave someone else stands only if this plan takes it back.

    The other user keeps the number when their own decision does not release it (their new number
    has a typo, or they lost it as a duplicate) or when the release is held by the guard.
    """
    released = {
        d.previous_number
        for d in decisions
        if d.previous_number and d.action in {Action.UNASSIGN, Action.ASSIGN}
    }
    result = []
    for decision in decisions:
        claim = claims.get(decision.number or "") if decision.action is Action.ASSIGN else None
        if (claim is not None and claim.assigned and claim.holder_user_id != decision.user_id
                and decision.number not in released):
            result.append(decision._replace(
                action=Action.SKIP, reason=Reason.DUPLICATE, previous_number=None,
                message=f"{decision.number} still belongs to {claim.holder_upn}, who keeps it in "
                        "this run; a personal number goes to one user only. Correct one of the "
                        "two telephoneNumbers.",
            ))
        else:
            result.append(decision)
    return tuple(result)


def _guard_mass_unassign(
    decisions: list[Decision], rules: TenantRules, numbers_held: int
) -> tuple[Decision, ...]:
    unassigns = [d for d in decisions if d.action is Action.UNASSIGN]
    threshold = rules.mass_unassign_threshold(numbers_held)
    if len(unassigns) <= threshold:
        return tuple(decisions)
    note = (f" Held: this plan would take back {len(unassigns)} numbers, more than the "
            f"tenant's threshold of {threshold}; nothing is taken back until someone approves.")
    return tuple(
        d._replace(action=Action.HOLD, reason=Reason.MASS_UNASSIGN_GUARD, message=d.message + note)
        if d.action is Action.UNASSIGN else d
        for d in decisions
    )
