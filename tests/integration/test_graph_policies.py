"""GraphPolicies against the Graph simulator: getPolicyId (comma, quoting, Tag:), cache, assign."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from msgraph.graph_service_client import GraphServiceClient

from graph_simulator import Scenario, SimulatorServer, parse_scenario
from local_runner.session import SIMULATOR_TOKEN as TOKEN
from shared.adapters.graph.policies import GraphPolicies
from shared.adapters.graph.user_configurations import GraphUserConfigurations
from shared.core.errors import PermanentError, TemporaryError
from shared.core.outcomes import Reason
from tests.integration.graph_client_support import fresh_graph_client
from tests.integration.scenario_builder import build_scenario, user_id

ANN = user_id("ann")
DAVE = user_id("dave")  # not in Teams
CLI = "CallingLineIdentity"
DIAL_PLAN = "TenantDialPlan"
MAIN_ID = "cli-main-number"
QUOTED_NAME = "O'Brien Main Line"  # a quote and spaces: needs OData quoting and encoding
QUOTED_ID = "cli-obrien"
DIAL_PLAN_ID = "dial-plan-nl"


def scenario() -> Scenario:
    data: dict[str, Any] = build_scenario(
        [("ann", ["+31855363011"]), ("dave", [])]
    ).model_dump(by_alias=True, mode="json")
    data["users"][1]["teams"] = {"present": False}
    data["policies"] = [
        {"type": CLI, "name": "MainNumber", "id": MAIN_ID},
        {"type": CLI, "name": QUOTED_NAME, "id": QUOTED_ID},
        {"type": DIAL_PLAN, "name": "NL-Default", "id": DIAL_PLAN_ID},
    ]
    return parse_scenario(data)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(scenario(), token=TOKEN) as running:
        yield running


@pytest.fixture
async def graph(sim: SimulatorServer) -> AsyncIterator[GraphServiceClient]:
    async with fresh_graph_client(sim, scenario(), TOKEN) as client:  # a fresh world per test
        yield client


@pytest.fixture
def policies(graph: GraphServiceClient) -> GraphPolicies:
    return GraphPolicies(graph)


def lookups(sim: SimulatorServer) -> int:
    return sim.request_counts().get("getPolicyId", 0)


# -- getPolicyId -----------------------------------------------------------------------------


async def test_a_policy_name_resolves_to_its_id(policies: GraphPolicies) -> None:
    assert await policies.policy_id(CLI, "MainNumber") == MAIN_ID
    assert await policies.policy_id(DIAL_PLAN, "NL-Default") == DIAL_PLAN_ID


async def test_a_name_with_a_quote_and_spaces_is_quoted_and_encoded(
    policies: GraphPolicies, sim: SimulatorServer
) -> None:
    assert await policies.policy_id(CLI, QUOTED_NAME) == QUOTED_ID

    (entry,) = sim.request_log()
    # The comma the SDK's template loses is there; the doubled quote and spaces are encoded.
    assert entry["path"].endswith(
        "getPolicyId(type='CallingLineIdentity',name='O%27%27Brien%20Main%20Line')"
    )
    assert entry["status"] == 200


@pytest.mark.parametrize("configured", ["Tag:MainNumber", "tag:MainNumber", "MainNumber"])
async def test_the_name_is_matched_with_or_without_the_tag_prefix(
    policies: GraphPolicies, configured: str
) -> None:
    assert await policies.policy_id(CLI, configured) == MAIN_ID


async def test_ids_are_cached_for_the_life_of_the_adapter(
    policies: GraphPolicies, sim: SimulatorServer
) -> None:
    await policies.policy_id(CLI, "MainNumber")
    assert lookups(sim) == 1

    assert await policies.policy_id(CLI, "MainNumber") == MAIN_ID
    assert await policies.policy_id(CLI, "Tag:MainNumber") == MAIN_ID  # same policy, same entry
    assert lookups(sim) == 1

    await policies.policy_id(DIAL_PLAN, "NL-Default")  # another key is looked up
    assert lookups(sim) == 2


async def test_concurrent_first_lookups_send_one_request(
    policies: GraphPolicies, sim: SimulatorServer
) -> None:
    ids = await asyncio.gather(*(policies.policy_id(CLI, "MainNumber") for _ in range(5)))

    assert set(ids) == {MAIN_ID}
    assert lookups(sim) == 1


async def test_an_unknown_policy_is_permanent_and_says_what_to_do(
    policies: GraphPolicies, sim: SimulatorServer
) -> None:
    with pytest.raises(PermanentError) as raised:
        await policies.policy_id(CLI, "Tag:NoSuchPolicy")

    assert raised.value.reason is Reason.POLICY_NOT_FOUND
    message = raised.value.message
    assert "CallingLineIdentity" in message
    assert "'NoSuchPolicy'" in message
    assert "Create it" in message
    assert "app settings" in message
    # A failed lookup is not cached: once the policy is created, the next call finds it.
    with pytest.raises(PermanentError):
        await policies.policy_id(CLI, "NoSuchPolicy")
    assert lookups(sim) == 2


async def test_a_refused_lookup_names_the_permission(
    policies: GraphPolicies, sim: SimulatorServer
) -> None:
    sim.inject_fault("getPolicyId", 403, code="Forbidden", message="Access denied.")

    with pytest.raises(PermanentError) as raised:
        await policies.policy_id(CLI, "MainNumber")

    assert raised.value.reason is Reason.GRAPH_FORBIDDEN
    assert "TeamsPolicyUserAssign.ReadWrite.All" in raised.value.message


async def test_an_unavailable_lookup_is_temporary_and_not_cached(
    policies: GraphPolicies, sim: SimulatorServer
) -> None:
    sim.inject_fault("getPolicyId", 503, retry_after_seconds=30)

    with pytest.raises(TemporaryError) as raised:
        await policies.policy_id(CLI, "MainNumber")

    assert raised.value.retry_after_seconds == 30
    assert await policies.policy_id(CLI, "MainNumber") == MAIN_ID


# -- assign / unassign -----------------------------------------------------------------------


async def test_an_assigned_policy_shows_as_effective_and_unassign_removes_it(
    policies: GraphPolicies, graph: GraphServiceClient, sim: SimulatorServer
) -> None:
    configurations = GraphUserConfigurations(graph)
    policy_id = await policies.policy_id(CLI, QUOTED_NAME)

    await policies.assign(ANN, CLI, policy_id)
    ann = await configurations.read(ANN)
    assert ann is not None
    assert ann.effective_policies == {CLI: QUOTED_ID}

    await policies.unassign(ANN, CLI)
    ann = await configurations.read(ANN)
    assert ann is not None
    assert ann.effective_policies == {}
    counts = sim.request_counts()
    assert (counts["assignPolicy"], counts["unassignPolicy"]) == (1, 1)


async def test_assigning_another_policy_of_the_same_type_replaces_it(
    policies: GraphPolicies, graph: GraphServiceClient
) -> None:
    await policies.assign(ANN, CLI, MAIN_ID)
    await policies.assign(ANN, CLI, QUOTED_ID)
    await policies.assign(ANN, DIAL_PLAN, DIAL_PLAN_ID)

    ann = await GraphUserConfigurations(graph).read(ANN)

    assert ann is not None
    assert ann.effective_policies == {CLI: QUOTED_ID, DIAL_PLAN: DIAL_PLAN_ID}


async def test_assigning_to_a_user_teams_does_not_know_is_user_not_found(
    policies: GraphPolicies,
) -> None:
    with pytest.raises(PermanentError) as raised:
        await policies.assign(DAVE, CLI, MAIN_ID)

    assert raised.value.reason is Reason.USER_NOT_FOUND


async def test_unassigning_from_a_user_teams_does_not_know_is_user_not_found(
    policies: GraphPolicies,
) -> None:
    with pytest.raises(PermanentError) as raised:
        await policies.unassign(DAVE, CLI)

    assert raised.value.reason is Reason.USER_NOT_FOUND


async def test_assigning_an_id_teams_does_not_have_is_a_permanent_failure(
    policies: GraphPolicies,
) -> None:
    with pytest.raises(PermanentError) as raised:
        await policies.assign(ANN, CLI, "no-such-id")

    assert raised.value.reason is Reason.ASSIGNMENT_FAILED
    assert "no-such-id" in raised.value.message


async def test_a_throttled_assignment_is_temporary(
    policies: GraphPolicies, sim: SimulatorServer
) -> None:
    sim.inject_fault("assignPolicy", 429, retry_after_seconds=5)

    with pytest.raises(TemporaryError) as raised:
        await policies.assign(ANN, CLI, MAIN_ID)

    assert raised.value.retry_after_seconds == 5


async def test_the_assignment_body_is_what_graph_documents(
    policies: GraphPolicies, sim: SimulatorServer
) -> None:
    # The simulator refuses unknown properties and a wrong @odata.type with 400, so a 204
    # here means the SDK's serialisation of TeamsPolicyUserAssignment matches the docs.
    await policies.assign(ANN, CLI, MAIN_ID)
    await policies.unassign(ANN, CLI)

    assert [entry["status"] for entry in sim.request_log()] == [204, 204]
    assert [entry["path"] for entry in sim.request_log()] == [
        "/v1.0/admin/teams/policy/userAssignments/microsoft.graph.teamsAdministration.assign",
        "/v1.0/admin/teams/policy/userAssignments/microsoft.graph.teamsAdministration.unassign",
    ]
