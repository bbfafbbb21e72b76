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
from shared.core.tenant_registry import NumberType as NumberType  # noqa: PLC0414
from shared.core.tenant_registry import TenantSettings as TenantSettings  # noqa: PLC0414
from shared.core.tenant_rules import TenantRules

DEFAULT_SYNC_SCHEDULE = "0 */5 * * * *"
GRAPH_PRODUCTION_BASE_URL = "https://graph.microsoft.com/v1.0"

# NCRONTAB as the Functions host reads it: six fields, seconds first.
_NCRONTAB = re.compile(r"^\s*(\S+\s+){5}\S+\s*$")


class ConfigError(Exception):
    """The app settings cannot run the app; the message lists every problem and how to fix it."""


class GraphAuth(StrEnum):
    """Where the Graph access token comes from."""

    MANAGED_IDENTITY = "managedIdentity"
    CERTIFICATE = "certificate"
    STATIC_TOKEN = "staticToken"  # noqa: S105 - a mode name; the token is for the simulator only


_Frozen = ConfigDict(frozen=True, extra="forbid")


class GraphSettings(BaseModel):
    """How the app reaches Microsoft Graph."""

    model_config = _Frozen

    base_url: str = GRAPH_PRODUCTION_BASE_URL
    auth: GraphAuth = GraphAuth.MANAGED_IDENTITY
    client_id: str | None = None
    certificate_path: str | None = None
    static_token: str | None = None
    max_retries: Annotated[int, Field(ge=0, le=10)] = 3
    operation_poll_interval_seconds: Annotated[float, Field(gt=0, le=60)] = 2.0
    operation_timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 20.0
    inline_retry_max_seconds: Annotated[float, Field(ge=0, le=170)] = 10.0
    teams_requests_per_second: Annotated[float, Field(gt=0, le=1000)] = 29.0
    """The tenant's pace for requests under /admin/teams/, shared by every instance: just under
    Teams' documented catch-all of 30 per second per app per tenant (see README)."""

    @field_validator("base_url")
    @classmethod
    def _base_url_has_no_trailing_slash(cls, value: str) -> str:
        # The SDK's templates are "{+baseurl}/admin/..."; a trailing slash would send "v1.0//admin".
        parts = urlsplit(value)
        if parts.scheme not in {"https", "http"} or not parts.netloc:
            raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _auth_has_what_it_needs(self) -> Self:
        if self.auth is GraphAuth.CERTIFICATE and not (self.client_id and self.certificate_path):
            raise ValueError(
                "GRAPH_AUTH=certificate needs GRAPH_CLIENT_ID and GRAPH_CERTIFICATE_PATH"
            )
        if self.auth is GraphAuth.STATIC_TOKEN:
            if not self.static_token:
                raise ValueError("GRAPH_AUTH=staticToken needs GRAPH_STATIC_TOKEN")
            if not _is_loopback(self.base_url):
                # A static token is for the local simulator; never send one to a real service.
                raise ValueError(
                    f"GRAPH_AUTH=staticToken is only allowed with a loopback GRAPH_BASE_URL, "
                    f"got {self.base_url!r}"
                )
        if self.auth is not GraphAuth.STATIC_TOKEN and urlsplit(self.base_url).scheme != "https":
            raise ValueError(f"GRAPH_BASE_URL must use https, got {self.base_url!r}")
        return self


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

    tenant: TenantSettings
    rules: TenantRules = TenantRules()
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
        raw = {
            "tenant": _pick(environ, _TENANT_KEYS),
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
    "GRAPH_CERTIFICATE_PATH": "certificate_path",
    "GRAPH_STATIC_TOKEN": "static_token",
    "GRAPH_MAX_RETRIES": "max_retries",
    "GRAPH_OPERATION_POLL_INTERVAL_SECONDS": "operation_poll_interval_seconds",
    "GRAPH_OPERATION_TIMEOUT_SECONDS": "operation_timeout_seconds",
    "GRAPH_INLINE_RETRY_MAX_SECONDS": "inline_retry_max_seconds",
    "TEAMS_REQUESTS_PER_SECOND": "teams_requests_per_second",
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


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

