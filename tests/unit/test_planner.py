"""The customer's rules, one example per rule and per edge case the seed implies.

The planner is pure: members + tenant rules + current state (the app's claims and what Teams
shows) → one decision per member and per former member the app served.
"""

from __future__ import annotations

import pytest

from shared.core.directory import Claim, Member
from shared.core.outcomes import Action, Reason
from shared.core.planner import CurrentState, Decision, Plan, plan
from shared.core.tenant_rules import NumberRange, TenantRules

RULES = TenantRules()
DOMAIN = "contoso.example"
MAIN = "+31855363010"  # the customer's example main number
ANN_NUMBER = "+31855363011"
BOB_NUMBER = "+31855363012"
NEW_NUMBER = "+31855363013"
QUEUE = "resource-account-queue"  # a Teams target this app does not manage


def member(
    user: str, number: str | None, position: int, *, enabled: bool = True
) -> Member:
    return Member(
        user_id=user,
        user_principal_name=f"{user}@{DOMAIN}",
        business_phones=() if number is None else (number,),
        account_enabled=enabled,
        read_position=position,
    )


def claim(number: str, holder: str, *, assigned: bool = True, position: int = 0) -> Claim:
    return Claim(
        number=number,
        holder_user_id=holder,
        holder_upn=f"{holder}@{DOMAIN}",
        run_id="an-earlier-run",
        read_position=position,
        assigned=assigned,
    )


def state(*claims: Claim, teams: dict[str, str] | None = None) -> CurrentState:
    return CurrentState(claims={c.number: c for c in claims}, teams=teams or {})


def held(number: str, holder: str) -> CurrentState:
    """The app gave ``number`` to ``holder`` in an earlier run, and Teams shows it there."""
    return state(claim(number, holder), teams={number: holder})


def decision_for(result: Plan, user: str) -> Decision:
    found = [d for d in result.decisions if d.user_id == user]
    assert len(found) == 1, found
    return found[0]


def only(result: Plan) -> Decision:
    assert len(result.decisions) == 1, result.decisions
    return result.decisions[0]


def numbered(count: int, start: int = 100) -> list[str]:
    return [f"+31855363{n:03d}" for n in range(start, start + count)]


# --- Rule 9: assign, and rule 8: keep ---------------------------------------------------------


def test_a_member_with_a_valid_unique_number_is_assigned_it() -> None:
    decision = only(plan([member("ann", ANN_NUMBER, 0)], RULES, CurrentState()))

    assert decision.action is Action.ASSIGN
    assert decision.reason is Reason.ASSIGNED
    assert decision.number == ANN_NUMBER
    assert decision.previous_number is None
    assert decision.suggestion is None
    assert ANN_NUMBER in decision.message


def test_surrounding_whitespace_is_ignored_and_the_stripped_number_assigned() -> None:
    decision = only(plan([member("ann", f"  {ANN_NUMBER}\t", 0)], RULES, CurrentState()))

    assert decision.action is Action.ASSIGN
    assert decision.number == ANN_NUMBER
    assert decision.raw_number == f"  {ANN_NUMBER}\t"


def test_teams_already_showing_exactly_this_number_on_the_user_is_kept() -> None:
    result = plan([member("ann", ANN_NUMBER, 0)], RULES, held(ANN_NUMBER, "ann"))

    decision = only(result)
    assert decision.action is Action.KEEP
    assert decision.reason is Reason.ALREADY_ASSIGNED
    assert decision.number == ANN_NUMBER
    assert result.work() == ()


def test_a_number_put_on_the_user_by_someone_else_is_kept_too() -> None:
    decision = only(plan([member("ann", ANN_NUMBER, 0)], RULES, state(teams={ANN_NUMBER: "ann"})))

    assert decision.action is Action.KEEP
    assert decision.reason is Reason.ALREADY_ASSIGNED


def test_a_number_the_app_holds_but_teams_lost_is_assigned_again_without_previous_number(
) -> None:
    result = plan([member("ann", ANN_NUMBER, 0)], RULES, state(claim(ANN_NUMBER, "ann")))

    decision = only(result)
    assert decision.action is Action.ASSIGN
    assert decision.reason is Reason.ASSIGNED
    assert decision.previous_number is None


def test_a_number_changed_from_one_valid_number_to_another_is_assigned_naming_the_old_one(
) -> None:
    result = plan([member("ann", NEW_NUMBER, 0)], RULES, held(ANN_NUMBER, "ann"))

    decision = only(result)
    assert decision.action is Action.ASSIGN
    assert decision.reason is Reason.NUMBER_CHANGED
    assert decision.number == NEW_NUMBER
    assert decision.previous_number == ANN_NUMBER
    assert ANN_NUMBER in decision.message
    assert NEW_NUMBER in decision.message
    assert result.work() == (decision,)


