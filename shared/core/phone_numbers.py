"""The customer's number rule: E.164 with a leading ``+``, and a real number for its country.

Pure: no I/O. ``phonenumbers`` (Google's libphonenumber metadata) decides whether a number that is
well formed is also a number that exists in its country's numbering plan, and reads near misses
(``+31 85 536 3010``, ``0855363010``, ``0031855363010``) well enough to suggest the E.164 form.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import NamedTuple

import phonenumbers

from shared.core.outcomes import Reason
from shared.core.tenant_rules import TenantRules

# [0-9], not \d: \d also matches non-ASCII digits.
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_EXTENSION = re.compile(r"(?P<base>[^;]+);ext=(?P<ext>[0-9]{1,10})")
# Formatting people type around digits; anything else makes a value unreadable.
_FORMATTING = re.compile(r"[\s\-().\u00a0/]")
# RFC 3966: what Outlook, phones and some HR tools write ("tel:+31-85-536-3010").
_TEL_URI = re.compile(r"tel:(?P<number>\+[^;]*)", re.IGNORECASE)
_DEFAULT_RULES = TenantRules()


class NumberCheck(NamedTuple):
    """The verdict on one ``telephoneNumber`` value (a NamedTuple: immutable and cheap, since
    every member of every run gets one).

    ``number`` is the form to assign when the value passes (E.164, or a suggestion accepted by
    ``acceptFormatted``: then ``normalised`` is set). ``reason`` and ``message`` say why not;
    ``suggestion`` is the E.164 form of a near miss.
    """

    number: str | None
    reason: Reason | None
    message: str
    suggestion: str | None = None
    normalised: bool = False

    @property
    def ok(self) -> bool:
        """True when the value may be assigned."""
        return self.reason is None


def check_number(raw: str | None, rules: TenantRules = _DEFAULT_RULES) -> NumberCheck:
    """Check a raw ``telephoneNumber`` (``businessPhones[0]``) against the customer's rule.

    Surrounding whitespace is ignored. Anything else that is not strict E.164 is refused (with a
    suggestion when one is unambiguous), unless the tenant accepts formatted numbers.
    """
    return _check(raw, rules.default_region, rules.accept_formatted, rules.allow_extensions)


def number_checker(rules: TenantRules) -> Callable[[str | None], NumberCheck]:
    """``check_number`` with the tenant's rules bound once, for checking many numbers."""
    region, formatted, extensions = (
        rules.default_region, rules.accept_formatted, rules.allow_extensions
    )

    def check(raw: str | None) -> NumberCheck:
        return _check(raw, region, formatted, extensions)

    return check


def clear_remembered_verdicts() -> None:
    """Forget remembered verdicts (benchmarks measure a worker's first plan with it)."""
    _check.cache_clear()


# A verdict depends on the text and three rule options only, and a worker plans the same numbers
# every few minutes: remembering verdicts makes every run after the first cheap.
@functools.lru_cache(maxsize=1 << 18)
def _check(
    raw: str | None, default_region: str | None, accept_formatted: bool, allow_extensions: bool
) -> NumberCheck:
    value = (raw or "").strip()
    if not value:
        return NumberCheck(
            None,
            Reason.NO_NUMBER,
            "The user has no telephoneNumber in Active Directory; set one to give them a number.",
        )
    if _E164.fullmatch(value):  # the common case, kept cheap for large plans
        if is_real_number(value):
            return NumberCheck(value, None, "")
        return _valid_or_not(value, value, None)
    extension = _EXTENSION.fullmatch(value)
    if extension is not None and not allow_extensions:
        return NumberCheck(
            None,
            Reason.INVALID_FORMAT,
            f"telephoneNumber {value!r} has an extension; this tenant does not use extensions, "
            "so write the number without ';ext='.",
        )
    base = extension.group("base") if extension else value
    if _E164.fullmatch(base):
        return _valid_or_not(base, value, extension.group("ext") if extension else None)
    suggestion = suggest_e164(base, default_region)
    if suggestion is not None and accept_formatted:
        full = f"{suggestion};ext={extension.group('ext')}" if extension else suggestion
        return NumberCheck(full, None, f"Normalised {value!r} to {full}.", suggestion, True)
    hint = f" Did you mean {suggestion}?" if suggestion else ""
    return NumberCheck(
        None,
        Reason.INVALID_FORMAT,
        f"telephoneNumber {value!r} is not in E.164 format; write it as + country code and "
        f"number with no spaces or punctuation, e.g. +31855363010.{hint}",
        suggestion,
    )


