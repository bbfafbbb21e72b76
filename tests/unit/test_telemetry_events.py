"""The event catalogue (shared.core.telemetry_events): every event's name and fixed dimensions,
the flat record the exporter is handed, and the small pure helpers the shell reports with."""

from __future__ import annotations

import logging
from dataclasses import fields
from datetime import timedelta
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.messages import MessageError
from shared.core.outcomes import Outcome, Reason
from shared.core.records import InFlight, UserStatus
from shared.core.telemetry_events import (
    APP_WIDE,
    CUSTOM_EVENT_NAME_KEY,
    DIMENSIONS,
    EVENT_NAMES,
    EVENT_TYPES,
    LAST_ERROR_LIMIT,
    GraphThrottled,
    SyncRunCompleted,
    TelemetryEvent,
    counter_name,
    dimension_name,
    event_record,
    log_attributes,
    oldest_waiting_minutes,
    poisoned_event,
    route_template,
)
from tests.fakes import NOW

#: The catalogue as the README's events table lists it: a rename shows up here first.
CATALOGUE = {
    "SyncRunCompleted": {
        "tenantId", "runId", "readMode", "outcome", "members", "enqueued", "assign", "keep",
        "skip", "unassign", "hold", "syncIntervalMinutes", "graphRequests", "durationMs",
        "oldestWaitingMinutes",
    },
    "SyncRunFailed": {"tenantId", "runId", "reason", "durationMs"},
    "SyncRunSkipped": {"tenantId", "runId", "leaseHolder"},
    "UserAssignmentFailed": {"tenantId", "runId", "userId", "action", "number", "reason"},
    "MassUnassignHeld": {"tenantId", "runId", "count", "threshold"},
    "HoldsApproved": {"tenantId", "approvedBy", "count", "runId"},
    "TenantHealthChanged": {"tenantId", "state", "previousState", "healthMessage"},
    "MessagePoisoned": {"tenantId", "queue", "poisonedBy", "action", "userId", "lastError"},
    "PoisonQueueDepth": {"tenantId", "queue", "approximateCount"},
    "GraphThrottled": {
        "tenantId", "method", "route", "retryAfterSeconds", "throttleScope",
        "throttleInformation",
    },
}

events = st.one_of(*(st.builds(kind) for kind in EVENT_TYPES))


def test_the_catalogue_has_each_event_with_its_fixed_dimensions() -> None:
    assert set(CATALOGUE) == EVENT_NAMES
    assert {name: set(dimensions) for name, dimensions in DIMENSIONS.items()} == CATALOGUE


def test_every_event_names_its_tenant_first() -> None:
    assert all(fields(kind)[0].name == "tenant_id" for kind in EVENT_TYPES)


@given(events)
def test_an_event_is_its_name_and_every_field_as_a_flat_dimension(event: TelemetryEvent) -> None:
    name, dimensions = event_record(event)
    assert name == type(event).__name__
    assert set(dimensions) == DIMENSIONS[name]
    assert dimensions == {dimension_name(f.name): getattr(event, f.name) for f in fields(event)}
    assert log_attributes(event) == {CUSTOM_EVENT_NAME_KEY: name, **dimensions}


@given(events)
def test_no_dimension_overwrites_an_attribute_of_the_log_record(event: TelemetryEvent) -> None:
    """logging refuses ``extra`` keys a LogRecord has itself (``message``, ``name``, ...)."""
    record = logging.getLogger("shared.events").makeRecord(
        "shared.events", logging.INFO, __file__, 1, "%s", ("x",), None,
        extra=log_attributes(event),
    )
    assert getattr(record, CUSTOM_EVENT_NAME_KEY) == type(event).__name__


def test_a_dimension_that_is_not_text_or_a_number_is_refused_naming_it() -> None:
    event = GraphThrottled("t", "GET", "/users", None, "", "")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"GraphThrottled\.retry_after_seconds"):
        event_record(event)


def test_a_flag_is_no_number() -> None:
    event = SyncRunCompleted("t", "r", "full", "completed", True, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0)
    with pytest.raises(TypeError, match="members"):
        event_record(event)


