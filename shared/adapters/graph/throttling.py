"""Every 429 the app receives is logged with Graph's throttle headers, retried or not, and
reported as a ``GraphThrottled`` event; every attempt counts toward the run's Graph requests.

Graph documents which limit a 429 hit in ``x-ms-throttle-scope``
(``<Scope>/<Limit>/<ApplicationId>/<TenantId>``, e.g. ``Tenant_Application/ReadWrite/...``) and
why in ``x-ms-throttle-information`` (e.g. ``ResourceUnitLimitExceeded``); Teams documents no
limits for ``/admin/teams`` at all. The real limits are only learnt from these lines, so
``ThrottleLogHandler`` sits in the SDK's middleware chain after the retry handler, where it sees
each attempt: a 429 the SDK retries away is logged as well as one that reaches the app.
"""

from __future__ import annotations

import logging
from typing import Any

from kiota_http.middleware.middleware import BaseMiddleware

from shared.core.telemetry_events import APP_WIDE, GraphThrottled, route_template
from shared.service.graph_request_tally import note_graph_request
from shared.service.ports import EventSink

log = logging.getLogger(__name__)

THROTTLE_SCOPE_HEADER = "x-ms-throttle-scope"
THROTTLE_INFORMATION_HEADER = "x-ms-throttle-information"


def throttle_line(method: str, path: str, headers: Any, tenant_id: str | None = None) -> str:
    """The log line for one 429: route, the tenant it was for (when known), scope, information
    and the wait Graph asked for."""
    scope = headers.get(THROTTLE_SCOPE_HEADER) or "(none given)"
    information = headers.get(THROTTLE_INFORMATION_HEADER) or "(none given)"
    retry_after = headers.get("Retry-After")
    wait = f"{retry_after} s" if retry_after else "(not given)"
    # The tenant too: the scope names one only when Graph gives one, and with several tenants
    # on a worker a per-tenant limit and the app-wide one are told apart by it.
    tenant = f" for tenant {tenant_id}" if tenant_id else ""
    return (f"Graph throttled {method} {path}{tenant}: scope={scope}, "
            f"information={information}, retry after {wait}")


def throttled_event(method: str, path: str, headers: Any, tenant_id: str | None) -> GraphThrottled:
    """The ``GraphThrottled`` of one 429: the route (ids left out), the wait asked for (-1:
    none, or not in seconds) and Graph's throttle headers (``""`` when absent)."""
    try:
        wait = float(headers.get("Retry-After") or -1)
    except ValueError:  # an HTTP date: Graph sends seconds, a proxy on the way may not
        wait = -1.0
    return GraphThrottled(
        tenant_id or APP_WIDE, method, route_template(path),
        retry_after_seconds=wait,
        throttle_scope=headers.get(THROTTLE_SCOPE_HEADER) or "",
        throttle_information=headers.get(THROTTLE_INFORMATION_HEADER) or "",
    )


class ThrottleLogHandler(BaseMiddleware):  # type: ignore[misc]  # kiota base is untyped here
    """SDK middleware: logs a warning naming the throttle scope (and the tenant the client is
    for, when given) for every 429 answer, and reports it to ``events`` (``GraphThrottled``).
    Every attempt it sees is added to the run's request tally (``graph_request_tally``)."""

    def __init__(self, tenant_id: str | None = None, events: EventSink | None = None) -> None:
        super().__init__()
        self._tenant_id = tenant_id
        self._events = events

    async def send(self, request: Any, transport: Any) -> Any:
        """Pass the request on; log the answer when it is a 429."""
        note_graph_request()
        response = await super().send(request, transport)
        if response.status_code == 429:
            log.warning("%s", throttle_line(request.method, request.url.path, response.headers,
                                            self._tenant_id))
            if self._events is not None:
                self._events.emit(throttled_event(
                    request.method, request.url.path, response.headers, self._tenant_id))
        return response