def test_the_number_a_user_changed_away_from_can_go_to_a_newcomer_in_the_same_run() -> None:
    members = [member("ann", NEW_NUMBER, 0), member("bob", ANN_NUMBER, 1)]

    result = plan(members, RULES, held(ANN_NUMBER, "ann"))

    ann, bob = decision_for(result, "ann"), decision_for(result, "bob")
    assert (ann.action, ann.reason, ann.previous_number) == (
        Action.ASSIGN, Reason.NUMBER_CHANGED, ANN_NUMBER,
    )
    assert (bob.action, bob.reason, bob.number) == (Action.ASSIGN, Reason.ASSIGNED, ANN_NUMBER)
    assert "taken back from ann@contoso.example" in bob.message


# --- Rule 1: left the group, disabled accounts -------------------------------------------------


def test_a_number_this_app_gave_to_a_user_who_left_the_group_is_unassigned() -> None:
    result = plan([member("ann", ANN_NUMBER, 0)], RULES,
                  state(claim(ANN_NUMBER, "ann"), claim(BOB_NUMBER, "bob"),
                        teams={ANN_NUMBER: "ann", BOB_NUMBER: "bob"}))

    bob = decision_for(result, "bob")
    assert bob.action is Action.UNASSIGN
    assert bob.reason is Reason.LEFT_GROUP
    assert bob.previous_number == BOB_NUMBER
    assert bob.number is None
    assert bob.user_principal_name == "bob@contoso.example"
    assert bob.raw_number is None
    assert bob.read_position is None
    assert BOB_NUMBER in bob.message


def test_a_claim_the_app_never_assigned_is_not_taken_back_when_its_holder_leaves() -> None:
    result = plan([member("ann", ANN_NUMBER, 0)], RULES,
                  state(claim(BOB_NUMBER, "bob", assigned=False)))

    assert [d.user_id for d in result.decisions] == ["ann"]


def test_former_members_come_after_the_members_ordered_by_principal_name() -> None:
    claims = [claim(number, holder) for number, holder in
              zip(numbered(3), ["zoe", "bea", "max"], strict=True)]

    result = plan([member("ann", ANN_NUMBER, 0)], RULES, state(*claims))

    assert [d.user_id for d in result.decisions] == ["ann", "bea", "max", "zoe"]


def test_an_empty_member_list_holds_every_former_member_instead_of_unassigning() -> None:
    result = plan([], RULES, state(claim(ANN_NUMBER, "ann"), claim(BOB_NUMBER, "bob")))

    assert [(d.user_id, d.action, d.reason, d.previous_number) for d in result.decisions] == [
        ("ann", Action.HOLD, Reason.EMPTY_MEMBER_LIST, ANN_NUMBER),
        ("bob", Action.HOLD, Reason.EMPTY_MEMBER_LIST, BOB_NUMBER),
    ]
    assert all("empty" in d.message for d in result.decisions)
    assert result.work() == ()


def test_an_empty_member_list_and_no_holdings_is_an_empty_plan() -> None:
    result = plan([], RULES, CurrentState())

    assert result.decisions == ()
    assert result.summary() == {"decisions": 0, "byOutcome": {}, "byReason": {}}


def test_a_disabled_member_is_not_assigned() -> None:
    decision = only(plan([member("ann", ANN_NUMBER, 0, enabled=False)], RULES, CurrentState()))

    assert decision.action is Action.SKIP
    assert decision.reason is Reason.DISABLED
    assert decision.number is None
    assert "disabled" in decision.message


def test_a_disabled_member_loses_the_number_this_app_gave_them() -> None:
    result = plan([member("ann", ANN_NUMBER, 0, enabled=False)], RULES, held(ANN_NUMBER, "ann"))

    decision = only(result)
    assert decision.action is Action.UNASSIGN
    assert decision.reason is Reason.DISABLED
    assert decision.previous_number == ANN_NUMBER
    assert ANN_NUMBER in decision.message


def test_a_disabled_member_keeps_a_number_this_app_did_not_give() -> None:
    result = plan([member("ann", ANN_NUMBER, 0, enabled=False)], RULES,
                  state(teams={ANN_NUMBER: "ann"}))

    assert only(result).action is Action.SKIP
    assert result.work() == ()


def test_a_disabled_member_does_not_block_the_next_reader_of_the_same_number() -> None:
    members = [member("ann", ANN_NUMBER, 0, enabled=False), member("bob", ANN_NUMBER, 1)]

    result = plan(members, RULES, CurrentState())

    assert decision_for(result, "bob").action is Action.ASSIGN


def test_disabled_takes_precedence_over_a_broken_number() -> None:
    decision = only(plan([member("ann", "garbage", 0, enabled=False)], RULES, CurrentState()))

    assert decision.reason is Reason.DISABLED


