"""The helpdesk report as one self-contained HTML page, and the report in any of its formats.

Pure. The page needs nothing but itself: its CSS and JavaScript are inline, it loads nothing
(no CDN, no font, no image), so it works offline, from a file or a mail attachment, and prints.
Every row is rendered on the server as HTML with every directory value escaped
(``html.escape``): the script carries no data, it only reads the table it is given (text search,
outcome filter, "failed and waiting only", sorting by column) and writes nothing but text. The
page's Content-Security-Policy allows exactly its own style and script (by their SHA-256) and
nothing else, so even a value that escaped the escaping could run no script and load nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Final

from shared.core.helpdesk_report import (
    SINCE_LABELS,
    Attention,
    HelpdeskReport,
    RenderedReport,
    ReportFormat,
    ReportRow,
    ReportSummary,
    SinceMeaning,
    render_csv,
    report_filename,
)
from shared.core.outcomes import Outcome
from shared.core.tenant_registry import TenantHealthState

_STYLE: Final = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; --failed: #b42318;
  --failed-bg: #fef3f2; --waiting: #9a6700; --waiting-bg: #fff8c5; --ok: #1a7f37;
  --ok-bg: #dafbe1; --info: #0969da; --info-bg: #ddf4ff; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; padding: 1.5rem; color: var(--ink); background: #fff;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header h1 { margin: 0 0 .2rem; font-size: 1.5rem; }
.meta, .note { color: var(--muted); margin: 0 0 1rem; }
.summary { display: grid; grid-template-columns: repeat(auto-fit, minmax(14rem, 1fr));
  gap: .75rem; margin-bottom: 1.25rem; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: .75rem 1rem;
  background: var(--bg); }
.card h2 { margin: 0 0 .35rem; font-size: .8rem; text-transform: uppercase;
  letter-spacing: .04em; color: var(--muted); }
.card .big { font-size: 1.35rem; font-weight: 600; }
.card p { margin: .2rem 0; }
.card ul { margin: 0; padding: 0; list-style: none; }
.card li { display: flex; justify-content: space-between; gap: .5rem; }
.card.bad { border-color: var(--failed); background: var(--failed-bg); }
.card.warn { border-color: var(--waiting); background: var(--waiting-bg); }
.controls { display: flex; flex-wrap: wrap; gap: .75rem 1.25rem; align-items: end;
  margin-bottom: .75rem; }
.controls label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); }
.controls label.check { flex-direction: row; align-items: center; gap: .35rem; }
.controls input[type=search], .controls select { font: inherit; padding: .35rem .5rem;
  border: 1px solid var(--line); border-radius: 6px; min-width: 16rem; color: var(--ink); }
.controls select { min-width: 10rem; }
#shown { font-weight: 600; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; vertical-align: top; padding: .45rem .6rem;
  border-bottom: 1px solid var(--line); }
th { background: var(--bg); position: sticky; top: 0; }
th button { all: unset; cursor: pointer; font-weight: 600; }
th button:focus-visible { outline: 2px solid var(--info); }
th[aria-sort=ascending] button::after { content: " \\25B2"; }
th[aria-sort=descending] button::after { content: " \\25BC"; }
tr.failed td:first-child { box-shadow: inset 4px 0 var(--failed); }
tr.waiting td:first-child { box-shadow: inset 4px 0 var(--waiting); }
td.user { overflow-wrap: anywhere; min-width: 14rem; }
td.number { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.todo { min-width: 20rem; }
td.since { white-space: nowrap; font-size: .9rem; }
.label, .more { display: block; color: var(--muted); font-size: .8rem; }
.ago { color: var(--muted); font-size: .8rem; margin-left: .3rem; }
td.since .ago { display: block; margin-left: 0; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .85rem;
  font-weight: 600; background: var(--bg); border: 1px solid var(--line); white-space: nowrap; }
.badge.failed { color: var(--failed); background: var(--failed-bg); border-color: var(--failed); }
.badge.held, .badge.waiting { color: var(--waiting); background: var(--waiting-bg);
  border-color: var(--waiting); }
.badge.assigned, .badge.kept { color: var(--ok); background: var(--ok-bg);
  border-color: var(--ok); }
.badge.unassigned { color: var(--info); background: var(--info-bg); border-color: var(--info); }
code { font-size: .85rem; }
.print-only { display: none; }
footer { margin-top: 1.25rem; color: var(--muted); font-size: .85rem; }
@media print {
  body { padding: 0; font-size: 10pt; }
  .controls { display: none; }
  .print-only { display: block; }
  th { position: static; }
  th button::after { content: "" !important; }
  tr { break-inside: avoid; }
  .card { break-inside: avoid; background: none; }
  a { color: inherit; text-decoration: none; }
}
"""

