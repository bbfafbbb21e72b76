"""The audit trail's pure parts: keys and their order, retention, what a Teams write records,
who a caller is; and, on fakes, that a repeated write is recorded once and a failing audit
never fails the message."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.config import AppSettings, ConfigError
from shared.core.audit import (
    FUNCTION_KEY,
    Actor,
    AuditEntry,
    AuditKind,
    AuditMonth,
    AuditOutcome,
    TeamsWrites,
    entry_keys,
    expired,
    marker_row_key,
    months_between,
    oldest_kept,
    partition_month,
    reading_from,
    row_key,
)
from shared.core.directory import Claim, Member
from shared.core.errors import OperationPendingError, PermanentError, TemporaryError
from shared.core.messages import AssignmentMessage
from shared.core.outcomes import Reason
from shared.core.policy_planner import GrantedPolicy, PolicyGrant
from shared.core.steps import (
    Accepted,
    AssignmentSettled,
    AssignNumber,
    AssignPolicies,
    GetGrant,
    ReadTeamsUser,
    UnassignNumber,
    UnassignPolicies,
)
from shared.core.teams_readiness import TeamsUser
from shared.core.tenant_rules import MainNumberPolicy
from shared.http_requests import PRINCIPAL_HEADER, AuditQuery, RequestError, http_actor
from tests.fakes import (
    NOW,
    TENANT,
    FakeAuditLog,
    FakeClaimStore,
    FakeTeamsNumbers,
    FakeTeamsUsers,
    FakeUsers,
    deliver,
    fake_context,
)

TENANT_KEY = TENANT.key
NUMBER, OLD = "+31201234567", "+31201234500"


def _entry(at: datetime, **changes: object) -> AuditEntry:
    entry = AuditEntry(kind=AuditKind.MANUAL_SYNC, at=at, who="ops", caller=FUNCTION_KEY)
    return replace(entry, **changes)  # type: ignore[arg-type]


def _message(**changes: object) -> AssignmentMessage:
    fields: dict[str, object] = {
        "tenant_id": TENANT_KEY, "run_id": "run-1", "user_id": "u-ann",
        "user_principal_name": "ann@contoso.example", "telephone_number": NUMBER,
        "read_position": 0, "action": "assign", "reason": "assigned", "number": NUMBER,
        "previous_number": OLD, "idempotency_key": f"run-1|u-ann|assign|{NUMBER}",
    }
    return AssignmentMessage.model_validate({**fields, **changes})


# -- keys ----------------------------------------------------------------------------------------

times = st.datetimes(min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis adds UTC
                     max_value=datetime(2200, 12, 31),  # noqa: DTZ001
                     timezones=st.just(UTC))


@given(first=times, second=times)
def test_row_keys_sort_as_the_times_do_and_partitions_as_the_months_do(
    first: datetime, second: datetime
) -> None:
    a, b = _entry(first), _entry(second)
    (pa, ra), (pb, rb) = entry_keys(TENANT_KEY, a), entry_keys(TENANT_KEY, b)
    if first < second:
        assert ra < rb
        assert pa <= pb
    assert (pa == pb) == (AuditMonth.of(first) == AuditMonth.of(second))
    assert partition_month(TENANT_KEY, pa) == AuditMonth.of(first)
    assert ra < marker_row_key("any message|assign +31|done")  # markers sort after entries


def test_a_row_key_is_the_time_then_a_digest_of_the_entry() -> None:
    at = datetime(2026, 11, 29, 2, 3, 4, 5, tzinfo=UTC)
    key = row_key(_entry(at))
    assert key.startswith("20261129T020304.000005Z-")
    assert row_key(_entry(at)) == key  # the same entry, the same row
    assert row_key(_entry(at, who="someone else")) != key
    assert entry_keys(TENANT_KEY, _entry(at))[0] == f"{TENANT_KEY}|2026-11"


def test_only_the_tenants_own_month_keys_read_as_months() -> None:
    assert partition_month(TENANT_KEY, f"{TENANT_KEY}|2026-11") == AuditMonth(2026, 11)
    assert partition_month(TENANT_KEY, "another-tenant|2026-11") is None
    assert partition_month(TENANT_KEY, f"{TENANT_KEY}|2026-1") is None
    assert partition_month(TENANT_KEY, TENANT_KEY) is None


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        _entry(datetime(2026, 11, 29))  # noqa: DTZ001 - the case under test


def test_months_between_spans_the_year_end() -> None:
    assert [str(m) for m in months_between(datetime(2025, 11, 30, tzinfo=UTC),
                                           datetime(2026, 1, 2, tzinfo=UTC))] == [
        "2025-11", "2025-12", "2026-01"]


# -- retention -----------------------------------------------------------------------------------


def test_retention_keeps_the_current_month_and_the_ones_before_it_up_to_the_count() -> None:
    now = datetime(2026, 11, 29, tzinfo=UTC)
    assert oldest_kept(now, 13) == AuditMonth(2025, 11)
    assert not expired(AuditMonth(2025, 11), now, 13)
    assert expired(AuditMonth(2025, 10), now, 13)
    assert oldest_kept(now, 1) == AuditMonth(2026, 11)
    with pytest.raises(ValueError, match="AUDIT_RETENTION_MONTHS=0"):
        oldest_kept(now, 0)
    assert reading_from(datetime(2001, 1, 1, tzinfo=UTC), now, 13) == datetime(
        2025, 11, 1, tzinfo=UTC)


def _settings(**extra: str) -> dict[str, str]:
    return {"VOICE_GROUP_ID": "7e1b2c3d-0000-4000-8000-000000000002",
            "TENANT_ID": TENANT_KEY, "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            **extra}


def test_the_retention_setting_defaults_to_13_and_is_checked() -> None:
    assert AppSettings.from_environ(_settings()).audit_retention_months == 13
    with pytest.raises(ConfigError, match="AUDIT_RETENTION_MONTHS='0'"):
        AppSettings.from_environ(_settings(AUDIT_RETENTION_MONTHS="0"))
    auth = AppSettings.from_environ(_settings(WEBSITE_AUTH_ENABLED="True"))
    assert auth.app_service_authentication


# -- what a Teams write records ------------------------------------------------------------------


def test_an_assignment_records_the_number_it_replaces_and_the_message() -> None:
    writes = TeamsWrites(_message())
    entry = writes.answered(AssignNumber(NUMBER, "u-ann"), object(), NOW)
    assert entry is not None
    assert (entry.kind, entry.before, entry.after, entry.outcome) == (
        AuditKind.NUMBER_ASSIGNED, OLD, NUMBER, AuditOutcome.DONE)
    assert (entry.who, entry.at, entry.run_id, entry.message_id, entry.user_principal_name) == (
        "app", NOW, "run-1", f"run-1|u-ann|assign|{NUMBER}", "ann@contoso.example")
    assert entry.dedupe_key == f"run-1|u-ann|assign|{NUMBER}|assign {NUMBER}|done"
    assert writes.answered(ReadTeamsUser("u-ann"), None, NOW) is None  # a read records nothing
    accepted = writes.answered(AssignNumber(NUMBER, "u-ann"), Accepted("op/1"), NOW)
    assert accepted is not None
    assert accepted.outcome is AuditOutcome.PENDING  # Teams carries it out in its own time
    settled = writes.answered(AssignmentSettled(NUMBER, "u-ann", True, "seen on the user"),
                              None, NOW)
    assert settled is not None
    assert (settled.kind, settled.after, settled.outcome, settled.detail) == (
        AuditKind.NUMBER_ASSIGNED, NUMBER, AuditOutcome.DONE, "seen on the user")


def test_a_refused_or_unfinished_write_records_why() -> None:
    writes = TeamsWrites(_message())
    step = AssignNumber(NUMBER, "u-ann")
    refused = writes.answered(step, PermanentError(Reason.NOT_LICENSED, "no licence"), NOW)
    assert refused is not None
    assert (refused.outcome, refused.detail) == (AuditOutcome.FAILED, "not_licensed: no licence")
    pending = writes.raised(step, OperationPendingError("running", location="op/1",
                                                         retry_after_seconds=5), NOW)
    assert pending is not None
    assert pending.outcome is AuditOutcome.PENDING
    throttled = writes.raised(UnassignNumber(OLD), TemporaryError("429"), NOW)
    assert throttled is not None
    assert (throttled.kind, throttled.outcome, throttled.before) == (
        AuditKind.NUMBER_UNASSIGNED, AuditOutcome.FAILED, OLD)
    assert writes.raised(step, KeyboardInterrupt(), NOW) is None


def test_a_grant_records_the_effective_policies_before_and_a_revocation_the_apps_grant() -> None:
    policies = (MainNumberPolicy(policy_type="CallingLineIdentity", name="Contoso Main"),)
    writes = TeamsWrites(_message(action="grant_policies", domain="contoso.example",
                                  policies=policies, previous_number=None))
    seen = TeamsUser("u-ann", True, (), effective_policy_names={"CallingLineIdentity": "Global"})
    writes.answered(ReadTeamsUser("u-ann"), seen, NOW)
    granted = writes.answered(AssignPolicies("u-ann", (("CallingLineIdentity", "cli-1"),)),
                              None, NOW)
    assert granted is not None
    assert (granted.kind, granted.before, granted.after, granted.number) == (
        AuditKind.POLICIES_GRANTED, "CallingLineIdentity: Global",
        "CallingLineIdentity: Contoso Main", NUMBER)
    grant = PolicyGrant("u-ann", "ann@contoso.example", "contoso.example", NUMBER,
                        (GrantedPolicy("CallingLineIdentity", "Contoso Main", "cli-1",
                                       assigned_by_app=True),), NOW, verified=True)
    writes.answered(GetGrant("u-ann"), grant, NOW)
    revoked = writes.answered(UnassignPolicies("u-ann", ("CallingLineIdentity",)), None, NOW)
    assert revoked is not None
    assert (revoked.kind, revoked.before, revoked.after) == (
        AuditKind.POLICIES_REVOKED, "CallingLineIdentity: Contoso Main", None)


def test_an_entry_reads_back_from_its_json() -> None:
    entry = _entry(NOW, user_id="u", policies=("A: b",), outcome=AuditOutcome.FAILED,
                   detail="why", message_id="m", step="s")
    assert AuditEntry.from_json(entry.to_json()) == entry
    assert entry.concerns("U")
    assert not entry.concerns("v")


# -- who ---------------------------------------------------------------------------------------


def test_who_is_the_name_given_then_the_signed_in_caller_then_the_function_key() -> None:
    header = {PRINCIPAL_HEADER.lower(): "alice@operator.example"}
    assert http_actor(header, None, app_service_authentication=True) == Actor(
        "alice@operator.example", "alice@operator.example")
    assert http_actor(header, "ops", app_service_authentication=True) == Actor(
        "ops", "alice@operator.example")
    # Without App Service authentication anyone can send the header: it does not count.
    assert http_actor(header, None, app_service_authentication=False) == Actor(
        FUNCTION_KEY, FUNCTION_KEY)
    with pytest.raises(RequestError) as refused:
        http_actor({PRINCIPAL_HEADER: "x" * 300}, None, app_service_authentication=True)
    assert refused.value.field == PRINCIPAL_HEADER


def test_the_audit_query_reads_dates_and_names_a_bad_one() -> None:
    query = AuditQuery.from_http({"since": "2026-11-01", "user": " Ann@Contoso.example "})
    assert (query.since, query.user) == (datetime(2026, 11, 1, tzinfo=UTC),
                                         "Ann@Contoso.example")
    assert AuditQuery.from_http({"since": "2026-11-01T08:00:00"}).since == datetime(
        2026, 11, 1, 8, tzinfo=UTC)
    with pytest.raises(RequestError) as refused:
        AuditQuery.from_options("yesterday", None, {"since": "--since"})
    assert refused.value.field == "--since"
    assert "yesterday" in refused.value.message


# -- on fakes: a repeated write is one entry; a failing audit fails nothing --------------------


class CrashingClaims(FakeClaimStore):
    """The worker dies once, right after Teams took the number."""

    crashed = False

    async def mark_assigned(self, number: str, user_id: str) -> bool:
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("worker died")
        return await super().mark_assigned(number, user_id)


class BrokenAuditLog(FakeAuditLog):
    async def record(self, entry: AuditEntry) -> bool:
        raise OSError("table storage unavailable")


ANN = Member("u-ann", "ann@contoso.example", (NUMBER,), True, 0)


async def test_a_redelivery_after_the_wait_appends_no_second_entry() -> None:
    audit = FakeAuditLog(TENANT_KEY)
    teams = FakeTeamsNumbers()
    lagging = FakeTeamsUsers(teams)
    lagging.numbers_hidden.add("u-ann")  # Teams' views lag: a look never shows the number
    context = fake_context(teams=teams, teams_users=lagging, audit=audit,
                           claims=CrashingClaims(TENANT_KEY), users=FakeUsers([ANN]))
    message = _message(previous_number=None)

    with pytest.raises(RuntimeError, match="worker died"):
        await deliver(context, message)  # Teams took it; the worker died as the app marked it
    # The copy that waited for Teams was being processed: the host delivers it again.
    (location,) = teams.operations
    waited = message.model_copy(update={"deferrals": 1, "operation_location": location})
    await deliver(context, waited, redelivered=True)

    assert [call[:2] for call in teams.assign_calls] == [(NUMBER, "u-ann")]  # written once
    pending, done = audit.recorded()  # each recorded once
    assert (pending.kind, pending.after, pending.outcome) == (
        AuditKind.NUMBER_ASSIGNED, NUMBER, AuditOutcome.PENDING)
    assert (done.kind, done.after, done.outcome) == (
        AuditKind.NUMBER_ASSIGNED, NUMBER, AuditOutcome.DONE)


async def test_an_audit_that_cannot_be_written_does_not_fail_the_change() -> None:
    teams = FakeTeamsNumbers()
    context = fake_context(teams=teams, audit=BrokenAuditLog(TENANT_KEY), users=FakeUsers([ANN]))

    result = await deliver(context, _message(previous_number=None))

    assert result is not None
    assert result.number == NUMBER
    assert teams.assignments == {NUMBER: "u-ann"}
    assert isinstance(await context.ports.claims.get_claim(NUMBER), Claim)


def test_an_actor_without_a_name_is_its_caller() -> None:
    assert Actor.of("  ", "cli:ops") == Actor("cli:ops", "cli:ops")
    assert Actor.of("Ops Team", "function key") == Actor("Ops Team", "function key")


def test_an_entry_at_the_month_boundary_is_in_its_own_month() -> None:
    last = datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC)
    first = last + timedelta(microseconds=1)
    assert entry_keys(TENANT_KEY, _entry(last))[0].endswith("2026-11")
    assert entry_keys(TENANT_KEY, _entry(first))[0].endswith("2026-12")
