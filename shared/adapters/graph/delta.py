"""Delta queries on users and on the voice group, through msgraph-sdk.

``users/delta`` reports users whose selected fields changed (``businessPhones``,
``accountEnabled``, ``userPrincipalName``) and deleted ones (``@removed``); ``groups/delta``
filtered to the voice group reports its *direct* members who joined or left in
``members@delta`` (Graph has no transitive delta, so nested groups need the regular full read).
A round is followed over ``@odata.nextLink`` to its ``@odata.deltaLink``, which the next run
continues from. ``$deltatoken=latest`` starts a link "from now" without reading everything.

Pages are read raw (``NativeResponseHandler``), like the member pages, so a large round costs
no model building; the requests are still the SDK's (auth, retry, base URL). A link Graph no
longer knows answers ``410 Gone``, or — also documented, for an expired token — "a 40X-series
error with error codes such as ``syncStateNotFound``" (a 400, 404, 409, …). Any refusal of a
*stored* link other than a missing permission, throttling or a timeout is ``DeltaGoneError``
and the caller falls back to a full read: a link is only ever a shortcut, and a run that failed
on it would keep the same link and fail again on every run until the next full read is due.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_http.middleware.options import ResponseHandlerOption
from msgraph.graph_service_client import GraphServiceClient

from shared.adapters.graph.bodies import json_object, odata_link, required_text, value_items
from shared.adapters.graph.directory import (
    MEMBER_FIELDS,
    MEMBERS_PERMISSION,
    USERS_PERMISSION,
    member_from_json,
)
from shared.adapters.graph.failures import raise_for_status_needing
from shared.core.directory import Member
from shared.core.errors import DeltaGoneError, UnreadableAnswerError
from shared.core.records import GroupDelta, UserDelta

_GONE_CODES = frozenset({"syncstatenotfound", "resyncrequired", "syncstateinvalid"})
# Failures that are not about the link (permissions, throttling, a timeout): a full read would
# meet them too, so they are raised as they are.
_NOT_THE_LINK = frozenset({401, 403, 408, 429})
_GROUP_TYPE = "#microsoft.graph.group"
USERS_ROUTE = "GET /users/delta"
GROUPS_ROUTE = "GET /groups/delta"
# Rounds are bounded: a link that keeps answering nextLinks is a fault, not a directory.
_MAX_PAGES = 10_000


class GraphDirectoryDelta:
    """Implements ``DirectoryDelta`` with msgraph-sdk."""

    def __init__(self, client: GraphServiceClient) -> None:
        self._client = client

    @property
    def _base(self) -> str:
        return str(self._client.request_adapter.base_url).rstrip("/")

    async def users_link(self) -> str:
        """A users link from now on: one request, no users read."""
        select = ",".join(MEMBER_FIELDS)
        url = f"{self._base}/users/delta()?$select={select}&$deltatoken=latest"
        return await self._round(self._client.users.delta, url, USERS_ROUTE, lambda _item: None,
                                 USERS_PERMISSION, stored=False)

    async def group_link(self, group_id: str) -> str:
        """A voice-group link from now on: one request, no members read."""
        url = (f"{self._base}/groups/delta()?$select=members"
               f"&$filter={quote(_id_filter(group_id), safe='')}&$deltatoken=latest")
        return await self._round(self._client.groups.delta, url, GROUPS_ROUTE,
                                 lambda _item: None, MEMBERS_PERMISSION, stored=False)

    async def user_changes(self, link: str) -> UserDelta:
        """Changed and deleted users since ``link``.

        Raises:
            UnreadableAnswerError: a page is not a list of users with ids.
        """
        changed: list[Member] = []
        removed: list[str] = []

        def take(item: dict[str, Any]) -> None:
            if "@removed" in item:
                removed.append(required_text(item, "id", USERS_ROUTE, "a removed user"))
            else:
                changed.append(member_from_json(item, 0, USERS_ROUTE))

        next_link = await self._round(self._client.users.delta, link, USERS_ROUTE, take,
                                      USERS_PERMISSION, stored=True)
        return UserDelta(tuple(changed), tuple(removed), next_link)

    async def group_changes(self, link: str) -> GroupDelta:
        """Direct members who joined or left the voice group since ``link``.

        Raises:
            UnreadableAnswerError: a page is not a list of groups, or a ``members@delta`` entry
                has no id (a joiner or leaver the app could not name).
        """
        joined: dict[str, None] = {}
        left: dict[str, None] = {}
        nested = False

        def take(item: dict[str, Any]) -> None:
            nonlocal nested
            if "@removed" in item:
                # The voice group itself was deleted: every member is gone, which the
                # empty-read guard of the next full read will catch.
                nested = True
                return
            group_id = required_text(item, "id", GROUPS_ROUTE, "a group")
            entries = item.get("members@delta") or []
            if not isinstance(entries, list):
                raise UnreadableAnswerError(
                    GROUPS_ROUTE, f"group {group_id} has 'members@delta' that is not a list"
                )
            for position, entry in enumerate(entries):
                where = f"group {group_id} members@delta[{position}]"
                if not isinstance(entry, dict):
                    raise UnreadableAnswerError(GROUPS_ROUTE, f"{where} is not an object")
                user_id = required_text(entry, "id", GROUPS_ROUTE, where)
                if entry.get("@odata.type") == _GROUP_TYPE:
                    nested = True
                    continue
                if "@removed" in entry:
                    joined.pop(user_id, None)
                    left[user_id] = None
                else:
                    left.pop(user_id, None)
                    joined[user_id] = None

        next_link = await self._round(self._client.groups.delta, link, GROUPS_ROUTE, take,
                                      MEMBERS_PERMISSION, stored=True)
        return GroupDelta(tuple(joined), tuple(left), nested, next_link)

    def _on_base(self, link: str) -> str:
        """A stored link, sent to the Graph endpoint configured now (links carry the host they
        were issued by; a changed endpoint answers 410 for a token it does not know)."""
        base, parts = urlsplit(self._base), urlsplit(link)
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return link
        return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, parts.fragment))

    async def _round(
        self,
        builder: Any,
        url: str,
        route: str,
        take: Callable[[dict[str, Any]], None],
        permission: str,
        *,
        stored: bool,
    ) -> str:
        """Follow one round from ``url`` to its deltaLink, handing every item to ``take`` (a
        refusal names ``permission``, what the round's route needs).

        ``stored``: ``url`` is a link kept from an earlier run, so any refusal of it that is
        not about permissions or load is ``DeltaGoneError``; a new link's request (built here)
        is only gone when Graph says so, and is otherwise refused like any other request.
        """
        pages = 0
        url = self._on_base(url)
        while True:
            response = await builder.with_url(url).get(_raw())
            gone = _gone(response, stored=stored or pages > 0)
            if gone is not None:
                raise DeltaGoneError(gone)
            raise_for_status_needing(response, permission)
            body = json_object(response, route)
            for item in value_items(body, route):
                take(item)
            delta_link = odata_link(body, "@odata.deltaLink", route)
            if delta_link:
                return delta_link
            next_link = odata_link(body, "@odata.nextLink", route)
            pages += 1
            if not next_link or pages >= _MAX_PAGES:
                raise DeltaGoneError("a delta round ended without a deltaLink")
            url = str(next_link)


def _id_filter(group_id: str) -> str:
    return "id eq '{}'".format(group_id.replace("'", "''"))


def _gone(response: Any, *, stored: bool) -> str | None:
    """Why ``response`` means the link cannot be continued, or None (a success, or a failure
    a full read would meet too: no permission, throttled, timed out; and for a link that is not
    ``stored``, any refusal that does not say the sync state is gone)."""
    status = response.status_code
    if status == 410:
        return f"Graph answered 410 Gone ({_describe(response)})"
    if not 400 <= status < 500 or status in _NOT_THE_LINK:
        return None
    code, _ = _error_parts(response)
    folded = code.casefold()
    if folded in _GONE_CODES or "syncstate" in folded or "resync" in folded:
        return f"the delta token expired (Graph answered {status} {_describe(response)})"
    if not stored:
        return None
    return f"Graph refused the stored delta link ({status} {_describe(response)})"


def _error_parts(response: Any) -> tuple[str, str]:
    """(code, message) of a Graph error body; empty strings for what it does not have."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("message") or "")


def _describe(response: Any) -> str:
    code, message = _error_parts(response)
    return f"{code or 'no error code'}: {message or 'no message'}"


def _raw() -> RequestConfiguration[Any]:
    return RequestConfiguration(options=[ResponseHandlerOption(NativeResponseHandler())])
