"""Small scenarios built in code, for integration tests that need a particular directory shape."""

from __future__ import annotations

import uuid
from typing import Any

from graph_simulator import Scenario, parse_scenario

DOMAIN = "contoso.example"


def user_id(name: str) -> str:
    """A stable GUID for a test user's name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"user:{name}"))


def build_scenario(
    members: list[tuple[str, list[str]]],
    *,
    existing: dict[str, str] | None = None,
    behaviour: dict[str, Any] | None = None,
) -> Scenario:
    """A tenant whose voice group has ``members`` (name, businessPhones) as direct members, in
    that read order; ``existing`` is number → user name already assigned in Teams."""
    group = str(uuid.uuid5(uuid.NAMESPACE_URL, "group:EnterpriseVoiceEnabled"))
    users = [
        {
            "id": user_id(name),
            "userPrincipalName": f"{name}@{DOMAIN}",
            "displayName": name,
            "businessPhones": phones,
            "accountEnabled": True,
        }
        for name, phones in members
    ]
    return parse_scenario({
        "version": 1,
        "tenant": {"id": str(uuid.uuid4()), "voiceGroupId": group, "defaultDomain": DOMAIN},
        "users": users,
        "groups": [{
            "id": group,
            "displayName": "EnterpriseVoiceEnabled",
            "members": [user["id"] for user in users],
        }],
        "numberAssignments": [
            {
                "telephoneNumber": number,
                "numberType": "directRouting",
                "assignmentTargetId": user_id(name),
            }
            for number, name in (existing or {}).items()
        ],
        "behaviour": behaviour or {},
    })
