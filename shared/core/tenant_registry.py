"""The tenant registry: which customer tenants the app serves, in what state, with which rules.

Pure: the records, their validation, the life cycle (onboarding → active ⇄ paused → removed), a
tenant's health as the last timer tick saw it, which tenants are due for a sync, the admin-consent
link an onboarding customer opens, and the operator's number import (CSV). The tables are in
``shared.adapters.storage.tenants``; the ports in ``shared.service.ports``.

A record is read from JSON (camelCase, as stored and as the admin API speaks) and every problem is
reported as one ``RegistryError`` naming the field by its JSON name and the value it had.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final
from urllib.parse import quote, urlencode, urlsplit
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from shared.core.phone_numbers import is_real_number, suggest_e164
from shared.core.tenant_rules import NumberRange, TenantRules

# --- The tenant as the app settings name it ------------------------------------------------------


class NumberType(StrEnum):
    """How the tenant's numbers reach Teams (Graph's ``numberType``, camelCase on the wire)."""

    DIRECT_ROUTING = "directRouting"
    CALLING_PLAN = "callingPlan"
    OPERATOR_CONNECT = "operatorConnect"


class TenantSettings(BaseModel):
    """The customer tenant one sync serves: its id, its voice group and its number type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: UUID
    voice_group_id: UUID
    number_type: NumberType = NumberType.DIRECT_ROUTING

    @property
    def key(self) -> str:
        """The tenant id as it appears in table keys and messages."""
        return str(self.tenant_id)


# --- The registry's record -----------------------------------------------------------------------


class TenantState(StrEnum):
    """Where a tenant is in its life with the app."""

    ONBOARDING = "onboarding"
    """Registered; consent and the voice group are being set up. Not synced."""
    ACTIVE = "active"
    """Synced on the timer."""
    PAUSED = "paused"
    """Kept as it is: not synced, nothing assigned or taken back, state kept."""
    REMOVED = "removed"
    """No longer served. Kept as a record of who removed it when; final."""


class TenantAction(StrEnum):
    """What an operator may do to a tenant (``apply_action``)."""

    ACTIVATE = "activate"
    PAUSE = "pause"
    RESUME = "resume"
    REMOVE = "remove"


class RegistryError(ValueError):
    """A tenant record (or a change to one) that is not valid: one readable message naming each
    field by its JSON name, with the value it had."""


class TransitionRefused(RegistryError):  # noqa: N818 - named for what happened, like the rest
    """The action is not allowed in the tenant's state; the message says what is."""


class TenantExistsError(Exception):
    """A tenant with this id is registered already (``TenantRegistry.add``)."""


class TenantNotFoundError(Exception):
    """No tenant with this id is registered (``TenantRegistry.update``)."""


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


_UtcTime = Annotated[AwareDatetime, AfterValidator(_utc)]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]

DEFAULT_TEAMS_REQUESTS_PER_SECOND: Final = 29.0
DEFAULT_FULL_READ_INTERVAL_MINUTES: Final = 60


