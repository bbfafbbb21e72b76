"""Teams user configuration routes: one user's teamsUserConfiguration, and the paged list of
every user present in Teams."""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Final

from graph_simulator.protocol import GraphRequest, Reply, bad_request
from graph_simulator.routes.context import RouteContext
from graph_simulator.routes.odata import (
    encode_skiptoken,
    int_option,
    parse_query,
    reject_unsupported_options,
    skiptoken_offset,
)
from graph_simulator.routing import Route
from graph_simulator.scenario import Behaviour, Policy
from graph_simulator.world import UserConfiguration

_CONFIGURATION_PROPERTIES: Final = (
    "id", "userPrincipalName", "tenantId", "isEnterpriseVoiceEnabled", "telephoneNumbers",
    "effectivePolicyAssignments", "featureTypes", "accountType", "createdDateTime",
    "modifiedDateTime",
)
_DEFAULT_CONFIGURATION_PAGE: Final = 100
_MAX_CONFIGURATION_PAGE: Final = 999
# What the list's skip tokens are bound to (the collection's last path segment).
_SKIPTOKEN_SCOPE: Final = "userConfigurations"


def user_configuration_json(configuration: UserConfiguration, tenant_id: str,
                            behaviour: Behaviour | None = None) -> dict[str, Any]:
    """A teamsUserConfiguration resource with exactly the documented v1.0 properties.

    ``behaviour`` picks the featureTypes of a Teams Phone user and the form of the policy ids
    (the scenario default when None).
    """
    behaviour = behaviour or Behaviour()
    teams = configuration.teams
    return {
        "id": configuration.user.id,
        "userPrincipalName": configuration.user.user_principal_name,
        "tenantId": tenant_id,
        "isEnterpriseVoiceEnabled": teams.enterprise_voice_enabled,
        "telephoneNumbers": [
            {"telephoneNumber": number.telephone_number,
             "assignmentCategory": number.assignment_category}
            for number in configuration.numbers
        ],
        "effectivePolicyAssignments": [
            {"policyType": policy.type,
             "policyAssignment": {"displayName": policy.name, "assignmentType": "direct",
                                  "policyId": _effective_policy_id(policy, behaviour),
                                  "groupId": None}}
            for policy in configuration.policies
        ],
        # Teams Phone is what the simulator calls "licensed"; Graph lists no feature names.
        "featureTypes": (["Teams", *behaviour.phone_feature_types] if teams.licensed
                         else ["Teams"]),
        "accountType": teams.profile.account_type,
        "createdDateTime": teams.created_date_time,
        "modifiedDateTime": teams.modified_date_time,
    }


def _effective_policy_id(policy: Policy, behaviour: Behaviour) -> str:
    """The id effectivePolicyAssignments show: getPolicyId's, or (``opaque``) a base64url-like
    id of the same policy, as in Graph's examples."""
    if behaviour.effective_policy_ids == "same":
        return policy.id
    digest = hashlib.sha256(f"{policy.type}/{policy.id}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def get_user_configuration(context: RouteContext, route: Route,
                           request: GraphRequest) -> Reply:
    """`GET /admin/teams/userConfigurations/{id}`: 404 until the user is present in Teams."""
    options = parse_query(request.raw_query)
    reject_unsupported_options(options, frozenset({"$select"}))
    properties = _selected_configuration_properties(options.get("$select"))
    world = context.world
    try:
        configuration = world.read_user_configuration(route.key)
    finally:
        # A read can make a user visible (visibleAfterPolls), even one that answers 404.
        context.save_state()
    entity = _pick(user_configuration_json(configuration, world.tenant.id, world.behaviour),
                   properties)
    if world.behaviour.user_configuration_body_shape == "value":
        return Reply(200, {"value": entity})
    selection = f"({options['$select']})" if "$select" in options else ""
    entity_context = (f"{context.base_url}/$metadata#admin/teams/userConfigurations{selection}"
                      "/$entity")
    return Reply(200, {"@odata.context": entity_context, **entity})


def list_user_configurations(context: RouteContext, route: Route,
                             request: GraphRequest) -> Reply:
    """`GET /admin/teams/userConfigurations`: every user present in Teams, paged."""
    del route
    options = parse_query(request.raw_query)
    reject_unsupported_options(options, frozenset({"$select", "$top", "$skiptoken"}))
    properties = _selected_configuration_properties(options.get("$select"))
    top = int_option(options, "$top", default=_DEFAULT_CONFIGURATION_PAGE, low=1,
                     high=_MAX_CONFIGURATION_PAGE)
    offset = skiptoken_offset(options.get("$skiptoken"), _SKIPTOKEN_SCOPE)
    world = context.world
    tenant_id = world.tenant.id
    items = [_pick(user_configuration_json(configuration, tenant_id, world.behaviour), properties)
             for configuration in world.user_configurations()]
    body: dict[str, Any] = {
        "@odata.context": f"{context.base_url}/$metadata#admin/teams/userConfigurations",
    }
    if offset + top < len(items):
        link_options: dict[str, str] = {name: options[name] for name in ("$select", "$top")
                                        if name in options}
        link_options["$skiptoken"] = encode_skiptoken(_SKIPTOKEN_SCOPE, offset + top)
        body["@odata.nextLink"] = context.next_link(request, link_options)
    body["value"] = items[offset:offset + top]
    return Reply(200, body)


def _pick(entity: dict[str, Any], properties: tuple[str, ...]) -> dict[str, Any]:
    return {name: entity[name] for name in properties}


def _selected_configuration_properties(select: str | None) -> tuple[str, ...]:
    if select is None:
        return _CONFIGURATION_PROPERTIES
    names = [name.strip() for name in select.split(",")]
    for name in names:
        if name not in _CONFIGURATION_PROPERTIES:
            raise bad_request(f"Could not find a property named '{name}' on type "
                              "'microsoft.graph.teamsAdministration.teamsUserConfiguration'.")
    return tuple(dict.fromkeys(names))
