"""The helpdesk report built from stored statuses: who comes first, what "since" is, what the
filters let through, and what the CSV and the page make of hostile directory values."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from shared.core.helpdesk_report import (
    Attention,
    ReportFilters,
    ReportFormat,
    SinceMeaning,
    build_report,
    render_csv,
)
from shared.core.outcomes import Outcome, Reason
from shared.core.records import Hold, RunRecord, UserStatus
from shared.core.report_page import CONTENT_SECURITY_POLICY, render_html, render_report
from shared.core.spreadsheet_cells import spreadsheet_safe
from shared.core.tenant_registry import TenantHealth, TenantHealthState

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
TENANT = "0f58bdad-b745-55dc-a72e-eb04ea6d3565"
HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">'


def _status(upn: str, outcome: Outcome, reason: Reason, *, number: str | None = None,
            message: str = "", hours_ago: float = 1, **fields: object) -> UserStatus:
    return UserStatus(
        user_id=f"id-{upn}", user_principal_name=upn, outcome=outcome, reason=reason,
        number=number, message=message or f"{outcome.value} because {reason.value}",
        run_id="20261129T110000.000000Z-00000001", read_position=0,
        updated_at=NOW - timedelta(hours=hours_ago), **fields,  # type: ignore[arg-type]
    )


STATUSES = [
    _status("zoe@contoso.example", Outcome.ASSIGNED, Reason.ASSIGNED, number="+31855363011",
            hours_ago=30),
    _status("yan@contoso.example", Outcome.SKIPPED, Reason.NOT_LICENSED, number="+31855363012",
            waiting_since=NOW - timedelta(hours=5), retry_at=NOW + timedelta(hours=1),
            attempts=2),
    _status("xia@contoso.example", Outcome.FAILED, Reason.GRAPH_FORBIDDEN,
            number="+31855363013", message="Grant TeamsTelephoneNumber.ReadWrite.All.",
            attempts=3, retry_at=NOW + timedelta(minutes=30)),
    _status("wim@contoso.example", Outcome.HELD, Reason.MASS_UNASSIGN_GUARD,
            number="+31855363014"),
    _status("vic@contoso.example", Outcome.SKIPPED, Reason.INVALID_FORMAT,
            message="telephoneNumber '085 536 3015' is not in E.164 format"),
    _status("ann@contoso.example", Outcome.FAILED, Reason.NOT_LICENSED, number="+31855363016",
            waiting_since=NOW - timedelta(hours=26)),
    _status("bea@contoso.example", Outcome.ASSIGNED, Reason.READ_BACK_PENDING,
            number="+31855363017", waiting_since=NOW - timedelta(minutes=20)),
    _status("cas@contoso.example", Outcome.KEPT, Reason.ALREADY_ASSIGNED,
            number="+31855363018"),
]
HOLDS = [
    Hold("run-b", "id-wim", "wim@contoso.example", "+31855363014", "left_group", "held",
         "pending", NOW - timedelta(hours=2)),
    Hold("run-a", "id-old", "old@contoso.example", "+31855363019", "left_group", "held",
         "approved", NOW - timedelta(days=3), "ops", NOW - timedelta(days=2)),
    Hold("run-a", "id-owl", "owl@contoso.example", "+31855363020", "left_group", "held",
         "pending", NOW - timedelta(hours=4)),
]
HEALTH = TenantHealth(TENANT, TenantHealthState.HEALTHY, "The last run completed.",
                      NOW - timedelta(days=2), NOW - timedelta(minutes=5))
RUN = RunRecord("20261129T110000.000000Z-00000001", NOW - timedelta(hours=1),
                NOW - timedelta(minutes=59), "completed", "", {"assign": 1, "skip": 2})


def test_failed_users_come_first_then_the_waiting_ones_then_the_rest_by_user() -> None:
    report = build_report(tenant_id=TENANT, display_name="Contoso", statuses=STATUSES,
                          holds=HOLDS, health=HEALTH, last_run=RUN, now=NOW)

    assert [(row.user_principal_name.split("@")[0], row.attention.value)
            for row in report.rows] == [
        ("ann", "failed"), ("xia", "failed"),
        ("bea", "waiting"), ("wim", "waiting"), ("yan", "waiting"),
        ("cas", "settled"), ("vic", "settled"), ("zoe", "settled"),
    ]


def test_since_is_when_the_wait_began_the_last_attempt_or_when_the_outcome_was_recorded() -> None:
    report = build_report(tenant_id=TENANT, display_name="Contoso", statuses=STATUSES,
                          holds=HOLDS, health=HEALTH, last_run=RUN, now=NOW)
    rows = {row.user_principal_name.split("@")[0]: row for row in report.rows}

    # A wait for Teams counts from when it began, failed after the patience or not.
    assert (rows["yan"].since, rows["yan"].since_meaning) == (
        NOW - timedelta(hours=5), SinceMeaning.WAITING)
    assert (rows["ann"].since, rows["ann"].since_meaning) == (
        NOW - timedelta(hours=26), SinceMeaning.WAITING)
    assert (rows["bea"].since, rows["bea"].since_meaning) == (
        NOW - timedelta(minutes=20), SinceMeaning.WAITING)
    assert (rows["xia"].since, rows["xia"].since_meaning, rows["xia"].attempts) == (
        NOW - timedelta(hours=1), SinceMeaning.LAST_ATTEMPT, 3)
    assert (rows["zoe"].since, rows["zoe"].since_meaning) == (
        NOW - timedelta(hours=30), SinceMeaning.CHANGED)


def test_the_summary_counts_the_whole_tenant_whatever_the_filters() -> None:
    report = build_report(tenant_id=TENANT, display_name="Contoso", statuses=STATUSES,
                          holds=HOLDS, health=HEALTH, last_run=RUN, now=NOW,
                          filters=ReportFilters(outcomes=frozenset({Outcome.FAILED})))
    summary = report.summary

    assert [row.user_principal_name for row in report.rows] == [
        "ann@contoso.example", "xia@contoso.example"]
    assert (summary.users, summary.shown) == (8, 2)
    assert summary.by_outcome == {Outcome.ASSIGNED: 2, Outcome.KEPT: 1, Outcome.SKIPPED: 2,
                                  Outcome.UNASSIGNED: 0, Outcome.HELD: 1, Outcome.FAILED: 2}
    assert summary.by_attention == {Attention.FAILED: 2, Attention.WAITING: 3,
                                    Attention.SETTLED: 3}
    # Only the pending holds count, oldest first.
    assert (summary.pending_holds.count, summary.pending_holds.oldest,
            summary.pending_holds.runs) == (2, NOW - timedelta(hours=4), ("run-a", "run-b"))
    assert (summary.health, summary.last_run) == (HEALTH, RUN)


@pytest.mark.parametrize(("filters", "expected"), [
    (ReportFilters(reasons=frozenset({Reason.NOT_LICENSED})), {"ann", "yan"}),
    (ReportFilters(outcomes=frozenset({Outcome.SKIPPED}),
                   reasons=frozenset({Reason.NOT_LICENSED})), {"yan"}),
    (ReportFilters(search="XIA@"), {"xia"}),
    (ReportFilters(search="id-zoe"), {"zoe"}),
    (ReportFilters(search="+31855363018"), {"cas"}),
    (ReportFilters(search="85 536-3014"), {"wim"}),  # the digits, as a person types them
    (ReportFilters(search="nobody"), set()),
])
def test_the_filters_choose_users_by_outcome_reason_and_search(
    filters: ReportFilters, expected: set[str]
) -> None:
    report = build_report(tenant_id=TENANT, display_name="Contoso", statuses=STATUSES,
                          holds=[], health=None, last_run=None, now=NOW, filters=filters)

    assert {row.user_principal_name.split("@")[0] for row in report.rows} == expected


@pytest.mark.parametrize(("cell", "shown"), [
    ("+31855363011", "+31855363011"),  # a number the app assigns reads back exactly
    ("+31855363011;ext=12", "+31855363011;ext=12"),
    ('=HYPERLINK("http://evil.example","+31")', '\'=HYPERLINK("http://evil.example","+31")'),
    ("+31 85 SUM(A1)", "'+31 85 SUM(A1)"),
    ("+1+1", "'+1+1"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("ann@contoso.example", "ann@contoso.example"),
])
def test_a_csv_cell_that_would_start_a_formula_is_text(cell: str, shown: str) -> None:
    assert spreadsheet_safe(cell) == shown


def test_the_csv_has_a_line_per_user_with_hostile_values_made_text() -> None:
    hostile = _status("=cmd|'/c calc'!A1@contoso.example", Outcome.SKIPPED,
                      Reason.INVALID_FORMAT, message="-telephoneNumber '=1+1' is not E.164")
    report = build_report(tenant_id=TENANT, display_name="Contoso",
                          statuses=[*STATUSES[:1], hostile], holds=[], health=None,
                          last_run=None, now=NOW)

    lines = list(csv.reader(io.StringIO(render_csv(report))))

    assert lines[0][:6] == ["user", "user id", "number", "outcome", "reason", "what to do"]
    by_user = {line[1]: line for line in lines[1:]}
    assert by_user["id-zoe@contoso.example"][2] == "+31855363011"
    assert by_user[hostile.user_id][0] == "'=cmd|'/c calc'!A1@contoso.example"
    assert by_user[hostile.user_id][5] == "'-telephoneNumber '=1+1' is not E.164"
    assert by_user[hostile.user_id][8] == "since"


def test_the_page_shows_hostile_directory_values_as_text() -> None:
    hostile = _status('<svg onload="window.__pwned=2">@x.example', Outcome.SKIPPED,
                      Reason.INVALID_FORMAT,
                      message="telephoneNumber '+31</td><script>window.__pwned=3</script>' "
                              "is not in E.164 format")
    page = render_html(build_report(
        tenant_id=TENANT, display_name=HOSTILE_NAME, statuses=[hostile], holds=[],
        health=None, last_run=None, now=NOW))

    assert "<img" not in page
    assert "<svg" not in page
    assert page.count("<script>") == 1  # the page's own
    assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in page
    assert "&lt;/td&gt;&lt;script&gt;window.__pwned=3&lt;/script&gt;" in page


def test_the_policy_allows_exactly_the_pages_own_style_and_script() -> None:
    page = render_html(build_report(tenant_id=TENANT, display_name="Contoso",
                                    statuses=STATUSES, holds=HOLDS, health=HEALTH,
                                    last_run=RUN, now=NOW))
    style = re.search(r"<style>(.*?)</style>", page, re.DOTALL)
    script = re.search(r"<script>(.*?)</script>", page, re.DOTALL)
    assert style is not None
    assert script is not None

    def digest(text: str) -> str:
        return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    assert f"style-src 'sha256-{digest(style.group(1))}'" in CONTENT_SECURITY_POLICY
    assert f"script-src 'sha256-{digest(script.group(1))}'" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    # Nothing is loaded from anywhere: no URL in a src or href, no stylesheet link.
    assert not re.search(r"\b(src|href)=", page)


def test_every_format_has_its_content_type_and_file_name() -> None:
    report = build_report(tenant_id=TENANT, display_name="Contoso", statuses=STATUSES,
                          holds=HOLDS, health=HEALTH, last_run=RUN, now=NOW,
                          filters=ReportFilters(search="xia"))

    rendered = {fmt: render_report(report, fmt) for fmt in ReportFormat}

    assert {fmt.value: (r.content_type, r.filename) for fmt, r in rendered.items()} == {
        "html": ("text/html", f"report-{TENANT}.html"),
        "csv": ("text/csv", f"report-{TENANT}.csv"),
        "json": ("application/json", f"report-{TENANT}.json"),
    }
    body = json.loads(rendered[ReportFormat.JSON].body)
    assert body["filters"] == {"outcome": [], "reason": [], "search": "xia"}
    assert body["summary"]["failed"] == 2
    assert body["summary"]["pendingHolds"]["count"] == 2
    assert body["summary"]["health"]["state"] == "healthy"
    assert body["summary"]["lastRun"]["outcome"] == "completed"
    assert [user["userPrincipalName"] for user in body["users"]] == ["xia@contoso.example"]
    assert body["users"][0]["whatToDo"] == "Grant TeamsTelephoneNumber.ReadWrite.All."
    assert body["users"][0]["sinceMeaning"] == "last_attempt"


def test_a_tenant_without_statuses_runs_or_health_has_a_report_that_says_so() -> None:
    report = build_report(tenant_id=TENANT, display_name="New", statuses=[], holds=[],
                          health=None, last_run=None, now=NOW)

    page = render_html(report)

    assert (report.summary.users, report.rows) == (0, ())
    assert "not been synced" in page
    assert "not checked yet" in page
    assert "no recorded outcome yet" in page
