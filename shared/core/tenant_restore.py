"""What ``restore TENANT FILE`` rebuilds from an export after a storage account was lost.

Pure: the export (``shared.core.tenant_export``) and Teams' number assignments as Graph lists
them go in; a ``RestorePlan`` comes out: the claims, grants and holds to store, and one
``RestoreDecision`` per row with a reason code, so every row restored or reported can be
explained.

Rules:

1. A claim is restored only when Teams agrees with it: a number the app holds for a user (with
   or without its ownership marker) must be on that user in Teams (``on_holder``); a number the
   app took back and lets cool must be on nobody (``cooling``). Otherwise it is reported and not
   restored, never forced: Teams has it on someone else (``assigned_elsewhere``), on nobody
   while the claim says its holder has it (``not_in_teams``), or on someone while it should be
   cooling (``assigned_while_cooling``). The next sync then decides that number afresh from
   the directory and Teams, like any number it finds.
2. Policy grants are restored as they were (``granted``): Teams' number assignments say
   nothing about policies, and the stored grant is what tells the app which policies are its
   own to take back.
3. Holds: a pending hold is restored when its number's claim is restored to the same user, so a
   person can still approve it (``pending_hold``); a pending hold whose claim is not restored is
   reported (``hold_without_claim``): approving it could take nothing back. Approved and
   dropped holds are restored as the record of who decided what (``decided_hold``).
4. Statuses are not restored: they are each user's latest outcome, and the next sync writes
   every user's afresh (the export keeps them, and their CSV, as what the helpdesk saw).
5. The store must be empty (``restore_refusal``): a stored claim or grant this file would not
   restore as it stands is named and nothing is written. Rows the same restore wrote already
   (it was cut off) are no reason to refuse, so a restore can be run again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from shared.core.directory import Claim
from shared.core.policy_planner import PolicyGrant
from shared.core.records import Hold
from shared.core.tenant_export import ExportError, TenantExport


class RestoreVerdict(StrEnum):
    """Whether a row of the export is stored again."""

    RESTORE = "restore"
    REPORT = "report"  # not restored: a person looks at it


class RestoreReason(StrEnum):
    """Why a row is restored or reported (see the module's rules)."""

    ON_HOLDER = "on_holder"
    COOLING = "cooling"
    ASSIGNED_ELSEWHERE = "assigned_elsewhere"
    NOT_IN_TEAMS = "not_in_teams"
    ASSIGNED_WHILE_COOLING = "assigned_while_cooling"
    GRANTED = "granted"
    PENDING_HOLD = "pending_hold"
    DECIDED_HOLD = "decided_hold"
    HOLD_WITHOUT_CLAIM = "hold_without_claim"


class RestoreKind(StrEnum):
    """The kind of row a decision is about."""

    CLAIM = "claim"
    GRANT = "grant"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class RestoreDecision:
    """One row of the export, restored or reported, with what an operator needs to know."""

    kind: RestoreKind
    verdict: RestoreVerdict
    reason: RestoreReason
    user_id: str
    user_principal_name: str
    number: str
    message: str

    def to_json(self) -> dict[str, object]:
        """The decision as JSON (``restore --json``)."""
        return {
            "kind": self.kind.value, "verdict": self.verdict.value, "reason": self.reason.value,
            "userId": self.user_id, "userPrincipalName": self.user_principal_name,
            "number": self.number, "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class RestorePlan:
    """What a restore stores, and a decision for every claim, grant and hold of the export."""

    tenant_id: str
    claims: tuple[Claim, ...]
    grants: tuple[PolicyGrant, ...]
    holds: tuple[Hold, ...]
    decisions: tuple[RestoreDecision, ...]
    statuses_not_restored: int
    """The export's statuses: the next sync writes every user's anew."""

    @property
    def reported(self) -> tuple[RestoreDecision, ...]:
        """The rows not restored, for a person to look at."""
        return tuple(d for d in self.decisions if d.verdict is RestoreVerdict.REPORT)

    def summary_json(self, *, dry_run: bool) -> dict[str, object]:
        """The restore's summary as JSON (``restore --json``)."""
        return {
            "tenantId": self.tenant_id,
            "dryRun": dry_run,
            "restored": {"claims": len(self.claims), "grants": len(self.grants),
                         "holds": len(self.holds)},
            "reported": [decision.to_json() for decision in self.reported],
            "notRestored": {"statuses": self.statuses_not_restored},
        }


def check_export_tenant(document: TenantExport, tenant_id: str, source: str) -> None:
    """Refuse another tenant's export: restoring it would give one customer's numbers to the
    users of another.

    Raises:
        ExportError: naming ``tenantId`` and both tenants.
    """
    if document.tenant_id.strip().lower() != tenant_id.strip().lower():
        raise ExportError(
            f"{source}: tenantId={document.tenant_id!r}: this is another tenant's export (the "
            f"restore is for tenant {tenant_id})")


def plan_restore(document: TenantExport, teams: Mapping[str, str]) -> RestorePlan:
    """Decide, row by row, what a restore of ``document`` stores, cross-checked against
    ``teams`` (number → target id, as ``TeamsNumbers.list_assignments`` reads it now)."""
    names = _names(document)
    claims: list[Claim] = []
    decisions: list[RestoreDecision] = []
    for exported in document.claims:
        claim = exported.to_claim()
        reason, message = _claim_verdict(claim, teams.get(claim.number), names)
        restored = reason in {RestoreReason.ON_HOLDER, RestoreReason.COOLING}
        if restored:
            claims.append(claim)
        decisions.append(RestoreDecision(
            RestoreKind.CLAIM, RestoreVerdict.RESTORE if restored else RestoreVerdict.REPORT,
            reason, claim.holder_user_id, claim.holder_upn, claim.number, message,
        ))
    grants = tuple(exported.to_grant() for exported in document.grants)
    decisions.extend(
        RestoreDecision(
            RestoreKind.GRANT, RestoreVerdict.RESTORE, RestoreReason.GRANTED, grant.user_id,
            grant.user_principal_name, grant.main_number,
            f"the main-number policies granted {grant.granted_at:%Y-%m-%d} are restored "
            f"({', '.join(str(p) for p in grant.policies) or 'none'})",
        )
        for grant in grants
    )
    held = {claim.number: claim for claim in claims if claim.held}
    holds: list[Hold] = []
    for exported_hold in document.holds:
        hold = exported_hold.to_hold()
        decision = _hold_decision(hold, held)
        if decision.verdict is RestoreVerdict.RESTORE:
            holds.append(hold)
        decisions.append(decision)
    return RestorePlan(
        tenant_id=document.tenant_id, claims=tuple(claims), grants=grants, holds=tuple(holds),
        decisions=tuple(decisions), statuses_not_restored=len(document.statuses),
    )


def _claim_verdict(
    claim: Claim, target: str | None, names: Mapping[str, str]
) -> tuple[RestoreReason, str]:
    holder = _shown(claim.holder_user_id, claim.holder_upn)
    if claim.released_at is not None:
        if target is None:
            return RestoreReason.COOLING, (
                f"taken back {claim.released_at:%Y-%m-%d} and cooling; Teams has it on nobody")
        return RestoreReason.ASSIGNED_WHILE_COOLING, (
            f"the app took it back from {holder} and lets it cool, but Teams has it on "
            f"{_shown(target, names.get(target, ''))}: not restored; the next sync treats it as "
            f"a number found in Teams")
    if target == claim.holder_user_id:
        owner = "the app's" if claim.assigned else "found in Teams, not the app's"
        return RestoreReason.ON_HOLDER, f"on {holder} in Teams ({owner})"
    if target is None:
        return RestoreReason.NOT_IN_TEAMS, (
            f"the export says {holder} holds it, but Teams has it on nobody: not restored; the "
            f"next sync gives it to whoever the directory says carries it")
    return RestoreReason.ASSIGNED_ELSEWHERE, (
        f"the export says {holder} holds it, but Teams has it on "
        f"{_shown(target, names.get(target, ''))}: not restored (never forced); the next sync "
        f"reports {claim.holder_upn or claim.holder_user_id} as assigned_elsewhere if the "
        f"directory still gives them the number")


def _hold_decision(hold: Hold, held: Mapping[str, Claim]) -> RestoreDecision:
    who = (hold.user_id, hold.user_principal_name, hold.number)
    if hold.status != "pending":
        return RestoreDecision(
            RestoreKind.HOLD, RestoreVerdict.RESTORE, RestoreReason.DECIDED_HOLD, *who,
            f"{hold.status} by {hold.decided_by or 'someone'} (run {hold.run_id}): restored as "
            f"the record of the decision")
    claim = held.get(hold.number)
    if claim is not None and claim.holder_user_id == hold.user_id:
        return RestoreDecision(
            RestoreKind.HOLD, RestoreVerdict.RESTORE, RestoreReason.PENDING_HOLD, *who,
            f"pending (run {hold.run_id}): restored, so it can still be approved")
    return RestoreDecision(
        RestoreKind.HOLD, RestoreVerdict.REPORT, RestoreReason.HOLD_WITHOUT_CLAIM, *who,
        f"pending (run {hold.run_id}), but the app's claim on {hold.number} for the user is not "
        f"restored: not restored (approving it could take nothing back); the next sync holds "
        f"the number again if the guard still applies")


def restore_refusal(
    restore: RestorePlan,
    stored_claims: Mapping[str, Claim],
    stored_grants: Mapping[str, PolicyGrant],
) -> str | None:
    """Why the restore may not write (None: it may): the tenant's store has claims or grants
    that this restore would not write as they are, so it is not the empty store a restore
    rebuilds. Rows this restore wrote already (a run cut off) are no reason."""
    restoring = {claim.number: claim.holder_user_id for claim in restore.claims}
    granting = {grant.user_id for grant in restore.grants}
    other_claims = sorted(
        number for number, claim in stored_claims.items()
        if restoring.get(number) != claim.holder_user_id
    )
    other_grants = sorted(user for user in stored_grants if user not in granting)
    if not other_claims and not other_grants:
        return None
    found = []
    if other_claims:
        found.append(f"{_counted(len(other_claims), 'claim')} ({_listed(other_claims)})")
    if other_grants:
        found.append(f"{_counted(len(other_grants), 'policy grant')} "
                     f"(users {_listed(other_grants)})")
    return (
        f"tenant {restore.tenant_id} has {' and '.join(found)} stored that this export does not "
        f"restore: restore rebuilds an empty store (after a storage account was lost) and never "
        f"overwrites one in use; nothing was written")


def _counted(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _listed(keys: Iterable[str], limit: int = 5) -> str:
    shown = list(keys)
    more = f", … {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def _shown(user_id: str, upn: str) -> str:
    return f"{upn} ({user_id})" if upn else user_id


def _names(document: TenantExport) -> dict[str, str]:
    """User id → UPN, from every row of the export that names one (to name a Teams target)."""
    names = {s.user_id: s.user_principal_name for s in document.statuses if s.user_principal_name}
    names.update({c.holder_user_id: c.holder_upn for c in document.claims if c.holder_upn})
    return names
