"""The many-tenants benchmark (``benchmarks.tenants``) at tiny sizes: both parts run and produce
their figures. What the figures say about speed is the benchmark's to print, never a test's; what
is checked here is what every run must show whatever the machine: a tick with nothing changed is
a delta round of two Graph requests per tenant, every tenant's storage requests are counted as
its own, and an onboarding ends with every user assigned.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout

from benchmarks.tenants import (
    APP_WIDE,
    onboarding,
    print_onboarding,
    print_steady,
    steady_state,
)


def test_the_steady_state_tick_is_measured_per_tenant() -> None:
    figures = steady_state(3, 5, progress=False)

    assert figures.run_reads == {"delta": 3}
    assert figures.runs_missing == 0
    assert {key: sum(routes.values()) for key, routes in figures.graph.items()} == dict.fromkeys(
        figures.graph, 2)
    assert all(set(routes) == {"usersDelta", "groupsDelta"} for routes in figures.graph.values())
    assert len(figures.table_per_tenant) == 3
    assert all(count > 0 for count in figures.table_per_tenant.values())
    assert any(owner == APP_WIDE for owner, _table in figures.tables)  # the registry's list
    assert figures.queues["app", "tenant-syncs", "send"] == 3
    assert figures.queues["host", "tenant-syncs", "delete"] == 3
    printed = io.StringIO()
    with redirect_stdout(printed):
        print_steady(figures)
    assert "Graph requests per tenant: min 2, median 2, max 2" in printed.getvalue()


def test_the_onboarding_is_measured_across_tenants() -> None:
    figures = onboarding(2, 3, instances=1, tenant_limit=10.0, app_limit=30.0, timeout=120.0)

    assert figures.outcomes == {"assigned": 6}
    assert figures.failures == 0
    assert sorted(figures.teams) == sorted(figures.windows)
    assert all(count > 0 for count in figures.teams.values())
    assert figures.window > 0
    assert figures.rate > 0
    assert sum(stats.poisoned for stats in figures.drains) == 0
    printed = io.StringIO()
    with redirect_stdout(printed):
        print_onboarding(figures)
    assert "of the app-wide 30/s" in printed.getvalue()
