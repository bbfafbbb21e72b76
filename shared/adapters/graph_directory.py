"""The voice group's transitive user members, read through msgraph-sdk.

``GET /groups/{id}/transitiveMembers/graph.user`` is an advanced query: it needs
``ConsistencyLevel: eventual`` and ``$count=true``. The header is not carried into
``@odata.nextLink`` requests by the SDK's PageIterator, so pages are followed here by hand with the
header on every one.
"""

from __future__ import annotations

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (
    GraphUserRequestBuilder,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.graph_service_client import GraphServiceClient

from shared.adapters.graph_failures import raise_classified
from shared.directory import Member

PAGE_SIZE = 999  # the most a directory collection returns per page
MEMBER_FIELDS = ["id", "userPrincipalName", "businessPhones", "accountEnabled"]


class GraphVoiceGroupDirectory:
    """Implements ``VoiceGroupDirectory`` with msgraph-sdk."""

    def __init__(self, client: GraphServiceClient) -> None:
        self._client = client

    async def read_members(self, group_id: str) -> list[Member]:
        """All transitive user members, in the order Graph returned them.

        Raises:
            TemporaryError / PermanentError: a page could not be read; nothing partial is returned,
            so a failed read can never look like an emptied group.
        """
        builder = self._client.groups.by_group_id(group_id).transitive_members.graph_user
        first = RequestConfiguration(
            query_parameters=GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(
                select=MEMBER_FIELDS, top=PAGE_SIZE, count=True
            )
        )
        first.headers.add("ConsistencyLevel", "eventual")
        members: list[Member] = []
        try:
            page = await builder.get(first)
            while page is not None:
                start = len(members)
                members.extend(
                    _member(user, start + i) for i, user in enumerate(page.value or [])
                )
                if not page.odata_next_link:
                    break
                # The next link carries the query; only the header has to be set again.
                following: RequestConfiguration[object] = RequestConfiguration()
                following.headers.add("ConsistencyLevel", "eventual")
                page = await builder.with_url(page.odata_next_link).get(following)
        except ODataError as error:
            raise_classified(error)
        return members


def _member(user: object, position: int) -> Member:
    phones = tuple(phone for phone in (getattr(user, "business_phones", None) or []) if phone)
    return Member(
        user_id=str(getattr(user, "id", "")),
        user_principal_name=str(getattr(user, "user_principal_name", "") or ""),
        business_phones=phones,
        account_enabled=getattr(user, "account_enabled", None) is not False,
        read_position=position,
    )
