"""A local stand-in for the parts of Microsoft Graph v1.0 that Teams Number Sync uses.

It is as strict as Graph is documented to be (advanced-query headers, page-size limits, enum
spelling, number ownership), so that a test passing against it says something about Graph.
"""

from graph_simulator.scenario import (
    Behaviour,
    Directory,
    Fault,
    Group,
    NumberAssignment,
    Scenario,
    ScenarioError,
    Tenant,
    User,
    load_directory,
    load_scenario,
    normalise_number,
    parse_directory,
    parse_scenario,
)
from graph_simulator.server import (
    DEFAULT_TOKEN,
    ROUTE_NAMES,
    GraphRequest,
    Reply,
    Simulator,
    SimulatorServer,
    create_app,
    number_assignment_json,
    start_runner,
)
from graph_simulator.world import NotFoundError, RejectedError, World, WorldError

__all__ = [
    "DEFAULT_TOKEN",
    "ROUTE_NAMES",
    "Behaviour",
    "Directory",
    "Fault",
    "GraphRequest",
    "Group",
    "NotFoundError",
    "NumberAssignment",
    "RejectedError",
    "Reply",
    "Scenario",
    "ScenarioError",
    "Simulator",
    "SimulatorServer",
    "Tenant",
    "User",
    "World",
    "WorldError",
    "create_app",
    "load_directory",
    "load_scenario",
    "normalise_number",
    "number_assignment_json",
    "parse_directory",
    "parse_scenario",
    "start_runner",
]
