"""Writing the audit trail (``shared.core.audit``) and letting its old months go.

An audit entry is written after what it records has happened, so it can say how it ended. A
failure to write it never undoes or repeats that: it is logged as an error naming the entry (an
alert on the app's errors sees it) and the work carries on.
"""

from __future__ import annotations

import logging
from datetime import datetime

from shared.core.audit import AuditEntry, AuditMonth, oldest_kept, purged
from shared.service.ports import AuditLog

log = logging.getLogger(__name__)


async def record_entry(audit: AuditLog, entry: AuditEntry | None) -> bool:
    """Append ``entry`` (None: nothing to record); False when it was recorded already or could
    not be written (logged)."""
    if entry is None:
        return False
    try:
        return await audit.record(entry)
    except Exception as error:  # noqa: BLE001 - the audited work is done; it must not fail now
        log.error(  # noqa: TRY400 - the entry and the failure are what an operator needs
            "audit entry not written (%s: %s): %s %s by %s at %s", type(error).__name__, error,
            entry.kind.value, entry.user_principal_name or entry.number or "", entry.who,
            entry.at.isoformat(),
        )
        return False


async def purge_expired(audit: AuditLog, tenant_key: str, *, now: datetime,
                        retention_months: int) -> dict[AuditMonth, int]:
    """Delete the tenant's audit months older than the retention keeps, and record the purge
    (when anything went). Returns the rows deleted per month."""
    gone = await audit.purge_before(oldest_kept(now, retention_months))
    if gone:
        for month, rows in sorted(gone.items()):
            log.warning("audit trail of tenant %s: %d rows of %s deleted (AUDIT_RETENTION_MONTHS"
                        "=%d keeps %s and later)", tenant_key, rows, month, retention_months,
                        oldest_kept(now, retention_months))
        await record_entry(audit, purged(gone, at=now, retention_months=retention_months))
    return gone
