from __future__ import annotations

from uuid import UUID

import pytest

from shared.config import (
    DEFAULT_SYNC_SCHEDULE,
    AppSettings,
    ConfigError,
    GraphAuth,
    NumberType,
    sync_schedule_from_environ,
)

TENANT_ID = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"
VOICE_GROUP_ID = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
CONNECTION_STRING = (
    "DefaultEndpointsProtocol=https;AccountName=numbersync;"
    "AccountKey=placeholder-key-for-tests;EndpointSuffix=core.windows.net"
)
STATIC_TOKEN = "simulator-token-do-not-leak-7f3e"
LOOPBACK_GRAPH = "http://127.0.0.1:1234/v1.0"
VAULT_URL = "https://numbersync-kv.vault.azure.net"
IDENTITY_ID = "1d0e0000-0000-4000-8000-0000000001d0"


@pytest.fixture
def environ() -> dict[str, str]:
    return {
        "TENANT_ID": TENANT_ID,
        "VOICE_GROUP_ID": VOICE_GROUP_ID,
        "AzureWebJobsStorage": CONNECTION_STRING,
    }


def config_error(environ: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        AppSettings.from_environ(environ)
    return str(caught.value)


def test_a_minimal_environment_gives_production_defaults(environ: dict[str, str]) -> None:
    settings = AppSettings.from_environ(environ)

    assert settings.tenant is not None
    assert settings.tenant.tenant_id == UUID(TENANT_ID)
    assert settings.tenant.key == TENANT_ID
    assert settings.tenant.voice_group_id == UUID(VOICE_GROUP_ID)
    assert settings.tenant.number_type is NumberType.DIRECT_ROUTING
    assert settings.graph.base_url == "https://graph.microsoft.com/v1.0"
    assert settings.graph.auth is GraphAuth.MANAGED_IDENTITY
    assert settings.storage.connection_string == CONNECTION_STRING
    assert settings.sync_schedule == DEFAULT_SYNC_SCHEDULE
    # Just under Teams' catch-all of 30 requests per second per app per tenant.
    assert settings.graph.teams_requests_per_second == 29
    # Below Teams' catch-all of 300 requests per second per app across tenants, with headroom.
    assert settings.graph.teams_app_requests_per_second == 250


def test_the_teams_pace_can_be_set(environ: dict[str, str]) -> None:
    environ["TEAMS_REQUESTS_PER_SECOND"] = "12.5"

    assert AppSettings.from_environ(environ).graph.teams_requests_per_second == 12.5


def test_the_app_wide_teams_pace_can_be_set(environ: dict[str, str]) -> None:
    environ["TEAMS_APP_REQUESTS_PER_SECOND"] = "120"

    graph = AppSettings.from_environ(environ).graph
    assert graph.teams_app_requests_per_second == 120
    assert graph.teams_requests_per_second == 29  # the tenant's pace is a setting of its own


def test_unrelated_environment_variables_are_ignored(environ: dict[str, str]) -> None:
    environ.update({"PATH": "/usr/bin", "WEBSITE_SITE_NAME": "numbersync"})

    AppSettings.from_environ(environ)


def test_every_missing_setting_is_listed_in_one_error(environ: dict[str, str]) -> None:
    del environ["TENANT_ID"]
    del environ["AzureWebJobsStorage"]

    message = config_error(environ)

    assert "TENANT_ID: missing" in message  # VOICE_GROUP_ID alone names a tenant half-way
    assert "AzureWebJobsStorage" in message
    assert "tenant_id" not in message  # operators type app setting names, not field names


def test_without_tenant_id_and_voice_group_the_registry_says_which_tenants(
    environ: dict[str, str],
) -> None:
    del environ["TENANT_ID"]
    del environ["VOICE_GROUP_ID"]

    assert AppSettings.from_environ(environ).tenant is None


def test_an_empty_environment_lists_storage(environ: dict[str, str]) -> None:
    message = config_error({})

    assert "AzureWebJobsStorage" in message
    assert "TENANT_ID" not in message  # an app may serve its registry's tenants only


def test_the_consent_redirect_must_be_https(environ: dict[str, str]) -> None:
    environ["CONSENT_REDIRECT_URI"] = "http://example.test/consented"

    message = config_error(environ)

    assert "CONSENT_REDIRECT_URI='http://example.test/consented'" in message


@pytest.mark.parametrize("blank", ["", "   "])
def test_empty_settings_count_as_missing(environ: dict[str, str], blank: str) -> None:
    environ["TENANT_ID"] = blank
    environ["NUMBER_TYPE"] = blank  # optional: blank means "use the default"

    message = config_error(environ)

    assert "TENANT_ID: missing" in message
    assert "NUMBER_TYPE" not in message


def test_an_empty_optional_setting_falls_back_to_its_default(environ: dict[str, str]) -> None:
    environ.update({"GRAPH_BASE_URL": "", "NUMBER_TYPE": " ", "SYNC_SCHEDULE": ""})

    settings = AppSettings.from_environ(environ)

    assert settings.graph.base_url == "https://graph.microsoft.com/v1.0"
    assert settings.tenant is not None
    assert settings.tenant.number_type is NumberType.DIRECT_ROUTING
    assert settings.sync_schedule == DEFAULT_SYNC_SCHEDULE


def test_a_bad_guid_names_the_setting_and_the_value(environ: dict[str, str]) -> None:
    environ["VOICE_GROUP_ID"] = "EnterpriseVoiceEnabled"

    message = config_error(environ)

    assert "VOICE_GROUP_ID='EnterpriseVoiceEnabled'" in message
    assert "UUID" in message


def test_number_type_must_be_written_as_graph_spells_it(environ: dict[str, str]) -> None:
    environ["NUMBER_TYPE"] = "DirectRouting"

    message = config_error(environ)

    assert "NUMBER_TYPE='DirectRouting'" in message
    assert "directRouting" in message  # the spelling that works


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("callingPlan", NumberType.CALLING_PLAN),
        ("operatorConnect", NumberType.OPERATOR_CONNECT),
        ("directRouting", NumberType.DIRECT_ROUTING),
    ],
)
def test_each_graph_number_type_is_accepted(
    environ: dict[str, str], value: str, expected: NumberType
) -> None:
    environ["NUMBER_TYPE"] = value

    tenant = AppSettings.from_environ(environ).tenant
    assert tenant is not None
    assert tenant.number_type is expected