# --- Rule 2: no telephoneNumber ----------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, "   "])
def test_a_member_without_a_telephone_number_is_skipped(raw: str | None) -> None:
    decision = only(plan([member("ann", raw, 0)], RULES, CurrentState()))

    assert decision.action is Action.SKIP
    assert decision.reason is Reason.NO_NUMBER
    assert decision.number is None
    assert "telephoneNumber" in decision.message


def test_a_cleared_telephone_number_takes_back_the_number_this_app_gave() -> None:
    result = plan([member("ann", None, 0)], RULES, held(ANN_NUMBER, "ann"))

    decision = only(result)
    assert decision.action is Action.UNASSIGN
    assert decision.reason is Reason.NUMBER_REMOVED
    assert decision.previous_number == ANN_NUMBER
    assert decision.number is None
    assert ANN_NUMBER in decision.message


# --- Rule 3: format, number, extensions --------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "suggestion"),
    [
        ("+31 85 536 3011", None, ANN_NUMBER),
        ("0031855363011", None, ANN_NUMBER),
        ("085-5363011", "NL", ANN_NUMBER),
        ("0855363011", None, None),
        ("31855363011", "NL", None),
        ("call me", "NL", None),
    ],
)
def test_a_near_miss_is_skipped_as_invalid_format_with_a_suggestion_when_unambiguous(
    raw: str, region: str | None, suggestion: str | None
) -> None:
    rules = TenantRules(default_region=region)

    decision = only(plan([member("ann", raw, 0)], rules, CurrentState()))

    assert decision.action is Action.SKIP
    assert decision.reason is Reason.INVALID_FORMAT
    assert decision.suggestion == suggestion
    assert decision.number is None
    assert decision.raw_number == raw
    assert repr(raw) in decision.message
    if suggestion:
        assert f"Did you mean {suggestion}?" in decision.message


def test_accept_formatted_assigns_the_e164_form_of_a_near_miss_reported_as_normalised() -> None:
    rules = TenantRules(accept_formatted=True, default_region="NL")

    decision = only(plan([member("ann", "085 536 3011", 0)], rules, CurrentState()))

    assert decision.action is Action.ASSIGN
    assert decision.reason is Reason.NORMALISED
    assert decision.number == ANN_NUMBER
    assert decision.suggestion == ANN_NUMBER
    assert "Normalised" in decision.message


def test_accept_formatted_still_refuses_what_cannot_be_read_unambiguously() -> None:
    rules = TenantRules(accept_formatted=True)

    decision = only(plan([member("ann", "31855363011", 0)], rules, CurrentState()))

    assert (decision.action, decision.reason) == (Action.SKIP, Reason.INVALID_FORMAT)


def test_a_normalised_number_already_on_the_user_is_kept() -> None:
    rules = TenantRules(accept_formatted=True)

    result = plan([member("ann", "+31 85 536 3011", 0)], rules, held(ANN_NUMBER, "ann"))

    assert only(result).action is Action.KEEP


def test_an_e164_number_that_does_not_exist_is_skipped_as_invalid_number() -> None:
    decision = only(plan([member("ann", "+3185536301", 0)], RULES, CurrentState()))

    assert decision.action is Action.SKIP
    assert decision.reason is Reason.INVALID_NUMBER
    assert decision.number is None
    assert "NL" in decision.message


def test_an_extension_is_invalid_format_unless_the_tenant_allows_extensions() -> None:
    raw = f"{ANN_NUMBER};ext=12"

    refused = only(plan([member("ann", raw, 0)], RULES, CurrentState()))
    allowed = only(plan([member("ann", raw, 0)], TenantRules(allow_extensions=True),
                        CurrentState()))

    assert (refused.action, refused.reason) == (Action.SKIP, Reason.INVALID_FORMAT)
    assert "ext" in refused.message
    assert (allowed.action, allowed.reason, allowed.number) == (
        Action.ASSIGN, Reason.ASSIGNED, raw,
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("+31 85 536 3012", Reason.INVALID_FORMAT),
        ("+3185536301", Reason.INVALID_NUMBER),
        (f"{BOB_NUMBER};ext=1", Reason.INVALID_FORMAT),
    ],
)
def test_a_typo_never_takes_away_the_number_this_app_already_gave(raw: str, reason: Reason) -> None:
    result = plan([member("ann", raw, 0)], RULES, held(ANN_NUMBER, "ann"))

    decision = only(result)
    assert decision.action is Action.SKIP
    assert decision.reason is reason
    assert f"The user keeps {ANN_NUMBER}" in decision.message
    assert result.work() == ()


