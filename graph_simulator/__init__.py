"""A local stand-in for the parts of Microsoft Graph v1.0 that Teams Number Sync uses.

It is as strict as Graph is documented to be (advanced-query headers, page-size limits, enum
spelling, number ownership), so that a test passing against it says something about Graph.
It serves one or many customer tenants, each a world of its own, and stands in for Entra ID's
token endpoint and the managed identity endpoint (``identity``) so the app's real credential
code runs against it. `FaultProxy` (``fault_proxy``) sits in front of it and makes Graph have a
bad day.
"""

from graph_simulator.fault_proxy import FaultKind, FaultPlan, FaultProxy, HeldAnswer
from graph_simulator.http_server import SimulatorServer, create_app, start_runner
from graph_simulator.identity import (
    GRAPH_SCOPE,
    HOME_TENANT_ID,
    MANAGED_IDENTITY_CLIENT_ID,
    MANAGED_IDENTITY_PRINCIPAL_ID,
    SIMULATOR_APP_ID,
    TOKEN_EXCHANGE_AUDIENCE,
)
from graph_simulator.protocol import GraphRequest, Reply
from graph_simulator.routes.numbers import number_assignment_json
from graph_simulator.routes.user_configurations import user_configuration_json
from graph_simulator.routing import ROUTE_NAMES, TEAMS_ADMIN_ROUTES, route_name
from graph_simulator.scenario import (
    Behaviour,
    Directory,
    Fault,
    Group,
    LatencyFault,
    NumberAssignment,
    OperationFailure,
    Policy,
    RateLimit,
    Scenario,
    ScenarioError,
    TeamsProfile,
    Tenant,
    TenantEntry,
    User,
    load_directory,
    load_scenario,
    normalise_number,
    parse_directory,
    parse_scenario,
)
from graph_simulator.server import DEFAULT_TOKEN, EVERY_TENANT, Simulator
from graph_simulator.world import (
    NotFoundError,
    RejectedError,
    TeamsUserRecord,
    UserConfiguration,
    World,
    WorldError,
)

__all__ = [
    "DEFAULT_TOKEN",
    "EVERY_TENANT",
    "GRAPH_SCOPE",
    "HOME_TENANT_ID",
    "MANAGED_IDENTITY_CLIENT_ID",
    "MANAGED_IDENTITY_PRINCIPAL_ID",
    "ROUTE_NAMES",
    "SIMULATOR_APP_ID",
    "TEAMS_ADMIN_ROUTES",
    "TOKEN_EXCHANGE_AUDIENCE",
    "Behaviour",
    "Directory",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "FaultProxy",
    "GraphRequest",
    "Group",
    "HeldAnswer",
    "LatencyFault",
    "NotFoundError",
    "NumberAssignment",
    "OperationFailure",
    "Policy",
    "RateLimit",
    "RejectedError",
    "Reply",
    "Scenario",
    "ScenarioError",
    "Simulator",
    "SimulatorServer",
    "TeamsProfile",
    "TeamsUserRecord",
    "Tenant",
    "TenantEntry",
    "User",
    "UserConfiguration",
    "World",
    "WorldError",
    "create_app",
    "load_directory",
    "load_scenario",
    "normalise_number",
    "number_assignment_json",
    "parse_directory",
    "parse_scenario",
    "route_name",
    "start_runner",
    "user_configuration_json",
]
