"""The numberAssignments list as Graph documents it (issue 11, items 1 and 11): no next link
(`numberAssignmentsPaging: skipOnly`), and `value` as a single object
(`numberAssignmentsValueShape: object`); both set in the scenario or through
`POST /_simulator/behaviour`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from graph_simulator import ScenarioError, SimulatorServer, parse_scenario
from tests.simulator.support import ANN, ANNS_DR, NUMBERS, example


def _page(client: httpx.Client, **params: str) -> dict[str, Any]:
    response = client.get(NUMBERS, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_skip_only_pages_have_no_next_link_and_skip_reads_on(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    sim.load_scenario(parse_scenario(example(numberAssignmentsPaging="skipOnly")))

    first = _page(client, **{"$top": "3"})
    second = _page(client, **{"$top": "3", "$skip": "3"})

    assert len(first["value"]) == 3
    assert "@odata.nextLink" not in first
    assert [item["telephoneNumber"] for item in second["value"]] == ["+31207654321"]
    assert "@odata.nextLink" not in second


def test_next_link_paging_is_still_the_default(client: httpx.Client) -> None:
    assert "$skip=3" in _page(client, **{"$top": "3"})["@odata.nextLink"]


def test_object_shape_gives_one_number_as_an_object_and_others_as_lists(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    sim.load_scenario(parse_scenario(example(numberAssignmentsValueShape="object")))

    one = _page(client, **{"$filter": f"telephoneNumber eq '{ANNS_DR}'"})
    none = _page(client, **{"$filter": "telephoneNumber eq '+31855363098'"})
    every = _page(client)

    assert isinstance(one["value"], dict)
    assert (one["value"]["telephoneNumber"], one["value"]["assignmentTargetId"]) == (
        ANNS_DR, ANN)
    assert none["value"] == []
    assert isinstance(every["value"], list)
    assert len(every["value"]) == 4


def test_the_behaviour_route_changes_only_the_fields_given(
    client: httpx.Client, control: httpx.Client
) -> None:
    answer = control.post("/_simulator/behaviour", json={
        "numberAssignmentsPaging": "skipOnly", "numberAssignmentsValueShape": "object",
    })
    assert answer.status_code == 200, answer.text

    assert "@odata.nextLink" not in _page(client, **{"$top": "3"})
    assert isinstance(_page(client, **{"$top": "1"})["value"], dict)
    # A later change of one field leaves the other as it was set.
    assert control.post("/_simulator/behaviour", json={"numberAssignmentsPaging": "nextLink"}
                        ).status_code == 200
    assert "@odata.nextLink" in _page(client, **{"$top": "3"})
    assert isinstance(_page(client, **{"$top": "1"})["value"], dict)


@pytest.mark.parametrize(
    "body", [{"numberAssignmentsPaging": "never"}, {"noSuchKnob": True}, [1]],
)
def test_the_behaviour_route_refuses_an_invalid_change_naming_it(
    control: httpx.Client, body: Any
) -> None:
    answer = control.post("/_simulator/behaviour", json=body)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "InvalidRequest"
    assert answer.json()["error"]["message"].startswith("behaviour")


def test_set_behaviour_python_api(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.set_behaviour(number_assignments_paging="skipOnly")
    assert "@odata.nextLink" not in _page(client, **{"$top": "3"})
    with pytest.raises(ScenarioError, match="numberAssignmentsValueShape"):
        sim.set_behaviour(numberAssignmentsValueShape="tuple")
