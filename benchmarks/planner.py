"""Time the planner on a large tenant: ``python -m benchmarks.planner [--members N]``.

Target (issue 3): under one second for 100,000 members on the project's machine (2 cores). The
tenant mixes what a real one has: mostly valid unique numbers, some duplicates, bad formats,
missing numbers, disabled accounts, main numbers, numbers the app already holds (some kept, some
changed), former members, and Teams numbers put there by hand.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time

from shared.directory import Claim, Member
from shared.planner import CurrentState, plan
from shared.tenant_rules import NumberRange, TenantRules

BASE = 31_855_000_000  # +31 85 5xx xxxx: valid Dutch numbers


def build_tenant(members: int, seed: int = 7) -> tuple[list[Member], TenantRules, CurrentState]:
    """A reproducible large tenant."""
    rng = random.Random(seed)
    rules = TenantRules(
        default_region="NL",
        main_numbers={"contoso.example": f"+{BASE}"},
        number_ranges=(NumberRange(first=f"+{BASE}", last=f"+{BASE + 999_999}"),),
    )
    people: list[Member] = []
    claims: dict[str, Claim] = {}
    teams: dict[str, str] = {}
    for position in range(members):
        user = f"user-{position:06d}"
        number = f"+{BASE + 1 + position}"
        roll = rng.random()
        phones: tuple[str, ...] = (number,)
        if roll < 0.02:
            phones = ()
        elif roll < 0.04:
            phones = (f"0{number[3:5]} {number[5:8]} {number[8:]}",)  # national, formatted
        elif roll < 0.05:
            phones = (f"+{BASE + 1 + rng.randrange(max(position, 1))}",)  # a duplicate
        elif roll < 0.051:
            phones = (f"+{BASE}",)  # the main number
        people.append(Member(user, f"{user}@contoso.example", phones, rng.random() > 0.01,
                             position))
        held = rng.random()
        if held < 0.7:  # the app gave most of them their number in an earlier run
            claims[number] = Claim(number, user, f"{user}@contoso.example", "r0", position, True)
            teams[number] = user
        elif held < 0.71:  # an administrator put it on someone else by hand
            teams[number] = f"resource-{position}"
    for former in range(members // 200):  # left the group since
        number = f"+{BASE + 500_000 + former}"
        user = f"former-{former}"
        claims[number] = Claim(number, user, f"{user}@contoso.example", "r0", 0, True)
        teams[number] = user
    rng.shuffle(people)  # the planner must not rely on input order
    return people, rules, CurrentState(claims=claims, teams=teams)


def main() -> None:
    """Print the planner's time for the tenant size asked for."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    members, rules, state = build_tenant(args.members)
    plan(members[:1000], rules, state)  # warm phonenumbers' metadata
    times = []
    for _ in range(args.repeat):
        gc.collect()
        start = time.perf_counter()
        result = plan(members, rules, state)
        times.append(time.perf_counter() - start)
    summary = result.summary()
    print(f"planner: {args.members:,} members, {len(state.claims):,} claims, "
          f"{len(state.teams):,} Teams numbers")
    print(f"  best {min(times):.3f} s, median {statistics.median(times):.3f} s "
          f"over {args.repeat} runs (target < 1 s for 100,000)")
    print(f"  decisions: {summary['byOutcome']}")


if __name__ == "__main__":
    main()
