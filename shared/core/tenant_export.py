"""A tenant's export: its claims, statuses, policy grants and holds as one versioned document.

``python -m shared.cli export TENANT`` writes it; ``restore TENANT FILE`` reads it back after a
storage account was lost (``shared.core.tenant_restore`` decides what is restored). The
document is JSON with a schema name that carries its version (``EXPORT_SCHEMA``), the tenant,
when it was taken and how many rows of each kind it holds, so a truncated or hand-edited file
is refused rather than half restored. Pure: (de)serialisation and validation only; the shell
gathers the rows and reads and writes the file.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Annotated, Final, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shared.core.directory import Claim
from shared.core.outcomes import Outcome, Reason
from shared.core.policy_planner import GrantedPolicy, PolicyGrant
from shared.core.records import Hold, UserStatus
from shared.core.spreadsheet_cells import spreadsheet_safe

EXPORT_SCHEMA: Final = "teams-number-sync-export/1"
"""The schema this app writes and reads; a new incompatible shape gets a new number."""

#: A number as the claims table keys it: E.164, with an extension when the tenant allows them.
_NUMBER = re.compile(r"\+[1-9][0-9]{1,14}(;ext=[0-9]{1,10})?")

NonEmpty = Annotated[str, Field(min_length=1)]


def _e164(value: str) -> str:
    if not _NUMBER.fullmatch(value):
        raise ValueError("must be E.164 with a leading + (and ;ext=… at most)")
    return value


E164 = Annotated[str, AfterValidator(_e164)]
"""A number as the app stores it: E.164 with a leading +, an extension at most."""
HOLD_STATUSES: Final = ("pending", "approved", "dropped")


class ExportError(ValueError):
    """An export file that cannot be read back, naming the field and the value that are wrong."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True,
                              extra="forbid")


class ExportedClaim(_Model):
    """A row of ``numberclaims``: who a number belongs to, and the app's ownership marker."""

    number: E164
    holder_user_id: NonEmpty
    holder_upn: str = ""
    run_id: str = ""
    read_position: Annotated[int, Field(ge=0)] = 0
    assigned_by_app: bool
    release_pending_since: AwareDatetime | None = None
    released_at: AwareDatetime | None = None
    assigning_since: AwareDatetime | None = None

    @classmethod
    def of(cls, claim: Claim) -> Self:
        """The claim as exported."""
        return cls(
            number=claim.number, holder_user_id=claim.holder_user_id,
            holder_upn=claim.holder_upn, run_id=claim.run_id,
            read_position=claim.read_position, assigned_by_app=claim.assigned,
            release_pending_since=claim.release_pending_since, released_at=claim.released_at,
            assigning_since=claim.assigning_since,
        )

    def to_claim(self) -> Claim:
        """The claim as the stores and the planner know it."""
        return Claim(
            number=self.number, holder_user_id=self.holder_user_id, holder_upn=self.holder_upn,
            run_id=self.run_id, read_position=self.read_position, assigned=self.assigned_by_app,
            release_pending_since=self.release_pending_since, released_at=self.released_at,
            assigning_since=self.assigning_since,
        )


class ExportedStatus(_Model):
    """A row of ``userstatus``: a user's latest outcome, as the helpdesk saw it."""

    user_id: NonEmpty
    user_principal_name: str = ""
    outcome: Outcome
    reason: Reason
    number: str | None = None
    message: str = ""
    run_id: str = ""
    read_position: Annotated[int, Field(ge=0)] = 0
    updated_at: AwareDatetime
    first_seen: AwareDatetime | None = None
    attempts: Annotated[int, Field(ge=0)] = 0
    retry_at: AwareDatetime | None = None
    waiting_since: AwareDatetime | None = None

    @classmethod
    def of(cls, status: UserStatus) -> Self:
        """The status as exported."""
        return cls(
            user_id=status.user_id, user_principal_name=status.user_principal_name,
            outcome=status.outcome, reason=status.reason, number=status.number,
            message=status.message, run_id=status.run_id, read_position=status.read_position,
            updated_at=status.updated_at, first_seen=status.first_seen,
            attempts=status.attempts, retry_at=status.retry_at,
            waiting_since=status.waiting_since,
        )


class ExportedPolicy(_Model):
    """One policy of a grant, with the ownership marker (``assignedByApp``)."""

    policy_type: NonEmpty
    name: NonEmpty
    policy_id: NonEmpty
    assigned_by_app: bool


