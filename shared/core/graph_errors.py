"""Classify Microsoft Graph failures as temporary or permanent, with a reason code.

Pure. Graph guidance is to branch on ``error.code``, not on text; the Teams number backend,
however, reports most refusals as a generic ``BadRequest`` and sometimes nests its own JSON error
inside ``message``. Text is therefore read here — for classification only — and nowhere else.

The texts matched come from Teams PowerShell; Graph documents none. A refusal whose text is not
one of them is ``assignment_failed`` (permanent for this try, looked at again after a backoff),
unless it is plainly temporary: a 5xx status (on the answer, in a nested error, or named in the
text) or words such as "try again".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from shared.core.errors import PermanentError, TemporaryError
from shared.core.outcomes import Reason

_RETRYABLE_STATUS = frozenset({408, 429})  # and every 5xx

# Fragments of the Teams backend's refusal texts (lower case) → the reason they mean.
_TEXT_REASONS: tuple[tuple[str, Reason], ...] = (
    ("already been assigned", Reason.ASSIGNED_ELSEWHERE),
    ("already assigned", Reason.ASSIGNED_ELSEWHERE),
    ("not found from tenant", Reason.NOT_IN_INVENTORY),
    ("not found in tenant", Reason.NOT_IN_INVENTORY),
    ("lacks appropriate licenses", Reason.NOT_LICENSED),
    ("is not licensed", Reason.NOT_LICENSED),
    ("is not found", Reason.USER_NOT_FOUND),
)
_TEMPORARY_TEXT = (
    "service is unavailable", "temporarily unavailable", "try again", "retry later",
    "please retry", "timed out", "timeout",
)
#: A 5xx status named in a text ("HTTP 503", "status code 500", "StatusCode: 502").
_TEXT_5XX = re.compile(r"\b(?:http|status(?:\s*code)?)\s*[:=]?\s*5\d\d\b", re.IGNORECASE)
#: Error codes that mean the service failed, not the request (as nested Teams errors carry).
_SERVER_CODES = frozenset({
    "internalservererror", "serviceunavailable", "servicenotavailable", "badgateway",
    "gatewaytimeout", "generalexception",
})

_HELP = {
    Reason.ASSIGNED_ELSEWHERE: (
        "Teams has this number on another user or resource; remove it there or correct the "
        "user's telephoneNumber."
    ),
    Reason.NOT_IN_INVENTORY: (
        "The number is not in the tenant's Teams number inventory; ask the operator to add it."
    ),
    Reason.NOT_LICENSED: "Give the user a Teams Phone licence; numbers need one.",
    Reason.USER_NOT_FOUND: "Teams does not know this user yet; check the account and licence.",
    Reason.GRAPH_FORBIDDEN: (
        "The app was refused by Microsoft Graph; grant it TeamsTelephoneNumber.ReadWrite.All "
        "with admin consent."
    ),
    Reason.ASSIGNMENT_FAILED: "Teams refused the assignment; see the detail and contact support.",
}


@dataclass(frozen=True, slots=True)
class GraphFailure:
    """What Graph answered, reduced to the parts that classification needs."""

    status: int | None
    code: str
    message: str
    retry_after_seconds: float | None = None


def unwrap_message(message: str) -> tuple[str, str]:
    """Return (code, message) from a Teams error text that may hold a JSON error of its own."""
    body = _nested_error(message)
    if body is None:
        return "", message
    return str(body.get("code", "")), str(body.get("message", message))


def _nested_error(message: str) -> dict[str, object] | None:
    text = message.strip()
    if not text.startswith("{"):
        return None
    try:
        inner = json.loads(text)
    except ValueError:
        return None
    if not isinstance(inner, dict):
        return None
    body = inner.get("error", inner)
    return body if isinstance(body, dict) else None


def _server_failure(failure: GraphFailure, inner_code: str, text: str) -> bool:
    """Whether the failure says the service failed (a 5xx), wherever it says so."""
    if failure.status is not None and 500 <= failure.status <= 599:
        return True
    nested = _nested_error(failure.message) or {}
    for key in ("status", "statusCode", "httpStatusCode"):
        if re.fullmatch(r"5\d\d", str(nested.get(key, ""))):
            return True
    return inner_code.lower() in _SERVER_CODES or bool(_TEXT_5XX.search(text))


def classify(
    failure: GraphFailure, *, needs: str | None = None
) -> TemporaryError | PermanentError:
    """Turn a Graph failure into the error the shell acts on; a refusal names ``needs``, the
    permission the refused call requires (the number-management one unless told)."""
    inner_code, text = unwrap_message(failure.message)
    lowered = text.lower()
    detail = f"Graph answered {failure.status or 'an error'} {failure.code or inner_code}: {text}"
    # Most specific first: a nested Forbidden is a consent problem whatever status carried it.
    if failure.status in {401, 403} or inner_code.lower() == "forbidden":
        if needs is not None:
            return PermanentError(Reason.GRAPH_FORBIDDEN, f"The app was refused by Microsoft "
                                  f"Graph; grant it {needs} with admin consent. ({detail})")
        return _permanent(Reason.GRAPH_FORBIDDEN, detail)
    if failure.status in _RETRYABLE_STATUS or _server_failure(failure, inner_code, text):
        return TemporaryError(detail, retry_after_seconds=failure.retry_after_seconds)
    for fragment, reason in _TEXT_REASONS:
        if fragment in lowered:
            return _permanent(reason, detail)
    if any(part in lowered for part in _TEMPORARY_TEXT):
        return TemporaryError(detail, retry_after_seconds=failure.retry_after_seconds)
    if failure.status == 404:
        return _permanent(Reason.USER_NOT_FOUND, detail)
    return _permanent(Reason.ASSIGNMENT_FAILED, detail)


def classify_operation_failure(status_detail: str) -> TemporaryError | PermanentError:
    """Classify an assignment operation that ended ``failed`` with its ``statusDetail`` text."""
    return classify(GraphFailure(status=None, code="operationFailed", message=status_detail))


def _permanent(reason: Reason, detail: str) -> PermanentError:
    return PermanentError(reason, f"{_HELP[reason]} ({detail})")