@pytest.mark.parametrize(
    "url", ["https://graph.microsoft.com/v1.0/", "https://graph.microsoft.com/v1.0///"]
)
def test_a_trailing_slash_on_the_graph_base_url_is_stripped(
    environ: dict[str, str], url: str
) -> None:
    environ["GRAPH_BASE_URL"] = url

    assert AppSettings.from_environ(environ).graph.base_url == "https://graph.microsoft.com/v1.0"


def test_a_relative_graph_base_url_is_refused_naming_it(environ: dict[str, str]) -> None:
    environ["GRAPH_BASE_URL"] = "graph.microsoft.com/v1.0"

    message = config_error(environ)

    assert "GRAPH_BASE_URL='graph.microsoft.com/v1.0'" in message


@pytest.mark.parametrize(
    "url",
    [
        "https://graph.microsoft.com/v1.0",
        "http://graph.example.test/v1.0",
        "http://127.0.0.1.attacker.example/v1.0",
        "http://localhost.attacker.example/v1.0",
    ],
)
def test_a_static_token_is_never_sent_to_a_non_loopback_graph(
    environ: dict[str, str], url: str
) -> None:
    environ.update(
        {"GRAPH_AUTH": "staticToken", "GRAPH_STATIC_TOKEN": STATIC_TOKEN, "GRAPH_BASE_URL": url}
    )

    message = config_error(environ)

    assert "loopback" in message
    assert url in message


@pytest.mark.parametrize(
    "url", [LOOPBACK_GRAPH, "http://localhost:7071/v1.0", "http://[::1]:1234/v1.0"]
)
def test_a_static_token_is_allowed_for_the_local_simulator(
    environ: dict[str, str], url: str
) -> None:
    environ.update(
        {"GRAPH_AUTH": "staticToken", "GRAPH_STATIC_TOKEN": STATIC_TOKEN, "GRAPH_BASE_URL": url}
    )

    settings = AppSettings.from_environ(environ)

    assert settings.graph.auth is GraphAuth.STATIC_TOKEN
    assert settings.graph.static_token == STATIC_TOKEN
    assert settings.graph.base_url == url


def test_static_token_mode_without_a_token_is_refused(environ: dict[str, str]) -> None:
    environ.update({"GRAPH_AUTH": "staticToken", "GRAPH_BASE_URL": LOOPBACK_GRAPH})

    message = config_error(environ)

    assert "GRAPH_STATIC_TOKEN" in message


