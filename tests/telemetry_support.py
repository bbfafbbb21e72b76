"""The OpenTelemetry SDK's in-memory exporters behind the app's real event sink.

``telemetry`` (a fixture) installs, for one test, a ``LoggerProvider`` whose records go to an
``InMemoryLogRecordExporter`` through a ``LoggingHandler`` on the app's logger
(``APP_LOGGER_NAME``, where the Functions worker attaches its own), and a ``MeterProvider`` read
by an ``InMemoryMetricReader``; its ``sink`` is the real ``OpenTelemetryEvents`` on them. What
a test reads back is what the worker's exporter would have been handed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from shared.adapters.telemetry import OpenTelemetryEvents
from shared.core.outcomes import Outcome
from shared.core.telemetry_events import (
    APP_LOGGER_NAME,
    COUNTERS,
    CUSTOM_EVENT_NAME_KEY,
    DIMENSIONS,
    DimensionValue,
)


@dataclass
class CapturedTelemetry:
    """The in-memory exporters, and the app's sink writing to them."""

    logs: InMemoryLogRecordExporter
    metrics: InMemoryMetricReader
    sink: OpenTelemetryEvents

    def log_records(self) -> list[ReadableLogRecord]:
        """Every OpenTelemetry log record the app's logger produced, in order."""
        return list(self.logs.get_finished_logs())

    def events(self) -> list[tuple[str, dict[str, DimensionValue]]]:
        """The custom events, in order: each name and its dimensions (the record's other
        attributes, such as the code location, left out)."""
        found = []
        for record in self.log_records():
            attributes = dict(record.log_record.attributes or {})
            name = attributes.get(CUSTOM_EVENT_NAME_KEY)
            if not isinstance(name, str):
                continue
            wanted = DIMENSIONS.get(name, frozenset())
            found.append((name, {key: value for key, value in attributes.items()
                                 if key in wanted and isinstance(value, str | int | float)}))
        return found

    def named(self, name: str) -> list[dict[str, DimensionValue]]:
        """The dimensions of every event called ``name``, in order."""
        return [dimensions for each, dimensions in self.events() if each == name]

    def counted(self, outcome: Outcome, tenant_id: str) -> int:
        """The tenant's counter of ``outcome`` so far (0 before its first count)."""
        data = self.metrics.get_metrics_data()
        total = 0
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name != COUNTERS[outcome]:
                        continue
                    for point in metric.data.data_points:
                        if (isinstance(point, NumberDataPoint)
                                and dict(point.attributes or {}) == {"tenantId": tenant_id}):
                            total += int(point.value)
        return total


@pytest.fixture
def telemetry() -> Iterator[CapturedTelemetry]:
    """The app's sink on in-memory exporters, for one test."""
    logs = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]  # untyped in the SDK
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    handler = LoggingHandler(logger_provider=provider)
    app_logger = logging.getLogger(APP_LOGGER_NAME)
    app_logger.addHandler(handler)
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    try:
        yield CapturedTelemetry(logs, reader, OpenTelemetryEvents(meter_provider=meters))
    finally:
        app_logger.removeHandler(handler)
        provider.shutdown()
        meters.shutdown()
