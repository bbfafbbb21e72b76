"""The runtime is built once per worker, even when a batch of messages arrives at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.runtime import AppRuntime, RuntimeHolder
from tests.unit.test_config import CONNECTION_STRING, TENANT_ID, VOICE_GROUP_ID


async def test_concurrent_first_uses_build_one_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []

    async def create(settings: Any) -> Any:
        await asyncio.sleep(0)  # the real one awaits storage: others arrive meanwhile
        built.append(object())
        return built[-1]

    monkeypatch.setattr(AppRuntime, "create", create)
    holder = RuntimeHolder({"TENANT_ID": TENANT_ID, "VOICE_GROUP_ID": VOICE_GROUP_ID,
                            "AzureWebJobsStorage": CONNECTION_STRING})

    runtimes = await asyncio.gather(*(holder.get() for _ in range(16)))

    assert len(built) == 1
    assert all(runtime is built[0] for runtime in runtimes)
