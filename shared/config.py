"""App settings, read once from the environment and validated with pydantic.

Everything the app needs to know about the tenant it serves, how it reaches Microsoft Graph and
where its state lives comes from app settings (``local.settings.json`` locally, the Function App's
configuration in Azure). Nothing below this module reads ``os.environ``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# Re-exported (the "as" form, PEP 484): defined in the core, whose tenant registry needs them.
from shared.core.audit import DEFAULT_RETENTION_MONTHS, MAX_RETENTION_MONTHS
from shared.core.operation_wait import DEFAULT_WAIT_SECONDS
from shared.core.telemetry_events import APP_LOGGER_NAME
from shared.core.tenant_registry import NumberType as NumberType  # noqa: PLC0414
from shared.core.tenant_registry import TenantSettings as TenantSettings  # noqa: PLC0414
from shared.core.tenant_rules import TenantRules

DEFAULT_SYNC_SCHEDULE = "0 */5 * * * *"
GRAPH_PRODUCTION_BASE_URL = "https://graph.microsoft.com/v1.0"
#: The native-client redirect URI Entra ID offers every app registration.
DEFAULT_CONSENT_REDIRECT_URI = "https://login.microsoftonline.com/common/oauth2/nativeclient"

# NCRONTAB as the Functions host reads it: six fields, seconds first.
_NCRONTAB = re.compile(r"^\s*(\S+\s+){5}\S+\s*$")
_KEY_VAULT_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")


class ConfigError(Exception):
    """The app settings cannot run the app; the message lists every problem and how to fix it."""


class GraphAuth(StrEnum):
    """Where the Graph access token comes from."""

    FEDERATED_IDENTITY = "federatedIdentity"
    """The operator's multi-tenant app registration, trusting the Function App's user-assigned
    identity (a federated identity credential): a token per customer tenant, no secret."""
    MANAGED_IDENTITY = "managedIdentity"
    """The Function App's own identity: it must live in the one customer tenant served."""
    CERTIFICATE = "certificate"
    STATIC_TOKEN = "staticToken"  # noqa: S105 - a mode name; the token is for the simulator only


_Frozen = ConfigDict(frozen=True, extra="forbid")


