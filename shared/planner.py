"""Plan one sync run: which members get a message and which numbers are reserved, in read order.

Pure and deterministic: members (in read order) and the claims already stored in, a plan out.

The customer's duplicate rule is "when two users carry the same personal number, the one read
later is not assigned". Queue messages are processed concurrently and in no particular order, so
read order cannot be left to the queue: the plan reserves each unclaimed valid number for the
first member that carries it, and the timer stores those reservations before it enqueues anything.
A queue message for a later reader then finds the number already claimed and records a duplicate.
Across runs the stored claim wins, so a holder from an earlier run keeps the number.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shared.directory import Claim, Member
from shared.messages import AssignmentMessage
from shared.phone_numbers import check_number


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What a run will do before any message is processed."""

    messages: tuple[AssignmentMessage, ...]
    reservations: tuple[Claim, ...]
    precheck: Mapping[str, int]

    def summary(self) -> dict[str, object]:
        """Counts for logs and the HTTP answer."""
        return {
            "members": len(self.messages),
            "reservations": len(self.reservations),
            "precheck": dict(self.precheck),
        }


def plan_run(
    tenant_id: str, run_id: str, members: Sequence[Member], claims: Mapping[str, Claim]
) -> RunPlan:
    """Plan a run: one message per member, and a reservation for each newly seen number.

    ``precheck`` counts what the queue function is expected to find (``valid``, ``duplicate``,
    and the reason codes of numbers that fail the format rule); the queue function re-checks.
    """
    reserved: dict[str, Claim] = {}
    precheck: Counter[str] = Counter()
    messages = []
    for member in sorted(members, key=lambda m: m.read_position):
        messages.append(
            AssignmentMessage(
                tenant_id=tenant_id,
                run_id=run_id,
                user_id=member.user_id,
                user_principal_name=member.user_principal_name,
                telephone_number=member.telephone_number,
                read_position=member.read_position,
            )
        )
        check = check_number(member.telephone_number)
        if check.number is None:
            precheck[str(check.reason)] += 1
            continue
        holder = reserved.get(check.number) or claims.get(check.number)
        if holder is not None and holder.holder_user_id != member.user_id:
            precheck["duplicate"] += 1
            continue
        precheck["valid"] += 1
        if holder is None:
            reserved[check.number] = Claim(
                number=check.number,
                holder_user_id=member.user_id,
                holder_upn=member.user_principal_name,
                run_id=run_id,
                read_position=member.read_position,
            )
    return RunPlan(tuple(messages), tuple(reserved.values()), precheck)
