from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from shared.core.outcomes import Reason
from shared.core.phone_numbers import check_number, is_real_number, suggest_e164
from shared.core.tenant_rules import TenantRules

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


# --- Suggestions, acceptFormatted and extensions (per-tenant rules) ---------------------------

NL = TenantRules(default_region="NL")
FORMATTED = TenantRules(accept_formatted=True, default_region="NL")
EXTENSIONS = TenantRules(allow_extensions=True)


@pytest.mark.parametrize(
    ("raw", "rules"),
    [
        ("+31 85 536 3010", TenantRules()),  # international form with spaces
        ("+31-85-536-3010", TenantRules()),
        ("+31 (0)85 5363010", TenantRules()),
        ("0031855363010", TenantRules()),  # 00 international prefix
        ("0031 85 536 3010", TenantRules()),
        ("0855363010", NL),  # national form, read with the tenant's default region
        ("085-536 30 10", NL),
        (" 085.536.3010 ", NL),
        ("tel:+31855363010", TenantRules()),  # an RFC 3966 URI of the number
        ("tel:+31-85-536-3010", TenantRules()),
        ("TEL:+31.85.536.3010", NL),
    ],
)
def test_a_near_miss_is_refused_with_the_e164_form_as_suggestion(
    raw: str, rules: TenantRules
) -> None:
    check = check_number(raw, rules)

    assert check.reason is Reason.INVALID_FORMAT
    assert check.number is None
    assert check.suggestion == "+31855363010"
    assert "Did you mean +31855363010?" in check.message
    assert not check.normalised


@pytest.mark.parametrize(
    ("raw", "rules"),
    [
        ("31855363010", TenantRules()),  # bare digits: country code or not? never guessed
        ("31855363010", NL),
        ("0855363010", TenantRules()),  # national form without a default region
        ("085-5363010", TenantRules()),
        ("+31 85 536 301", TenantRules()),  # formatted but one digit short
        ("00999123456", TenantRules()),  # no such country code
        ("tel:0855363010", NL),  # a local tel: URI means nothing without its phone-context
        ("tel:0855363010;phone-context=+31", NL),
        ("tel:+31855363010;phone-context=+31", TenantRules()),
        ("+31 85 536 3010 / +31 85 536 3011", TenantRules()),
        ("+31 85 536 3010 x12", TenantRules()),
    ],
)
def test_no_suggestion_when_the_value_cannot_be_read_without_guessing(
    raw: str, rules: TenantRules
) -> None:
    check = check_number(raw, rules)

    assert check.reason is Reason.INVALID_FORMAT
    assert check.suggestion is None
    assert "Did you mean" not in check.message


def test_an_unknown_default_region_gives_no_suggestion_instead_of_failing() -> None:
    assert suggest_e164("0855363010", "XX") is None


@pytest.mark.parametrize(
    "raw", ["+31 85 536 3010", "0031855363010", "085 536 3010", " 0855363010\t",
            "tel:+31-85-536-3010"]
)
def test_accept_formatted_assigns_the_e164_form_reported_as_normalised(raw: str) -> None:
    check = check_number(raw, FORMATTED)

    assert check.ok
    assert check.number == "+31855363010"
    assert check.normalised
    assert check.suggestion == "+31855363010"
    assert "Normalised" in check.message
    assert "+31855363010" in check.message


def test_accept_formatted_leaves_strict_e164_as_it_is_and_not_normalised() -> None:
    check = check_number(" +31855363010 ", FORMATTED)

    assert check.ok
    assert check.number == "+31855363010"
    assert not check.normalised
    assert check.message == ""


@pytest.mark.parametrize("raw", ["31855363010", "+3185536301", "reception", "0855363010"])
def test_accept_formatted_does_not_accept_what_has_no_suggestion_or_is_not_real(raw: str) -> None:
    check = check_number(raw, TenantRules(accept_formatted=True))

    assert not check.ok
    assert not check.normalised
    assert check.number is None


@pytest.mark.parametrize(
    "raw", ["+31855363010;ext=123", "+31855363010;ext=1", " +31855363010;ext=12 "]
)
def test_an_extension_is_invalid_format_unless_the_tenant_allows_extensions(raw: str) -> None:
    refused = check_number(raw)
    allowed = check_number(raw, EXTENSIONS)

    assert refused.reason is Reason.INVALID_FORMAT
    assert "ext" in refused.message
    assert allowed.ok
    assert allowed.number == raw.strip()
    assert not allowed.normalised