def test_secret_values_never_appear_in_a_config_error(environ: dict[str, str]) -> None:
    environ.update(
        {
            "GRAPH_AUTH": "staticToken",
            "GRAPH_STATIC_TOKEN": STATIC_TOKEN,
            "GRAPH_BASE_URL": "https://graph.microsoft.com/v1.0",
            "TENANT_ID": "not-a-guid",
            "SYNC_SCHEDULE": "*/5 * * * *",
        }
    )

    message = config_error(environ)

    assert "TENANT_ID='not-a-guid'" in message  # the error is still specific...
    assert STATIC_TOKEN not in message  # ...but never shows a secret
    assert CONNECTION_STRING not in message
    assert "placeholder-key-for-tests" not in message


def test_storage_problems_do_not_echo_the_connection_string(environ: dict[str, str]) -> None:
    environ["AzureWebJobsStorage__queueServiceUri"] = "https://numbersync.queue.core.windows.net"
    environ["TENANT_ID"] = "bad"
    del environ["VOICE_GROUP_ID"]

    message = config_error(environ)

    assert "VOICE_GROUP_ID: missing" in message
    assert CONNECTION_STRING not in message


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({}, ["GRAPH_CLIENT_ID", "GRAPH_CERTIFICATE_KEY_VAULT_URL", "GRAPH_CERTIFICATE_NAME",
              "GRAPH_CERTIFICATE_PATH"]),
        ({"GRAPH_CLIENT_ID": "app-id"},
         ["GRAPH_CERTIFICATE_KEY_VAULT_URL", "GRAPH_CERTIFICATE_NAME", "GRAPH_CERTIFICATE_PATH"]),
        ({"GRAPH_CERTIFICATE_PATH": "/certs/app.pem"}, ["GRAPH_CLIENT_ID"]),
        ({"GRAPH_CERTIFICATE_KEY_VAULT_URL": VAULT_URL, "GRAPH_CERTIFICATE_NAME": "graph-app"},
         ["GRAPH_CLIENT_ID"]),
    ],
)
def test_certificate_mode_needs_client_id_and_a_certificate(
    environ: dict[str, str], extra: dict[str, str], named: list[str]
) -> None:
    environ.update({"GRAPH_AUTH": "certificate", **extra})

    message = config_error(environ)

    assert all(name in message for name in named), message


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"GRAPH_CERTIFICATE_KEY_VAULT_URL": "https://numbersync-kv.vault.azure.net"},
         "GRAPH_CERTIFICATE_NAME"),
        ({"GRAPH_CERTIFICATE_NAME": "graph-app"}, "GRAPH_CERTIFICATE_KEY_VAULT_URL"),
    ],
)
def test_a_key_vault_certificate_needs_both_the_vault_and_the_name(
    environ: dict[str, str], given: dict[str, str], missing: str
) -> None:
    environ.update({"GRAPH_AUTH": "certificate", "GRAPH_CLIENT_ID": "app-id", **given})

    message = config_error(environ)

    assert f"{next(iter(given))} needs {missing} as well" in message


def test_a_certificate_from_key_vault_works(environ: dict[str, str]) -> None:
    environ.update({
        "GRAPH_AUTH": "certificate", "GRAPH_CLIENT_ID": "app-id",
        "MANAGED_IDENTITY_CLIENT_ID": IDENTITY_ID,
        "GRAPH_CERTIFICATE_KEY_VAULT_URL": VAULT_URL + "/", "GRAPH_CERTIFICATE_NAME": "graph-app",
    })

    graph = AppSettings.from_environ(environ).graph

    assert graph.certificate_key_vault_url == VAULT_URL
    assert graph.certificate_name == "graph-app"
    assert graph.managed_identity_client_id == IDENTITY_ID
    assert graph.certificate_path is None


def test_a_certificate_comes_from_key_vault_or_a_file_not_both(environ: dict[str, str]) -> None:
    environ.update({
        "GRAPH_AUTH": "certificate", "GRAPH_CLIENT_ID": "app-id",
        "GRAPH_CERTIFICATE_KEY_VAULT_URL": VAULT_URL, "GRAPH_CERTIFICATE_NAME": "graph-app",
        "GRAPH_CERTIFICATE_PATH": "/certs/app.pem",
    })

    message = config_error(environ)

    assert "not both" in message
    assert "'/certs/app.pem'" in message


@pytest.mark.parametrize(
    "url", ["http://numbersync-kv.vault.azure.net", "numbersync-kv.vault.azure.net", "https://"]
)
def test_the_key_vault_url_must_be_https(environ: dict[str, str], url: str) -> None:
    environ["GRAPH_CERTIFICATE_KEY_VAULT_URL"] = url

    message = config_error(environ)

    assert f"GRAPH_CERTIFICATE_KEY_VAULT_URL={url!r}" in message
    assert "https" in message


