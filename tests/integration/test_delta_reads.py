"""Delta runs end to end on Azurite and the Graph simulator.

After a full read the app keeps a snapshot of the voice group and Teams' numbers in Table
Storage and moves it forward with ``users/delta`` and ``groups/delta``; a full transitive read
still runs when the links are gone (410), when a group joins the voice group, and every
``FULL_READ_INTERVAL_MINUTES`` (nested groups are invisible to group delta). The simulator's
request counts show which read each run made.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from graph_simulator import Scenario, parse_scenario
from shared.core.outcomes import Outcome, Reason
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import DOMAIN, build_scenario, user_id

FULL_READ = "listTransitiveMemberUsers"
SALES = "5a1e5000-0000-4000-8000-000000000001"


@pytest.fixture
def scenario() -> Scenario:
    """ann and bob direct members; the Sales group (with cy) nested in the voice group; dee in
    the tenant but in no group."""
    return _with_users(
        build_scenario([("ann", ["+31855363011"]), ("bob", ["+31855363012"])]),
        nested={"cy": ["+31855363013"]}, outside={"dee": ["+31855363014"]},
    )


def _with_users(
    base: Scenario,
    direct: dict[str, list[str]] | None = None,
    nested: dict[str, list[str]] | None = None,
    outside: dict[str, list[str]] | None = None,
    *,
    nested_in_voice_group: bool = True,
) -> Scenario:
    """``base`` with more direct members, a Sales group of ``nested`` users, and users
    ``outside`` every group."""
    data = _json(base)
    voice = next(g for g in data["groups"] if g["id"] == data["tenant"]["voiceGroupId"])
    for name, phones in {**(direct or {}), **(nested or {}), **(outside or {})}.items():
        data["users"].append({
            "id": user_id(name), "userPrincipalName": f"{name}@{DOMAIN}", "displayName": name,
            "businessPhones": phones, "accountEnabled": True,
        })
    voice["members"] += [user_id(name) for name in direct or {}]
    if nested is not None:
        data["groups"].append({"id": SALES, "displayName": "Sales",
                               "members": [user_id(name) for name in nested]})
        if nested_in_voice_group:
            voice["members"].append(SALES)
    return parse_scenario(data)


def _json(scenario: Scenario) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(scenario.model_dump_json(by_alias=True))
    return data


def _change(app: LocalApp, mutate: Any) -> None:
    """Change the simulator's directory (``mutate`` edits the scenario as JSON)."""
    data = _json(app.scenario)
    mutate(data)
    changed = parse_scenario(data)
    app.simulator.replace_directory(changed)
    app.scenario = changed


def _set_phone(name: str, phone: str) -> Any:
    def mutate(data: dict[str, Any]) -> None:
        user = next(u for u in data["users"] if u["displayName"] == name)
        user["businessPhones"] = [phone]
    return mutate


def _counts(app: LocalApp) -> dict[str, int]:
    return app.simulator.request_counts()


async def test_a_changed_number_is_picked_up_by_delta_without_a_full_read(
    local_app: LocalApp,
) -> None:
    await local_app.sync()
    assert _counts(local_app)[FULL_READ] == 1
    assert local_app.teams_by_upn()["+31855363011"] == f"ann@{DOMAIN}"
    local_app.simulator.clear_requests()

    _change(local_app, _set_phone("ann", "+31855363021"))
    await local_app.sync()

    counts = _counts(local_app)
    assert counts.get(FULL_READ, 0) == 0
    assert (counts["usersDelta"], counts["groupsDelta"]) == (1, 1)
    assert counts.get("listNumberAssignments", 0) == 0
    teams = local_app.teams_by_upn()
    assert teams["+31855363021"] == f"ann@{DOMAIN}"
    assert "+31855363011" not in teams  # the new primary number replaced it
    ann = (await local_app.statuses())[f"ann@{DOMAIN}"]
    assert (ann.outcome, ann.reason, ann.number) == (
        Outcome.ASSIGNED, Reason.NUMBER_CHANGED, "+31855363021")


