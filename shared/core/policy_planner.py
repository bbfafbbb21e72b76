"""Main-number policies as one pure function: the number plan + tenant rules + grants → decisions.

A SIP domain's main number is never given to a person (``shared.core.planner`` rule 4); the users
who carry it get the policies configured for it instead (``MAIN_NUMBER_POLICIES``: e.g. a caller-ID
policy that presents the main number and a voice routing policy). Pure and deterministic: no
I/O, no clock; the timer run (``shared.core.run_decisions``) turns its decisions into messages and
``shared.core.policy_steps`` carries them out.

Rules, per user:

1. A member whose number decision is ``skip``/``main_number`` for a domain with policies
   configured → ``grant`` (``main_number``) when this app has not granted them that set yet, or
   its grant was not verified; ``keep`` when it has. A user whose stored status says to look
   again later (a failed grant, a wait for Teams) → ``wait`` until then.
2. A member who carries a main number but still holds a personal number from this app (its
   removal is planned or held) → ``wait``: the policies follow once the number is taken back.
3. A member whose ``telephoneNumber`` cannot be read (``invalid_format``, ``invalid_number``)
   keeps what the app granted: a typo never takes anything away.
4. Otherwise, a user the app granted policies to → ``revoke`` only the policy types the app
   itself assigned (``assigned_by_app``): ``left_group`` (no longer a member), ``disabled``, or
   ``main_number_removed`` (carries a personal number, none, or a domain without policies).
   Policies someone else gave the user are never touched.

Safety: an empty member list revokes nobody (``hold``/``empty_member_list``), and a plan with more
revocations than the tenant's mass-unassign threshold (the larger of ``massUnassignMinimum`` and
``massUnassignPercent`` of the users holding policies from the app) holds all of them
(``hold``/``mass_unassign_guard``). Revocations are counted against their own threshold, not
added to the numbers': a policy removal and a number removal are different harms, and the number
guard's holds (and their approval) are about numbers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.core.outcomes import Action, Reason
from shared.core.planner import Decision, Plan
from shared.core.tenant_rules import MainNumberPolicy, TenantRules


class PolicyAction(StrEnum):
    """What the policy rules decide for one user."""

    GRANT = "grant"  # give the user the main number's policies (and verify them)
    KEEP = "keep"  # the app already gave the user exactly these policies
    REVOKE = "revoke"  # take back the policy types this app gave the user
    HOLD = "hold"  # a revocation stopped by a safety guard
    WAIT = "wait"  # nothing now: a backoff, or a personal number still to be taken back


@dataclass(frozen=True, slots=True)
class GrantedPolicy:
    """One policy of a grant: what was configured, its Teams id, and whether this app assigned
    it (the ownership marker: only such policies are ever taken back)."""

    policy_type: str
    name: str
    policy_id: str
    assigned_by_app: bool

    def __str__(self) -> str:
        return f"{self.policy_type} {self.name!r}"


@dataclass(frozen=True, slots=True)
class PolicyGrant:
    """What this app granted one user because they carry a main number (table ``policygrants``)."""

    user_id: str
    user_principal_name: str
    domain: str
    main_number: str
    policies: tuple[GrantedPolicy, ...]
    granted_at: datetime
    verified: bool
    """Set once the user's effective policy assignments showed every policy."""

    def owned(self) -> tuple[GrantedPolicy, ...]:
        """The policies this app assigned itself (the only ones it may take back)."""
        return tuple(policy for policy in self.policies if policy.assigned_by_app)

    def covers(self, wanted: Iterable[MainNumberPolicy]) -> bool:
        """Whether the grant is exactly the wanted set (types compared case-insensitively)."""
        return _policy_keys(self.policies) == _policy_keys(wanted)


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """One user's policy decision, with everything a helpdesk needs to understand it."""

    user_id: str
    user_principal_name: str
    action: PolicyAction
    reason: Reason
    message: str
    domain: str | None = None
    main_number: str | None = None
    policies: tuple[MainNumberPolicy, ...] = ()
    """For grant/keep/wait: the wanted policies; for revoke/hold: the ones to take back."""
    read_position: int | None = None
    raw_number: str | None = None

    def to_json(self) -> dict[str, object]:
        """The decision as JSON (dry run, logs)."""
        return {
            "userId": self.user_id,
            "userPrincipalName": self.user_principal_name,
            "outcome": self.action.value,
            "reason": self.reason.value,
            "domain": self.domain,
            "mainNumber": self.main_number,
            "policies": [
                {"policyType": policy.policy_type, "name": policy.name}
                for policy in self.policies
            ],
            "message": self.message,
        }


# Number decisions whose telephoneNumber could not be read: a typo takes nothing away.
_UNREADABLE = frozenset({Reason.INVALID_FORMAT, Reason.INVALID_NUMBER})


def plan_policies(
    decided: Plan,
    rules: TenantRules,
    grants: Mapping[str, PolicyGrant],
    *,
    look_later: Collection[str] = (),
) -> tuple[PolicyDecision, ...]:
    """Decide the main-number policies of every member and of every user the app granted some.

    ``decided`` is the number plan of the same run (members carry a ``read_position``; former
    members do not); ``grants`` is what this app granted, by user id; ``look_later`` holds the
    users whose stored status asks not to be looked at before its retry time.
    """
    main_domains = rules.domains_by_main_number()
    members = [d for d in decided.decisions if d.read_position is not None]
    member_ids = {d.user_id for d in members}
    result: list[PolicyDecision] = []
    for decision in members:
        domain = _main_number_domain(decision, main_domains)
        wanted = rules.policies_for_domain(domain) if domain else ()
        grant = grants.get(decision.user_id)
        if wanted and domain is not None:
            result.append(_for_carrier(decision, domain, wanted, grant, look_later))
        elif grant is not None and grant.owned() and decision.reason not in _UNREADABLE:
            result.append(_revoke(grant, _revoke_reason(decision), decision))
    for user_id in sorted(set(grants) - member_ids, key=lambda u: grants[u].user_principal_name):
        grant = grants[user_id]
        if not grant.owned():
            continue
        if not members:
            result.append(_hold(
                _revoke(grant, Reason.LEFT_GROUP, None), Reason.EMPTY_MEMBER_LIST,
                "The voice group read back empty; the policies are not taken back, because an "
                "empty group is far more likely an outage than a company without phones.",
            ))
        else:
            result.append(_revoke(grant, Reason.LEFT_GROUP, None))
    return _guard_mass_revoke(result, rules, sum(1 for g in grants.values() if g.owned()))


