"""Directory routes: a group's transitive member users, one user (and the user JSON that the
users delta shares)."""

from __future__ import annotations

from typing import Any, Final

from graph_simulator.protocol import GraphHttpError, GraphRequest, Reply, bad_request
from graph_simulator.routes.context import RouteContext
from graph_simulator.routes.odata import (
    encode_skiptoken,
    int_option,
    parse_query,
    reject_unsupported_options,
    skiptoken_offset,
)
from graph_simulator.routing import Route
from graph_simulator.scenario import USER_GRAPH_FIELDS, User

# Returned for a user when the request has no $select (Graph's documented default set; note
# that accountEnabled is not in it).
_DEFAULT_USER_PROPERTIES: Final = (
    "businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
    "officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id",
)
_USER_PROPERTIES: Final = frozenset(
    User.model_fields[name].alias or name for name in USER_GRAPH_FIELDS
)
_MAX_DIRECTORY_PAGE: Final = 999


def list_transitive_member_users(context: RouteContext, route: Route,
                                 request: GraphRequest) -> Reply:
    """`GET /groups/{id}/transitiveMembers/microsoft.graph.user`: an advanced query, paged."""
    options = parse_query(request.raw_query)
    reject_unsupported_options(options, frozenset({"$select", "$top", "$count",
                                                   "$skiptoken"}))
    if request.headers.get("ConsistencyLevel") != "eventual" or options.get("$count") != "true":
        raise bad_request(
            "Casting transitiveMembers to microsoft.graph.user is an advanced query: every "
            "request, @odata.nextLink pages included, needs the header 'ConsistencyLevel: "
            "eventual' and $count=true.",
            "Request_UnsupportedQuery",
        )
    world = context.world
    top = int_option(options, "$top", default=world.behaviour.default_page_size,
                     low=1, high=_MAX_DIRECTORY_PAGE, code="Request_UnsupportedQuery")
    top = min(top, world.behaviour.max_page_size or top)
    properties = selected_user_properties(options.get("$select"))
    offset = skiptoken_offset(options.get("$skiptoken"), route.key)
    users = world.listed_transitive_member_users(route.key)
    body: dict[str, Any] = {"@odata.context": _users_context(context, options.get("$select"))}
    if offset == 0:
        body["@odata.count"] = len(users)
    if offset + top < len(users):
        link_options: dict[str, str] = {
            name: options[name] for name in ("$select", "$top", "$count") if name in options
        }
        link_options["$skiptoken"] = encode_skiptoken(route.key, offset + top)
        body["@odata.nextLink"] = context.next_link(request, link_options)
    else:
        world.count_member_read(route.key)  # the last page: one whole read of the group
    body["value"] = [user_json(user, properties) for user in users[offset:offset + top]]
    return Reply(200, body)


def get_user(context: RouteContext, route: Route, request: GraphRequest) -> Reply:
    """`GET /users/{id}`: one user, by id or userPrincipalName."""
    options = parse_query(request.raw_query)
    reject_unsupported_options(options, frozenset({"$select"}))
    properties = selected_user_properties(options.get("$select"))
    user = context.world.find_user(route.key)
    if user is None:
        raise GraphHttpError(404, "Request_ResourceNotFound",
                             f"Resource '{route.key}' does not exist or one of its queried "
                             "reference-property objects are not present.")
    selection = f"({options['$select']})" if "$select" in options else ""
    return Reply(200, {"@odata.context": f"{context.base_url}/$metadata#users{selection}/$entity",
                       **user_json(user, properties)})


def user_json(user: User, properties: tuple[str, ...]) -> dict[str, Any]:
    """A user resource with just these properties (as `selected_user_properties` gives)."""
    everything = user.model_dump(mode="json", by_alias=True)
    return {name: everything[name] for name in properties}


def selected_user_properties(select: str | None) -> tuple[str, ...]:
    """The user properties a `$select` asks for (always with `id`); Graph's default set
    without one. An unknown property is refused."""
    if select is None:
        return _DEFAULT_USER_PROPERTIES
    names = [name.strip() for name in select.split(",")]
    for name in names:
        if name not in _USER_PROPERTIES:
            raise bad_request(f"Could not find a property named '{name}' on type "
                              "'microsoft.graph.user'.", "Request_BadRequest")
    return tuple(dict.fromkeys(["id", *names]))


def _users_context(context: RouteContext, select: str | None) -> str:
    selection = f"({select})" if select else ""
    return f"{context.base_url}/$metadata#users{selection}"