@pytest.mark.parametrize(("path", "route"), [
    ("/v1.0/users/7e1b2c3d-0000-4000-8000-000000000001/transitiveMemberOf",
     "/v1.0/users/{id}/transitiveMemberOf"),
    ("/v1.0/admin/teams/telephoneNumberManagement/numberAssignments",
     "/v1.0/admin/teams/telephoneNumberManagement/numberAssignments"),
    ("/v1.0/admin/teams/userConfigurations/ann@contoso.example",
     "/v1.0/admin/teams/userConfigurations/{id}"),
    ("/v1.0/admin/teams/telephoneNumberManagement/operations('a1b2')",
     "/v1.0/admin/teams/telephoneNumberManagement/operations({id})"),
    ("/v1.0/numbers/+31855363011", "/v1.0/numbers/{id}"),
])
def test_a_route_keeps_its_shape_and_drops_ids_and_numbers(path: str, route: str) -> None:
    assert route_template(path) == route


@given(st.uuids(), st.sampled_from(["users", "groups", "servicePrincipals"]))
def test_no_id_survives_in_a_route(user: UUID, collection: str) -> None:
    assert str(user) not in route_template(f"/v1.0/{collection}/{user}/memberOf")


def _waiting(since_minutes: float | None, reason: Reason = Reason.WAITING_FOR_TEAMS) -> UserStatus:
    since = None if since_minutes is None else NOW - timedelta(minutes=since_minutes)
    return UserStatus("u", "u@contoso.example", Outcome.FAILED, reason, None, "", "r", 0, NOW,
                      waiting_since=since)


def _queued(minutes: float, expires_in: float = 60) -> InFlight:
    return InFlight("u", "number", "k", NOW - timedelta(minutes=minutes),
                    NOW + timedelta(minutes=expires_in))


def test_nothing_waiting_is_zero_minutes() -> None:
    assert oldest_waiting_minutes(NOW, [], [_waiting(None)]) == 0.0


def test_the_oldest_queued_change_or_wait_for_teams_is_the_age() -> None:
    assert oldest_waiting_minutes(NOW, [_queued(3), _queued(12.5)], [_waiting(7)]) == 12.5
    assert oldest_waiting_minutes(NOW, [_queued(3)], [_waiting(40, Reason.NOT_LICENSED)]) == 40


def test_an_expired_marker_and_a_failure_that_is_not_a_wait_do_not_count() -> None:
    assert oldest_waiting_minutes(
        NOW, [_queued(90, expires_in=-30)], [_waiting(50, Reason.NOT_IN_INVENTORY)],
    ) == 0.0


@given(st.lists(st.floats(0, 10_000), max_size=5), st.lists(st.floats(0, 10_000), max_size=5))
def test_the_age_is_the_largest_of_the_waits(queued: list[float], waits: list[float]) -> None:
    age = oldest_waiting_minutes(NOW, [_queued(m, expires_in=1) for m in queued],
                                 [_waiting(m) for m in waits])
    assert age == pytest.approx(max([*queued, *waits], default=0.0), abs=0.051)


def test_only_assigned_failed_and_held_are_counted() -> None:
    assert {counter_name(o) for o in (Outcome.ASSIGNED, Outcome.FAILED, Outcome.HELD)} == {
        "users.assigned", "users.failed", "users.held"}
    with pytest.raises(ValueError, match="outcome='kept'"):
        counter_name(Outcome.KEPT)


def test_a_poisoned_message_names_what_could_be_read_and_keeps_the_error_short() -> None:
    unreadable = poisoned_event("number-assignments-poison", "app", MessageError("body: not JSON"))
    assert (unreadable.tenant_id, unreadable.action, unreadable.user_id) == (APP_WIDE, "", "")
    assert unreadable.last_error == "body: not JSON"
    crashed = poisoned_event("tenant-syncs-poison", "host", RuntimeError("x" * 5000),
                             tenant_id="t1", action="sync")
    assert crashed.last_error.startswith("RuntimeError: xxx")
    assert len(crashed.last_error) == LAST_ERROR_LIMIT