def test_a_member_whose_number_is_not_read_does_not_compete_for_it() -> None:
    members = [member("ann", "+31 85 536 3011", 0), member("bob", ANN_NUMBER, 1)]

    result = plan(members, RULES, CurrentState())

    assert decision_for(result, "ann").reason is Reason.INVALID_FORMAT
    assert decision_for(result, "bob").action is Action.ASSIGN


# --- Rule 4: main numbers ----------------------------------------------------------------------


MAIN_RULES = TenantRules(main_numbers={DOMAIN: MAIN})


def test_a_main_number_is_never_given_to_the_person_and_the_decision_names_it_and_its_domain(
) -> None:
    decision = only(plan([member("desk", MAIN, 0)], MAIN_RULES, CurrentState()))

    assert decision.action is Action.SKIP
    assert decision.reason is Reason.MAIN_NUMBER
    assert decision.number == MAIN
    assert MAIN in decision.message
    assert DOMAIN in decision.message


def test_a_main_number_carried_by_several_users_is_main_number_for_each_never_duplicate() -> None:
    members = [member(f"desk{i}", MAIN, i) for i in range(3)]

    result = plan(members, MAIN_RULES, CurrentState())

    assert [(d.action, d.reason) for d in result.decisions] == [
        (Action.SKIP, Reason.MAIN_NUMBER)
    ] * 3


def test_a_main_number_is_matched_whatever_the_case_of_its_configured_domain() -> None:
    rules = TenantRules.model_validate({"mainNumbers": {"Sales.Contoso.EXAMPLE": MAIN}})

    decision = only(plan([member("desk", MAIN, 0)], rules, CurrentState()))

    assert decision.reason is Reason.MAIN_NUMBER
    assert "sales.contoso.example" in decision.message


def test_a_main_number_with_an_extension_is_still_the_main_number() -> None:
    rules = TenantRules(main_numbers={DOMAIN: MAIN}, allow_extensions=True)

    decision = only(plan([member("desk", f"{MAIN};ext=7", 0)], rules, CurrentState()))

    assert decision.reason is Reason.MAIN_NUMBER


def test_a_main_number_that_is_not_well_formed_is_a_format_problem_first() -> None:
    decision = only(plan([member("desk", "+31 85 536 3010", 0)], MAIN_RULES, CurrentState()))

    assert decision.reason is Reason.INVALID_FORMAT


def test_switching_to_a_main_number_takes_back_the_personal_number_this_app_gave() -> None:
    result = plan([member("ann", MAIN, 0)], MAIN_RULES, held(ANN_NUMBER, "ann"))

    decision = only(result)
    assert decision.action is Action.UNASSIGN
    assert decision.reason is Reason.MAIN_NUMBER
    assert decision.number == MAIN
    assert decision.previous_number == ANN_NUMBER
    assert ANN_NUMBER in decision.message
    assert DOMAIN in decision.message


def test_a_main_number_beats_a_number_range_that_does_not_hold_it() -> None:
    rules = TenantRules(
        main_numbers={DOMAIN: MAIN},
        number_ranges=(NumberRange(first="+31855363100", last="+31855363199"),),
    )

    decision = only(plan([member("desk", MAIN, 0)], rules, CurrentState()))

    assert decision.reason is Reason.MAIN_NUMBER


# --- Rule 5: number ranges ---------------------------------------------------------------------


RANGE_RULES = TenantRules(
    number_ranges=(
        NumberRange(first="+31855363000", last="+31855363009"),
        NumberRange(first="+31855363100", last="+31855363199"),
    )
)


@pytest.mark.parametrize("number", ["+31855363000", "+31855363009", "+31855363100", "+31855363199"])
def test_a_number_at_either_end_of_a_supplied_range_is_assigned(number: str) -> None:
    decision = only(plan([member("ann", number, 0)], RANGE_RULES, CurrentState()))

    assert decision.action is Action.ASSIGN


@pytest.mark.parametrize("number", ["+31855363010", "+31855363099", "+31855363200"])
def test_a_number_outside_every_supplied_range_is_skipped_naming_the_ranges(number: str) -> None:
    decision = only(plan([member("ann", number, 0)], RANGE_RULES, CurrentState()))

    assert decision.action is Action.SKIP
    assert decision.reason is Reason.NOT_IN_RANGE
    assert decision.number == number
    assert number in decision.message
    assert "+31855363000\u2026+31855363009" in decision.message
    assert "+31855363100\u2026+31855363199" in decision.message


def test_without_ranges_any_valid_number_is_in_range() -> None:
    decision = only(plan([member("ann", "+31201234567", 0)], RULES, CurrentState()))

    assert decision.action is Action.ASSIGN


def test_an_extension_on_a_number_inside_a_range_is_in_range() -> None:
    rules = TenantRules(number_ranges=RANGE_RULES.number_ranges, allow_extensions=True)

    decision = only(plan([member("ann", "+31855363100;ext=5", 0)], rules, CurrentState()))

    assert decision.action is Action.ASSIGN