class TenantRecord(BaseModel):
    """One customer tenant in the registry: who it is, how it is synced, and its state.

    Stored and exchanged as JSON with camelCase names (``tenantId``, ``voiceGroupId``, …); the
    Python names work too. Frozen: a change is a new record (``with_changes``, ``apply_action``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel,
                              populate_by_name=True)

    tenant_id: UUID
    display_name: _Text
    """The customer's name as operators know it (1 to 256 characters)."""
    voice_group_id: UUID
    """The Entra group whose transitive members get numbers."""
    number_type: NumberType = NumberType.DIRECT_ROUTING
    rules: TenantRules = TenantRules()
    teams_requests_per_second: Annotated[float, Field(gt=0, le=1000)] = (
        DEFAULT_TEAMS_REQUESTS_PER_SECOND
    )
    """The tenant's pace for requests under /admin/teams/ (Teams allows 30 per app per tenant)."""
    full_read_interval_minutes: Annotated[int, Field(ge=5, le=7 * 24 * 60)] = (
        DEFAULT_FULL_READ_INTERVAL_MINUTES
    )
    """How often the voice group is read in full even with delta reads on."""
    sync_interval_minutes: Annotated[int, Field(ge=0, le=24 * 60)] = 0
    """The least time between two syncs' starts; 0: every timer tick."""
    state: TenantState = TenantState.ONBOARDING
    created_by: _Text
    created_at: _UtcTime
    changed_by: _Text
    changed_at: _UtcTime

    @property
    def key(self) -> str:
        """The tenant id as it appears in table keys and messages."""
        return str(self.tenant_id)

    @property
    def settings(self) -> TenantSettings:
        """The tenant as one sync needs it (id, voice group, number type)."""
        return TenantSettings(tenant_id=self.tenant_id, voice_group_id=self.voice_group_id,
                              number_type=self.number_type)

    def to_json(self) -> str:
        """The record as stored: compact JSON with camelCase names."""
        return self.model_dump_json(by_alias=True)

    def __str__(self) -> str:
        return f"tenant {self.display_name!r} ({self.key})"


# The fields a caller sets on a new tenant or changes later; the rest are the registry's own.
OPTIONAL_FIELDS: Final = (
    "number_type", "rules", "teams_requests_per_second", "full_read_interval_minutes",
    "sync_interval_minutes",
)
CHANGEABLE_FIELDS: Final = ("display_name", "voice_group_id", *OPTIONAL_FIELDS)
_JSON_NAMES: Final = {to_camel(name): name for name in TenantRecord.model_fields}


def parse_tenant_record(
    data: Mapping[str, object] | str | bytes, source: str = "tenant"
) -> TenantRecord:
    """Read a tenant record from JSON text or from a mapping with JSON (or Python) names.

    Raises:
        RegistryError: ``{source}: field=value: problem``, for every problem found.
    """
    try:
        if isinstance(data, str | bytes):
            return TenantRecord.model_validate_json(data)
        return TenantRecord.model_validate(dict(data))
    except ValidationError as error:
        raise RegistryError(explain(error, source)) from None


def stored_record(text: str | bytes, row_key: str, source: str) -> TenantRecord:
    """A record as the registry stored it under ``row_key`` (its tenant id), read again.

    Raises:
        RegistryError: the text is not a valid record (hand-edited, or from a later version), or
            it is another tenant's: ``{source}: field=value: problem``.
    """
    record = parse_tenant_record(text, source)
    if record.key != row_key:
        raise RegistryError(
            f"{source}: tenantId={record.key!r}: the row is tenant {row_key!r}; a row holds its "
            "own tenant's record"
        )
    return record


def new_tenant(
    *,
    tenant_id: str,
    display_name: str,
    voice_group_id: str,
    by: str,
    at: datetime,
    **fields: object,
) -> TenantRecord:
    """A tenant just registered: state ``onboarding``, created and changed by ``by`` at ``at``.

    ``fields`` are the optional settings by Python name (``rules`` may be a dict of its JSON
    form); their JSON names are accepted too.

    Raises:
        RegistryError: naming each field that is unknown, not settable, or not valid.
    """
    source = f"new tenant {tenant_id!r}"
    settable = _field_names(fields, OPTIONAL_FIELDS, source)
    return _validated({
        "tenant_id": tenant_id,
        "display_name": display_name,
        "voice_group_id": voice_group_id,
        **settable,
        "state": TenantState.ONBOARDING,
        "created_by": by,
        "created_at": at,
        "changed_by": by,
        "changed_at": at,
    }, source)


APP_SETTINGS_AUTHOR: Final = "app settings"


