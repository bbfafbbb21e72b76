"""An app-built Graph client on a simulator, for adapter tests that need no storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from msgraph.graph_service_client import GraphServiceClient

from graph_simulator import Scenario, SimulatorServer
from shared.adapters.graph.client import (
    build_graph_client,
    close_graph_transport,
    graph_http_client,
)
from shared.adapters.graph.credentials import GraphCredentials
from shared.config import GraphAuth, GraphSettings


@asynccontextmanager
async def fresh_graph_client(
    sim: SimulatorServer, scenario: Scenario, token: str
) -> AsyncIterator[GraphServiceClient]:
    """The simulator reset to ``scenario`` (no faults, no request log) and a client on it."""
    sim.load_scenario(scenario)
    sim.clear_requests()
    # No in-SDK retries: an injected 503 must reach the adapter, not be slept through.
    settings = GraphSettings(base_url=sim.base_url, auth=GraphAuth.STATIC_TOKEN,
                             static_token=token, max_retries=0)
    transport = graph_http_client(settings)
    try:
        yield build_graph_client(
            settings, GraphCredentials(settings).auth_provider("tenant"), transport
        )
    finally:
        await close_graph_transport(transport)
