"""The tenant registry's core: records, the life cycle, health, which tenants are due, the
admin-consent link and the number import."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.config import NumberType as ConfigNumberType
from shared.config import TenantSettings as ConfigTenantSettings
from shared.core.tenant_registry import (
    PENDING_PATIENCE,
    NumberImportError,
    NumberType,
    RegistryError,
    SyncSchedule,
    TenantAction,
    TenantHealth,
    TenantHealthState,
    TenantRecord,
    TenantSettings,
    TenantState,
    TransitionRefused,
    admin_consent_url,
    allowed_actions,
    apply_action,
    health_changed,
    new_tenant,
    next_health,
    parse_number_import,
    parse_tenant_record,
    record_from_settings,
    tenants_due,
    with_changes,
)
from shared.core.tenant_rules import NumberRange, TenantRules

TENANT_ID = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"
GROUP_ID = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
AT = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
LATER = AT + timedelta(hours=1)
OPS = "ops@operator.example"


def _tenant(**fields: object) -> TenantRecord:
    return new_tenant(tenant_id=TENANT_ID, display_name="Contoso", voice_group_id=GROUP_ID,
                      by=OPS, at=AT, **fields)


def _registry_error(**fields: object) -> str:
    with pytest.raises(RegistryError) as caught:
        _tenant(**fields)
    return str(caught.value)


# --- Records -------------------------------------------------------------------------------------


def test_a_new_tenant_is_onboarding_with_the_defaults() -> None:
    record = _tenant()

    assert record.tenant_id == UUID(TENANT_ID)
    assert record.key == TENANT_ID
    assert record.state is TenantState.ONBOARDING
    assert record.number_type is NumberType.DIRECT_ROUTING
    assert record.rules == TenantRules()
    assert (record.teams_requests_per_second, record.full_read_interval_minutes,
            record.sync_interval_minutes) == (29.0, 60, 0)
    assert (record.created_by, record.created_at) == (OPS, AT)
    assert (record.changed_by, record.changed_at) == (OPS, AT)


def test_a_record_gives_the_settings_one_sync_needs() -> None:
    record = _tenant(number_type="operatorConnect")

    assert record.settings == TenantSettings(
        tenant_id=UUID(TENANT_ID), voice_group_id=UUID(GROUP_ID),
        number_type=NumberType.OPERATOR_CONNECT,
    )
    assert record.settings.key == record.key


def test_the_app_settings_still_export_the_tenant_settings() -> None:
    assert ConfigTenantSettings is TenantSettings
    assert ConfigNumberType is NumberType


def test_optional_fields_and_rules_as_a_dict_of_their_json_form() -> None:
    record = _tenant(
        number_type=NumberType.CALLING_PLAN,
        rules={"numberRanges": [{"first": "+31855363000", "last": "+31855363999"}],
               "mainNumbers": {"Contoso.example": "+31855363010"}},
        teams_requests_per_second=12.5,
        full_read_interval_minutes=5,
        syncIntervalMinutes=30,  # a JSON name works too
    )

    assert record.rules.number_ranges == (NumberRange(first="+31855363000", last="+31855363999"),)
    assert record.rules.main_numbers == {"contoso.example": "+31855363010"}
    assert (record.teams_requests_per_second, record.full_read_interval_minutes,
            record.sync_interval_minutes) == (12.5, 5, 30)


def test_the_display_name_is_stripped_and_times_are_kept_in_utc() -> None:
    amsterdam = timezone(timedelta(hours=1))
    record = new_tenant(tenant_id=TENANT_ID, display_name="  Contoso  ", voice_group_id=GROUP_ID,
                        by=OPS, at=datetime(2026, 11, 29, 3, 0, tzinfo=amsterdam))

    assert record.display_name == "Contoso"
    assert record.created_at == AT
    assert record.created_at.tzinfo is UTC


def test_a_record_is_stored_as_camel_case_json_and_reads_back_whole() -> None:
    record = _tenant(
        rules={"mainNumbers": {"contoso.example": "+31855363010"},
               "mainNumberPolicies": "contoso.example=CallingLineIdentity:Contoso Main",
               "numberRanges": [{"first": "+31855363000", "last": "+31855363999"}]},
    )
    stored = json.loads(record.to_json())

    assert {"tenantId", "displayName", "voiceGroupId", "numberType", "rules",
            "teamsRequestsPerSecond", "fullReadIntervalMinutes", "syncIntervalMinutes", "state",
            "createdBy", "createdAt", "changedBy", "changedAt"} == set(stored)
    assert stored["rules"]["numberRanges"] == [{"first": "+31855363000", "last": "+31855363999"}]
    assert stored["createdAt"] == "2026-11-29T02:00:00Z"
    assert parse_tenant_record(record.to_json()) == record
    assert parse_tenant_record(record.to_json().encode()) == record
    assert parse_tenant_record(stored) == record


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"teams_requests_per_second": 0}, "teamsRequestsPerSecond=0: Input should be greater"),
        ({"teams_requests_per_second": 1001}, "teamsRequestsPerSecond=1001"),
        ({"full_read_interval_minutes": 4}, "fullReadIntervalMinutes=4"),
        ({"full_read_interval_minutes": 7 * 24 * 60 + 1}, "fullReadIntervalMinutes=10081"),
        ({"sync_interval_minutes": -1}, "syncIntervalMinutes=-1"),
        ({"sync_interval_minutes": 1441}, "syncIntervalMinutes=1441"),
        ({"number_type": "sipTrunk"}, "numberType='sipTrunk'"),
        ({"rules": {"numberRanges": [{"first": "+31855363999", "last": "+31855363000"}]}},
         "rules.numberRanges.0: range +31855363999…+31855363000 must run from low to high"),
        ({"rules": {"mainNumbers": {"contoso.example": "0855363010"}}},
         "rules.mainNumbers: main number of 'contoso.example' must be E.164"),
    ],
)
def test_a_value_out_of_bounds_is_named_by_its_json_name(
    fields: dict[str, object], expected: str
) -> None:
    message = _registry_error(**fields)

    assert message.startswith(f"new tenant {TENANT_ID!r}: ")
    assert expected in message


def test_every_problem_is_in_the_one_message() -> None:
    with pytest.raises(RegistryError) as caught:
        new_tenant(tenant_id="contoso", display_name=" ", voice_group_id=GROUP_ID, by="",
                   at=AT, teams_requests_per_second=-1)
    message = str(caught.value)

    assert "tenantId='contoso'" in message
    assert "displayName=' '" in message
    assert "createdBy=''" in message
    assert "teamsRequestsPerSecond=-1" in message


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(RegistryError, match=r"createdAt=.*timezone"):
        new_tenant(tenant_id=TENANT_ID, display_name="Contoso", voice_group_id=GROUP_ID, by=OPS,
                   at=datetime(2026, 11, 29, 2, 0))  # noqa: DTZ001 - the naive time refused


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"state": "active"}, "state cannot be set here (use an action"),
        ({"created_by": "someone"}, "createdBy cannot be set here"),
        ({"colour": "blue"}, "colour is not a tenant field"),
    ],
)
def test_a_new_tenant_takes_only_the_optional_fields(
    fields: dict[str, object], expected: str
) -> None:
    message = _registry_error(**fields)

    assert expected in message
    assert "settable: numberType, rules, teamsRequestsPerSecond" in message


def test_a_stored_record_that_is_not_valid_names_its_source_and_field() -> None:
    stored = json.loads(_tenant().to_json())
    stored["syncIntervalMinutes"] = "often"
    stored["nickname"] = "C"
    del stored["voiceGroupId"]

    with pytest.raises(RegistryError) as caught:
        parse_tenant_record(stored, source=f"tenants row {TENANT_ID}")
    message = str(caught.value)

    assert message.startswith(f"tenants row {TENANT_ID}: ")
    assert "syncIntervalMinutes='often'" in message
    assert "nickname: not a field of a tenant record" in message
    assert "voiceGroupId: missing" in message


def test_text_that_is_not_json_is_a_registry_error() -> None:
    with pytest.raises(RegistryError, match=r"^row 1: not JSON"):
        parse_tenant_record('{"tenantId": ', source="row 1")


def test_the_app_settings_tenant_is_an_active_registry_of_one() -> None:
    tenant = TenantSettings(tenant_id=UUID(TENANT_ID), voice_group_id=UUID(GROUP_ID),
                            number_type=NumberType.CALLING_PLAN)
    rules = TenantRules(cooling_days=2)

    record = record_from_settings(tenant, rules, teams_requests_per_second=10,
                                  full_read_interval_minutes=30, at=AT)

    assert record.settings == tenant
    assert record.rules == rules
    assert record.state is TenantState.ACTIVE
    assert (record.display_name, record.created_by, record.changed_by) == (
        "from app settings", "app settings", "app settings")
    assert (record.teams_requests_per_second, record.full_read_interval_minutes,
            record.sync_interval_minutes) == (10, 30, 0)
    assert tenants_due([record], {}, AT) == [record]


# --- Changes -------------------------------------------------------------------------------------


def test_a_change_is_validated_and_stamped() -> None:
    record = _tenant()

    changed = with_changes(
        record, by="lead@operator.example", at=LATER, display_name="Contoso NL",
        rules={"numberRanges": [{"first": "+31855363000", "last": "+31855363099"}]},
    )

    assert changed.display_name == "Contoso NL"
    assert changed.rules.number_ranges == (NumberRange(first="+31855363000",
                                                       last="+31855363099"),)
    assert (changed.changed_by, changed.changed_at) == ("lead@operator.example", LATER)
    assert (changed.created_by, changed.created_at) == (OPS, AT)
    assert changed.state is record.state
    assert with_changes(record, by=OPS, at=AT) == record


def test_a_change_out_of_bounds_names_the_tenant_and_the_field() -> None:
    with pytest.raises(RegistryError) as caught:
        with_changes(_tenant(), by=OPS, at=LATER, sync_interval_minutes=2000)

    assert str(caught.value).startswith(f"tenant 'Contoso' ({TENANT_ID}): syncIntervalMinutes=2000")


@pytest.mark.parametrize(
    ("field", "expected"),
    [("tenant_id", "tenantId cannot be set here (a tenant's id never changes"),
     ("state", "state cannot be set here (use an action"),
     ("created_at", "createdAt cannot be set here")],
)
def test_the_id_the_state_and_the_creation_stamp_cannot_be_changed(
    field: str, expected: str
) -> None:
    with pytest.raises(RegistryError, match=expected.replace("(", r"\(")):
        with_changes(_tenant(), by=OPS, at=LATER, **{field: "x"})


# --- The life cycle ------------------------------------------------------------------------------

_ALLOWED = {
    (TenantState.ONBOARDING, TenantAction.ACTIVATE): TenantState.ACTIVE,
    (TenantState.PAUSED, TenantAction.ACTIVATE): TenantState.ACTIVE,
    (TenantState.ACTIVE, TenantAction.PAUSE): TenantState.PAUSED,
    (TenantState.ONBOARDING, TenantAction.PAUSE): TenantState.PAUSED,
    (TenantState.PAUSED, TenantAction.RESUME): TenantState.ACTIVE,
    (TenantState.ONBOARDING, TenantAction.REMOVE): TenantState.REMOVED,
    (TenantState.ACTIVE, TenantAction.REMOVE): TenantState.REMOVED,
    (TenantState.PAUSED, TenantAction.REMOVE): TenantState.REMOVED,
}


def _in_state(state: TenantState) -> TenantRecord:
    return parse_tenant_record({**json.loads(_tenant().to_json()), "state": state})


@pytest.mark.parametrize("state", list(TenantState))
@pytest.mark.parametrize("action", list(TenantAction))
def test_each_action_in_each_state(state: TenantState, action: TenantAction) -> None:
    record = _in_state(state)
    target = _ALLOWED.get((state, action))

    if target is None:
        with pytest.raises(TransitionRefused) as caught:
            apply_action(record, action, by="lead@operator.example", at=LATER)
        message = str(caught.value)
        assert f"tenant 'Contoso' ({TENANT_ID}) is {state}: cannot {action} it" in message
        allowed = allowed_actions(state)
        assert (", ".join(allowed) if allowed else "no action applies") in message
    else:
        after = apply_action(record, action, by="lead@operator.example", at=LATER)
        assert after.state is target
        assert (after.changed_by, after.changed_at) == ("lead@operator.example", LATER)
        assert after.model_dump(exclude={"state", "changed_by", "changed_at"}) == \
            record.model_dump(exclude={"state", "changed_by", "changed_at"})


def test_a_removed_tenant_stays_removed() -> None:
    assert allowed_actions(TenantState.REMOVED) == ()
    with pytest.raises(TransitionRefused, match="no action applies to a removed tenant"):
        apply_action(_in_state(TenantState.REMOVED), TenantAction.RESUME, by=OPS, at=LATER)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list(TenantAction)), max_size=12))
def test_any_sequence_of_actions_follows_the_table(actions: list[TenantAction]) -> None:
    record, state = _tenant(), TenantState.ONBOARDING
    for step, action in enumerate(actions):
        at = AT + timedelta(minutes=step + 1)
        expected = _ALLOWED.get((state, action))
        try:
            record = apply_action(record, action, by=f"op{step}", at=at)
        except TransitionRefused:
            assert expected is None
            continue
        assert expected is not None
        assert record.state is expected
        assert record.changed_at == at
        state = expected
        assert record.created_at == AT
    assert record.state is state


# --- Health --------------------------------------------------------------------------------------


def test_health_keeps_since_while_the_state_stays_and_restarts_it_on_a_change() -> None:
    first = next_health(None, TENANT_ID, TenantHealthState.AUTH_FAILED, "consent withdrawn", AT)
    again = next_health(first, TENANT_ID, TenantHealthState.AUTH_FAILED, "still", LATER)
    healed = next_health(again, TENANT_ID, TenantHealthState.HEALTHY, "", LATER + LATER.resolution)

    assert first == TenantHealth(TENANT_ID, TenantHealthState.AUTH_FAILED, "consent withdrawn",
                                 AT, AT)
    assert (again.since, again.checked_at, again.message) == (AT, LATER, "still")
    assert healed.since == healed.checked_at == LATER + LATER.resolution


def test_a_long_health_message_is_cut_short() -> None:
    health = next_health(None, TENANT_ID, TenantHealthState.GRAPH_UNAVAILABLE, "x" * 10_000, AT)

    assert len(health.message) == 2000
    assert health.message.endswith("…")


@pytest.mark.parametrize(
    ("previous", "current", "changed"),
    [
        (None, TenantHealthState.HEALTHY, False),
        (None, TenantHealthState.GROUP_MISSING, True),
        (TenantHealthState.HEALTHY, TenantHealthState.HEALTHY, False),
        (TenantHealthState.HEALTHY, TenantHealthState.AUTH_FAILED, True),
        (TenantHealthState.AUTH_FAILED, TenantHealthState.AUTH_FAILED, False),
        (TenantHealthState.AUTH_FAILED, TenantHealthState.GRAPH_UNAVAILABLE, True),
        (TenantHealthState.GRAPH_UNAVAILABLE, TenantHealthState.HEALTHY, True),
    ],
)
def test_a_health_change_is_a_change_of_state(
    previous: TenantHealthState | None, current: TenantHealthState, changed: bool
) -> None:
    before = None if previous is None else next_health(None, TENANT_ID, previous, "a", AT)
    after = next_health(before, TENANT_ID, current, "b", LATER)

    assert health_changed(before, after) is changed


# --- Which tenants are due -----------------------------------------------------------------------

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _numbered(index: int, *, state: TenantState = TenantState.ACTIVE,
              interval: int = 0) -> TenantRecord:
    record = new_tenant(tenant_id=str(UUID(int=index + 1)), display_name=f"Tenant {index}",
                        voice_group_id=GROUP_ID, by=OPS, at=AT, sync_interval_minutes=interval)
    return parse_tenant_record({**json.loads(record.to_json()), "state": state})


def _ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def test_only_active_tenants_are_due_sorted_by_id() -> None:
    records = [_numbered(3), _numbered(1), _numbered(2, state=TenantState.PAUSED),
               _numbered(4, state=TenantState.ONBOARDING),
               _numbered(5, state=TenantState.REMOVED), _numbered(0)]

    assert [r.key for r in tenants_due(records, {}, NOW)] == [
        str(UUID(int=1)), str(UUID(int=2)), str(UUID(int=4))]


@pytest.mark.parametrize(
    ("schedule", "due"),
    [
        (SyncSchedule("t"), True),
        (SyncSchedule("t", _ago(20), _ago(19), _ago(18)), True),  # finished
        (SyncSchedule("t", enqueued_at=_ago(1)), False),  # a message waiting
        (SyncSchedule("t", _ago(1), _ago(30), _ago(29)), False),  # waiting since the last run
        (SyncSchedule("t", _ago(2), _ago(1)), False),  # running
        (SyncSchedule("t", None, _ago(14)), False),  # running, started without a mark
        (SyncSchedule("t", enqueued_at=_ago(15)), True),  # the message was lost
        (SyncSchedule("t", _ago(40), _ago(16)), True),  # the run crashed without finishing
        (SyncSchedule("t", _ago(5), _ago(5), _ago(5)), True),  # marks at the same instant
    ],
)
def test_a_sync_in_flight_holds_the_tenant_back_for_a_while(
    schedule: SyncSchedule, due: bool
) -> None:
    record = _numbered(1)
    schedules = {record.key: SyncSchedule(record.key, schedule.enqueued_at, schedule.started_at,
                                          schedule.finished_at)}

    assert (tenants_due([record], schedules, NOW) == [record]) is due


@pytest.mark.parametrize(("started_minutes_ago", "due"), [(29, False), (30, True), (31, True)])
def test_a_tenant_is_due_again_its_interval_after_its_last_start(
    started_minutes_ago: int, due: bool
) -> None:
    record = _numbered(1, interval=30)
    started = _ago(started_minutes_ago)
    schedules = {record.key: SyncSchedule(record.key, started, started, started + LATER.resolution)}

    assert (tenants_due([record], schedules, NOW) == [record]) is due


_TIMES = st.one_of(st.none(), st.integers(min_value=-120, max_value=5).map(
    lambda minutes: NOW + timedelta(minutes=minutes)))
_SCHEDULE_PARTS = st.tuples(_TIMES, _TIMES, _TIMES)
_TENANTS = st.lists(
    st.tuples(st.integers(0, 20), st.sampled_from(list(TenantState)),
              st.sampled_from([0, 5, 30, 90]), _SCHEDULE_PARTS),
    max_size=8, unique_by=lambda tenant: tenant[0],
)


def _drawn(tenants: list[tuple[int, TenantState, int, tuple[datetime | None, ...]]]) -> tuple[
        list[TenantRecord], dict[str, SyncSchedule]]:
    records = [_numbered(index, state=state, interval=interval)
               for index, state, interval, _ in tenants]
    schedules = {record.key: SyncSchedule(record.key, *times)
                 for record, (*_, times) in zip(records, tenants, strict=True)}
    return records, schedules


@settings(max_examples=150, deadline=None)
@given(_TENANTS, st.integers(min_value=0, max_value=180))
def test_due_tenants_are_active_sorted_and_stay_due_as_time_passes(
    tenants: list[tuple[int, TenantState, int, tuple[datetime | None, ...]]], wait: int
) -> None:
    records, schedules = _drawn(tenants)

    due = tenants_due(records, schedules, NOW)

    assert all(record.state is TenantState.ACTIVE for record in due)
    assert [r.key for r in due] == sorted({r.key for r in due})
    later = {r.key for r in tenants_due(records, schedules, NOW + timedelta(minutes=wait))}
    assert {r.key for r in due} <= later


@settings(max_examples=150, deadline=None)
@given(_TENANTS)
def test_an_active_tenant_is_left_out_only_for_a_young_sync_in_flight_or_its_interval(
    tenants: list[tuple[int, TenantState, int, tuple[datetime | None, ...]]],
) -> None:
    records, schedules = _drawn(tenants)
    due = {record.key for record in tenants_due(records, schedules, NOW)}

    for record in records:
        if record.state is not TenantState.ACTIVE or record.key in due:
            continue
        schedule = schedules[record.key]
        in_flight = schedule.in_flight_since()
        young_in_flight = in_flight is not None and NOW - in_flight < PENDING_PATIENCE
        interval = timedelta(minutes=record.sync_interval_minutes)
        too_soon = schedule.started_at is not None and schedule.started_at + interval > NOW
        assert young_in_flight or too_soon
    # Patience is the longest a sync in flight holds a tenant back with no interval to wait.
    beyond = NOW + PENDING_PATIENCE + timedelta(minutes=6)
    no_interval = [r for r in records if r.state is TenantState.ACTIVE
                   and r.sync_interval_minutes == 0]
    assert [r.key for r in tenants_due(no_interval, schedules, beyond)] == sorted(
        r.key for r in no_interval)


# --- Admin consent -------------------------------------------------------------------------------


def test_the_admin_consent_link_asks_for_the_apps_graph_permissions() -> None:
    url = admin_consent_url(tenant_id=TENANT_ID,
                            app_client_id="11111111-2222-3333-4444-555555555555",
                            redirect_uri="https://sync.operator.example/api/consent?x=1&y=2",
                            state="onboard 7/a&b")

    assert url == (
        f"https://login.microsoftonline.com/{TENANT_ID}/v2.0/adminconsent"
        "?client_id=11111111-2222-3333-4444-555555555555"
        "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
        "&redirect_uri=https%3A%2F%2Fsync.operator.example%2Fapi%2Fconsent%3Fx%3D1%26y%3D2"
        "&state=onboard+7%2Fa%26b"
    )
    query = parse_qs(urlsplit(url).query)
    assert query["redirect_uri"] == ["https://sync.operator.example/api/consent?x=1&y=2"]
    assert query["state"] == ["onboard 7/a&b"]


def test_the_tenant_in_the_consent_link_is_one_path_segment() -> None:
    url = admin_consent_url(tenant_id="contoso.onmicrosoft.com/../x", app_client_id="app",
                            redirect_uri="https://ops.example/", state="s")

    assert urlsplit(url).path == "/contoso.onmicrosoft.com%2F..%2Fx/v2.0/adminconsent"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"tenant_id": " "}, "tenant_id must not be empty"),
        ({"app_client_id": ""}, "app_client_id must not be empty"),
        ({"state": ""}, "state must not be empty"),
        ({"redirect_uri": "/api/consent"}, "redirect_uri must be an absolute http"),
        ({"redirect_uri": "javascript:alert(1)"}, "redirect_uri must be an absolute http"),
    ],
)
def test_a_consent_link_needs_every_part(fields: dict[str, str], expected: str) -> None:
    parts = {"tenant_id": TENANT_ID, "app_client_id": "app",
             "redirect_uri": "https://ops.example/consent", "state": "s", **fields}
    with pytest.raises(ValueError, match=expected):
        admin_consent_url(**parts)


# --- Number import -------------------------------------------------------------------------------


def test_an_import_of_ranges_and_single_numbers() -> None:
    text = (
        "\ufefffirst,last\n"
        "# the Amsterdam block\n"
        "+31855363000,+31855363099\n"
        "\n"
        "  +31855363100  \n"
        '"+31855363200","+31855363299",\n'
        "+442079460000,+442079460999\n"
    )

    assert parse_number_import(text, "numbers.csv") == (
        NumberRange(first="+31855363000", last="+31855363099"),
        NumberRange(first="+31855363100", last="+31855363100"),
        NumberRange(first="+31855363200", last="+31855363299"),
        NumberRange(first="+442079460000", last="+442079460999"),
    )


@pytest.mark.parametrize("header", ["number", "Number", "FIRST,LAST", "first, last"])
def test_the_header_is_optional_and_read_in_either_form(header: str) -> None:
    assert parse_number_import(f"{header}\n+31855363000\n", "n.csv") == \
        parse_number_import("+31855363000", "n.csv")


def test_every_problem_is_reported_with_its_line_and_value() -> None:
    text = "\n".join([
        "number",                          # 1
        "+31855363000,+31855363099",       # 2
        "+31 85 536 3100",                 # 3 formatted
        "0855363200",                      # 4 national
        "+3185536300",                     # 5 not a real number
        "+31855363999,+31855363900",       # 6 high to low
        "+31855363000,+3185536309",        # 7 lengths differ (and not real)
        "+31855363050",                    # 8 inside line 2
        "+31855363000,+31855363099",       # 9 repeats line 2
        "a,b,c",                           # 10
        "number",                          # 11 a header not on the first line
        ",+31855363500",                   # 12 empty first
        "+31855363600,+31855363700",       # 13 fine
    ])

    with pytest.raises(NumberImportError) as caught:
        parse_number_import(text, "contoso.csv", default_region="NL")
    problems = caught.value.problems

    assert str(caught.value) == "\n".join(problems)
    assert [problem.split(":")[0] for problem in problems] == [
        f"contoso.csv line {line}" for line in (3, 4, 5, 6, 7, 8, 9, 10, 11, 12)]
    by_line = dict(zip((3, 4, 5, 6, 7, 8, 9, 10, 11, 12), problems, strict=True))
    assert by_line[3].endswith("did you mean +31855363100? (got '+31 85 536 3100')")
    assert by_line[4].endswith("did you mean +31855363200? (got '0855363200')")
    assert by_line[5] == ("contoso.csv line 5: E.164 but not a valid number in its country "
                          "(got '+3185536300')")
    assert "runs from high to low" in by_line[6]
    assert "(got '+31855363999,+31855363900')" in by_line[6]
    assert by_line[7].endswith("(got '+3185536309')")
    assert by_line[8] == ("contoso.csv line 8: overlaps line 2 (+31855363000…+31855363099) "
                          "(got '+31855363050')")
    assert by_line[9] == "contoso.csv line 9: repeats line 2 (got '+31855363000,+31855363099')"
    assert "expected one number or first,last" in by_line[10]
    assert by_line[11].endswith("(got 'number')")
    assert by_line[12].endswith("a number is empty (got '')")


def test_lengths_that_differ_are_named() -> None:
    with pytest.raises(NumberImportError, match="different lengths"):
        parse_number_import("+31855363000,+442079460000", "n.csv")


def test_an_overlap_is_reported_on_the_later_line_naming_the_earlier() -> None:
    text = "+31855363050,+31855363060\n+31855363000,+31855363999\n"

    with pytest.raises(NumberImportError) as caught:
        parse_number_import(text, "n.csv")

    assert caught.value.problems == (
        "n.csv line 2: overlaps line 1 (+31855363050…+31855363060) "
        "(got '+31855363000,+31855363999')",
    )


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing yet\n", "first,last\n"])
def test_an_import_without_numbers_is_refused(text: str) -> None:
    with pytest.raises(NumberImportError, match=r"^n.csv: no numbers"):
        parse_number_import(text, "n.csv")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9999), st.integers(0, 30)), max_size=20,
                unique_by=lambda block: block[0]))
def test_ranges_written_as_csv_read_back_as_they_were(blocks: list[tuple[int, int]]) -> None:
    # Ranges that do not overlap: each starts at its own number and stops before the next start.
    starts = sorted(start for start, _ in blocks)
    ranges = []
    for start, length in blocks:
        following = [s for s in starts if s > start]
        end = min(start + length, (following[0] - 1) if following else 9999, 9999)
        ranges.append(NumberRange(first=f"+3185536{start:04d}", last=f"+3185536{end:04d}"))
    lines = [r.first if r.first == r.last else f"{r.first},{r.last}" for r in ranges]

    if not ranges:
        with pytest.raises(NumberImportError):
            parse_number_import("\n".join(lines), "n.csv")
        return
    assert parse_number_import("\n".join(lines), "n.csv") == tuple(ranges)
