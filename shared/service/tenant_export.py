"""Export and restore of one tenant's state, through its ports.

``export_tenant`` reads the tenant's claims, statuses, policy grants and holds into a
``TenantExport`` (``shared.core.tenant_export``). ``restore_tenant`` reads Teams' number
assignments, lets ``shared.core.tenant_restore`` decide what goes back, refuses a store that is
not empty, and writes the claims, grants and holds through the same port methods a sync uses,
each of them idempotent, so a restore cut off halfway can be run again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import TypeVar

from shared.core.directory import Claim
from shared.core.tenant_export import TenantExport, build_export
from shared.core.tenant_restore import (
    RestorePlan,
    check_export_tenant,
    plan_restore,
    restore_refusal,
)
from shared.service.context import TenantContext
from shared.service.ports import ClaimStore
from shared.service.progress import NO_PROGRESS, WorkProgress

log = logging.getLogger(__name__)

T = TypeVar("T")


class RestoreRefusedError(ValueError):
    """The restore would overwrite a store in use (or met a claim taken meanwhile); nothing
    more is written."""


async def export_tenant(
    context: TenantContext, *, progress: WorkProgress = NO_PROGRESS
) -> TenantExport:
    """The tenant's claims, statuses, policy grants and holds as one document, stamped with
    the app's clock. Writes nothing.

    Raises:
        ExportError: a stored row the document cannot hold, named by its field.
    """
    ports = context.ports
    progress.stage("reading claims, statuses, policy grants and holds", total=4)

    claims, statuses, grants, holds = await asyncio.gather(
        _advancing(progress, ports.claims.list_claims()),
        _advancing(progress, ports.statuses.list_statuses()),
        _advancing(progress, ports.grants.list_grants()),
        _advancing(progress, ports.ledger.holds()),
    )
    return build_export(
        context.tenant.key, context.clock(), claims=claims.values(), statuses=statuses,
        grants=grants.values(), holds=holds,
    )


async def _advancing(progress: WorkProgress, rows: Awaitable[T]) -> T:
    """``rows`` awaited, then one step of ``progress``."""
    result = await rows
    progress.advance()
    return result


async def restore_tenant(
    context: TenantContext,
    document: TenantExport,
    *,
    source: str = "export",
    dry_run: bool = False,
    progress: WorkProgress = NO_PROGRESS,
) -> RestorePlan:
    """Rebuild the tenant's claims, grants and holds from ``document`` into its empty store,
    cross-checked against Teams' number assignments; with ``dry_run``, only decide.

    Raises:
        ExportError: ``document`` is another tenant's export.
        RestoreRefusedError: the store holds claims or grants this export would not restore.
        SyncError: Teams' numbers could not be read (nothing was written).
    """
    check_export_tenant(document, context.tenant.key, source)
    ports = context.ports
    progress.stage("reading Teams' number assignments and the tenant's store", total=3)

    teams, stored_claims, stored_grants = await asyncio.gather(
        _advancing(progress, ports.teams.list_assignments()),
        _advancing(progress, ports.claims.list_claims()),
        _advancing(progress, ports.grants.list_grants()),
    )
    restore = plan_restore(document, teams)
    refusal = restore_refusal(restore, stored_claims, stored_grants)
    if refusal is not None:
        raise RestoreRefusedError(refusal)
    if dry_run:
        return restore
    progress.stage("restoring claims, policy grants and holds",
                   total=len(restore.claims) + len(restore.grants) + len(restore.holds))
    await _restore_claims(ports.claims, restore.claims, progress)
    for grant in restore.grants:
        await ports.grants.save_grant(grant)
        progress.advance()
    await ports.ledger.save_holds(list(restore.holds))
    progress.advance(len(restore.holds))
    log.warning(
        "tenant %s restored from %s: %d claims, %d policy grants, %d holds; %d rows reported",
        context.tenant.key, source, len(restore.claims), len(restore.grants),
        len(restore.holds), len(restore.reported),
    )
    return restore


#: Claims inserted per call (one Table Storage transaction holds 100).
_CLAIM_BATCH = 100


async def _restore_claims(
    claims: ClaimStore, restoring: Sequence[Claim], progress: WorkProgress
) -> None:
    """Store the claims as exported: inserted if absent (in batches), then, read back, each
    one's ownership marker, grace period and cooling set where the stored row lacks them (an
    insert records the holder, the marker and the intent only), so running it again changes
    nothing."""
    for start in range(0, len(restoring), _CLAIM_BATCH):
        batch = restoring[start:start + _CLAIM_BATCH]
        await claims.claim_all(batch)
        progress.advance(len(batch))
    stored = await claims.list_claims()
    for claim in restoring:
        number, holder = claim.number, claim.holder_user_id
        row = stored.get(number)
        if row is None or row.holder_user_id != holder:
            taken = "gone" if row is None else f"claimed for {row.holder_upn or row.holder_user_id}"
            raise RestoreRefusedError(
                f"claim {number}: {taken} while the restore ran (did a sync run?): pause the "
                f"tenant, then restore again")
        if claim.assigned and not row.assigned:
            await claims.mark_assigned(number, holder)
        if claim.release_pending_since is not None and row.release_pending_since is None:
            await claims.set_release_pending(number, holder, claim.release_pending_since)
        if claim.released_at is not None and row.released_at is None:
            await claims.release(number, holder, cooling_since=claim.released_at)
