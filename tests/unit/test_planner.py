from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from random import Random

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.directory import Claim, Member
from shared.phone_numbers import check_number
from shared.planner import RunPlan, plan_run

TENANT = "11111111-1111-1111-1111-111111111111"
RUN = "run-2024-05-01T10:00"
MAIN = "+31855363010"
OTHER = "+31855363011"


def member(user: str, number: str | None, position: int) -> Member:
    return Member(
        user_id=user,
        user_principal_name=f"{user}@contoso.example",
        business_phones=() if number is None else (number,),
        account_enabled=True,
        read_position=position,
    )


def stored_claim(number: str, holder: str, position: int = 0) -> Claim:
    return Claim(
        number=number,
        holder_user_id=holder,
        holder_upn=f"{holder}@contoso.example",
        run_id="an-earlier-run",
        read_position=position,
    )


def reserved_for(plan: RunPlan) -> dict[str, str]:
    return {claim.number: claim.holder_user_id for claim in plan.reservations}


def test_every_member_gets_one_message_in_read_order_even_when_handed_in_shuffled() -> None:
    members = [
        member("carol", "+31855363012", 2),
        member("ann", MAIN, 0),
        member("dave", None, 3),
        member("bob", OTHER, 1),
    ]

    plan = plan_run(TENANT, RUN, members, {})

    assert [m.user_id for m in plan.messages] == ["ann", "bob", "carol", "dave"]
    assert [m.read_position for m in plan.messages] == [0, 1, 2, 3]
    assert plan.summary()["members"] == 4


def test_the_first_reader_of_a_shared_number_gets_it_and_the_later_reader_does_not() -> None:
    # Handed in later-reader first, to show that read position decides, not list order.
    members = [member("later", MAIN, 7), member("first", MAIN, 3)]

    plan = plan_run(TENANT, RUN, members, {})

    assert reserved_for(plan) == {MAIN: "first"}
    (reservation,) = plan.reservations
    assert reservation.holder_upn == "first@contoso.example"
    assert reservation.run_id == RUN
    assert reservation.read_position == 3
    assert plan.precheck == {"valid": 1, "duplicate": 1}


def test_the_same_number_with_surrounding_whitespace_counts_as_the_same_number() -> None:
    members = [member("first", MAIN, 0), member("later", f"  {MAIN} ", 1)]

    plan = plan_run(TENANT, RUN, members, {})

    assert reserved_for(plan) == {MAIN: "first"}
    assert plan.precheck == {"valid": 1, "duplicate": 1}


def test_a_claim_stored_by_an_earlier_run_wins_over_a_newcomer() -> None:
    claims = {MAIN: stored_claim(MAIN, "old-holder")}

    plan = plan_run(TENANT, RUN, [member("newcomer", MAIN, 0)], claims)

    assert plan.reservations == ()
    assert plan.precheck == {"duplicate": 1}
    assert [m.user_id for m in plan.messages] == ["newcomer"]


def test_the_stored_holder_keeps_the_number_even_when_read_after_a_newcomer() -> None:
    claims = {MAIN: stored_claim(MAIN, "holder", position=9)}
    members = [member("newcomer", MAIN, 0), member("holder", MAIN, 1)]

    plan = plan_run(TENANT, RUN, members, claims)

    assert plan.reservations == ()
    assert plan.precheck == {"duplicate": 1, "valid": 1}


def test_a_member_who_already_holds_the_stored_claim_is_not_a_duplicate() -> None:
    claims = {MAIN: stored_claim(MAIN, "ann")}

    plan = plan_run(TENANT, RUN, [member("ann", MAIN, 0)], claims)

    assert plan.precheck == {"valid": 1}
    assert plan.reservations == ()  # already stored; nothing to reserve again


def test_invalid_numbers_are_not_reserved_and_are_counted_by_reason() -> None:
    members = [
        member("spaces", "+31 85 536 3010", 0),
        member("national", "0855363010", 1),
        member("none", None, 2),
        member("blank", "   ", 3),
        member("short", "+3185536301", 4),
        member("good", OTHER, 5),
    ]

    plan = plan_run(TENANT, RUN, members, {})

    assert reserved_for(plan) == {OTHER: "good"}
    assert plan.precheck == {
        "invalid_format": 2,
        "no_number": 2,
        "invalid_number": 1,
        "valid": 1,
    }
    assert len(plan.messages) == 6  # the queue function records why each was skipped


def test_an_invalid_spelling_of_a_number_does_not_block_the_valid_one() -> None:
    members = [member("typo", "+31 85 536 3010", 0), member("right", MAIN, 1)]

    plan = plan_run(TENANT, RUN, members, {})

    assert reserved_for(plan) == {MAIN: "right"}


def test_messages_carry_tenant_run_user_and_the_raw_telephone_number() -> None:
    members = [member("ann", f" {MAIN} ", 4), member("bob", None, 5)]

    plan = plan_run(TENANT, RUN, members, {})

    ann, bob = plan.messages
    assert ann.tenant_id == TENANT
    assert ann.run_id == RUN
    assert ann.user_id == "ann"
    assert ann.user_principal_name == "ann@contoso.example"
    assert ann.telephone_number == f" {MAIN} "  # raw, as the directory gave it
    assert ann.read_position == 4
    assert bob.telephone_number is None
    assert bob.read_position == 5


