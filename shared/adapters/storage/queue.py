"""The ``number-assignments`` queue on Azure Queue Storage."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import Sequence

from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.storage.queue.aio import QueueClient

from shared.core.messages import AssignmentMessage
from shared.core.tenant_sync_messages import TenantSyncMessage

ASSIGNMENT_QUEUE = "number-assignments"
POISON_QUEUE = f"{ASSIGNMENT_QUEUE}-poison"
TENANT_SYNC_QUEUE = "tenant-syncs"
TENANT_SYNC_POISON_QUEUE = f"{TENANT_SYNC_QUEUE}-poison"
#: Queue Storage takes messages of up to 64 KiB, counted after the Base64 encoding the Functions
#: trigger expects.
MAX_ENCODED_MESSAGE_BYTES = 64 * 1024


class _StorageQueue:
    """One queue of the account: its client and how many sends may run at once."""

    def __init__(self, client: QueueClient, *, concurrency: int) -> None:
        self._client = client
        self._concurrency = concurrency

    async def close(self) -> None:
        """Close the client's connections."""
        await self._client.close()

    async def ensure_exists(self) -> None:
        """Create the queue when it does not exist yet (idempotent)."""
        with contextlib.suppress(ResourceExistsError):
            await self._client.create_queue()

    async def approximate_message_count(self) -> int:
        """The queue's approximate number of messages (implements ``MessageCount``)."""
        properties = await self._client.get_queue_properties()
        return int(properties.approximate_message_count or 0)

    async def _send_all(self, bodies: Sequence[str]) -> None:
        """Enqueue every body, ``concurrency`` at a time (a 10,000-member run, hundreds of
        tenants per tick)."""
        limit = asyncio.Semaphore(self._concurrency)

        async def send_one(body: str) -> None:
            async with limit:
                await self._client.send_message(body)

        await asyncio.gather(*(send_one(body) for body in bodies))


class StorageAssignmentQueue(_StorageQueue):
    """Implements ``AssignmentQueue`` with azure-storage-queue."""

    async def send_raw(self, body: str) -> bool:
        """Enqueue a body as it is (used to set an unreadable message aside); False when the
        queue cannot take a body that large."""
        if len(base64.b64encode(body.encode("utf-8"))) > MAX_ENCODED_MESSAGE_BYTES:
            return False
        try:
            await self._client.send_message(body)
        except HttpResponseError as error:
            if error.status_code == 413:  # the service counts differently than we do
                return False
            raise
        return True

    async def send_later(self, message: AssignmentMessage, delay_seconds: int) -> None:
        """Enqueue a message hidden for a while (a queue allows up to seven days)."""
        await self._client.send_message(
            message.to_json(), visibility_timeout=max(0, min(delay_seconds, 7 * 24 * 3600))
        )

    async def send(self, messages: Sequence[AssignmentMessage]) -> None:
        """Enqueue every message; a few at a time so a 10,000-member run stays quick."""
        await self._send_all([message.to_json() for message in messages])


class StorageTenantSyncQueue(_StorageQueue):
    """Implements ``TenantSyncQueue`` on the ``tenant-syncs`` queue."""

    async def send_syncs(self, messages: Sequence[TenantSyncMessage]) -> None:
        """Enqueue every message, a few at a time."""
        await self._send_all([message.to_json() for message in messages])
