"""A tenant being onboarded, with what the app must end with: the fault suite's ground truth.

Most of the voice group are new users, each with a valid personal number waiting free in the
Teams inventory. A few must *not* get a number, so "no number on a user who should not have
it" means something: a number written the way people type it (``invalid_format``), a number a
user read earlier already carries (``duplicate``), and a number Teams has on someone outside
the voice group (``assigned_elsewhere``; that holder keeps it). A few inventory numbers nobody
carries stay free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graph_simulator import Scenario, parse_scenario
from shared.core.outcomes import Reason

DOMAIN = "contoso.example"
TENANT_ID = "5e1f2a40-0000-4000-8000-000000000000"
VOICE_GROUP_ID = "5e1f2a40-0000-4000-8000-0000000000a1"
_BASE = 31_855_000_000  # +31 85 5xx xxxx: valid Dutch numbers
_SPARE_NUMBERS = 3


@dataclass(frozen=True)
class Expectations:
    """What a tenant must look like once the app has converged."""

    tenant_id: str
    members: dict[str, str]
    """The voice group: user id → UPN."""
    numbers: dict[str, str]
    """User id → the number the user must end with in Teams (the users who get one)."""
    refused: dict[str, Reason]
    """User id → why the user must not get a number (skipped with this reason)."""
    kept_elsewhere: dict[str, str]
    """Number → the user outside the voice group who had it in Teams and keeps it."""
    free_at_start: frozenset[str]
    """Inventory numbers on nobody when the onboarding starts."""


def _user_id(index: int) -> str:
    return f"5e1f2a40-0000-4000-8000-{index:012d}"


def _number(index: int) -> str:
    return f"+{_BASE + 1 + index}"


def _refused_positions(users: int) -> dict[int, Reason]:
    """Read positions of the users who must not get a number: about 1 % of each kind (at
    least two), spread over the whole read order."""
    per_kind = max(2, users // 100)
    kinds = [Reason.INVALID_FORMAT, Reason.DUPLICATE, Reason.ASSIGNED_ELSEWHERE] * per_kind
    if len(kinds) * 3 > users:
        raise ValueError(f"{users} users are too few for a tenant with {len(kinds)} refusals")
    step = users // (len(kinds) + 1)
    return {step * (slot + 1): kind for slot, kind in enumerate(kinds)}


def onboarding_tenant(
    users: int, *, behaviour: dict[str, Any] | None = None
) -> tuple[Scenario, Expectations]:
    """A voice group of ``users`` members (see the module docstring) and what they must end
    with; ``behaviour`` is the simulator's (``rateLimit``, ``operationSeconds``, ...)."""
    refused_at = _refused_positions(users)
    people: list[dict[str, Any]] = []
    inventory: list[dict[str, Any]] = []
    numbers: dict[str, str] = {}
    refused: dict[str, Reason] = {}
    kept_elsewhere: dict[str, str] = {}
    for index in range(users):
        user_id = _user_id(index)
        reason = refused_at.get(index)
        if reason is Reason.INVALID_FORMAT:
            # A national form: the app suggests +31…, but never assigns it on its own.
            phone = "0" + _number(index).removeprefix("+31")
        elif reason is Reason.DUPLICATE:
            phone = numbers[_user_id(index - 1)]  # the user read just before carries it
        elif reason is Reason.ASSIGNED_ELSEWHERE:
            phone = _number(index)
            holder = _user_id(users + index)
            people.append({"id": holder, "userPrincipalName": f"desk-{index:05d}@{DOMAIN}",
                           "businessPhones": [], "accountEnabled": True})
            inventory.append({"telephoneNumber": phone, "numberType": "directRouting",
                              "assignmentTargetId": holder})
            kept_elsewhere[phone] = holder
        else:
            phone = _number(index)
            inventory.append({"telephoneNumber": phone, "numberType": "directRouting",
                              "assignmentTargetId": None})
            numbers[user_id] = phone
        if reason is not None:
            refused[user_id] = reason
        people.append({"id": user_id, "userPrincipalName": f"user-{index:05d}@{DOMAIN}",
                       "businessPhones": [phone], "accountEnabled": True})
    for spare in range(_SPARE_NUMBERS):
        inventory.append({"telephoneNumber": _number(2 * users + spare),
                          "numberType": "directRouting", "assignmentTargetId": None})
    members = {person["id"]: person["userPrincipalName"] for person in people
               if not person["userPrincipalName"].startswith("desk-")}
    scenario = parse_scenario({
        "version": 1,
        "tenant": {"id": TENANT_ID, "voiceGroupId": VOICE_GROUP_ID, "defaultDomain": DOMAIN,
                   "rules": {"defaultRegion": "NL"}},
        "users": people,
        "groups": [{"id": VOICE_GROUP_ID, "displayName": "EnterpriseVoiceEnabled",
                    "members": list(members)}],
        "numberAssignments": inventory,
        "behaviour": behaviour or {},
    })
    return scenario, Expectations(
        tenant_id=TENANT_ID,
        members=members,
        numbers=numbers,
        refused=refused,
        kept_elsewhere=kept_elsewhere,
        free_at_start=frozenset(entry["telephoneNumber"] for entry in inventory
                                if entry["assignmentTargetId"] is None),
    )


def with_tenant_id(scenario: Scenario, expectations: Expectations,
                   tenant_id: str) -> tuple[Scenario, Expectations]:
    """The same tenant under another id (tests sharing one Azurite keep their rows apart)."""
    data = scenario.model_dump(by_alias=True)
    data["tenant"]["id"] = tenant_id
    return parse_scenario(data), Expectations(
        tenant_id=tenant_id, members=expectations.members, numbers=expectations.numbers,
        refused=expectations.refused, kept_elsewhere=expectations.kept_elsewhere,
        free_at_start=expectations.free_at_start,
    )
