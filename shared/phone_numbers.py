"""The customer's number rule: E.164 with a leading ``+``, and a real number for its country.

Pure: no I/O. ``phonenumbers`` (Google's libphonenumber metadata) decides whether a number that is
well formed is also a number that exists in its country's numbering plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

from shared.outcomes import Reason

# E.164: "+", a country code that does not start with 0, at most 15 digits in all.
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")  # [0-9], not \d: \d also matches non-ASCII digits


@dataclass(frozen=True, slots=True)
class NumberCheck:
    """The verdict on one ``telephoneNumber`` value.

    ``number`` is the E.164 form when the value passes; ``reason`` and ``message`` say why not.
    """

    number: str | None
    reason: Reason | None
    message: str

    @property
    def ok(self) -> bool:
        """True when the value may be assigned."""
        return self.reason is None


def check_number(raw: str | None) -> NumberCheck:
    """Check a raw ``telephoneNumber`` (``businessPhones[0]``) against the customer's rule.

    Surrounding whitespace is ignored; anything else that is not strict E.164 is refused, even when
    the intent is obvious, because the customer's rule says so.
    """
    value = (raw or "").strip()
    if not value:
        return NumberCheck(
            None,
            Reason.NO_NUMBER,
            "The user has no telephoneNumber in Active Directory; set one to give them a number.",
        )
    if not _E164.fullmatch(value):
        return NumberCheck(
            None,
            Reason.INVALID_FORMAT,
            f"telephoneNumber {value!r} is not in E.164 format; write it as + country code and "
            "number with no spaces or punctuation, e.g. +31855363010.",
        )
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        region = "any country"
        if parsed is not None and parsed.country_code is not None:
            region = phonenumbers.region_code_for_country_code(parsed.country_code)
        return NumberCheck(
            None,
            Reason.INVALID_NUMBER,
            f"telephoneNumber {value!r} is E.164 but not a valid number in {region}; "
            "check the digits.",
        )
    return NumberCheck(value, None, "")
