"""Main-number policies end to end on Azurite + the Graph simulator, through the real functions.

A user carrying a SIP domain's main number is never given the number; they get the policies
configured for it (``MAIN_NUMBER_POLICIES``), verified through their effective policy
assignments, and lose them (only the ones this app gave) once they no longer carry it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from graph_simulator import Scenario, parse_scenario
from shared.core.outcomes import Outcome, Reason
from shared.host_settings import QueueHostSettings
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario, user_id

MAIN = "+31855363010"
ANN_PERSONAL = "+31855363011"
BOB_PERSONAL = "+31855363012"
CLI, ROUTE = "CallingLineIdentity", "OnlineVoiceRoutingPolicy"
CLI_MAIN, CLI_OTHER, ROUTE_NL = "cli-contoso-main", "cli-other", "route-nl"
POLICIES = f"contoso.example={CLI}:Contoso Main,{ROUTE}:NL-Route"
ANN, BOB = user_id("ann"), user_id("bob")
WRITES = ("assignPolicy", "unassignPolicy", "assignNumber", "unassignNumber")


def _tenant(
    members: list[tuple[str, list[str]]] | None = None, policies: str = POLICIES
) -> Scenario:
    """ann carries the main number, bob a personal number; the tenant's policies exist."""
    data: dict[str, Any] = build_scenario(
        members or [("ann", [MAIN]), ("bob", [BOB_PERSONAL])]
    ).model_dump(by_alias=True, mode="json")
    data["tenant"]["rules"] = {
        "mainNumbers": {"contoso.example": MAIN},
        "mainNumberPolicies": policies,
    }
    data["policies"] = [
        {"type": CLI, "name": "Contoso Main", "id": CLI_MAIN},
        {"type": CLI, "name": "Other Caller ID", "id": CLI_OTHER},
        {"type": ROUTE, "name": "NL-Route", "id": ROUTE_NL},
    ]
    return parse_scenario(data)


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Scenario:
    policies = getattr(request, "param", POLICIES)
    return _tenant(policies=policies)


def _effective(app: LocalApp, user: str) -> dict[str, tuple[str, str]]:
    """policyType → (policyId, assignmentType) as the user's Teams configuration shows it."""
    (configuration,) = [c for c in app.simulator.user_configurations() if c["id"] == user]
    return {
        item["policyType"]: (
            item["policyAssignment"]["policyId"], item["policyAssignment"]["assignmentType"]
        )
        for item in configuration["effectivePolicyAssignments"]
    }


class CrashError(Exception):
    """A worker dying right after a call returned (the host sees an exception, redelivers)."""


def _crash_once_after(target: object, name: str) -> None:
    original: Callable[..., Awaitable[Any]] = getattr(target, name)
    calls = 0

    async def crashing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        result = await original(*args, **kwargs)
        if calls == 1:
            raise CrashError(f"crash after {name}")
        return result

    setattr(target, name, crashing)


def _writes(app: LocalApp) -> dict[str, int]:
    counts = app.simulator.request_counts()
    return {route: counts.get(route, 0) for route in WRITES if counts.get(route, 0)}


async def _change_directory(
    app: LocalApp, members: list[tuple[str, list[str]]], *, outside: tuple[str, ...] = ()
) -> None:
    """The users in ``members`` from now on; those named in ``outside`` are not in the group."""
    directory = _tenant(members).directory
    group = directory.groups[0]
    kept = tuple(member for member in group.members
                 if member not in {user_id(name) for name in outside})
    directory = directory.model_copy(
        update={"groups": (group.model_copy(update={"members": kept}),)}
    )
    app.simulator.replace_directory(directory)
    app.scenario = app.scenario.model_copy(update={"users": directory.users})


async def test_a_main_number_user_gets_the_policies_and_the_report_says_so(
    local_app: LocalApp,
) -> None:
    await local_app.sync()

    assert _effective(local_app, ANN) == {CLI: (CLI_MAIN, "direct"), ROUTE: (ROUTE_NL, "direct")}
    assert MAIN not in local_app.teams_by_upn()  # the main number itself goes to nobody
    ann = (await local_app.statuses())["ann@contoso.example"]
    assert (ann.outcome, ann.reason, ann.number) == (Outcome.ASSIGNED, Reason.MAIN_NUMBER, MAIN)
    assert "CallingLineIdentity 'Contoso Main' and OnlineVoiceRoutingPolicy 'NL-Route'" in (
        ann.message
    )
    assert "confirmed" in ann.message
    # Both policies in one assignment request; each name resolved once.
    counts = local_app.simulator.request_counts()
    assert (counts["assignPolicy"], counts["getPolicyId"]) == (1, 2)
    assert _writes(local_app) == {"assignPolicy": 1, "assignNumber": 1}  # bob's number


async def test_a_second_run_writes_nothing(local_app: LocalApp) -> None:
    await local_app.sync()
    before = (await local_app.statuses())["ann@contoso.example"]
    local_app.simulator.clear_requests()

    await local_app.sync()

    assert _writes(local_app) == {}
    counts = local_app.simulator.request_counts()
    assert counts.get("getPolicyId", 0) == counts.get("getUserConfiguration", 0) == 0
    assert (await local_app.statuses())["ann@contoso.example"] == before