async def test_a_direct_joiner_and_a_leaver_are_picked_up_by_delta(
    local_app: LocalApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRACE_PERIOD_HOURS", "0")
    await local_app.sync()
    local_app.simulator.clear_requests()

    def join_dee_and_drop_bob(data: dict[str, Any]) -> None:
        voice = next(g for g in data["groups"] if g["id"] == data["tenant"]["voiceGroupId"])
        voice["members"] = [m for m in voice["members"] if m != user_id("bob")]
        voice["members"].append(user_id("dee"))

    _change(local_app, join_dee_and_drop_bob)
    await local_app.sync()

    counts = _counts(local_app)
    assert counts.get(FULL_READ, 0) == 0
    assert counts["getUser"] == 1  # the joiner (unchanged, so not in users/delta), read once
    teams = local_app.teams_by_upn()
    assert teams["+31855363014"] == f"dee@{DOMAIN}"
    assert "+31855363012" not in teams
    bob = (await local_app.statuses())[f"bob@{DOMAIN}"]
    assert (bob.outcome, bob.reason) == (Outcome.UNASSIGNED, Reason.LEFT_GROUP)


async def test_expired_delta_links_fall_back_to_a_full_read_then_delta_resumes(
    local_app: LocalApp,
) -> None:
    await local_app.sync()
    local_app.simulator.expire_delta_tokens()
    _change(local_app, _set_phone("bob", "+31855363022"))
    local_app.simulator.clear_requests()

    await local_app.sync()

    counts = _counts(local_app)
    assert counts["usersDelta"] >= 1  # answered 410 Gone
    assert counts[FULL_READ] == 1
    assert local_app.teams_by_upn()["+31855363022"] == f"bob@{DOMAIN}"
    runtime = await local_app.runtime()
    runs = await runtime.ledger.runs()
    assert runs[-1].counts.get("fullRead") == 1

    local_app.simulator.clear_requests()
    await local_app.sync()
    assert _counts(local_app) == {"usersDelta": 1, "groupsDelta": 1}


async def test_a_nested_member_waits_for_the_regular_full_read(local_app: LocalApp) -> None:
    await local_app.sync()
    assert local_app.teams_by_upn()["+31855363013"] == f"cy@{DOMAIN}"  # nested: full read

    def add_eve_to_sales(data: dict[str, Any]) -> None:
        data["users"].append({
            "id": user_id("eve"), "userPrincipalName": f"eve@{DOMAIN}", "displayName": "eve",
            "businessPhones": ["+31855363015"], "accountEnabled": True,
        })
        next(g for g in data["groups"] if g["id"] == SALES)["members"].append(user_id("eve"))

    _change(local_app, add_eve_to_sales)
    await local_app.sync()
    assert "+31855363015" not in local_app.teams_by_upn()  # group delta sees direct members

    local_app.simulator.clear_requests()
    await local_app.advance(61 / 60)  # past FULL_READ_INTERVAL_MINUTES (60)
    await local_app.sync()

    assert _counts(local_app)[FULL_READ] == 1
    assert local_app.teams_by_upn()["+31855363015"] == f"eve@{DOMAIN}"


async def test_a_group_joining_the_voice_group_triggers_a_full_read_at_once(
    local_app: LocalApp,
) -> None:
    def without_sales(data: dict[str, Any]) -> None:
        voice = next(g for g in data["groups"] if g["id"] == data["tenant"]["voiceGroupId"])
        voice["members"] = [m for m in voice["members"] if m != SALES]

    _change(local_app, without_sales)
    await local_app.sync()
    assert "+31855363013" not in local_app.teams_by_upn()
    local_app.simulator.clear_requests()

    def with_sales(data: dict[str, Any]) -> None:
        voice = next(g for g in data["groups"] if g["id"] == data["tenant"]["voiceGroupId"])
        voice["members"].append(SALES)

    _change(local_app, with_sales)
    await local_app.sync()

    assert _counts(local_app)[FULL_READ] == 1
    assert local_app.teams_by_upn()["+31855363013"] == f"cy@{DOMAIN}"


async def test_a_dry_run_reads_by_delta_but_stores_no_links(local_app: LocalApp) -> None:
    await local_app.sync()
    runtime = await local_app.runtime()
    before = await runtime.snapshots.load()
    _change(local_app, _set_phone("ann", "+31855363031"))

    summary = await runtime.sync(dry_run=True)

    assert summary.read == "delta"
    assert [(d.user_id, d.number) for d in summary.plan.work()] == [
        (user_id("ann"), "+31855363031")]
    assert await runtime.snapshots.load() == before
