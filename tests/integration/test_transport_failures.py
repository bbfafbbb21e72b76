"""A connection that fails before Graph answers is a temporary failure, like a 503: retried
inside the request by the SDK's retry handler, then classified — over real sockets.

The server here is a few lines of asyncio: it reads each request and then either resets the
connection (no answer at all, as a dropped connection looks to the client) or answers with a
user object, as Graph does for ``GET /users/{id}``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from local_runner.azurite import free_port
from shared.adapters.graph.client import (
    build_graph_client,
    close_graph_transport,
    graph_http_client,
)
from shared.adapters.graph.credentials import GraphCredentials
from shared.adapters.graph.directory import GraphUserReader
from shared.config import GraphAuth, GraphSettings
from shared.core.errors import TemporaryError

pytestmark = pytest.mark.integration

USER = {"id": "0f3a5c2e-0000-4000-8000-000000000001", "userPrincipalName": "ann@contoso.example",
        "businessPhones": ["+31855363011"], "accountEnabled": True}


class ResettingGraph:
    """Resets the first ``resets`` connections after reading their request; answers the rest."""

    def __init__(self, resets: int) -> None:
        self.resets = resets
        self.requests = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.requests += 1
        if self.requests <= self.resets:
            # SO_LINGER 0: close sends RST, what a dropped connection looks like to a client.
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
            return
        body = json.dumps(USER).encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                     b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()


@asynccontextmanager
async def graph_client_on(port: int, max_retries: int = 3) -> AsyncIterator[GraphUserReader]:
    settings = GraphSettings(base_url=f"http://127.0.0.1:{port}/v1.0",
                             auth=GraphAuth.STATIC_TOKEN, static_token="t",
                             max_retries=max_retries)
    transport = graph_http_client(settings)
    try:
        yield GraphUserReader(build_graph_client(
            settings, GraphCredentials(settings).auth_provider("tenant"), transport
        ))
    finally:
        await close_graph_transport(transport)


@asynccontextmanager
async def resetting_graph(resets: int) -> AsyncIterator[tuple[ResettingGraph, int]]:
    graph = ResettingGraph(resets)
    server = await asyncio.start_server(graph.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield graph, port


async def test_a_reset_connection_is_retried_inside_the_request() -> None:
    async with resetting_graph(resets=2) as (graph, port), graph_client_on(port) as users:
        member = await users.read_user(USER["id"])  # type: ignore[arg-type]

    assert member is not None
    assert member.user_principal_name == "ann@contoso.example"
    assert graph.requests == 3


async def test_connections_that_keep_failing_are_a_temporary_error_naming_the_failure() -> None:
    async with resetting_graph(resets=100) as (graph, port), graph_client_on(port) as users:
        with pytest.raises(TemporaryError) as failed:
            await users.read_user(USER["id"])  # type: ignore[arg-type]

    assert graph.requests == 4  # the first try and the SDK's three retries
    assert "No answer from Graph" in failed.value.message
    assert "/users/" in failed.value.message


async def test_nothing_listening_is_a_temporary_error_too() -> None:
    async with graph_client_on(free_port(), max_retries=0) as users:
        with pytest.raises(TemporaryError) as failed:
            await users.read_user(USER["id"])  # type: ignore[arg-type]

    assert "ConnectError" in failed.value.message
