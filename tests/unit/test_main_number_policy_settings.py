"""MAIN_NUMBER_POLICIES: read from its text form, and refused with errors a person can fix."""

from __future__ import annotations

import pytest

from shared.config import AppSettings, ConfigError
from shared.core.tenant_rules import MainNumberPolicy, format_main_number_policies

ENVIRON = {
    "TENANT_ID": "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b",
    "VOICE_GROUP_ID": "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "MAIN_NUMBERS": "contoso.example=+31855363010;fabrikam.example=+31201234567",
}


def _settings(policies: str) -> AppSettings:
    return AppSettings.from_environ({**ENVIRON, "MAIN_NUMBER_POLICIES": policies})


def _error(policies: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _settings(policies)
    return str(caught.value)


def test_policies_are_read_per_domain_in_order() -> None:
    rules = _settings(
        "Contoso.Example = CallingLineIdentity:Tag:Contoso Main, OnlineVoiceRoutingPolicy:NL;"
        "fabrikam.example=CallingLineIdentity:Fabrikam Main"
    ).rules

    assert rules.policies_for_domain("contoso.example") == (
        MainNumberPolicy(policy_type="CallingLineIdentity", name="Tag:Contoso Main"),
        MainNumberPolicy(policy_type="OnlineVoiceRoutingPolicy", name="NL"),
    )
    assert [str(p) for p in rules.policies_for_domain("FABRIKAM.example")] == [
        "CallingLineIdentity 'Fabrikam Main'"
    ]
    assert format_main_number_policies(rules.main_number_policies) == (
        "contoso.example=CallingLineIdentity:Tag:Contoso Main,OnlineVoiceRoutingPolicy:NL;"
        "fabrikam.example=CallingLineIdentity:Fabrikam Main"
    )


def test_unset_means_no_policies() -> None:
    assert AppSettings.from_environ(ENVIRON).rules.main_number_policies == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("example.org=CallingLineIdentity:X",
         "domain 'example.org' has no main number in MAIN_NUMBERS"),
        ("contoso.example=CallingLineIdentity:", "has an empty policy name"),
        ("contoso.example=CallingLineIdentity", "must be PolicyType:PolicyName"),
        ("contoso.example", "must be domain=PolicyType:PolicyName"),
        ("contoso.example=A:x,a:y", "lists a policy type twice"),
        ("contoso.example=A:x;contoso.example=B:y", "listed twice"),
    ],
)
def test_a_mistake_names_the_setting_and_the_value(value: str, expected: str) -> None:
    error = _error(value)

    assert f"MAIN_NUMBER_POLICIES={value!r}" in error
    assert expected in error
