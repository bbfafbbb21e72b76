"""What the HTTP entry points accept: their query parameters and bodies, validated with pydantic.

Pure: no host, no storage. ``from_http`` takes what the host hands a function (the query
parameters and the body's bytes) and returns the request, or raises ``RequestError`` naming the
field and the value; ``function_app`` answers it as ``{"error": "<field>", "message": "..."}``
with the error's status (400; 413 for a body over ``MAX_BODY_BYTES``). Values are shown as JSON,
long ones cut short.

* ``POST /api/sync``: ``?dryRun=true|false`` (also ``1``/``0``, any case; absent: false). It
  takes no body: one is refused, so ``{"dryRun": true}`` sent as a body never runs a real sync.
* ``GET /api/holds``: ``?status=pending|approved|dropped|all`` (any case; empty: all; absent:
  pending). A body is ignored: a GET writes nothing.
* ``POST /api/holds/approve``: the body ``{"approvedBy": "<who>", "runId": "<run>"}``, at most
  4 KiB of JSON; ``approvedBy`` is a name or e-mail (1-256 characters after trimming, no control
  characters), ``runId`` optional text; any other field is refused. No query parameters.

Every endpoint refuses a query parameter it does not know (``code``, the function key, aside):
``?dryrun=true`` (lower case) or ``holds/approve?runId=...`` would otherwise be silently
ignored and do more than asked.

With many tenants (``/api/tenants…``): ``POST /api/tenants`` (a registry record and
``createdBy``), ``POST /api/tenants/{tenantId}/activate|pause|resume|remove`` (``changedBy``;
``releaseNumbers`` on removal), ``PUT /api/tenants/{tenantId}/numbers?changedBy=`` (a CSV body),
``POST /api/tenants/{tenantId}/sync[?dryRun=true]``, ``POST /api/tenants/{tenantId}/check`` and
the holds routes under ``/api/tenants/{tenantId}/``. A ``tenantId`` that is not a GUID is refused
naming it.

The audit trail: ``GET /api/tenants/{tenantId}/audit?since=<date or ISO time>&user=<id or UPN>``
(``AuditQuery``); who calls each changing route is ``http_actor``: the name the body gives
(``approvedBy``, ``changedBy``, ``createdBy``), else ``X-MS-CLIENT-PRINCIPAL-NAME`` (only with
App Service authentication on: 1-256 characters, no control characters), else ``function key``.

``GET /api/tenants/{tenantId}/report``: ``?format=html|csv|json`` (any case; absent or empty:
html), ``outcome`` and ``reason`` (one value or several separated by commas, any case; an
unknown one is named with the values allowed), ``search`` (up to 256 characters).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from typing import Annotated, Literal, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from shared.core.audit import FUNCTION_KEY, Actor
from shared.core.helpdesk_report import ReportFilters, ReportFormat
from shared.core.outcomes import Outcome, Reason

MAX_BODY_BYTES = 4 * 1024
"""The largest approval body read: a real one is under 200 bytes."""
MAX_APPROVED_BY = 256
MAX_RUN_ID = 128
"""A run id is 33 characters (``20261129T020304.123456Z-1a2b3c4d``); this leaves room."""
KEY_PARAMETER = "code"
"""The function key, when a caller sends it in the query: the host checks it, the app ignores it."""
_SHOWN = 60
"""Characters of a refused value a message shows; longer ones are cut short."""


class RequestError(Exception):
    """A request the app refuses, whatever the retry: the field, the value and what is wrong."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status

    def to_json(self) -> dict[str, str]:
        """The HTTP answer's body."""
        return {"error": self.field, "message": self.message}


_FLAGS = {"true": True, "1": True, "false": False, "0": False}


