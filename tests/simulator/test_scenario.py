import json
from pathlib import Path
from typing import Any

import pytest

from graph_simulator import ScenarioError, load_scenario, parse_directory, parse_scenario
from tests.simulator.support import EXAMPLE


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
    assert scenario.behaviour.operation_seconds == 0
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


def test_new_sections_default_when_omitted() -> None:
    data = example()
    del data["policies"]
    del data["tenant"]["rules"]
    for user in data["users"]:
        user.pop("teams", None)
    for knob in ("assignEnablesEnterpriseVoice", "userConfigurationBodyShape", "rateLimit",
                 "deltaTokenLifetimeSeconds", "deltaGoneErrorCode", "deltaRemovedReason"):
        del data["behaviour"][knob]
    scenario = parse_scenario(data)
    assert scenario.tenant.rules == {}
    assert scenario.policies == ()
    teams = scenario.users[0].teams
    assert (teams.present, teams.licensed, teams.enterprise_voice_enabled,
            teams.visible_after_polls) == (True, True, False, 0)
    behaviour = scenario.behaviour
    assert behaviour.assign_enables_enterprise_voice is True
    assert behaviour.user_configuration_body_shape == "root"
    assert behaviour.rate_limit is None
    assert behaviour.delta_token_lifetime_seconds == 7 * 24 * 3600
    assert behaviour.delta_gone_error_code == "syncStateNotFound"
    assert behaviour.delta_removed_reason == "deleted"


def test_example_sets_every_new_section() -> None:
    scenario = parse_scenario(example())
    assert scenario.tenant.rules["mainNumbers"] == {"contoso.example": "+31855363000"}
    assert [(p.type, p.name) for p in scenario.policies] == [
        ("CallingLineIdentity", "MainNumber-Contoso"), ("TenantDialPlan", "NL-Default")]
    assert scenario.users[3].teams.present is False
    assert scenario.users[4].teams.licensed is False


def test_tenant_rules_are_opaque_json_kept_as_given() -> None:
    data = example()
    data["tenant"]["rules"] = {"anything": [1, {"nested": None}], "UPPER": True}
    assert parse_scenario(data).tenant.rules == data["tenant"]["rules"]
    data["tenant"]["rules"] = ["not", "an", "object"]
    assert "tenant.rules" in error_for(data)


def test_teams_profile_is_validated() -> None:
    data = example()
    data["users"][0]["teams"] = {"present": False, "visibleAfterPolls": 2}
    assert "users[0].teams" in error_for(data)
    data["users"][0]["teams"] = {"visibleAfterPolls": -1}
    assert "users[0].teams.visibleAfterPolls" in error_for(data)
    data["users"][0]["teams"] = {"licenced": True}
    assert "users[0].teams.licenced" in error_for(data)


def test_policies_are_validated() -> None:
    data = example()
    data["policies"].append({**data["policies"][0], "id": "other"})
    assert "policies[2].name: duplicate CallingLineIdentity policy" in error_for(data)
    data = example()
    data["policies"].append({**data["policies"][0], "name": "Other"})
    assert "policies[2].id: duplicate" in error_for(data)
    data = example()
    data["policies"][0]["type"] = ""
    assert "policies[0].type" in error_for(data)
    # The same id under another policy type is a different policy.
    data = example()
    data["policies"].append({"type": "TeamsCallingPolicy", "name": "MainNumber-Contoso",
                             "id": data["policies"][0]["id"]})
    assert len(parse_scenario(data).policies) == 3


@pytest.mark.parametrize(("knob", "value"), [
    ("userConfigurationBodyShape", "wrapped"),
    ("deltaTokenLifetimeSeconds", 0),
    ("deltaGoneErrorCode", "gone"),
    ("deltaRemovedReason", "softDeleted"),
    ("assignEnablesEnterpriseVoice", "sometimes"),
])
def test_new_behaviour_knobs_are_validated(knob: str, value: Any) -> None:
    data = example()
    data["behaviour"][knob] = value
    assert f"behaviour.{knob}" in error_for(data)


def test_directory_files_may_carry_teams_profiles() -> None:
    data = example()
    directory = parse_directory({"users": data["users"], "groups": data["groups"]})
    assert directory.users[4].teams.licensed is False


# -- many tenants (`tenants`) ----------------------------------------------------------------

OTHER_TENANT = "2d4f6a8c-1b3e-4d5f-8a7b-9c0d1e2f3a4b"


def tenant_entry(tenant_id: str, **fields: Any) -> dict[str, Any]:
    """The example's tenant fields as one `tenants` entry, under another id if asked."""
    data = example()
    entry = {key: data[key] for key in ("tenant", "users", "groups", "numberAssignments",
                                        "policies", "behaviour")}
    entry["tenant"]["id"] = tenant_id
    return {**entry, **fields}


