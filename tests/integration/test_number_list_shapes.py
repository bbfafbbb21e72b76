"""Teams' number list as Graph documents it, end to end on Azurite and the simulator (issue 11):

* item 1: ``numberAssignments`` pages with ``$top``/``$skip`` and no ``@odata.nextLink``
  (``numberAssignmentsPaging: skipOnly``): the app still reads every page, so rule 7 ("never
  take a number Teams has on someone else") sees a number on the third page;
* item 11: ``value`` as a single object (``numberAssignmentsValueShape: object``), as Graph's
  documented example shows it: read as a one-item list, so a number the app gave is found on
  its user and really taken back when they leave — not forgotten on "no record".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

import pytest

from graph_simulator import Scenario, parse_scenario
from shared.core.outcomes import Outcome, Reason
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import DOMAIN, build_scenario, user_id

NUMBERS_IN_TEAMS = 2_500
#: Index 2,100 of 2,500: on the third page of 1,000.
ON_PAGE_THREE = "+31855362100"
QUEUE = "queue"  # a resource account (a call queue): in the tenant, outside the voice group


def _numbers(count: int) -> list[str]:
    return [f"+3185536{index:04d}" for index in range(count)]


def _tenant(members: list[tuple[str, list[str]]], held_by_queue: list[str],
            *, free: Sequence[str] = (), **behaviour: Any) -> Scenario:
    """``members`` in the voice group, a resource account holding ``held_by_queue``, and
    ``free`` numbers nobody has, in that list order."""
    data: dict[str, Any] = json.loads(build_scenario(
        [*members, (QUEUE, [])], behaviour=behaviour,
    ).model_dump_json(by_alias=True))
    data["groups"][0]["members"].remove(user_id(QUEUE))
    held = set(held_by_queue)
    data["numberAssignments"] = [
        {"telephoneNumber": number, "numberType": "directRouting",
         "assignmentTargetId": user_id(QUEUE) if number in held else None}
        for number in sorted({*held, *free})
    ]
    return parse_scenario(data)


class TestTwoAndAHalfThousandNumbersWithoutANextLink:
    @pytest.fixture
    def scenario(self) -> Scenario:
        return _tenant([("ann", [ON_PAGE_THREE])], [ON_PAGE_THREE],
                       free=_numbers(NUMBERS_IN_TEAMS), numberAssignmentsPaging="skipOnly")

    async def test_a_number_on_page_three_held_by_a_resource_account_is_planned_elsewhere(
        self, local_app: LocalApp
    ) -> None:
        await local_app.sync()

        ann = (await local_app.statuses())[f"ann@{DOMAIN}"]
        # Planned, not refused: the plan saw the number on the queue, so nothing was written.
        assert (ann.outcome, ann.reason) == (Outcome.SKIPPED, Reason.ASSIGNED_ELSEWHERE)
        assert local_app.teams_by_upn()[ON_PAGE_THREE] == f"{QUEUE}@{DOMAIN}"
        log = local_app.simulator.request_log()
        assert not [entry for entry in log if entry["route"] == "assignNumber"]
        lists = [parse_qs(entry["query"]) for entry in log
                 if entry["route"] == "listNumberAssignments" and "$filter" not in entry["query"]]
        # Three pages, asked for by $skip: 1,000 + 1,000 + 500 (short: the end).
        assert [(page["$top"], page.get("$skip")) for page in lists] == [
            (["1000"], None), (["1000"], ["1000"]), (["1000"], ["2000"])]


ANNS_NUMBER = "+31855363011"
BOBS_NUMBER = "+31855363012"
QUEUES_NUMBER = "+31855363050"


class TestTheDocumentedSingleObjectValue:
    @pytest.fixture
    def scenario(self) -> Scenario:
        # ann's directory number is the queue's in Teams; bob's is free.
        return _tenant([("ann", [QUEUES_NUMBER]), ("bob", [BOBS_NUMBER])], [QUEUES_NUMBER])

    @pytest.mark.parametrize("shape", ["list", "object"])
    async def test_a_number_is_seen_on_its_holder_and_taken_back_when_its_user_leaves(
        self, local_app: LocalApp, monkeypatch: pytest.MonkeyPatch, shape: str
    ) -> None:
        monkeypatch.setenv("GRACE_PERIOD_HOURS", "0")
        local_app.simulator.set_behaviour(number_assignments_value_shape=shape)

        await local_app.sync()  # the full list is one number: the queue's, as one object

        statuses = await local_app.statuses()
        ann, bob = statuses[f"ann@{DOMAIN}"], statuses[f"bob@{DOMAIN}"]
        assert (ann.outcome, ann.reason) == (Outcome.SKIPPED, Reason.ASSIGNED_ELSEWHERE)
        assert (bob.outcome, bob.number) == (Outcome.ASSIGNED, BOBS_NUMBER)

        data = json.loads(local_app.scenario.model_dump_json(by_alias=True))
        data["groups"][0]["members"].remove(user_id("bob"))
        changed = parse_scenario(data)
        local_app.simulator.replace_directory(changed)
        local_app.scenario = changed
        local_app.simulator.clear_requests()

        await local_app.sync()  # bob leaves: his number is looked up ($filter: one object)

        bob = (await local_app.statuses())[f"bob@{DOMAIN}"]
        assert (bob.outcome, bob.reason) == (Outcome.UNASSIGNED, Reason.LEFT_GROUP)
        assert BOBS_NUMBER not in local_app.teams_by_upn()  # really taken back in Teams
        counts = local_app.simulator.request_counts()
        assert counts["unassignNumber"] == 1
        runtime = await local_app.runtime()
        assert BOBS_NUMBER not in await runtime.claims.list_claims()