def _flag(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _FLAGS:
        return _FLAGS[value.strip().lower()]
    raise ValueError("say true or false (or 1 or 0)")


Flag = Annotated[StrictBool, BeforeValidator(_flag)]


def _hold_status(value: object) -> object:
    if isinstance(value, str):
        status = value.strip().lower() or "all"
        if status in {"pending", "approved", "dropped", "all"}:
            return status
    raise ValueError("say pending, approved, dropped or all (empty: all)")


HoldStatus = Annotated[
    Literal["pending", "approved", "dropped", "all"], BeforeValidator(_hold_status)
]


def _text(value: str) -> str:
    if any(unicodedata.category(char) in {"Cc", "Cs"} for char in value):
        raise ValueError("control characters (or unpaired surrogates) are not allowed")
    return value


def _approver(value: str) -> str:
    approver = _text(value.strip())
    if not approver:
        raise ValueError("say who approves: a name or e-mail, not an empty text")
    if len(approver) > MAX_APPROVED_BY:
        raise ValueError(
            f"at most {MAX_APPROVED_BY} characters (a name or e-mail), got {len(approver):,}"
        )
    return approver


Approver = Annotated[StrictStr, AfterValidator(_approver)]
RunId = Annotated[StrictStr, Field(min_length=1, max_length=MAX_RUN_ID), AfterValidator(_text)]

_Request = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel)


class SyncRequest(BaseModel):
    """``POST /api/sync``: run a sync now, or answer what it would do (``?dryRun=true``)."""

    model_config = _Request

    dry_run: Annotated[Flag, Field(description="true or false")] = False

    @classmethod
    def from_http(cls, params: Mapping[str, str], body: bytes) -> SyncRequest:
        """Read the query; a body is refused.

        Raises:
            RequestError: naming the parameter (or ``body``) and the value.
        """
        if body.strip():
            raise RequestError(
                "body",
                f"POST /api/sync takes no body, got {len(body):,} bytes; ask for a dry run in "
                "the query: ?dryRun=true",
            )
        return _validated(cls, _query(params), "query parameter", "POST /api/sync")


class HoldsQuery(BaseModel):
    """``GET /api/holds``: the holds of one status (pending unless asked), or all of them."""

    model_config = _Request

    status: Annotated[HoldStatus, Field(description="pending, approved, dropped or all")] = (
        "pending"
    )

    @property
    def ledger_status(self) -> str | None:
        """The status to ask the ledger for; None for every hold."""
        return None if self.status == "all" else self.status

    @classmethod
    def from_http(cls, params: Mapping[str, str]) -> HoldsQuery:
        """Read the query (a GET's body means nothing and is ignored).

        Raises:
            RequestError: naming the parameter and the value.
        """
        return _validated(cls, _query(params), "query parameter", "GET /api/holds")

    @classmethod
    def from_options(cls, status: str, names: Mapping[str, str]) -> HoldsQuery:
        """The same rules for the CLI; ``names`` maps ``status`` to the option to name.

        Raises:
            RequestError: naming the option and the value.
        """
        return _validated(cls, {"status": status}, "option", "holds list", names)


class ApprovalRequest(BaseModel):
    """``POST /api/holds/approve``: who approves, and optionally which run's holds only."""

    model_config = _Request

    approved_by: Annotated[Approver, Field(description="who approves: a name or e-mail")]
    run_id: Annotated[
        RunId | None, Field(description="only this run's holds (leave it out: every run's)")
    ] = None

    @field_validator("run_id", mode="before")
    @classmethod
    def _null_is_not_a_run(cls, value: object) -> object:
        # null must not widen "this run's holds" into "every pending hold".
        if value is None:
            raise ValueError("give a run id, or leave runId out to approve every pending hold")
        return value

    @classmethod
    def from_http(cls, params: Mapping[str, str], body: bytes) -> ApprovalRequest:
        """Read the JSON body (an empty body is an empty object); no query parameters.

        Raises:
            RequestError: naming the field (or ``body``) and the value; status 413 for a body
                over ``MAX_BODY_BYTES``.
        """
        if unknown := sorted(_query(params).items()):
            name, value = unknown[0]
            raise RequestError(
                name,
                f"{name}={_shown(value)}: unknown query parameter; POST /api/holds/approve takes "
                "none (approvedBy and runId go in the JSON body)",
            )
        if len(body) > MAX_BODY_BYTES:
            raise RequestError(
                "body",
                f"body: {len(body):,} bytes, the limit is {MAX_BODY_BYTES:,}; send "
                '{"approvedBy": "<name or e-mail>", "runId": "<optional run id>"}',
                413,
            )
        try:
            # pydantic's own JSON parser: it stops at a nesting depth of 200 with an error,
            # where json.loads would raise RecursionError.
            return cls.model_validate_json(body if body.strip() else b"{}")
        except ValidationError as error:
            raise _refusal(cls, error, "field", "the body") from None

    @classmethod
    def from_options(
        cls, approved_by: str, run_id: str | None, names: Mapping[str, str]
    ) -> ApprovalRequest:
        """The same rules for the CLI; ``names`` maps the fields to the options to name.

        Raises:
            RequestError: naming the option and the value.
        """
        values = {"approvedBy": approved_by}
        if run_id is not None:
            values["runId"] = run_id
        return _validated(cls, values, "option", "holds approve", names)

    def no_pending_holds(
        self, field: str = "runId", listing: str = "GET /api/holds?status=all"
    ) -> RequestError:
        """The answer when the named run has nothing pending: 404 naming the run (it may be
        mistyped, or its holds already decided)."""
        return RequestError(
            field,
            f"{field}={_shown(self.run_id)}: no pending holds of this run ({listing} lists "
            "every hold with its run and status)",
            404,
        )


