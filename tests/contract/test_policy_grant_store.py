"""One set of assertions for the policy grant store: the in-memory fake and the Table Storage
adapter on Azurite must behave the same."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from azure.data.tables.aio import TableServiceClient

from local_runner.azurite import Azurite
from shared.adapters.storage.claims_and_statuses import ensure_tables
from shared.adapters.storage.policy_grants import TablePolicyGrantStore
from shared.core.policy_planner import GrantedPolicy, PolicyGrant
from shared.service.ports import PolicyGrantStore
from tests.fakes import FakePolicyGrantStore

pytestmark = pytest.mark.integration

GRANTED_AT = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)

GrantsFor = Callable[[str], PolicyGrantStore]


@pytest.fixture(params=["fake", "azurite"])
async def grants_for(request: pytest.FixtureRequest) -> AsyncIterator[GrantsFor]:
    """A store bound to the tenant given (each test's own)."""
    if request.param == "fake":
        yield FakePolicyGrantStore
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        await ensure_tables(service)
        yield lambda tenant: TablePolicyGrantStore(service, tenant)


def _tenant() -> str:
    return str(uuid.uuid4())


def _grant(user: str, *, verified: bool = True) -> PolicyGrant:
    return PolicyGrant(
        user_id=user, user_principal_name=f"{user}@contoso.example", domain="contoso.example",
        main_number="+31855363010",
        policies=(
            GrantedPolicy("CallingLineIdentity", "Contoso Main", "cli-1", assigned_by_app=True),
            GrantedPolicy("OnlineVoiceRoutingPolicy", "O'Brien / NL", "route-1",
                          assigned_by_app=False),
        ),
        granted_at=GRANTED_AT, verified=verified,
    )


async def test_a_saved_grant_reads_back_whole(grants_for: GrantsFor) -> None:
    grants = grants_for(_tenant())
    await grants.save_grant(_grant("ann"))

    assert await grants.get_grant("ann") == _grant("ann")
    assert await grants.list_grants() == {"ann": _grant("ann")}


async def test_saving_again_replaces_the_grant(grants_for: GrantsFor) -> None:
    grants = grants_for(_tenant())
    await grants.save_grant(_grant("ann", verified=False))
    changed = replace(_grant("ann"), domain="fabrikam.example", policies=_grant("x").policies[:1])
    await grants.save_grant(changed)
    await grants.save_grant(changed)  # idempotent

    assert await grants.list_grants() == {"ann": changed}


async def test_removing_a_grant_is_idempotent(grants_for: GrantsFor) -> None:
    grants = grants_for(_tenant())
    await grants.save_grant(_grant("ann"))

    assert await grants.remove_grant("ann")
    assert not await grants.remove_grant("ann")
    assert await grants.get_grant("ann") is None


async def test_grants_are_partitioned_by_tenant(grants_for: GrantsFor) -> None:
    grants_a, grants_b = grants_for(_tenant()), grants_for(_tenant())
    await grants_a.save_grant(_grant("ann"))
    await grants_b.save_grant(_grant("bob"))

    assert set(await grants_a.list_grants()) == {"ann"}
    assert not await grants_a.remove_grant("bob")
    assert set(await grants_b.list_grants()) == {"bob"}
