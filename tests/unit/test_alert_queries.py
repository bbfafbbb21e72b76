"""The alert queries in infra/alerts/ parse, and read only events and dimensions the code defines
(shared.core.telemetry_events): a renamed event or dimension fails here, not silently in Azure."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.core.telemetry_events import DIMENSIONS, EVENT_NAMES
from tests.kql_subset import KqlError, parse, problems, tokenize

ALERTS = Path(__file__).resolve().parents[2] / "infra" / "alerts"
BROKEN = Path(__file__).resolve().parent / "alert_query_fixtures"

EXPECTED_ALERTS = {
    "poison-message.kql", "sync-missing.kql", "function-failures.kql", "mass-unassign-held.kql",
    "tenant-unhealthy.kql", "graph-throttled.kql",
}


def _check(text: str) -> list[str]:
    return problems(parse(text), EVENT_NAMES, DIMENSIONS)


def test_the_alert_queries_are_exactly_the_six_the_infrastructure_loads() -> None:
    assert {path.name for path in ALERTS.glob("*.kql")} == EXPECTED_ALERTS


@pytest.mark.parametrize("name", sorted(EXPECTED_ALERTS))
def test_every_alert_query_parses_and_reads_only_defined_events_and_dimensions(name: str) -> None:
    assert _check((ALERTS / name).read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("name", sorted(EXPECTED_ALERTS))
def test_every_alert_query_says_what_it_means_for_an_operator(name: str) -> None:
    header = [line for line in (ALERTS / name).read_text(encoding="utf-8").splitlines()
              if line.startswith("//")]
    text = "\n".join(header)
    for part in ("// Alert: ", "// Fires when: ", "// Window: ", "Means for an operator: ",
                 "What to do: "):
        assert part in text, f"{name}: its header lacks {part.strip()!r}"


def test_the_event_alerts_select_the_events_they_are_about() -> None:
    selected = {
        name: set().union(*(p.events for p in parse(
            (ALERTS / name).read_text(encoding="utf-8")).pipelines))
        for name in EXPECTED_ALERTS
    }
    assert selected["poison-message.kql"] == {"MessagePoisoned", "PoisonQueueDepth"}
    assert "SyncRunCompleted" in selected["sync-missing.kql"]
    assert selected["mass-unassign-held.kql"] == {"MassUnassignHeld"}
    assert selected["tenant-unhealthy.kql"] == {"TenantHealthChanged"}
    assert selected["graph-throttled.kql"] == {"GraphThrottled"}
    assert selected["function-failures.kql"] == set()  # the requests table: the host's own


def test_the_missing_sync_alert_counts_as_active_every_tenant_event() -> None:
    """A tenant whose every run fails is still active: its events are in the list, the
    app-wide PoisonQueueDepth (tenantId "*") is not."""
    query = parse((ALERTS / "sync-missing.kql").read_text(encoding="utf-8"))
    active = max(query.pipelines, key=lambda pipeline: len(pipeline.events))
    assert active.events == EVENT_NAMES - {"PoisonQueueDepth"}


@pytest.mark.parametrize(("fixture", "expected"), [
    ("renamed-event.kql", "no event is named 'SyncCompleted'"),
    ("unknown-dimension.kql", "MassUnassignHeld has no dimension 'heldCount'"),
    ("dimension-of-another-event.kql", "SyncRunFailed has no dimension 'threshold'"),
    ("garbled.kql", "follows a value without an operator"),
    ("unbalanced.kql", "is never closed"),
    ("unterminated.kql", "the string is not terminated"),
    ("dangling-pipe.kql", "a stage must start with an operator"),
    ("loose-name-match.kql", "compare an event's name with == or in"),
])
def test_a_broken_query_fails_the_check_naming_what_is_wrong(fixture: str, expected: str) -> None:
    text = (BROKEN / fixture).read_text(encoding="utf-8")
    try:
        found = _check(text)
    except KqlError as error:
        found = [str(error)]
    assert any(expected in each for each in found), found


@pytest.mark.parametrize("garbage", [
    "customEvents | where",
    "customEvents | where name == ",
    "customEvents | frobnicate x",
    "customEvents | where name == \"SyncRunFailed\" |",
    "customEvents | summarize by tenantId",
    "customEvents | where (name == \"SyncRunFailed\"",
    "customEvents | where name == \"SyncRunFailed\")",
    "customEvents | where a == == b",
    "customEvents | where x # y",
    "let x = 5m;",
    "nosuchtable | take 5",
    "customEvents | where name == \"SyncRunFailed\" | extend a = customDimensions",
    "customEvents | take 5 | take 6 customEvents",
    "customEvents | join kind=sideways requests on x",
    "customEvents | where t > ago(15q)",
])
def test_the_parser_rejects_what_is_not_a_query(garbage: str) -> None:
    with pytest.raises(KqlError):
        parse(garbage)


def test_strings_keep_their_text_with_escapes_and_verbatim_quotes() -> None:
    tokens = tokenize(r'''x == "a \"b\"" and y == 'c' and z == @"d\e"''')
    assert [t.text for t in tokens if t.kind == "string"] == ['a "b"', "c", "d\\e"]


def test_a_dimension_read_by_index_is_checked_like_one_read_by_name() -> None:
    query = parse('customEvents | where name == "SyncRunSkipped" '
                  '| extend h = tostring(customDimensions["leaseHolder"]), '
                  't = tostring(customDimensions.tenantId)')
    assert [t.text for p in query.pipelines for t in p.dimension_tokens] == [
        "leaseHolder", "tenantId"]
    assert problems(query, EVENT_NAMES, DIMENSIONS) == []
