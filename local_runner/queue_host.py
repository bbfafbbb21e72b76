"""Drain an Azure Storage queue into a queue-triggered function, with the Functions host's rules.

What the host does, and this does too (``extensions.queues`` in host.json):

* fetch up to ``batchSize`` messages, each hidden for a lease while it is processed, and run them
  concurrently; fetch the next batch once the messages still running drop to
  ``newBatchThreshold``;
* a message whose function returns is deleted;
* a message whose function raises becomes visible again after ``visibilityTimeout``; once its
  ``dequeueCount`` has reached ``maxDequeueCount`` it is moved to ``<queue>-poison`` instead;
* while a function runs, its message's lease is renewed at half the lease; a host that dies
  (a killed process) renews nothing, so its messages come back when their lease runs out;
* storage that cannot be reached does not stop the host: it polls again, and a message it could
  not settle comes back when its lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import azure.functions as func
from azure.core.exceptions import AzureError
from azure.functions.queue import QueueMessage as FunctionsQueueMessage
from azure.storage.queue import QueueMessage as StorageQueueMessage
from azure.storage.queue.aio import QueueClient

from shared.host_settings import QueueHostSettings

log = logging.getLogger(__name__)

QueueFunction = Callable[[func.QueueMessage], Awaitable[None]]

#: The host hides a fetched message for this long while the function runs, and renews it.
PROCESSING_LEASE = timedelta(minutes=10)


@dataclass
class DrainStats:
    """What a drain did."""

    invocations: int = 0
    succeeded: int = 0
    failed_attempts: int = 0
    poisoned: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    """Failed attempts by what the function raised (the exception's class name)."""
    poisoned_errors: Counter[str] = field(default_factory=Counter)
    """Messages moved to the poison queue, by what their last attempt raised."""


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
        *,
        processing_lease: timedelta = PROCESSING_LEASE,
    ) -> None:
        """``processing_lease`` is how long a fetched message stays hidden, renewed while its
        function runs (tests shorten it, so the messages of a killed host come back soon)."""
        self._queue = queue
        self._poison = poison_queue
        self._function = function
        self._settings = settings
        self._lease_seconds = max(1, int(processing_lease.total_seconds()))

    async def drain(self, *, timeout_seconds: float = 600.0) -> DrainStats:
        """Process messages until the queue holds none, visible or waiting for a retry.

        Raises:
            QueueDrainTimeoutError: the queue was not empty by the deadline.
        """
        stats = DrainStats()
        deadline = time.monotonic() + timeout_seconds
        poll = max(self._settings.max_polling_interval.total_seconds(), 0.05)
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                if len(running) <= self._settings.new_batch_threshold:
                    # As the host does: a new batch once the running ones drop to the threshold,
                    # so one slow message does not hold up the rest of its batch.
                    batch = await self._fetch()
                    running |= {asyncio.create_task(self._invoke(message, stats))
                                for message in batch}
                    if batch:
                        continue
                if running:
                    done, running = await asyncio.wait(
                        running, return_when=asyncio.FIRST_COMPLETED,
                        timeout=poll if len(running) <= self._settings.new_batch_threshold
                        else None,
                    )
                    for task in done:
                        task.result()  # a fault of the host itself, not of a function: raise it
                    continue
                waiting = await self._waiting()
                if waiting == 0:
                    return stats
                if time.monotonic() > deadline:
                    raise QueueDrainTimeoutError(
                        f"{'some' if waiting is None else waiting} message(s) still queued after "
                        f"{timeout_seconds:.0f}s"
                    )
                # Messages are hidden until their retry time, as in the host's polling loop.
                await asyncio.sleep(min(poll, max(deadline - time.monotonic(), 0)))
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _fetch(self) -> list[StorageQueueMessage]:
        """The next batch, each message hidden for the processing lease; none when storage
        cannot be reached (the host's listener outlives an outage: it polls again)."""
        try:
            return [
                message
                async for message in self._queue.receive_messages(
                    max_messages=self._settings.batch_size,
                    messages_per_page=self._settings.batch_size,
                    visibility_timeout=self._lease_seconds,
                )
            ]
        except AzureError as error:
            log.warning("queue storage unreachable; polling again: %s", error)
            return []

    async def _waiting(self) -> int | None:
        """Messages in the queue, hidden ones included; None when storage cannot be reached."""
        try:
            properties = await self._queue.get_queue_properties()
        except AzureError as error:
            log.warning("queue storage unreachable; polling again: %s", error)
            return None
        return properties.approximate_message_count or 0

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
        lease = _Lease(message.pop_receipt or "")
        renewal = asyncio.create_task(self._renew(message.id, lease))
        try:
            await self._function(trigger_message)
        except Exception as error:  # noqa: BLE001 - the host catches everything a function raises
            stats.failed_attempts += 1
            stats.errors[type(error).__name__] += 1
            await self._stop_renewing(renewal)
            await self._after_failure(message, lease, body, error, stats)
            return
        await self._stop_renewing(renewal)
        stats.succeeded += 1
        await self._settle(message.id, "delete", self._queue.delete_message(
            message.id, lease.pop_receipt))

    async def _renew(self, message_id: str, lease: _Lease) -> None:
        """Keep the message hidden while its function runs, as the host does."""
        while True:
            await asyncio.sleep(self._lease_seconds / 2)
            try:
                renewed = await self._queue.update_message(
                    message_id, lease.pop_receipt, visibility_timeout=self._lease_seconds
                )
            except AzureError as error:
                log.warning("could not renew the lease of message %s: %s", message_id, error)
                continue
            lease.pop_receipt = renewed.pop_receipt or lease.pop_receipt

    @staticmethod
    async def _stop_renewing(renewal: asyncio.Task[None]) -> None:
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewal

    @staticmethod
    async def _settle(message_id: str, what: str, call: Awaitable[object]) -> bool:
        """Settle a message; when storage cannot be reached it comes back after its lease."""
        try:
            await call
        except AzureError as error:
            log.warning("could not %s message %s (it comes back after its lease): %s",
                        what, message_id, error)
            return False
        return True

    async def _after_failure(
        self,
        message: StorageQueueMessage,
        lease: _Lease,
        body: str,
        error: Exception,
        stats: DrainStats,
    ) -> None:
        dequeue_count = message.dequeue_count or 1
        if dequeue_count >= self._settings.max_dequeue_count:
            log.error(
                "message %s failed %d time(s); moved to the poison queue",
                message.id, dequeue_count, exc_info=error,
            )
            if await self._settle(message.id, "poison", self._poison.send_message(body)):
                await self._settle(message.id, "delete", self._queue.delete_message(
                    message.id, lease.pop_receipt))
                stats.poisoned += 1
                stats.poisoned_errors[type(error).__name__] += 1
            return
        log.warning(
            "message %s failed (attempt %d); retried later: %s", message.id, dequeue_count, error
        )
        await self._settle(message.id, "retry", self._queue.update_message(
            message.id,
            lease.pop_receipt,
            visibility_timeout=int(self._settings.visibility_timeout.total_seconds()),
        ))


@dataclass
class _Lease:
    """The pop receipt of a message being processed; each renewal hands out a new one."""

    pop_receipt: str
