"""The Graph routes the simulator answers, one module per resource.

`directory` (transitive members, users), `delta` (users and groups delta), `numbers`
(numberAssignments, assignNumber/unassignNumber, operations), `user_configurations` and
`policies`; `odata` is the query options, skip tokens and action bodies they share. Each handler
is a plain function of the request's `RouteContext` (world, own URL, clock, persistence), its
`Route` and the `GraphRequest`; `HANDLERS` maps every route name to its handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from graph_simulator.routes import delta, directory, numbers, policies, user_configurations
from graph_simulator.routes.context import Handler, RouteContext
from graph_simulator.routing import (
    ASSIGN_NUMBER,
    ASSIGN_POLICY,
    GET_NUMBER_ASSIGNMENT,
    GET_OPERATION,
    GET_POLICY_ID,
    GET_USER,
    GET_USER_CONFIGURATION,
    GROUPS_DELTA,
    LIST_NUMBER_ASSIGNMENTS,
    LIST_TRANSITIVE_MEMBER_USERS,
    LIST_USER_CONFIGURATIONS,
    UNASSIGN_NUMBER,
    UNASSIGN_POLICY,
    USERS_DELTA,
)

#: Route name → the handler that answers it (one for each of `ROUTE_NAMES`).
HANDLERS: Final[Mapping[str, Handler]] = {
    LIST_TRANSITIVE_MEMBER_USERS: directory.list_transitive_member_users,
    GET_USER: directory.get_user,
    USERS_DELTA: delta.users_delta,
    GROUPS_DELTA: delta.groups_delta,
    LIST_NUMBER_ASSIGNMENTS: numbers.list_number_assignments,
    GET_NUMBER_ASSIGNMENT: numbers.get_number_assignment,
    ASSIGN_NUMBER: numbers.assign_number,
    UNASSIGN_NUMBER: numbers.unassign_number,
    GET_OPERATION: numbers.get_operation,
    GET_USER_CONFIGURATION: user_configurations.get_user_configuration,
    LIST_USER_CONFIGURATIONS: user_configurations.list_user_configurations,
    GET_POLICY_ID: policies.get_policy_id,
    ASSIGN_POLICY: policies.assign_policy,
    UNASSIGN_POLICY: policies.unassign_policy,
}

__all__ = ["HANDLERS", "Handler", "RouteContext"]