def _main_number_domain(decision: Decision, main_domains: Mapping[str, str]) -> str | None:
    """The SIP domain whose main number the member carries (the planner never assigns one)."""
    if decision.number is None or decision.reason is Reason.DISABLED:
        return None
    return main_domains.get(decision.number.partition(";")[0])


def _for_carrier(
    decision: Decision,
    domain: str,
    wanted: tuple[MainNumberPolicy, ...],
    grant: PolicyGrant | None,
    look_later: Collection[str],
) -> PolicyDecision:
    number = decision.number
    listed = describe_policies(wanted)

    def decide(action: PolicyAction, message: str) -> PolicyDecision:
        return PolicyDecision(
            decision.user_id, decision.user_principal_name, action, Reason.MAIN_NUMBER, message,
            domain, number, wanted, decision.read_position, decision.raw_number,
        )

    if decision.action is not Action.SKIP:
        held = decision.previous_number or "a personal number"
        return decide(PolicyAction.WAIT, (
            f"Has the main number {number} of {domain}; gets its policies ({listed}) once "
            f"{held}, given by this app, is taken back."
        ))
    if grant is not None and grant.verified and grant.covers(wanted):
        return decide(PolicyAction.KEEP, (
            f"Has the main number {number} of {domain}; already has its policies from this app: "
            f"{listed}. The main number itself is never given to a person."
        ))
    if decision.user_id in look_later:
        return decide(PolicyAction.WAIT, (
            f"Has the main number {number} of {domain}; giving its policies ({listed}) is tried "
            "again at the time in the user's status."
        ))
    return decide(PolicyAction.GRANT, (
        f"Has the main number {number} of {domain}; gets its policies: {listed}. The main "
        "number itself is never given to a person."
    ))


def _revoke_reason(decision: Decision) -> Reason:
    if decision.reason is Reason.DISABLED:
        return Reason.DISABLED
    return Reason.MAIN_NUMBER_REMOVED


def _revoke(grant: PolicyGrant, reason: Reason, decision: Decision | None) -> PolicyDecision:
    owned = tuple(
        MainNumberPolicy(policy_type=policy.policy_type, name=policy.name)
        for policy in grant.owned()
    )
    listed = describe_policies(owned)
    why = {
        Reason.LEFT_GROUP: "No longer in the voice group",
        Reason.DISABLED: "The account is disabled",
    }.get(reason, f"No longer carries the main number {grant.main_number} of {grant.domain}")
    return PolicyDecision(
        grant.user_id, grant.user_principal_name, PolicyAction.REVOKE, reason,
        f"{why}; the policies this app gave for that main number are taken back: {listed}.",
        grant.domain, grant.main_number, owned,
        decision.read_position if decision is not None else None,
        decision.raw_number if decision is not None else None,
    )


def _hold(decision: PolicyDecision, reason: Reason, note: str) -> PolicyDecision:
    return PolicyDecision(
        decision.user_id, decision.user_principal_name, PolicyAction.HOLD, reason,
        f"{decision.message.removesuffix('.')}, but not now. {note}", decision.domain,
        decision.main_number, decision.policies, decision.read_position, decision.raw_number,
    )


def _guard_mass_revoke(
    decisions: list[PolicyDecision], rules: TenantRules, users_granted: int
) -> tuple[PolicyDecision, ...]:
    revokes = sum(1 for d in decisions if d.action is PolicyAction.REVOKE)
    threshold = rules.mass_unassign_threshold(users_granted)
    if revokes <= threshold:
        return tuple(decisions)
    note = (f"This plan would take back the main-number policies of {revokes} users, more than "
            f"the tenant's threshold of {threshold}; nothing is taken back while that holds.")
    return tuple(
        _hold(d, Reason.MASS_UNASSIGN_GUARD, note) if d.action is PolicyAction.REVOKE else d
        for d in decisions
    )


def describe_policies(policies: Iterable[MainNumberPolicy | GrantedPolicy]) -> str:
    """``CallingLineIdentity 'Contoso Main' and OnlineVoiceRoutingPolicy 'NL-Route'``."""
    names = [str(policy) for policy in policies]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + f" and {names[-1]}"


def _policy_keys(
    policies: Iterable[MainNumberPolicy | GrantedPolicy],
) -> frozenset[tuple[str, str]]:
    return frozenset(
        (policy.policy_type.casefold(), bare_policy_name(policy.name)) for policy in policies
    )


def bare_policy_name(name: str) -> str:
    """``name`` without a leading ``Tag:`` (any case): the form getPolicyId takes.

    Teams shows policy instances as ``Tag:<name>`` (PowerShell's Identity); getPolicyId takes the
    bare name and answers with the tagged one. People copy either into the app settings.
    """
    return name[len(_TAG_PREFIX):] if name[: len(_TAG_PREFIX)].lower() == _TAG_PREFIX else name


_TAG_PREFIX = "tag:"
