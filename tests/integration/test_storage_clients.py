"""The app's storage clients against Azurite: proxy settings from the environment are honoured
when there are any, and not looked up on every call when there are none (a thread hand-off and a
``~/.netrc`` read each, a third of a worker's CPU at onboarding rates); and the round trips the
queue function makes for each user, which load the storage account its paces are kept in."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import aiohttp.client
import pytest
from azure.core.exceptions import HttpResponseError

from local_runner.azurite import Azurite
from shared.adapters.storage.accounts import queue_client, table_service
from shared.adapters.storage.claims_and_statuses import TableClaimStore, ensure_tables
from shared.config import StorageSettings
from shared.core.directory import Claim


@pytest.fixture
def no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment without any proxy variable (as a Functions host has)."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[object]:
    """Record each call of ``aiohttp.client.<name>`` (still calling it)."""
    calls: list[object] = []
    original: Callable[..., Any] = getattr(aiohttp.client, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(aiohttp.client, name, counted)
    return calls


@pytest.mark.usefixtures("no_proxy_settings")
async def test_storage_calls_look_up_no_proxy_the_environment_does_not_have(
    azurite: Azurite, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy_lookups = _counting(monkeypatch, "get_env_proxy_for_url")
    netrc_reads = _counting(monkeypatch, "netrc_from_env")
    settings = StorageSettings(connection_string=azurite.connection_string)
    async with table_service(settings) as tables, queue_client(settings, "proxyprobe") as queue:
        table = await tables.create_table_if_not_exists("proxyprobe")
        for index in range(5):
            await table.upsert_entity({"PartitionKey": "p", "RowKey": str(index)})
        await queue.create_queue()
        for index in range(5):
            await queue.send_message(f"message {index}")
        rows = [row async for row in table.list_entities()]
        await queue.delete_queue()
    assert len(rows) == 5
    assert (proxy_lookups, netrc_reads) == ([], [])


class _RecordingProxy:
    """An HTTP proxy on 127.0.0.1 that records each request line and refuses it (400, which
    no client retries)."""

    def __init__(self) -> None:
        self.request_lines: list[str] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> _RecordingProxy:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.request_lines.append((await reader.readline()).decode().strip())
        while (await reader.readline()) not in (b"\r\n", b""):
            pass  # the headers
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.fixture
async def proxy(
    no_proxy_settings: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[_RecordingProxy]:
    async with _RecordingProxy() as running:
        monkeypatch.setenv("HTTP_PROXY", running.url)
        yield running


async def test_a_proxy_set_in_the_environment_carries_the_storage_calls(
    azurite: Azurite, proxy: _RecordingProxy
) -> None:
    settings = StorageSettings(connection_string=azurite.connection_string)
    async with table_service(settings) as tables, queue_client(settings, "proxyprobe") as queue:
        with pytest.raises(HttpResponseError) as table_refusal:
            await tables.create_table_if_not_exists("proxyprobe")
        with pytest.raises(HttpResponseError) as queue_refusal:
            await queue.create_queue()
    assert (table_refusal.value.status_code, queue_refusal.value.status_code) == (400, 400)
    account = azurite.connection_string.split("TableEndpoint=", 1)[1].split(";", 1)[0]
    assert any(line.startswith(f"POST {account}/Tables") for line in proxy.request_lines), (
        proxy.request_lines)
    assert any(line.startswith("PUT http://127.0.0.1:") and "/proxyprobe" in line
               for line in proxy.request_lines), proxy.request_lines


async def test_the_queue_functions_claim_of_a_number_the_timer_claimed_is_one_read(
    azurite: Azurite,
) -> None:
    # The timer claims a run's numbers in batches before their messages go out, so the queue
    # function nearly always finds its claim stored: one read, not a refused insert before it.
    methods: list[str] = []
    settings = StorageSettings(connection_string=azurite.connection_string)
    tenant = str(uuid.uuid4())
    claim = Claim("+31855363011", "ann", "ann@contoso.example", "run-1", 0)
    async with table_service(settings, lambda request: methods.append(
            request.http_request.method)) as tables:
        await ensure_tables(tables)
        claims = TableClaimStore(tables, tenant)
        await claims.claim_all([claim])
        methods.clear()
        stored = await claims.claim(replace(claim, run_id="run-2"))
        assert (stored.run_id, methods) == ("run-1", ["GET"])
        # A number nobody claimed yet: the read finds nothing, the insert stores this claim.
        methods.clear()
        new = await claims.claim(replace(claim, number="+31855363012"))
        assert (new.holder_user_id, methods) == ("ann", ["GET", "POST"])
