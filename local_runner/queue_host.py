"""Drain an Azure Storage queue into a queue-triggered function, with the Functions host's rules.

What the host does, and this does too (``extensions.queues`` in host.json):

* fetch up to ``batchSize`` messages, each hidden for a lease while it is processed, and run them
  concurrently;
* a message whose function returns is deleted;
* a message whose function raises becomes visible again after ``visibilityTimeout``; once its
  ``dequeueCount`` has reached ``maxDequeueCount`` it is moved to ``<queue>-poison`` instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import azure.functions as func
from azure.functions.queue import QueueMessage as FunctionsQueueMessage
from azure.storage.queue import QueueMessage as StorageQueueMessage
from azure.storage.queue.aio import QueueClient

from shared.host_settings import QueueHostSettings

log = logging.getLogger(__name__)

QueueFunction = Callable[[func.QueueMessage], Awaitable[None]]

# The host hides a fetched message for this long while the function runs (it renews as needed).
_PROCESSING_LEASE_SECONDS = 600


@dataclass
class DrainStats:
    """What a drain did."""

    invocations: int = 0
    succeeded: int = 0
    failed_attempts: int = 0
    poisoned: int = 0


class QueueDrainTimeoutError(RuntimeError):
    """Messages were still in the queue when the drain's deadline passed."""


class QueueHost:
    """Feeds one queue into one function until the queue is empty."""

    def __init__(
        self,
        queue: QueueClient,
        poison_queue: QueueClient,
        function: QueueFunction,
        settings: QueueHostSettings,
    ) -> None:
        self._queue = queue
        self._poison = poison_queue
        self._function = function
        self._settings = settings

    async def drain(self, *, timeout_seconds: float = 600.0) -> DrainStats:
        """Process messages until the queue holds none, visible or waiting for a retry.

        Raises:
            QueueDrainTimeoutError: the queue was not empty by the deadline.
        """
        stats = DrainStats()
        deadline = time.monotonic() + timeout_seconds
        poll = max(self._settings.max_polling_interval.total_seconds(), 0.05)
        while True:
            batch = [
                message
                async for message in self._queue.receive_messages(
                    max_messages=self._settings.batch_size,
                    messages_per_page=self._settings.batch_size,
                    visibility_timeout=_PROCESSING_LEASE_SECONDS,
                )
            ]
            if batch:
                await asyncio.gather(*(self._invoke(message, stats) for message in batch))
                continue
            properties = await self._queue.get_queue_properties()
            if not properties.approximate_message_count:
                return stats
            if time.monotonic() > deadline:
                raise QueueDrainTimeoutError(
                    f"{properties.approximate_message_count} message(s) still queued after "
                    f"{timeout_seconds:.0f}s"
                )
            # Messages are hidden until their retry time, as in the host's polling loop.
            await asyncio.sleep(min(poll, max(deadline - time.monotonic(), 0)))

    async def _invoke(self, message: StorageQueueMessage, stats: DrainStats) -> None:
        stats.invocations += 1
        body = message.content if isinstance(message.content, str) else str(message.content)
        trigger_message = FunctionsQueueMessage(  # type: ignore[no-untyped-call]
            id=message.id,
            body=body.encode("utf-8"),
            dequeue_count=message.dequeue_count,
            pop_receipt=message.pop_receipt,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on,
        )
        try:
            await self._function(trigger_message)
        except Exception as error:  # noqa: BLE001 - the host catches everything a function raises
            stats.failed_attempts += 1
            await self._after_failure(message, body, error, stats)
            return
        stats.succeeded += 1
        await self._queue.delete_message(message.id, message.pop_receipt)

    async def _after_failure(
        self, message: StorageQueueMessage, body: str, error: Exception, stats: DrainStats
    ) -> None:
        dequeue_count = message.dequeue_count or 1
        if dequeue_count >= self._settings.max_dequeue_count:
            log.error(
                "message %s failed %d time(s); moved to the poison queue",
                message.id, dequeue_count, exc_info=error,
            )
            await self._poison.send_message(body)
            await self._queue.delete_message(message.id, message.pop_receipt)
            stats.poisoned += 1
            return
        log.warning(
            "message %s failed (attempt %d); retried later: %s", message.id, dequeue_count, error
        )
        await self._queue.update_message(
            message.id,
            message.pop_receipt,
            visibility_timeout=int(self._settings.visibility_timeout.total_seconds()),
        )
