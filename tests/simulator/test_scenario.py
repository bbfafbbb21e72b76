import json
from pathlib import Path
from typing import Any

import pytest

from graph_simulator import ScenarioError, load_scenario, parse_directory, parse_scenario

EXAMPLE = Path(__file__).resolve().parents[2] / "scenarios" / "example-small.json"


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


def error_for(data: dict[str, Any]) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(data, "broken.json")
    return str(caught.value)


def test_example_scenario_loads_with_defaults_for_omitted_behaviour() -> None:
    data = example()
    del data["behaviour"]
    scenario = parse_scenario(data)
    assert scenario.behaviour.operation_polls == 2
    assert scenario.behaviour.operation_body_shape == "root"
    assert scenario.behaviour.assign_errors == "async"
    assert scenario.behaviour.default_page_size == 100
    assert len(scenario.users) == 5


def test_numbers_without_plus_are_normalised_to_plus_form() -> None:
    data = example()
    data["numberAssignments"][1]["telephoneNumber"] = "31855363099"
    scenario = parse_scenario(data)
    assert scenario.number_assignments[1].telephone_number == "+31855363099"


def test_error_names_field_path_and_value() -> None:
    data = example()
    data["users"][1]["userPrincipalName"] = "bob at contoso"
    message = error_for(data)
    assert message.startswith("broken.json: users[1].userPrincipalName:")
    assert "'bob at contoso'" in message or '"bob at contoso"' in message


def test_pascal_case_number_type_is_refused_with_its_path() -> None:
    data = example()
    data["numberAssignments"][2]["numberType"] = "OperatorConnect"
    message = error_for(data)
    assert "numberAssignments[2].numberType" in message
    assert "OperatorConnect" in message


def test_unknown_group_member_is_named() -> None:
    data = example()
    data["groups"][1]["members"].append("no-such-id")
    message = error_for(data)
    assert "groups[1].members[3]" in message
    assert "no-such-id" in message


def test_duplicate_user_id_and_upn_are_refused() -> None:
    data = example()
    data["users"][2]["id"] = data["users"][0]["id"]
    assert "users[2].id: duplicate user id" in error_for(data)
    data = example()
    data["users"][2]["userPrincipalName"] = "ANN@contoso.example"
    assert "users[2].userPrincipalName: duplicate" in error_for(data)


def test_unknown_field_and_missing_field_are_named() -> None:
    data = example()
    data["users"][0]["phone"] = "+31"
    assert "users[0].phone" in error_for(data)
    data = example()
    del data["tenant"]["id"]
    assert "tenant.id" in error_for(data)


def test_number_target_must_be_a_user_and_voice_group_must_exist() -> None:
    data = example()
    data["numberAssignments"][0]["assignmentTargetId"] = data["groups"][0]["id"]
    assert "numberAssignments[0].assignmentTargetId" in error_for(data)
    data = example()
    data["tenant"]["voiceGroupId"] = "missing"
    assert "tenant.voiceGroupId" in error_for(data)


def test_unsupported_version_is_refused() -> None:
    data = example()
    data["version"] = 2
    assert "version" in error_for(data)


def test_broken_json_file_error_names_file_and_position(tmp_path: Path) -> None:
    broken = tmp_path / "scenario.json"
    broken.write_text('{"version": 1,\n "tenant": }')
    with pytest.raises(ScenarioError, match=r"scenario\.json: not valid JSON: .* line 2"):
        load_scenario(broken)


def test_directory_accepts_users_and_groups_or_a_whole_scenario() -> None:
    data = example()
    directory = parse_directory({"users": data["users"], "groups": data["groups"]})
    assert len(directory.groups) == 2
    assert parse_directory(data).users == directory.users
    with pytest.raises(ScenarioError, match=r"groups\[0\]\.members\[0\]"):
        parse_directory({"users": [], "groups": data["groups"]})