def test_summary_reports_members_reservations_and_precheck_counts() -> None:
    members = [member("a", MAIN, 0), member("b", MAIN, 1), member("c", None, 2)]

    summary = plan_run(TENANT, RUN, members, {}).summary()

    assert summary == {
        "members": 3,
        "reservations": 1,
        "precheck": {"valid": 1, "duplicate": 1, "no_number": 1},
    }


def test_an_empty_voice_group_plans_nothing() -> None:
    plan = plan_run(TENANT, RUN, [], {MAIN: stored_claim(MAIN, "someone")})

    assert plan.messages == ()
    assert plan.reservations == ()
    assert dict(plan.precheck) == {}


# --- properties ---------------------------------------------------------------------------

POOL: tuple[str | None, ...] = (
    MAIN,
    f" {MAIN}",
    OTHER,
    "+31201234567",
    "+442079460000",
    "+31 85 536 3010",  # invalid_format
    "0855363010",  # invalid_format
    "+3185536301",  # invalid_number
    "",
    None,
)
VALID_POOL = sorted({n.strip() for n in POOL if n is not None and check_number(n).ok})


@st.composite
def directories(draw: st.DrawFn) -> tuple[list[Member], dict[str, Claim]]:
    numbers = draw(st.lists(st.sampled_from(POOL), max_size=12))
    positions = draw(st.permutations(range(len(numbers))))
    members = [
        member(f"user-{i}", n, pos)
        for i, (n, pos) in enumerate(zip(numbers, positions, strict=True))
    ]
    holders = [m.user_id for m in members] + ["earlier-run-user"]
    claimed = draw(st.lists(st.sampled_from(VALID_POOL), unique=True))
    claims = {number: stored_claim(number, draw(st.sampled_from(holders))) for number in claimed}
    return members, claims


def expected_precheck(members: Sequence[Member], claims: Mapping[str, Claim]) -> Counter[str]:
    """The customer's rules, stated directly: earlier runs first, then the first reader."""
    counts: Counter[str] = Counter()
    owner: dict[str, str] = {n: c.holder_user_id for n, c in claims.items()}
    for m in sorted(members, key=lambda m: m.read_position):
        check = check_number(m.telephone_number)
        if check.number is None:
            counts[str(check.reason)] += 1
            continue
        holder = owner.setdefault(check.number, m.user_id)
        counts["valid" if holder == m.user_id else "duplicate"] += 1
    return counts


@settings(max_examples=200, deadline=None)
@given(directories())
def test_no_number_is_ever_reserved_twice(
    directory: tuple[list[Member], dict[str, Claim]],
) -> None:
    members, claims = directory

    plan = plan_run(TENANT, RUN, members, claims)

    numbers = [claim.number for claim in plan.reservations]
    assert len(numbers) == len(set(numbers))
    assert not set(numbers) & set(claims)  # a stored claim is never reserved over


@settings(max_examples=200, deadline=None)
@given(directories())
def test_each_unclaimed_number_is_reserved_for_its_first_reader(
    directory: tuple[list[Member], dict[str, Claim]],
) -> None:
    members, claims = directory
    carriers: dict[str, list[Member]] = {}
    for m in members:
        number = check_number(m.telephone_number).number
        if number is not None and number not in claims:
            carriers.setdefault(number, []).append(m)

    plan = plan_run(TENANT, RUN, members, claims)

    expected = {
        number: min(group, key=lambda m: m.read_position) for number, group in carriers.items()
    }
    assert reserved_for(plan) == {n: m.user_id for n, m in expected.items()}
    for claim in plan.reservations:
        assert claim.read_position == expected[claim.number].read_position
        assert claim.run_id == RUN


@settings(max_examples=200, deadline=None)
@given(directories())
def test_every_member_gets_exactly_one_message_and_one_precheck_verdict(
    directory: tuple[list[Member], dict[str, Claim]],
) -> None:
    members, claims = directory

    plan = plan_run(TENANT, RUN, members, claims)

    assert len(plan.messages) == len(members)
    assert sorted(m.user_id for m in plan.messages) == sorted(m.user_id for m in members)
    positions = [m.read_position for m in plan.messages]
    assert positions == sorted(positions)
    assert sum(plan.precheck.values()) == len(members)
    assert Counter(plan.precheck) == expected_precheck(members, claims)


@settings(max_examples=100, deadline=None)
@given(directories(), st.randoms(use_true_random=False))
def test_the_same_directory_read_gives_the_same_plan_whatever_the_list_order(
    directory: tuple[list[Member], dict[str, Claim]],
    rng: Random,
) -> None:
    members, claims = directory
    shuffled = list(members)
    rng.shuffle(shuffled)

    first = plan_run(TENANT, RUN, members, claims)
    again = plan_run(TENANT, RUN, members, claims)
    reordered = plan_run(TENANT, RUN, shuffled, claims)

    assert first == again
    assert first.messages == reordered.messages
    assert first.reservations == reordered.reservations
    assert dict(first.precheck) == dict(reordered.precheck)
