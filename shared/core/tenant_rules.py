"""A tenant's number rules: the options the customer agreed with the operator.

Pure data, validated with pydantic when read from app settings or a scenario file. The planner and
the number check take these as input; nothing here reads the environment.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


class NumberRange(BaseModel):
    """An inclusive block of numbers the operator supplied, e.g. +31855363000 … +31855363999."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel,
                              populate_by_name=True)

    first: str
    last: str

    @field_validator("first", "last")
    @classmethod
    def _is_e164(cls, value: str) -> str:
        if not _E164.fullmatch(value):
            raise ValueError(f"must be E.164 with a leading +, got {value!r}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if len(self.first) != len(self.last) or self.first > self.last:
            raise ValueError(
                f"range {self.first}…{self.last} must run from low to high with equal lengths"
            )
        return self

    def __contains__(self, number: object) -> bool:
        # Equal-length digit strings compare like the numbers they spell.
        return (
            isinstance(number, str)
            and len(number) == len(self.first)
            and self.first <= number <= self.last
        )

    def __str__(self) -> str:
        return f"{self.first}…{self.last}"

    @property
    def size(self) -> int:
        """How many numbers the range holds."""
        return int(self.last[1:]) - int(self.first[1:]) + 1


class MainNumberPolicy(BaseModel):
    """One Teams policy a main number's users get: Graph's ``policyType`` and the policy's name.

    The type is free text (Graph documents no list of accepted spellings; the Teams PowerShell
    names such as ``CallingLineIdentity`` and ``OnlineVoiceRoutingPolicy`` are what its own
    ``effectivePolicyAssignments`` show); the name may carry Teams' ``Tag:`` prefix.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel,
                              populate_by_name=True, str_strip_whitespace=True)

    policy_type: Annotated[str, Field(min_length=1, pattern=r"^[^\s:,;=]+$")]
    name: Annotated[str, Field(min_length=1)]

    def __str__(self) -> str:
        return f"{self.policy_type} {self.name!r}"


def parse_main_number_policies(text: str) -> dict[str, list[dict[str, str]]]:
    """Read the operator's text form of ``MAIN_NUMBER_POLICIES``.

    ``contoso.example=CallingLineIdentity:Contoso Main,OnlineVoiceRoutingPolicy:NL-Route;
    fabrikam.example=CallingLineIdentity:Fabrikam Main``: per SIP domain, ``type:name`` pairs.
    The name is everything after the first ``:`` (so ``Tag:Contoso Main`` works); names with
    ``,`` or ``;`` cannot be written this way (use the JSON form in a scenario file).

    Raises:
        ValueError: naming the piece that is wrong and the form it should have.
    """
    parsed: dict[str, list[dict[str, str]]] = {}
    for piece in (part.strip() for part in text.split(";")):
        if not piece:
            continue
        domain, equals, listed = piece.partition("=")
        if not equals or not domain.strip():
            raise ValueError(
                f"{piece!r} must be domain=PolicyType:PolicyName[,PolicyType:PolicyName...]"
            )
        policies = []
        for pair in (item.strip() for item in listed.split(",")):
            policy_type, colon, name = pair.partition(":")
            if colon and policy_type.strip() and not name.strip():
                raise ValueError(f"{pair!r} (for {domain.strip()}) has an empty policy name")
            if not colon or not policy_type.strip():
                raise ValueError(
                    f"{pair!r} (for {domain.strip()}) must be PolicyType:PolicyName, e.g. "
                    "CallingLineIdentity:Contoso Main"
                )
            policies.append({"policyType": policy_type.strip(), "name": name.strip()})
        key = domain.strip().lower()
        if key in parsed:
            raise ValueError(f"domain {key!r} is listed twice; list all its policies once")
        parsed[key] = policies
    return parsed


def format_main_number_policies(
    policies: dict[str, tuple[MainNumberPolicy, ...]],
) -> str:
    """The text form ``parse_main_number_policies`` reads (for app settings written by tools)."""
    return ";".join(
        f"{domain}=" + ",".join(f"{p.policy_type}:{p.name}" for p in listed)
        for domain, listed in sorted(policies.items())
    )


class TenantRules(BaseModel):
    """How the customer's rules apply in this tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel,
                              populate_by_name=True)

    default_region: Annotated[str | None, Field(pattern=r"^[A-Z]{2}$")] = None
    """ISO region for reading national numbers (``0855363010``) when suggesting a correction."""
    accept_formatted: bool = False
    """Assign near misses that phonenumbers reads unambiguously, in their E.164 form."""
    allow_extensions: bool = False
    """Accept ``;ext=`` suffixes (``+31855363010;ext=123``)."""
    main_numbers: dict[str, str] = Field(default_factory=dict)
    """SIP domain → that domain's main number; never given to a person."""
    number_ranges: tuple[NumberRange, ...] = ()
    """The numbers the customer supplied; when set, numbers outside them are not assigned."""
    grace_period_hours: Annotated[float, Field(ge=0)] = 24.0
    """How long a leaver, a disabled account or a cleared number keeps the number (0: at once)."""
    cooling_days: Annotated[float, Field(ge=0)] = 0.0
    """How long a number taken back rests before anyone else gets it."""
    mass_unassign_minimum: Annotated[int, Field(ge=0)] = 10
    mass_unassign_percent: Annotated[float, Field(ge=0, le=100)] = 5.0
    main_number_policies: dict[str, tuple[MainNumberPolicy, ...]] = Field(default_factory=dict)
    """SIP domain → the policies its main number's users get (caller ID, voice routing, …)."""

    @field_validator("main_numbers")
    @classmethod
    def _main_numbers_are_e164(cls, value: dict[str, str]) -> dict[str, str]:
        for domain, number in value.items():
            if not _E164.fullmatch(number):
                raise ValueError(f"main number of {domain!r} must be E.164, got {number!r}")
        return {domain.lower(): number for domain, number in value.items()}

    @field_validator("main_number_policies", mode="before")
    @classmethod
    def _main_number_policies_from_text(cls, value: Any) -> Any:
        # App settings carry the text form; scenario files may use it or the JSON form.
        return parse_main_number_policies(value) if isinstance(value, str) else value

    @field_validator("main_number_policies")
    @classmethod
    def _policies_belong_to_main_numbers(
        cls, value: dict[str, tuple[MainNumberPolicy, ...]], info: ValidationInfo
    ) -> dict[str, tuple[MainNumberPolicy, ...]]:
        mains = info.data.get("main_numbers")
        normalised = {domain.strip().lower(): policies for domain, policies in value.items()}
        for domain, policies in normalised.items():
            if not policies:
                raise ValueError(f"domain {domain!r} lists no policies")
            types = [policy.policy_type.casefold() for policy in policies]
            if len(set(types)) != len(types):
                raise ValueError(
                    f"domain {domain!r} lists a policy type twice; a user holds one policy per "
                    "type"
                )
            if mains is not None and domain not in mains:
                raise ValueError(
                    f"domain {domain!r} has no main number in MAIN_NUMBERS; add "
                    f"{domain}=+<main number> there or remove the domain here"
                )
        return normalised

    def policies_for_domain(self, domain: str) -> tuple[MainNumberPolicy, ...]:
        """The policies the users of ``domain``'s main number get (none when not configured)."""
        return self.main_number_policies.get(domain.lower(), ())

    def mass_unassign_threshold(self, numbers_held: int) -> int:
        """The most unassignments one plan may carry out without an approval: the larger of the
        minimum and the percentage of the numbers held, rounded down (more than 10.5 is 11)."""
        share = Decimal(numbers_held) * Decimal(str(self.mass_unassign_percent)) / 100
        return max(self.mass_unassign_minimum, math.floor(share))

    def main_number_domain(self, number: str) -> str | None:
        """The SIP domain whose main number this is, if any."""
        return self.domains_by_main_number().get(number)

    def domains_by_main_number(self) -> dict[str, str]:
        """Main number → its SIP domain (the first domain alphabetically, if two share one)."""
        by_number: dict[str, str] = {}
        for domain, main in sorted(self.main_numbers.items()):
            by_number.setdefault(main, domain)
        return by_number

    def range_of(self, number: str) -> NumberRange | None:
        """The supplied range holding the number (None also when no ranges are configured)."""
        return next((block for block in self.number_ranges if number in block), None)