def record_from_settings(
    tenant: TenantSettings,
    rules: TenantRules,
    *,
    teams_requests_per_second: float,
    full_read_interval_minutes: int,
    at: datetime,
) -> TenantRecord:
    """The one-tenant registry of an app configured by ``TENANT_ID`` (and no registry): the
    app-settings tenant, active, synced on every timer tick."""
    return _validated({
        "tenant_id": tenant.tenant_id,
        "display_name": "from app settings",
        "voice_group_id": tenant.voice_group_id,
        "number_type": tenant.number_type,
        "rules": rules,
        "teams_requests_per_second": teams_requests_per_second,
        "full_read_interval_minutes": full_read_interval_minutes,
        "sync_interval_minutes": 0,
        "state": TenantState.ACTIVE,
        "created_by": APP_SETTINGS_AUTHOR,
        "created_at": at,
        "changed_by": APP_SETTINGS_AUTHOR,
        "changed_at": at,
    }, f"tenant {tenant.key} from app settings")


def with_changes(
    record: TenantRecord, *, by: str, at: datetime, **fields: object
) -> TenantRecord:
    """The record with some settings changed (by Python or JSON name), validated as a whole,
    and ``changedBy``/``changedAt`` set. The id, the state (see ``apply_action``) and the
    creation stamp cannot be changed this way.

    Raises:
        RegistryError: naming each field that is unknown, not changeable, or not valid.
    """
    source = str(record)
    changes = _field_names(fields, CHANGEABLE_FIELDS, source)
    return _validated(
        {**_as_fields(record), **changes, "changed_by": by, "changed_at": at}, source
    )


# action → (the states it applies in, the state it leads to)
TRANSITIONS: Final[Mapping[TenantAction, tuple[frozenset[TenantState], TenantState]]] = {
    TenantAction.ACTIVATE: (
        frozenset({TenantState.ONBOARDING, TenantState.PAUSED}), TenantState.ACTIVE,
    ),
    TenantAction.PAUSE: (
        frozenset({TenantState.ACTIVE, TenantState.ONBOARDING}), TenantState.PAUSED,
    ),
    TenantAction.RESUME: (frozenset({TenantState.PAUSED}), TenantState.ACTIVE),
    TenantAction.REMOVE: (
        frozenset(TenantState) - {TenantState.REMOVED}, TenantState.REMOVED,
    ),
}


def allowed_actions(state: TenantState) -> tuple[TenantAction, ...]:
    """The actions an operator may take on a tenant in ``state`` (in ``TenantAction`` order)."""
    return tuple(action for action, (sources, _) in TRANSITIONS.items() if state in sources)


def apply_action(
    record: TenantRecord, action: TenantAction, *, by: str, at: datetime
) -> TenantRecord:
    """The record after the operator's action, changed by ``by`` at ``at``.

    activate: onboarding or paused → active; pause: active or onboarding → paused;
    resume: paused → active; remove: any state but removed → removed.

    Raises:
        TransitionRefused: the action does not apply in the tenant's state; the message names
            the tenant, its state, the action, and the actions that do apply.
    """
    sources, target = TRANSITIONS[action]
    if record.state not in sources:
        allowed = allowed_actions(record.state)
        what_is = (
            f"allowed from {record.state}: {', '.join(allowed)}" if allowed
            else f"no action applies to a {record.state} tenant"
        )
        raise TransitionRefused(
            f"{record} is {record.state}: cannot {action} it ({what_is}; {action} applies to "
            f"{' or '.join(sorted(sources))} tenants)"
        )
    return _validated(
        {**_as_fields(record), "state": target, "changed_by": by, "changed_at": at}, str(record)
    )


def _as_fields(record: TenantRecord) -> dict[str, object]:
    # The values themselves, not a dump: the rules model is taken as it is, not validated again.
    return {name: getattr(record, name) for name in TenantRecord.model_fields}


