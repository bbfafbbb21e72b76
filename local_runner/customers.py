"""An operator with several customer tenants on one local stack (what ``make demo`` shows).

Each customer is a one-tenant scenario file; together they become one simulator serving every
tenant (``merged_scenario``). The app runs as an operator deploys it: no ``TENANT_ID``, every
tenant in the registry, and Graph tokens from the real azure-identity credentials
(``GRAPH_AUTH=federatedIdentity``) exchanged at the simulator's stand-ins for Entra ID and the
managed identity endpoint (``GRAPH_IDENTITY_URL``). Customers are registered as an operator
would: ``add_tenant``, ``import_numbers``, ``check_tenant``, ``change_state(activate)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from graph_simulator import (
    MANAGED_IDENTITY_CLIENT_ID,
    SIMULATOR_APP_ID,
    Scenario,
    SimulatorServer,
    TenantEntry,
    parse_scenario,
)
from local_runner.azurite import Azurite
from local_runner.session import LocalStack, teams_pace_for
from shared.core.snapshot_file import read_snapshot
from shared.core.tenant_registry import TenantAction
from shared.runtime import AppRuntime
from shared.service.tenant_runs import TenantCheck

OPERATOR = "operator@numbersync.example"


def merged_scenario(scenarios: Sequence[Scenario]) -> Scenario:
    """One scenario serving every tenant of ``scenarios`` (the first keeps its timeline);
    validated as a ``tenants: [...]`` scenario file would be."""
    entry_fields = [info.alias or name for name, info in TenantEntry.model_fields.items()]
    entries = []
    for scenario in scenarios:
        dumped = scenario.model_dump(mode="json", by_alias=True)
        entries.append({name: dumped[name] for name in entry_fields if name in dumped})
    timeline = scenarios[0].model_dump(mode="json", by_alias=True).get("timeline", [])
    return parse_scenario({"version": 1, "tenants": entries, "timeline": timeline},
                          "the customers' scenarios")


def operator_settings(
    *, simulator: SimulatorServer, storage_connection_string: str
) -> dict[str, str]:
    """The app settings of an operator's app against the local simulator and Azurite: no
    ``TENANT_ID`` (the registry names the tenants), tokens by federated identity."""
    return {
        "GRAPH_BASE_URL": simulator.base_url,
        "GRAPH_AUTH": "federatedIdentity",
        "GRAPH_CLIENT_ID": SIMULATOR_APP_ID,
        "MANAGED_IDENTITY_CLIENT_ID": MANAGED_IDENTITY_CLIENT_ID,
        "GRAPH_IDENTITY_URL": simulator.url,
        "GRAPH_OPERATION_POLL_INTERVAL_SECONDS": "0.05",
        "GRAPH_OPERATION_WAIT_SECONDS": "1",
        "AzureWebJobsStorage": storage_connection_string,
    }


@contextmanager
def operator_stack(scenario: Scenario, *, state_dir: Path | None = None) -> Iterator[LocalStack]:
    """Azurite and a simulator serving every tenant of ``scenario``; with ``state_dir`` both
    keep their state between runs."""
    azurite = Azurite(location=state_dir / "azurite" if state_dir else None)
    state_file = state_dir / "teams-state.json" if state_dir else None
    with azurite, SimulatorServer(scenario, state_file=state_file) as simulator:
        yield LocalStack(
            azurite=azurite, simulator=simulator,
            settings=operator_settings(simulator=simulator,
                                       storage_connection_string=azurite.connection_string),
        )


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer to onboard: its scenario, whether the operator activates it, and the CSV of
    the numbers the operator supplied to it (if any)."""

    scenario: Scenario
    activate: bool = True
    numbers_csv: Path | None = None

    @property
    def tenant_id(self) -> str:
        """The customer's tenant id."""
        return self.scenario.tenant.id


async def onboard(runtime: AppRuntime, customer: Customer) -> TenantCheck | None:
    """Register the customer unless the registry has it (a kept demo state), import its
    numbers, seed the claims its scenario says the app made before, and activate it; a
    customer left in onboarding is checked instead (its check is returned)."""
    scenario = customer.scenario
    if await runtime.record(customer.tenant_id) is None:
        await runtime.add_tenant({
            "tenantId": customer.tenant_id,
            "displayName": scenario.display_name or scenario.tenant.default_domain,
            "voiceGroupId": scenario.tenant.voice_group_id,
            "rules": scenario.tenant.rules,
            "teamsRequestsPerSecond": teams_pace_for(scenario),
        }, by=OPERATOR)
        if customer.numbers_csv is not None:
            await runtime.import_numbers(
                customer.tenant_id, customer.numbers_csv.read_text(encoding="utf-8"),
                str(customer.numbers_csv), by=OPERATOR,
            )
        if customer.activate:
            await runtime.change_state(customer.tenant_id, TenantAction.ACTIVATE, by=OPERATOR)
            await _seed_claims(runtime, scenario)
    if customer.activate:
        return None
    return await runtime.check_tenant(customer.tenant_id)


async def _seed_claims(runtime: AppRuntime, scenario: Scenario) -> None:
    tenant = await runtime.tenant(scenario.tenant.id)
    if await tenant.claims.list_claims():
        return
    for claim in read_snapshot(scenario.model_dump_json(by_alias=True)).state.claims.values():
        await tenant.claims.claim(claim)
