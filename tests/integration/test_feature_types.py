"""featureTypes spellings Graph never documents, end to end on Azurite + the Graph simulator.

Graph lists no featureTypes values; the app reads ``PhoneSystem``, ``CallingPlan`` and
``PhoneSystemVirtualUser`` as Teams Phone, but only to explain a refusal. A licensed user whose
configuration spells Teams Phone some other way (or lists nothing but ``Teams``) still gets
their number, and a main-number user their policies: nothing is ever left unwritten because of
what featureTypes says.
"""

from __future__ import annotations

from typing import Any

import pytest

from graph_simulator import Scenario, parse_scenario
from shared.core.outcomes import Outcome, Reason
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import DOMAIN, build_scenario, user_id

ANN_NUMBER = "+31855363011"
ERIN_NUMBER = "+31855363015"
MAIN = "+31855363010"
CLI = "CallingLineIdentity"


@pytest.fixture(params=[("TeamsPhoneStandard",), ("MCOEV", "MCOPSTN1"), ()],
                ids=["TeamsPhoneStandard", "MCOEV", "only-Teams"])
def scenario(request: pytest.FixtureRequest) -> Scenario:
    """ann (licensed) has a personal number, mia the main number, erin (no Teams Phone) a
    personal number; Teams Phone is spelled ``request.param`` in featureTypes."""
    data: dict[str, Any] = build_scenario(
        [("ann", [ANN_NUMBER]), ("mia", [MAIN]), ("erin", [ERIN_NUMBER])],
        behaviour={"phoneFeatureTypes": list(request.param)},
    ).model_dump(by_alias=True, mode="json")
    data["tenant"]["rules"] = {
        "mainNumbers": {DOMAIN: MAIN},
        "mainNumberPolicies": f"{DOMAIN}={CLI}:Contoso Main",
    }
    data["policies"] = [{"type": CLI, "name": "Contoso Main", "id": "cli-contoso-main"}]
    erin = next(u for u in data["users"] if u["id"] == user_id("erin"))
    erin["teams"] = {"licensed": False}
    return parse_scenario(data)


async def test_a_licensed_user_with_an_unknown_feature_spelling_still_gets_the_number(
    local_app: LocalApp,
) -> None:
    await local_app.sync()

    # The simulator serves the spelling under test: the app never saw PhoneSystem.
    features = {c["id"]: c["featureTypes"] for c in local_app.simulator.user_configurations()}
    assert "PhoneSystem" not in features[user_id("ann")]
    teams = local_app.teams_by_upn()
    assert teams[ANN_NUMBER] == f"ann@{DOMAIN}"
    statuses = await local_app.statuses()
    ann = statuses[f"ann@{DOMAIN}"]
    assert (ann.outcome, ann.reason, ann.number) == (Outcome.ASSIGNED, Reason.ASSIGNED,
                                                     ANN_NUMBER)
    # The main-number user's policies are given too, and confirmed.
    mia = statuses[f"mia@{DOMAIN}"]
    assert (mia.outcome, mia.reason) == (Outcome.ASSIGNED, Reason.MAIN_NUMBER)
    assert "confirmed" in mia.message
    # Teams refused erin's number (no Teams Phone): only then is featureTypes read, to say
    # what Teams listed; erin waits and is tried again later.
    erin = statuses[f"erin@{DOMAIN}"]
    assert (erin.outcome, erin.reason) == (Outcome.SKIPPED, Reason.NOT_LICENSED)
    assert "its features: Teams)" in erin.message
    assert erin.retry_at is not None
    assert ERIN_NUMBER not in teams
    counts = local_app.simulator.request_counts()
    assert (counts["assignNumber"], counts["assignPolicy"]) == (2, 1)  # ann's and erin's