class ExportedGrant(_Model):
    """A row of ``policygrants``: the main-number policies the app granted one user."""

    user_id: NonEmpty
    user_principal_name: str = ""
    domain: NonEmpty
    main_number: E164
    policies: tuple[ExportedPolicy, ...]
    granted_at: AwareDatetime
    verified: bool

    @classmethod
    def of(cls, grant: PolicyGrant) -> Self:
        """The grant as exported."""
        return cls(
            user_id=grant.user_id, user_principal_name=grant.user_principal_name,
            domain=grant.domain, main_number=grant.main_number,
            policies=tuple(
                ExportedPolicy(policy_type=p.policy_type, name=p.name, policy_id=p.policy_id,
                               assigned_by_app=p.assigned_by_app)
                for p in grant.policies
            ),
            granted_at=grant.granted_at, verified=grant.verified,
        )

    def to_grant(self) -> PolicyGrant:
        """The grant as the store and the policy planner know it."""
        return PolicyGrant(
            user_id=self.user_id, user_principal_name=self.user_principal_name,
            domain=self.domain, main_number=self.main_number,
            policies=tuple(
                GrantedPolicy(p.policy_type, p.name, p.policy_id, p.assigned_by_app)
                for p in self.policies
            ),
            granted_at=self.granted_at, verified=self.verified,
        )


class ExportedHold(_Model):
    """A row of ``holds``: an unassignment the guard held, and what a person decided."""

    run_id: NonEmpty
    user_id: NonEmpty
    user_principal_name: str = ""
    number: NonEmpty
    reason: str
    message: str = ""
    status: str
    created_at: AwareDatetime
    decided_by: str | None = None
    decided_at: AwareDatetime | None = None

    @field_validator("status")
    @classmethod
    def _is_status(cls, value: str) -> str:
        if value not in HOLD_STATUSES:
            raise ValueError(f"must be one of {', '.join(HOLD_STATUSES)}")
        return value

    @classmethod
    def of(cls, hold: Hold) -> Self:
        """The hold as exported."""
        return cls(
            run_id=hold.run_id, user_id=hold.user_id,
            user_principal_name=hold.user_principal_name, number=hold.number,
            reason=hold.reason, message=hold.message,
            status=hold.status,
            created_at=hold.created_at, decided_by=hold.decided_by, decided_at=hold.decided_at,
        )

    def to_hold(self) -> Hold:
        """The hold as the ledger knows it."""
        return Hold(
            run_id=self.run_id, user_id=self.user_id,
            user_principal_name=self.user_principal_name, number=self.number,
            reason=self.reason, message=self.message, status=self.status,
            created_at=self.created_at, decided_by=self.decided_by, decided_at=self.decided_at,
        )


class ExportCounts(_Model):
    """How many rows of each kind the document holds (checked against its lists on reading)."""

    claims: Annotated[int, Field(ge=0)]
    statuses: Annotated[int, Field(ge=0)]
    grants: Annotated[int, Field(ge=0)]
    holds: Annotated[int, Field(ge=0)]

    def to_json(self) -> dict[str, int]:
        """The counts as JSON (the export and restore summaries)."""
        return {"claims": self.claims, "statuses": self.statuses, "grants": self.grants,
                "holds": self.holds}


