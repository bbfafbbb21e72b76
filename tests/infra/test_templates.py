"""The templates under infra/ parse (tree-sitter-bicep, pycep-parser) and give the app what it
needs; the broken fixtures make each check fail, naming what is wrong."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.config import DEFAULT_CONSENT_REDIRECT_URI, DEFAULT_SYNC_SCHEDULE
from shared.core.telemetry_events import APP_LOGGER_NAME, DIMENSIONS, EVENT_NAMES
from tests.infra import app_requirements as needs
from tests.infra.bicep_checks import (
    FIXTURES,
    INFRA,
    REPO,
    UNRESOLVED,
    BicepParseError,
    Scope,
    Template,
    bicep_files,
    evaluate,
    module_arguments,
    parse,
    registry_modules,
    resources,
    syntax_errors,
)

#: What `azd up` asks for: the parameters without a default.
DEPLOYMENT = {"environmentName": "prod", "location": "westeurope",
              "alertEmail": "operators@example.com"}
SYNTAX_ERROR = FIXTURES / "syntax-error.bicep"
INSECURE = FIXTURES / "insecure.bicep"


@pytest.fixture(scope="module")
def templates() -> dict[str, Template]:
    """Every template under infra/, parsed once, by its path relative to infra/."""
    return {path.relative_to(INFRA).as_posix(): parse(path) for path in bicep_files()}


def main_scope(templates: dict[str, Template], **given: Any) -> Scope:
    """main.bicep's names for a deployment with ``given`` parameters (else the defaults)."""
    return Scope.of(templates["main.bicep"], {**DEPLOYMENT, **given})


def module_scope(templates: dict[str, Template], module: str, **given: Any) -> Scope:
    """A module's names, with the parameters main.bicep passes it."""
    arguments = module_arguments(templates["main.bicep"], module, main_scope(templates, **given))
    return Scope.of(templates[module], arguments)


# -- syntax ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", bicep_files(), ids=lambda path: path.relative_to(INFRA).as_posix())
def test_every_template_parses_without_errors(path: Path) -> None:
    assert syntax_errors(path) == []


def test_a_broken_template_fails_the_syntax_check_at_its_line() -> None:
    assert syntax_errors(SYNTAX_ERROR) == ["syntax-error.bicep:4:1: cannot parse this"]


def test_the_graph_extension_line_is_the_only_line_blanked() -> None:
    # The extension line is the only thing the syntax check does not see: keep it that way.
    registrations = (INFRA / "app" / "app-registrations.bicep").read_text(encoding="utf-8")
    assert registrations.splitlines()[0] == "extension microsoftGraphV1"
    others = [path for path in bicep_files() if path.name != "app-registrations.bicep"]
    assert [path.name for path in others
            if re.search(r"(?m)^extension\b", path.read_text(encoding="utf-8"))] == []


def test_pycep_refuses_a_broken_template() -> None:
    with pytest.raises(BicepParseError, match=r"syntax-error\.bicep: Unexpected token"):
        parse(SYNTAX_ERROR)


# -- the plan, the storage account, the site --------------------------------------------------

def test_the_plan_is_flex_consumption(templates: dict[str, Template]) -> None:
    assert needs.plan_problems(templates["main.bicep"], "main.bicep") == []


def test_storage_has_no_shared_keys_and_every_queue_and_table(
    templates: dict[str, Template]
) -> None:
    problems = needs.storage_problems(templates["main.bicep"], "main.bicep",
                                      main_scope(templates))
    assert problems == []


def test_the_site_is_python_311_on_flex_with_the_identity(templates: dict[str, Template]) -> None:
    assert needs.site_problems(templates["app/api.bicep"], "app/api.bicep") == []


def test_scale_is_a_parameter_from_40_instances(templates: dict[str, Template]) -> None:
    parameters = templates["main.bicep"]["parameters"]
    count = {decorator["type"]: decorator.get("argument")
             for decorator in parameters["maximumInstanceCount"]["decorators"]}
    assert (parameters["maximumInstanceCount"]["default"], count["min_value"],
            count["max_value"]) == (40, 40, 1000)
    assert parameters["instanceMemoryMB"]["default"] == 2048


# -- app settings ----------------------------------------------------------------------------

@pytest.mark.parametrize("graph_auth", ["federatedIdentity", "certificate"])
def test_the_app_settings_run_the_app(templates: dict[str, Template], graph_auth: str) -> None:
    # The app's own settings model decides what is required: a required setting added to
    # shared/config.py and missing here fails this test.
    settings = needs.app_settings(templates["app/api.bicep"],
                                  module_scope(templates, "app/api.bicep", graphAuth=graph_auth))
    assert needs.app_settings_problems(settings, "app/api.bicep") == []
    assert settings["GRAPH_AUTH"] == graph_auth
    assert ("GRAPH_CERTIFICATE_KEY_VAULT_URL" in settings) == (graph_auth == "certificate")


