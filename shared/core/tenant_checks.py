"""What a customer tenant must have granted, and what a tenant's trouble means for its health.

Pure. The app reads a tenant's consent from the ``roles`` claim of its Graph token (the
application permissions the customer's admin granted): before every run, so that a tenant whose
consent lacks a permission is reported once, as the tenant's health, instead of failing once per
user; and in ``tenants check``, so that onboarding names every permission still missing.

A run's failure becomes the tenant's health here too (``health_of_failure``): refused
(401/403) → ``auth_failed``; the voice group gone → ``group_missing``; anything else from Graph
→ ``graph_unavailable``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from shared.core.errors import PermanentError, SyncError, TemporaryError
from shared.core.outcomes import Reason
from shared.core.tenant_registry import TenantHealthState
from shared.core.tenant_rules import TenantRules


@dataclass(frozen=True, slots=True)
class Permission:
    """An application permission a feature needs: the least privileged one to grant, and every
    granted role that also allows it (Graph's v1.0 reference lists the higher ones)."""

    feature: str
    least: str
    allowed_by: frozenset[str]


_GROUP_MEMBERS = frozenset({
    "GroupMember.Read.All", "GroupMember.ReadWrite.All", "Group.Read.All", "Group.ReadWrite.All",
    "Directory.Read.All", "Directory.ReadWrite.All",
})
_USERS = frozenset({
    "User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All",
})

#: What every tenant needs: the voice group's members with their phones, Teams' numbers and
#: the users' Teams configuration.
REQUIRED: tuple[Permission, ...] = (
    Permission("read the voice group's members", "GroupMember.Read.All", _GROUP_MEMBERS),
    Permission("read users' telephoneNumber", "User.Read.All", _USERS),
    Permission("assign and unassign Teams numbers", "TeamsTelephoneNumber.ReadWrite.All",
               frozenset({"TeamsTelephoneNumber.ReadWrite.All"})),
    Permission("read users' Teams configuration", "TeamsUserConfiguration.Read.All",
               frozenset({"TeamsUserConfiguration.Read.All"})),
)
#: Only for a tenant with main-number policies.
POLICY_ASSIGNMENT = Permission(
    "assign main numbers' policies", "TeamsPolicyUserAssign.ReadWrite.All",
    frozenset({"TeamsPolicyUserAssign.ReadWrite.All"}),
)


def needed_permissions(rules: TenantRules) -> tuple[Permission, ...]:
    """The permissions the features this tenant uses need."""
    return (*REQUIRED, POLICY_ASSIGNMENT) if rules.main_number_policies else REQUIRED


def missing_permissions(roles: Iterable[str], rules: TenantRules) -> tuple[Permission, ...]:
    """The needed permissions none of ``roles`` allows, in the order of ``needed_permissions``."""
    granted = frozenset(roles)
    return tuple(need for need in needed_permissions(rules) if not granted & need.allowed_by)


def missing_permissions_message(missing: Iterable[Permission]) -> str:
    """One line a person can act on: what to grant, and what for."""
    named = "; ".join(f"{need.least} (to {need.feature})" for need in missing)
    return (f"The app's consent in this tenant lacks {named}. A Global or Privileged Role "
            f"Administrator of the customer must grant it (admin consent again).")


@dataclass(frozen=True, slots=True)
class ObservedHealth:
    """What one run (or check) found about a tenant as a whole."""

    state: TenantHealthState
    message: str


HEALTHY = ObservedHealth(TenantHealthState.HEALTHY, "The last run completed.")


def health_of_missing(missing: tuple[Permission, ...]) -> ObservedHealth:
    """``auth_failed`` naming every missing permission (``HEALTHY`` when none is)."""
    if not missing:
        return HEALTHY
    return ObservedHealth(TenantHealthState.AUTH_FAILED, missing_permissions_message(missing))


def health_of_failure(error: SyncError) -> ObservedHealth:
    """The tenant's health after a run failed with ``error``."""
    if isinstance(error, PermanentError) and error.reason is Reason.GRAPH_FORBIDDEN:
        return ObservedHealth(TenantHealthState.AUTH_FAILED, error.message)
    if isinstance(error, PermanentError) and error.reason is Reason.GROUP_NOT_FOUND:
        return ObservedHealth(TenantHealthState.GROUP_MISSING, error.message)
    if isinstance(error, TemporaryError):
        return ObservedHealth(TenantHealthState.GRAPH_UNAVAILABLE, error.message)
    return ObservedHealth(TenantHealthState.GRAPH_UNAVAILABLE, error.message)


class CheckLevel(StrEnum):
    """How a ``tenants check`` finding reads: fine, worth a look, or blocking activation."""

    OK = "ok"
    WARNING = "warning"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CheckFinding:
    """One line of ``tenants check``: what was checked, how it came out, what to do."""

    check: str
    level: CheckLevel
    message: str

    def to_json(self) -> dict[str, str]:
        """The finding as JSON (the HTTP answer and ``--json``)."""
        return {"check": self.check, "level": self.level.value, "message": self.message}


def permission_findings(roles: frozenset[str] | None, rules: TenantRules) -> list[CheckFinding]:
    """One finding per needed permission: granted (ok) or missing (failed). Without a roles
    claim (a token that is not a JWT: the local simulator's fixed token) one warning."""
    if roles is None:
        return [CheckFinding("permissions", CheckLevel.WARNING,
                             "The token carries no roles claim; consent could not be checked.")]
    findings = []
    for need in needed_permissions(rules):
        granted = sorted(roles & need.allowed_by)
        if granted:
            findings.append(CheckFinding(f"permission {need.least}", CheckLevel.OK,
                                         f"granted ({', '.join(granted)}) to {need.feature}"))
        else:
            findings.append(CheckFinding(
                f"permission {need.least}", CheckLevel.FAILED,
                f"missing: the app cannot {need.feature}. Grant {need.least} with admin "
                f"consent (a Global or Privileged Role Administrator of the customer)."))
    return findings


def main_number_findings(
    main_numbers: Mapping[str, str],
    holders: Mapping[str, str],
    account_types: Mapping[str, str | None],
) -> list[CheckFinding]:
    """Each configured main number as Teams has it: on a resource account (the call queue or
    auto attendant behind it: ok), on no one or on a person (warning: the customer's users are
    reachable on a main number only through that workgroup).

    ``holders``: number → the id of what Teams has it on; ``account_types``: that id → its
    Teams ``accountType`` (None: Teams did not say).
    """
    findings = []
    for domain, number in sorted(main_numbers.items()):
        check = f"main number {number} ({domain})"
        holder = holders.get(number)
        if holder is None:
            findings.append(CheckFinding(check, CheckLevel.WARNING, (
                "on no one in Teams: put it on the resource account of the domain's call queue "
                "or auto attendant, or callers reach nobody.")))
            continue
        kind = account_types.get(holder)
        if kind == "resourceAccount":
            findings.append(CheckFinding(check, CheckLevel.OK,
                                         f"on resource account {holder} (the workgroup)"))
        else:
            findings.append(CheckFinding(check, CheckLevel.WARNING, (
                f"on {holder}, whose Teams account type is {kind or 'unknown'}, not a resource "
                f"account: a main number belongs to the workgroup (call queue or auto "
                f"attendant), never to a person.")))
    return findings


def check_passed(findings: Iterable[CheckFinding]) -> bool:
    """Whether nothing failed (warnings do not stop activation)."""
    return all(finding.level is not CheckLevel.FAILED for finding in findings)
