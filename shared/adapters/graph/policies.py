"""Teams policies through msgraph-sdk: name → id (``getPolicyId``) and per-user assign/unassign.

``getPolicyId(type='…',name='…')`` cannot be called through its SDK builder as generated:
std-uritemplate (Python, 2.0.x) drops the literal comma between the two function parameters and
Graph refuses ``getPolicyId(type='X'name='Y')``. The URL is therefore built here, with OData
string literals (single quotes doubled) percent-encoded, and sent through the same builder's
``with_url``, so auth, retry and the rest of the SDK pipeline stay the SDK's.

Policy ids do not change, so each (type, name) is resolved once per adapter. Answers are read
raw (``NativeResponseHandler``) so every refusal goes through the one classifier
(``raise_for_status``) that the other Graph adapters use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_http.middleware.options import ResponseHandlerOption
from msgraph.generated.admin.teams.policy.user_assignments.microsoft_graph_teams_administration_assign.assign_post_request_body import (  # noqa: E501
    AssignPostRequestBody,
)
from msgraph.generated.admin.teams.policy.user_assignments.microsoft_graph_teams_administration_unassign.unassign_post_request_body import (  # noqa: E501
    UnassignPostRequestBody,
)
from msgraph.generated.models.teams_administration.teams_policy_user_assignment import (
    TeamsPolicyUserAssignment,
)
from msgraph.graph_service_client import GraphServiceClient

from shared.adapters.graph.bodies import json_object, required_text, value_items
from shared.adapters.graph.failures import raise_for_status_needing
from shared.core.errors import PermanentError
from shared.core.outcomes import Reason
from shared.core.policy_planner import bare_policy_name

ASSIGN_PERMISSION = "TeamsPolicyUserAssign.ReadWrite.All"
ASSIGNMENT_ODATA_TYPE = "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment"
GET_POLICY_ID = "microsoft.graph.teamsAdministration.getPolicyId"
POLICY_ID_ROUTE = "GET /admin/teams/policy/getPolicyId(type,name)"


class GraphPolicies:
    """Resolves and assigns Teams policies with msgraph-sdk."""

    def __init__(self, client: GraphServiceClient) -> None:
        self._client = client
        self._ids: dict[tuple[str, str], str] = {}
        # Serialises lookups that miss the cache, so concurrent callers asking for the same
        # policy send one request, not one each.
        self._lookup = asyncio.Lock()

    async def policy_id(self, policy_type: str, name: str) -> str:
        """The id of the ``policy_type`` policy called ``name`` (with or without ``Tag:``).

        Raises:
            PermanentError: ``POLICY_NOT_FOUND`` when no such policy exists (the message names
                it), ``GRAPH_FORBIDDEN`` when the app lacks the permission.
            TemporaryError: throttled or unavailable; ``UnreadableAnswerError`` when the answer
                is not a list of policies with names and ids (never read as "no such policy").
        """
        key = (policy_type, bare_policy_name(name))
        if key in self._ids:
            return self._ids[key]
        async with self._lookup:
            if key not in self._ids:
                self._ids[key] = await self._resolve(*key)
        return self._ids[key]

    async def assign(self, user_id: str, policy_type: str, policy_id: str) -> None:
        """Give the user the policy directly (replacing their direct policy of that type).

        Raises:
            PermanentError: refused (e.g. ``USER_NOT_FOUND`` when Teams does not know the user).
            TemporaryError: throttled or unavailable.
        """
        item = _assignment(user_id, policy_type)
        item.policy_id = policy_id
        action = self._assignments.microsoft_graph_teams_administration_assign
        await self._post(action.to_post_request_information(AssignPostRequestBody(value=[item])))

    async def unassign(self, user_id: str, policy_type: str) -> None:
        """Remove the user's direct policy of ``policy_type`` (group or global policies then
        apply); same errors as ``assign``."""
        body = UnassignPostRequestBody(value=[_assignment(user_id, policy_type)])
        action = self._assignments.microsoft_graph_teams_administration_unassign
        await self._post(action.to_post_request_information(body))

    async def assign_policies(
        self, user_id: str, assignments: Sequence[tuple[str, str]]
    ) -> None:
        """Give the user every (policy type, policy id) directly, in one request (Graph's body
        is a list); same errors as ``assign``."""
        items = []
        for policy_type, policy_id in assignments:
            item = _assignment(user_id, policy_type)
            item.policy_id = policy_id
            items.append(item)
        action = self._assignments.microsoft_graph_teams_administration_assign
        await self._post(action.to_post_request_information(AssignPostRequestBody(value=items)))

    async def unassign_policies(self, user_id: str, policy_types: Sequence[str]) -> None:
        """Remove the user's direct policies of these types, in one request; same errors as
        ``assign``."""
        body = UnassignPostRequestBody(
            value=[_assignment(user_id, policy_type) for policy_type in policy_types]
        )
        action = self._assignments.microsoft_graph_teams_administration_unassign
        await self._post(action.to_post_request_information(body))

    @property
    def _policy(self) -> Any:
        return self._client.admin.teams.policy

    @property
    def _assignments(self) -> Any:
        return self._policy.user_assignments

    async def _resolve(self, policy_type: str, name: str) -> str:
        policy = self._policy
        function = policy.microsoft_graph_teams_administration_get_policy_id_with_type_with_name
        url = policy_id_url(self._client.request_adapter.base_url, policy_type, name)
        builder = function(name=name, type=policy_type).with_url(url)
        request = builder.to_get_request_information()
        request.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        response = await self._client.request_adapter.send_primitive_async(request, "bytes", {})
        if response.status_code == 404:
            raise _unknown_policy(policy_type, name)
        try:
            raise_for_status_needing(response, ASSIGN_PERMISSION)
        except PermanentError as error:
            if error.reason is Reason.GRAPH_FORBIDDEN:
                raise
            # The classifier reads texts meant for number assignment (a 400 "not found" would
            # become user_not_found); here any refusal is about the policy lookup.
            raise PermanentError(
                Reason.ASSIGNMENT_FAILED,
                f"Teams could not look up the {policy_type} policy {name!r}: {error.message}",
            ) from error
        found = _matching_ids(value_items(json_object(response, POLICY_ID_ROUTE), POLICY_ID_ROUTE),
                              name)
        if len(found) == 1:
            return found[0]
        if not found:
            raise _unknown_policy(policy_type, name)
        raise PermanentError(
            Reason.ASSIGNMENT_FAILED,
            f"Teams has {len(found)} {policy_type} policies named {name!r}; rename them so the "
            "name in the app setting picks exactly one.",
        )

    async def _post(self, request: Any) -> None:
        request.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        response = await self._client.request_adapter.send_primitive_async(request, "bytes", {})
        # Documented answer: 204. Any other 2xx is taken as done too: nothing documents a
        # pending state to poll, and retrying an accepted change could only repeat it.
        raise_for_status_needing(response, ASSIGN_PERMISSION)

def odata_string(value: str) -> str:
    """``value`` as a percent-encoded OData string literal: quoted, inner quotes doubled.

    Everything but unreserved characters is encoded (spaces, ``/``, ``#``, ``?``, the doubled
    quotes), so a name can neither end the path segment nor the literal early.
    """
    return "'" + quote(value.replace("'", "''"), safe="") + "'"


def policy_id_url(base_url: str, policy_type: str, name: str) -> str:
    """The absolute getPolicyId URL, with the comma std-uritemplate loses."""
    return (
        f"{base_url.rstrip('/')}/admin/teams/policy/{GET_POLICY_ID}"
        f"(type={odata_string(policy_type)},name={odata_string(name)})"
    )


def _matching_ids(value: list[dict[str, Any]], name: str) -> list[str]:
    """Ids of the listed policies whose name is ``name``, with or without ``Tag:``.

    Exact matches win over case-insensitive ones (Teams names are case-insensitive, but two
    names differing only in case should not make an exact request ambiguous).

    Raises:
        UnreadableAnswerError: a listed policy without its name or id.
    """
    items = [
        (bare_policy_name(required_text(item, "name", POLICY_ID_ROUTE, f"policy {position}")),
         required_text(item, "policyId", POLICY_ID_ROUTE, f"policy {position}"))
        for position, item in enumerate(value)
    ]
    exact = [policy_id for listed, policy_id in items if listed == name]
    if exact:
        return exact
    return [policy_id for listed, policy_id in items if listed.casefold() == name.casefold()]


def _assignment(user_id: str, policy_type: str) -> TeamsPolicyUserAssignment:
    return TeamsPolicyUserAssignment(
        odata_type=ASSIGNMENT_ODATA_TYPE, user_id=user_id, policy_type=policy_type
    )


def _unknown_policy(policy_type: str, name: str) -> PermanentError:
    return PermanentError(
        Reason.POLICY_NOT_FOUND,
        f"Teams has no {policy_type} policy named {name!r}. Create it in the Teams admin center "
        "or correct the policy name in the app settings.",
    )
