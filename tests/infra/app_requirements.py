"""What the app needs from its deployment, checked on pycep's dicts of the templates.

Each ``*_problems`` function returns a sentence per problem (empty: none), naming the file,
the thing and the value, so a failing test says what to change. The expectations come from the
code wherever the code has them: the app settings from ``AppSettings`` (shared/config.py), the
permissions from ``tenant_checks``, the queues and tables from the storage adapters, the logger
name from ``telemetry_events``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shared.adapters.storage.claims_and_statuses import ensure_tables
from shared.adapters.storage.queue import (
    ASSIGNMENT_QUEUE,
    POISON_QUEUE,
    TENANT_SYNC_POISON_QUEUE,
    TENANT_SYNC_QUEUE,
)
from shared.config import AppSettings, ConfigError, app_setting_names
from shared.core.tenant_checks import POLICY_ASSIGNMENT, REQUIRED
from tests.infra.bicep_checks import (
    Scope,
    Template,
    evaluate,
    modules,
    resources,
)

#: App settings Flex Consumption deprecates or does not support (Azure Functions app settings
#: reference, "Flex Consumption plan deprecations"; flex-consumption-plan, considerations).
DEPRECATED_ON_FLEX = frozenset({
    "FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY", "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED", "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTOVERVNET",
    "WEBSITE_CONTENTSHARE", "WEBSITE_DNS_SERVER", "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "WEBSITE_NODE_DEFAULT_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_SKIP_CONTENTSHARE_VALIDATION", "WEBSITE_VNET_ROUTE_ALL", "WEBSITE_TIME_ZONE", "TZ",
    "WEBSITE_LOAD_CERTIFICATES", "WEBSITES_CONTAINER_START_TIME_LIMIT", "WEBSITE_MOUNT_ENABLED",
    "WEBSITE_USE_PLACEHOLDER_DOTNETISOLATED",
})

#: Settings the host and the Python worker read (not the app's settings model).
PLATFORM_SETTINGS = frozenset({
    "AzureWebJobsStorage__credential", "AzureWebJobsStorage__blobServiceUri",
    "APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME",
})

#: Built-in role definition ids (Azure RBAC built-in roles) the identity needs, by name.
ROLE_IDS = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
}
#: Which role the identity needs on which kind of resource.
IDENTITY_ROLES = {
    "Storage Blob Data Owner": "Microsoft.Storage/storageAccounts",
    "Storage Queue Data Contributor": "Microsoft.Storage/storageAccounts",
    "Storage Table Data Contributor": "Microsoft.Storage/storageAccounts",
    "Monitoring Metrics Publisher": "Microsoft.Insights/components",
    "Key Vault Secrets User": "Microsoft.KeyVault/vaults",
}

SITE_MODULE = "avm/res/web/site"
STORAGE_MODULE = "avm/res/storage/storage-account"
PLAN_MODULE = "avm/res/web/serverfarm"
RULE_MODULE = "avm/res/insights/scheduled-query-rule"


# -- what the code says ----------------------------------------------------------------------

def app_queues() -> frozenset[str]:
    """The queues the app and its triggers use."""
    return frozenset({TENANT_SYNC_QUEUE, TENANT_SYNC_POISON_QUEUE, ASSIGNMENT_QUEUE, POISON_QUEUE})


def app_tables() -> frozenset[str]:
    """The tables the app creates at start (``ensure_tables``), recorded from a stand-in."""

    class _Recorder:
        def __init__(self) -> None:
            self.names: list[str] = []

        async def create_table_if_not_exists(self, name: str) -> None:
            self.names.append(name)

    recorder = _Recorder()
    asyncio.run(ensure_tables(recorder))  # type: ignore[arg-type]  # only this method is used
    return frozenset(recorder.names)


def required_permissions() -> list[str]:
    """The least privileged permission of each need every tenant has, in the code's order."""
    return [need.least for need in REQUIRED]


