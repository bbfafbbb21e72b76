"""The export document (``shared.core.tenant_export``): what it holds, that it reads back as
written, and that a file it cannot trust is refused naming the field and the value."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.core.directory import Claim
from shared.core.outcomes import Outcome, Reason
from shared.core.policy_planner import GrantedPolicy, PolicyGrant
from shared.core.records import Hold, UserStatus
from shared.core.spreadsheet_cells import spreadsheet_safe
from shared.core.tenant_export import (
    EXPORT_SCHEMA,
    ExportError,
    TenantExport,
    build_export,
    read_export,
    statuses_csv,
)

TENANT = "7e1b2c3d-0000-4000-8000-000000000001"
AT = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)


def example() -> TenantExport:
    return build_export(
        TENANT, AT,
        claims=[
            Claim("+31855363012", "bob", "bob@contoso.example", "run-1", 1, assigned=True,
                  release_pending_since=AT - timedelta(hours=2)),
            Claim("+31855363011", "ann", "ann@contoso.example", "run-1", 0, assigned=True),
            Claim("+31855363013", "cara", "cara@contoso.example", "run-1", 2,
                  released_at=AT - timedelta(days=1)),
        ],
        statuses=[
            UserStatus("bob", "bob@contoso.example", Outcome.ASSIGNED, Reason.ASSIGNED,
                       "+31855363012", "Bob got his number", "run-1", 1, AT,
                       first_seen=AT - timedelta(days=3)),
            UserStatus("ann", "=HYPERLINK(\"http://x\")", Outcome.FAILED,
                       Reason.NOT_LICENSED, None, "no Teams Phone licence, yet", "run-1", 0, AT,
                       attempts=2, retry_at=AT + timedelta(hours=1)),
        ],
        grants=[PolicyGrant(
            "dan", "dan@contoso.example", "contoso.example", "+31855363010",
            (GrantedPolicy("CallingLineIdentity", "Contoso Main", "cli-1", True),),
            AT - timedelta(days=2), verified=True,
        )],
        holds=[Hold("run-2", "erik", "erik@contoso.example", "+31855363014",
                    "mass_unassign_guard", "held", "pending", AT)],
    )


def test_an_export_names_its_schema_tenant_time_and_counts_and_sorts_its_rows() -> None:
    body = example().to_json()

    assert body["schema"] == EXPORT_SCHEMA == "teams-number-sync-export/1"
    assert body["tenantId"] == TENANT
    assert body["exportedAt"] == "2026-11-29T02:00:00Z"
    assert body["counts"] == {"claims": 3, "statuses": 2, "grants": 1, "holds": 1}
    claims = body["claims"]
    assert isinstance(claims, list)
    assert [c["number"] for c in claims] == ["+31855363011", "+31855363012", "+31855363013"]
    assert claims[1]["assignedByApp"] is True
    assert claims[1]["releasePendingSince"] == "2026-11-29T00:00:00Z"
    statuses = body["statuses"]
    assert isinstance(statuses, list)
    assert [s["userId"] for s in statuses] == ["ann", "bob"]  # in read order


def test_an_export_reads_back_as_it_was_written() -> None:
    written = example()

    read = read_export(written.to_text(), "tenant.json")

    assert read == written
    assert [c.to_claim() for c in read.claims][1] == Claim(
        "+31855363012", "bob", "bob@contoso.example", "run-1", 1, assigned=True,
        release_pending_since=AT - timedelta(hours=2))
    assert read.grants[0].to_grant().policies[0].assigned_by_app is True
    assert read.holds[0].to_hold().status == "pending"


def _edited(change: dict[str, object]) -> str:
    body = example().to_json()
    body.update(change)
    return json.dumps(body)


def _with_claim(**fields: object) -> str:
    body = example().to_json()
    claims = body["claims"]
    assert isinstance(claims, list)
    claims[0] = {**claims[0], **fields}
    return json.dumps(body)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "tenant.json: not JSON: Expecting property name"),
        ("[1, 2]", "tenant.json: (top level): a JSON object is expected, got list"),
        (_edited({"schema": "teams-number-sync-export/2"}),
         "tenant.json: schema='teams-number-sync-export/2': not an export this app reads"),
        (json.dumps({"tenantId": TENANT}), "tenant.json: schema=missing"),
        (_edited({"counts": {"claims": 4, "statuses": 2, "grants": 1, "holds": 1}}),
         "counts.claims=4: the file has 3 claims"),
        (_edited({"tenantId": ""}), "tenantId='': String should have at least 1 character"),
        (_edited({"exportedAt": "2026-11-29T02:00:00"}),
         "exportedAt='2026-11-29T02:00:00': Input should have timezone info"),
        (_edited({"extra": 1}), "extra: not a field of an export"),
        (_with_claim(number="0855363011"),
         "claims.0.number='0855363011': must be E.164 with a leading +"),
        (_with_claim(assignedByApp="maybe"),
         "claims.0.assignedByApp='maybe': Input should be a valid boolean"),
        (_with_claim(holderUserId=None), "claims.0.holderUserId=None"),
        (_with_claim(number="+31855363012"), "claims: number='+31855363012' appears twice"),
    ],
)
def test_a_file_it_cannot_trust_is_refused_naming_the_field_and_value(
    text: str, says: str
) -> None:
    with pytest.raises(ExportError) as refused:
        read_export(text, "tenant.json")

    assert says in str(refused.value)
    assert str(refused.value).startswith("tenant.json: ")


def test_a_stored_row_the_document_cannot_hold_is_named() -> None:
    with pytest.raises(ExportError, match=r"stored rows of tenant .*: number='12345'"):
        build_export(TENANT, AT, claims=[Claim("12345", "ann", "", "", 0)], statuses=[],
                     grants=[], holds=[])


def test_the_statuses_csv_has_a_header_every_user_and_no_formula_cells() -> None:
    rows = list(csv.DictReader(io.StringIO(statuses_csv(example().statuses))))

    assert [row["userId"] for row in rows] == ["ann", "bob"]
    ann, bob = rows
    assert ann["userPrincipalName"] == "'=HYPERLINK(\"http://x\")"  # shown as text
    assert (ann["outcome"], ann["reason"], ann["number"]) == ("failed", "not_licensed", "")
    assert ann["retryAt"] == "2026-11-29T03:00:00Z"
    assert bob["number"] == "+31855363012"  # a phone number stays as it is
    assert bob["firstSeen"] == "2026-11-26T02:00:00Z"


@pytest.mark.parametrize(
    ("value", "shown"),
    [("+31855363012", "+31855363012"), ("+31 85 536 3012;ext=12", "+31 85 536 3012;ext=12"),
     ("+1+cmd|calc", "'+1+cmd|calc"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
     ("ann@contoso.example", "ann@contoso.example")],
)
def test_a_cell_that_would_start_a_formula_is_shown_as_text(value: str, shown: str) -> None:
    assert spreadsheet_safe(value) == shown