def test_a_number_moved_out_of_range_does_not_take_away_the_number_this_app_gave() -> None:
    result = plan([member("ann", "+31855363050", 0)], RANGE_RULES, held("+31855363100", "ann"))

    decision = only(result)
    assert (decision.action, decision.reason) == (Action.SKIP, Reason.NOT_IN_RANGE)
    assert result.work() == ()


def test_a_number_moved_out_of_range_says_the_user_keeps_the_number_this_app_gave() -> None:
    result = plan([member("ann", "+31855363050", 0)], RANGE_RULES, held("+31855363100", "ann"))

    assert "The user keeps +31855363100" in only(result).message


# --- Rule 6: duplicates ------------------------------------------------------------------------


def test_two_newcomers_in_one_run_the_first_read_gets_the_number_the_later_is_duplicate() -> None:
    # Handed in later reader first: the read position decides, not the list order.
    members = [member("bob", ANN_NUMBER, 1), member("ann", ANN_NUMBER, 0)]

    result = plan(members, RULES, CurrentState())

    ann, bob = decision_for(result, "ann"), decision_for(result, "bob")
    assert (ann.action, ann.number) == (Action.ASSIGN, ANN_NUMBER)
    assert bob.action is Action.SKIP
    assert bob.reason is Reason.DUPLICATE
    assert bob.number == ANN_NUMBER
    assert "ann@contoso.example" in bob.message
    assert "was read earlier" in bob.message


def test_three_readers_of_one_number_one_assign_two_duplicates_naming_the_first() -> None:
    members = [member(user, ANN_NUMBER, i) for i, user in enumerate(["ann", "bob", "cas"])]

    result = plan(members, RULES, CurrentState())

    assert [(d.user_id, d.action) for d in result.decisions] == [
        ("ann", Action.ASSIGN), ("bob", Action.SKIP), ("cas", Action.SKIP),
    ]
    assert all("ann@contoso.example" in d.message for d in result.decisions[1:])


def test_a_holder_from_an_earlier_run_keeps_the_number_against_a_newcomer_read_first() -> None:
    members = [member("newcomer", ANN_NUMBER, 0), member("ann", ANN_NUMBER, 1)]

    result = plan(members, RULES, held(ANN_NUMBER, "ann"))

    ann, newcomer = decision_for(result, "ann"), decision_for(result, "newcomer")
    assert ann.action is Action.KEEP
    assert newcomer.action is Action.SKIP
    assert newcomer.reason is Reason.DUPLICATE
    assert "ann@contoso.example" in newcomer.message
    assert "holds it from an earlier run" in newcomer.message
    assert result.work() == ()


def test_a_stored_claim_not_yet_assigned_also_wins_against_a_newcomer_read_first() -> None:
    members = [member("newcomer", ANN_NUMBER, 0), member("ann", ANN_NUMBER, 1)]

    result = plan(members, RULES, state(claim(ANN_NUMBER, "ann", assigned=False)))

    assert decision_for(result, "ann").action is Action.ASSIGN
    assert decision_for(result, "newcomer").reason is Reason.DUPLICATE


def test_a_holder_who_no_longer_carries_the_number_loses_it_to_the_first_reader() -> None:
    members = [member("newcomer", ANN_NUMBER, 0), member("ann", NEW_NUMBER, 1)]

    result = plan(members, RULES, held(ANN_NUMBER, "ann"))

    assert decision_for(result, "newcomer").action is Action.ASSIGN
    assert decision_for(result, "ann").reason is Reason.NUMBER_CHANGED


def test_a_holder_from_an_earlier_run_who_left_the_group_gives_way_to_a_newcomer() -> None:
    result = plan([member("newcomer", ANN_NUMBER, 0)], RULES, held(ANN_NUMBER, "ann"))

    newcomer, ann = decision_for(result, "newcomer"), decision_for(result, "ann")
    assert (newcomer.action, newcomer.reason) == (Action.ASSIGN, Reason.ASSIGNED)
    assert "taken back from ann@contoso.example first" in newcomer.message
    assert (ann.action, ann.reason) == (Action.UNASSIGN, Reason.LEFT_GROUP)
    assert result.work() == (ann, newcomer)


def test_a_formatted_copy_of_a_number_is_a_duplicate_when_the_tenant_accepts_formatting() -> None:
    rules = TenantRules(accept_formatted=True)
    members = [member("ann", ANN_NUMBER, 0), member("bob", "+31 85 536 3011", 1)]

    result = plan(members, rules, CurrentState())

    assert decision_for(result, "ann").action is Action.ASSIGN
    assert decision_for(result, "bob").reason is Reason.DUPLICATE