def optional_permissions() -> list[str]:
    """The permissions only some features need (main-number policies)."""
    return [POLICY_ASSIGNMENT.least]


# -- plan, storage, site ---------------------------------------------------------------------

def plan_problems(template: Template, name: str) -> list[str]:
    """The app's plan is Flex Consumption (FC1), Linux."""
    plans = modules(template, PLAN_MODULE)
    if len(plans) != 1:
        return [f"{name}: expected one {PLAN_MODULE} module, found {len(plans)}"]
    params = plans[0]["params"]
    problems = []
    if params.get("sku") != {"name": "FC1", "tier": "FlexConsumption"}:
        problems.append(f"{name}: plan sku must be FC1 / FlexConsumption, got "
                        f"{params.get('sku')!r}")
    if params.get("reserved") is not True:
        problems.append(f"{name}: plan must be reserved: true (Linux), got "
                        f"{params.get('reserved')!r}")
    return problems


def storage_problems(template: Template, name: str, scope: Scope) -> list[str]:
    """The storage account refuses shared keys and holds the deployment container and every
    queue and table of the app."""
    accounts = modules(template, STORAGE_MODULE)
    if len(accounts) != 1:
        return [f"{name}: expected one {STORAGE_MODULE} module, found {len(accounts)}"]
    params = accounts[0]["params"]
    problems = []
    if params.get("allowSharedKeyAccess") is not False:
        problems.append(f"{name}: storage allowSharedKeyAccess must be false, got "
                        f"{params.get('allowSharedKeyAccess')!r}")
    if params.get("allowBlobPublicAccess") is not False:
        problems.append(f"{name}: storage allowBlobPublicAccess must be false, got "
                        f"{params.get('allowBlobPublicAccess')!r}")
    containers = params.get("blobServices", {}).get("containers", [])
    if not containers:
        problems.append(f"{name}: storage has no blob container for the deployment package")
    for service, kind, expected in (("queueServices", "queues", app_queues()),
                                    ("tableServices", "tables", app_tables())):
        declared = _names(params.get(service, {}).get(kind), scope)
        if declared != expected:
            problems.append(
                f"{name}: storage {kind} must be the app's {sorted(expected)}; missing "
                f"{sorted(expected - declared)}, not the app's {sorted(declared - expected)}")
    return problems


def _names(items: Any, scope: Scope) -> frozenset[str]:
    """Names of ``[for x in xs: {name: x}]`` (or a plain list of ``{name: ...}``)."""
    if isinstance(items, dict) and "loop_type" in items:
        values = evaluate(items["loop_type"]["detail"]["array_name"], scope)
        return frozenset(map(str, values)) if isinstance(values, list) else frozenset()
    if isinstance(items, list):
        return frozenset(str(evaluate(item.get("name"), scope)) for item in items)
    return frozenset()


def site_problems(template: Template, name: str) -> list[str]:
    """The Function App: Python 3.11 on Flex, the package from the blob container with the
    user-assigned identity, scale as parameters."""
    sites = modules(template, SITE_MODULE)
    if len(sites) != 1:
        return [f"{name}: expected one {SITE_MODULE} module, found {len(sites)}"]
    params = sites[0]["params"]
    config = params.get("functionAppConfig", {})
    problems = []
    if params.get("kind") != "functionapp,linux":
        problems.append(f"{name}: site kind must be functionapp,linux, got {params.get('kind')!r}")
    if config.get("runtime") != {"name": "python", "version": "3.11"}:
        problems.append(f"{name}: runtime must be python 3.11, got {config.get('runtime')!r}")
    storage = config.get("deployment", {}).get("storage", {})
    if storage.get("type") != "blobContainer" or storage.get("authentication", {}).get(
            "type") != "UserAssignedIdentity":
        problems.append(f"{name}: the deployment package must come from a blob container read "
                        f"with the user-assigned identity, got {storage!r}")
    scale = config.get("scaleAndConcurrency", {})
    if scale != {"instanceMemoryMB": "instanceMemoryMB",
                 "maximumInstanceCount": "maximumInstanceCount"}:
        problems.append(f"{name}: instance memory and maximum instance count must be the "
                        f"parameters instanceMemoryMB and maximumInstanceCount, got {scale!r}")
    identities = params.get("managedIdentities", {})
    if identities.get("systemAssigned") or not identities.get("userAssignedResourceIds"):
        problems.append(f"{name}: the site must run as the user-assigned identity only, got "
                        f"{identities!r}")
    return problems