_Model = TypeVar("_Model", bound=BaseModel)


def _query(params: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in params.items() if name != KEY_PARAMETER}


def _validated(
    model: type[_Model], data: Mapping[str, object], kind: str, what: str,
    names: Mapping[str, str] | None = None,
) -> _Model:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise _refusal(model, error, kind, what, names) from None


def _refusal(
    model: type[BaseModel], error: ValidationError, kind: str, what: str,
    names: Mapping[str, str] | None = None,
) -> RequestError:
    """One ``RequestError`` for every problem; its field is the first problem's.

    ``kind`` and ``what`` say where an unknown name was found: "query parameter" of
    "POST /api/sync", "field" of "the body".
    """
    problems = error.errors()
    fields = [_field(problem, names or {}) for problem in problems]
    message = "; ".join(
        _describe(model, problem, field, kind, what)
        for problem, field in zip(problems, fields, strict=True)
    )
    return RequestError(fields[0], message)


def _field(problem: ErrorDetails, names: Mapping[str, str]) -> str:
    field = ".".join(str(part) for part in problem["loc"]) if problem["loc"] else "body"
    return names.get(field, field)


def _describe(
    model: type[BaseModel], problem: ErrorDetails, field: str, kind: str, what: str
) -> str:
    problem_type = problem["type"]
    if problem_type == "json_invalid":
        return f"body: not valid JSON: {problem['msg'].removeprefix('Invalid JSON: ')}"
    if problem_type == "missing":
        return f"{field}: missing ({_description(model, problem)})"
    shown = f"{field}={_shown(problem.get('input'))}"
    if problem_type == "extra_forbidden":
        accepted = ", ".join(
            info.alias or name for name, info in model.model_fields.items()
        ) or "nothing"
        return f"{shown}: unknown {kind}; {what} takes {accepted}"
    if problem_type == "model_type":
        return f"{shown}: the body must be a JSON object like {{\"approvedBy\": \"...\"}}"
    return f"{shown}: {problem['msg'].removeprefix('Value error, ')}"


def _description(model: type[BaseModel], problem: ErrorDetails) -> str:
    alias = str(problem["loc"][-1]) if problem["loc"] else ""
    for name, info in model.model_fields.items():
        if alias in {name, info.alias}:
            return info.description or "required"
    return "required"


def _shown(value: object) -> str:
    """A value as JSON, cut short when long."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    if len(text) <= _SHOWN:
        return text
    length = len(value) if isinstance(value, str) else len(text)
    return f"{text[:_SHOWN]}… ({length:,} characters)"


# -- many tenants: /api/tenants… ----------------------------------------------------------------

MAX_TENANT_BODY_BYTES = 64 * 1024
"""The largest tenant record body read: rules with many ranges and main numbers fit easily."""
MAX_NUMBERS_BODY_BYTES = 1024 * 1024
"""The largest numbers CSV read (a line per range or number: tens of thousands of lines)."""


class TenantPath(BaseModel):
    """``/api/tenants/{tenantId}/…``: the customer tenant's id, a GUID."""

    model_config = _Request

    tenant_id: Annotated[UUID, Field(description="the customer tenant's id (a GUID)")]

    @property
    def key(self) -> str:
        """The tenant id as the registry keys it."""
        return str(self.tenant_id)

    @classmethod
    def from_route(cls, route_params: Mapping[str, str], what: str) -> TenantPath:
        """Read the route's ``tenantId``.

        Raises:
            RequestError: naming ``tenantId`` and the value.
        """
        return _validated(cls, {"tenantId": route_params.get("tenantId", "")}, "route", what)


