"""The voice group's transitive user members, read through msgraph-sdk.

``GET /groups/{id}/transitiveMembers/graph.user`` is an advanced query: it needs
``ConsistencyLevel: eventual`` and ``$count=true``. The header is not carried into
``@odata.nextLink`` requests by the SDK's PageIterator, so pages are followed here by hand with the
header on every one.

The pages are read raw (``NativeResponseHandler``): msgraph-sdk 1.65 spends about 12 ms building
each ``User`` model (``Entity.get_field_deserializers`` resolves hundreds of lazy imports per
object), which would make a 10,000-member read take two minutes for four fields per user. The
request itself — URL template, query parameters, headers, auth and retry middleware — is still
the SDK's.

Permissions: the member list needs ``GroupMember.Read.All`` (else 403); reading the members'
properties needs ``User.Read.All`` as well. Without it Graph still answers 200, with "limited
information" members: only ``@odata.type`` and ``id`` (the other properties absent or null). Such
a member is a missing grant, never a user without a number or an enabled account: the read fails
with ``GRAPH_FORBIDDEN`` naming ``User.Read.All``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_http.middleware.options import ResponseHandlerOption
from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder,
)
from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder
from msgraph.graph_service_client import GraphServiceClient

from shared.adapters.graph.bodies import (
    json_object,
    odata_link,
    optional_bool,
    optional_list,
    optional_text,
    required_text,
    value_items,
)
from shared.adapters.graph.failures import raise_for_status_needing
from shared.core.directory import Member
from shared.core.errors import PermanentError, UnreadableAnswerError
from shared.core.outcomes import Reason

PAGE_SIZE = 999  # the most a directory collection returns per page
MEMBER_FIELDS = ["id", "userPrincipalName", "businessPhones", "accountEnabled"]
MEMBERS_ROUTE = "GET /groups/{id}/transitiveMembers/graph.user"
USER_ROUTE = "GET /users/{id}"
MEMBERS_PERMISSION = "GroupMember.Read.All"
USERS_PERMISSION = "User.Read.All"


class GraphVoiceGroupDirectory:
    """Implements ``VoiceGroupDirectory`` with msgraph-sdk."""

    def __init__(self, client: GraphServiceClient) -> None:
        self._client = client

    async def read_members(self, group_id: str) -> list[Member]:
        """All transitive user members, in the order Graph returned them.

        Raises:
            TemporaryError / PermanentError: a page could not be read; nothing partial is returned,
            so a failed read can never look like an emptied group.
            UnreadableAnswerError: a page's body is not a list of users with ids.
        """
        builder = self._client.groups.by_group_id(group_id).transitive_members.graph_user
        query = GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(
            select=MEMBER_FIELDS, top=PAGE_SIZE, count=True
        )
        members: list[Member] = []
        page = await builder.get(_raw_page_request(query))
        if page.status_code == 404:
            # The first page only: a group that vanishes mid-read fails the read as any 404.
            raise PermanentError(Reason.GROUP_NOT_FOUND, (
                f"The voice group {group_id} does not exist in this tenant (Graph answered 404); "
                f"correct the tenant's voice group id or recreate the group."))
        while True:
            raise_for_status_needing(page, MEMBERS_PERMISSION)
            body = json_object(page, MEMBERS_ROUTE)
            for user in value_items(body, MEMBERS_ROUTE):
                check_user_properties_readable(user, MEMBERS_ROUTE)
                members.append(member_from_json(user, len(members), MEMBERS_ROUTE))
            next_link = odata_link(body, "@odata.nextLink", MEMBERS_ROUTE)
            if not next_link:
                return members
            # The next link carries the query; only the header has to be set again.
            page = await builder.with_url(next_link).get(_raw_page_request(None))


class GraphUserReader:
    """Implements ``UserReader``: ``GET /users/{id}`` with the member fields."""

    def __init__(self, client: GraphServiceClient) -> None:
        self._client = client

    async def read_user(self, user_id: str) -> Member | None:
        """The user now, or None when the directory no longer has them (404).

        Raises:
            UnreadableAnswerError: the body is not a user with an id.
        """
        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=MEMBER_FIELDS
        )
        config: RequestConfiguration[Any] = RequestConfiguration(
            query_parameters=query, options=[ResponseHandlerOption(NativeResponseHandler())]
        )
        response = await self._client.users.by_user_id(user_id).get(config)
        if response.status_code == 404:
            return None
        raise_for_status_needing(response, USERS_PERMISSION)
        user = json_object(response, USER_ROUTE)
        check_user_properties_readable(user, USER_ROUTE)
        return member_from_json(user, 0, USER_ROUTE)


def _raw_page_request(query: Any) -> RequestConfiguration[Any]:
    config: RequestConfiguration[Any] = RequestConfiguration(
        query_parameters=query, options=[ResponseHandlerOption(NativeResponseHandler())]
    )
    config.headers.add("ConsistencyLevel", "eventual")
    return config


def check_user_properties_readable(user: object, route: str) -> None:
    """Raise ``GRAPH_FORBIDDEN`` naming ``User.Read.All`` when a user object from ``route`` is
    "limited information": a selected property absent, or no ``userPrincipalName`` (every user
    has one; Graph shows the properties it withholds as null or leaves them out)."""
    if not isinstance(user, Mapping):
        return  # not a user object at all: the shape check's business, not a permission's
    withheld = [name for name in MEMBER_FIELDS[1:] if name not in user]
    if user.get("userPrincipalName") is None and "userPrincipalName" not in withheld:
        withheld.insert(0, "userPrincipalName")
    if not withheld:
        return
    raise PermanentError(
        Reason.GRAPH_FORBIDDEN,
        f"The app may not read users' properties; grant it {USERS_PERMISSION} with admin "
        f"consent. ({route} returned user {user.get('id')!r} without {', '.join(withheld)}: "
        "Graph's limited information for an app lacking permission to read users. Nobody was "
        "read as having no number or an enabled account; the run stops here.)",
    )


def member_from_json(user: dict[str, Any], position: int, route: str) -> Member:
    """A member from a raw user object (``id``, ``userPrincipalName``, ``businessPhones``,
    ``accountEnabled``) at ``position`` in read order, as ``route`` answered it.

    Raises:
        UnreadableAnswerError: no ``id``, or a field of the wrong JSON type.
    """
    user_id = required_text(user, "id", route, f"user {position}")
    where = f"user {user_id}"
    phones = optional_list(user, "businessPhones", route, where)
    if not all(isinstance(phone, str) for phone in phones):
        raise UnreadableAnswerError(route, f"{where} has a businessPhones entry that is not text")
    return Member(
        user_id=user_id,
        user_principal_name=optional_text(user, "userPrincipalName", route, where) or "",
        business_phones=tuple(phone for phone in phones if phone),
        account_enabled=optional_bool(user, "accountEnabled", route, where) is not False,
        read_position=position,
    )
