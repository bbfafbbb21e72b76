"""What ``GET /api/tenants/{id}/report`` and ``shared.cli report`` accept: the format and the
filters, checked at the edge, a refusal naming the field (or option) and the value."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from shared import cli as cli_module
from shared.cli import cli
from shared.core.helpdesk_report import ReportFilters, ReportFormat
from shared.core.outcomes import Outcome, Reason
from shared.http_requests import ReportQuery, RequestError

TENANT = "0f58bdad-b745-55dc-a72e-eb04ea6d3565"


def test_the_report_is_html_of_every_user_unless_asked() -> None:
    query = ReportQuery.from_http({"code": "the-function-key"})

    assert (query.format, query.filters) == (ReportFormat.HTML, ReportFilters())


def test_format_and_filters_are_read_in_any_case_and_outcomes_by_commas() -> None:
    query = ReportQuery.from_http({"format": " CSV ", "outcome": "Failed, held,",
                                   "reason": "NOT_LICENSED", "search": "  ann@ "})

    assert query.format is ReportFormat.CSV
    assert query.filters == ReportFilters(
        outcomes=frozenset({Outcome.FAILED, Outcome.HELD}),
        reasons=frozenset({Reason.NOT_LICENSED}), search="ann@")


@pytest.mark.parametrize(("params", "field", "says"), [
    ({"outcome": "broken"}, "outcome",
     "outcome=\"broken\": 'broken' is not an outcome; say one or more of assigned, kept,"),
    ({"outcome": "failed,nope"}, "outcome", "'nope' is not an outcome"),
    ({"reason": "no_licence"}, "reason", "'no_licence' is not a reason code; say one or more "
                                         "of assigned, number_changed"),
    ({"format": "pdf"}, "format", 'format="pdf": say html, csv or json'),
    ({"search": "x" * 300}, "search", "at most 256 characters, got 300"),
    ({"search": "ann\x00"}, "search", "control characters"),
    ({"status": "failed"}, "status",
     'status="failed": unknown query parameter; GET /api/tenants/{tenantId}/report takes '
     "format, outcome, reason, search"),
])
def test_a_bad_parameter_is_refused_naming_it_and_its_value(
    params: dict[str, str], field: str, says: str
) -> None:
    with pytest.raises(RequestError) as refused:
        ReportQuery.from_http(params)

    assert (refused.value.field, refused.value.status) == (field, 400)
    assert says in refused.value.message


class NoRuntimeError(AssertionError):
    """The command built the runtime: it would have touched storage."""


@pytest.fixture
def no_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise NoRuntimeError

    monkeypatch.setattr(cli_module, "RuntimeHolder", refuse)


@pytest.mark.usefixtures("no_runtime")
@pytest.mark.parametrize(("args", "says"), [
    (["report", "not-a-guid"], 'tenantId="not-a-guid"'),
    (["report", TENANT, "--outcome", "broken"],
     "--outcome=\"broken\": 'broken' is not an outcome"),
    (["report", TENANT, "--reason", "nope"], "--reason=\"nope\": 'nope' is not a reason code"),
    (["report", TENANT, "--format", "pdf"], '--format="pdf": say html, csv or json'),
    (["report", TENANT, "--format", "csv", "--json"],
     "--json and --format csv: give one of them"),
])
def test_a_bad_report_option_is_one_line_naming_it_and_exit_code_2(
    args: list[str], says: str
) -> None:
    result = CliRunner().invoke(cli, args)

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert says in result.stderr
