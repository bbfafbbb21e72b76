from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from shared.host_settings import QueueHostSettings, read_queue_settings


def host_json(tmp_path: Path, queues: dict[str, object] | None) -> Path:
    document: dict[str, object] = {"version": "2.0"}
    if queues is not None:
        document["extensions"] = {"queues": queues}
    path = tmp_path / "host.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_the_repository_host_json_is_read_as_the_host_reads_it() -> None:
    settings = read_queue_settings()

    assert settings.batch_size == 16
    assert settings.max_dequeue_count == 5
    assert settings.visibility_timeout == timedelta(seconds=30)


def test_every_queue_setting_is_read(tmp_path: Path) -> None:
    path = host_json(
        tmp_path,
        {
            "batchSize": 4,
            "newBatchThreshold": 2,
            "maxDequeueCount": 3,
            "visibilityTimeout": "00:00:30",
            "maxPollingInterval": "00:00:02",
        },
    )

    assert read_queue_settings(path) == QueueHostSettings(
        batch_size=4,
        new_batch_threshold=2,
        max_dequeue_count=3,
        visibility_timeout=timedelta(seconds=30),
        max_polling_interval=timedelta(seconds=2),
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:30", timedelta(seconds=30)),
        ("00:01:00", timedelta(minutes=1)),
        ("1:02:03", timedelta(hours=1, minutes=2, seconds=3)),
        ("1.02:03:04.5", timedelta(days=1, hours=2, minutes=3, seconds=4.5)),
        ("00:00:00.250", timedelta(milliseconds=250)),
        (" 00:00:10 ", timedelta(seconds=10)),
    ],
)
def test_dotnet_timespans_are_understood(tmp_path: Path, text: str, expected: timedelta) -> None:
    path = host_json(tmp_path, {"visibilityTimeout": text, "maxPollingInterval": text})

    settings = read_queue_settings(path)

    assert settings.visibility_timeout == expected
    assert settings.max_polling_interval == expected


@pytest.mark.parametrize("queues", [None, {}], ids=["no queue extension", "empty queue section"])
def test_the_hosts_defaults_apply_when_nothing_is_set(
    tmp_path: Path, queues: dict[str, object] | None
) -> None:
    settings = read_queue_settings(host_json(tmp_path, queues))

    assert settings == QueueHostSettings()
    assert settings.batch_size == 16
    assert settings.new_batch_threshold == 8
    assert settings.max_dequeue_count == 5
    assert settings.visibility_timeout == timedelta(0)
    assert settings.max_polling_interval == timedelta(minutes=1)


def test_settings_that_are_absent_keep_their_defaults_next_to_ones_that_are_set(
    tmp_path: Path,
) -> None:
    settings = read_queue_settings(host_json(tmp_path, {"maxDequeueCount": 2}))

    assert settings.max_dequeue_count == 2
    assert settings.batch_size == 16
    assert settings.visibility_timeout == timedelta(0)


@pytest.mark.parametrize("text", ["30s", "PT30S", "half a minute", "00:00:xx", "-"])
def test_a_bad_timespan_is_refused_naming_it(tmp_path: Path, text: str) -> None:
    path = host_json(tmp_path, {"visibilityTimeout": text})

    with pytest.raises(ValueError, match="TimeSpan") as caught:
        read_queue_settings(path)

    assert repr(text) in str(caught.value)
