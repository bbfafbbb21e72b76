"""Delta routes: `GET /users/delta` and `GET /groups/delta`, paged rounds with state tokens.

A first call reads everything (or nothing, for `$deltatoken=latest`); its last page carries a
delta link whose token, called later, reads the changes since. Tokens carry the query options
and expire (`deltaTokenLifetimeSeconds`, or a new world): then 410 with a `Location` to start
over, or (`deltaGoneStatus`) a 400, 404 or 409 with `deltaGoneErrorCode` and no `Location`.
The diffing itself is `graph_simulator.delta`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from graph_simulator.delta import (
    GROUP_PROPERTIES,
    DeltaKind,
    DeltaToken,
    group_changes,
    page_groups,
    page_users,
    parse_group_filter,
    user_changes,
)
from graph_simulator.protocol import GraphHttpError, GraphRequest, Reply, bad_request
from graph_simulator.routes.context import RouteContext
from graph_simulator.routes.directory import selected_user_properties, user_json
from graph_simulator.routes.odata import parse_query, reject_unsupported_options
from graph_simulator.routing import Route


def users_delta(context: RouteContext, route: Route, request: GraphRequest) -> Reply:
    """`GET /users/delta`: one page of a round of user changes."""
    del route
    return _delta(context, "users", request)


def groups_delta(context: RouteContext, route: Route, request: GraphRequest) -> Reply:
    """`GET /groups/delta`: one page of a round of group changes (members included)."""
    del route
    return _delta(context, "groups", request)


def _delta(context: RouteContext, kind: DeltaKind, request: GraphRequest) -> Reply:
    options = parse_query(request.raw_query)
    allowed = {"$select", "$skiptoken", "$deltatoken"}
    if kind == "groups":
        allowed.add("$filter")
    reject_unsupported_options(options, frozenset(allowed))
    world = context.world
    now = context.clock()
    latest = False
    # The round being read, as the skip token of its current page.
    state = _delta_state(context, kind, request, options, now)
    if state is None:
        # A first call: query options here, a full read (or none, for $deltatoken=latest).
        select, filter_ = options.get("$select"), options.get("$filter")
        _check_delta_query(kind, select, filter_)
        latest = options.get("$deltatoken") == "latest"
        state = DeltaToken(type="skip", kind=kind, select=select, filter=filter_,
                           sync_id=world.sync_id,
                           version=world.directory_version, since=None, page=0,
                           issued_at=now)
    pages = [[]] if latest else _delta_pages(context, request, state)
    if state.page >= len(pages):
        raise bad_request("Invalid $skiptoken.", "Request_BadRequest")
    body: dict[str, Any] = {"@odata.context": _delta_context(context, kind, options)}
    if state.page + 1 < len(pages):
        # Every page of a round diffs the same two versions; expiry counts from its start.
        following = dataclasses.replace(state, page=state.page + 1)
        body["@odata.nextLink"] = context.next_link(request,
                                                    {"$skiptoken": following.encode()})
    else:
        delta = dataclasses.replace(state, type="delta", since=None, page=0, issued_at=now)
        body["@odata.deltaLink"] = context.next_link(request, {"$deltatoken": delta.encode()})
    body["value"] = pages[state.page]
    return Reply(200, body)


def _delta_state(context: RouteContext, kind: DeltaKind, request: GraphRequest,
                 options: Mapping[str, str], now: float) -> DeltaToken | None:
    """The state token of a follow-up call (None for a first call), checked for expiry."""
    skip, delta = options.get("$skiptoken"), options.get("$deltatoken")
    if skip is None and delta in (None, "latest"):
        return None
    if skip is not None and delta is not None:
        raise bad_request("Use either $skiptoken or $deltatoken, not both.")
    if any(name not in {"$skiptoken", "$deltatoken"} for name in options):
        raise bad_request("Query options must not be repeated with a state token: they "
                          "are encoded in it. Call the nextLink or deltaLink as it is.")
    text = skip if skip is not None else delta
    assert text is not None
    token = DeltaToken.decode(text)
    expected_type = "skip" if skip is not None else "delta"
    if token is None or token.kind != kind or token.type != expected_type:
        raise bad_request(f"Invalid ${'skiptoken' if skip is not None else 'deltatoken'}.",
                          "Request_BadRequest")
    world = context.world
    lifetime = world.behaviour.delta_token_lifetime_seconds
    known = (token.sync_id == world.sync_id
             and world.directory_at(token.version) is not None
             and (token.since is None or world.directory_at(token.since) is not None))
    if not known or now - token.issued_at > lifetime:
        status = world.behaviour.delta_gone_status
        if status != 410:
            # "A 40X-series error with codes such as syncStateNotFound": no Location to follow.
            raise GraphHttpError(
                status, world.behaviour.delta_gone_error_code,
                "The sync state of this delta token was not found; restart with a full "
                "synchronization.",
            )
        fresh = {name: value for name, value in (("$select", token.select),
                                                 ("$filter", token.filter))
                 if value is not None}
        raise GraphHttpError(
            410, world.behaviour.delta_gone_error_code,
            "The sync state of this delta token is no longer available; restart with a "
            "full synchronization from the URL in the Location header.",
            {"Location": context.next_link(request, fresh)},
        )
    if token.type == "skip":
        return token
    # A delta token starts a new round: changes since its version, up to now.
    return dataclasses.replace(token, type="skip", version=world.directory_version,
                               since=token.version, page=0, issued_at=now)


def _check_delta_query(kind: DeltaKind, select: str | None, filter_: str | None) -> None:
    if kind == "users":
        selected_user_properties(select)
        return
    _selected_group_properties(select)
    if filter_ is not None:
        try:
            parse_group_filter(filter_)
        except ValueError as error:
            raise bad_request(str(error), "Request_UnsupportedQuery") from None


def _delta_pages(context: RouteContext, request: GraphRequest,
                 state: DeltaToken) -> list[list[dict[str, Any]]]:
    world = context.world
    after = world.directory_at(state.version)
    before = world.directory_at(state.since) if state.since is not None else None
    assert after is not None  # checked with the token
    page_size = world.behaviour.default_page_size
    reason = world.behaviour.delta_removed_reason
    if state.kind == "users":
        properties = selected_user_properties(state.select)
        minimal = before is not None and "return=minimal" in request.headers.get("Prefer", "")
        return page_users(user_changes(before, after, lambda u: user_json(u, properties),
                                       minimal=minimal, removed_reason=reason), page_size)
    group_properties, members = _selected_group_properties(state.select)
    ids = parse_group_filter(state.filter) if state.filter is not None else None
    changes = group_changes(before, after, properties=group_properties, members=members,
                            ids=ids, removed_reason=reason)
    return page_groups(changes, page_size)


def _delta_context(context: RouteContext, kind: DeltaKind, options: Mapping[str, str]) -> str:
    selection = f"({options['$select']})" if "$select" in options else ""
    return f"{context.base_url}/$metadata#{kind}{selection}"


def _selected_group_properties(select: str | None) -> tuple[tuple[str, ...], bool]:
    """(group properties, whether `members` is tracked); no $select: displayName and members."""
    if select is None:
        return GROUP_PROPERTIES, True
    names = [name.strip() for name in select.split(",")]
    for name in names:
        if name not in GROUP_PROPERTIES and name != "members":
            raise bad_request(f"Could not find a property named '{name}' on type "
                              "'microsoft.graph.group' (the Graph simulator's groups delta "
                              f"tracks {', '.join(GROUP_PROPERTIES)} and members).",
                              "Request_BadRequest")
    return tuple(name for name in names if name != "members"), "members" in names