_SCRIPT: Final = """
(function () {
  "use strict";
  var table = document.getElementById("users");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.querySelectorAll("tr.user-row"));
  var search = document.getElementById("search");
  var outcome = document.getElementById("outcome");
  var attention = document.getElementById("attention");
  var shown = document.getElementById("shown");
  var empty = document.getElementById("no-match");
  var printed = document.getElementById("print-filters");
  var text = rows.map(function (row) {
    return row.textContent.replace(/\\s+/g, " ").toLowerCase();
  });
  rows.forEach(function (row, index) { row.dataset.index = String(index); });

  function apply() {
    var needle = search.value.trim().toLowerCase();
    var compact = needle.replace(/[\\s\\-().\\/]/g, "");
    var digits = /^\\+?[0-9]+$/.test(compact) ? compact.replace(/^\\+/, "") : null;
    var wanted = outcome.value;
    var only = attention.checked;
    var count = 0;
    rows.forEach(function (row, index) {
      var found = !needle || text[index].indexOf(needle) !== -1 ||
        (digits !== null && row.dataset.digits.indexOf(digits) !== -1);
      var visible = found && (!wanted || row.dataset.outcome === wanted) &&
        (!only || row.dataset.attention !== "settled");
      row.hidden = !visible;
      if (visible) { count += 1; }
    });
    shown.textContent = count + " of " + rows.length + " users shown";
    empty.hidden = count !== 0 || rows.length === 0;
    var parts = [];
    if (needle) { parts.push("search \\u201c" + search.value.trim() + "\\u201d"); }
    if (wanted) { parts.push("outcome " + wanted); }
    if (only) { parts.push("failed and waiting only"); }
    printed.textContent = parts.length ? "Shown: " + parts.join(", ") + " (" +
      shown.textContent + ")." : "";
  }

  function sortBy(header) {
    var column = header.cellIndex;
    var direction = header.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.setAttribute("aria-sort", "none");
    });
    header.setAttribute("aria-sort", direction === 1 ? "ascending" : "descending");
    var ordered = rows.slice().sort(function (a, b) {
      var x = a.cells[column].dataset.sort;
      var y = b.cells[column].dataset.sort;
      if (x < y) { return -direction; }
      if (x > y) { return direction; }
      return Number(a.dataset.index) - Number(b.dataset.index);
    });
    ordered.forEach(function (row) { body.appendChild(row); });
  }

  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header) {
    var button = header.querySelector("button");
    button.addEventListener("click", function () { sortBy(header); });
  });
  search.addEventListener("input", apply);
  outcome.addEventListener("change", apply);
  attention.addEventListener("change", apply);
  apply();
}());
"""


def _sha256(text: str) -> str:
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{digest}'"


CONTENT_SECURITY_POLICY: Final = (
    f"default-src 'none'; style-src {_sha256(_STYLE)}; script-src {_sha256(_SCRIPT)}; "
    "img-src 'none'; base-uri 'none'; form-action 'none'"
)
"""The page's policy (in its ``<meta>``): its own style and script, nothing else."""
CONTENT_SECURITY_POLICY_HEADER: Final = CONTENT_SECURITY_POLICY + "; frame-ancestors 'none'"
"""The same as an HTTP header, which can also refuse framing (a ``<meta>`` cannot)."""

_HEALTH_TITLES: Final = {
    TenantHealthState.HEALTHY: "Healthy",
    TenantHealthState.AUTH_FAILED: "Consent needed",
    TenantHealthState.GROUP_MISSING: "Voice group missing",
    TenantHealthState.GRAPH_UNAVAILABLE: "Graph unavailable",
}
_COLUMNS: Final = ("User", "Number", "Outcome", "Reason", "What to do", "Since")
_NOT_DIGITS: Final = re.compile(r"[^0-9]")
_NO_NUMBER: Final = "\u2014"


