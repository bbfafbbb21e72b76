"""One user's Teams configuration (``GET /admin/teams/userConfigurations/{id}``) via msgraph-sdk.

Read raw (``NativeResponseHandler``): Microsoft's own example shows the single GET wrapped in
``value`` while the SDK's ``TeamsUserConfiguration`` model expects the entity at the root, so
both shapes are accepted here; parsing a few fields from JSON also skips the SDK's slow model
construction. The request itself (URL template, ``$select``, auth, retry) is the SDK's.
"""

from __future__ import annotations

from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_http.middleware.options import ResponseHandlerOption
from msgraph.generated.admin.teams.user_configurations.item.teams_user_configuration_item_request_builder import (  # noqa: E501
    TeamsUserConfigurationItemRequestBuilder,
)
from msgraph.graph_service_client import GraphServiceClient

from shared.adapters.graph.bodies import (
    json_object,
    kind,
    optional_bool,
    optional_list,
    optional_text,
    required_list,
    required_text,
)
from shared.adapters.graph.failures import raise_for_status_needing
from shared.core.errors import UnreadableAnswerError
from shared.core.teams_readiness import TeamsUser

READ_PERMISSION = "TeamsUserConfiguration.Read.All"
CONFIGURATION_ROUTE = "GET /admin/teams/userConfigurations/{id}"
CONFIGURATION_FIELDS = [
    "id",
    "isEnterpriseVoiceEnabled",
    "telephoneNumbers",
    "effectivePolicyAssignments",
    "featureTypes",
    "accountType",
]
# featureTypes that mean Teams Phone: PhoneSystem is the Teams Phone licence itself,
# PhoneSystemVirtualUser its resource-account edition, and a calling plan requires Teams Phone.
# Compared case-insensitively: the docs show the casing, not a guarantee of it. Graph lists no
# values at all, so this only explains a refusal; no write waits for it.
PHONE_FEATURES = frozenset({"phonesystem", "callingplan", "phonesystemvirtualuser"})


class GraphUserConfigurations:
    """Reads ``teamsUserConfiguration``s with msgraph-sdk."""

    def __init__(self, client: GraphServiceClient) -> None:
        self._client = client

    async def read(self, user_id: str) -> TeamsUser | None:
        """The user as Teams sees them now, or None when Teams does not know the user (404).

        Raises:
            TemporaryError: throttled or unavailable.
            PermanentError: refused; ``GRAPH_FORBIDDEN`` names the missing permission.
            UnreadableAnswerError: the body is not this user's configuration with its numbers
                and policies (never read as "no numbers").
        """
        query = TeamsUserConfigurationItemRequestBuilder.TeamsUserConfigurationItemRequestBuilderGetQueryParameters(  # noqa: E501
            select=CONFIGURATION_FIELDS
        )
        config: RequestConfiguration[Any] = RequestConfiguration(
            query_parameters=query, options=[ResponseHandlerOption(NativeResponseHandler())]
        )
        builder = self._client.admin.teams.user_configurations.by_teams_user_configuration_id(
            user_id
        )
        response = await builder.get(config)
        if response.status_code == 404:
            return None
        raise_for_status_needing(response, READ_PERMISSION)
        entity = configuration_entity(json_object(response, CONFIGURATION_ROUTE))
        return teams_user(entity, user_id)


def configuration_entity(body: Any, route: str = CONFIGURATION_ROUTE) -> dict[str, Any]:
    """The configuration from a body that has it at the root or inside ``value`` (Microsoft's
    example), where ``value`` may hold the entity or a one-item list.

    Raises:
        UnreadableAnswerError: no entity (an empty or longer list, null, not an object): Teams
            answers 404 for a user it does not know, so a 200 without one is not "no record".
    """
    if not isinstance(body, dict):
        raise UnreadableAnswerError(route, f"the body is {kind(body)}, not a JSON object")
    if "value" not in body:
        return body
    value = body["value"]
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    elif isinstance(value, list):
        raise UnreadableAnswerError(route, f"'value' is a list of {len(value)}, not one user")
    if not isinstance(value, dict):
        raise UnreadableAnswerError(route, f"'value' is {kind(value)}, not a user's configuration")
    return value


def teams_user(
    entity: dict[str, Any], user_id: str, route: str = CONFIGURATION_ROUTE
) -> TeamsUser:
    """A ``TeamsUser`` from a ``teamsUserConfiguration`` JSON object.

    ``id``, ``telephoneNumbers`` and ``effectivePolicyAssignments`` must be there (both lists
    are selected: missing, they cannot be read as "none"); ``featureTypes`` and
    ``isEnterpriseVoiceEnabled`` may be absent (they only classify a refusal or fail a
    read-back, which is retried).

    Raises:
        UnreadableAnswerError: naming what is missing or of the wrong JSON type.
    """
    answered_id = required_text(entity, "id", route, "the configuration")
    if answered_id.lower() != user_id.lower():
        raise UnreadableAnswerError(
            route, f"asked for user {user_id}, the configuration is of {answered_id}"
        )
    where = f"the configuration of {user_id}"
    numbers: list[str] = []
    for position, item in enumerate(required_list(entity, "telephoneNumbers", route, where)):
        entry = _object(item, route, f"{where}: telephoneNumbers[{position}]")
        numbers.append(required_text(
            entry, "telephoneNumber", route, f"{where}: telephoneNumbers[{position}]"
        ))
    policies: dict[str, str] = {}
    names: dict[str, str] = {}
    assignments = required_list(entity, "effectivePolicyAssignments", route, where)
    for position, item in enumerate(assignments):
        at = f"{where}: effectivePolicyAssignments[{position}]"
        entry = _object(item, route, at)
        policy_type = required_text(entry, "policyType", route, at)
        assignment = _object(entry.get("policyAssignment"), route, f"{at}.policyAssignment")
        policy_id = required_text(assignment, "policyId", route, f"{at}.policyAssignment")
        if policy_type in policies:
            continue  # one effective policy per type; keep the first should Graph list two
        policies[policy_type] = policy_id
        # The name survives where the id's form differs (getPolicyId vs effective policies).
        display = optional_text(assignment, "displayName", route, f"{at}.policyAssignment")
        if display:
            names[policy_type] = display
    features = tuple(
        str(feature) for feature in optional_list(entity, "featureTypes", route, where)
    )
    return TeamsUser(
        user_id=answered_id,
        enterprise_voice_enabled=optional_bool(
            entity, "isEnterpriseVoiceEnabled", route, where
        ) is True,
        telephone_numbers=tuple(numbers),
        effective_policies=policies,
        licensed_for_phone=any(feature.lower() in PHONE_FEATURES for feature in features),
        account_type=optional_text(entity, "accountType", route, where) or "unknown",
        feature_types=features,
        effective_policy_names=names,
    )


def _object(value: Any, route: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UnreadableAnswerError(route, f"{where} is {kind(value)}, not an object")
    return value
