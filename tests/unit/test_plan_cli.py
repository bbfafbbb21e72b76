"""``python -m shared.cli plan SNAPSHOT.json [--json]``: the offline plan preview."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from shared.cli import cli

DEMO = Path(__file__).resolve().parents[2] / "scenarios" / "demo.json"
DECISION_KEYS = {
    "userId", "userPrincipalName", "outcome", "reason", "number", "previousNumber", "suggestion",
    "message",
}


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["plan", *args])


def run_json(path: Path) -> dict[str, Any]:
    result = run(str(path), "--json")
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def by_upn(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["userPrincipalName"]: d for d in body["decisions"]}


def snapshot(tmp_path: Path, **overrides: object) -> Path:
    data: dict[str, object] = {
        "tenant": {"id": "tenant-1", "voiceGroupId": "voice"},
        "users": [
            {"id": "ann", "userPrincipalName": "ann@contoso.example",
             "businessPhones": ["+31855363011"]},
        ],
        "groups": [{"id": "voice", "members": ["ann"]}],
    }
    data.update(overrides)
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_demo_plan_prints_a_table_with_a_summary() -> None:
    result = run(str(DEMO))

    assert result.exit_code == 0, result.output
    assert "Plan for tenant 0f58bdad-b745-55dc-a72e-eb04ea6d3565" in result.stdout
    assert "user01@contoso.example" in result.stdout
    assert "Summary" in result.stdout
    assert "'assign': 50" in result.stdout
    assert "duplicate" in result.stdout


def test_the_demo_plan_as_json_has_decisions_and_summary() -> None:
    body = run_json(DEMO)

    assert set(body) == {"decisions", "summary"}
    assert body["decisions"]
    for decision in body["decisions"]:
        assert set(decision) >= DECISION_KEYS
    summary = body["summary"]
    assert summary["decisions"] == len(body["decisions"])
    assert sum(summary["byOutcome"].values()) == len(body["decisions"])


def test_the_demo_plan_decides_each_of_its_edge_cases() -> None:
    decisions = by_upn(run_json(DEMO))

    def verdict(upn: str) -> tuple[str, str]:
        return decisions[upn]["outcome"], decisions[upn]["reason"]

    assert verdict("user01@contoso.example") == ("assign", "assigned")
    assert verdict("already.assigned@contoso.example") == ("keep", "already_assigned")
    assert verdict("number.elsewhere@contoso.example") == ("skip", "assigned_elsewhere")
    assert verdict("duplicate.of.user03@contoso.example") == ("skip", "duplicate")
    assert "user03@contoso.example" in decisions["duplicate.of.user03@contoso.example"]["message"]
    assert verdict("spaced.number@contoso.example") == ("skip", "invalid_format")
    assert decisions["spaced.number@contoso.example"]["suggestion"] == "+31855363060"
    # The demo tenant reads national forms as Dutch (rules.defaultRegion = NL).
    assert decisions["national.number@contoso.example"]["suggestion"] == "+31855363061"
    assert verdict("operator.desk@contoso.example") == ("skip", "main_number")
    assert verdict("front.office@contoso.example") == ("skip", "main_number")
    assert verdict("out.of.range@contoso.example") == ("skip", "not_in_range")
    assert verdict("disabled.account@contoso.example") == ("skip", "disabled")
    assert verdict("changed.number@contoso.example") == ("assign", "number_changed")
    assert decisions["changed.number@contoso.example"]["previousNumber"] == "+31855363081"
    assert verdict("cleared.number@contoso.example") == ("unassign", "number_removed")
    assert verdict("left.the.company@contoso.example") == ("unassign", "left_group")
    assert verdict("short.number@contoso.example") == ("skip", "invalid_number")
    assert verdict("no.number1@contoso.example") == ("skip", "no_number")
    assert decisions["padded.number@contoso.example"]["number"] == "+31855363072"


def test_the_demo_expands_nested_groups_and_their_cycle_once_and_ignores_other_groups() -> None:
    upns = [d["userPrincipalName"] for d in run_json(DEMO)["decisions"]]

    assert len(upns) == len(set(upns))
    assert {"sales1@contoso.example", "support4@contoso.example"} <= set(upns)
    assert not any(upn.startswith(("outside", "reception")) for upn in upns)


def test_the_demo_plan_gives_every_number_the_simulator_expects_and_no_other() -> None:
    expected = json.loads(DEMO.with_name("demo.expected.json").read_text(encoding="utf-8"))
    body = run_json(DEMO)

    given = {
        d["number"]: d["userPrincipalName"]
        for d in body["decisions"] if d["outcome"] in {"assign", "keep"}
    }
    # +31855363071 stays where Teams has it (a user outside the voice group).
    wanted = {n: u for n, u in expected["numberAssignments"].items() if n != "+31855363071"}
    assert given == wanted


def test_a_former_member_the_app_gave_a_number_is_unassigned_left_group(tmp_path: Path) -> None:
    path = snapshot(tmp_path, appState={"claims": [
        {"telephoneNumber": "+31855363019", "userId": "gone",
         "userPrincipalName": "gone@contoso.example"},
    ]})

    decision = by_upn(run_json(path))["gone@contoso.example"]

    assert (decision["outcome"], decision["reason"]) == ("unassign", "left_group")
    assert decision["previousNumber"] == "+31855363019"
    assert decision["userId"] == "gone"


def test_a_claim_for_a_user_without_a_principal_name_takes_it_from_the_users(
    tmp_path: Path,
) -> None:
    path = snapshot(
        tmp_path,
        users=[
            {"id": "ann", "userPrincipalName": "ann@contoso.example",
             "businessPhones": ["+31855363011"]},
            {"id": "bob", "userPrincipalName": "bob@contoso.example"},
        ],
        appState={"claims": [{"telephoneNumber": "+31855363012", "userId": "bob"}]},
    )

    decision = by_upn(run_json(path))["bob@contoso.example"]

    assert (decision["outcome"], decision["reason"]) == ("unassign", "left_group")


def test_nested_groups_and_a_cycle_are_expanded_once_in_depth_first_read_order(
    tmp_path: Path,
) -> None:
    users = [
        {"id": user, "userPrincipalName": f"{user}@contoso.example",
         "businessPhones": [f"+3185536301{i}"]}
        for i, user in enumerate(["ann", "bob", "cas", "dan"])
    ]
    groups = [
        {"id": "voice", "members": ["ann", "g1", "dan"]},
        {"id": "g1", "members": ["bob", "g2", "ann"]},
        {"id": "g2", "members": ["cas", "g1", "voice", "bob"]},
    ]
    path = snapshot(tmp_path, users=users, groups=groups)

    decisions = run_json(path)["decisions"]

    assert [(d["userId"], d["readPosition"]) for d in decisions] == [
        ("ann", 0), ("bob", 1), ("cas", 2), ("dan", 3),
    ]


def test_the_tenants_rules_in_the_snapshot_are_applied(tmp_path: Path) -> None:
    path = snapshot(
        tmp_path,
        tenant={"id": "t", "voiceGroupId": "voice",
                "rules": {"mainNumbers": {"contoso.example": "+31855363011"}}},
    )

    decision = run_json(path)["decisions"][0]

    assert (decision["outcome"], decision["reason"]) == ("skip", "main_number")


@pytest.mark.parametrize(
    ("target", "verdict"),
    [("ann", ("keep", "already_assigned")), ("queue", ("skip", "assigned_elsewhere")),
     (None, ("assign", "assigned"))],
)
def test_the_teams_numbers_in_the_snapshot_are_applied(
    tmp_path: Path, target: str | None, verdict: tuple[str, str]
) -> None:
    path = snapshot(tmp_path, numberAssignments=[
        {"telephoneNumber": "+31855363011", "assignmentTargetId": target},
    ])

    decision = run_json(path)["decisions"][0]

    assert (decision["outcome"], decision["reason"]) == verdict


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"tenant": {"voiceGroupId": "voice"}}, "tenant.id: missing"),
        ({"tenant": {"id": "t"}}, "tenant.voiceGroupId: missing"),
        ({"users": [{"id": "ann"}]}, "users.0.userPrincipalName: missing"),
        ({"tenant": {"id": "t", "voiceGroupId": "nowhere"}}, "tenant.voiceGroupId='nowhere'"),
        ({"tenant": {"id": "t", "voiceGroupId": "voice", "rules": {"defaultRegion": "nl"}}},
         "tenant.rules.defaultRegion='nl'"),
    ],
)
def test_a_broken_snapshot_exits_2_naming_the_field(
    tmp_path: Path, overrides: dict[str, object], named: str
) -> None:
    path = snapshot(tmp_path, **overrides)

    result = run(str(path))

    assert result.exit_code == 2
    assert named in result.stderr
    assert str(path) in result.stderr
    assert result.stdout == ""


def test_a_snapshot_without_a_tenant_exits_2_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "empty.json"
    path.write_text("{}", encoding="utf-8")

    result = run(str(path), "--json")

    assert result.exit_code == 2
    assert "tenant: missing" in result.stderr


@pytest.mark.parametrize("text", ["not json", "{\"tenant\": ", ""])
def test_a_file_that_is_not_json_exits_2(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text, encoding="utf-8")

    result = run(str(path), "--json")

    assert result.exit_code == 2
    assert "not JSON" in result.stderr
    assert result.stdout == ""


def test_a_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"

    result = run(str(path))

    assert result.exit_code == 2
    assert "absent.json" in result.stderr
