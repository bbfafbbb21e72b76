"""The simulator as harsh as documented Graph (issue 11, items 3, 5 and 9): operations that end
`skipped`, an assignment carried out whose answer is lost, a repeated assignment refused, and
refusal texts nobody has seen -- each set through `POST /_simulator/behaviour`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from graph_simulator import SimulatorServer
from tests.simulator.support import ANN, BOB

ANNS_DR = "+31855363011"
FREE_DR = "+31855363099"
AUTH = {"Authorization": "Bearer simulator-token"}
NUMBERS = "/admin/teams/telephoneNumberManagement/numberAssignments"


def set_behaviour(control: httpx.Client, **knobs: Any) -> dict[str, Any]:
    response = control.post("/_simulator/behaviour", json=knobs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assign(client: httpx.Client, number: str, target: str, *,
           retry: int | None = None) -> httpx.Response:
    headers = {} if retry is None else {"Retry-Attempt": str(retry)}
    return client.post(f"{NUMBERS}/assignNumber", headers=headers, json={
        "telephoneNumber": number, "assignmentTargetId": target, "numberType": "directRouting"})


def unassign(client: httpx.Client, number: str) -> httpx.Response:
    return client.post(f"{NUMBERS}/unassignNumber",
                       json={"telephoneNumber": number, "numberType": "directRouting"})


def finish(client: httpx.Client, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    for _ in range(10):
        body: dict[str, Any] = client.get(response.headers["Location"]).json()
        if body["status"] not in {"notStarted", "running"}:
            return body
    raise AssertionError("operation never finished")


def target_of(sim: SimulatorServer, number: str) -> str | None:
    return sim.number_assignments().get(number)


def test_the_behaviour_route_changes_the_named_knobs_and_keeps_the_rest(
    control: httpx.Client,
) -> None:
    body = set_behaviour(control, skippedOperations="always", operationSeconds=0)

    assert body["skippedOperations"] == "always"
    assert body["operationSeconds"] == 0
    assert body["assignErrors"] == "async"  # the scenario's, untouched
    refused = control.post("/_simulator/behaviour", json={"refusalTexts": "klingon"})
    assert refused.status_code == 400
    assert "refusalTexts" in refused.json()["error"]["message"]
    assert control.post("/_simulator/behaviour", json=[1]).status_code == 400


def test_always_skipped_operations_change_nothing(
    sim: SimulatorServer, client: httpx.Client, control: httpx.Client
) -> None:
    set_behaviour(control, skippedOperations="always")

    assert finish(client, assign(client, FREE_DR, BOB))["status"] == "skipped"
    assert target_of(sim, FREE_DR) is None
    operation = finish(client, unassign(client, ANNS_DR))
    assert operation["status"] == "skipped"
    assert operation["numbers"][0]["status"] == "skipped"
    assert target_of(sim, ANNS_DR) == ANN


def test_already_done_skips_only_what_is_already_so(
    sim: SimulatorServer, client: httpx.Client, control: httpx.Client
) -> None:
    set_behaviour(control, skippedOperations="alreadyDone")

    assert finish(client, assign(client, FREE_DR, BOB))["status"] == "succeeded"
    assert finish(client, assign(client, FREE_DR, BOB))["status"] == "skipped"
    assert target_of(sim, FREE_DR) == BOB
    assert finish(client, unassign(client, FREE_DR))["status"] == "succeeded"
    assert finish(client, unassign(client, FREE_DR))["status"] == "skipped"


def test_an_assignment_whose_answer_is_lost_was_carried_out_and_its_retry_succeeds(
    sim: SimulatorServer, client: httpx.Client, control: httpx.Client
) -> None:
    set_behaviour(control, assignAnswerLost="gatewayTimeout")

    lost = assign(client, FREE_DR, BOB)

    assert lost.status_code == 504
    assert lost.json()["error"]["code"] == "timeout"
    assert target_of(sim, FREE_DR) == BOB  # carried out at once, however many polls it needs
    assert finish(client, assign(client, FREE_DR, BOB, retry=1))["status"] == "succeeded"
    assert target_of(sim, FREE_DR) == BOB
    assert [e["status"] for e in sim.request_log() if e["route"] == "assignNumber"] == [504, 202]


def test_a_dropped_connection_after_the_assignment_leaves_the_number_on_the_user(
    sim: SimulatorServer, client: httpx.Client, control: httpx.Client
) -> None:
    set_behaviour(control, assignAnswerLost="connectionDropped")

    with pytest.raises(httpx.TransportError):
        assign(client, FREE_DR, BOB)

    assert target_of(sim, FREE_DR) == BOB


@pytest.mark.parametrize("errors", ["sync", "async"])
def test_a_repeated_assignment_can_be_refused_as_already_assigned_to_this_user(
    sim: SimulatorServer, client: httpx.Client, control: httpx.Client, errors: str
) -> None:
    set_behaviour(control, assignAnswerLost="gatewayTimeout", repeatedAssign="refused",
                  assignErrors=errors)
    assert assign(client, FREE_DR, BOB).status_code == 504

    retried = assign(client, FREE_DR, BOB, retry=1)

    if errors == "sync":
        assert retried.status_code == 400
        text = retried.json()["error"]["message"]
    else:
        operation = finish(client, retried)
        assert operation["status"] == "failed"
        text = operation["numbers"][0]["statusDetail"]
    assert text == f"Telephone Number '{FREE_DR}' is already assigned to this user"
    assert target_of(sim, FREE_DR) == BOB  # the refusal takes nothing away


def test_a_first_assignment_is_not_a_repeat_even_when_repeats_are_refused(
    sim: SimulatorServer, client: httpx.Client, control: httpx.Client
) -> None:
    set_behaviour(control, repeatedAssign="refused")

    assert finish(client, assign(client, FREE_DR, BOB))["status"] == "succeeded"
    assert finish(client, assign(client, FREE_DR, BOB))["status"] == "failed"
    assert target_of(sim, FREE_DR) == BOB


@pytest.mark.parametrize("errors", ["sync", "async"])
def test_unseen_refusal_texts_replace_every_teams_text(
    client: httpx.Client, control: httpx.Client, errors: str
) -> None:
    set_behaviour(control, refusalTexts="unseen", assignErrors=errors)

    taken = assign(client, ANNS_DR, BOB)  # ann has it: "already been assigned" in Teams' words

    if errors == "sync":
        assert taken.status_code == 400
        text = taken.json()["error"]["message"]
    else:
        text = finish(client, taken)["numbers"][0]["statusDetail"]
    assert text.startswith("The number service declined this request (decision ")
    lowered = text.lower()
    for known in ("assigned", "not found", "licen", "try again", "timeout"):
        assert known not in lowered


def test_unseen_refusal_texts_can_say_try_again(
    client: httpx.Client, control: httpx.Client
) -> None:
    set_behaviour(control, refusalTexts="unseenTryAgain", assignErrors="sync")

    text = assign(client, ANNS_DR, BOB).json()["error"]["message"]

    assert text.startswith("The number service declined this request")
    assert text.endswith("Please try again later.")