# -- app settings ----------------------------------------------------------------------------

def app_settings(template: Template, scope: Scope) -> dict[str, str]:
    """The site's app settings as the app would see them (``UNRESOLVED`` where Azure fills in)."""
    (site,) = modules(template, SITE_MODULE)
    configs = [config for config in site["params"].get("configs", [])
               if config.get("name") == "appsettings"]
    if len(configs) != 1:
        raise AssertionError(f"expected one appsettings config on the site, got {len(configs)}")
    settings = evaluate(configs[0]["properties"], scope)
    if not isinstance(settings, dict):
        raise TypeError(f"the app settings did not evaluate to an object: {settings!r}")
    return {key: _as_setting(value) for key, value in settings.items()}


def _as_setting(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def app_settings_problems(settings: Mapping[str, str], name: str) -> list[str]:
    """The settings run the app: ``AppSettings.from_environ`` accepts them (so every setting the
    model requires is there), nothing unknown or deprecated is set, storage is identity-based,
    and Application Insights is reached with the identity."""
    problems = []
    try:
        AppSettings.from_environ(settings)
    except ConfigError as error:
        problems.append(f"{name}: the app refuses these settings:\n{error}")
    unknown = set(settings) - app_setting_names() - PLATFORM_SETTINGS - DEPRECATED_ON_FLEX
    if unknown:
        problems.append(f"{name}: settings the app does not read: {sorted(unknown)}")
    deprecated = set(settings) & DEPRECATED_ON_FLEX
    if deprecated:
        problems.append(f"{name}: settings Flex Consumption deprecates: {sorted(deprecated)}")
    if "AzureWebJobsStorage" in settings:
        problems.append(f"{name}: AzureWebJobsStorage (a connection string) is set: storage must "
                        f"be reached with the identity (AzureWebJobsStorage__*)")
    expected = {
        "AzureWebJobsStorage__credential": "managedidentity",
        "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true",
    }
    problems += [f"{name}: {key} must be {value!r}, got {settings.get(key)!r}"
                 for key, value in expected.items() if settings.get(key) != value]
    for key in ("AzureWebJobsStorage__clientId", "AzureWebJobsStorage__blobServiceUri",
                "AzureWebJobsStorage__queueServiceUri", "AzureWebJobsStorage__tableServiceUri",
                "APPLICATIONINSIGHTS_CONNECTION_STRING"):
        if not settings.get(key):
            problems.append(f"{name}: {key} is not set")
    authentication = settings.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "")
    if not re.fullmatch(r"ClientId=[^;]+;Authorization=AAD", authentication):
        problems.append(f"{name}: APPLICATIONINSIGHTS_AUTHENTICATION_STRING must be "
                        f"'ClientId=<identity>;Authorization=AAD', got {authentication!r}")
    return problems


# -- roles -----------------------------------------------------------------------------------

def role_problems(template: Template, name: str, scope: Scope, principal: str) -> list[str]:
    """The identity (the parameter ``principal``) holds each role of ``IDENTITY_ROLES`` on a
    resource of the right kind."""
    kinds = {symbol: resource["type"] for symbol, resource in template.get("resources", {}).items()}
    granted = set()
    for assignment in resources(template, "Microsoft.Authorization/roleAssignments").values():
        properties = assignment.get("properties", {})
        definition = properties.get("roleDefinitionId", {})
        role_id = evaluate(definition.get("function", {}).get("parameters", {}).get(
            "resource_name_1"), scope) if isinstance(definition, dict) else None
        if properties.get("principalId") == principal:
            granted.add((role_id, kinds.get(str(assignment.get("scope")))))
    return [
        f"{name}: the identity ({principal}) lacks {role} on a {kind}"
        for role, kind in IDENTITY_ROLES.items()
        if (ROLE_IDS[role], kind) not in granted
    ]


