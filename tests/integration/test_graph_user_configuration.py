"""GraphUserConfigurations against the Graph simulator: body shapes, absent and late users,
licences, and Enterprise Voice after a real assignNumber."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from msgraph.graph_service_client import GraphServiceClient

from graph_simulator import Scenario, SimulatorServer, parse_scenario
from local_runner.session import SIMULATOR_TOKEN as TOKEN
from shared.adapters.graph.numbers import GraphTeamsNumbers
from shared.adapters.graph.user_configurations import GraphUserConfigurations, configuration_entity
from shared.config import NumberType
from shared.core.errors import PermanentError, TemporaryError, UnreadableAnswerError
from shared.core.outcomes import Reason
from shared.core.teams_readiness import (
    EV_NOT_ENABLED,
    NOT_LICENSED,
    WAITING_FOR_TEAMS,
    TeamsUser,
    readiness,
    verify_assignment,
)
from tests.integration.graph_client_support import fresh_graph_client
from tests.integration.scenario_builder import build_scenario, user_id

ANN = user_id("ann")  # in Teams, licensed, has +31855363011, Enterprise Voice off
BOB = user_id("bob")  # in Teams, licensed, no number, Enterprise Voice on
DAVE = user_id("dave")  # not in Teams
ERIN = user_id("erin")  # in Teams without Teams Phone
GUS = user_id("gus")  # shows up in Teams after two reads
FAY = user_id("fay")  # in Teams, licensed, no number, Enterprise Voice off
ANNS_NUMBER = "+31855363011"
FREE_NUMBER = "+31855363099"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def scenario(**behaviour: Any) -> Scenario:
    data: dict[str, Any] = build_scenario(
        [("ann", []), ("bob", []), ("dave", []), ("erin", []), ("gus", []), ("fay", [])],
        existing={ANNS_NUMBER: "ann"},
        # operationPolls 0: assignNumber's operation is done at the first look, so the adapter
        # never waits between polls.
        behaviour={"operationSeconds": 0, **behaviour},
    ).model_dump(by_alias=True, mode="json")
    profiles: dict[str, dict[str, Any]] = {
        "bob": {"enterpriseVoiceEnabled": True},
        "dave": {"present": False},
        "erin": {"licensed": False},
        "gus": {"visibleAfterPolls": 2},
    }
    for user in data["users"]:
        user["teams"] = {**user["teams"], **profiles.get(user["displayName"], {})}
    data["numberAssignments"].append(
        {"telephoneNumber": FREE_NUMBER, "numberType": "directRouting"}
    )
    data["policies"] = [{"type": "CallingLineIdentity", "name": "MainNumber", "id": "cli-1"}]
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
def configurations(graph: GraphServiceClient) -> GraphUserConfigurations:
    return GraphUserConfigurations(graph)


@pytest.mark.parametrize("shape", ["root", "value"])
async def test_the_configuration_is_read_at_the_root_or_inside_value(
    configurations: GraphUserConfigurations, sim: SimulatorServer, shape: str
) -> None:
    sim.load_scenario(scenario(userConfigurationBodyShape=shape))

    ann = await configurations.read(ANN)

    assert ann == TeamsUser(
        user_id=ANN,
        enterprise_voice_enabled=False,
        telephone_numbers=(ANNS_NUMBER,),
        effective_policies={},
        licensed_for_phone=True,
        account_type="user",
        feature_types=("Teams", "PhoneSystem"),
    )


async def test_only_the_fields_the_app_reads_are_requested(
    configurations: GraphUserConfigurations, sim: SimulatorServer
) -> None:
    await configurations.read(BOB)

    (entry,) = sim.request_log()
    assert entry["path"] == f"/v1.0/admin/teams/userConfigurations/{BOB}"
    assert entry["query"] == (
        "$select=id,isEnterpriseVoiceEnabled,telephoneNumbers,effectivePolicyAssignments,"
        "featureTypes,accountType"
    )


async def test_a_user_teams_does_not_know_reads_as_none(
    configurations: GraphUserConfigurations,
) -> None:
    assert await configurations.read(DAVE) is None


async def test_a_user_appears_once_teams_has_caught_up(
    configurations: GraphUserConfigurations,
) -> None:
    # visibleAfterPolls: 2 -- licence propagation, modelled as reads instead of hours.
    assert await configurations.read(GUS) is None
    assert await configurations.read(GUS) is None
    gus = await configurations.read(GUS)

    assert gus is not None
    assert gus.licensed_for_phone


async def test_an_unlicensed_user_is_not_licensed_for_phone(
    configurations: GraphUserConfigurations,
) -> None:
    erin = await configurations.read(ERIN)

    assert erin is not None
    assert not erin.licensed_for_phone
    state = readiness(erin, first_seen=NOW, now=NOW + timedelta(hours=25))
    assert (state.state, state.is_problem) == (NOT_LICENSED, True)


async def test_readiness_follows_a_user_into_teams(
    configurations: GraphUserConfigurations,
) -> None:
    first = readiness(await configurations.read(GUS), first_seen=NOW, now=NOW)
    assert (first.state, first.is_problem) == (WAITING_FOR_TEAMS, False)

    await configurations.read(GUS)
    assert readiness(await configurations.read(GUS), first_seen=NOW, now=NOW).ready


async def test_enterprise_voice_is_on_after_assign_number(
    graph: GraphServiceClient, configurations: GraphUserConfigurations
) -> None:
    teams = GraphTeamsNumbers(graph, number_type=NumberType.DIRECT_ROUTING,
                              poll_interval_seconds=0.01, operation_timeout_seconds=10)
    before = await configurations.read(FAY)
    assert before is not None
    assert not before.enterprise_voice_enabled
    assert verify_assignment(before, FREE_NUMBER).reason == "verify_failed"

    await teams.assign_number(FREE_NUMBER, FAY)
    fay = await configurations.read(FAY)

    assert fay is not None
    assert fay.telephone_numbers == (FREE_NUMBER,)
    assert fay.enterprise_voice_enabled
    assert verify_assignment(fay, FREE_NUMBER).ok


async def test_an_assignment_that_leaves_enterprise_voice_off_is_reported(
    graph: GraphServiceClient, configurations: GraphUserConfigurations, sim: SimulatorServer
) -> None:
    # Whether Graph's assignNumber turns Enterprise Voice on is undocumented; the simulator
    # can leave it off, and the read-back must say so.
    sim.load_scenario(scenario(assignEnablesEnterpriseVoice=False))
    teams = GraphTeamsNumbers(graph, number_type=NumberType.DIRECT_ROUTING,
                              poll_interval_seconds=0.01, operation_timeout_seconds=10)

    await teams.assign_number(FREE_NUMBER, FAY)
    fay = await configurations.read(FAY)

    assert fay is not None
    assert fay.telephone_numbers == (FREE_NUMBER,)
    verification = verify_assignment(fay, FREE_NUMBER)
    assert (verification.ok, verification.reason) == (False, EV_NOT_ENABLED)


async def test_a_refused_read_names_the_permission(
    configurations: GraphUserConfigurations, sim: SimulatorServer
) -> None:
    sim.inject_fault("getUserConfiguration", 403, code="Forbidden", message="Access denied.")

    with pytest.raises(PermanentError) as raised:
        await configurations.read(ANN)

    assert raised.value.reason is Reason.GRAPH_FORBIDDEN
    assert "TeamsUserConfiguration.Read.All" in raised.value.message


async def test_an_unavailable_read_is_temporary(
    configurations: GraphUserConfigurations, sim: SimulatorServer
) -> None:
    sim.inject_fault("getUserConfiguration", 503, retry_after_seconds=7)

    with pytest.raises(TemporaryError) as raised:
        await configurations.read(ANN)

    assert raised.value.retry_after_seconds == 7


@pytest.mark.parametrize(
    "body", [{"id": "x"}, {"value": {"id": "x"}}, {"value": [{"id": "x"}]}],
)
def test_the_entity_is_found_in_every_documented_or_plausible_shape(body: Any) -> None:
    assert configuration_entity(body) == {"id": "x"}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"value": []}, "'value' is a list of 0, not one user"),
        ({"value": [{"id": "x"}, {"id": "y"}]}, "'value' is a list of 2, not one user"),
        ({"value": None}, "'value' is null, not a user's configuration"),
        ([], "the body is a list, not a JSON object"),
    ],
)
def test_a_body_without_one_entity_is_unreadable_not_no_record(body: Any, problem: str) -> None:
    # Teams answers 404 for a user it does not know; a 200 without a user is not "no record".
    with pytest.raises(UnreadableAnswerError) as raised:
        configuration_entity(body)
    assert raised.value.problem == problem
    assert raised.value.route == "GET /admin/teams/userConfigurations/{id}"
