"""Application permissions: which granted role lets a token call which route.

A scenario's `tenant.grantedPermissions` lists the application permissions (app roles) the
tenant's admin consented to; the simulator's token carries exactly those (absent: every one). Each
route needs one of the permissions Graph's v1.0 reference lists for it (the least privileged one
or a higher one); without any of them Graph answers 403 `Authorization_RequestDenied`.

Transitive members are the exception Graph documents: with a group permission but none that
reads users, the members still come back, 200, as "limited information" -- each only
`@odata.type` and `id` (concepts/permissions-overview, "Limited information returned for
inaccessible member objects").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from graph_simulator.routing import (
    ASSIGN_NUMBER,
    ASSIGN_POLICY,
    GET_NUMBER_ASSIGNMENT,
    GET_OPERATION,
    GET_POLICY_ID,
    GET_USER,
    GET_USER_CONFIGURATION,
    GROUPS_DELTA,
    LIST_NUMBER_ASSIGNMENTS,
    LIST_TRANSITIVE_MEMBER_USERS,
    LIST_USER_CONFIGURATIONS,
    UNASSIGN_NUMBER,
    UNASSIGN_POLICY,
    USERS_DELTA,
)

#: Permissions that read user properties (User.Read.All and the higher ones Graph lists).
READS_USERS: Final = frozenset({
    "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All",
})
#: Permissions that read a group's members (GroupMember.Read.All and the higher ones).
READS_GROUP_MEMBERS: Final = frozenset({
    "GroupMember.Read.All", "GroupMember.ReadWrite.All", "Group.Read.All", "Group.ReadWrite.All",
    "Directory.Read.All", "Directory.ReadWrite.All",
})
_WRITES_NUMBERS: Final = frozenset({"TeamsTelephoneNumber.ReadWrite.All"})
_READS_NUMBERS: Final = frozenset({"TeamsTelephoneNumber.Read.All", *_WRITES_NUMBERS})
_READS_CONFIGURATIONS: Final = frozenset({"TeamsUserConfiguration.Read.All"})
_ASSIGNS_POLICIES: Final = frozenset({"TeamsPolicyUserAssign.ReadWrite.All"})

#: Route name → (its least privileged permission, every permission that lets a token call it).
ROUTE_PERMISSIONS: Final[Mapping[str, tuple[str, frozenset[str]]]] = {
    LIST_TRANSITIVE_MEMBER_USERS: ("GroupMember.Read.All", READS_GROUP_MEMBERS),
    GROUPS_DELTA: ("GroupMember.Read.All", READS_GROUP_MEMBERS),
    GET_USER: ("User.Read.All", READS_USERS),
    USERS_DELTA: ("User.Read.All", READS_USERS),
    LIST_NUMBER_ASSIGNMENTS: ("TeamsTelephoneNumber.Read.All", _READS_NUMBERS),
    GET_NUMBER_ASSIGNMENT: ("TeamsTelephoneNumber.Read.All", _READS_NUMBERS),
    GET_OPERATION: ("TeamsTelephoneNumber.Read.All", _READS_NUMBERS),
    ASSIGN_NUMBER: ("TeamsTelephoneNumber.ReadWrite.All", _WRITES_NUMBERS),
    UNASSIGN_NUMBER: ("TeamsTelephoneNumber.ReadWrite.All", _WRITES_NUMBERS),
    GET_USER_CONFIGURATION: ("TeamsUserConfiguration.Read.All", _READS_CONFIGURATIONS),
    LIST_USER_CONFIGURATIONS: ("TeamsUserConfiguration.Read.All", _READS_CONFIGURATIONS),
    GET_POLICY_ID: ("TeamsPolicyUserAssign.ReadWrite.All", _ASSIGNS_POLICIES),
    ASSIGN_POLICY: ("TeamsPolicyUserAssign.ReadWrite.All", _ASSIGNS_POLICIES),
    UNASSIGN_POLICY: ("TeamsPolicyUserAssign.ReadWrite.All", _ASSIGNS_POLICIES),
}
#: Every permission name a scenario may grant (a typo would otherwise silently deny a route).
KNOWN_PERMISSIONS: Final = frozenset().union(*(every for _, every in ROUTE_PERMISSIONS.values()))

_USER_TYPE: Final = "#microsoft.graph.user"


def missing_permission(route_name: str, granted: frozenset[str] | None) -> str | None:
    """The least privileged permission `route_name` needs when none of its permissions is
    granted (None: allowed; `granted` None means every permission)."""
    needed = ROUTE_PERMISSIONS.get(route_name)
    if granted is None or needed is None or granted & needed[1]:
        return None
    return needed[0]


def reads_users(granted: frozenset[str] | None) -> bool:
    """Whether the token may read user properties (else members are limited information)."""
    return granted is None or bool(granted & READS_USERS)


def limited_information(body: dict[str, Any]) -> dict[str, Any]:
    """A transitive-members page as an app without a user permission sees it: every member
    only `@odata.type` and `id`, nothing else (paging and count unchanged)."""
    members = body.get("value") or []
    return {**body, "value": [{"@odata.type": _USER_TYPE, "id": member["id"]}
                              for member in members]}