class GraphSettings(BaseModel):
    """How the app reaches Microsoft Graph."""

    model_config = _Frozen

    base_url: str = GRAPH_PRODUCTION_BASE_URL
    auth: GraphAuth = GraphAuth.MANAGED_IDENTITY
    client_id: str | None = None
    """The app registration's client id (``managedIdentity``: the user-assigned identity's)."""
    managed_identity_client_id: str | None = None
    """The Function App's user-assigned identity: the federated credential's subject, and who
    reads the certificate from Key Vault."""
    certificate_key_vault_url: str | None = None
    certificate_name: str | None = None
    """A Key Vault certificate: its private key is the secret of the same name (PKCS#12)."""
    certificate_path: str | None = None
    """A local certificate file instead of Key Vault (Flex Consumption loads no certificates)."""
    static_token: str | None = None
    identity_url: str | None = None
    """A local stand-in for Entra ID and the managed identity endpoint (loopback only)."""
    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    operation_poll_interval_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0
    operation_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 20.0
    operation_wait_seconds: Annotated[float, Field(ge=1, le=600)] = DEFAULT_WAIT_SECONDS
    """How long an accepted assignment is left alone before the first look, until the tenant's
    own operations have taught the app better (it learns per tenant from every look)."""
    inline_retry_max_seconds: Annotated[float, Field(ge=0, le=170)] = 10.0
    teams_requests_per_second: Annotated[float, Field(gt=0, le=1000)] = 29.0
    """The tenant's pace for requests under /admin/teams/, shared by every instance: just under
    Teams' documented catch-all of 30 per second per app per tenant (see README)."""
    teams_app_requests_per_second: Annotated[float, Field(gt=0, le=1000)] = 250.0
    """The app's pace for requests under /admin/teams/ across all its tenants, shared by every
    instance of every tenant: below Teams' documented catch-all of 300 per second per app across
    tenants. Further below it than the tenant's 29 is below 30, because not everything that
    counts against the 300 goes through this pace: another deployment or tool on the same app
    registration counts too, unseen. Holding back 50 costs a wave of onboardings a sixth of its
    speed, and only while more than eight tenants go at full pace; a 429 on the app-wide limit
    would cost every tenant in the wave a Retry-After. Bounded like the tenant's pace (1000),
    not at 300: the limit is Microsoft's to change, and local runs against the simulator go
    faster."""

    @field_validator("base_url")
    @classmethod
    def _base_url_has_no_trailing_slash(cls, value: str) -> str:
        # The SDK's templates are "{+baseurl}/admin/..."; a trailing slash would send "v1.0//admin".
        parts = urlsplit(value)
        if parts.scheme not in {"https", "http"} or not parts.netloc:
            raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
        return value.rstrip("/")

    @field_validator("identity_url")
    @classmethod
    def _identity_url_is_loopback(cls, value: str) -> str:
        # Tokens issued by a stand-in are worthless anywhere else, and the managed identity's
        # assertion must never leave the machine: loopback only.
        parts = urlsplit(value)
        if parts.scheme not in {"https", "http"} or not _is_loopback(value):
            raise ValueError(
                f"must be a loopback http URL (a local stand-in for Entra ID), got {value!r}"
            )
        return value.rstrip("/")

    @field_validator("certificate_key_vault_url")
    @classmethod
    def _key_vault_url_is_https(cls, value: str) -> str:
        return _absolute_https(value, "the vault's https URL").rstrip("/")

    @field_validator("certificate_name")
    @classmethod
    def _is_a_key_vault_name(cls, value: str) -> str:
        if not _KEY_VAULT_NAME.match(value):
            raise ValueError(
                f"must be a Key Vault certificate name (1-127 letters, digits, dashes), "
                f"got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _auth_has_what_it_needs(self) -> Self:
        problems = [*self._missing_for_auth(), *self._unsafe_urls()]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _missing_for_auth(self) -> list[str]:
        problems: list[str] = []
        if self.auth is GraphAuth.FEDERATED_IDENTITY:
            problems += [
                f"GRAPH_AUTH=federatedIdentity needs {name} ({what})"
                for name, what, value in [
                    ("GRAPH_CLIENT_ID", "the app registration's client id", self.client_id),
                    ("MANAGED_IDENTITY_CLIENT_ID", "the user-assigned identity's client id",
                     self.managed_identity_client_id),
                ]
                if not value
            ]
        if self.auth is GraphAuth.CERTIFICATE:
            if not self.client_id:
                problems.append("GRAPH_AUTH=certificate needs GRAPH_CLIENT_ID "
                                "(the app registration's client id)")
            problems += self._certificate_source_problems()
        if self.auth is GraphAuth.STATIC_TOKEN and not self.static_token:
            problems.append("GRAPH_AUTH=staticToken needs GRAPH_STATIC_TOKEN")
        return problems

    def _certificate_source_problems(self) -> list[str]:
        in_key_vault = (self.certificate_key_vault_url, self.certificate_name)
        if any(in_key_vault) and not all(in_key_vault):
            given, missing = (
                ("GRAPH_CERTIFICATE_KEY_VAULT_URL", "GRAPH_CERTIFICATE_NAME")
                if self.certificate_key_vault_url
                else ("GRAPH_CERTIFICATE_NAME", "GRAPH_CERTIFICATE_KEY_VAULT_URL")
            )
            return [f"{given} needs {missing} as well"]
        if all(in_key_vault) and self.certificate_path:
            return [
                f"the certificate comes either from Key Vault or from GRAPH_CERTIFICATE_PATH, "
                f"not both (got {self.certificate_path!r} as well)"
            ]
        if not all(in_key_vault) and not self.certificate_path:
            return [
                "GRAPH_AUTH=certificate needs the certificate: GRAPH_CERTIFICATE_KEY_VAULT_URL "
                "and GRAPH_CERTIFICATE_NAME (in Azure), or GRAPH_CERTIFICATE_PATH (a local file)"
            ]
        return []

    def _unsafe_urls(self) -> list[str]:
        problems: list[str] = []
        loopback_graph = _is_loopback(self.base_url)
        if self.auth is GraphAuth.STATIC_TOKEN and not loopback_graph:
            # A static token is for the local simulator; never send one to a real service.
            problems.append(
                f"GRAPH_AUTH=staticToken is only allowed with a loopback GRAPH_BASE_URL, "
                f"got {self.base_url!r}"
            )
        elif not loopback_graph and urlsplit(self.base_url).scheme != "https":
            problems.append(f"GRAPH_BASE_URL must use https, got {self.base_url!r}")
        if self.identity_url and not loopback_graph:
            # Tokens from the stand-in are only good for the simulator.
            problems.append(
                f"GRAPH_IDENTITY_URL={self.identity_url!r} is only allowed with a loopback "
                f"GRAPH_BASE_URL, got {self.base_url!r}"
            )
        return problems


class StorageSettings(BaseModel):
    """Where queues and tables live: a connection string, or service URIs + managed identity."""

    model_config = _Frozen

    connection_string: str | None = None
    queue_service_uri: str | None = None
    table_service_uri: str | None = None
    client_id: str | None = None

    @model_validator(mode="after")
    def _one_way_to_connect(self) -> Self:
        if not self.connection_string and not (self.queue_service_uri and self.table_service_uri):
            raise ValueError(
                "set AzureWebJobsStorage (a connection string) or both "
                "AzureWebJobsStorage__queueServiceUri and AzureWebJobsStorage__tableServiceUri"
            )
        return self


class AppSettings(BaseModel):
    """Every setting the app reads, validated together so one start-up error lists them all."""

    model_config = _Frozen

    tenant: TenantSettings | None = None
    """The one tenant of an app without a registry (``TENANT_ID``): it serves that tenant exactly
    as a one-tenant registry would. None: every tenant comes from the ``tenants`` table."""
    rules: TenantRules = TenantRules()
    """The rules of the ``TENANT_ID`` tenant (registry tenants carry their own)."""
    graph: GraphSettings
    storage: StorageSettings
    sync_schedule: str = DEFAULT_SYNC_SCHEDULE
    enqueue_concurrency: Annotated[int, Field(ge=1, le=256)] = 32
    teams_readiness_patience_hours: Annotated[float, Field(ge=0, le=24 * 14)] = 24.0
    """How long a user may wait for Teams (visible, licensed) before it is reported as a
    problem: licences take up to 24 hours to show."""
    delta_reads: bool = True
    """Between full reads, read only what changed (``users/delta``, ``groups/delta``)."""
    full_read_interval_minutes: Annotated[int, Field(ge=5, le=7 * 24 * 60)] = 60
    """How often the whole voice group is read transitively even with delta reads on: group
    delta sees direct members only, so a change inside a nested group waits for this read (the
    default keeps the customer's one-hour promise)."""

    consent_redirect_uri: str = DEFAULT_CONSENT_REDIRECT_URI
    """Where Entra ID sends a customer's admin after consenting (a redirect URI registered on
    the app registration); ``tenants add`` builds the admin-consent URL with it."""

    audit_retention_months: Annotated[
        int, Field(ge=1, le=MAX_RETENTION_MONTHS)
    ] = DEFAULT_RETENTION_MONTHS
    """How many months of audit trail each tenant keeps, the current month counted: older
    months are deleted whole by the timer."""
    app_service_authentication: bool = False
    """App Service authentication is on (the platform's ``WEBSITE_AUTH_ENABLED``): only then is
    ``X-MS-CLIENT-PRINCIPAL-NAME`` the caller's (the platform sets it and strips what a client
    sends); without it the header is anyone's to send and is ignored."""
    telemetry_logger_name: str = APP_LOGGER_NAME
    """The logger the Functions worker sends to Application Insights
    (``PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME``): the app's events are logged on
    ``APP_LOGGER_NAME``, so any other name would drop them without a word."""

    @field_validator("telemetry_logger_name")
    @classmethod
    def _telemetry_logger_is_the_apps(cls, value: str) -> str:
        if value != APP_LOGGER_NAME:
            raise ValueError(
                f"must be {APP_LOGGER_NAME!r} (the logger the app's events and log lines go "
                f"to) or unset, got {value!r}")
        return value

    @field_validator("consent_redirect_uri")
    @classmethod
    def _consent_redirect_is_https(cls, value: str) -> str:
        return _absolute_https(value, "an absolute https URL")

    @field_validator("sync_schedule")
    @classmethod
    def _is_ncrontab(cls, value: str) -> str:
        if not _NCRONTAB.match(value):
            raise ValueError(
                f"must be an NCRONTAB expression with six fields (seconds first), got {value!r}"
            )
        return value.strip()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AppSettings:
        """Read and validate the app settings.

        Raises:
            ConfigError: naming each app setting that is missing or wrong, with its value.
        """
        tenant = _pick(environ, _TENANT_KEYS)
        raw = {
            # No TENANT_ID and no VOICE_GROUP_ID: the registry alone says which tenants to serve.
            "tenant": tenant if set(tenant) - {"number_type"} else None,
            "rules": _rules_from(_pick(environ, _RULES_KEYS)),
            "graph": _pick(environ, _GRAPH_KEYS),
            "storage": _pick(environ, _STORAGE_KEYS),
            **_pick(environ, _APP_KEYS),
        }
        try:
            return cls.model_validate(raw)
        except ValidationError as error:
            raise ConfigError(_explain(error)) from None


def sync_schedule_from_environ(environ: Mapping[str, str]) -> str:
    """The timer's NCRONTAB schedule (``SYNC_SCHEDULE``), read where the binding is declared."""
    return environ.get("SYNC_SCHEDULE", "").strip() or DEFAULT_SYNC_SCHEDULE


# App setting name → field name, per section. The names are what an operator types in the portal.
_TENANT_KEYS = {
    "TENANT_ID": "tenant_id",
    "VOICE_GROUP_ID": "voice_group_id",
    "NUMBER_TYPE": "number_type",
}
_RULES_KEYS = {
    "NUMBER_DEFAULT_REGION": "default_region",
    "ACCEPT_FORMATTED": "accept_formatted",
    "ALLOW_EXTENSIONS": "allow_extensions",
    "MAIN_NUMBERS": "main_numbers",
    "MAIN_NUMBER_POLICIES": "main_number_policies",
    "NUMBER_RANGES": "number_ranges",
    "GRACE_PERIOD_HOURS": "grace_period_hours",
    "COOLING_DAYS": "cooling_days",
    "MASS_UNASSIGN_MINIMUM": "mass_unassign_minimum",
    "MASS_UNASSIGN_PERCENT": "mass_unassign_percent",
}
_GRAPH_KEYS = {
    "GRAPH_BASE_URL": "base_url",
    "GRAPH_AUTH": "auth",
    "GRAPH_CLIENT_ID": "client_id",
    "MANAGED_IDENTITY_CLIENT_ID": "managed_identity_client_id",
    "GRAPH_CERTIFICATE_KEY_VAULT_URL": "certificate_key_vault_url",
    "GRAPH_CERTIFICATE_NAME": "certificate_name",
    "GRAPH_CERTIFICATE_PATH": "certificate_path",
    "GRAPH_STATIC_TOKEN": "static_token",
    "GRAPH_IDENTITY_URL": "identity_url",
    "GRAPH_MAX_RETRIES": "max_retries",
    "GRAPH_OPERATION_POLL_INTERVAL_SECONDS": "operation_poll_interval_seconds",
    "GRAPH_OPERATION_TIMEOUT_SECONDS": "operation_timeout_seconds",
    "GRAPH_OPERATION_WAIT_SECONDS": "operation_wait_seconds",
    "GRAPH_INLINE_RETRY_MAX_SECONDS": "inline_retry_max_seconds",
    "TEAMS_REQUESTS_PER_SECOND": "teams_requests_per_second",
    "TEAMS_APP_REQUESTS_PER_SECOND": "teams_app_requests_per_second",
}
_STORAGE_KEYS = {
    "AzureWebJobsStorage": "connection_string",
    "AzureWebJobsStorage__queueServiceUri": "queue_service_uri",
    "AzureWebJobsStorage__tableServiceUri": "table_service_uri",
    "AzureWebJobsStorage__clientId": "client_id",
}
_APP_KEYS = {
    "SYNC_SCHEDULE": "sync_schedule",
    "ENQUEUE_CONCURRENCY": "enqueue_concurrency",
    "TEAMS_READINESS_PATIENCE_HOURS": "teams_readiness_patience_hours",
    "DELTA_READS": "delta_reads",
    "FULL_READ_INTERVAL_MINUTES": "full_read_interval_minutes",
    "CONSENT_REDIRECT_URI": "consent_redirect_uri",
    "AUDIT_RETENTION_MONTHS": "audit_retention_months",
    "WEBSITE_AUTH_ENABLED": "app_service_authentication",
    "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME": "telemetry_logger_name",
}
_SECTIONS: dict[str, dict[str, str]] = {
    "tenant": _TENANT_KEYS,
    "rules": _RULES_KEYS,
    "graph": _GRAPH_KEYS,
    "storage": _STORAGE_KEYS,
}
_SECRET_FIELDS = {"static_token", "connection_string"}


def _pick(environ: Mapping[str, str], keys: Mapping[str, str]) -> dict[str, str]:
    # An empty app setting means "not set": the portal cannot store an absent value otherwise.
    return {
        field: environ[name].strip()
        for name, field in keys.items()
        if environ.get(name, "").strip()
    }


def _rules_from(values: dict[str, str]) -> dict[str, object]:
    """Turn the text forms operators type into the structures ``TenantRules`` validates.

    ``MAIN_NUMBERS``: ``contoso.example=+31855363010;fabrikam.example=+31201234567``.
    ``NUMBER_RANGES``: ``+31855363000-+31855363999,+31201234500-+31201234599``.
    ``MAIN_NUMBER_POLICIES`` stays text: ``TenantRules`` reads its form (per domain,
    ``PolicyType:PolicyName`` pairs) so a scenario file can use the same text.
    Malformed pieces are passed through as they are, so the error names the value.
    """
    rules: dict[str, object] = dict(values)
    if "main_numbers" in values:
        pairs = [piece.partition("=") for piece in values["main_numbers"].split(";") if piece]
        rules["main_numbers"] = (
            {domain.strip(): number.strip() for domain, _, number in pairs}
            if all(sep for _, sep, _ in pairs) else values["main_numbers"]
        )
    if "number_ranges" in values:
        blocks = [piece.strip().split("-") for piece in values["number_ranges"].split(",") if piece]
        rules["number_ranges"] = (
            [{"first": block[0], "last": block[1]} for block in blocks]
            if all(len(block) == 2 for block in blocks) else values["number_ranges"]
        )
    return rules


def _setting_name(location: tuple[str | int, ...]) -> str:
    """Map a pydantic error location back to the app setting an operator must change."""
    if not location:
        return "settings"
    head = str(location[0])
    if head in _SECTIONS and len(location) > 1:
        field = str(location[1])
        names = [name for name, f in _SECTIONS[head].items() if f == field]
        return names[0] if names else field
    if head in _SECTIONS:
        return f"{head} settings"
    names = [name for name, f in _APP_KEYS.items() if f == head]
    return names[0] if names else head


def _explain(error: ValidationError) -> str:
    lines = ["The app settings are not valid:"]
    for problem in error.errors():
        location = problem["loc"]
        name = _setting_name(location)
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "missing":
            lines.append(f"  - {name}: missing (set this app setting)")
            continue
        value = problem.get("input")
        field = str(location[-1]) if location else ""
        if field in _SECRET_FIELDS or isinstance(value, dict):
            lines.append(f"  - {name}: {message}")
        else:
            lines.append(f"  - {name}={value!r}: {message}")
    return "\n".join(lines)


def _absolute_https(value: str, what: str) -> str:
    """``value`` when it is an https URL with a host; else ValueError saying it must be ``what``."""
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"must be {what}, got {value!r}")
    return value


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False



# -- the names, for the deployment templates ---------------------------------------------------

def app_setting_names() -> frozenset[str]:
    """Every app setting the app reads (what ``from_environ`` looks at, and ``SYNC_SCHEDULE``).

    The infra tests check the templates against it: a setting the templates set that the app
    does not read is a typo or a leftover.
    """
    sections = (_TENANT_KEYS, _RULES_KEYS, _GRAPH_KEYS, _STORAGE_KEYS, _APP_KEYS)
    return frozenset(name for keys in sections for name in keys)
