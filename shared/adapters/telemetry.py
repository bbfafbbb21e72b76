"""The app's telemetry, sent the way Azure Functions Python sends it: through OpenTelemetry.

With ``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`` the Functions worker configures the
Azure Monitor exporter itself (``azure-monitor-opentelemetry``) and captures the logger named in
``PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME``; the app must not configure it a second time, so
nothing here calls ``configure_azure_monitor``. This adapter only:

* logs each event on ``EVENTS_LOGGER`` (a child of ``APP_LOGGER_NAME``, so its records reach the
  worker's handler there) with the attributes that make the exporter write a custom event
  (``microsoft.custom_event.name`` and the event's dimensions);
* adds to the per-tenant counters through the OpenTelemetry metrics API (``customMetrics``).

Without the worker's configuration (tests, the local runner) the records are ordinary log lines
and the counters the API's no-ops, unless a test installs the SDK's in-memory exporters.
"""

from __future__ import annotations

import logging
from typing import Final

from opentelemetry import metrics

from shared.core.outcomes import Outcome
from shared.core.telemetry_events import (
    APP_LOGGER_NAME,
    COUNTERS,
    CUSTOM_EVENT_NAME_KEY,
    TelemetryEvent,
    counter_name,
    log_attributes,
)

#: The events' logger. Its level is set to INFO here: the records propagate to the worker's
#: handler on ``APP_LOGGER_NAME`` whatever level that logger has (propagation checks only the
#: handlers' levels), so an event is never lost to a WARNING default.
EVENTS_LOGGER: Final = f"{APP_LOGGER_NAME}.events"
METER_NAME: Final = APP_LOGGER_NAME


class OpenTelemetryEvents:
    """Implements ``EventSink``: events as custom-event log records, counts as OpenTelemetry
    counters named in ``COUNTERS``, each with the dimension ``tenantId``."""

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        self._log = logging.getLogger(EVENTS_LOGGER)
        self._log.setLevel(logging.INFO)
        meter = metrics.get_meter(METER_NAME, meter_provider=meter_provider)
        self._counters = {
            outcome: meter.create_counter(
                name, unit="{user}", description=f"users whose outcome was {outcome.value}")
            for outcome, name in COUNTERS.items()
        }

    def emit(self, event: TelemetryEvent) -> None:
        """Log the event as a custom event (its message names it and its dimensions, for the
        log lines of a local run)."""
        attributes = log_attributes(event)
        text = " ".join(f"{key}={value}" for key, value in attributes.items()
                        if key != CUSTOM_EVENT_NAME_KEY)
        self._log.info("%s %s", attributes[CUSTOM_EVENT_NAME_KEY], text, extra=attributes)

    def count(self, tenant_id: str, outcome: Outcome, amount: int = 1) -> None:
        """Add to the tenant's counter of ``outcome``."""
        counter_name(outcome)  # refuses an outcome without a counter, naming it
        if amount < 0:
            raise ValueError(f"amount={amount!r}: a count only grows")
        if amount:
            self._counters[outcome].add(amount, {"tenantId": tenant_id})
