"""Teams policy routes: `getPolicyId(type='...',name='...')` (strict about the comma) and the
userAssignments `assign` and `unassign` actions."""

from __future__ import annotations

import re
from typing import Final

from graph_simulator.protocol import GraphRequest, Reply, bad_request
from graph_simulator.routes.context import RouteContext
from graph_simulator.routes.odata import action_body, parse_query, reject_unsupported_options
from graph_simulator.routing import Route

_POLICY_USER_ASSIGNMENT_TYPE: Final = (
    "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment"
)
_QUOTED: Final = r"'(?:[^']|'')*'"
# Named function parameters, in either order, separated by the comma the SDK loses (§4.7).
_POLICY_ID_ARGS_RE: Final = re.compile(
    rf"^getPolicyId\((?P<n1>type|name)=(?P<v1>{_QUOTED}),(?P<n2>type|name)=(?P<v2>{_QUOTED})\)$"
)


def get_policy_id(context: RouteContext, route: Route, request: GraphRequest) -> Reply:
    """`GET /admin/teams/policy/getPolicyId(type='...',name='...')`: the policies so named."""
    match = _POLICY_ID_ARGS_RE.fullmatch(route.key)
    if match is None or match["n1"] == match["n2"]:
        # Notably `getPolicyId(type='X'name='Y')`, which msgraph-sdk sends: OData needs
        # the comma between function parameters.
        raise bad_request(f"Bad Request - Error in query syntax: '{route.key}' is not a "
                          "valid call of getPolicyId(type='...',name='...').")
    reject_unsupported_options(parse_query(request.raw_query), frozenset())
    arguments = {match["n1"]: match["v1"], match["n2"]: match["v2"]}
    policy_type, name = (arguments[key][1:-1].replace("''", "'") for key in ("type", "name"))
    value = [{"name": f"Tag:{policy.name}", "policyId": policy.id}
             for policy in context.world.policies_named(policy_type, name)]
    collection_context = (f"{context.base_url}/$metadata#Collection(microsoft.graph."
                          "teamsAdministration.policyIdentifierDetail)")
    return Reply(200, {"@odata.context": collection_context, "value": value})


def assign_policy(context: RouteContext, route: Route, request: GraphRequest) -> Reply:
    """`POST /admin/teams/policy/userAssignments/assign`: 204."""
    del route
    items = _policy_assignments(request.body, "assign", with_policy_id=True)
    context.world.assign_policies([(item["userId"], item["policyType"], item["policyId"])
                                   for item in items])
    context.save_state()
    return Reply(204)


def unassign_policy(context: RouteContext, route: Route, request: GraphRequest) -> Reply:
    """`POST /admin/teams/policy/userAssignments/unassign`: 204."""
    del route
    items = _policy_assignments(request.body, "unassign", with_policy_id=False)
    context.world.unassign_policies([(item["userId"], item["policyType"]) for item in items])
    context.save_state()
    return Reply(204)


def _policy_assignments(raw: bytes, action: str, *,
                        with_policy_id: bool) -> list[dict[str, str]]:
    """The validated `value` items of a policy userAssignments assign/unassign body."""
    body = action_body(raw, action, required=("value",), optional=())
    items = body["value"]
    if not isinstance(items, list) or not items:
        raise bad_request(f"Parameter 'value' of the operation '{action}' must be a non-empty "
                          "array.")
    required = ("userId", "policyType", "policyId") if with_policy_id else ("userId",
                                                                            "policyType")
    validated: list[dict[str, str]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad_request(f"value[{index}] must be a teamsPolicyUserAssignment object.")
        odata_type = item.get("@odata.type", _POLICY_USER_ASSIGNMENT_TYPE)
        if odata_type != _POLICY_USER_ASSIGNMENT_TYPE:
            raise bad_request(f"value[{index}]: unexpected @odata.type '{odata_type}' "
                              f"(expected '{_POLICY_USER_ASSIGNMENT_TYPE}').")
        for name in item:
            if name not in required and name != "@odata.type":
                raise bad_request(f"value[{index}]: the property '{name}' is not valid for "
                                  f"the operation '{action}'.")
        for name in required:
            value = item.get(name)
            if not isinstance(value, str) or not value:
                raise bad_request(f"value[{index}]: the property '{name}' is required and "
                                  "must be a non-empty string.")
        validated.append({name: item[name] for name in required})
    return validated
