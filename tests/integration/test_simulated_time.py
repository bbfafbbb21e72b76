"""A message the app delays waits for the simulated clock, not for Queue Storage's wall-clock
visibility timeout: it reaches the queue, visible at once, when its simulated time comes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from local_runner.azurite import Azurite
from local_runner.simulated_time import ClockedDelayQueue, SimulatedClock
from shared.adapters.storage.accounts import queue_client
from shared.config import StorageSettings
from shared.core.messages import AssignmentMessage

START = datetime(2031, 3, 4, 9, 0, tzinfo=UTC)


def _message(user: str) -> AssignmentMessage:
    return AssignmentMessage(
        tenant_id="0f5e2c1a-0000-4000-8000-00000000a7e1", run_id="run-1",
        user_id=f"00000000-0000-4000-8000-{user}", user_principal_name=f"u{user}@contoso.example",
        telephone_number="+31855000001", read_position=0, action="assign", reason="new",
        number="+31855000001", idempotency_key=f"key-{user}",
    )


async def test_a_delayed_message_is_let_out_when_the_simulated_clock_reaches_it(
        azurite: Azurite) -> None:
    clock = SimulatedClock(START)
    name = f"delays-{uuid.uuid4().hex[:8]}"
    storage = StorageSettings(connection_string=azurite.connection_string)
    queue = ClockedDelayQueue(queue_client(storage, name), concurrency=4, clock=clock.now)
    async with queue_client(storage, name) as reader:
        await queue.ensure_exists()
        await queue.send_later(_message("000000000001"), 15 * 60)
        await queue.send_later(_message("000000000002"), 0)

        assert queue.held == 1
        due = queue.next_due()
        assert due is not None
        assert START + timedelta(minutes=15) <= due < START + timedelta(minutes=16)
        assert await queue.release_due() == 0
        clock.move_to(START + timedelta(minutes=16))
        assert await queue.release_due() == 1

        visible = [message async for message in reader.receive_messages(max_messages=32)]
        assert len(visible) == 2
        assert queue.held == 0
        assert queue.next_due() is None
    await queue.close()