def test_a_duplicate_is_decided_before_teams_state_is_looked_at() -> None:
    members = [member("ann", ANN_NUMBER, 0), member("bob", ANN_NUMBER, 1)]

    result = plan(members, RULES, state(teams={ANN_NUMBER: QUEUE}))

    assert decision_for(result, "ann").reason is Reason.ASSIGNED_ELSEWHERE
    assert decision_for(result, "bob").reason is Reason.DUPLICATE


# --- Rule 7: assigned elsewhere ----------------------------------------------------------------


def test_a_number_teams_has_on_a_target_this_app_did_not_put_it_on_is_never_taken_away() -> None:
    result = plan([member("ann", ANN_NUMBER, 0)], RULES, state(teams={ANN_NUMBER: QUEUE}))

    decision = only(result)
    assert decision.action is Action.SKIP
    assert decision.reason is Reason.ASSIGNED_ELSEWHERE
    assert decision.number == ANN_NUMBER
    assert QUEUE in decision.message
    assert result.work() == ()


def test_a_claim_for_someone_else_than_the_teams_target_does_not_make_it_ours() -> None:
    result = plan([member("ann", ANN_NUMBER, 0)], RULES,
                  state(claim(ANN_NUMBER, "bob"), teams={ANN_NUMBER: QUEUE}))

    assert decision_for(result, "ann").reason is Reason.ASSIGNED_ELSEWHERE


def test_a_claim_the_app_never_assigned_does_not_make_the_teams_target_ours() -> None:
    result = plan([member("ann", ANN_NUMBER, 0)], RULES,
                  state(claim(ANN_NUMBER, "bob", assigned=False), teams={ANN_NUMBER: "bob"}))

    assert only(result).reason is Reason.ASSIGNED_ELSEWHERE


def test_a_number_being_released_by_its_disabled_holder_is_assigned_to_the_next_reader() -> None:
    members = [member("ann", ANN_NUMBER, 0, enabled=False), member("bob", ANN_NUMBER, 1)]

    result = plan(members, RULES, held(ANN_NUMBER, "ann"))

    assert decision_for(result, "ann").action is Action.UNASSIGN
    assert decision_for(result, "bob").action is Action.ASSIGN


# --- Mass-unassign guard -----------------------------------------------------------------------


def former_holders(count: int) -> list[Claim]:
    return [claim(number, f"former{i:03d}") for i, number in enumerate(numbered(count))]


def test_exactly_the_default_minimum_of_ten_unassignments_go_ahead() -> None:
    result = plan([member("ann", ANN_NUMBER, 0)], RULES, state(*former_holders(10)))

    assert actions_of(result) == {Action.ASSIGN: 1, Action.UNASSIGN: 10}


def test_one_unassignment_more_than_the_threshold_holds_every_one_of_them() -> None:
    result = plan([member("ann", ANN_NUMBER, 0)], RULES, state(*former_holders(11)))

    assert actions_of(result) == {Action.ASSIGN: 1, Action.HOLD: 11}
    for decision in result.decisions[1:]:
        assert decision.reason is Reason.MASS_UNASSIGN_GUARD
        assert decision.previous_number is not None
        assert "No longer in the voice group" in decision.message
        assert "11" in decision.message
        assert "threshold of 10" in decision.message
    assert [d.action for d in result.work()] == [Action.ASSIGN]


def members_keeping(numbers: list[str]) -> tuple[list[Member], list[Claim], dict[str, str]]:
    members = [member(f"user{i:03d}", n, i) for i, n in enumerate(numbers)]
    claims = [claim(n, m.user_id) for n, m in zip(numbers, members, strict=True)]
    return members, claims, {n: m.user_id for n, m in zip(numbers, members, strict=True)}


@pytest.mark.parametrize(("unassigns", "expected"), [(20, Action.UNASSIGN), (21, Action.HOLD)])
def test_five_percent_of_400_held_numbers_is_twenty(unassigns: int, expected: Action) -> None:
    numbers = numbered(400, start=200)
    members, claims, teams = members_keeping(numbers)

    result = plan(members[unassigns:], RULES, state(*claims, teams=teams))

    assert RULES.mass_unassign_threshold(400) == 20
    assert actions_of(result) == {Action.KEEP: 400 - unassigns, expected: unassigns}


def test_every_kind_of_unassignment_counts_toward_the_guard() -> None:
    rules = TenantRules(mass_unassign_minimum=3, mass_unassign_percent=0,
                        main_numbers={DOMAIN: MAIN})
    numbers = numbered(4)
    members = [
        member("disabled", numbers[0], 0, enabled=False),
        member("cleared", None, 1),
        member("desk", MAIN, 2),
    ]
    claims = [claim(numbers[0], "disabled"), claim(numbers[1], "cleared"),
              claim(numbers[2], "desk"), claim(numbers[3], "former")]

    result = plan(members, rules, state(*claims))

    assert [d.action for d in result.decisions] == [Action.HOLD] * 4
    assert all(d.reason is Reason.MASS_UNASSIGN_GUARD for d in result.decisions)


