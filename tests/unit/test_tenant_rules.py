"""A tenant's number rules: ranges, main numbers, the mass-unassign threshold, JSON aliases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.core.tenant_rules import NumberRange, TenantRules

BLOCK = NumberRange(first="+31855363000", last="+31855363999")


# --- NumberRange -------------------------------------------------------------------------------


def test_a_range_holds_both_of_its_ends_and_everything_between() -> None:
    assert "+31855363000" in BLOCK
    assert "+31855363500" in BLOCK
    assert "+31855363999" in BLOCK


@pytest.mark.parametrize(
    "number",
    [
        "+31855362999",  # just below
        "+31855364000",  # just above
        "+3185536300",  # shorter: a prefix of the first number
        "+318553630000",  # longer: would sort inside as text
        "+31855363500;ext=1",
        "",
    ],
)
def test_a_range_does_not_hold_numbers_outside_it_or_of_another_length(number: str) -> None:
    assert number not in BLOCK


def test_a_range_of_one_number_holds_exactly_that_number() -> None:
    single = NumberRange(first="+31855363010", last="+31855363010")

    assert "+31855363010" in single
    assert "+31855363011" not in single
    assert "+31855363009" not in single


@pytest.mark.parametrize("value", [None, 31855363000, ("+31855363000",)])
def test_a_range_holds_no_value_that_is_not_a_string(value: object) -> None:
    assert value not in BLOCK


def test_a_range_prints_as_first_to_last() -> None:
    assert str(BLOCK) == "+31855363000\u2026+31855363999"


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 999), st.integers(0, 999), st.integers(0, 999))
def test_range_membership_is_numeric_order_for_equal_length_numbers(
    low: int, high: int, probe: int
) -> None:
    low, high = min(low, high), max(low, high)
    block = NumberRange(first=f"+31855363{low:03d}", last=f"+31855363{high:03d}")

    assert (f"+31855363{probe:03d}" in block) == (low <= probe <= high)


@pytest.mark.parametrize(
    ("first", "last", "problem"),
    [
        ("+31855363999", "+31855363000", "low to high"),
        ("+3185536300", "+31855363999", "equal lengths"),
        ("31855363000", "31855363999", "E.164"),
        ("+31 85 536 3000", "+31855363999", "E.164"),
        ("+31855363000", "+31855363999 ", "E.164"),
        ("+01855363000", "+01855363999", "E.164"),
    ],
)
def test_an_invalid_range_is_refused(first: str, last: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NumberRange(first=first, last=last)

    assert problem in str(caught.value)


def test_a_range_refuses_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="step"):
        NumberRange.model_validate({"first": "+31855363000", "last": "+31855363999", "step": 2})


def test_range_of_names_the_range_holding_the_number() -> None:
    other = NumberRange(first="+31855364000", last="+31855364099")
    rules = TenantRules(number_ranges=(BLOCK, other))

    assert rules.range_of("+31855363010") == BLOCK
    assert rules.range_of("+31855364099") == other
    assert rules.range_of("+31855364100") is None


def test_range_of_is_none_when_no_ranges_are_configured() -> None:
    assert TenantRules().range_of("+31855363010") is None


# --- Main numbers ------------------------------------------------------------------------------


def test_a_main_number_is_found_with_its_domain() -> None:
    rules = TenantRules(main_numbers={"contoso.example": "+31855363010",
                                      "fabrikam.example": "+31201234567"})

    assert rules.main_number_domain("+31855363010") == "contoso.example"
    assert rules.main_number_domain("+31201234567") == "fabrikam.example"
    assert rules.main_number_domain("+31855363011") is None


def test_main_number_domains_are_case_insensitive_and_reported_in_lower_case() -> None:
    rules = TenantRules(main_numbers={"Contoso.EXAMPLE": "+31855363010"})

    assert rules.main_numbers == {"contoso.example": "+31855363010"}
    assert rules.main_number_domain("+31855363010") == "contoso.example"


def test_a_main_number_shared_by_two_domains_names_the_first_domain_alphabetically() -> None:
    rules = TenantRules(main_numbers={"zeta.example": "+31855363010",
                                      "alpha.example": "+31855363010"})

    assert rules.main_number_domain("+31855363010") == "alpha.example"


def test_without_main_numbers_nothing_is_a_main_number() -> None:
    assert TenantRules().main_number_domain("+31855363010") is None


@pytest.mark.parametrize("number", ["31855363010", "+31 85 536 3010", "", "+31855363010;ext=1"])
def test_a_main_number_that_is_not_e164_is_refused_naming_the_domain(number: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TenantRules(main_numbers={"contoso.example": number})

    assert "contoso.example" in str(caught.value)


# --- Mass-unassign threshold -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "threshold"),
    [(0, 10), (1, 10), (199, 10), (200, 10), (220, 11), (400, 20), (420, 21), (1000, 50)],
)
def test_the_default_threshold_is_the_larger_of_ten_and_five_percent_of_numbers_held(
    held: int, threshold: int
) -> None:
    assert TenantRules().mass_unassign_threshold(held) == threshold


def test_the_threshold_follows_the_tenants_minimum_and_percentage() -> None:
    rules = TenantRules(mass_unassign_minimum=2, mass_unassign_percent=25)

    assert rules.mass_unassign_threshold(4) == 2
    assert rules.mass_unassign_threshold(40) == 10


def test_a_zero_minimum_and_percentage_allow_no_unassignment_at_all() -> None:
    rules = TenantRules(mass_unassign_minimum=0, mass_unassign_percent=0)

    assert rules.mass_unassign_threshold(1000) == 0


@pytest.mark.parametrize(
    "fields",
    [{"massUnassignMinimum": -1}, {"massUnassignPercent": -0.5}, {"massUnassignPercent": 101}],
)
def test_a_negative_minimum_or_a_percentage_outside_0_to_100_is_refused(
    fields: dict[str, object],
) -> None:
    with pytest.raises(ValidationError, match=next(iter(fields))):
        TenantRules.model_validate(fields)


@pytest.mark.parametrize(("held", "threshold"), [(210, 10), (401, 20)])
def test_unassignments_above_a_fractional_share_of_numbers_held_are_over_the_threshold(
    held: int, threshold: int
) -> None:
    assert TenantRules().mass_unassign_threshold(held) == threshold


def test_the_threshold_is_exact_for_a_decimal_percentage() -> None:
    rules = TenantRules(mass_unassign_minimum=0, mass_unassign_percent=2.2)

    assert rules.mass_unassign_threshold(1500) == 33


# --- Defaults and JSON aliases -----------------------------------------------------------------


def test_the_defaults_are_strict_e164_with_no_ranges_or_main_numbers() -> None:
    rules = TenantRules()

    assert rules.default_region is None
    assert not rules.accept_formatted
    assert not rules.allow_extensions
    assert rules.main_numbers == {}
    assert rules.number_ranges == ()
    assert (rules.mass_unassign_minimum, rules.mass_unassign_percent) == (10, 5.0)


def test_rules_are_read_from_camel_case_json() -> None:
    rules = TenantRules.model_validate_json(
        """{
            "defaultRegion": "NL",
            "acceptFormatted": true,
            "allowExtensions": true,
            "mainNumbers": {"Contoso.example": "+31855363010"},
            "numberRanges": [{"first": "+31855363000", "last": "+31855363999"}],
            "massUnassignMinimum": 3,
            "massUnassignPercent": 12.5
        }"""
    )

    assert rules == TenantRules(
        default_region="NL",
        accept_formatted=True,
        allow_extensions=True,
        main_numbers={"contoso.example": "+31855363010"},
        number_ranges=(BLOCK,),
        mass_unassign_minimum=3,
        mass_unassign_percent=12.5,
    )


def test_rules_dump_back_to_the_same_camel_case_json() -> None:
    rules = TenantRules(default_region="NL", number_ranges=(BLOCK,))

    body = rules.model_dump(mode="json", by_alias=True)

    assert body["defaultRegion"] == "NL"
    assert body["numberRanges"] == [{"first": "+31855363000", "last": "+31855363999"}]
    assert TenantRules.model_validate(body) == rules


@pytest.mark.parametrize("field", ["acceptFormated", "extensions", "ranges"])
def test_an_unknown_or_misspelt_option_is_refused_naming_it(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        TenantRules.model_validate({field: True})


@pytest.mark.parametrize("region", ["nl", "NLD", "N", ""])
def test_a_default_region_must_be_two_upper_case_letters(region: str) -> None:
    with pytest.raises(ValidationError, match=r"defaultRegion|default_region"):
        TenantRules.model_validate({"defaultRegion": region})


def test_a_range_given_low_to_high_in_json_must_still_be_ordered() -> None:
    with pytest.raises(ValidationError, match="low to high"):
        TenantRules.model_validate(
            {"numberRanges": [{"first": "+31855363999", "last": "+31855363000"}]}
        )


def test_rules_are_frozen() -> None:
    rules = TenantRules()

    with pytest.raises(ValidationError):
        rules.accept_formatted = True
