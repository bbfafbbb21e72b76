"""The queue function's shell: perform the steps the core's flow asks for, feed the answers back.

What to do with a message is decided in ``shared.core.assignment_steps`` (numbers) and
``shared.core.policy_steps`` (main-number policies); this module only translates each step into
one port call, and a temporary failure into the queue's terms (wait on the queue, give up, or
let the host redeliver). Nothing here decides anything a test would want to see.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from shared.core.assignment_steps import (
    Defer,
    GiveUp,
    MessageLimits,
    after_temporary,
    carry_out,
    needs_reread,
)
from shared.core.audit import TeamsWrites
from shared.core.errors import PermanentError, TemporaryError
from shared.core.messages import AssignmentMessage, MessageError
from shared.core.outcomes import Outcome, UserResult
from shared.core.recording import gave_up, message_status
from shared.core.run_decisions import change_kind
from shared.core.steps import (
    Accepted,
    AssignmentSettled,
    AssignNumber,
    AssignPolicies,
    ClaimNumber,
    ClearInFlight,
    EffectDone,
    FindNumber,
    Flow,
    GetClaim,
    GetGrant,
    IsServed,
    LookAtTeamsUser,
    MarkAssigned,
    MarkAssigning,
    MarkEffectDone,
    Note,
    NoteFound,
    NoteOperationLook,
    Now,
    ReadDirectoryUser,
    ReadOperation,
    ReadStatus,
    ReadTeamsUser,
    RecordStatus,
    ReleaseClaim,
    RemoveGrant,
    ResolvePolicy,
    SaveGrant,
    Step,
    UnassignNumber,
    UnassignPolicies,
)
from shared.core.teams_readiness import TeamsUser
from shared.core.telemetry_events import UserAssignmentFailed
from shared.service.audit_trail import record_entry
from shared.service.context import TenantContext

log = logging.getLogger(__name__)

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Delivery:
    """How the host delivered the message: again (an earlier try may have written), and
    whether this is its last try before the poison queue."""

    redelivered: bool = False
    final_attempt: bool = False


def check_tenant(message: AssignmentMessage, context: TenantContext) -> None:
    """Refuse a message planned for another tenant.

    Raises:
        MessageError: naming the message's tenant and this app's.
    """
    if message.tenant_id != context.tenant.key:
        raise MessageError(
            f"tenantId={message.tenant_id!r} is not the tenant this app serves "
            f"({context.tenant.key})"
        )


async def process_assignment(
    context: TenantContext,
    message: AssignmentMessage,
    *,
    final_attempt: bool = False,
    redelivered: bool = False,
) -> UserResult | None:
    """Carry out one planned change, after re-checking it against the directory and the claims.

    ``redelivered``: the host delivers the message again (an earlier try may have written);
    ``final_attempt``: the host's last try before the poison queue. Returns what was recorded as
    the user's status; None when the message was done already, waits on the queue, or leaves the
    status alone. See ``shared.core.assignment_steps`` for
    what is decided and why it is safe to run more than once.

    Raises:
        MessageError: the message belongs to another tenant.
        TemporaryError: retry later. On the final attempt any failure, temporary or not, is
            recorded as the user's status first.
    """
    check_tenant(message, context)
    delivery = Delivery(redelivered=redelivered, final_attempt=final_attempt)
    limits = MessageLimits(
        context.rules,
        patience=context.limits.readiness_patience,
        reread=needs_reread(message, context.clock(), context.limits.recheck_after,
                            redelivered=delivery.redelivered),
        look_first=delivery.redelivered,
        operation_wait=await context.ports.operation_waits.current(),
    )
    try:
        result = await perform_flow(context, carry_out(message, limits), TeamsWrites(message))
    except TemporaryError as error:
        return await _after_temporary(context, message, error, delivery)
    except Exception as error:
        # Whatever failed (a storage outage, a bug), the last try leaves the user a status a
        # helpdesk can read, rather than a message in the poison queue and nothing else.
        if delivery.final_attempt:
            await _give_up(context, message, gave_up(
                message, f"Gave up after {type(error).__name__}: {error}",
            ))
        raise
    _tell(context, message, result)
    return result


def _tell(context: TenantContext, message: AssignmentMessage, result: UserResult | None) -> None:
    """Count the user's outcome, and report a failure (``UserAssignmentFailed``)."""
    if result is None:
        return
    key = context.tenant.key
    if result.outcome is Outcome.ASSIGNED:
        context.events.count(key, Outcome.ASSIGNED)
    elif result.outcome is Outcome.FAILED:
        context.events.count(key, Outcome.FAILED)
        context.events.emit(UserAssignmentFailed(
            key, message.run_id, message.user_id, message.action,
            result.number or message.telephone_number or message.previous_number or "",
            result.reason.value,
        ))


async def perform_flow(
    context: TenantContext, flow: Flow[R], writes: TeamsWrites | None = None
) -> R:
    """Drive ``flow`` to its result: perform each step it yields, send back the answer. A
    failure to perform a step ends the flow and is raised. With ``writes``, every Teams write
    is recorded in the audit trail once it returned or raised."""
    try:
        step = next(flow)
        while True:
            try:
                answer = await perform(context, step)
            except BaseException as error:
                if writes is not None:
                    await record_entry(context.ports.audit,
                                       writes.raised(step, error, context.clock()))
                flow.close()
                raise
            if writes is not None:
                await record_entry(context.ports.audit,
                                   writes.answered(step, answer, context.clock()))
            step = flow.send(answer)
    except StopIteration as finished:
        return cast(R, finished.value)