def test_a_number_change_does_not_count_toward_the_guard() -> None:
    rules = TenantRules(mass_unassign_minimum=0, mass_unassign_percent=0)

    result = plan([member("ann", NEW_NUMBER, 0)], rules, held(ANN_NUMBER, "ann"))

    assert only(result).reason is Reason.NUMBER_CHANGED


def test_a_zero_threshold_holds_even_a_single_unassignment() -> None:
    rules = TenantRules(mass_unassign_minimum=0, mass_unassign_percent=0)

    result = plan([member("ann", None, 0)], rules, held(ANN_NUMBER, "ann"))

    decision = only(result)
    assert (decision.action, decision.reason) == (Action.HOLD, Reason.MASS_UNASSIGN_GUARD)
    assert "threshold of 0" in decision.message


def actions_of(result: Plan) -> dict[Action, int]:
    counts: dict[Action, int] = {}
    for decision in result.decisions:
        counts[decision.action] = counts.get(decision.action, 0) + 1
    return counts


# --- Decisions, plans and their JSON -----------------------------------------------------------


def test_a_decision_carries_who_what_and_where_it_was_read() -> None:
    result = plan([member("ann", ANN_NUMBER, 7)], RULES, CurrentState())

    decision = only(result)
    assert decision.user_id == "ann"
    assert decision.user_principal_name == "ann@contoso.example"
    assert decision.raw_number == ANN_NUMBER
    assert decision.read_position == 7


def test_a_decision_as_json_has_the_camel_case_keys_the_preview_and_logs_use() -> None:
    rules = TenantRules(default_region="NL")
    result = plan([member("ann", "0855363011", 3)], rules, CurrentState())

    assert only(result).to_json() == {
        "userId": "ann",
        "userPrincipalName": "ann@contoso.example",
        "outcome": "skip",
        "reason": "invalid_format",
        "number": None,
        "previousNumber": None,
        "suggestion": ANN_NUMBER,
        "rawNumber": "0855363011",
        "readPosition": 3,
        "message": only(result).message,
    }


def test_a_number_change_as_json_names_both_numbers() -> None:
    body = only(plan([member("ann", NEW_NUMBER, 0)], RULES, held(ANN_NUMBER, "ann"))).to_json()

    assert (body["outcome"], body["reason"]) == ("assign", "number_changed")
    assert (body["number"], body["previousNumber"]) == (NEW_NUMBER, ANN_NUMBER)


def test_the_plan_as_json_is_decisions_and_summary() -> None:
    result = plan([member("ann", ANN_NUMBER, 0)], RULES, CurrentState())

    assert result.to_json() == {
        "decisions": [only(result).to_json()],
        "summary": result.summary(),
    }


def test_the_summary_counts_decisions_by_outcome_and_by_reason_sorted() -> None:
    members = [
        member("ann", ANN_NUMBER, 0),
        member("bob", ANN_NUMBER, 1),
        member("cas", None, 2),
        member("dan", BOB_NUMBER, 3),
        member("eve", NEW_NUMBER, 4),
    ]
    result = plan(members, RULES, state(claim("+31855363019", "gone"),
                                        teams={BOB_NUMBER: "dan", NEW_NUMBER: QUEUE}))

    summary = result.summary()

    assert summary == {
        "decisions": 6,
        "byOutcome": {"assign": 1, "keep": 1, "skip": 3, "unassign": 1},
        "byReason": {
            "already_assigned": 1,
            "assigned": 1,
            "assigned_elsewhere": 1,
            "duplicate": 1,
            "left_group": 1,
            "no_number": 1,
        },
    }
    by_reason = summary["byReason"]
    assert isinstance(by_reason, dict)
    assert list(by_reason) == sorted(by_reason)


def test_work_is_the_changes_only_with_unassignments_before_assignments() -> None:
    members = [
        member("ann", ANN_NUMBER, 0),  # assign
        member("bob", None, 1),  # unassign (number removed)
        member("cas", NEW_NUMBER, 2),  # assign (number changed)
        member("dan", "bad", 3),  # skip
        member("eve", BOB_NUMBER, 4),  # keep
    ]
    current = state(claim("+31855363019", "bob"), claim("+31855363018", "cas"),
                    claim(BOB_NUMBER, "eve"), claim("+31855363017", "gone"),
                    teams={BOB_NUMBER: "eve"})

    work = plan(members, RULES, current).work()

    assert [(d.user_id, d.action) for d in work] == [
        ("bob", Action.UNASSIGN), ("gone", Action.UNASSIGN),
        ("cas", Action.ASSIGN),  # a number change releases its old number: before plain assigns
        ("ann", Action.ASSIGN),
    ]