def _field_names(
    fields: Mapping[str, object], allowed: tuple[str, ...], source: str
) -> dict[str, object]:
    """The fields by Python name; unknown and not-allowed names are one ``RegistryError``."""
    named: dict[str, object] = {}
    problems = []
    for name, value in fields.items():
        python = _JSON_NAMES.get(name, name)
        if python in allowed:
            named[python] = value
        elif python in TenantRecord.model_fields:
            problems.append(f"{to_camel(python)} cannot be set here{_WHY_NOT.get(python, '')}")
        else:
            problems.append(f"{name} is not a tenant field")
    if problems:
        settable = ", ".join(to_camel(name) for name in allowed)
        raise RegistryError(f"{source}: {'; '.join(problems)} (settable: {settable})")
    return named


_WHY_NOT: Final = {
    "state": " (use an action: activate, pause, resume, remove)",
    "tenant_id": " (a tenant's id never changes; remove it and add the other tenant)",
}


def _validated(fields: dict[str, object], source: str) -> TenantRecord:
    # By JSON name, so that an error names the field as the stored record and the API do.
    by_json_name = {to_camel(name): value for name, value in fields.items()}
    try:
        return TenantRecord.model_validate(by_json_name)
    except ValidationError as error:
        raise RegistryError(explain(error, source)) from None


def explain(error: ValidationError, source: str) -> str:
    """One readable message for a failed validation: ``{source}: field=value: problem; …``.

    Fields are named by their JSON path (``rules.numberRanges.0.first``); a value too large to
    read in a message (an object, a list) is left out.
    """
    problems = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"]) or "record"
        message = problem["msg"].removeprefix("Value error, ")
        kind = problem["type"]
        if kind == "missing":
            problems.append(f"{location}: missing")
        elif kind == "extra_forbidden":
            problems.append(f"{location}: not a field of a tenant record")
        elif kind.startswith("json_"):
            problems.append(f"not JSON: {message}")
        elif isinstance(problem.get("input"), dict | list | tuple):
            problems.append(f"{location}: {message}")
        else:
            problems.append(f"{location}={problem.get('input')!r}: {message}")
    return f"{source}: {'; '.join(problems)}"


# --- Health: what the last timer tick saw of the tenant -----------------------------------------


class TenantHealthState(StrEnum):
    """Whether the app can reach and read the tenant."""

    HEALTHY = "healthy"
    AUTH_FAILED = "auth_failed"
    """No token, or consent was withdrawn: the customer's admin must consent again."""
    GROUP_MISSING = "group_missing"
    """The voice group does not exist (or the app may not read it)."""
    GRAPH_UNAVAILABLE = "graph_unavailable"
    """Graph throttled or failed for the whole tick; nothing to do but wait."""


MESSAGE_LIMIT: Final = 2000
"""The longest health message kept (a person reads it; Graph's bodies can be long)."""


@dataclass(frozen=True, slots=True)
class TenantHealth:
    """A tenant's health: its state, a message for the operator, since when, last checked."""

    tenant_id: str
    state: TenantHealthState
    message: str
    since: datetime
    """When the tenant entered ``state`` (kept while it stays there)."""
    checked_at: datetime


def next_health(
    previous: TenantHealth | None,
    tenant_id: str,
    state: TenantHealthState,
    message: str,
    now: datetime,
) -> TenantHealth:
    """The tenant's health after a check at ``now``: ``since`` is kept while the state is the
    same, and starts again at ``now`` when it changes. A long message is cut short."""
    unchanged = previous is not None and previous.state == state
    since = previous.since if previous is not None and unchanged else now
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT - 1] + "…"
    return TenantHealth(tenant_id, state, message, since, now)


def health_changed(previous: TenantHealth | None, current: TenantHealth) -> bool:
    """Whether the health is news worth a log event: its state changed. A tenant's first check
    is news only when it is not healthy."""
    if previous is None:
        return current.state != TenantHealthState.HEALTHY
    return previous.state != current.state