def two_tenants(**top: Any) -> dict[str, Any]:
    first = example()["tenant"]["id"]
    return {"version": 1, "tenants": [tenant_entry(first, displayName="Contoso"),
                                      tenant_entry(OTHER_TENANT, consented=False)], **top}


def test_tenants_may_share_user_ids_and_numbers() -> None:
    scenario = parse_scenario(two_tenants())
    first, second = scenario.tenant_entries()
    assert scenario.tenant_ids() == (first.tenant.id, OTHER_TENANT)
    assert [user.id for user in first.users] == [user.id for user in second.users]
    assert first.number_assignments == second.number_assignments
    assert (first.display_name, first.consented) == ("Contoso", True)
    assert (second.display_name, second.consented) == (None, False)
    # The scenario's own fields are the first tenant's, as in the one-tenant format.
    assert scenario.tenant == first.tenant
    assert scenario.users == first.users


def test_one_tenant_format_is_a_scenario_of_one_tenant() -> None:
    scenario = parse_scenario(example())
    assert scenario.tenant_entries() == (scenario,)
    assert scenario.tenant_scenarios() == (scenario,)
    assert scenario.consented is True
    dumped = json.loads(scenario.model_dump_json(by_alias=True))
    assert "tenants" not in dumped
    assert dumped["tenant"]["id"] == scenario.tenant.id


def test_tenant_scenarios_split_a_scenario_into_one_tenant_scenarios() -> None:
    data = two_tenants(appState={"claims": []}, timeline=[{"description": "later"}])
    data["tenants"][1]["appState"] = {"claims": [{"telephoneNumber": "+31855363011",
                                                  "userId": "someone"}]}
    first, second = parse_scenario(data).tenant_scenarios()
    assert (first.tenant_ids(), second.tenant_ids()) == ((data["tenants"][0]["tenant"]["id"],),
                                                         (OTHER_TENANT,))
    assert [step.description for step in first.timeline] == ["later"]
    assert second.timeline == ()
    assert first.app_state == {"claims": []}
    assert second.app_state["claims"][0]["userId"] == "someone"
    assert second.consented is False
    # Each is what the one-tenant format would have given (e.g. for the plan preview).
    assert parse_scenario(second.model_dump(by_alias=True, mode="json")) == second


def test_tenants_format_dumps_and_reads_back() -> None:
    scenario = parse_scenario(two_tenants())
    dumped = json.loads(scenario.model_dump_json(by_alias=True))
    assert [entry["tenant"]["id"] for entry in dumped["tenants"]] == list(scenario.tenant_ids())
    assert "tenant" not in dumped
    assert parse_scenario(dumped) == scenario


def test_tenant_ids_must_differ() -> None:
    data = two_tenants()
    data["tenants"][1]["tenant"]["id"] = data["tenants"][0]["tenant"]["id"]
    assert "broken.json: tenants[1].tenant.id: duplicate tenant id" in error_for(data)


def test_errors_in_an_entry_name_the_tenant_and_field() -> None:
    data = two_tenants()
    data["tenants"][1]["users"][1]["userPrincipalName"] = "bob at fabrikam"
    assert error_for(data).startswith("broken.json: tenants[1].users[1].userPrincipalName:")
    data = two_tenants()
    data["tenants"][1]["users"][2]["id"] = data["tenants"][1]["users"][0]["id"]
    assert "broken.json: tenants[1].users[2].id: duplicate user id" in error_for(data)
    data = two_tenants()
    data["tenants"][0]["tenant"]["voiceGroupId"] = "missing"
    assert "broken.json: tenants[0].tenant.voiceGroupId: no group" in error_for(data)
    data = two_tenants()
    data["tenants"][1]["consented"] = "maybe"
    assert "tenants[1].consented" in error_for(data)


@pytest.mark.parametrize(("top", "named"), [
    ({"users": []}, "users"),
    ({"tenant": {}}, "tenant"),
    ({"displayName": "Contoso"}, "displayName"),
    ({"otherTenants": []}, "otherTenants"),
])
def test_tenants_format_refuses_tenant_fields_at_the_top(top: dict[str, Any], named: str) -> None:
    assert error_for(two_tenants(**top)).startswith(f"broken.json: {named}: ")


def test_tenants_must_be_a_non_empty_list_and_app_state_given_once() -> None:
    assert "tenants: expected a non-empty list" in error_for({"version": 1, "tenants": []})
    assert "tenants: expected a non-empty list" in error_for({"version": 1, "tenants": {}})
    data = two_tenants(appState={"claims": []})
    data["tenants"][0]["appState"] = {"claims": []}
    assert "appState: the first tenant's appState is given both" in error_for(data)