def test_the_app_settings_are_the_deployments_choices(templates: dict[str, Template]) -> None:
    settings = needs.app_settings(templates["app/api.bicep"],
                                  module_scope(templates, "app/api.bicep"))
    assert {key: settings[key] for key in (
        "SYNC_SCHEDULE", "TEAMS_REQUESTS_PER_SECOND", "TEAMS_APP_REQUESTS_PER_SECOND",
        "CONSENT_REDIRECT_URI", "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME", "GRAPH_AUTH",
    )} == {
        "SYNC_SCHEDULE": DEFAULT_SYNC_SCHEDULE,
        "TEAMS_REQUESTS_PER_SECOND": "29",
        "TEAMS_APP_REQUESTS_PER_SECOND": "250",
        "CONSENT_REDIRECT_URI": DEFAULT_CONSENT_REDIRECT_URI,
        "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME": APP_LOGGER_NAME,
        "GRAPH_AUTH": "federatedIdentity",
    }
    # Filled in by Azure: the identity's client id, the endpoints, the app registration.
    assert {settings[key] for key in ("GRAPH_CLIENT_ID", "MANAGED_IDENTITY_CLIENT_ID",
                                      "AzureWebJobsStorage__queueServiceUri")} == {UNRESOLVED}


def test_a_setting_the_app_requires_and_the_template_lacks_fails(
    templates: dict[str, Template]
) -> None:
    settings = needs.app_settings(templates["app/api.bicep"],
                                  module_scope(templates, "app/api.bicep"))
    del settings["MANAGED_IDENTITY_CLIENT_ID"]
    (problem,) = needs.app_settings_problems(settings, "app/api.bicep")
    assert "GRAPH_AUTH=federatedIdentity needs MANAGED_IDENTITY_CLIENT_ID" in problem


# -- roles, alerts, the workbook, the app registration -----------------------------------------

def test_the_identity_holds_its_roles(templates: dict[str, Template]) -> None:
    scope = module_scope(templates, "app/rbac.bicep", graphAuth="certificate")
    assert needs.role_problems(templates["app/rbac.bicep"], "app/rbac.bicep", scope,
                               "identityPrincipalId") == []


def test_every_alert_rule_is_one_of_the_repos_queries_as_its_header_says(
    templates: dict[str, Template]
) -> None:
    scope = module_scope(templates, "app/alerts.bicep")
    assert needs.alert_problems(templates["app/alerts.bicep"], "app/alerts.bicep",
                                INFRA / "alerts", scope) == []
    assert needs.rule_module_problems(templates["app/alerts.bicep"], "app/alerts.bicep") == []


def test_the_action_group_mails_the_alert_address(templates: dict[str, Template]) -> None:
    arguments = module_arguments(templates["main.bicep"], "app/alerts.bicep",
                                 main_scope(templates))
    assert arguments["alertEmail"] == DEPLOYMENT["alertEmail"]


def test_the_workbook_shows_each_view_from_the_apps_events() -> None:
    workbook = json.loads((INFRA / "app" / "workbook.json").read_text(encoding="utf-8"))
    assert workbook["version"] == "Notebook/1.0"
    names = {item["name"] for item in workbook["items"]}
    assert {"outcomes", "reasons", "last-run", "holds", "poison", "health"} <= names
    queries = [item["content"]["query"] for item in workbook["items"] if item["type"] == 3]
    events = {name for query in queries
              for name in re.findall(r'"([A-Z][A-Za-z]+)"', query)}
    assert events - EVENT_NAMES - {"UsersAssigned", "UsersFailed", "UsersHeld"} == set()
    dimensions = {name for query in queries
                  for name in re.findall(r"customDimensions(?:\.(\w+)|\[\"(\w+)\"\])", query)
                  for name in name if name}
    assert dimensions - set().union(*DIMENSIONS.values()) == set()
    # workbook.bicep puts the App Insights id where the JSON says so.
    assert "__APP_INSIGHTS_ID__" in json.dumps(workbook)


def test_the_app_registration_asks_for_the_codes_permissions_and_trusts_the_identity(
    templates: dict[str, Template]
) -> None:
    scope = module_scope(templates, "app/app-registrations.bicep")
    assert needs.registration_problems(templates["app/app-registrations.bicep"],
                                       "app/app-registrations.bicep", scope) == []