# --- Which tenants are due for a sync ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncSchedule:
    """When a tenant's last sync was enqueued, started and finished (None: never)."""

    tenant_id: str
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def in_flight_since(self) -> datetime | None:
        """When the sync now in flight was enqueued or started; None when none is: every mark
        after the last finish counts (a message waiting, or a run going)."""
        finished = self.finished_at
        marks = [mark for mark in (self.enqueued_at, self.started_at)
                 if mark is not None and (finished is None or mark > finished)]
        return max(marks, default=None)


PENDING_PATIENCE: Final = timedelta(minutes=15)
"""How long a sync in flight holds its tenant back: a message lost, or a run that crashed
without finishing, must not block the tenant for ever."""


def tenants_due(
    records: Iterable[TenantRecord], schedules: Mapping[str, SyncSchedule], now: datetime
) -> list[TenantRecord]:
    """The active tenants a timer tick at ``now`` should sync, sorted by tenant id.

    A tenant is not due while a sync of it is in flight (enqueued or started since its last
    finish) and younger than ``PENDING_PATIENCE``, nor before its last start plus its
    ``sync_interval_minutes``.
    """
    due = []
    for record in records:
        if record.state is not TenantState.ACTIVE:
            continue
        schedule = schedules.get(record.key, SyncSchedule(record.key))
        in_flight = schedule.in_flight_since()
        if in_flight is not None and now - in_flight < PENDING_PATIENCE:
            continue
        interval = timedelta(minutes=record.sync_interval_minutes)
        if schedule.started_at is not None and now < schedule.started_at + interval:
            continue
        due.append(record)
    return sorted(due, key=lambda record: record.key)


# --- Onboarding: the customer's admin consents ---------------------------------------------------

GRAPH_DEFAULT_SCOPE: Final = "https://graph.microsoft.com/.default"
_LOGIN: Final = "https://login.microsoftonline.com"


def admin_consent_url(*, tenant_id: str, app_client_id: str, redirect_uri: str, state: str) -> str:
    """The link a customer's admin opens to grant the app its Graph permissions in their tenant
    (the v2.0 admin-consent endpoint, asking for the app's configured permissions).

    Raises:
        ValueError: a value is empty, or the redirect URI is not an absolute http(s) URL.
    """
    for name, value in (("tenant_id", tenant_id), ("app_client_id", app_client_id),
                        ("state", state)):
        if not value.strip():
            raise ValueError(f"{name} must not be empty, got {value!r}")
    parts = urlsplit(redirect_uri)
    if parts.scheme not in {"https", "http"} or not parts.netloc:
        raise ValueError(f"redirect_uri must be an absolute http(s) URL, got {redirect_uri!r}")
    query = urlencode({
        "client_id": app_client_id.strip(),
        "scope": GRAPH_DEFAULT_SCOPE,
        "redirect_uri": redirect_uri,
        "state": state,
    })
    return f"{_LOGIN}/{quote(tenant_id.strip(), safe='')}/v2.0/adminconsent?{query}"


# --- The operator's number import ----------------------------------------------------------------


