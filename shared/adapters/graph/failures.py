"""Translate msgraph-sdk and transport exceptions into the app's temporary/permanent errors."""

from __future__ import annotations

from typing import Any, NoReturn

from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from shared.core.graph_errors import GraphFailure, classify


def failure_from_odata(error: ODataError) -> GraphFailure:
    """The parts of an ``ODataError`` that classification needs."""
    main = getattr(error, "error", None)
    headers = getattr(error, "response_headers", None) or {}
    return GraphFailure(
        status=getattr(error, "response_status_code", None),
        code=str(getattr(main, "code", "") or ""),
        message=str(getattr(main, "message", "") or error.message or ""),
        retry_after_seconds=retry_after(headers),
    )


def raise_for_status(response: Any, *, needs: str | None = None) -> None:
    """For raw (``NativeResponseHandler``) responses: raise the classified error of a non-2xx;
    a refusal (401/403) names ``needs``, the permission the call requires, when given."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = body.get("error", {}) if isinstance(body, dict) else {}
    if not isinstance(error, dict):
        error = {}
    raise classify(GraphFailure(
        status=response.status_code,
        code=str(error.get("code", "")),
        message=str(error.get("message", "") or response.text),
        retry_after_seconds=retry_after(dict(response.headers)),
    ), needs=needs)


def raise_for_status_needing(response: Any, permission: str) -> None:
    """``raise_for_status`` for a call that needs ``permission``: a refusal names it (the
    shared classifier's help text names the number-management permission)."""
    raise_for_status(response, needs=permission)


def raise_classified(error: ODataError) -> NoReturn:
    """Raise the TemporaryError or PermanentError that ``error`` means."""
    raise classify(failure_from_odata(error)) from error


def retry_after(headers: object) -> float | None:
    """``Retry-After`` in seconds, when the answer carried one as a number."""
    value = None
    if isinstance(headers, dict):
        for key, item in headers.items():
            if str(key).lower() == "retry-after":
                value = item
    if isinstance(value, (set, list, tuple)):
        value = next(iter(value), None)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