def test_people_sign_in_in_the_operators_tenant_and_group(templates: dict[str, Template]) -> None:
    main = templates["main.bicep"]
    assert main["parameters"]["appServiceAuthentication"]["default"] is True
    scope = module_scope(templates, "app/authentication.bicep", operatorGroupId="group-id")
    (settings,) = resources(templates["app/authentication.bicep"],
                            "Microsoft.Web/sites/config").values()
    properties = evaluate(settings["properties"], scope)
    validation = properties["globalValidation"]
    entra = properties["identityProviders"]["azureActiveDirectory"]
    assert (validation["requireAuthentication"], validation["unauthenticatedClientAction"]) == (
        True, "RedirectToLoginPage")
    # Only the script's trigger is reachable with a key alone: never the report, holds, tenants.
    assert validation["excludedPaths"] == ["/api/sync"]
    assert entra["registration"]["openIdIssuer"].endswith("/v2.0")
    assert "tenant().tenantId" in settings["properties"]["identityProviders"][
        "azureActiveDirectory"]["registration"]["openIdIssuer"]
    assert entra["validation"]["defaultAuthorizationPolicy"]["allowedPrincipals"] == {
        "groups": ["group-id"]}


def test_the_consent_redirect_is_the_apps_default(templates: dict[str, Template]) -> None:
    scope = main_scope(templates)
    assert scope.values["consentRedirectUri"] == DEFAULT_CONSENT_REDIRECT_URI


# -- the azd layout ----------------------------------------------------------------------------

def test_registry_modules_are_pinned_azure_verified_modules(
    templates: dict[str, Template]
) -> None:
    pinned = {path: tag for template in templates.values()
              for path, tag in registry_modules(template).items()}
    assert pinned, "no registry modules"
    assert {path: tag for path, tag in pinned.items()
            if not (path.startswith("avm/res/") and re.fullmatch(r"\d+\.\d+\.\d+", tag))} == {}


def test_azd_provides_every_parameter_without_a_default(templates: dict[str, Template]) -> None:
    parameters = templates["main.bicep"]["parameters"]
    given = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert set(given) - set(parameters) == set()
    assert {name for name, parameter in parameters.items()
            if parameter.get("default") is None} - set(given) == set()


def test_azure_yaml_names_the_python_function_service() -> None:
    text = (REPO / "azure.yaml").read_text(encoding="utf-8")
    service = text[text.index("services:"):]
    assert re.search(r"\n  api:\n    project: \.\n    language: python\n    host: function\n",
                     service)


def test_main_is_a_subscription_deployment(templates: dict[str, Template]) -> None:
    main = templates["main.bicep"]
    assert main["globals"]["scope"]["value"] == "subscription"
    assert {"environmentName", "location", "principalId"} <= set(main["parameters"])
    token = main["variables"]["resourceToken"]["value"]
    assert "uniqueString" in json.dumps(token) or "unique_string" in json.dumps(token)


# -- the broken fixture fails every structural check ---------------------------------------------

def test_the_insecure_fixture_fails_the_structural_checks() -> None:
    fixture = parse(INSECURE)
    scope = Scope.of(fixture, {})
    name = INSECURE.name
    assert needs.plan_problems(fixture, name) == [
        f"{name}: plan sku must be FC1 / FlexConsumption, got {{'name': 'Y1', 'tier': 'Dynamic'}}",
        f"{name}: plan must be reserved: true (Linux), got None",
    ]
    storage = needs.storage_problems(fixture, name, scope)
    assert storage[:2] == [f"{name}: storage allowSharedKeyAccess must be false, got True",
                           f"{name}: storage allowBlobPublicAccess must be false, got True"]
    assert "storage has no blob container" in storage[2]
    assert "missing ['number-assignments-poison', 'tenant-syncs', 'tenant-syncs-poison']" in (
        storage[3])
    site = "\n".join(needs.site_problems(fixture, name))
    for expected in ("site kind must be functionapp,linux, got 'functionapp'",
                     "runtime must be python 3.11, got {'name': 'python', 'version': '3.9'}",
                     "the deployment package must come from a blob container",
                     "instance memory and maximum instance count must be the parameters",
                     "the site must run as the user-assigned identity only"):
        assert expected in site
    settings = needs.app_settings_problems(needs.app_settings(fixture, scope), name)
    text = "\n".join(settings)
    for expected in ("GRAPH_AUTH=federatedIdentity needs GRAPH_CLIENT_ID",
                     "settings the app does not read: ['GRAPH_CLEINT_ID']",
                     "settings Flex Consumption deprecates: ['FUNCTIONS_WORKER_RUNTIME', "
                     "'WEBSITE_RUN_FROM_PACKAGE']",
                     "AzureWebJobsStorage (a connection string) is set",
                     "AzureWebJobsStorage__credential must be 'managedidentity'"):
        assert expected in text
    assert len(needs.role_problems(fixture, name, scope, "identityPrincipalId")) == len(
        needs.IDENTITY_ROLES)
    alerts = needs.alert_problems(fixture, name, INFRA / "alerts", scope)
    assert alerts[0].startswith(f"{name}: rule 'inline': its query must be loadTextContent")
    assert needs.rule_module_problems(fixture, name) == [
        f"{name}: criterion timeAggregation must be 'Count', got 'Average'",
        f"{name}: criterion operator must be 'GreaterThan', got 'LessThan'",
        f"{name}: criterion threshold must be 0, got 1",
        f"{name}: the rules call no action group",
    ]