class NumberImportError(ValueError):
    """A number import that cannot be used; ``problems`` has one line per problem found."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_HEADERS: Final = (("first", "last"), ("number",))


@dataclass(frozen=True, slots=True)
class _ImportedRange:
    line: int
    text: str
    block: NumberRange


def parse_number_import(
    text: str, source: str, *, default_region: str | None = None
) -> tuple[NumberRange, ...]:
    """Read the operator's number list: CSV, a number or a ``first,last`` range per line.

    An optional header (``first,last`` or ``number``) on the first line that is not blank or a
    comment; blank lines and lines starting with ``#`` are skipped. Numbers are E.164 with a
    leading ``+`` and real numbers of their country; a range runs from low to high over numbers
    of one length; no two lines may share a number. A single number is a range of one. The
    ranges come back in the file's order (adjacent ranges stay separate).

    ``default_region`` only helps suggest the E.164 form of a national number.

    Raises:
        NumberImportError: every problem, one line each: ``{source} line N: what (got 'value')``.
    """
    problems: list[tuple[int, str]] = []
    ranges: list[_ImportedRange] = []
    header_allowed = True
    for number, line in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        cells = _cells(stripped)
        if header_allowed and tuple(cell.lower() for cell in cells) in _HEADERS:
            header_allowed = False
            continue
        header_allowed = False
        where = f"{source} line {number}"
        imported, line_problems = _range_of_line(cells, stripped, where, default_region)
        problems.extend((number, problem) for problem in line_problems)
        if imported is not None:
            ranges.append(_ImportedRange(number, stripped, imported))
    problems.extend(_overlaps(ranges, source))
    if not problems and not ranges:
        problems.append((0, f"{source}: no numbers (every line is blank, a comment or the header)"))
    if problems:
        raise NumberImportError(problem for _, problem in sorted(problems, key=lambda p: p[0]))
    return tuple(imported.block for imported in ranges)


def _cells(line: str) -> list[str]:
    # One physical line is one record: a number never needs a quoted line break.
    cells = [cell.strip() for cell in next(csv.reader([line]), [])]
    while cells and not cells[-1]:
        cells.pop()  # spreadsheets write "number," for a one-column row of a two-column sheet
    return cells


def _range_of_line(
    cells: list[str], line: str, where: str, default_region: str | None
) -> tuple[NumberRange | None, list[str]]:
    if len(cells) not in (1, 2):
        return None, [
            f"{where}: expected one number or first,last separated by a comma (got {line!r})"
        ]
    problems = [problem for cell in cells
                if (problem := _number_problem(cell, where, default_region))]
    if problems:
        return None, problems
    first, last = cells[0], cells[-1]
    if len(first) != len(last):
        return None, [f"{where}: first and last have different lengths, so the range is not a "
                      f"block of numbers (got {line!r})"]
    if first > last:
        return None, [f"{where}: the range runs from high to low; write first,last with the "
                      f"lower number first (got {line!r})"]
    return NumberRange(first=first, last=last), []


def _number_problem(cell: str, where: str, default_region: str | None) -> str | None:
    if not cell:
        return f"{where}: a number is empty (got {cell!r})"
    if not _E164.fullmatch(cell):
        suggestion = suggest_e164(cell, default_region)
        hint = f"; did you mean {suggestion}?" if suggestion else ""
        return (f"{where}: not E.164 (+ country code and number, no spaces or punctuation)"
                f"{hint} (got {cell!r})")
    if not is_real_number(cell):
        return f"{where}: E.164 but not a valid number in its country (got {cell!r})"
    return None


def _overlaps(ranges: list[_ImportedRange], source: str) -> list[tuple[int, str]]:
    """Each line sharing a number with another line, naming both lines (on the later one)."""
    problems = []
    first_seen: dict[NumberRange, _ImportedRange] = {}
    for imported in ranges:
        repeated = first_seen.setdefault(imported.block, imported)
        if repeated is not imported:
            problems.append((imported.line, (
                f"{source} line {imported.line}: repeats line {repeated.line} "
                f"(got {imported.text!r})"
            )))
    # Equal-length digit strings compare like numbers; ranges of different lengths never meet.
    ordered = sorted(ranges, key=lambda r: (len(r.block.first), r.block.first, r.line))
    widest: _ImportedRange | None = None  # of the ranges so far, the one reaching furthest
    for current in ordered:
        if first_seen[current.block] is not current:
            continue  # a repeat, reported above
        if (widest is not None and len(widest.block.first) == len(current.block.first)
                and current.block.first <= widest.block.last):
            earlier, later = sorted((widest, current), key=lambda r: r.line)
            problems.append((later.line, (
                f"{source} line {later.line}: overlaps line {earlier.line} ({earlier.block}) "
                f"(got {later.text!r})"
            )))
        if (widest is None or len(widest.block.first) != len(current.block.first)
                or current.block.last > widest.block.last):
            widest = current
    return problems