@pytest.mark.parametrize("name", ["graph_app", "graph app", "x" * 128])
def test_the_certificate_name_must_be_a_key_vault_name(environ: dict[str, str], name: str) -> None:
    environ["GRAPH_CERTIFICATE_NAME"] = name

    message = config_error(environ)

    assert f"GRAPH_CERTIFICATE_NAME={name!r}" in message


@pytest.mark.parametrize(
    ("extra", "missing"),
    [
        ({"MANAGED_IDENTITY_CLIENT_ID": IDENTITY_ID}, ["GRAPH_CLIENT_ID"]),
        ({"GRAPH_CLIENT_ID": "app-id"}, ["MANAGED_IDENTITY_CLIENT_ID"]),
        ({}, ["GRAPH_CLIENT_ID", "MANAGED_IDENTITY_CLIENT_ID"]),
    ],
)
def test_federated_identity_needs_the_app_and_the_identity(
    environ: dict[str, str], extra: dict[str, str], missing: list[str]
) -> None:
    environ.update({"GRAPH_AUTH": "federatedIdentity", **extra})

    message = config_error(environ)

    assert all(f"GRAPH_AUTH=federatedIdentity needs {name}" in message for name in missing)


def test_federated_identity_with_the_app_and_the_identity_works(environ: dict[str, str]) -> None:
    environ.update({"GRAPH_AUTH": "federatedIdentity", "GRAPH_CLIENT_ID": "app-id",
                    "MANAGED_IDENTITY_CLIENT_ID": IDENTITY_ID})

    graph = AppSettings.from_environ(environ).graph

    assert graph.auth is GraphAuth.FEDERATED_IDENTITY
    assert graph.client_id == "app-id"
    assert graph.managed_identity_client_id == IDENTITY_ID
    assert graph.identity_url is None


def test_the_identity_stand_in_runs_the_real_credentials_against_the_simulator(
    environ: dict[str, str],
) -> None:
    environ.update({"GRAPH_AUTH": "federatedIdentity", "GRAPH_CLIENT_ID": "app-id",
                    "MANAGED_IDENTITY_CLIENT_ID": IDENTITY_ID, "GRAPH_BASE_URL": LOOPBACK_GRAPH,
                    "GRAPH_IDENTITY_URL": "http://127.0.0.1:1234/"})

    graph = AppSettings.from_environ(environ).graph

    assert graph.identity_url == "http://127.0.0.1:1234"
    assert graph.base_url == LOOPBACK_GRAPH  # plain http, but loopback


@pytest.mark.parametrize(
    "url", ["https://login.microsoftonline.com", "http://10.0.0.4:1234", "ftp://127.0.0.1"]
)
def test_the_identity_stand_in_must_be_on_loopback(environ: dict[str, str], url: str) -> None:
    environ.update({"GRAPH_BASE_URL": LOOPBACK_GRAPH, "GRAPH_IDENTITY_URL": url})

    message = config_error(environ)

    assert f"GRAPH_IDENTITY_URL={url!r}" in message
    assert "loopback" in message


def test_the_identity_stand_in_is_refused_with_the_real_graph(environ: dict[str, str]) -> None:
    environ["GRAPH_IDENTITY_URL"] = "http://127.0.0.1:1234"

    message = config_error(environ)

    assert "GRAPH_IDENTITY_URL='http://127.0.0.1:1234'" in message
    assert "'https://graph.microsoft.com/v1.0'" in message


def test_certificate_mode_with_client_id_and_path_works(environ: dict[str, str]) -> None:
    environ.update(
        {
            "GRAPH_AUTH": "certificate",
            "GRAPH_CLIENT_ID": "app-id",
            "GRAPH_CERTIFICATE_PATH": "/certs/app.pem",
        }
    )

    graph = AppSettings.from_environ(environ).graph

    assert graph.auth is GraphAuth.CERTIFICATE
    assert graph.client_id == "app-id"
    assert graph.certificate_path == "/certs/app.pem"


@pytest.mark.parametrize("auth", ["managedIdentity", "certificate"])
def test_plain_http_graph_is_refused_outside_static_token_mode(
    environ: dict[str, str], auth: str
) -> None:
    environ.update(
        {
            "GRAPH_AUTH": auth,
            "GRAPH_CLIENT_ID": "app-id",
            "GRAPH_CERTIFICATE_PATH": "/certs/app.pem",
            "GRAPH_BASE_URL": "http://graph.microsoft.com/v1.0",
        }
    )

    message = config_error(environ)

    assert "https" in message
    assert "http://graph.microsoft.com/v1.0" in message