class TenantExport(_Model):
    """The whole export of one tenant (``EXPORT_SCHEMA``)."""

    schema_: Literal["teams-number-sync-export/1"] = Field(alias="schema")
    tenant_id: NonEmpty
    exported_at: AwareDatetime
    counts: ExportCounts
    claims: tuple[ExportedClaim, ...] = ()
    statuses: tuple[ExportedStatus, ...] = ()
    grants: tuple[ExportedGrant, ...] = ()
    holds: tuple[ExportedHold, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        actual = {"claims": len(self.claims), "statuses": len(self.statuses),
                  "grants": len(self.grants), "holds": len(self.holds)}
        for kind, count in self.counts.to_json().items():
            if actual[kind] != count:
                raise ValueError(
                    f"counts.{kind}={count}: the file has {actual[kind]} {kind} (cut short or "
                    f"edited by hand?)")
        _unique("claims", "number", (claim.number for claim in self.claims))
        _unique("statuses", "userId", (status.user_id for status in self.statuses))
        _unique("grants", "userId", (grant.user_id for grant in self.grants))
        _unique("holds", "runId|userId",
                (f"{hold.run_id}|{hold.user_id}" for hold in self.holds))
        return self

    def to_json(self) -> dict[str, object]:
        """The document as JSON (camelCase, times in ISO 8601 with their offset)."""
        data: dict[str, object] = self.model_dump(mode="json", by_alias=True)
        return data

    def to_text(self) -> str:
        """The document as the file holds it: indented JSON, ending in a newline."""
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"


def _unique(kind: str, field: str, keys: Iterable[str]) -> None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise ValueError(f"{kind}: {field}={key!r} appears twice")
        seen.add(key)


def build_export(
    tenant_id: str,
    exported_at: datetime,
    *,
    claims: Iterable[Claim],
    statuses: Iterable[UserStatus],
    grants: Iterable[PolicyGrant],
    holds: Iterable[Hold],
) -> TenantExport:
    """The export of the rows given, each kind in a stable order (claims by number, statuses in
    read order, grants by user, holds by run and user), so two exports of the same state are
    the same text but for ``exportedAt``.

    Raises:
        ExportError: a stored row the document cannot hold (a number that is not E.164, a time
            without its offset), named by its field.
    """
    try:
        claim_rows = tuple(ExportedClaim.of(c) for c in sorted(claims, key=lambda c: c.number))
        status_rows = tuple(ExportedStatus.of(s) for s in sorted(
            statuses, key=lambda s: (s.read_position, s.user_principal_name, s.user_id)))
        grant_rows = tuple(ExportedGrant.of(g) for g in sorted(grants, key=lambda g: g.user_id))
        hold_rows = tuple(ExportedHold.of(h) for h in sorted(holds, key=lambda h: h.key))
        return TenantExport(
            schema=EXPORT_SCHEMA, tenant_id=tenant_id, exported_at=exported_at,
            counts=ExportCounts(claims=len(claim_rows), statuses=len(status_rows),
                                grants=len(grant_rows), holds=len(hold_rows)),
            claims=claim_rows, statuses=status_rows, grants=grant_rows, holds=hold_rows,
        )
    except ValidationError as error:
        raise ExportError(f"stored rows of tenant {tenant_id}: {explain_export_error(error)}"
                          ) from None


def read_export(text: str, source: str = "export") -> TenantExport:
    """Parse an export file's text.

    The schema is looked at first: a file of another version is refused as such, not with a
    list of fields it lacks.

    Raises:
        ExportError: naming the file, the field (its JSON path) and its value.
    """
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ExportError(f"{source}: not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ExportError(f"{source}: (top level): a JSON object is expected, got "
                          f"{type(data).__name__}")
    schema = data.get("schema")
    if schema != EXPORT_SCHEMA:
        shown = "missing" if "schema" not in data else f"{schema!r}"
        raise ExportError(
            f"{source}: schema={shown}: not an export this app reads (it reads "
            f"{EXPORT_SCHEMA!r}, as 'export' writes it)")
    try:
        return TenantExport.model_validate(data)
    except ValidationError as error:
        raise ExportError(f"{source}: {explain_export_error(error)}") from None


def explain_export_error(error: ValidationError) -> str:
    """The first problem of a failed validation as ``field.path=value: problem`` (a value too
    large to read in one line, an object or a list, is left out)."""
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
    message = problem["msg"].removeprefix("Value error, ")
    kind = problem["type"]
    if kind == "missing":
        return f"{where}: missing"
    if kind == "extra_forbidden":
        return f"{where}: not a field of an export"
    value = problem.get("input")
    if isinstance(value, dict | list | tuple):
        return f"{where}: {message}"
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{where}={shown}: {message}"


#: The columns of the statuses CSV, in order (the helpdesk's spreadsheet).
STATUS_COLUMNS: Final = (
    "userId", "userPrincipalName", "outcome", "reason", "number", "message", "runId",
    "updatedAt", "firstSeen", "attempts", "retryAt", "waitingSince",
)

#: A cell a spreadsheet would run as a formula starts with one of these ...
#: ... but a phone number is shown as text without the guard.




def statuses_csv(statuses: Sequence[ExportedStatus]) -> str:
    """The statuses as CSV with a header row (``STATUS_COLUMNS``), times in ISO 8601, every
    directory value made spreadsheet-safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(STATUS_COLUMNS)
    for status in statuses:
        row = status.model_dump(mode="json", by_alias=True)
        writer.writerow([spreadsheet_safe("" if row[c] is None else str(row[c]))
                         for c in STATUS_COLUMNS])
    return out.getvalue()
