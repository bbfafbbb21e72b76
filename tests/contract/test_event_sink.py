"""The event sink's contract, against the in-memory fake and the OpenTelemetry adapter (on the
SDK's in-memory exporters): what goes in comes out as the same events and counts, and both
refuse the same mistakes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from shared.core.outcomes import Outcome
from shared.core.telemetry_events import (
    APP_WIDE,
    DimensionValue,
    GraphThrottled,
    HoldsApproved,
    MassUnassignHeld,
    MessagePoisoned,
    PoisonQueueDepth,
    SyncRunCompleted,
    SyncRunFailed,
    SyncRunSkipped,
    TelemetryEvent,
    TenantHealthChanged,
    UserAssignmentFailed,
    event_record,
)
from shared.service.ports import EventSink
from tests.fakes import RecordedEvents
from tests.telemetry_support import CapturedTelemetry

T1, T2 = "7e1b2c3d-0000-4000-8000-00000000000a", "7e1b2c3d-0000-4000-8000-00000000000b"

ONE_OF_EACH: list[TelemetryEvent] = [
    SyncRunCompleted(T1, "r1", "delta", "completed", 10, 2, 2, 7, 1, 0, 0, 0, 14, 830, 3.5),
    SyncRunFailed(T1, "r2", "Graph was unavailable", 1200),
    SyncRunSkipped(T1, "r3", "r2"),
    UserAssignmentFailed(T1, "r1", "u1", "assign", "+31855363011", "not_in_inventory"),
    MassUnassignHeld(T2, "r4", 40, 10),
    HoldsApproved(T2, "ops@operator.example", 40, "r4"),
    TenantHealthChanged(T2, "auth_failed", "healthy", "Consent was withdrawn: consent again."),
    MessagePoisoned(T1, "number-assignments-poison", "host", "assign", "u1", "TemporaryError: x"),
    PoisonQueueDepth(APP_WIDE, "tenant-syncs-poison", 3),
    GraphThrottled(T1, "POST", "/v1.0/admin/teams/{id}", 12.0, "Tenant_Application/ReadWrite",
                   "ResourceUnitLimitExceeded"),
]


@dataclass
class SinkUnderTest:
    sink: EventSink
    events: Callable[[], list[tuple[str, dict[str, DimensionValue]]]]
    counted: Callable[[Outcome, str], int]


@pytest.fixture(params=["fake", "opentelemetry"])
def under_test(request: pytest.FixtureRequest) -> Iterator[SinkUnderTest]:
    if request.param == "fake":
        fake = RecordedEvents()
        yield SinkUnderTest(fake, fake.records,
                            lambda outcome, tenant: fake.counts[(tenant, outcome)])
        return
    captured: CapturedTelemetry = request.getfixturevalue("telemetry")
    yield SinkUnderTest(captured.sink, captured.events, captured.counted)


def test_every_event_comes_out_as_its_name_and_dimensions_in_order(
    under_test: SinkUnderTest,
) -> None:
    for event in ONE_OF_EACH:
        under_test.sink.emit(event)
    assert under_test.events() == [event_record(event) for event in ONE_OF_EACH]


def test_counts_add_up_per_tenant_and_outcome(under_test: SinkUnderTest) -> None:
    sink = under_test.sink
    sink.count(T1, Outcome.ASSIGNED)
    sink.count(T1, Outcome.ASSIGNED, 4)
    sink.count(T2, Outcome.ASSIGNED, 2)
    sink.count(T1, Outcome.FAILED)
    sink.count(T1, Outcome.HELD, 0)
    assert [under_test.counted(Outcome.ASSIGNED, T1), under_test.counted(Outcome.ASSIGNED, T2),
            under_test.counted(Outcome.FAILED, T1), under_test.counted(Outcome.HELD, T1)] == [
        5, 2, 1, 0]


def test_both_refuse_an_uncounted_outcome_a_negative_count_and_a_bad_dimension(
    under_test: SinkUnderTest,
) -> None:
    with pytest.raises(ValueError, match="outcome='kept'"):
        under_test.sink.count(T1, Outcome.KEPT)
    with pytest.raises(ValueError, match="amount=-1"):
        under_test.sink.count(T1, Outcome.ASSIGNED, -1)
    with pytest.raises(TypeError, match=r"PoisonQueueDepth\.approximate_count"):
        under_test.sink.emit(PoisonQueueDepth(APP_WIDE, "q", None))  # type: ignore[arg-type]
    assert under_test.events() == []
