"""Restore from an export: the decisions (``shared.core.tenant_restore``) and the service that
writes them through the ports (``shared.service.tenant_export``), on the fakes."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.core.directory import Claim
from shared.core.outcomes import Outcome, Reason
from shared.core.policy_planner import GrantedPolicy, PolicyGrant
from shared.core.records import Hold, UserStatus
from shared.core.tenant_export import ExportError, TenantExport, build_export
from shared.core.tenant_restore import (
    RestoreKind,
    RestoreReason,
    RestoreVerdict,
    plan_restore,
    restore_refusal,
)
from shared.service.tenant_export import RestoreRefusedError, export_tenant, restore_tenant
from tests.fakes import (
    NOW,
    TENANT,
    FakeClaimStore,
    FakePolicyGrantStore,
    FakeRunLedger,
    FakeStatusStore,
    FakeTeamsNumbers,
    fake_context,
)

KEY = TENANT.key
ANN, BOB, CARA, DAN, ERIK = "ann", "bob", "cara", "dan", "erik"
ANN_N, BOB_N, CARA_N, ERIK_N = "+31855363011", "+31855363012", "+31855363013", "+31855363014"


def claim(number: str, user: str, **fields: object) -> Claim:
    made = Claim(number, user, f"{user}@contoso.example", "run-1", 0, assigned=True)
    return replace(made, **fields)  # type: ignore[arg-type]


GRANT = PolicyGrant(DAN, "dan@contoso.example", "contoso.example", "+31855363010",
                    (GrantedPolicy("CallingLineIdentity", "Contoso Main", "cli-1", True),),
                    NOW - timedelta(days=2), verified=True)


def hold(user: str, number: str, status: str = "pending") -> Hold:
    return Hold("run-2", user, f"{user}@contoso.example", number, "mass_unassign_guard",
                "held", status, NOW, decided_by="ops" if status != "pending" else None,
                decided_at=NOW if status != "pending" else None)


def export(claims: list[Claim], *, holds: list[Hold] | None = None) -> TenantExport:
    status = UserStatus(ANN, "ann@contoso.example", Outcome.ASSIGNED, Reason.ASSIGNED, ANN_N,
                        "assigned", "run-1", 0, NOW)
    return build_export(KEY, NOW, claims=claims, statuses=[status], grants=[GRANT],
                        holds=holds or [])


def verdicts(document: TenantExport, teams: dict[str, str]) -> dict[str, tuple[str, str]]:
    return {f"{d.kind.value} {d.number}": (d.verdict.value, d.reason.value)
            for d in plan_restore(document, teams).decisions}


def test_a_claim_is_restored_only_where_teams_agrees_and_reported_otherwise() -> None:
    document = export([
        claim(ANN_N, ANN),  # on ann in Teams: restored
        claim(BOB_N, BOB),  # Teams has it on erik: reported
        claim(CARA_N, CARA),  # Teams has it on nobody: reported
        claim(ERIK_N, ERIK, assigned=False, released_at=NOW - timedelta(days=1)),  # cooling
        claim("+31855363015", "fay", assigned=False),  # found on fay: restored
        claim("+31855363016", "gus", assigned=False, released_at=NOW),  # cooling, yet on gus
    ])
    teams = {ANN_N: ANN, BOB_N: ERIK, "+31855363015": "fay", "+31855363016": "gus"}

    assert verdicts(document, teams) == {
        f"claim {ANN_N}": ("restore", "on_holder"),
        f"claim {BOB_N}": ("report", "assigned_elsewhere"),
        f"claim {CARA_N}": ("report", "not_in_teams"),
        f"claim {ERIK_N}": ("restore", "cooling"),
        "claim +31855363015": ("restore", "on_holder"),
        "claim +31855363016": ("report", "assigned_while_cooling"),
        "grant +31855363010": ("restore", "granted"),
    }
    restore = plan_restore(document, teams)
    assert [c.number for c in restore.claims] == [ANN_N, ERIK_N, "+31855363015"]
    assert restore.grants == (GRANT,)
    assert restore.statuses_not_restored == 1
    (elsewhere,) = [d for d in restore.reported if d.reason is RestoreReason.ASSIGNED_ELSEWHERE]
    assert "bob@contoso.example (bob) holds it, but Teams has it on erik" in elsewhere.message
    assert "never forced" in elsewhere.message


def test_a_pending_hold_is_restored_with_its_claim_and_reported_without_it() -> None:
    document = export(
        [claim(ANN_N, ANN), claim(BOB_N, BOB)],
        holds=[hold(ANN, ANN_N), hold(BOB, BOB_N), hold(CARA, CARA_N, "approved")],
    )
    restore = plan_restore(document, {ANN_N: ANN, BOB_N: ERIK})

    decided = {(d.kind, d.user_id): (d.verdict, d.reason) for d in restore.decisions}
    assert decided[(RestoreKind.HOLD, ANN)] == (RestoreVerdict.RESTORE,
                                                 RestoreReason.PENDING_HOLD)
    assert decided[(RestoreKind.HOLD, BOB)] == (RestoreVerdict.REPORT,
                                                 RestoreReason.HOLD_WITHOUT_CLAIM)
    assert decided[(RestoreKind.HOLD, CARA)] == (RestoreVerdict.RESTORE,
                                                  RestoreReason.DECIDED_HOLD)
    assert [(h.user_id, h.status) for h in restore.holds] == [(ANN, "pending"),
                                                              (CARA, "approved")]


def test_the_summary_says_what_was_restored_and_reported() -> None:
    restore = plan_restore(export([claim(ANN_N, ANN), claim(BOB_N, BOB)]), {ANN_N: ANN})

    summary = restore.summary_json(dry_run=True)

    assert summary["restored"] == {"claims": 1, "grants": 1, "holds": 0}
    assert summary["dryRun"] is True
    assert summary["notRestored"] == {"statuses": 1}
    assert summary["reported"] == [{
        "kind": "claim", "verdict": "report", "reason": "not_in_teams", "userId": BOB,
        "userPrincipalName": "bob@contoso.example", "number": BOB_N,
        "message": restore.reported[0].message,
    }]


def test_a_store_in_use_is_refused_naming_what_is_there() -> None:
    restore = plan_restore(export([claim(ANN_N, ANN)]), {ANN_N: ANN})

    assert restore_refusal(restore, {}, {}) is None
    # What this restore writes itself (it was cut off) is no reason to refuse.
    assert restore_refusal(restore, {ANN_N: claim(ANN_N, ANN, assigned=False)},
                           {DAN: GRANT}) is None
    refusal = restore_refusal(restore, {ANN_N: claim(ANN_N, BOB), CARA_N: claim(CARA_N, CARA)},
                              {"zoe": replace(GRANT, user_id="zoe")})
    assert refusal is not None
    assert f"has 2 claims ({ANN_N}, {CARA_N}) and 1 policy grant (users zoe)" in refusal
    assert "nothing was written" in refusal


async def test_restore_writes_claims_grants_and_holds_through_the_ports() -> None:
    document = export([
        claim(ANN_N, ANN, release_pending_since=NOW - timedelta(hours=3)),
        claim(ERIK_N, ERIK, assigned=False, released_at=NOW - timedelta(days=1)),
        claim(BOB_N, BOB),
    ], holds=[hold(ANN, ANN_N)])
    context = fake_context(teams=FakeTeamsNumbers({ANN_N: ANN, BOB_N: CARA}))

    restore = await restore_tenant(context, document)

    stored = await context.ports.claims.list_claims()
    assert set(stored) == {ANN_N, ERIK_N}  # bob's number is on cara in Teams: not restored
    assert stored[ANN_N].assigned
    assert stored[ANN_N].release_pending_since == NOW - timedelta(hours=3)
    assert stored[ERIK_N].released_at == NOW - timedelta(days=1)
    assert await context.ports.grants.list_grants() == {DAN: GRANT}
    assert [h.user_id for h in await context.ports.ledger.holds("pending")] == [ANN]
    assert await context.ports.statuses.list_statuses() == []  # the next sync writes them
    assert [d.number for d in restore.reported] == [BOB_N]

    again = await restore_tenant(context, document)  # run again (it was cut off): no change

    assert await context.ports.claims.list_claims() == stored
    assert again.decisions == restore.decisions


async def test_a_dry_run_decides_and_writes_nothing() -> None:
    context = fake_context(teams=FakeTeamsNumbers({ANN_N: ANN}))

    restore = await restore_tenant(context, export([claim(ANN_N, ANN)]), dry_run=True)

    assert len(restore.claims) == 1
    assert await context.ports.claims.list_claims() == {}
    assert await context.ports.grants.list_grants() == {}


async def test_restore_refuses_a_store_in_use_and_another_tenants_export() -> None:
    claims = FakeClaimStore(KEY)
    await claims.claim(claim(CARA_N, CARA))
    context = fake_context(claims=claims, teams=FakeTeamsNumbers({ANN_N: ANN}))

    with pytest.raises(RestoreRefusedError, match=re.escape(f"has 1 claim ({CARA_N}) stored")):
        await restore_tenant(context, export([claim(ANN_N, ANN)]))
    assert set(await claims.list_claims()) == {CARA_N}

    other = export([]).model_copy(update={"tenant_id": "another-tenant"})
    with pytest.raises(ExportError, match="tenantId='another-tenant': this is another tenant"):
        await restore_tenant(fake_context(), other, source="other.json")


async def test_export_reads_every_kind_of_row_of_the_tenant() -> None:
    claims, statuses = FakeClaimStore(KEY), FakeStatusStore(KEY)
    grants, ledger = FakePolicyGrantStore(KEY), FakeRunLedger(KEY)
    await claims.claim(claim(ANN_N, ANN))
    await FakeClaimStore("another-tenant").claim(claim(BOB_N, BOB))
    await statuses.record(UserStatus(ANN, "ann@contoso.example", Outcome.ASSIGNED,
                                     Reason.ASSIGNED, ANN_N, "assigned", "run-1", 0, NOW))
    await grants.save_grant(GRANT)
    await ledger.save_holds([hold(ANN, ANN_N)])
    stages: list[tuple[str, int | None]] = []

    class Recorded:
        def stage(self, description: str, total: int | None = None) -> None:
            stages.append((description, total))

        def advance(self, steps: int = 1) -> None:
            stages.append(("advance", steps))

    document = await export_tenant(
        fake_context(claims=claims, statuses=statuses, grants=grants, ledger=ledger),
        progress=Recorded(),
    )

    assert document.tenant_id == KEY
    assert document.exported_at == NOW
    assert document.counts.to_json() == {"claims": 1, "statuses": 1, "grants": 1, "holds": 1}
    assert stages == [("reading claims, statuses, policy grants and holds", 4),
                      *[("advance", 1)] * 4]
