"""A restore stores every claim as it was exported, on the fakes and on Azurite alike: an insert
in Table Storage records the holder, the ownership marker and the intent only, so the grace
period and the cooling of a claim are put back by the restore's own steps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from azure.data.tables.aio import TableServiceClient

from local_runner.azurite import Azurite
from shared.adapters.storage.claims_and_statuses import TableClaimStore, ensure_tables
from shared.adapters.storage.policy_grants import TablePolicyGrantStore
from shared.adapters.storage.runs import TableRunLedger
from shared.core.directory import Claim
from shared.core.policy_planner import GrantedPolicy, PolicyGrant
from shared.core.records import Hold
from shared.core.tenant_export import build_export
from shared.core.tenant_registry import TenantSettings
from shared.service.context import TenantContext
from shared.service.tenant_export import export_tenant, restore_tenant
from tests.fakes import NOW, FakeTeamsNumbers, fake_context

pytestmark = pytest.mark.integration

ContextFor = Callable[[FakeTeamsNumbers], TenantContext]


@pytest.fixture(params=["fake", "azurite"])
async def context_for(request: pytest.FixtureRequest) -> AsyncIterator[ContextFor]:
    tenant = TenantSettings(tenant_id=uuid.uuid4(), voice_group_id=uuid.uuid4())
    if request.param == "fake":
        yield lambda teams: fake_context(tenant=tenant, teams=teams)
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    async with TableServiceClient.from_connection_string(azurite.connection_string) as service:
        await ensure_tables(service)
        key = tenant.key
        yield lambda teams: fake_context(
            tenant=tenant, teams=teams, claims=TableClaimStore(service, key),
            grants=TablePolicyGrantStore(service, key), ledger=TableRunLedger(service, key))


CLAIMS = [
    Claim("+31855363011", "ann", "ann@contoso.example", "run-1", 0, assigned=True,
          release_pending_since=NOW - timedelta(hours=3)),
    Claim("+31855363012", "bob", "bob@contoso.example", "run-1", 1, assigned=True),
    Claim("+31855363013", "cara", "cara@contoso.example", "run-1", 2,
          released_at=NOW - timedelta(days=2)),
    Claim("+31855363014", "dan", "dan@contoso.example", "run-1", 3,
          assigning_since=NOW - timedelta(minutes=5)),
]
GRANT = PolicyGrant("erik", "erik@contoso.example", "contoso.example", "+31855363010",
                    (GrantedPolicy("CallingLineIdentity", "Contoso Main", "cli-1", True),
                     GrantedPolicy("OnlineVoiceRoutingPolicy", "NL", "route-1", False)),
                    NOW - timedelta(days=1), verified=True)
HOLD = Hold("run-2", "bob", "bob@contoso.example", "+31855363012", "mass_unassign_guard",
            "held", "pending", NOW)
TEAMS = {"+31855363011": "ann", "+31855363012": "bob", "+31855363014": "dan"}


async def test_a_restore_stores_each_row_as_it_was_exported(context_for: ContextFor) -> None:
    context = context_for(FakeTeamsNumbers(TEAMS))
    document = build_export(context.tenant.key, NOW, claims=CLAIMS, statuses=[],
                            grants=[GRANT], holds=[HOLD])

    restore = await restore_tenant(context, document)
    again = await restore_tenant(context, document)  # cut off and run again: the same rows

    assert restore.reported == again.reported == ()
    exported = await export_tenant(context)
    assert exported.claims == document.claims
    assert exported.grants == document.grants
    assert exported.holds == document.holds