def test_an_unknown_graph_auth_mode_is_refused_naming_it(environ: dict[str, str]) -> None:
    environ["GRAPH_AUTH"] = "ManagedIdentity"

    message = config_error(environ)

    assert "GRAPH_AUTH='ManagedIdentity'" in message


@pytest.mark.parametrize("schedule", ["*/5 * * * *", "0 */5 * * * * *", "every 5 minutes"])
def test_sync_schedule_needs_six_ncrontab_fields(environ: dict[str, str], schedule: str) -> None:
    environ["SYNC_SCHEDULE"] = schedule

    message = config_error(environ)

    assert f"SYNC_SCHEDULE={schedule!r}" in message
    assert "six fields" in message


def test_a_six_field_sync_schedule_is_accepted(environ: dict[str, str]) -> None:
    environ["SYNC_SCHEDULE"] = "  0 0 * * * *  "

    assert AppSettings.from_environ(environ).sync_schedule == "0 0 * * * *"


@pytest.mark.parametrize("environ_value", [None, "", "   "])
def test_the_timer_runs_every_five_minutes_unless_configured(environ_value: str | None) -> None:
    environ = {} if environ_value is None else {"SYNC_SCHEDULE": environ_value}

    assert sync_schedule_from_environ(environ) == "0 */5 * * * *"


def test_the_timer_uses_the_configured_schedule() -> None:
    assert sync_schedule_from_environ({"SYNC_SCHEDULE": " 0 0 * * * * "}) == "0 0 * * * *"


def test_storage_without_connection_string_or_uris_is_refused(environ: dict[str, str]) -> None:
    del environ["AzureWebJobsStorage"]

    message = config_error(environ)

    assert "AzureWebJobsStorage" in message
    assert "AzureWebJobsStorage__queueServiceUri" in message
    assert "AzureWebJobsStorage__tableServiceUri" in message


@pytest.mark.parametrize(
    "uri_setting",
    ["AzureWebJobsStorage__queueServiceUri", "AzureWebJobsStorage__tableServiceUri"],
)
def test_storage_needs_both_service_uris(environ: dict[str, str], uri_setting: str) -> None:
    del environ["AzureWebJobsStorage"]
    environ[uri_setting] = "https://numbersync.core.windows.net"

    message = config_error(environ)

    assert "AzureWebJobsStorage__queueServiceUri" in message


def test_storage_by_service_uris_and_managed_identity_works(environ: dict[str, str]) -> None:
    del environ["AzureWebJobsStorage"]
    environ.update(
        {
            "AzureWebJobsStorage__queueServiceUri": "https://numbersync.queue.core.windows.net",
            "AzureWebJobsStorage__tableServiceUri": "https://numbersync.table.core.windows.net",
            "AzureWebJobsStorage__clientId": "uami-client-id",
        }
    )

    storage = AppSettings.from_environ(environ).storage

    assert storage.connection_string is None
    assert storage.queue_service_uri == "https://numbersync.queue.core.windows.net"
    assert storage.client_id == "uami-client-id"


def test_an_empty_connection_string_counts_as_missing(environ: dict[str, str]) -> None:
    environ["AzureWebJobsStorage"] = ""

    message = config_error(environ)

    assert "AzureWebJobsStorage" in message


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("GRAPH_MAX_RETRIES", "11"),
        ("GRAPH_MAX_RETRIES", "three"),
        ("GRAPH_OPERATION_TIMEOUT_SECONDS", "0"),
        ("GRAPH_OPERATION_WAIT_SECONDS", "0.5"),
        ("GRAPH_OPERATION_WAIT_SECONDS", "soon"),
        ("ENQUEUE_CONCURRENCY", "0"),
        ("TEAMS_REQUESTS_PER_SECOND", "0"),
        ("TEAMS_REQUESTS_PER_SECOND", "fast"),
        ("TEAMS_APP_REQUESTS_PER_SECOND", "0"),
        ("TEAMS_APP_REQUESTS_PER_SECOND", "-5"),
        ("TEAMS_APP_REQUESTS_PER_SECOND", "1001"),
        ("TEAMS_APP_REQUESTS_PER_SECOND", "fast"),
    ],
)
def test_numeric_settings_out_of_range_name_setting_and_value(
    environ: dict[str, str], setting: str, value: str
) -> None:
    environ[setting] = value

    message = config_error(environ)

    assert f"{setting}={value!r}" in message