async def perform(context: TenantContext, step: Step[Any]) -> object:
    """Carry out one step against the tenant's ports; a refusal the flow decides on is
    returned as the answer, anything else is raised."""
    if isinstance(step, Now):
        return context.clock()
    if isinstance(step, Note):
        (log.warning if step.level == "warning" else log.info)("%s", step.text)
        return None
    if isinstance(step, AssignmentSettled):
        log.info("assignment of %s to %s %s: %s", step.number, step.user_id,
                 "landed" if step.landed else "did not land", step.detail)
        return None
    try:
        return await _PERFORMERS[type(step)](context, step)
    except PermanentError as refusal:
        if PermanentError in step.answers:
            return refusal
        raise


async def _look(context: TenantContext, step: LookAtTeamsUser) -> TeamsUser | None:
    # A quick look: unreadable is as good as unknown (the flow learns the answer another way).
    try:
        return await context.ports.teams_users.read(step.user_id)
    except (PermanentError, TemporaryError) as error:
        log.info("could not look at %s in Teams: %s", step.user_id, error.message)
        return None


async def _assign_number(context: TenantContext, step: AssignNumber) -> Accepted:
    return Accepted(await context.ports.teams.assign_number(step.number, step.user_id))


async def _unassign_number(context: TenantContext, step: UnassignNumber) -> None:
    await context.ports.teams.unassign_number(step.number)


Performer = Callable[[TenantContext, Any], Coroutine[Any, Any, object]]

#: One port call per step kind.
_PERFORMERS: dict[type[Step[Any]], Performer] = {
    EffectDone: lambda c, s: c.ports.ledger.effect_done(s.key),
    ReadDirectoryUser: lambda c, s: c.ports.users.read_user(s.user_id),
    IsServed: lambda c, s: c.ports.snapshots.has_member(s.user_id),
    GetClaim: lambda c, s: c.ports.claims.get_claim(s.number),
    LookAtTeamsUser: _look,
    ReadTeamsUser: lambda c, s: c.ports.teams_users.read(s.user_id),
    ReadStatus: lambda c, s: c.ports.statuses.get_status(s.user_id),
    FindNumber: lambda c, s: c.ports.teams.find_number(s.number),
    GetGrant: lambda c, s: c.ports.grants.get_grant(s.user_id),
    ResolvePolicy: lambda c, s: c.ports.policies.policy_id(s.policy_type, s.name),
    ClaimNumber: lambda c, s: c.ports.claims.claim(s.claim),
    MarkAssigning: lambda c, s: c.ports.claims.mark_assigning(s.number, s.user_id, s.since),
    MarkAssigned: lambda c, s: c.ports.claims.mark_assigned(s.number, s.user_id),
    NoteFound: lambda c, s: c.ports.snapshots.note_number(s.number, s.user_id),
    AssignNumber: _assign_number,
    UnassignNumber: _unassign_number,
    ReadOperation: lambda c, s: c.ports.teams.read_operation(s.location),
    NoteOperationLook: lambda c, s: c.ports.operation_waits.observe(s.elapsed_seconds, s.done),
    ReleaseClaim: lambda c, s: c.ports.claims.release(
        s.number, s.user_id, cooling_since=s.cooling_since
    ),
    SaveGrant: lambda c, s: c.ports.grants.save_grant(s.grant),
    AssignPolicies: lambda c, s: c.ports.policies.assign_policies(s.user_id, s.assignments),
    UnassignPolicies: lambda c, s: c.ports.policies.unassign_policies(s.user_id, s.policy_types),
    RemoveGrant: lambda c, s: c.ports.grants.remove_grant(s.user_id),
    RecordStatus: lambda c, s: c.ports.statuses.record(s.status),
    MarkEffectDone: lambda c, s: c.ports.ledger.mark_effect_done(s.key, s.at),
    ClearInFlight: lambda c, s: c.ports.in_flight.clear(s.user_id, s.kind, s.key),
}


async def _after_temporary(
    context: TenantContext, message: AssignmentMessage, error: TemporaryError, delivery: Delivery
) -> UserResult | None:
    """Defer the message on the queue, give up on it, or raise for the host's retry."""
    decided = after_temporary(
        error, message, final_attempt=delivery.final_attempt,
        defer_beyond_seconds=context.limits.defer_beyond_seconds,
    )
    if isinstance(decided, Defer):
        # Wait on the queue, not on the worker: the message comes back after the delay.
        await context.ports.queue.send_later(decided.message, decided.delay_seconds)
        log.info("user %s: %s; looking again in %d s", message.user_principal_name,
                 error.message, decided.delay_seconds)
        return None
    if isinstance(decided, GiveUp):
        await _give_up(context, message, decided.result)
        if decided.done:
            return decided.result  # deferred too often: recorded as failed, the message is done
    raise error


async def _give_up(context: TenantContext, message: AssignmentMessage, failed: UserResult) -> None:
    """Record the change as failed (best effort: storage may be what failed) and let the next
    run plan the user again."""
    _tell(context, message, failed)
    try:
        await context.ports.statuses.record(message_status(message, failed, context.clock()))
        await context.ports.in_flight.clear(
            message.user_id, change_kind(message), message.idempotency_key
        )
    except Exception as error:  # noqa: BLE001 - the original failure is what the host must see
        log.error(  # noqa: TRY400 - the failure being given up on is raised after this
            "user %s: could not record the failure (%s: %s); the message goes to the poison "
            "queue", message.user_principal_name, type(error).__name__, error,
        )