# -- alerts ----------------------------------------------------------------------------------

_HEADER = {
    "window": re.compile(r"^// Window: (P\w+), evaluated every (P\w+)", re.MULTILINE),
    "override": re.compile(r"overrideQueryTimeRange (P\w+)"),
    "severity": re.compile(r"Severity: (\d)"),
    "split": re.compile(r"one alert per ([\w ,]+?)\.", re.MULTILINE),
}


def query_header(query: str) -> dict[str, Any]:
    """What an alert query's header says its rule must be (window, frequency, look-back,
    severity, the columns it is split by)."""
    window = _HEADER["window"].search(query)
    override = _HEADER["override"].search(query)
    severity = _HEADER["severity"].search(query)
    split = _HEADER["split"].search(query)
    return {
        "windowSize": window.group(1) if window else None,
        "evaluationFrequency": window.group(2) if window else None,
        "queryTimeRange": override.group(1) if override else "",
        "severity": int(severity.group(1)) if severity else None,
        "dimensions": re.split(r",\s*|\s+and\s+", split.group(1).strip()) if split else None,
    }


def alert_problems(template: Template, name: str, alerts_dir: Path, scope: Scope) -> list[str]:
    """Every alert rule's query is one of the repo's alert queries (loadTextContent of a file in
    ``alerts_dir``), each query has one rule, and the rule is what the query's header says."""
    rules_modules = modules(template, RULE_MODULE)
    if len(rules_modules) != 1:
        return [f"{name}: expected one (looped) {RULE_MODULE} module, found {len(rules_modules)}"]
    loop = template["modules"]
    array_name = next(module["config"]["loop_type"]["detail"]["array_name"]
                      for module in loop.values()
                      if module["detail"].get("path") == RULE_MODULE
                      and "loop_type" in module["config"])
    raw_rules = template["variables"][array_name]["value"]
    problems, used = [], []
    for raw in raw_rules:
        rule = {key: evaluate(value, scope) for key, value in raw.items() if key != "query"}
        query_expression = raw.get("query")
        load = query_expression.get("function", {}) if isinstance(query_expression, dict) else {}
        if load.get("type") != "load_text_content":
            problems.append(f"{name}: rule {rule.get('name')!r}: its query must be "
                            f"loadTextContent of a file in {alerts_dir.name}/, got "
                            f"{query_expression!r}")
            continue
        loaded = load["parameters"]["file_path"]
        query_file = alerts_dir / Path(loaded).name
        if Path(loaded).parent.name != alerts_dir.name or not query_file.is_file():
            problems.append(f"{name}: rule {rule.get('name')!r} loads {loaded!r}, not a query in "
                            f"{alerts_dir.name}/")
            continue
        used.append(query_file.name)
        query = query_file.read_text(encoding="utf-8")
        header = query_header(query)
        problems += _dimension_problems(name, rule, header.pop("dimensions"), query)
        for key, expected in header.items():
            if rule.get(key) != expected:
                problems.append(f"{name}: rule {rule.get('name')!r}: {key} is {rule.get(key)!r}, "
                                f"{query_file.name}'s header says {expected!r}")
    queries = sorted(path.name for path in alerts_dir.glob("*.kql"))
    if sorted(used) != queries:
        problems.append(f"{name}: every alert query needs exactly one rule: queries {queries}, "
                        f"rules load {sorted(used)}")
    return problems


