"""The shell around the main-number policy rules: plan them in the timer run, carry them out in
the queue function (``shared.service.sync_service`` calls both).

Timer: the number plan + the grants (table ``policygrants``) → ``shared.core.policy_planner`` →
``grant_policies`` / ``revoke_policies`` messages on the same queue; ``keep`` is recorded as the
user's status when it changed. The status of a member who carries a main number with policies
configured belongs to this module (the number plan's ``skip``/``main_number`` is not recorded for
them), so the report shows what happened to the policies.

Queue function, ``grant_policies``: re-check the user still carries the main number → read the
user's Teams configuration (not in Teams yet → ``waiting_for_teams``) → resolve the policy ids
(cached per worker) → store the grant with the ownership markers *before* writing, so a crash
never leaves a policy the app wrote without its marker → assign the missing ones in one request
and unassign types the app gave before that are no longer wanted → read the configuration back
and confirm each type shows the expected id (else ``verify_failed``, looked at again after a
backoff) → mark the grant verified. ``revoke_policies``: unassign only the types the app itself
assigned, then forget the grant.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from shared.core.errors import PermanentError, TemporaryError
from shared.core.messages import AssignmentMessage, MessageError
from shared.core.outcomes import WAITING_REASONS, Action, Outcome, Reason, UserResult
from shared.core.phone_numbers import check_number
from shared.core.planner import Plan
from shared.core.policy_planner import (
    GrantedPolicy,
    PolicyAction,
    PolicyDecision,
    PolicyGrant,
    describe_policies,
    plan_policies,
)
from shared.core.records import UserStatus
from shared.core.teams_readiness import TeamsUser, backoff, readiness
from shared.core.tenant_rules import MainNumberPolicy, TenantRules
from shared.service.context import TenantContext
from shared.service.ports import UserReader

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PolicyRun:
    """What the timer decided about main-number policies in one run."""

    decisions: tuple[PolicyDecision, ...] = ()
    messages: tuple[AssignmentMessage, ...] = ()
    status_owned: frozenset[str] = frozenset()
    """Users whose status the policy flow records (the number plan's is not recorded)."""

    def without(self, users: Iterable[str]) -> PolicyRun:
        """The run less the decisions and messages of ``users`` (their policy change is still
        queued: it carries itself out and records them); their statuses stay this flow's."""
        left_out = set(users)
        if not left_out:
            return self
        return PolicyRun(
            tuple(d for d in self.decisions if d.user_id not in left_out),
            tuple(m for m in self.messages if m.user_id not in left_out),
            self.status_owned,
        )

    def summary(self) -> dict[str, int]:
        """Counts by policy action."""
        counts: dict[str, int] = {}
        for decision in self.decisions:
            counts[decision.action.value] = counts.get(decision.action.value, 0) + 1
        return dict(sorted(counts.items()))


async def plan_policy_run(
    context: TenantContext,
    run_id: str,
    decided: Plan,
    existing: Mapping[str, UserStatus],
    now: datetime,
) -> PolicyRun:
    """Plan the main-number policies of the run and build the queue messages for the work."""
    tenant_id, rules = context.tenant.key, context.rules
    stored = await context.ports.grants.list_grants()
    if not stored and not rules.main_number_policies:
        return PolicyRun()
    look_later = {
        user_id for user_id, status in existing.items()
        if status.retry_at is not None and status.retry_at > now
    }
    decisions = plan_policies(decided, rules, stored, look_later=look_later)
    number_actions = {d.user_id: d.action for d in decided.decisions}
    owned = frozenset(
        d.user_id for d in decisions
        if d.action in {PolicyAction.GRANT, PolicyAction.KEEP}
        or (d.action is PolicyAction.WAIT and number_actions.get(d.user_id) is Action.SKIP)
    )
    messages = tuple(
        _message(tenant_id, run_id, d) for d in decisions
        if d.action in {PolicyAction.GRANT, PolicyAction.REVOKE}
    )
    held = [d for d in decisions if d.action is PolicyAction.HOLD]
    if held:
        log.error(
            "sync run %s for tenant %s: %d main-number policy revocations held (%s)",
            run_id, tenant_id, len(held), held[0].reason.value,
        )
    return PolicyRun(decisions, messages, owned)


async def record_policy_statuses(
    context: TenantContext,
    run_id: str,
    now: datetime,
    run: PolicyRun,
    *,
    existing: Mapping[str, UserStatus],
) -> None:
    """Record ``keep`` for main-number users, and held revocations of former members, when the
    stored status says something else."""
    for decision in run.decisions:
        if decision.action is PolicyAction.KEEP:
            outcome = Outcome.KEPT
        elif decision.action is PolicyAction.HOLD and decision.read_position is None:
            outcome = Outcome.HELD
        else:
            continue
        status = UserStatus(
            user_id=decision.user_id, user_principal_name=decision.user_principal_name,
            outcome=outcome, reason=decision.reason, number=decision.main_number,
            message=decision.message, run_id=run_id,
            read_position=decision.read_position if decision.read_position is not None else -1,
            updated_at=now,
        )
        if _news(existing.get(decision.user_id), status):
            await context.ports.statuses.record(status)


def _news(before: UserStatus | None, after: UserStatus) -> bool:
    if before is None:
        return True
    if (after.outcome is Outcome.KEPT and before.outcome is Outcome.ASSIGNED
            and before.reason is after.reason and before.number == after.number):
        return False  # "gave the policies in run X" stays the better record
    return (before.outcome, before.reason, before.number, before.message) != (
        after.outcome, after.reason, after.number, after.message
    )


def _message(tenant_id: str, run_id: str, decision: PolicyDecision) -> AssignmentMessage:
    action: Literal["grant_policies", "revoke_policies"] = (
        "grant_policies" if decision.action is PolicyAction.GRANT else "revoke_policies"
    )
    types = ",".join(policy.policy_type for policy in decision.policies)
    return AssignmentMessage(
        idempotency_key=f"{run_id}|{decision.user_id}|{action}|{decision.domain}|{types}",
        tenant_id=tenant_id,
        run_id=run_id,
        user_id=decision.user_id,
        user_principal_name=decision.user_principal_name,
        telephone_number=decision.raw_number,
        read_position=decision.read_position,
        action=action,
        reason=decision.reason.value,
        number=decision.main_number,
        domain=decision.domain,
        policies=decision.policies,
    )


async def carry_out_policy_message(
    context: TenantContext, message: AssignmentMessage
) -> UserResult | None:
    """Carry out one ``grant_policies`` or ``revoke_policies`` message.

    Returns the result to record as the user's status, or None when the user's status belongs
    to the number flow (a revocation for a member who is still in the group).

    Raises:
        MessageError: the message lacks its domain, main number or policies.
        TemporaryError: retry later.
    """
    if message.domain is None or message.number is None or not message.policies:
        raise MessageError(
            f"a {message.action} message must name the domain, the main number and the "
            f"policies (domain={message.domain!r}, number={message.number!r})"
        )
    if message.action == "grant_policies":
        return await _grant(context, message)
    return await _revoke(context, message)


async def _grant(context: TenantContext, message: AssignmentMessage) -> UserResult:
    rules, clock, ports = context.rules, context.clock, context.ports
    teams_users, policies, grants = ports.teams_users, ports.policies, ports.grants
    main_number = message.number or ""
    domain = message.domain or ""
    wanted = rules.policies_for_domain(domain)
    listed = describe_policies(wanted)

    async def fail(reason: Reason, text: str) -> UserResult:
        return await _failed(context, reason, text, message)

    async def wait() -> UserResult:
        return await _waiting(context, message)

    if not await _still_carries(ports.users, message.user_id, main_number, rules) or (
        _keys(wanted) != _keys(message.policies)
    ):
        return UserResult(
            Outcome.SKIPPED, Reason.STALE,
            f"The directory or the policy settings changed after this run planned to give the "
            f"policies of {main_number}; the next run decides again.", main_number,
        )
    try:
        user = await teams_users.read(message.user_id)
    except PermanentError as error:
        return await fail(error.reason, error.message)
    if user is None:
        return await wait()
    try:
        ids = [(policy, await policies.policy_id(policy.policy_type, policy.name))
               for policy in wanted]
    except PermanentError as error:
        return await fail(error.reason, error.message)
    stored = await grants.get_grant(message.user_id)
    owned_before = {p.policy_type.casefold() for p in stored.owned()} if stored else set()
    effective = {kind.casefold(): policy_id for kind, policy_id in user.effective_policies.items()}
    missing = [(p, pid) for p, pid in ids if effective.get(p.policy_type.casefold()) != pid]
    missing_types = {p.policy_type.casefold() for p, _ in missing}
    wanted_types = {p.policy_type.casefold() for p in wanted}
    no_longer = [p.policy_type for p in (stored.owned() if stored else ())
                 if p.policy_type.casefold() not in wanted_types]
    grant = PolicyGrant(
        user_id=message.user_id, user_principal_name=message.user_principal_name,
        domain=domain, main_number=main_number,
        policies=tuple(
            GrantedPolicy(p.policy_type, p.name, pid,
                          assigned_by_app=p.policy_type.casefold() in missing_types | owned_before)
            for p, pid in ids
        ),
        granted_at=stored.granted_at if stored and stored.covers(wanted) else clock(),
        verified=False,
    )
    # The ownership marker is stored before the write: a crash after it must not leave a policy
    # this app wrote looking like someone else's (it would never be taken back).
    await grants.save_grant(grant)
    try:
        if missing:
            await policies.assign_policies(
                message.user_id, [(p.policy_type, pid) for p, pid in missing]
            )
        if no_longer:
            await policies.unassign_policies(message.user_id, no_longer)
    except PermanentError as error:
        if error.reason is Reason.USER_NOT_FOUND:
            return await wait()
        return await fail(error.reason, error.message)
    if missing or no_longer:
        try:
            user = await teams_users.read(message.user_id)
        except PermanentError as error:
            return await fail(
                error.reason,
                f"The policies were given, but reading them back failed: {error.message}",
            )
    unconfirmed = _unconfirmed(user, ids)
    if unconfirmed:
        return await fail(
            Reason.VERIFY_FAILED,
            f"Teams accepted {listed} for the main number {main_number}, but the user's "
            f"effective policies do not show {describe_policies(unconfirmed)}; the app looks "
            "again later. Check the user's policies in the Teams admin center.",
        )
    await grants.save_grant(replace(grant, verified=True))
    if not missing and not no_longer:
        return UserResult(
            Outcome.KEPT, Reason.MAIN_NUMBER,
            f"Has the main number {main_number} of {domain}; Teams already shows its policies: "
            f"{listed}. The main number itself is never given to a person.", main_number,
        )
    return UserResult(
        Outcome.ASSIGNED, Reason.MAIN_NUMBER,
        f"Has the main number {main_number} of {domain}; gave its policies: {listed} "
        "(confirmed in the user's effective policies). The main number itself is never given "
        "to a person.", main_number,
    )


def _unconfirmed(
    user: TeamsUser | None, ids: Sequence[tuple[MainNumberPolicy, str]]
) -> list[MainNumberPolicy]:
    effective = {
        kind.casefold(): policy_id
        for kind, policy_id in (user.effective_policies.items() if user else ())
    }
    return [p for p, pid in ids if effective.get(p.policy_type.casefold()) != pid]


async def _revoke(context: TenantContext, message: AssignmentMessage) -> UserResult | None:
    rules, users, grants = context.rules, context.ports.users, context.ports.grants
    reason = _reason(message.reason)
    record = reason is Reason.LEFT_GROUP  # members' statuses belong to the number flow
    stored = await grants.get_grant(message.user_id)
    main_number = message.number
    if stored is None:
        log.info("user %s: no main-number policies from this app (any more); nothing to take "
                 "back", message.user_principal_name)
        return None
    if reason is not Reason.LEFT_GROUP and rules.policies_for_domain(stored.domain) and (
        await _still_carries(users, message.user_id, stored.main_number, rules)
    ):
        log.info("user %s carries %s again; the policies stay", message.user_principal_name,
                 stored.main_number)
        return None
    # Only what this app itself assigned, whatever the message says.
    planned = {policy.policy_type.casefold() for policy in message.policies}
    types = [p.policy_type for p in stored.owned() if p.policy_type.casefold() in planned]
    if types:
        try:
            await context.ports.policies.unassign_policies(message.user_id, types)
        except PermanentError as error:
            if error.reason is not Reason.USER_NOT_FOUND:
                # Like a number, a policy that cannot be taken back is retried, then reported.
                log.warning("could not take back the policies of %s: %s",
                            message.user_principal_name, error.message)
                raise TemporaryError(error.message) from error
    await grants.remove_grant(message.user_id)
    result = UserResult(
        Outcome.UNASSIGNED, reason,
        f"Took back the policies this app gave for the main number {main_number}: "
        f"{describe_policies(stored.owned())}.", main_number,
    )
    log.info("user %s: %s", message.user_principal_name, result.message)
    return result if record else None


async def _still_carries(
    users: UserReader, user_id: str, main_number: str, rules: TenantRules
) -> bool:
    fresh = await users.read_user(user_id)
    if fresh is None or not fresh.account_enabled:
        return False
    current = check_number(fresh.telephone_number, rules)
    return current.number is not None and current.number.partition(";")[0] == main_number


async def _waiting(context: TenantContext, message: AssignmentMessage) -> UserResult:
    patience = context.limits.readiness_patience
    now = context.clock()
    stored = await context.ports.statuses.get_status(message.user_id)
    waiting = stored is not None and stored.reason in WAITING_REASONS
    since = (stored.waiting_since if stored is not None and waiting else None) or now
    state = readiness(
        None, first_seen=since, now=now, patience=patience,
        attempts=stored.attempts if stored is not None else 0,
    )
    return UserResult(
        Outcome.FAILED if state.is_problem else Outcome.SKIPPED, Reason(state.state),
        f"{state.message} The main number's policies ({describe_policies(message.policies)}) "
        "are given then.", message.number, retry_at=state.check_again_at, waiting_since=since,
    )


async def _failed(
    context: TenantContext, reason: Reason, text: str, message: AssignmentMessage
) -> UserResult:
    """A failure looked at again after the usual backoff (the timer waits until then)."""
    stored = await context.ports.statuses.get_status(message.user_id)
    attempts = stored.attempts if stored is not None else 0
    return UserResult(Outcome.FAILED, reason, text, message.number,
                      retry_at=context.clock() + backoff(attempts))


def _reason(text: str) -> Reason:
    try:
        return Reason(text)
    except ValueError:
        return Reason.MAIN_NUMBER_REMOVED


def _keys(policies: Sequence[MainNumberPolicy]) -> frozenset[tuple[str, str]]:
    return frozenset((p.policy_type.casefold(), p.name) for p in policies)
