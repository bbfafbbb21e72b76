"""Held unassignments: what a person approves after the mass-unassign guard stopped a run.

The run stores its holds (``shared.service.timer_run``); approving them enqueues the
unassignments, which the queue function still carries out only for numbers with the app's
ownership marker.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from shared.core.audit import Actor, holds_approved
from shared.core.messages import AssignmentMessage
from shared.core.outcomes import Reason
from shared.core.records import Hold
from shared.core.telemetry_events import ALL_RUNS, HoldsApproved
from shared.service.audit_trail import record_entry
from shared.service.context import TenantContext

log = logging.getLogger(__name__)


async def approve_holds(
    context: TenantContext, approved_by: str, run_id: str | None = None, *,
    caller: str = "unknown",
) -> list[Hold]:
    """Approve the pending holds (of one run, or all) and enqueue their unassignments; each
    approval is an audit entry (who: ``approved_by``; ``caller``: the door they came through).

    The queue function still only takes back numbers with this app's ownership marker.
    """
    if not approved_by.strip():
        raise ValueError("approvedBy: say who approves (a name or e-mail), got an empty value")
    ledger = context.ports.ledger
    now = context.clock()
    approved = []
    for hold in await ledger.holds("pending"):
        if run_id is not None and hold.run_id != run_id:
            continue
        decided = replace(hold, status="approved", decided_by=approved_by, decided_at=now)
        await ledger.update_hold(decided)
        approved.append(decided)
    # Recorded once decided: the holds are approved from here on, whether or not the send
    # below goes through.
    for entry in holds_approved(approved, Actor.of(approved_by, caller)):
        await record_entry(context.ports.audit, entry)
    await context.ports.queue.send([
        AssignmentMessage(
            idempotency_key=f"approved|{hold.key}",
            tenant_id=context.tenant.key, run_id=hold.run_id, user_id=hold.user_id,
            user_principal_name=hold.user_principal_name, telephone_number=None,
            read_position=None, action="unassign", reason=Reason.APPROVED.value,
            previous_number=hold.number,
        )
        for hold in approved
    ])
    log.warning("%d held unassignments approved by %s", len(approved), approved_by)
    if approved:
        context.events.emit(HoldsApproved(
            context.tenant.key, approved_by, len(approved),
            run_id if run_id is not None else ALL_RUNS,
        ))
    return approved