def _dimension_problems(name: str, rule: Mapping[str, Any], split: list[str] | None,
                        query: str) -> list[str]:
    # The header says it in words ("one alert per tenantId and queue", "per function"): each
    # word starts the name of a column the rule splits by, and each such column is the query's.
    dimensions = rule.get("dimensions")
    matches = (split is not None and isinstance(dimensions, list)
               and len(dimensions) == len(split)
               and all(str(dimension).startswith(word)
                       for dimension, word in zip(dimensions, split, strict=True)))
    if not matches or not isinstance(dimensions, list):
        return [f"{name}: rule {rule.get('name')!r}: dimensions are {dimensions!r}, the query's "
                f"header splits one alert per {split!r}"]
    return [f"{name}: rule {rule.get('name')!r}: dimension {dimension!r} is not a column of "
            f"the query" for dimension in dimensions
            if not re.search(rf"\b{re.escape(str(dimension))}\b", query)]


def rule_module_problems(template: Template, name: str) -> list[str]:
    """The rules count rows (Count GreaterThan 0) split by their dimensions, and call the
    action group."""
    (rule,) = modules(template, RULE_MODULE)
    params = rule["params"]
    problems = []
    criteria = params.get("criterias", {}).get("allOf", [])
    if len(criteria) != 1:
        return [f"{name}: each rule needs one criterion, got {len(criteria)}"]
    (criterion,) = criteria
    for key, expected in (("timeAggregation", "Count"), ("operator", "GreaterThan"),
                          ("threshold", 0)):
        if criterion.get(key) != expected:
            problems.append(f"{name}: criterion {key} must be {expected!r}, got "
                            f"{criterion.get(key)!r}")
    if not params.get("actions", {}).get("actionGroupResourceIds"):
        problems.append(f"{name}: the rules call no action group")
    return problems


# -- the app registration ---------------------------------------------------------------------

def registration_problems(template: Template, name: str, scope: Scope) -> list[str]:
    """The multi-tenant app registration asks for exactly the code's permissions and trusts the
    identity: issuer the operator's tenant (v2.0), subject its principal id, audience
    api://AzureADTokenExchange."""
    variables = template.get("variables", {})
    problems = []
    for variable, expected in (("requiredPermissions", required_permissions()),
                               ("policyPermissions", optional_permissions())):
        declared = evaluate(variables.get(variable, {}).get("value"), scope)
        if declared != expected:
            problems.append(f"{name}: {variable} must be {expected} "
                            f"(shared/core/tenant_checks.py), got {declared!r}")
    apps = resources(template, "Microsoft.Graph/applications")
    multi = [app for app in apps.values() if app.get("signInAudience") == "AzureADMultipleOrgs"]
    if len(multi) != 1:
        problems.append(f"{name}: expected one multi-tenant (AzureADMultipleOrgs) application, "
                        f"found {len(multi)}")
    credentials = resources(template, "Microsoft.Graph/applications/federatedIdentityCredentials")
    if len(credentials) != 1:
        return [*problems, f"{name}: expected one federated identity credential, "
                           f"found {len(credentials)}"]
    (credential,) = credentials.values()
    issuer = str(template["variables"].get(str(credential.get("issuer")), {}).get("value", ""))
    if not issuer.endswith("${tenant().tenantId}/v2.0") or "loginEndpoint" not in issuer:
        problems.append(f"{name}: the credential's issuer must be the operator tenant's v2.0 "
                        f"authority, got {issuer!r}")
    if credential.get("subject") != "managedIdentityPrincipalId":
        problems.append(f"{name}: the credential's subject must be the identity's principal id "
                        f"(managedIdentityPrincipalId), got {credential.get('subject')!r}")
    if evaluate(credential.get("audiences"), scope) != ["api://AzureADTokenExchange"]:
        problems.append(f"{name}: the credential's audience must be api://AzureADTokenExchange, "
                        f"got {evaluate(credential.get('audiences'), scope)!r}")
    return problems
