"""A connection that fails before Graph answers is a temporary failure, handled like a 503.

The SDK's retry middleware retries answers (429, 503, 504), not exceptions: a reset connection,
a read timeout or a connection refused would otherwise escape as a bare ``httpx`` exception that
no adapter classifies, fail a whole timer run on one reset, and leave a queue message without a
recorded status on its last try. ``TransportFailureHandler`` sits last in the middleware chain
(closest to the socket) and turns such a failure into what a gateway in front of Graph would have
answered: a ``503`` with a JSON error. The retry handler then retries it (paced again, when it is a
Teams request), and once its retries are spent the adapters classify it as a ``TemporaryError``
like any other 503.

Whether Graph carried out a request whose answer was lost is unknown; the app's writes are safe
to repeat (an assignment repeated finds the number already on the user), so retrying is right.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from kiota_http.middleware.middleware import BaseMiddleware

log = logging.getLogger(__name__)

#: Marks an answer made up here, so that logs and tests can tell it from Graph's own 503.
TRANSPORT_FAILURE_HEADER = "x-teams-number-sync-transport-failure"
TRANSPORT_FAILURE_CODE = "transportFailure"

# Failures of the network or of the other side; not our own mistakes (an unsupported URL scheme
# or a malformed request is a bug, and retrying it would hide it).
_TEMPORARY = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError,
              httpx.ProxyError)


def transport_failure_response(request: httpx.Request, error: Exception) -> httpx.Response:
    """The 503 that stands for a request whose connection failed before an answer arrived."""
    kind = type(error).__name__
    message = (
        f"No answer from Graph for {request.method} {request.url.path}: {kind}"
        f"{': ' + str(error) if str(error) else ''} (the connection failed; whether Graph "
        "carried out the request is unknown)"
    )
    return httpx.Response(
        503,
        json={"error": {"code": TRANSPORT_FAILURE_CODE, "message": message}},
        headers={TRANSPORT_FAILURE_HEADER: kind},
        request=request,
    )


class TransportFailureHandler(BaseMiddleware):  # type: ignore[misc]  # kiota base is untyped
    """SDK middleware: a failed connection becomes a 503 the retry handler and the app know."""

    async def send(self, request: Any, transport: Any) -> Any:
        """Pass the request on; answer 503 when its connection fails."""
        try:
            response = await super().send(request, transport)
            # Read the body here: a connection dropped halfway through it would otherwise fail
            # later, outside the middleware chain. Graph's answers are small JSON documents.
            await response.aread()
        except _TEMPORARY as error:
            log.warning("Graph request %s %s failed without an answer: %s: %s",
                        request.method, request.url.path, type(error).__name__, error)
            return transport_failure_response(request, error)
        return response