class TenantChangeRequest(BaseModel):
    """``POST /api/tenants/{id}/activate|pause|resume|remove``: who changes it; on removal,
    whether the numbers the app assigned there are to be released (through holds)."""

    model_config = _Request

    changed_by: Annotated[Approver, Field(description="who changes it: a name or e-mail")]
    release_numbers: Annotated[
        Flag, Field(description="remove only: hold every number the app assigned for release")
    ] = False

    @classmethod
    def from_http(cls, params: Mapping[str, str], body: bytes, what: str) -> TenantChangeRequest:
        """Read the JSON body; no query parameters.

        Raises:
            RequestError: naming the field and the value (413 for a body over 4 KiB).
        """
        _no_query(params, what)
        return _json_body(cls, body, MAX_BODY_BYTES, '{"changedBy": "<name or e-mail>"}')

    @classmethod
    def from_options(cls, by: str) -> str:
        """The CLI's ``--by``, by the same rules as ``changedBy``.

        Raises:
            RequestError: naming ``--by`` and the value.
        """
        return _validated(cls, {"changedBy": by}, "option", "tenants",
                          {"changedBy": "--by"}).changed_by


class TenantAddRequest(BaseModel):
    """``POST /api/tenants``: who adds it, and the tenant's registry record (every field
    ``tenants add`` takes; the registry validates the record itself)."""

    model_config = ConfigDict(frozen=True, extra="allow", alias_generator=to_camel)

    created_by: Annotated[Approver, Field(description="who adds it: a name or e-mail")]

    @property
    def record_fields(self) -> dict[str, object]:
        """The registry record's fields, as sent (camelCase)."""
        return dict(self.model_extra or {})

    @classmethod
    def from_http(cls, params: Mapping[str, str], body: bytes) -> TenantAddRequest:
        """Read the JSON body; no query parameters.

        Raises:
            RequestError: naming the field and the value (413 for a body over 64 KiB).
        """
        _no_query(params, "POST /api/tenants")
        return _json_body(cls, body, MAX_TENANT_BODY_BYTES,
                          '{"createdBy": "...", "tenantId": "...", "displayName": "...", '
                          '"voiceGroupId": "..."}')


class NumbersImportRequest(BaseModel):
    """``PUT /api/tenants/{id}/numbers?changedBy=<who>``: the body is the numbers CSV."""

    model_config = _Request

    changed_by: Annotated[Approver, Field(description="who imports them: a name or e-mail")]

    @classmethod
    def from_http(cls, params: Mapping[str, str], body: bytes) -> tuple[NumbersImportRequest, str]:
        """The request and the CSV text.

        Raises:
            RequestError: naming the parameter (or ``body``) and the value.
        """
        request = _validated(cls, _query(params), "query parameter",
                             "PUT /api/tenants/{id}/numbers")
        if len(body) > MAX_NUMBERS_BODY_BYTES:
            raise RequestError("body", f"body: {len(body):,} bytes, the limit is "
                               f"{MAX_NUMBERS_BODY_BYTES:,}", 413)
        try:
            return request, body.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise RequestError("body", f"body: not UTF-8 text ({error.reason} at byte "
                               f"{error.start})") from None


def _no_query(params: Mapping[str, str], what: str) -> None:
    if unknown := sorted(_query(params).items()):
        name, value = unknown[0]
        raise RequestError(name, f"{name}={_shown(value)}: unknown query parameter; {what} "
                           "takes none (send the fields in the JSON body)")


def _json_body(model: type[_Model], body: bytes, limit: int, example: str) -> _Model:
    if len(body) > limit:
        raise RequestError("body", f"body: {len(body):,} bytes, the limit is {limit:,}; send "
                           f"{example}", 413)
    try:
        return model.model_validate_json(body if body.strip() else b"{}")
    except ValidationError as error:
        raise _refusal(model, error, "field", "the body") from None