def test_the_same_input_gives_the_same_plan() -> None:
    members = [member("ann", ANN_NUMBER, 0), member("bob", ANN_NUMBER, 1),
               member("cas", "0855363013", 2), member("dan", None, 3)]
    current = state(claim(BOB_NUMBER, "gone"), teams={BOB_NUMBER: "gone"})
    rules = TenantRules(default_region="NL")

    assert plan(members, rules, current) == plan(members, rules, current)
    assert plan(members, rules, current) == plan(list(reversed(members)), rules, current)


def test_members_handed_in_out_of_order_are_decided_in_read_order() -> None:
    members = [member("cas", NEW_NUMBER, 2), member("ann", ANN_NUMBER, 0),
               member("dan", None, 3), member("bob", BOB_NUMBER, 1)]

    result = plan(members, RULES, CurrentState())

    assert [(d.user_id, d.read_position) for d in result.decisions] == [
        ("ann", 0), ("bob", 1), ("cas", 2), ("dan", 3),
    ]


def test_a_member_listed_twice_is_decided_once_as_first_read() -> None:
    members = [member("ann", BOB_NUMBER, 4), member("ann", ANN_NUMBER, 1),
               member("bob", BOB_NUMBER, 2)]

    result = plan(members, RULES, CurrentState())

    assert [(d.user_id, d.number, d.action) for d in result.decisions] == [
        ("ann", ANN_NUMBER, Action.ASSIGN), ("bob", BOB_NUMBER, Action.ASSIGN),
    ]


# --- Bugs found while writing these tests (shared/core/planner.py) --------------------------------


def releases(result: Plan, user: str, number: str) -> bool:
    """Whether the plan's work takes ``number`` back from ``user``."""
    return any(d.user_id == user and d.previous_number == number for d in result.work())


@pytest.mark.parametrize(
    ("holder_now_carries", "others", "rules"),
    [
        ("+31 85 536 3100", [], RULES),  # invalid_format: "The user keeps +31855363100"
        ("+3185536310", [], RULES),  # invalid_number
        ("+31855363050", [], RANGE_RULES),  # not_in_range
        (BOB_NUMBER, [member("bob", BOB_NUMBER, 0)], RULES),  # loses BOB_NUMBER as duplicate
        (BOB_NUMBER, [], RULES),  # BOB_NUMBER is assigned_elsewhere (QUEUE has it)
    ],
)
def test_a_number_its_holder_keeps_is_not_assigned_to_another_member(
    holder_now_carries: str, others: list[Member], rules: TenantRules
) -> None:
    kept = "+31855363100"
    members = [*others, member("ann", holder_now_carries, 1), member("newcomer", kept, 2)]

    result = plan(members, rules, state(claim(kept, "ann"), teams={kept: "ann", BOB_NUMBER: QUEUE}))

    assert decision_for(result, "ann").action is Action.SKIP
    newcomer = decision_for(result, "newcomer")
    assert newcomer.action is not Action.ASSIGN or releases(result, "ann", kept)


def test_an_assign_waits_when_the_release_it_depends_on_is_held_by_the_guard() -> None:
    rules = TenantRules(mass_unassign_minimum=0, mass_unassign_percent=0)

    result = plan([member("newcomer", ANN_NUMBER, 0)], rules, held(ANN_NUMBER, "ann"))

    assert decision_for(result, "ann").action is Action.HOLD
    assert decision_for(result, "newcomer").action is not Action.ASSIGN


def test_work_releases_a_changed_number_before_it_is_given_to_someone_else() -> None:
    members = [member("newcomer", ANN_NUMBER, 0), member("ann", NEW_NUMBER, 1)]

    work = plan(members, RULES, held(ANN_NUMBER, "ann")).work()

    assert [d.user_id for d in work] == ["ann", "newcomer"]


def test_planning_leaves_the_process_wide_cycle_collector_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc  # noqa: PLC0415 - the module whose state is watched

    switched: list[str] = []
    monkeypatch.setattr(gc, "disable", lambda: switched.append("disable"))
    monkeypatch.setattr(gc, "enable", lambda: switched.append("enable"))

    plan([Member("ann", "ann@contoso.example", ("+31855363011",), True, 0)], TenantRules(),
         CurrentState())

    assert switched == []


def test_the_shell_pauses_the_collector_and_restores_it_whatever_happens() -> None:
    import gc  # noqa: PLC0415 - the module whose state is watched

    from shared.service.collector_pause import cycle_collection_paused  # noqa: PLC0415

    seen: list[bool] = []

    def failing_plan() -> None:
        with cycle_collection_paused():
            seen.append(gc.isenabled())
            raise RuntimeError("planning failed")

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        failing_plan()
    assert (seen, gc.isenabled()) == ([False], True)
