"""The imperative shell: gather → plan → apply → record, for the timer/HTTP run and one message.

Each function takes its ports as arguments; nothing here knows about msgraph, Azure Storage or the
Functions host, so the same code runs under the host, the local runner and the unit tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shared.config import TenantSettings
from shared.directory import Claim
from shared.errors import PermanentError, TemporaryError
from shared.messages import AssignmentMessage, MessageError
from shared.outcomes import Outcome, Reason, UserResult
from shared.phone_numbers import check_number
from shared.planner import plan_run
from shared.ports import (
    AssignmentQueue,
    ClaimStore,
    StatusStore,
    TeamsNumbers,
    UserStatus,
    VoiceGroupDirectory,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class SyncSummary:
    """What one enumeration run read and enqueued."""

    tenant_id: str
    run_id: str
    dry_run: bool
    members: int
    enqueued: int
    reserved: int
    precheck: dict[str, int]
    messages: tuple[AssignmentMessage, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        """The JSON answer of the HTTP trigger (messages only on a dry run)."""
        body: dict[str, object] = {
            "tenantId": self.tenant_id,
            "runId": self.run_id,
            "dryRun": self.dry_run,
            "members": self.members,
            "enqueued": self.enqueued,
            "reservedNumbers": self.reserved,
            "precheck": self.precheck,
        }
        if self.dry_run:
            body["wouldEnqueue"] = [m.model_dump(by_alias=True) for m in self.messages]
        return body


async def run_sync(
    *,
    tenant: TenantSettings,
    run_id: str,
    directory: VoiceGroupDirectory,
    claims: ClaimStore,
    queue: AssignmentQueue,
    dry_run: bool = False,
) -> SyncSummary:
    """Read the voice group, reserve numbers in read order, enqueue one message per member.

    A dry run reads and plans but writes nothing.
    """
    members = await directory.read_members(str(tenant.voice_group_id))
    stored = await claims.list_claims(tenant.key)
    plan = plan_run(tenant.key, run_id, members, stored)
    if not dry_run:
        await _reserve(claims, tenant.key, plan.reservations)
        await queue.send(plan.messages)
    summary = SyncSummary(
        tenant_id=tenant.key,
        run_id=run_id,
        dry_run=dry_run,
        members=len(members),
        enqueued=0 if dry_run else len(plan.messages),
        reserved=0 if dry_run else len(plan.reservations),
        precheck=dict(plan.precheck),
        messages=plan.messages,
    )
    log.info(
        "sync run %s for tenant %s: %d members, %d enqueued, %d numbers reserved%s",
        run_id, tenant.key, summary.members, summary.enqueued, summary.reserved,
        " (dry run)" if dry_run else "",
    )
    return summary


async def _reserve(claims: ClaimStore, tenant_id: str, reservations: Sequence[Claim]) -> None:
    # Distinct numbers, so the inserts do not race each other; bounded to spare the table service.
    limit = asyncio.Semaphore(16)

    async def reserve(claim: Claim) -> None:
        async with limit:
            await claims.claim(tenant_id, claim)

    await asyncio.gather(*(reserve(claim) for claim in reservations))


async def process_assignment(
    message: AssignmentMessage,
    *,
    tenant: TenantSettings,
    claims: ClaimStore,
    teams: TeamsNumbers,
    statuses: StatusStore,
    clock: Clock,
    final_attempt: bool = False,
) -> UserResult:
    """Validate, claim, assign and record one member's number.

    Safe to run more than once for the same message: the claim is insert-if-absent and Teams is
    asked first, so a number already on the user is kept without a second write.

    Raises:
        MessageError: the message belongs to another tenant.
        TemporaryError: retry later; on the final attempt the failure is recorded first.
    """
    if message.tenant_id != tenant.key:
        raise MessageError(
            f"tenantId={message.tenant_id!r} is not the tenant this app serves ({tenant.key})"
        )
    try:
        result = await _decide_and_assign(message, tenant=tenant, claims=claims, teams=teams)
    except TemporaryError as error:
        if final_attempt:
            await _record(statuses, message, clock, UserResult(
                Outcome.FAILED, Reason.ASSIGNMENT_FAILED,
                f"Gave up after repeated temporary failures: {error.message}",
                check_number(message.telephone_number).number,
            ))
        raise
    await _record(statuses, message, clock, result)
    log.info(
        "user %s (%s): %s/%s %s",
        message.user_principal_name, message.user_id, result.outcome, result.reason,
        result.number or "",
    )
    return result


async def _decide_and_assign(
    message: AssignmentMessage,
    *,
    tenant: TenantSettings,
    claims: ClaimStore,
    teams: TeamsNumbers,
) -> UserResult:
    check = check_number(message.telephone_number)
    if check.number is None:
        assert check.reason is not None
        return UserResult(Outcome.SKIPPED, check.reason, check.message, message.telephone_number)
    number = check.number

    holder = await claims.claim(tenant.key, Claim(
        number=number,
        holder_user_id=message.user_id,
        holder_upn=message.user_principal_name,
        run_id=message.run_id,
        read_position=message.read_position,
    ))
    if holder.holder_user_id != message.user_id:
        return UserResult(
            Outcome.SKIPPED, Reason.DUPLICATE,
            f"{number} already belongs to {holder.holder_upn}; personal numbers are unique, so "
            "the user read later does not get it. Correct one of the two telephoneNumbers.",
            number,
        )

    current = await teams.find_number(number)
    if current is not None and current.target_id == message.user_id and (
        current.activation_state in {None, "activated"}
    ):
        return UserResult(
            Outcome.KEPT, Reason.ALREADY_ASSIGNED, f"Teams already has {number} on this user.",
            number,
        )
    if current is not None and current.target_id not in {None, message.user_id}:
        return UserResult(
            Outcome.SKIPPED, Reason.ASSIGNED_ELSEWHERE,
            f"Teams has {number} on another target ({current.target_id}) that this app did not "
            "put there; it is never taken away. Remove it there or correct the telephoneNumber.",
            number,
        )
    try:
        await teams.assign_number(number, message.user_id, tenant.number_type)
    except PermanentError as error:
        return UserResult(Outcome.FAILED, error.reason, error.message, number)
    return UserResult(Outcome.ASSIGNED, Reason.ASSIGNED, f"Assigned {number} in Teams.", number)


async def _record(
    statuses: StatusStore, message: AssignmentMessage, clock: Clock, result: UserResult
) -> None:
    await statuses.record(message.tenant_id, UserStatus(
        user_id=message.user_id,
        user_principal_name=message.user_principal_name,
        outcome=result.outcome,
        reason=result.reason,
        number=result.number,
        message=result.message,
        run_id=message.run_id,
        read_position=message.read_position,
        updated_at=clock(),
    ))
