"""What a tenant must have granted, what its trouble means, and what its removal may release."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.directory import Claim
from shared.core.errors import PermanentError, TemporaryError
from shared.core.messages import MessageError
from shared.core.outcomes import Reason
from shared.core.tenant_checks import (
    REQUIRED,
    CheckLevel,
    health_of_failure,
    health_of_missing,
    main_number_findings,
    missing_permissions,
    needed_permissions,
    permission_findings,
)
from shared.core.tenant_registry import TenantHealthState
from shared.core.tenant_release import holds_for_release
from shared.core.tenant_rules import TenantRules
from shared.core.tenant_sync_messages import TenantSyncMessage

EVERYTHING = frozenset({
    "GroupMember.Read.All", "User.Read.All", "TeamsTelephoneNumber.ReadWrite.All",
    "TeamsUserConfiguration.Read.All", "TeamsPolicyUserAssign.ReadWrite.All",
})
WITH_POLICIES = TenantRules.model_validate({
    "mainNumbers": {"contoso.example": "+31855363010"},
    "mainNumberPolicies": {"contoso.example": [
        {"policyType": "CallingLineIdentity", "name": "Contoso Main"}]},
})
NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def test_a_tenant_with_every_permission_misses_none() -> None:
    assert missing_permissions(EVERYTHING, WITH_POLICIES) == ()


def test_a_missing_teams_permission_is_named_with_what_it_is_for() -> None:
    roles = EVERYTHING - {"TeamsTelephoneNumber.ReadWrite.All"}

    missing = missing_permissions(roles, TenantRules())
    health = health_of_missing(missing)

    assert [need.least for need in missing] == ["TeamsTelephoneNumber.ReadWrite.All"]
    assert health.state is TenantHealthState.AUTH_FAILED
    assert "TeamsTelephoneNumber.ReadWrite.All (to assign and unassign Teams numbers)" in (
        health.message)


def test_a_higher_permission_counts_as_the_least_privileged_one() -> None:
    roles = (EVERYTHING - {"GroupMember.Read.All", "User.Read.All"}) | {"Directory.Read.All"}

    assert missing_permissions(roles, TenantRules()) == ()


def test_policy_assignment_is_needed_only_by_a_tenant_with_main_number_policies() -> None:
    roles = EVERYTHING - {"TeamsPolicyUserAssign.ReadWrite.All"}

    assert missing_permissions(roles, TenantRules()) == ()
    assert [need.least for need in missing_permissions(roles, WITH_POLICIES)] == [
        "TeamsPolicyUserAssign.ReadWrite.All"]


@given(st.sets(st.sampled_from(sorted(EVERYTHING | {"Directory.Read.All", "Group.Read.All"}))))
def test_missing_is_exactly_the_needs_no_granted_role_allows(roles: set[str]) -> None:
    missing = missing_permissions(roles, WITH_POLICIES)

    for need in needed_permissions(WITH_POLICIES):
        assert (need in missing) == (not roles & need.allowed_by)


def test_the_check_lists_every_permission_granted_or_missing() -> None:
    findings = permission_findings(frozenset({"GroupMember.Read.All"}), TenantRules())

    assert len(findings) == len(REQUIRED)
    assert [f.level for f in findings].count(CheckLevel.FAILED) == len(REQUIRED) - 1
    assert permission_findings(None, TenantRules())[0].level is CheckLevel.WARNING


def test_a_main_number_belongs_on_a_resource_account() -> None:
    main = {"contoso.example": "+31855363010", "fabrikam.example": "+31201234500",
            "tailspin.example": "+31301234500"}
    holders = {"+31855363010": "cq-1", "+31201234500": "ann"}

    findings = main_number_findings(main, holders, {"cq-1": "resourceAccount", "ann": "user"})

    levels = {f.check: f.level for f in findings}
    assert levels == {
        "main number +31855363010 (contoso.example)": CheckLevel.OK,
        "main number +31201234500 (fabrikam.example)": CheckLevel.WARNING,
        "main number +31301234500 (tailspin.example)": CheckLevel.WARNING,
    }
    assert "never to a person" in findings[1].message
    assert "on no one" in findings[2].message


@pytest.mark.parametrize(("error", "state"), [
    (PermanentError(Reason.GRAPH_FORBIDDEN, "refused"), TenantHealthState.AUTH_FAILED),
    (PermanentError(Reason.GROUP_NOT_FOUND, "gone"), TenantHealthState.GROUP_MISSING),
    (TemporaryError("503"), TenantHealthState.GRAPH_UNAVAILABLE),
    (PermanentError(Reason.ASSIGNMENT_FAILED, "odd"), TenantHealthState.GRAPH_UNAVAILABLE),
])
def test_a_failed_run_becomes_the_tenants_health(
    error: PermanentError | TemporaryError, state: TenantHealthState,
) -> None:
    observed = health_of_failure(error)

    assert observed.state is state
    assert observed.message == error.message


def test_removal_releases_only_what_the_app_put_there() -> None:
    claims = [
        Claim("+31855363001", "ann", "ann@contoso.example", "run-1", 0, assigned=True),
        Claim("+31855363002", "bob", "bob@contoso.example", "run-1", 1),  # found, not ours
        Claim("+31855363003", "cy", "cy@contoso.example", "run-1", 2, assigned=True,
              released_at=NOW),
    ]

    holds = holds_for_release(claims, run_id="r", by="ops@operator.example", now=NOW)

    assert [(h.number, h.user_id, h.status) for h in holds] == [
        ("+31855363001", "ann", "pending")]
    assert "ops@operator.example" in holds[0].message


def test_a_tenant_sync_message_round_trips_and_names_a_bad_field() -> None:
    message = TenantSyncMessage(tenant_id=UUID(int=7), requested_at=NOW, requested_by="timer")

    assert TenantSyncMessage.from_body(message.to_json()) == message
    with pytest.raises(MessageError, match="tenantId='nope'"):
        TenantSyncMessage.from_body(message.to_json().replace(str(UUID(int=7)), "nope"))
    with pytest.raises(MessageError, match="schema"):
        TenantSyncMessage.from_body(b'{"tenantId": "x"}')