# -- the audit trail: who is calling, and GET /api/tenants/{tenantId}/audit ----------------------

PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL-NAME"
"""Set by App Service authentication to the signed-in caller's name (UPN or e-mail)."""
MAX_PRINCIPAL = 256
MAX_AUDIT_USER = 256


class CallerPrincipal(BaseModel):
    """``X-MS-CLIENT-PRINCIPAL-NAME`` as App Service authentication sends it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[StrictStr, Field(min_length=1, max_length=MAX_PRINCIPAL),
                    AfterValidator(_text)]


def http_actor(
    headers: Mapping[str, str], given: str | None, *, app_service_authentication: bool
) -> Actor:
    """Who makes an HTTP call, for the audit trail: ``given`` (approvedBy, changedBy,
    createdBy) when the request names someone, else the signed-in caller, else
    ``function key``; the caller is the signed-in principal or ``function key``.

    The principal header counts only with App Service authentication on (the platform sets it
    then and drops one a client sends); otherwise anyone could send it, and it is ignored. The
    function key's *name* is not known here: the host puts it in a claim of the request's
    identities, which the Python worker's ``HttpRequest`` does not carry.

    Raises:
        RequestError: naming the header and the value when it is empty, too long or holds
            control characters.
    """
    principal: str | None = None
    if app_service_authentication:
        sent = next((value for name, value in headers.items()
                     if name.lower() == PRINCIPAL_HEADER.lower()), None)
        if sent is not None:
            try:
                principal = CallerPrincipal.model_validate({"name": sent.strip()}).name
            except ValidationError as error:
                problem = error.errors()[0]["msg"].removeprefix("Value error, ")
                raise RequestError(
                    PRINCIPAL_HEADER, f"{PRINCIPAL_HEADER}={_shown(sent)}: {problem}"
                ) from None
    return Actor.of(given, principal or FUNCTION_KEY)


def _since(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError("say a date (2026-11-01) or a time (2026-11-01T08:00:00Z)")
    text = value.strip()
    try:
        if len(text) == len("2026-11-01"):
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("say a date (2026-11-01) or a time (2026-11-01T08:00:00Z)") from None
    # A time without an offset is read as UTC, the time every entry is kept in.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


Since = Annotated[datetime, BeforeValidator(_since)]


class AuditQuery(BaseModel):
    """``GET /api/tenants/{tenantId}/audit?since=&user=``: the entries from a date, for one
    user (an Entra user id or a UPN, any case) or everyone."""

    model_config = _Request

    since: Annotated[Since | None, Field(
        description="a date or an ISO time; absent: the last 31 days")] = None
    user: Annotated[StrictStr | None, Field(
        min_length=1, max_length=MAX_AUDIT_USER, description="a user's id or UPN"),
        AfterValidator(lambda value: value if value is None else _text(value).strip()),
    ] = None

    @classmethod
    def from_http(cls, params: Mapping[str, str]) -> AuditQuery:
        """Read the query (a GET's body means nothing and is ignored).

        Raises:
            RequestError: naming the parameter and the value.
        """
        return _validated(cls, _query(params), "query parameter",
                          "GET /api/tenants/{tenantId}/audit")

    @classmethod
    def from_options(cls, since: str | None, user: str | None, names: Mapping[str, str]
                     ) -> AuditQuery:
        """The same rules for the CLI; ``names`` maps the fields to the options to name.

        Raises:
            RequestError: naming the option and the value.
        """
        values = {name: value for name, value in (("since", since), ("user", user))
                  if value is not None}
        return _validated(cls, values, "option", "audit", names)


# -- the helpdesk report: GET /api/tenants/{id}/report ------------------------------------------

MAX_REPORT_SEARCH = 256
"""The longest report search (a user principal name is at most 113 characters)."""


def _choices(kind: str, allowed: tuple[str, ...]) -> Callable[[object], object]:
    """A comma-separated list of ``kind`` values (any case, blanks ignored; empty: every one);
    an unknown value is named with what is allowed."""

    def read(value: object) -> object:
        if isinstance(value, str):
            chosen = [part.strip().lower() for part in value.split(",") if part.strip()]
            for part in chosen:
                if part not in allowed:
                    raise ValueError(f"{part!r} is not {kind}; say one or more of "
                                     f"{', '.join(allowed)} (separated by commas; empty: every "
                                     "one)")
            return frozenset(chosen)
        raise ValueError(f"say one or more of {', '.join(allowed)}, separated by commas")

    return read


def _report_format(value: object) -> object:
    if isinstance(value, str):
        chosen = value.strip().lower() or ReportFormat.HTML.value
        if chosen in {each.value for each in ReportFormat}:
            return chosen
    raise ValueError("say html, csv or json (empty: html)")


def _search(value: str) -> str:
    text = _text(value.strip())
    if len(text) > MAX_REPORT_SEARCH:
        raise ValueError(f"at most {MAX_REPORT_SEARCH} characters, got {len(text):,}")
    return text


class ReportQuery(BaseModel):
    """``GET /api/tenants/{id}/report?format=html|csv|json&outcome=&reason=&search=``: the
    helpdesk report's format (html unless asked) and which users it lists (``outcome`` and
    ``reason`` take one value or several separated by commas; ``search`` a part of a user or a
    number)."""

    model_config = _Request

    format: Annotated[ReportFormat, BeforeValidator(_report_format),
                      Field(description="html, csv or json")] = ReportFormat.HTML
    outcome: Annotated[
        frozenset[Outcome],
        BeforeValidator(_choices("an outcome", tuple(o.value for o in Outcome))),
        Field(description="only users with this outcome (several: separated by commas)"),
    ] = frozenset()
    reason: Annotated[
        frozenset[Reason],
        BeforeValidator(_choices("a reason code", tuple(r.value for r in Reason))),
        Field(description="only users with this reason code (several: separated by commas)"),
    ] = frozenset()
    search: Annotated[StrictStr, AfterValidator(_search),
                      Field(description="a part of a user principal name, user id or number")
                      ] = ""

    @property
    def filters(self) -> ReportFilters:
        """The filters the report builder takes."""
        return ReportFilters(outcomes=self.outcome, reasons=self.reason, search=self.search)

    @classmethod
    def from_http(cls, params: Mapping[str, str]) -> ReportQuery:
        """Read the query (a GET's body is ignored).

        Raises:
            RequestError: naming the parameter and the value (an unknown parameter too).
        """
        return _validated(cls, _query(params), "query parameter",
                          "GET /api/tenants/{tenantId}/report")

    @classmethod
    def from_options(cls, values: Mapping[str, str | None], names: Mapping[str, str]
                     ) -> ReportQuery:
        """The same rules for the CLI: ``values`` by field name (None: not given), ``names``
        maps the fields to the options to name.

        Raises:
            RequestError: naming the option and the value.
        """
        given = {name: value for name, value in values.items() if value is not None}
        return _validated(cls, given, "option", "report", names)


# -- who approves, behind App Service Authentication ---------------------------------------------

def signed_in_principal(headers: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    """The person App Service Authentication signed in (``http_actor``'s caller), or None.

    Believed only while authentication runs in front of the app: App Service sets
    ``WEBSITE_AUTH_ENABLED=True`` then (the setting ``AppSettings.app_service_authentication``
    reads); without it, anyone holding a function key could send the header.

    Raises:
        RequestError: naming the principal header when its value is unusable.
    """
    enabled = environ.get("WEBSITE_AUTH_ENABLED", "").strip().lower() in {"true", "1", "yes"}
    caller = http_actor(headers, None, app_service_authentication=enabled).caller
    return None if caller == FUNCTION_KEY else caller


def with_signed_in_approver(body: bytes, principal: str | None) -> bytes:
    """An approval's body with ``approvedBy`` set to the signed-in person: who approves is who
    signed in, whatever the body says. Unchanged without a principal, or when the body is not
    a JSON object (its validation then says what is wrong with it)."""
    if principal is None or len(body) > MAX_BODY_BYTES:  # an oversized body is refused as it is
        return body
    try:
        fields = json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError):
        return body
    if not isinstance(fields, dict):
        return body
    return json.dumps({**fields, "approvedBy": principal}).encode("utf-8")
