"""The queue settings of ``host.json``, read the way the Functions host reads them.

The app needs ``maxDequeueCount`` to know a message's last attempt; the local runner needs all of
them to drain the queue as the host would.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)")
HOST_JSON = Path(__file__).resolve().parent.parent / "host.json"


@dataclass(frozen=True, slots=True)
class QueueHostSettings:
    """``extensions.queues`` of host.json, with the host's documented defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: timedelta = timedelta(0)
    max_polling_interval: timedelta = timedelta(minutes=1)


def read_queue_settings(path: Path = HOST_JSON) -> QueueHostSettings:
    """Read ``extensions.queues`` from host.json."""
    queues = json.loads(path.read_text(encoding="utf-8")).get("extensions", {}).get("queues", {})
    defaults = QueueHostSettings()
    return QueueHostSettings(
        batch_size=int(queues.get("batchSize", defaults.batch_size)),
        new_batch_threshold=int(queues.get("newBatchThreshold", defaults.new_batch_threshold)),
        max_dequeue_count=int(queues.get("maxDequeueCount", defaults.max_dequeue_count)),
        visibility_timeout=_timespan(queues.get("visibilityTimeout"), defaults.visibility_timeout),
        max_polling_interval=_timespan(
            queues.get("maxPollingInterval"), defaults.max_polling_interval
        ),
    )


def _timespan(value: str | None, default: timedelta) -> timedelta:
    """A .NET TimeSpan string ``[d.]hh:mm:ss[.fff]`` as a timedelta."""
    if not value:
        return default
    match = _TIMESPAN.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"host.json: {value!r} is not a TimeSpan like '00:00:30'")
    days, hours, minutes, seconds = match.groups()
    return timedelta(
        days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=float(seconds)
    )
