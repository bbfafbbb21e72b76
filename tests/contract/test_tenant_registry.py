"""The tenant registry's and the tenant health store's contract, against the in-memory fakes and
the Table Storage adapters on Azurite."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableServiceClient

from local_runner.azurite import Azurite
from shared.adapters.storage.claims_and_statuses import ensure_tables
from shared.adapters.storage.tenants import (
    TENANT_HEALTH_TABLE,
    TENANTS_TABLE,
    TableTenantHealthStore,
    TableTenantRegistry,
)
from shared.core.tenant_registry import (
    RegistryError,
    SyncSchedule,
    TenantAction,
    TenantExistsError,
    TenantHealthState,
    TenantNotFoundError,
    TenantRecord,
    TenantState,
    TransitionRefused,
    apply_action,
    new_tenant,
    next_health,
    with_changes,
)
from shared.core.tenant_rules import NumberRange
from shared.service.ports import TenantHealthStore, TenantRegistry
from tests.fakes import FakeTenantHealthStore, FakeTenantRegistry

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)
OPS = "ops@operator.example"
GROUP = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"


@dataclass
class Registry:
    """A registry of its own (an empty table), and a way to write a row by hand."""

    registry: TenantRegistry
    write_row: Callable[[str, str], Awaitable[None]]


@pytest.fixture(params=["fake", "azurite"])
async def tables(request: pytest.FixtureRequest) -> AsyncIterator[TableServiceClient | None]:
    """None for the fakes; a Table service on Azurite with fresh tables named by the test."""
    if request.param == "fake":
        yield None
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        yield service


@pytest.fixture
async def registry(tables: TableServiceClient | None) -> Registry:
    if tables is None:
        fake = FakeTenantRegistry()

        async def write_fake_row(key: str, text: str) -> None:
            fake.rows[key] = text

        return Registry(fake, write_fake_row)
    name = f"tenants{uuid.uuid4().hex[:12]}"  # the registry lists every row: a table per test
    await tables.create_table(name)
    table = tables.get_table_client(name)

    async def write_table_row(key: str, text: str) -> None:
        await table.upsert_entity({"PartitionKey": "tenant", "RowKey": key, "Record": text},
                                  mode=UpdateMode.REPLACE)

    return Registry(TableTenantRegistry(tables, name), write_table_row)


@pytest.fixture
async def health(tables: TableServiceClient | None) -> TenantHealthStore:
    if tables is None:
        return FakeTenantHealthStore()
    name = f"tenanthealth{uuid.uuid4().hex[:12]}"
    await tables.create_table(name)
    return TableTenantHealthStore(tables, name)


def _tenant(display_name: str = "Contoso", **fields: object) -> TenantRecord:
    return new_tenant(tenant_id=str(uuid.uuid4()), display_name=display_name,
                      voice_group_id=GROUP, by=OPS, at=AT, **fields)


# --- The registry --------------------------------------------------------------------------------


async def test_a_registered_tenant_reads_back_whole(registry: Registry) -> None:
    store = registry.registry
    contoso = _tenant(
        "Contoso Zürich",
        rules={"numberRanges": [{"first": "+31855363000", "last": "+31855363999"}],
               "mainNumbers": {"contoso.example": "+31855363010"},
               "mainNumberPolicies": "contoso.example=CallingLineIdentity:Contoso Main"},
        sync_interval_minutes=15,
    )
    fabrikam = _tenant("Fabrikam")
    await store.add(contoso)
    await store.add(fabrikam)

    assert await store.get(contoso.key) == contoso
    assert await store.list_tenants() == sorted([contoso, fabrikam], key=lambda r: r.key)
    assert await store.get(str(uuid.uuid4())) is None


async def test_an_empty_registry_lists_no_tenants(registry: Registry) -> None:
    assert await registry.registry.list_tenants() == []
    assert await registry.registry.list_readable_tenants() == ([], [])


async def test_a_tenant_is_registered_once(registry: Registry) -> None:
    store = registry.registry
    first = _tenant()
    await store.add(first)

    with pytest.raises(TenantExistsError, match=first.key):
        await store.add(with_changes(first, by="other", at=AT, display_name="Other"))
    assert await store.get(first.key) == first


async def test_an_update_stores_the_change_and_returns_it(registry: Registry) -> None:
    store = registry.registry
    record = _tenant()
    await store.add(record)
    later = AT + timedelta(hours=1)

    active = await store.update(
        record.key, lambda r: apply_action(r, TenantAction.ACTIVATE, by="lead", at=later)
    )

    assert active.state is TenantState.ACTIVE
    assert (active.changed_by, active.changed_at) == ("lead", later)
    assert await store.get(record.key) == active
    assert await store.update(record.key, lambda r: r) == active  # no change, nothing to write


async def test_a_refused_change_stores_nothing(registry: Registry) -> None:
    store = registry.registry
    record = _tenant()
    await store.add(record)

    with pytest.raises(TransitionRefused, match="cannot resume"):
        await store.update(
            record.key, lambda r: apply_action(r, TenantAction.RESUME, by="lead", at=AT)
        )
    assert await store.get(record.key) == record


async def test_updating_an_unknown_tenant_is_refused(registry: Registry) -> None:
    unknown = str(uuid.uuid4())
    with pytest.raises(TenantNotFoundError, match=unknown):
        await registry.registry.update(unknown, lambda r: r)


async def test_a_change_may_not_give_the_tenant_another_id(registry: Registry) -> None:
    store = registry.registry
    record, other = _tenant(), _tenant("Other")
    await store.add(record)

    with pytest.raises(RegistryError, match="another id"):
        await store.update(record.key, lambda r: other)
    assert await store.get(record.key) == record


async def test_concurrent_updates_all_land(registry: Registry) -> None:
    store = registry.registry
    record = _tenant()
    await store.add(record)

    def one_more(current: TenantRecord) -> TenantRecord:
        return with_changes(current, by="lead", at=AT,
                            sync_interval_minutes=current.sync_interval_minutes + 1)

    await asyncio.gather(*(store.update(record.key, one_more) for _ in range(8)))

    stored = await store.get(record.key)
    assert stored is not None
    assert stored.sync_interval_minutes == 8


async def test_a_record_with_thousands_of_numbers_reads_back_whole(registry: Registry) -> None:
    # ~3,000 single numbers is more JSON than one table property holds.
    ranges = [{"first": f"+3185536{n:04d}", "last": f"+3185536{n:04d}"} for n in range(3000)]
    record = _tenant(rules={"numberRanges": ranges})
    await registry.registry.add(record)

    stored = await registry.registry.get(record.key)
    assert stored is not None
    assert stored.rules.number_ranges[-1] == NumberRange(first="+31855362999",
                                                         last="+31855362999")
    assert stored == record


async def test_a_row_edited_into_an_invalid_record_names_the_row_and_field(
    registry: Registry,
) -> None:
    store = registry.registry
    good, edited = _tenant("Good"), _tenant("Edited")
    await store.add(good)
    await store.add(edited)
    broken = {**json.loads(edited.to_json()), "teamsRequestsPerSecond": 0}
    await registry.write_row(edited.key, json.dumps(broken))

    with pytest.raises(RegistryError) as caught:
        await store.get(edited.key)
    message = str(caught.value)
    assert f"row {edited.key!r}" in message
    assert "teamsRequestsPerSecond=0" in message

    with pytest.raises(RegistryError, match="teamsRequestsPerSecond=0"):
        await store.list_tenants()
    with pytest.raises(RegistryError, match="teamsRequestsPerSecond=0"):
        await store.update(edited.key, lambda r: r)
    readable, problems = await store.list_readable_tenants()
    assert readable == [good]
    assert [str(p) for p in problems] == [message]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "not JSON"),
        ('["a list"]', "record: Input should be an object"),
        ("{}", "tenantId: missing"),
    ],
)
async def test_a_row_that_is_no_record_at_all_is_a_registry_error(
    registry: Registry, text: str, expected: str
) -> None:
    key = str(uuid.uuid4())
    await registry.write_row(key, text)

    with pytest.raises(RegistryError, match=expected):
        await registry.registry.get(key)


async def test_a_row_holding_another_tenants_record_is_a_registry_error(
    registry: Registry,
) -> None:
    record = _tenant()
    row = str(uuid.uuid4())
    await registry.write_row(row, record.to_json())

    with pytest.raises(RegistryError, match=f"tenantId='{record.key}': the row is tenant"):
        await registry.registry.get(row)


# --- Table Storage only --------------------------------------------------------------------------


async def test_ensure_tables_makes_the_registry_tables(azurite: Azurite) -> None:
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        await ensure_tables(service)
        names = {table.name async for table in service.list_tables()}

    assert {TENANTS_TABLE, TENANT_HEALTH_TABLE} <= names


async def test_a_row_whose_state_column_was_edited_alone_is_refused(azurite: Azurite) -> None:
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        name = f"tenants{uuid.uuid4().hex[:12]}"
        await service.create_table(name)
        store = TableTenantRegistry(service, name)
        record = _tenant()
        await store.add(record)
        table = service.get_table_client(name)
        entity = await table.get_entity("tenant", record.key)
        assert entity["State"] == "onboarding"
        await table.update_entity({**entity, "State": "active"}, mode=UpdateMode.REPLACE)

        with pytest.raises(RegistryError, match="State='active': the record's state is"):
            await store.get(record.key)


async def test_a_record_too_large_for_a_row_is_refused_before_writing(azurite: Azurite) -> None:
    # 20,000 single numbers are ~1 MB of JSON: past what a row takes.
    ranges = [{"first": f"+3185536{n % 10_000:04d}", "last": f"+3185536{n % 10_000:04d}"}
              for n in range(20_000)]
    record = _tenant(rules={"numberRanges": ranges})
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        name = f"tenants{uuid.uuid4().hex[:12]}"
        await service.create_table(name)
        store = TableTenantRegistry(service, name)

        with pytest.raises(RegistryError, match="too large for one table row"):
            await store.add(record)
        assert await store.get(record.key) is None


# --- Health and schedules ------------------------------------------------------------------------


async def test_health_is_none_until_saved_then_replaced(health: TenantHealthStore) -> None:
    tenant, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert await health.health(tenant) is None

    failed = next_health(None, tenant, TenantHealthState.AUTH_FAILED, "consent withdrawn", AT)
    await health.save_health(failed)
    assert await health.health(tenant) == failed

    healed = next_health(failed, tenant, TenantHealthState.HEALTHY, "", AT + timedelta(hours=1))
    await health.save_health(healed)
    missing = next_health(None, other, TenantHealthState.GROUP_MISSING, "no group 0a1b", AT)
    await health.save_health(missing)

    assert await health.health(tenant) == healed
    assert await health.list_health() == {tenant: healed, other: missing}


async def test_a_schedule_is_empty_until_marked_and_each_mark_sets_its_time(
    health: TenantHealthStore,
) -> None:
    tenant, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert await health.schedule(tenant) == SyncSchedule(tenant)
    assert await health.list_schedules() == {}

    await health.mark_enqueued(tenant, AT)
    await health.mark_started(tenant, AT + timedelta(seconds=5))
    assert await health.schedule(tenant) == SyncSchedule(tenant, AT, AT + timedelta(seconds=5))
    await health.mark_finished(tenant, AT + timedelta(minutes=1))
    await health.mark_enqueued(tenant, AT + timedelta(minutes=5))
    await health.mark_started(other, AT)

    assert await health.list_schedules() == {
        tenant: SyncSchedule(tenant, AT + timedelta(minutes=5), AT + timedelta(seconds=5),
                             AT + timedelta(minutes=1)),
        other: SyncSchedule(other, started_at=AT),
    }


async def test_concurrent_marks_of_different_times_all_land(health: TenantHealthStore) -> None:
    tenant = str(uuid.uuid4())
    await asyncio.gather(
        health.mark_enqueued(tenant, AT),
        health.mark_started(tenant, AT + timedelta(seconds=1)),
        health.mark_finished(tenant, AT + timedelta(seconds=2)),
    )

    assert await health.schedule(tenant) == SyncSchedule(
        tenant, AT, AT + timedelta(seconds=1), AT + timedelta(seconds=2))


async def test_a_health_row_with_an_unknown_state_is_a_registry_error(azurite: Azurite) -> None:
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        name = f"tenanthealth{uuid.uuid4().hex[:12]}"
        await service.create_table(name)
        tenant = str(uuid.uuid4())
        await service.get_table_client(name).upsert_entity({
            "PartitionKey": tenant, "RowKey": "health", "State": "sick", "Message": "",
            "Since": AT, "CheckedAt": AT,
        })

        with pytest.raises(RegistryError, match="State='sick': not one of healthy"):
            await TableTenantHealthStore(service, name).health(tenant)
