"""The service's tenant runs on fakes: fan-out, the consent check, health, the release holds."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta

import pytest

from shared.core.directory import Claim, Member
from shared.core.errors import PermanentError
from shared.core.outcomes import Reason
from shared.core.tenant_registry import (
    TenantAction,
    TenantHealthState,
    TenantRecord,
    apply_action,
    new_tenant,
)
from shared.core.tenant_sync_messages import TenantSyncMessage
from shared.service.tenant_runs import (
    OperatorPorts,
    fan_out,
    hold_numbers_for_release,
    run_tenant,
)
from tests.fakes import (
    NOW,
    TENANT,
    FakeClaimStore,
    FakeDirectory,
    FakeRunLedger,
    FakeTenantHealthStore,
    SettableClock,
    fake_context,
)

EVERY_ROLE = frozenset({"GroupMember.Read.All", "User.Read.All",
                        "TeamsTelephoneNumber.ReadWrite.All", "TeamsUserConfiguration.Read.All"})


class FakeSyncQueue:
    """Collects the tenant-sync messages sent."""

    def __init__(self) -> None:
        self.sent: list[TenantSyncMessage] = []

    async def send_syncs(self, messages: Sequence[TenantSyncMessage]) -> None:
        self.sent.extend(messages)


class FakeAccess:
    """A tenant's token roles, or Entra's refusal."""

    def __init__(self, roles: frozenset[str] | None = EVERY_ROLE,
                 refusal: PermanentError | None = None) -> None:
        self.roles = roles
        self.refusal = refusal

    async def granted_roles(self) -> frozenset[str] | None:
        if self.refusal is not None:
            raise self.refusal
        return self.roles


class CountingDirectory(FakeDirectory):
    """A voice group that counts its reads, or fails each with ``error``."""

    def __init__(self, members: Sequence[Member], error: Exception | None = None) -> None:
        super().__init__(members)
        self.reads = 0
        self.error = error

    async def read_members(self, group_id: str) -> list[Member]:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return await super().read_members(group_id)


def record(tenant_id: str, *, active: bool = True) -> TenantRecord:
    made = new_tenant(tenant_id=tenant_id, display_name=f"tenant {tenant_id[-2:]}",
                      voice_group_id="7e1b2c3d-0000-4000-8000-000000000002", by="ops", at=NOW)
    return apply_action(made, TenantAction.ACTIVATE, by="ops", at=NOW) if active else made


async def test_the_timer_enqueues_each_active_tenant_once_until_its_run_finished() -> None:
    records = [record("7e1b2c3d-0000-4000-8000-0000000000a1"),
               record("7e1b2c3d-0000-4000-8000-0000000000a2"),
               record("7e1b2c3d-0000-4000-8000-0000000000a3", active=False)]
    health, queue = FakeTenantHealthStore(), FakeSyncQueue()
    ports = OperatorPorts(health, queue)

    first = await fan_out(records, ports, now=NOW, requested_by="timer")
    again = await fan_out(records, ports, now=NOW + timedelta(minutes=5), requested_by="timer")
    await health.mark_started(records[0].key, NOW + timedelta(minutes=6))
    await health.mark_finished(records[0].key, NOW + timedelta(minutes=7))
    later = await fan_out(records, ports, now=NOW + timedelta(minutes=10), requested_by="timer")

    assert first.enqueued == (records[0].key, records[1].key)
    assert records[2].key in first.not_due  # onboarding: never synced by the timer
    assert again.enqueued == ()  # still in flight: not sent twice
    assert later.enqueued == (records[0].key,)
    assert [m.tenant_key for m in queue.sent] == [records[0].key, records[1].key, records[0].key]


async def test_a_missing_permission_stops_the_run_before_any_graph_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    directory = CountingDirectory([])
    ledger = FakeRunLedger(TENANT.key)
    clock = SettableClock()
    context = fake_context(directory=directory, ledger=ledger, clock=clock)
    health = FakeTenantHealthStore()
    access = FakeAccess(EVERY_ROLE - {"TeamsTelephoneNumber.ReadWrite.All"})
    caplog.set_level(logging.ERROR)

    first = await run_tenant(context, access, health, "run-1")
    clock.now = NOW + timedelta(minutes=5)
    second = await run_tenant(context, access, health, "run-2")

    assert directory.reads == 0
    assert first.summary is None
    assert second.health is not None
    assert second.health.state is TenantHealthState.AUTH_FAILED
    assert second.health.since == NOW  # the same trouble: still since the first run
    assert "TeamsTelephoneNumber.ReadWrite.All" in second.health.message
    assert [run.outcome for run in await ledger.runs()] == ["failed", "failed"]
    assert len([r for r in caplog.records if "health auth_failed" in r.getMessage()]) == 1
    schedule = await health.schedule(TENANT.key)
    assert schedule.finished_at == NOW + timedelta(minutes=5)


@pytest.mark.parametrize(("error", "state"), [
    (PermanentError(Reason.GROUP_NOT_FOUND, "the group is gone"),
     TenantHealthState.GROUP_MISSING),
    (PermanentError(Reason.GRAPH_FORBIDDEN, "refused"), TenantHealthState.AUTH_FAILED),
])
async def test_a_failed_run_is_the_tenants_health_not_an_exception(
    error: PermanentError, state: TenantHealthState,
) -> None:
    context = fake_context(directory=CountingDirectory([], error))
    health = FakeTenantHealthStore()

    result = await run_tenant(context, FakeAccess(), health, "run-1")

    assert result.health is not None
    assert result.health.state is state
    assert result.health.message == error.message


async def test_entra_refusing_a_token_is_auth_failed() -> None:
    refusal = PermanentError(Reason.GRAPH_FORBIDDEN, "Entra ID refused: AADSTS7000229")
    directory = CountingDirectory([])
    health = FakeTenantHealthStore()

    result = await run_tenant(fake_context(directory=directory),
                              FakeAccess(refusal=refusal), health, "run-1")

    assert directory.reads == 0
    assert result.health is not None
    assert result.health.state is TenantHealthState.AUTH_FAILED
    assert "AADSTS7000229" in result.health.message


async def test_a_healthy_run_records_healthy_and_a_dry_run_records_nothing() -> None:
    member = Member("ann", "ann@contoso.example", ("+31855363011",), True, 0)
    context = fake_context(directory=CountingDirectory([member]))
    health = FakeTenantHealthStore()

    preview = await run_tenant(context, FakeAccess(), health, "run-0", dry_run=True)
    real = await run_tenant(context, FakeAccess(), health, "run-1")

    assert preview.health is None
    assert preview.summary is not None
    assert preview.summary.dry_run
    assert real.health is not None
    assert real.health.state is TenantHealthState.HEALTHY
    assert real.summary is not None
    assert real.summary.enqueued == 1


async def test_release_holds_cover_only_numbers_the_app_assigned() -> None:
    claims = FakeClaimStore(TENANT.key)
    await claims.claim(Claim("+31855363011", "ann", "ann@contoso.example", "r", 0,
                             assigned=True))
    await claims.claim(Claim("+31855363012", "bob", "bob@contoso.example", "r", 1))
    ledger = FakeRunLedger(TENANT.key)
    context = fake_context(claims=claims, ledger=ledger)

    held = await hold_numbers_for_release(context, "ops@operator.example")

    assert [(hold.number, hold.status) for hold in held] == [("+31855363011", "pending")]
    assert [hold.number for hold in await ledger.holds("pending")] == ["+31855363011"]