async def test_a_personal_number_instead_of_the_main_number_takes_the_policies_back(
    local_app: LocalApp,
) -> None:
    await local_app.sync()
    await _change_directory(local_app, [("ann", [ANN_PERSONAL]), ("bob", [BOB_PERSONAL])])
    local_app.simulator.clear_requests()

    await local_app.sync()

    assert _effective(local_app, ANN) == {}
    assert local_app.teams_by_upn()[ANN_PERSONAL] == "ann@contoso.example"
    assert _writes(local_app) == {"unassignPolicy": 1, "assignNumber": 1}
    ann = (await local_app.statuses())["ann@contoso.example"]
    assert (ann.outcome, ann.number) == (Outcome.ASSIGNED, ANN_PERSONAL)
    runtime = await local_app.runtime()
    assert await runtime.grants.list_grants() == {}


async def test_a_user_who_leaves_the_group_loses_the_policies(local_app: LocalApp) -> None:
    await local_app.sync()
    await _change_directory(
        local_app, [("ann", [MAIN]), ("bob", [BOB_PERSONAL])], outside=("ann",)
    )
    local_app.simulator.clear_requests()

    await local_app.sync()

    assert _effective(local_app, ANN) == {}
    assert _writes(local_app) == {"unassignPolicy": 1}
    ann = (await local_app.statuses())["ann@contoso.example"]
    assert (ann.outcome, ann.reason) == (Outcome.UNASSIGNED, Reason.LEFT_GROUP)
    assert "Contoso Main" in ann.message


@pytest.mark.parametrize(
    "scenario", [f"contoso.example={CLI}:Contoso Main,{ROUTE}:No Such Route"], indirect=True
)
async def test_an_unknown_policy_fails_naming_its_type_and_name(local_app: LocalApp) -> None:
    await local_app.sync()

    ann = (await local_app.statuses())["ann@contoso.example"]
    assert (ann.outcome, ann.reason) == (Outcome.FAILED, Reason.POLICY_NOT_FOUND)
    assert "OnlineVoiceRoutingPolicy" in ann.message
    assert "'No Such Route'" in ann.message
    assert ann.retry_at is not None  # looked at again after a backoff, not every run
    assert _effective(local_app, ANN) == {}
    assert "assignPolicy" not in _writes(local_app)

    local_app.simulator.clear_requests()
    await local_app.sync()
    assert local_app.simulator.request_counts().get("getPolicyId", 0) == 0


async def test_policies_the_app_did_not_give_are_never_taken_back(local_app: LocalApp) -> None:
    runtime = await local_app.runtime()
    # Someone else gave ann the main number's caller ID and bob another one, by hand.
    await runtime.policies.assign(ANN, CLI, CLI_MAIN)
    await runtime.policies.assign(BOB, CLI, CLI_OTHER)
    local_app.simulator.clear_requests()

    await local_app.sync()

    assert _effective(local_app, ANN) == {CLI: (CLI_MAIN, "direct"), ROUTE: (ROUTE_NL, "direct")}
    assert _effective(local_app, BOB) == {CLI: (CLI_OTHER, "direct")}
    (assign,) = [e for e in local_app.simulator.request_log() if e["route"] == "assignPolicy"]
    assert assign["status"] == 204  # only the routing policy was missing

    await _change_directory(local_app, [("ann", [ANN_PERSONAL]), ("bob", [BOB_PERSONAL])])
    await local_app.sync()

    # The app takes back only the routing policy it gave; the caller IDs stay.
    assert _effective(local_app, ANN) == {CLI: (CLI_MAIN, "direct")}
    assert _effective(local_app, BOB) == {CLI: (CLI_OTHER, "direct")}


async def test_a_crash_after_the_assignment_converges_on_redelivery_without_a_second_write(
    local_app: LocalApp,
) -> None:
    runtime = await local_app.runtime()
    _crash_once_after(runtime.policies, "assign_policies")

    stats = await local_app.sync(QueueHostSettings())  # redelivered at once, not after 30 s

    assert stats.failed_attempts == 1  # the crash; the host delivered the message again
    assert _effective(local_app, ANN) == {CLI: (CLI_MAIN, "direct"), ROUTE: (ROUTE_NL, "direct")}
    assert local_app.simulator.request_counts()["assignPolicy"] == 1
    grant = await runtime.grants.get_grant(ANN)
    assert grant is not None
    # Stored as the app's before the write, so the crash did not make it look like someone
    # else's: it is still taken back when ann stops carrying the main number.
    assert grant.verified
    assert all(policy.assigned_by_app for policy in grant.policies)
    await _change_directory(local_app, [("ann", [ANN_PERSONAL]), ("bob", [BOB_PERSONAL])])
    await local_app.sync()
    assert _effective(local_app, ANN) == {}