def render_html(report: HelpdeskReport) -> str:
    """The report as one self-contained page: the summary, then a row per user."""
    name = escape(report.display_name)
    now = report.generated_at
    filtered = ""
    if report.filters.active:
        filtered = (f'<p class="note">Listed by the request\'s filters ('
                    f"{escape(report.filters.describe())}): {report.summary.shown} of "
                    f"{report.summary.users} users; the summary counts every user.</p>")
    return "".join((
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>Teams numbers: {name} \u2014 helpdesk report</title>",
        f"<style>{_STYLE}</style></head><body>",
        f'<header><h1>Teams numbers: <span id="tenant-name">{name}</span></h1>',
        f'<p class="meta">Tenant <code>{escape(report.tenant_id)}</code> \u00b7 report made '
        f"{_when(now)}</p></header>",
        _summary(report.summary, report.tenant_id, now),
        filtered,
        _controls(report.summary),
        '<p class="print-only" id="print-filters"></p>',
        _table(report.rows, now),
        '<p id="no-match" hidden>No user matches the search and filters.</p>',
        "<footer><p><strong>Since</strong>: <em>waiting since</em> is when the current wait for "
        "Teams began (a licence, Teams knowing the user, a change showing in its read views); "
        "<em>last tried</em> is the latest attempt of a failure; otherwise it is when the "
        "outcome was recorded. Times are UTC.</p></footer>",
        f"<script>{_SCRIPT}</script></body></html>\n",
    ))


def _summary(summary: ReportSummary, tenant_id: str, now: datetime) -> str:
    failed = summary.by_attention[Attention.FAILED]
    waiting = summary.by_attention[Attention.WAITING]
    attention = (
        f'<section class="card{" bad" if failed else " warn" if waiting else ""}" '
        f'id="attention-card"><h2>Needs attention</h2>'
        f'<p class="big">{failed} failed \u00b7 {waiting} waiting</p>'
        f"<p>of {summary.users} users the app looks after</p></section>"
    )
    counts = "".join(
        f'<li><span class="badge {outcome.value}">{outcome.value}</span>'
        f"<span>{count}</span></li>"
        for outcome, count in summary.by_outcome.items()
    )
    outcomes = (f'<section class="card" id="outcomes-card"><h2>Users by outcome</h2>'
                f"<ul>{counts}</ul></section>")
    return (f'<div class="summary" aria-label="Summary">{_last_run(summary, now)}{attention}'
            f"{outcomes}{_holds(summary, tenant_id, now)}{_health(summary, now)}</div>")


def _last_run(summary: ReportSummary, now: datetime) -> str:
    run = summary.last_run
    if run is None:
        body = '<p class="big">none yet</p><p>The tenant has not been synced.</p>'
        return f'<section class="card warn" id="run-card"><h2>Last run</h2>{body}</section>'
    tone = "" if run.outcome == "completed" else " warn" if run.outcome == "skipped" else " bad"
    counts = ", ".join(f"{escape(name)} {count}" for name, count in sorted(run.counts.items()))
    parts = [f'<p class="big">{escape(run.outcome)}</p>', f"<p>{_when(run.started_at, now)}</p>"]
    if run.message:
        parts.append(f"<p>{escape(run.message)}</p>")
    if counts:
        parts.append(f'<p class="more">{counts}</p>')
    return (f'<section class="card{tone}" id="run-card"><h2>Last run</h2>{"".join(parts)}'
            "</section>")


def _holds(summary: ReportSummary, tenant_id: str, now: datetime) -> str:
    holds = summary.pending_holds
    if not holds.count:
        return ('<section class="card" id="holds-card"><h2>Pending holds</h2>'
                '<p class="big">0</p><p>No unassignment waits for approval.</p></section>')
    oldest = _when(holds.oldest, now) if holds.oldest else ""
    return (
        '<section class="card warn" id="holds-card"><h2>Pending holds</h2>'
        f'<p class="big">{holds.count}</p><p>unassignments wait for an approval '
        f"(oldest {oldest}).</p><p class=\"more\">Approve: <code>holds approve --tenant "
        f"{escape(tenant_id)} --by &lt;who&gt;</code></p></section>"
    )


def _health(summary: ReportSummary, now: datetime) -> str:
    health = summary.health
    if health is None:
        return ('<section class="card" id="health-card"><h2>Tenant health</h2>'
                '<p class="big">not checked yet</p></section>')
    healthy = health.state is TenantHealthState.HEALTHY
    message = f"<p>{escape(health.message)}</p>" if health.message else ""
    return (
        f'<section class="card{"" if healthy else " bad"}" id="health-card">'
        f'<h2>Tenant health</h2><p class="big">{_HEALTH_TITLES[health.state]}</p>{message}'
        f'<p class="more">{escape(health.state.value)} since {_when(health.since, now)}</p>'
        f'<p class="more">checked {_when(health.checked_at, now)}</p></section>'
    )


