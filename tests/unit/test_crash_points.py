"""A worker may die after any step of a message: the redelivery ends where a clean run ends.

Every port call the message handler makes is a step of the core's flow
(``shared.core.steps``). For an assign (with an old number to take back), an unassign and a
main-number policy grant, each test first runs the message cleanly and counts its steps, then,
for every step k, runs it on a fresh world that crashes right after step k, redelivers the
message, and checks what a helpdesk and Teams would see: the same numbers and policies in
Teams, the same claims and grants, the same status — and no Teams write made twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest

from shared.core.directory import Claim, Member
from shared.core.messages import AssignmentMessage
from shared.core.policy_planner import PolicyGrant
from shared.core.teams_readiness import TeamsUser
from shared.core.tenant_rules import TenantRules
from shared.service.context import TenantContext, TenantPorts
from shared.service.message_handler import process_assignment
from tests.fakes import (
    TENANT,
    FakeClaimStore,
    FakeQueue,
    FakeTeamsNumbers,
    FakeTeamsPolicies,
    FakeTeamsUsers,
    FakeUsers,
    SettableClock,
    fake_context,
)

NUMBER = "+31201234567"
OLD = "+31201234500"
MAIN = "+31201234000"
RULES = TenantRules(
    main_numbers={"contoso.example": MAIN},
    main_number_policies="contoso.example=CallingLineIdentity:Contoso Main,"  # type: ignore[arg-type]
                         "OnlineVoiceRoutingPolicy:NL-Route",
)
POLICY_IDS = {
    ("CallingLineIdentity", "Contoso Main"): "tag:contoso-main",
    ("OnlineVoiceRoutingPolicy", "NL-Route"): "nl-route",
}


class CrashError(Exception):
    """The worker died (raised right after the step it follows was performed)."""


@dataclass
class Steps:
    """The port calls made so far, and after which one to crash (0: never)."""

    crash_after: int = 0
    performed: int = 0
    teams_writes: int = 0
    names: list[str] = field(default_factory=list)


_TEAMS_WRITES = {"assign_number", "unassign_number", "assign_policies", "unassign_policies"}


class Counted:
    """A port whose every call is a counted step; the configured one crashes after it ran."""

    def __init__(self, port: object, steps: Steps) -> None:
        self._port = port
        self._steps = steps

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._port, name)
        if name.startswith("_") or not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            # A write counts once sent, whatever happens while Teams carries it out.
            self._steps.teams_writes += name in _TEAMS_WRITES
            answer = await method(*args, **kwargs)
            self._steps.performed += 1
            self._steps.names.append(name)
            if self._steps.performed == self._steps.crash_after:
                raise CrashError(f"the worker died after {name} (step {self._steps.performed})")
            return answer

        return call


class TeamsUsersWithPolicies(FakeTeamsUsers):
    """Teams user configurations whose effective policies are the ones given directly."""

    def __init__(self, teams: FakeTeamsNumbers, policies: FakeTeamsPolicies) -> None:
        super().__init__(teams)
        self.policies = policies

    async def read(self, user_id: str) -> TeamsUser | None:
        user = await super().read(user_id)
        if user is None:
            return None
        return replace(user, effective_policies=dict(self.policies.assigned.get(user_id, {})))


#: Ports whose calls are not steps of the flow: an audit entry is written after the step it
#: records, best effort (a worker dying there is one dying after that step).
_NOT_STEPS = {"audit"}


def _counted(context: TenantContext, steps: Steps) -> TenantContext:
    ports = {name: getattr(context.ports, name) if name in _NOT_STEPS
             else Counted(getattr(context.ports, name), steps)
             for name in TenantPorts.__dataclass_fields__}
    return replace(context, ports=TenantPorts(**ports))


World = Callable[[], Awaitable[TenantContext]]


async def _assign_world() -> TenantContext:
    """ann gets NUMBER; Teams has her OLD number, which the app gave her."""
    teams = FakeTeamsNumbers({OLD: "ann"})
    claims = FakeClaimStore(TENANT.key)
    context = fake_context(
        teams=teams, claims=claims,
        users=FakeUsers([Member("ann", "ann@contoso.example", (NUMBER,), True, 0)]),
    )
    await claims.claim(Claim(OLD, "ann", "ann@contoso.example", "run-0", 0, assigned=True))
    await claims.claim(Claim(NUMBER, "ann", "ann@contoso.example", "run-1", 0))
    return context


async def _unassign_world() -> TenantContext:
    """ann left the group; Teams has the NUMBER the app gave her."""
    teams = FakeTeamsNumbers({NUMBER: "ann"})
    claims = FakeClaimStore(TENANT.key)
    await claims.claim(Claim(NUMBER, "ann", "ann@contoso.example", "run-0", 0, assigned=True))
    return fake_context(teams=teams, claims=claims)


async def _grant_world() -> TenantContext:
    """ann carries the main number: she gets its two policies."""
    teams = FakeTeamsNumbers()
    policies = FakeTeamsPolicies(POLICY_IDS)
    return fake_context(
        rules=RULES, teams=teams, teams_users=TeamsUsersWithPolicies(teams, policies),
        policies=policies,
        users=FakeUsers([Member("ann", "ann@contoso.example", (MAIN,), True, 0)]),
    )


def _message(action: str) -> AssignmentMessage:
    common: dict[str, Any] = {
        "tenant_id": TENANT.key, "run_id": "run-1", "user_id": "ann",
        "user_principal_name": "ann@contoso.example", "read_position": 0,
        "idempotency_key": f"run-1|ann|{action}",
    }
    if action == "assign":
        return AssignmentMessage(**common, telephone_number=NUMBER, action="assign",
                                 reason="number_changed", number=NUMBER, previous_number=OLD)
    if action == "unassign":
        return AssignmentMessage(**common, telephone_number=None, action="unassign",
                                 reason="left_group", previous_number=NUMBER)
    return AssignmentMessage(
        **common, telephone_number=MAIN, action="grant_policies", reason="main_number",
        number=MAIN, domain="contoso.example",
        policies=RULES.policies_for_domain("contoso.example"),
    )


async def _end_state(context: TenantContext, message: AssignmentMessage) -> dict[str, object]:
    """What a person would see: Teams, the claims, the grant, the status, what is in flight."""
    ports = context.ports
    teams = ports.teams
    assert isinstance(teams, FakeTeamsNumbers)
    claims = {
        number: (claim.holder_user_id, claim.held)
        for number in (NUMBER, OLD) if (claim := await ports.claims.get_claim(number))
    }
    grant: PolicyGrant | None = await ports.grants.get_grant("ann")
    status = await ports.statuses.get_status("ann")
    policies = ports.policies
    return {
        "teams": dict(teams.assignments),
        "policies": dict(policies.assigned) if isinstance(policies, FakeTeamsPolicies) else {},
        "claims": claims,
        "grant": None if grant is None else (grant.verified, [
            (p.policy_type, p.policy_id, p.assigned_by_app) for p in grant.policies
        ]),
        "status": None if status is None else (
            status.outcome, status.reason, status.number, status.message,
        ),
        "in_flight": await ports.in_flight.list_in_flight(context.clock()),
        "done": await ports.ledger.effect_done(message.idempotency_key),
    }


async def _as_the_host(
    context: TenantContext, plain: TenantContext, message: AssignmentMessage
) -> None:
    """Deliver the message as the host does: again (``redelivered``) after the worker died
    processing it, and each copy it put back on the queue to wait for Teams once its wait is
    over (the clock moved on by it)."""
    queue, clock = plain.ports.queue, plain.clock
    assert isinstance(queue, FakeQueue)
    assert isinstance(clock, SettableClock)
    deliveries = [(message, False)]
    while deliveries:
        current, again = deliveries.pop(0)
        try:
            await process_assignment(context, current, redelivered=again)
        except CrashError:
            deliveries.insert(0, (current, True))
        while queue.later:
            later, delay = queue.later.pop(0)
            clock.now += timedelta(seconds=delay)
            deliveries.append((later, False))


async def _clean_run(world: World, message: AssignmentMessage) -> tuple[dict[str, object], Steps]:
    steps = Steps()
    plain = await world()
    await _as_the_host(_counted(plain, steps), plain, message)
    return await _end_state(plain, message), steps


_BOOKKEEPING = ["effect_done", "record", "mark_effect_done", "clear"]


@pytest.mark.parametrize(("action", "world", "writes"), [
    ("assign", _assign_world, ["claim", "mark_assigning", "assign_number", "send_later",
                               "read", "observe", "mark_assigned", "get_claim", "release"]),
    ("unassign", _unassign_world, ["get_claim", "find_number", "unassign_number", "release"]),
    ("grant_policies", _grant_world, ["read_user", "policy_id", "get_grant", "save_grant",
                                      "assign_policies"]),
])
async def test_a_crash_after_any_step_converges_on_redelivery_without_a_second_write(
    action: str, world: World, writes: list[str],
) -> None:
    message = _message(action)
    clean, clean_steps = await _clean_run(world, message)
    assert clean["status"] is not None
    assert clean_steps.teams_writes == 1
    # Every step of the flow is a crash point below: its reads, its writes, its bookkeeping.
    assert set(writes + _BOOKKEEPING) <= set(clean_steps.names), clean_steps.names
    for step in range(1, clean_steps.performed + 1):
        steps = Steps(crash_after=step)
        plain = await world()
        await _as_the_host(_counted(plain, steps), plain, message)
        assert steps.performed >= step, f"no crash after step {step}"
        assert await _end_state(plain, message) == clean, f"crash after step {step}"
        assert steps.teams_writes == clean_steps.teams_writes, (
            f"crash after step {step}: {steps.teams_writes} Teams writes, "
            f"{clean_steps.teams_writes} without the crash"
        )