@pytest.mark.parametrize(
    "raw",
    [
        "+31855363010;ext=",  # no digits
        "+31855363010;ext=12345678901",  # more than 10 digits
        "+31855363010;ext=12a",
        "+31855363010;EXT=12",
        "+31855363010;ext=1;ext=2",
        "+31855363010 ;ext=12",
    ],
)
def test_a_malformed_extension_is_invalid_format_even_when_extensions_are_allowed(raw: str) -> None:
    check = check_number(raw, EXTENSIONS)

    assert check.reason is Reason.INVALID_FORMAT
    assert check.number is None


def test_an_extension_on_a_number_that_does_not_exist_is_invalid_number() -> None:
    check = check_number("+3185536301;ext=12", EXTENSIONS)

    assert check.reason is Reason.INVALID_NUMBER
    assert check.number is None
    assert "NL" in check.message


def test_an_extension_on_a_formatted_base_is_invalid_format_with_a_suggestion() -> None:
    check = check_number("+31 85 536 3010;ext=12", EXTENSIONS)

    assert check.reason is Reason.INVALID_FORMAT
    assert check.suggestion == "+31855363010"


def test_accept_formatted_with_extensions_keeps_the_extension_on_the_e164_form() -> None:
    rules = TenantRules(allow_extensions=True, accept_formatted=True)

    check = check_number("+31 85 536 3010;ext=12", rules)

    assert check.ok
    assert check.number == "+31855363010;ext=12"
    assert check.normalised


@settings(max_examples=150, deadline=None)
@given(real_numbers)
def test_any_real_number_in_international_format_gets_its_e164_form_as_suggestion(
    number: phonenumbers.PhoneNumber,
) -> None:
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    assert check_number(international).suggestion == e164
    rfc3966 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.RFC3966)
    assert check_number(rfc3966).suggestion == e164
    formatted = check_number(international, TenantRules(accept_formatted=True))
    assert (formatted.number, formatted.normalised) == (e164, True)


_CALLING_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _reference(e164: str) -> bool:
    """phonenumbers' own verdict on a strict E.164 string, without parse's leniency."""
    digits = e164[1:]
    for size in (1, 2, 3):
        if int(digits[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = digits[size:]
            zeros = len(national) - len(national.lstrip("0"))
            number = phonenumbers.PhoneNumber(
                country_code=int(digits[:size]), national_number=int(national),
                italian_leading_zero=zeros > 0 or None,
                number_of_leading_zeros=zeros if zeros > 1 else None,
            )
            return bool(phonenumbers.is_valid_number(number))
    return False


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(_CALLING_CODES),
    st.text(alphabet="0123456789", min_size=1, max_size=13),
)
def test_the_fast_validity_check_agrees_with_phonenumbers_on_any_digits(
    code: int, national: str
) -> None:
    e164 = f"+{code}{national}"
    assume(len(e164) <= 16 and national.strip("0"))

    assert is_real_number(e164) == _reference(e164)


@settings(max_examples=300, deadline=None)
@given(real_numbers, st.text(alphabet="0123456789", min_size=1, max_size=3))
def test_the_fast_validity_check_agrees_with_phonenumbers_near_real_numbers(
    number: phonenumbers.PhoneNumber, tail: str
) -> None:
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    near = e164[: len(e164) - len(tail)] + tail
    assume(near[1:].strip("0") and len(near) > 2)

    assert is_real_number(near) == _reference(near)


_NATIONAL_FORMS = [
    (region, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
    for region in sorted(phonenumbers.SUPPORTED_REGIONS)
    for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE)
    if (number := phonenumbers.example_number_for_type(region, kind)) is not None
]


@pytest.mark.parametrize(("region", "national"), _NATIONAL_FORMS[::3])
def test_a_suggestion_for_a_national_form_is_what_phonenumbers_reads(
    region: str, national: str
) -> None:
    try:
        parsed = phonenumbers.parse(national, region)
        expected = (
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_valid_number(parsed) else None
        )
    except phonenumbers.NumberParseException:
        expected = None
    compact = national.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
    if not compact.startswith("0"):
        expected = None  # only trunk-prefixed national forms are ever suggested
    assert suggest_e164(national, region) == expected