def _controls(summary: ReportSummary) -> str:
    options = "".join(
        f'<option value="{outcome.value}">{outcome.value} ({count})</option>'
        for outcome, count in summary.by_outcome.items()
    )
    return (
        '<div class="controls" role="search">'
        '<label>Search user, number or text<input type="search" id="search" '
        'autocomplete="off" placeholder="e.g. ann@ or 855363011"></label>'
        f'<label>Outcome<select id="outcome"><option value="">every outcome</option>{options}'
        "</select></label>"
        '<label class="check"><input type="checkbox" id="attention"> failed and waiting only'
        '</label><output id="shown" aria-live="polite"></output></div>'
    )


def _table(rows: tuple[ReportRow, ...], now: datetime) -> str:
    headers = "".join(
        f'<th scope="col" aria-sort="none"><button type="button">{title}</button></th>'
        for title in _COLUMNS
    )
    body = "".join(_row(row, now) for row in rows)
    if not rows:
        body = ('<tr><td colspan="6">No user to show: the tenant has no recorded outcome yet, '
                "or none passes the request's filters.</td></tr>")
    return (f'<table id="users"><thead><tr>{headers}</tr></thead><tbody>{body}</tbody>'
            "</table>")


_ATTENTION_RANK: Final = {Attention.FAILED: 0, Attention.WAITING: 1, Attention.SETTLED: 2}
_OUTCOME_RANK: Final = {outcome: index for index, outcome in enumerate(Outcome)}


def _row(row: ReportRow, now: datetime) -> str:
    number = row.number or ""
    shown_number = escape(number) if number else _NO_NUMBER
    outcome_key = f"{_ATTENTION_RANK[row.attention]}-{_OUTCOME_RANK[row.outcome]}"
    badge = row.outcome.value
    if row.attention is Attention.WAITING and row.outcome is not Outcome.HELD:
        badge = f"{row.outcome.value} \u00b7 waiting"
    return (
        f'<tr class="user-row {row.attention.value}" data-outcome="{row.outcome.value}" '
        f'data-attention="{row.attention.value}" '
        f'data-digits="{_NOT_DIGITS.sub("", number)}">'
        f'<td class="user" data-sort="{_attr(row.user_principal_name.casefold())}">'
        f"{escape(row.user_principal_name)}</td>"
        f'<td class="number" data-sort="{_attr(number)}">{shown_number}</td>'
        f'<td data-sort="{outcome_key}"><span class="badge {row.outcome.value}'
        f'{" waiting" if row.attention is Attention.WAITING else ""}">{badge}</span></td>'
        f'<td data-sort="{row.reason.value}"><code>{row.reason.value}</code></td>'
        f'<td class="todo" data-sort="{_attr(row.what_to_do.casefold())}">'
        f"{escape(row.what_to_do)}</td>"
        f'<td class="since" data-sort="{_sortable(row.since)}">{_since(row, now)}</td></tr>'
    )


def _since(row: ReportRow, now: datetime) -> str:
    parts = [f'<span class="label">{SINCE_LABELS[row.since_meaning]}</span>',
             _when(row.since, now)]
    if row.since_meaning is not SinceMeaning.CHANGED and row.attempts > 1:
        parts.append(f'<span class="more">{row.attempts} attempts in a row</span>')
    if row.retry_at is not None and row.attention is not Attention.SETTLED:
        parts.append(f'<span class="more">next look {_when(row.retry_at)}</span>')
    return "".join(parts)


def _when(moment: datetime, now: datetime | None = None) -> str:
    """A time as a person reads it (UTC), with how long ago when ``now`` is given."""
    utc = moment.astimezone(UTC)
    shown = f'<time datetime="{utc.isoformat()}">{utc:%Y-%m-%d %H:%M} UTC</time>'
    if now is None:
        return shown
    return f'{shown}<span class="ago">({_ago(now - utc)})</span>'


def _ago(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h ago"
    return f"{hours // 24} days ago"


def _sortable(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%S.%f}"


def _attr(value: str) -> str:
    return escape(value, quote=True)


# -- every format ------------------------------------------------------------------------------


def render_report(report: HelpdeskReport, report_format: ReportFormat) -> RenderedReport:
    """The report in ``report_format``: the page, the CSV of its rows, or its JSON."""
    filename = report_filename(report.tenant_id, report_format)
    if report_format is ReportFormat.HTML:
        return RenderedReport(render_html(report), "text/html", filename)
    if report_format is ReportFormat.CSV:
        return RenderedReport(render_csv(report), "text/csv", filename)
    return RenderedReport(json.dumps(report.to_json(), indent=2) + "\n", "application/json",
                          filename)
