from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.outcomes import Reason
from shared.phone_numbers import check_number

NUMBER_TYPES = (
    phonenumbers.PhoneNumberType.FIXED_LINE,
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.TOLL_FREE,
    phonenumbers.PhoneNumberType.VOIP,
)
# libphonenumber's own example numbers: real numbers for every supported region.
EXAMPLES = tuple(
    example
    for region in sorted(phonenumbers.SUPPORTED_REGIONS)
    for number_type in NUMBER_TYPES
    if (example := phonenumbers.example_number_for_type(region, number_type)) is not None
)
real_numbers = st.sampled_from(EXAMPLES)


def test_the_customers_main_number_in_e164_passes_unchanged() -> None:
    check = check_number("+31855363010")

    assert check.ok
    assert check.number == "+31855363010"
    assert check.reason is None
    assert check.message == ""


@pytest.mark.parametrize("raw", [" +31855363010", "+31855363010 ", "\t+31855363010\n"])
def test_surrounding_whitespace_is_ignored_and_not_kept(raw: str) -> None:
    check = check_number(raw)

    assert check.ok
    assert check.number == "+31855363010"


@pytest.mark.parametrize(
    "raw",
    [
        "+31 85 536 3010",
        "+31-85-536-3010",
        "+31 (0)85 5363010",
        "+31.85.536.3010",
        "0855363010",
        "0031855363010",
        "31855363010",
        "++31855363010",
        "+031855363010",
        "tel:+31855363010",
    ],
)
def test_anything_but_strict_e164_is_refused_as_invalid_format(raw: str) -> None:
    check = check_number(raw)

    assert not check.ok
    assert check.number is None
    assert check.reason is Reason.INVALID_FORMAT
    assert repr(raw) in check.message
    assert "E.164" in check.message


@pytest.mark.parametrize("raw", [None, "", "   ", "\t\n"])
def test_a_missing_or_blank_number_is_no_number(raw: str | None) -> None:
    check = check_number(raw)

    assert not check.ok
    assert check.number is None
    assert check.reason is Reason.NO_NUMBER
    assert "telephoneNumber" in check.message


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ("+3185536301", "NL"),  # one digit short for a Dutch number
        ("+999123456", "any country"),  # no such country code
    ],
)
def test_e164_shaped_but_unreal_numbers_are_invalid_number(raw: str, where: str) -> None:
    check = check_number(raw)

    assert not check.ok
    assert check.number is None
    assert check.reason is Reason.INVALID_NUMBER
    assert repr(raw) in check.message
    assert where in check.message


@pytest.mark.parametrize(
    "raw",
    [
        "+3\u0661\u0668\u0665\u0665\u0663\u0666\u0663\u0660\u0661\u0660",  # Arabic-Indic digits
        "+3\uff11\uff18\uff15\uff15\uff13\uff16\uff13\uff10\uff11\uff10",  # full-width digits
    ],
)
def test_numbers_written_with_non_ascii_digits_are_not_passed_through_as_e164(raw: str) -> None:
    check = check_number(raw)

    assert check.number is None
    assert check.reason is Reason.INVALID_FORMAT


@settings(max_examples=150, deadline=None)
@given(real_numbers)
def test_any_real_number_in_e164_passes_and_comes_back_unchanged(
    number: phonenumbers.PhoneNumber,
) -> None:
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    check = check_number(e164)

    assert check.ok, check.message
    assert check.number == e164


@settings(max_examples=150, deadline=None)
@given(real_numbers)
def test_the_same_number_in_international_format_never_passes(
    number: phonenumbers.PhoneNumber,
) -> None:
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)

    check = check_number(international)

    assert not check.ok
    assert check.reason is Reason.INVALID_FORMAT


@settings(max_examples=200, deadline=None)
@given(st.text().filter(lambda text: not text.strip().startswith("+")))
def test_text_that_does_not_start_with_plus_never_passes(text: str) -> None:
    check = check_number(text)

    assert not check.ok
    assert check.number is None


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.from_regex(r"\+[0-9]{0,17}", fullmatch=True),
        st.none(),
    )
)
def test_check_number_never_raises_and_gives_exactly_one_verdict(raw: str | None) -> None:
    check = check_number(raw)

    assert (check.number is None) != (check.reason is None)
    assert check.ok == (check.number is not None)
    assert (check.message == "") == check.ok
    if check.number is not None:
        assert check.number == (raw or "").strip()
