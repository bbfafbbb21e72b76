"""A main number's policies for one user, decided step by step (sans-I/O, like
``shared.core.assignment_steps``).

``grant_policies``: re-check the user still carries the main number → read the user's Teams
configuration (not in Teams yet → ``waiting_for_teams``) → resolve the policy ids → store the
grant with the ownership markers *before* writing, so a crash never leaves a policy the app wrote
without its marker → assign the missing ones in one request and unassign types the app gave
before that are no longer wanted → read the configuration back and confirm each type shows the
expected policy, by name or id (``in_effect``; else ``read_back_pending``, read back again with a
backoff, and ``verify_failed`` once ``READ_BACK_PATIENCE`` has passed) → mark the grant
verified. While a read-back waits, a later message does not write the policies again: it only
reads them back.

``revoke_policies``: unassign only the types the app itself assigned, then forget the grant.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from shared.core.directory import Member
from shared.core.errors import PermanentError, TemporaryError
from shared.core.messages import AssignmentMessage
from shared.core.outcomes import Outcome, Reason, UserResult
from shared.core.phone_numbers import check_number
from shared.core.policy_planner import (
    GrantedPolicy,
    PolicyGrant,
    bare_policy_name,
    describe_policies,
)
from shared.core.recording import (
    awaiting_read_back,
    failed_with_backoff,
    read_back_missed,
    reason_named,
    waiting_for_teams,
)
from shared.core.steps import (
    AssignPolicies,
    Flow,
    GetGrant,
    Note,
    Now,
    ReadDirectoryUser,
    ReadStatus,
    ReadTeamsUser,
    RemoveGrant,
    ResolvePolicy,
    SaveGrant,
    UnassignPolicies,
    ask,
)
from shared.core.teams_readiness import TeamsUser
from shared.core.tenant_rules import MainNumberPolicy, TenantRules


def policy_flow(
    message: AssignmentMessage, rules: TenantRules, patience: timedelta, *, redelivered: bool
) -> Flow[UserResult | None]:
    """Carry out one ``grant_policies`` or ``revoke_policies`` message.

    Returns the result to record as the user's status, or None when the user's status belongs
    to the number flow (a revocation for a member who is still in the group).
    """
    if message.action == "grant_policies":
        return (yield from grant_flow(message, rules, patience, redelivered=redelivered))
    return (yield from revoke_flow(message, rules))


def grant_flow(
    message: AssignmentMessage, rules: TenantRules, patience: timedelta, *, redelivered: bool
) -> Flow[UserResult]:
    """Give the user the policies of the main number they carry (see the module docstring).

    A redelivery that finds the policies in effect and the app's grant covering them with its
    markers reports them given, as the earlier try that wrote them would have.
    """
    main_number = message.number or ""
    domain = message.domain or ""
    user_id = message.user_id
    wanted = rules.policies_for_domain(domain)
    listed = describe_policies(wanted)
    fresh = yield from ask(ReadDirectoryUser(user_id))
    if not carries(fresh, main_number, rules) or _keys(wanted) != _keys(message.policies):
        return UserResult(
            Outcome.SKIPPED, Reason.STALE,
            f"The directory or the policy settings changed after this run planned to give the "
            f"policies of {main_number}; the next run decides again.", main_number,
        )
    user = yield from ask(ReadTeamsUser(user_id))
    if isinstance(user, PermanentError):
        return (yield from _failed(message, user.reason, user.message))
    if user is None:
        return (yield from _waiting(message, patience))
    ids = yield from _policy_ids(wanted)
    if isinstance(ids, PermanentError):
        return (yield from _failed(message, ids.reason, ids.message))
    stored = yield from ask(GetGrant(user_id))
    owned_before = {p.policy_type.casefold() for p in stored.owned()} if stored else set()
    missing = _unconfirmed(user, ids)
    # This app gave these very policies and waits for the effective policies to show them
    # (eventually consistent): read back, never assigned a second time while it waits.
    awaiting = (
        stored is not None and not stored.verified and stored.covers(wanted)
        and awaiting_read_back((yield from ask(ReadStatus(user_id))), main_number)
    )
    if awaiting and missing:
        return (yield from _not_shown_yet(message, listed, missing))
    missing_types = {p.policy_type.casefold() for p in missing}
    wanted_types = {p.policy_type.casefold() for p in wanted}
    no_longer = tuple(p.policy_type for p in (stored.owned() if stored else ())
                      if p.policy_type.casefold() not in wanted_types)
    granted_at = stored.granted_at if stored and stored.covers(wanted) else (
        yield from ask(Now())
    )
    grant = PolicyGrant(
        user_id=user_id, user_principal_name=message.user_principal_name,
        domain=domain, main_number=main_number,
        policies=tuple(
            GrantedPolicy(p.policy_type, p.name, pid,
                          assigned_by_app=p.policy_type.casefold() in missing_types | owned_before)
            for p, pid in ids
        ),
        granted_at=granted_at,
        verified=False,
    )
    # The ownership marker is stored before the write: a crash after it must not leave a policy
    # this app wrote looking like someone else's (it would never be taken back).
    yield from ask(SaveGrant(grant))
    to_assign = tuple((p.policy_type, pid) for p, pid in ids if p in missing)
    refused: PermanentError | None = None
    if to_assign:
        refused = yield from ask(AssignPolicies(user_id, to_assign))
    if refused is None and no_longer:
        refused = yield from ask(UnassignPolicies(user_id, no_longer))
    if refused is not None:
        if refused.reason is Reason.USER_NOT_FOUND:
            return (yield from _waiting(message, patience))
        return (yield from _failed(message, refused.reason, refused.message))
    if to_assign or no_longer:
        user = yield from ask(ReadTeamsUser(user_id))
        if isinstance(user, PermanentError):
            return (yield from _failed(
                message, user.reason,
                f"The policies were given, but reading them back failed: {user.message}",
            ))
    unconfirmed = _unconfirmed(user, ids)
    if unconfirmed:
        return (yield from _not_shown_yet(message, listed, unconfirmed))
    yield from ask(SaveGrant(replace(grant, verified=True)))
    given_earlier = (redelivered or awaiting) and stored is not None and stored.covers(
        wanted) and bool(stored.owned())
    return _confirmed(message, listed, given=bool(to_assign or no_longer or given_earlier))


def _confirmed(message: AssignmentMessage, listed: str, *, given: bool) -> UserResult:
    """The policies show in effect: ``assigned`` when this app gave them (now or in an earlier
    try whose read-back waited), ``kept`` when Teams had them already."""
    main_number, domain = message.number or "", message.domain or ""
    if not given:
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


def revoke_flow(message: AssignmentMessage, rules: TenantRules) -> Flow[UserResult | None]:
    """Take back the policies this app itself gave for a main number the user no longer
    carries; a result only for a user who left the group (a member's status is the number
    flow's)."""
    reason = reason_named(message.reason, Reason.MAIN_NUMBER_REMOVED)
    record = reason is Reason.LEFT_GROUP
    user_id = message.user_id
    stored = yield from ask(GetGrant(user_id))
    if stored is None:
        yield from ask(Note("info", (
            f"user {message.user_principal_name}: no main-number policies from this app (any "
            "more); nothing to take back"
        )))
        return None
    if reason is not Reason.LEFT_GROUP and rules.policies_for_domain(stored.domain):
        fresh = yield from ask(ReadDirectoryUser(user_id))
        if carries(fresh, stored.main_number, rules):
            yield from ask(Note("info", (
                f"user {message.user_principal_name} carries {stored.main_number} again; the "
                "policies stay"
            )))
            return None
    # Only what this app itself assigned, whatever the message says.
    planned = {policy.policy_type.casefold() for policy in message.policies}
    types = tuple(p.policy_type for p in stored.owned() if p.policy_type.casefold() in planned)
    if types:
        refused = yield from ask(UnassignPolicies(user_id, types))
        if refused is not None and refused.reason is not Reason.USER_NOT_FOUND:
            # Like a number, a policy that cannot be taken back is retried, then reported.
            yield from ask(Note("warning", (
                f"could not take back the policies of {message.user_principal_name}: "
                f"{refused.message}"
            )))
            raise TemporaryError(refused.message) from refused
    yield from ask(RemoveGrant(user_id))
    result = UserResult(
        Outcome.UNASSIGNED, reason,
        f"Took back the policies this app gave for the main number {message.number}: "
        f"{describe_policies(stored.owned())}.", message.number,
    )
    yield from ask(Note("info", f"user {message.user_principal_name}: {result.message}"))
    return result if record else None


def carries(fresh: Member | None, main_number: str, rules: TenantRules) -> bool:
    """Whether the directory still gives the (enabled) user the main number."""
    if fresh is None or not fresh.account_enabled:
        return False
    current = check_number(fresh.telephone_number, rules)
    return current.number is not None and current.number.partition(";")[0] == main_number


def _policy_ids(
    wanted: Sequence[MainNumberPolicy],
) -> Flow[list[tuple[MainNumberPolicy, str]] | PermanentError]:
    """Each wanted policy with its Teams id, or the first refusal (a policy that does not
    exist, no permission)."""
    ids: list[tuple[MainNumberPolicy, str]] = []
    for policy in wanted:
        policy_id = yield from ask(ResolvePolicy(policy.policy_type, policy.name))
        if isinstance(policy_id, PermanentError):
            return policy_id
        ids.append((policy, policy_id))
    return ids


def _unconfirmed(
    user: TeamsUser | None, ids: Sequence[tuple[MainNumberPolicy, str]]
) -> list[MainNumberPolicy]:
    return [p for p, pid in ids if user is None or not in_effect(user, p, pid)]


def in_effect(user: TeamsUser, policy: MainNumberPolicy, policy_id: str) -> bool:
    """Whether the user's effective policy of ``policy``'s type is that policy.

    Matched by type and then by id (a GUID's braces and case aside) or by name (displayName,
    with or without ``Tag:``, case-insensitive as Teams names are). The name is what survives:
    Graph's examples show a GUID-style id from getPolicyId and a base64-like one in
    effectivePolicyAssignments for the same kind of policy, so ids alone could never match and
    a confirmed grant would be written again on every run.
    """
    wanted_type = policy.policy_type.casefold()
    effective_id = _by_type(user.effective_policies, wanted_type)
    if effective_id is not None and _normal_id(effective_id) == _normal_id(policy_id):
        return True
    name = _by_type(user.effective_policy_names, wanted_type)
    return name is not None and (
        bare_policy_name(name).casefold() == bare_policy_name(policy.name).casefold()
    )


def _by_type(by_type: dict[str, str], wanted_type: str) -> str | None:
    return next((value for kind, value in by_type.items() if kind.casefold() == wanted_type),
                None)


def _normal_id(policy_id: str) -> str:
    """A GUID without braces and in lower case; any other id (base64-like ids are
    case-sensitive) as it is."""
    text = policy_id.strip()
    bare = text.strip("{}")
    return bare.lower() if _GUID.fullmatch(bare) else text


_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _not_shown_yet(
    message: AssignmentMessage, listed: str, unconfirmed: Sequence[MainNumberPolicy]
) -> Flow[UserResult]:
    """Teams took the policies but the user's effective policies do not show them (yet)."""
    main_number = message.number or ""
    stored = yield from ask(ReadStatus(message.user_id))
    now = yield from ask(Now())
    return read_back_missed(
        f"Teams accepted {listed} for the main number {main_number}, but the user's effective "
        f"policies do not show {describe_policies(unconfirmed)}. Check the user's policies in "
        "the Teams admin center",
        f"Teams took {listed} for the main number {main_number}; the user's effective policies "
        f"do not show {describe_policies(unconfirmed)} yet.",
        main_number, stored, now,
    )


def _waiting(message: AssignmentMessage, patience: timedelta) -> Flow[UserResult]:
    now = yield from ask(Now())
    stored = yield from ask(ReadStatus(message.user_id))
    return waiting_for_teams(
        None, stored, now=now, patience=patience, number=message.number,
        then=f"The main number's policies ({describe_policies(message.policies)}) are given "
             "then.",
    )


def _failed(message: AssignmentMessage, reason: Reason, text: str) -> Flow[UserResult]:
    """A failure looked at again after the usual backoff (the timer waits until then)."""
    stored = yield from ask(ReadStatus(message.user_id))
    now = yield from ask(Now())
    return failed_with_backoff(reason, text, message.number, stored, now)


def _keys(policies: Sequence[MainNumberPolicy]) -> frozenset[tuple[str, str]]:
    return frozenset((p.policy_type.casefold(), p.name) for p in policies)
