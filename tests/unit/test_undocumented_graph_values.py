"""Values Graph does not document, or documents in more than one form (issue 11, items 4, 6
and 8): featureTypes never stops a write, a stored delta link refused with any 40X is expired,
and an effective policy is recognised by type and name whatever form its id takes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shared.adapters.graph.delta import _gone
from shared.adapters.graph.user_configurations import teams_user
from shared.core.assignment_steps import MessageLimits
from shared.core.errors import PermanentError
from shared.core.outcomes import Outcome, Reason
from shared.core.policy_steps import in_effect
from shared.core.steps import AssignNumber, LookAtTeamsUser, ReadTeamsUser
from shared.core.teams_readiness import TeamsUser
from shared.core.tenant_rules import MainNumberPolicy, TenantRules
from tests.unit.test_assignment_steps import World, _assign, _carry

GUID = "f7593e81-772a-4455-88a3-fc9e5ebc1e4a"
OPAQUE = "J93PmFHwFcLZhWfYcBlv9pn-hG-kUWkcxmkDvpwgacw"
CLI = MainNumberPolicy(policy_type="CallingLineIdentity", name="Contoso Main")


# -- featureTypes (item 4) ---------------------------------------------------------------------


@pytest.mark.parametrize("licensed", [True, False])
def test_the_assignment_is_written_before_teams_is_looked_at(licensed: bool) -> None:
    """Whatever the configuration would say about Teams Phone, Teams is asked to assign first;
    the configuration is read only after the write (the read-back)."""
    world = World(licensed=licensed)
    result = _carry(_assign(), MessageLimits(TenantRules(), reread=False), world)
    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.ASSIGNED, Reason.ASSIGNED)
    kinds = [type(step) for step in world.performed]
    assert AssignNumber in kinds
    looks = [i for i, kind in enumerate(kinds) if kind in {LookAtTeamsUser, ReadTeamsUser}]
    assert all(i > kinds.index(AssignNumber) for i in looks)


def test_feature_types_are_kept_and_unknown_spellings_do_not_count_as_teams_phone() -> None:
    user = teams_user(_configuration(featureTypes=["Teams", "TeamsPhoneStandard"]), "ann")
    assert user.feature_types == ("Teams", "TeamsPhoneStandard")
    assert not user.licensed_for_phone
    assert teams_user(_configuration(featureTypes=["teams", "CALLINGPLAN"]),
                      "ann").licensed_for_phone


def _configuration(**fields: object) -> dict[str, object]:
    """A teamsUserConfiguration with what the adapter requires (id and both selected lists)."""
    return {"id": "ann", "telephoneNumbers": [], "effectivePolicyAssignments": [], **fields}


def test_a_not_licensed_refusal_names_the_features_teams_listed() -> None:
    world = World(licensed=False, refuse=PermanentError(Reason.NOT_LICENSED, "no licence"))
    original = world.config

    def config() -> TeamsUser | None:
        seen = original()
        assert seen is not None
        return TeamsUser(seen.user_id, seen.enterprise_voice_enabled, seen.telephone_numbers,
                         licensed_for_phone=False, feature_types=("Teams", "MCOEV"))

    world.config = config  # type: ignore[method-assign]
    result = _carry(_assign(), MessageLimits(TenantRules(), reread=False), world)
    assert result is not None
    assert (result.outcome, result.reason) == (Outcome.SKIPPED, Reason.NOT_LICENSED)
    assert "its features: Teams, MCOEV" in result.message
    assert result.retry_at is not None  # looked at again, written again then


# -- delta expiry (item 6) ---------------------------------------------------------------------


def _response(status: int, code: str | None = None) -> httpx.Response:
    body: dict[str, Any] = {"error": {"code": code, "message": "m"}} if code else {}
    return httpx.Response(status, json=body)


@pytest.mark.parametrize("status", [400, 404, 409, 410])
@pytest.mark.parametrize("code", ["syncStateNotFound", "resyncRequired", "SYNCSTATEINVALID"])
def test_a_40x_with_a_sync_state_code_is_an_expired_token(status: int, code: str) -> None:
    for stored in (True, False):
        why = _gone(_response(status, code), stored=stored)
        assert why is not None
        assert code in why


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_a_stored_link_refused_without_a_known_code_falls_back_too(status: int) -> None:
    why = _gone(_response(status, "Request_BadRequest"), stored=True)
    assert why is not None
    assert f"refused the stored delta link ({status} Request_BadRequest" in why
    # A link the app has just built is refused like any other request.
    assert _gone(_response(status, "Request_BadRequest"), stored=False) is None


@pytest.mark.parametrize("status", [200, 401, 403, 408, 429, 500, 503])
def test_permissions_load_and_outages_are_not_an_expired_token(status: int) -> None:
    assert _gone(_response(status, "syncStateNotFound"), stored=True) is None


# -- policy id forms (item 8) ------------------------------------------------------------------


def _with(policy_id: str | None, name: str | None, policy_type: str = "CallingLineIdentity",
          ) -> TeamsUser:
    return TeamsUser(
        "ann", True, (),
        effective_policies={policy_type: policy_id} if policy_id else {},
        effective_policy_names={policy_type: name} if name else {},
    )


@pytest.mark.parametrize(("policy_id", "name"), [
    (OPAQUE, "Contoso Main"),  # Graph's base64-like id for getPolicyId's GUID: the name counts
    (OPAQUE, "Tag:contoso main"),
    (GUID.upper(), None),  # the same GUID in another case, no name
    ("{" + GUID + "}", None),
])
def test_the_policy_in_effect_is_recognised_by_type_and_name_or_id(
        policy_id: str, name: str | None) -> None:
    assert in_effect(_with(policy_id, name), CLI, GUID)
    assert in_effect(_with(policy_id, name, "callinglineidentity"), CLI, GUID)


@pytest.mark.parametrize(("policy_id", "name", "policy_type"), [
    (OPAQUE, "Other Caller ID", "CallingLineIdentity"),  # another policy of the type
    (OPAQUE, None, "CallingLineIdentity"),  # an id that differs and no name to go by
    (GUID, "Contoso Main", "OnlineVoiceRoutingPolicy"),  # the right policy of another type
    (None, None, "CallingLineIdentity"),
])
def test_another_policy_or_another_type_is_not_in_effect(
        policy_id: str | None, name: str | None, policy_type: str) -> None:
    assert not in_effect(_with(policy_id, name, policy_type), CLI, GUID)


def test_base64_like_ids_are_compared_exactly() -> None:
    assert in_effect(_with(OPAQUE, None), CLI, OPAQUE)
    assert not in_effect(_with(OPAQUE.lower(), None), CLI, OPAQUE)


def test_effective_policy_names_are_read_from_the_display_name() -> None:
    user = teams_user(_configuration(effectivePolicyAssignments=[
        {"policyType": "CallingLineIdentity",
         "policyAssignment": {"displayName": "Contoso Main", "assignmentType": "direct",
                              "policyId": OPAQUE}},
        {"policyType": "CallingLineIdentity",
         "policyAssignment": {"displayName": "Second", "policyId": "x"}},
        {"policyType": "TeamsCallingPolicy",
         "policyAssignment": {"displayName": "AllOn", "assignmentType": "group",
                              "policyId": "b3BhcXVl"}},
    ]), "ann")
    assert user.effective_policies == {"CallingLineIdentity": OPAQUE,
                                       "TeamsCallingPolicy": "b3BhcXVl"}
    assert user.effective_policy_names == {
        "CallingLineIdentity": "Contoso Main", "TeamsCallingPolicy": "AllOn"}
