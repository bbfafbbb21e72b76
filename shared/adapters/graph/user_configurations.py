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

from shared.adapters.graph.failures import raise_for_status
from shared.core.errors import PermanentError
from shared.core.outcomes import Reason
from shared.core.teams_readiness import TeamsUser

READ_PERMISSION = "TeamsUserConfiguration.Read.All"
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
        entity = configuration_entity(response.json())
        return None if entity is None else teams_user(entity, user_id)


def configuration_entity(body: Any) -> dict[str, Any] | None:
    """The configuration from a body that has it at the root or inside ``value``.

    ``value`` may hold the entity or a one-item list; an empty list means Teams has no record.
    """
    if not isinstance(body, dict):
        return None
    if "value" not in body:
        return body
    value = body["value"]
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    return value if isinstance(value, dict) else None


def teams_user(entity: dict[str, Any], user_id: str) -> TeamsUser:
    """A ``TeamsUser`` from a ``teamsUserConfiguration`` JSON object (missing parts read empty)."""
    numbers = tuple(
        str(item["telephoneNumber"])
        for item in _list(entity.get("telephoneNumbers"))
        if isinstance(item, dict) and item.get("telephoneNumber")
    )
    policies: dict[str, str] = {}
    names: dict[str, str] = {}
    seen: set[str] = set()
    for item in _list(entity.get("effectivePolicyAssignments")):
        if not isinstance(item, dict):
            continue
        assignment = item.get("policyAssignment")
        policy_type = item.get("policyType")
        if not policy_type or not isinstance(assignment, dict) or str(policy_type) in seen:
            continue  # one effective policy per type; keep the first should Graph list two
        seen.add(str(policy_type))
        if assignment.get("policyId"):
            policies[str(policy_type)] = str(assignment["policyId"])
        if assignment.get("displayName"):
            names[str(policy_type)] = str(assignment["displayName"])
    features = tuple(str(feature) for feature in _list(entity.get("featureTypes")))
    return TeamsUser(
        user_id=str(entity.get("id") or user_id),
        enterprise_voice_enabled=entity.get("isEnterpriseVoiceEnabled") is True,
        telephone_numbers=numbers,
        effective_policies=policies,
        licensed_for_phone=any(feature.lower() in PHONE_FEATURES for feature in features),
        account_type=str(entity.get("accountType") or "unknown"),
        feature_types=features,
        effective_policy_names=names,
    )


def raise_for_status_needing(response: Any, permission: str) -> None:
    """``raise_for_status``, with a refusal (401/403) naming the permission this call needs.

    The shared classifier's help text names the number-management permission; a refusal here
    means a different grant is missing.
    """
    try:
        raise_for_status(response)
    except PermanentError as error:
        if error.reason is not Reason.GRAPH_FORBIDDEN:
            raise
        raise PermanentError(
            Reason.GRAPH_FORBIDDEN,
            f"The app was refused by Microsoft Graph; grant it {permission} with admin consent. "
            f"({error.message})",
        ) from error


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
