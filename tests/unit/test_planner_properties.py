"""Properties of the planner on generated tenants.

A tenant is drawn from small pools so that collisions (duplicates, main numbers, claims, Teams
targets) are frequent: members carrying valid, formatted, broken or no numbers; optional main
numbers and ranges; stored claims (assigned or not) for members and former members; Teams numbers
on members, former members and targets this app does not manage.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from random import Random

from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared.core.directory import Claim, Member
from shared.core.outcomes import Action, Reason
from shared.core.phone_numbers import check_number
from shared.core.planner import CurrentState, Plan, plan
from shared.core.tenant_rules import NumberRange, TenantRules

VALID = tuple(f"+3185536301{digit}" for digit in range(10))
MAIN = VALID[0]
RAW_NUMBERS = (
    *VALID,
    *VALID,  # valid numbers twice as likely as any other kind
    None,
    "",
    "  +31855363013 ",  # surrounding whitespace: still strict E.164
    "+31 85 536 3012",  # formatted near miss
    "0855363014",  # national form (a suggestion only with a default region)
    "0031855363015",  # 00 international prefix
    "31855363016",  # bare digits: never guessed
    "+3185536301",  # E.164 shape, not a real number
    "+31855363017;ext=12",  # extension
    "call reception",
)
MEMBER_IDS = tuple(f"user{i}" for i in range(8))
FORMER_IDS = ("former0", "former1", "former2")
FOREIGN_TARGETS = ("resource-queue", "unmanaged-user")
RANGES = (
    (NumberRange(first="+31855363010", last="+31855363015"),),
    (
        NumberRange(first="+31855363011", last="+31855363012"),
        NumberRange(first="+31855363018", last="+31855363019"),
    ),
)

SETTINGS = settings(max_examples=200, deadline=None)


@dataclass(frozen=True, slots=True)
class Tenant:
    members: tuple[Member, ...]
    rules: TenantRules
    state: CurrentState

    def plan(self) -> Plan:
        return plan(self.members, self.rules, self.state)

    def checked(self, member: Member) -> str | None:
        return check_number(member.telephone_number, self.rules).number

    def holds(self, user_id: str, number: str | None) -> bool:
        """Whether the app put ``number`` on ``user_id`` (an assigned claim)."""
        found = self.state.claims.get(number) if number else None
        return found is not None and found.assigned and found.holder_user_id == user_id

    def foreign(self, number: str, user_id: str) -> bool:
        """Whether Teams has ``number`` on another target that the app did not put it on."""
        target = self.state.teams.get(number)
        return target is not None and target != user_id and not self.holds(target, number)


rules_strategy = st.builds(
    TenantRules,
    default_region=st.sampled_from([None, "NL"]),
    accept_formatted=st.booleans(),
    allow_extensions=st.booleans(),
    main_numbers=st.sampled_from([{}, {"contoso.example": MAIN}]),
    number_ranges=st.sampled_from([(), *RANGES]),
    mass_unassign_minimum=st.integers(min_value=0, max_value=4),
    mass_unassign_percent=st.sampled_from([0.0, 5.0, 50.0]),
)


member_specs = st.lists(
    st.tuples(
        st.sampled_from(MEMBER_IDS),
        st.sampled_from(RAW_NUMBERS),
        st.sampled_from([True, True, False]),  # enabled, mostly
    ),
    unique_by=lambda spec: spec[0],
)
claim_specs = st.dictionaries(
    st.sampled_from(VALID),
    st.tuples(st.sampled_from([*MEMBER_IDS, *FORMER_IDS]), st.booleans()),
    max_size=6,
)
teams_numbers = st.dictionaries(
    st.sampled_from(VALID), st.sampled_from([*MEMBER_IDS, *FORMER_IDS, *FOREIGN_TARGETS]),
    max_size=6,
)


@st.composite
def tenants(draw: st.DrawFn) -> Tenant:
    specs = draw(member_specs)
    positions = draw(st.permutations(range(len(specs))))
    members = [
        Member(
            user_id=user,
            user_principal_name=f"{user}@contoso.example",
            business_phones=() if raw is None else (raw,),
            account_enabled=enabled,
            read_position=position,
        )
        for (user, raw, enabled), position in zip(specs, positions, strict=True)
    ]
    members.sort(key=lambda m: m.user_id)  # handed in in another order than read
    claims = {
        number: Claim(
            number=number,
            holder_user_id=holder,
            holder_upn=f"{holder}@contoso.example",
            run_id="an-earlier-run",
            read_position=0,
            assigned=assigned,
        )
        for number, (holder, assigned) in draw(claim_specs).items()
    }
    state = CurrentState(claims=claims, teams=draw(teams_numbers))
    return Tenant(tuple(members), draw(rules_strategy), state)


@SETTINGS
@given(tenants())
def test_no_number_appears_in_two_assign_or_keep_decisions(tenant: Tenant) -> None:
    given_out = Counter(
        d.number for d in tenant.plan().decisions if d.action in {Action.ASSIGN, Action.KEEP}
    )

    assert all(count == 1 for count in given_out.values()), given_out


@SETTINGS
@given(tenants())
def test_every_member_gets_exactly_one_decision_and_former_members_at_most_one(
    tenant: Tenant,
) -> None:
    decided = Counter(d.user_id for d in tenant.plan().decisions)
    member_ids = {m.user_id for m in tenant.members}

    assert all(decided[user] == 1 for user in member_ids)
    assert all(count == 1 for count in decided.values())
    others = set(decided) - member_ids
    assert others <= set(tenant.state.holdings_by_user())


@SETTINGS
@given(tenants(), st.randoms(use_true_random=False))
def test_the_same_input_gives_the_same_plan_in_any_order(tenant: Tenant, rng: Random) -> None:
    shuffled = list(tenant.members)
    rng.shuffle(shuffled)

    first = tenant.plan()

    assert tenant.plan() == first
    assert plan(shuffled, tenant.rules, tenant.state) == first
    assert first.to_json() == tenant.plan().to_json()


@SETTINGS
@given(tenants())
def test_a_member_whose_number_is_valid_unique_in_range_and_not_main_is_never_skipped(
    tenant: Tenant,
) -> None:
    result = tenant.plan()
    numbers = Counter(tenant.checked(m) for m in tenant.members)
    for member in tenant.members:
        number = tenant.checked(member)
        if (
            not member.account_enabled
            or number is None
            or numbers[number] > 1
            or tenant.rules.main_number_domain(number.split(";")[0]) is not None
            or (tenant.rules.number_ranges and tenant.rules.range_of(number.split(";")[0]) is None)
            or tenant.foreign(number, member.user_id)
            or _held_by_someone_else(tenant, number, member.user_id)
        ):
            continue
        decision = next(d for d in result.decisions if d.user_id == member.user_id)
        assert decision.action in {Action.ASSIGN, Action.KEEP}, decision
        assert decision.number == number


def _held_by_someone_else(tenant: Tenant, number: str, user_id: str) -> bool:
    # A number the app gave another user is not unique: it stays theirs until released.
    claim = tenant.state.claims.get(number)
    return claim is not None and claim.assigned and claim.holder_user_id != user_id


@SETTINGS
@given(tenants().map(lambda t: Tenant((), t.rules, t.state)))
def test_an_empty_member_list_never_yields_an_unassign(tenant: Tenant) -> None:
    result = tenant.plan()

    assert all(d.action is Action.HOLD for d in result.decisions)
    assert all(d.reason is Reason.EMPTY_MEMBER_LIST for d in result.decisions)
    assert result.work() == ()


@SETTINGS
@given(tenants())
def test_an_assign_never_targets_a_number_teams_has_on_a_foreign_target(tenant: Tenant) -> None:
    for decision in tenant.plan().decisions:
        if decision.action is Action.ASSIGN:
            assert decision.number is not None
            assert not tenant.foreign(decision.number, decision.user_id), decision


KEPT_BY_A_TYPO = Tenant(
    members=(
        Member("ann", "ann@contoso.example", ("+31 85 536 3011",), True, 0),
        Member("bob", "bob@contoso.example", (VALID[1],), True, 1),
    ),
    rules=TenantRules(),
    state=CurrentState(
        claims={VALID[1]: Claim(VALID[1], "ann", "ann@contoso.example", "r", 0, assigned=True)},
        teams={VALID[1]: "ann"},
    ),
)


@SETTINGS
@example(KEPT_BY_A_TYPO)
@given(tenants())
def test_a_number_teams_has_on_another_user_is_only_assigned_with_its_release(
    tenant: Tenant,
) -> None:
    result = tenant.plan()
    for decision in result.work():
        target = tenant.state.teams.get(decision.number or "")
        if decision.action is Action.ASSIGN and target not in {None, decision.user_id}:
            assert any(
                d.user_id == target and d.previous_number == decision.number
                for d in result.work()
            ), decision


@SETTINGS
@given(tenants())
def test_no_unassign_ever_names_a_number_the_app_does_not_hold_for_that_user(
    tenant: Tenant,
) -> None:
    for decision in tenant.plan().decisions:
        if decision.action in {Action.UNASSIGN, Action.HOLD} or decision.previous_number:
            assert tenant.holds(decision.user_id, decision.previous_number), decision


@SETTINGS
@given(tenants())
def test_a_plan_never_carries_more_unassignments_than_the_threshold(tenant: Tenant) -> None:
    result = tenant.plan()
    held = len(tenant.state.holdings_by_user())

    unassigns = [d for d in result.decisions if d.action is Action.UNASSIGN]
    guarded = [d for d in result.decisions if d.reason is Reason.MASS_UNASSIGN_GUARD]

    assert len(unassigns) <= tenant.rules.mass_unassign_threshold(held)
    assert not (unassigns and guarded)


@SETTINGS
@given(tenants())
def test_members_are_decided_in_read_order_before_former_members(tenant: Tenant) -> None:
    result = tenant.plan()
    count = len(tenant.members)

    positions = [d.read_position for d in result.decisions[:count]]
    assert positions == sorted(m.read_position for m in tenant.members)
    assert all(d.read_position is None for d in result.decisions[count:])


@SETTINGS
@given(tenants())
def test_work_is_every_change_with_unassignments_first(tenant: Tenant) -> None:
    result = tenant.plan()

    work = result.work()

    changes = [d for d in result.decisions if d.action in {Action.ASSIGN, Action.UNASSIGN}]
    assert sorted(work, key=id) == sorted(changes, key=id)
    actions = [d.action for d in work]
    assert actions == sorted(actions, key=lambda action: action is Action.ASSIGN)
