"""The OpenTelemetry adapter and its settings: an event reaches the worker's exporter as a custom
event with its dimensions; the app leaves configuring the exporter to the worker."""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import pytest
from azure.monitor.opentelemetry.exporter._generated.exporter.models import TelemetryEventData
from azure.monitor.opentelemetry.exporter.export.logs._exporter import (
    _convert_log_to_envelope,
)

from shared.config import AppSettings, ConfigError
from shared.core.telemetry_events import APP_LOGGER_NAME, TenantHealthChanged
from tests.telemetry_support import CapturedTelemetry

REPO = Path(__file__).resolve().parents[2]
ENVIRON = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def test_an_event_becomes_a_custom_event_with_its_dimensions_as_custom_dimensions(
    telemetry: CapturedTelemetry,
) -> None:
    """What the Azure Monitor exporter makes of the record (its own conversion, run here):
    an EventData named after the event, every dimension a property (``customDimensions``)."""
    telemetry.sink.emit(TenantHealthChanged("t1", "auth_failed", "healthy", "Consent again."))
    (record,) = telemetry.log_records()
    envelope = _convert_log_to_envelope(record)
    assert envelope.data is not None
    assert envelope.data.base_type == "EventData"
    data = envelope.data.base_data
    assert isinstance(data, TelemetryEventData)
    assert data.name == "TenantHealthChanged"
    properties = data.properties or {}
    assert {key: properties[key] for key in (
        "tenantId", "state", "previousState", "healthMessage")} == {
        "tenantId": "t1", "state": "auth_failed", "previousState": "healthy",
        "healthMessage": "Consent again."}
    assert "microsoft.custom_event.name" not in properties


def test_events_reach_the_app_logger_even_when_it_only_passes_warnings(
    telemetry: CapturedTelemetry,
) -> None:
    app_logger = logging.getLogger(APP_LOGGER_NAME)
    before = app_logger.level
    app_logger.setLevel(logging.WARNING)
    try:
        telemetry.sink.emit(TenantHealthChanged("t1", "healthy", "auth_failed", "ok"))
    finally:
        app_logger.setLevel(before)
    assert [name for name, _ in telemetry.events()] == ["TenantHealthChanged"]


def test_host_json_sends_telemetry_through_opentelemetry() -> None:
    host = json.loads((REPO / "host.json").read_text(encoding="utf-8"))
    assert host["telemetryMode"] == "OpenTelemetry"
    assert "applicationInsights" not in host["logging"]  # its sampling no longer applies


def test_the_example_settings_turn_the_workers_telemetry_on_for_the_apps_logger() -> None:
    values = json.loads((REPO / "local.settings.json.example").read_text())["Values"]
    assert values["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true"
    assert values["PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME"] == APP_LOGGER_NAME


def test_the_distro_is_pinned_for_the_worker() -> None:
    pins = (REPO / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("azure-monitor-opentelemetry==") for line in pins)


def test_nothing_shipped_configures_the_exporter_a_second_time() -> None:
    """The worker configures it (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY); a second
    ``configure_azure_monitor`` would send everything twice."""
    called = []
    for path in [REPO / "function_app.py", *sorted((REPO / "shared").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = node.attr if isinstance(node, ast.Attribute) else (
                node.id if isinstance(node, ast.Name) else None)
            if name == "configure_azure_monitor":
                called.append(str(path.relative_to(REPO)))
    assert called == []


def test_the_logger_setting_may_be_left_out_or_name_the_apps_logger() -> None:
    assert AppSettings.from_environ(ENVIRON).telemetry_logger_name == APP_LOGGER_NAME
    named = {**ENVIRON, "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME": APP_LOGGER_NAME}
    assert AppSettings.from_environ(named).telemetry_logger_name == APP_LOGGER_NAME


def test_another_logger_name_is_refused_naming_the_setting_and_the_value() -> None:
    """With another name the worker would capture a logger the events never reach."""
    wrong = {**ENVIRON, "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME": "teams_number_sync"}
    with pytest.raises(ConfigError, match=(
            r"PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME='teams_number_sync': must be 'shared'")):
        AppSettings.from_environ(wrong)