def suggest_e164(value: str, default_region: str | None) -> str | None:
    """The E.164 form of a near miss, when it can be read without guessing; otherwise None.

    Accepted: international forms with formatting (``+31 85 536 3010``), the ``00`` international
    prefix (``0031855363010``), and national forms (``085-5363010``) when the tenant has a
    default region, and RFC 3966 URIs of a global number (``tel:+31-85-536-3010``). A bare digit
    string without ``+``, ``00`` or a trunk ``0`` is never guessed, nor is a local ``tel:`` URI
    (it means nothing without its ``phone-context``).
    """
    uri = _TEL_URI.fullmatch(value.strip())
    compact = _FORMATTING.sub("", uri.group("number") if uri else value)
    if not re.fullmatch(r"\+?[0-9]{4,17}", compact):
        return None
    if compact.startswith("+"):
        candidate, region = compact, None
    elif compact.startswith("00"):
        candidate, region = "+" + compact[2:], None
    elif compact.startswith("0") and default_region:
        candidate, region = compact, default_region
    else:
        return None
    quick = _quick_e164(candidate, region)
    if quick is not None and is_real_number(quick):
        return quick  # what parse would say, without its ~35 µs (a property test holds this)
    try:
        parsed = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _quick_e164(candidate: str, region: str | None) -> str | None:
    """The E.164 spelling of a candidate when no national-prefix rule is involved, else None:
    international forms as they are; national forms of regions whose trunk prefix is a plain
    ``0`` (the Netherlands, Germany, the UK, ...)."""
    if region is None:
        return candidate if _E164.fullmatch(candidate) else None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if (metadata is None or metadata.national_prefix != "0"
            or metadata.national_prefix_for_parsing not in {None, "0"}
            or metadata.national_prefix_transform_rule is not None):
        return None
    quick = f"+{metadata.country_code}{candidate[1:]}"
    return quick if _E164.fullmatch(quick) else None


def is_real_number(e164: str) -> bool:
    """Whether a strict E.164 string is a valid number in its country's numbering plan.

    The same answer as ``phonenumbers.is_valid_number`` on that number (a property test holds
    the two together), without ``phonenumbers.parse``: the planner checks every member's number
    on every run, and parse costs ~35 µs where this costs ~1 µs. Unlike parse, it never strips a
    national prefix from an international number (``+310855363010`` is not ``+31855363010``).
    """
    # Calling codes are prefix-free, so at most one prefix is a code; two digits is the commonest.
    if (code := e164[1:3]) in _COUNTRY_CODES or (code := e164[1:2]) in _COUNTRY_CODES \
            or (code := e164[1:4]) in _COUNTRY_CODES:
        national = e164[1 + len(code):]
    else:
        return False
    key = (code, len(national))
    pattern = _PATTERNS.get(key, _SHARED_CODE)
    if pattern is _SHARED_CODE and key not in _PATTERNS:
        pattern = _PATTERNS[key] = _national_pattern(code, len(national))
    if pattern is _SHARED_CODE:
        if not national.strip("0"):
            return False
        return phonenumbers.is_valid_number(_phone_number(int(code), national))
    return pattern is not None and pattern.fullmatch(national) is not None


_COUNTRY_CODES = frozenset(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
# (calling code, national length) → pattern; a plain dict: this lookup runs for every number.
_PATTERNS: dict[tuple[str, int], re.Pattern[str] | None] = {}
# Marks calling codes shared by several regions (+1, +7, +44, ...) or non-geographic ones, where
# libphonenumber first picks the region from the number itself: asked of phonenumbers directly.
_SHARED_CODE = re.compile("(?!)")
# The number types libphonenumber tries; a number is valid when it is any of them.
_TYPE_DESCS = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
    "voicemail", "fixed_line", "mobile",
)


def _national_pattern(country_code: str, length: int) -> re.Pattern[str] | None:
    """One pattern for the valid national numbers of one length under one calling code.

    libphonenumber's rule: the number matches the region's general description, and the
    description of at least one number type whose possible lengths include this length.
    """
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(country_code), ())
    if len(regions) != 1 or regions[0] == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        return _SHARED_CODE
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(regions[0])
    general = metadata.general_desc if metadata else None
    if general is None or general.national_number_pattern is None:
        return None
    if general.possible_length and length not in general.possible_length:
        return None
    alternatives = []
    for name in _TYPE_DESCS:
        desc = getattr(metadata, name)
        if desc is None or desc.national_number_pattern is None:
            continue
        if desc.possible_length and length not in desc.possible_length:
            continue
        alternatives.append(f"(?:{desc.national_number_pattern})")
    if not alternatives:
        return None
    return re.compile(f"(?=(?:{general.national_number_pattern})$)(?:{'|'.join(alternatives)})")


def _split_country_code(digits: str) -> tuple[int, str] | None:
    for size in (1, 2, 3):
        if digits[:size] in _COUNTRY_CODES:
            return int(digits[:size]), digits[size:]
    return None


def _phone_number(country_code: int, national: str) -> phonenumbers.PhoneNumber:
    zeros = len(national) - len(national.lstrip("0"))
    return phonenumbers.PhoneNumber(
        country_code=country_code,
        national_number=int(national),
        italian_leading_zero=zeros > 0 or None,
        number_of_leading_zeros=zeros if zeros > 1 else None,
    )


def _valid_or_not(base: str, value: str, extension: str | None) -> NumberCheck:
    if not is_real_number(base):
        split = _split_country_code(base[1:])
        region = "any country"
        if split is not None:
            region = phonenumbers.region_code_for_country_code(split[0])
        return NumberCheck(
            None,
            Reason.INVALID_NUMBER,
            f"telephoneNumber {value!r} is E.164 but not a valid number in {region}; "
            "check the digits.",
        )
    return NumberCheck(f"{base};ext={extension}" if extension else base, None, "")
