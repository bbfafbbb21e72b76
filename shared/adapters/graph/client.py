"""Build the msgraph-sdk client: a tenant's auth provider, base URL without a trailing slash.

The auth provider comes from ``shared.adapters.graph.credentials.GraphCredentials`` (one
credential per customer tenant); this module builds the HTTP client and the request adapter.
"""

from __future__ import annotations

from typing import Any, Protocol

from kiota_abstractions.authentication import AuthenticationProvider
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware import RetryHandler
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from shared.adapters.graph.pacing import TeamsPaceHandler, TeamsRequestPacer
from shared.adapters.graph.throttling import ThrottleLogHandler
from shared.adapters.graph.transport_failures import TransportFailureHandler
from shared.config import GraphSettings
from shared.service.ports import EventSink


class GraphTransport(Protocol):
    """The SDK's HTTP client, as far as the app needs to know it: it must be closed."""

    async def aclose(self) -> None:
        """Close pooled connections."""
        ...


class ShortWaitRetryHandler(RetryHandler):  # type: ignore[misc]  # kiota base is untyped here
    """The SDK's retry handler, except that it never sleeps longer than ``max_wait`` seconds.

    The stock handler honours any ``Retry-After`` below 180 s by sleeping inside the request,
    i.e. inside the function invocation. Longer waits are better spent off the worker: the
    handler then gives up at once, the 429 reaches the app, and the queue message is re-enqueued
    with that delay.
    """

    def __init__(self, options: RetryHandlerOption, max_wait: float) -> None:
        super().__init__(options=options)
        self._max_wait = max_wait

    def get_delay_time(self, retry_count: int, response: Any = None, delay: float = 3.0) -> float:
        """The SDK's delay, or "too long" (which stops retrying) beyond ``max_wait``."""
        wait = float(super().get_delay_time(retry_count, response, delay))
        return wait if wait <= self._max_wait else RetryHandlerOption.MAX_DELAY


def graph_http_client(
    settings: GraphSettings, pacer: TeamsRequestPacer | None = None, *,
    tenant_id: str | None = None, events: EventSink | None = None,
) -> GraphTransport:
    """The SDK's HTTP client with its default middleware; retries wait ``inline_retry_max``
    seconds at most (see ``ShortWaitRetryHandler``). With ``pacer``, every attempt of a request
    under ``/admin/teams/`` waits for a slot of the tenant's Teams pace, and of the app's when
    the pacer has one (``TeamsPaceHandler``, after the retry handler so that retries are paced
    as well). Every 429 attempt is logged with its throttle scope and ``tenant_id``
    (``ThrottleLogHandler``), and reported to ``events`` when given. A connection that fails
    without an answer becomes a 503 (``TransportFailureHandler``, last), retried and classified
    as one."""
    options = RetryHandlerOption(max_retries=settings.max_retries, delay=0.5)
    middleware = [
        ShortWaitRetryHandler(options, settings.inline_retry_max_seconds)
        if isinstance(handler, RetryHandler) else handler
        for handler in KiotaClientFactory.get_default_middleware({options.get_key(): options})
    ]
    if pacer is not None:
        middleware.append(TeamsPaceHandler(pacer))
    middleware.append(ThrottleLogHandler(tenant_id, events))
    # Last, closest to the socket: each attempt's failed connection is a 503 the retry sees.
    middleware.append(TransportFailureHandler())
    transport: GraphTransport = GraphClientFactory.create_with_custom_middleware(middleware)
    return transport


async def close_graph_transport(transport: GraphTransport) -> None:
    """Close the SDK's HTTP client and the connection pool underneath its middleware.

    kiota-http's ``AsyncKiotaTransport`` wraps the real transport but defines no ``aclose``, so
    closing the client alone leaves the pooled sockets open (kiota-http 1.16).
    """
    inner = getattr(getattr(transport, "_transport", None), "transport", None)
    await transport.aclose()
    if inner is not None and hasattr(inner, "aclose"):
        await inner.aclose()


def build_graph_client(
    settings: GraphSettings, auth_provider: AuthenticationProvider, http_client: GraphTransport
) -> GraphServiceClient:
    """A Graph client over ``http_client``, pointed at ``settings.base_url``, authenticated by
    ``auth_provider`` (a tenant's, from ``GraphCredentials.auth_provider``)."""
    adapter = GraphRequestAdapter(auth_provider, client=http_client)
    # Explicit, without a trailing slash: the SDK's default base gives "v1.0//admin/...".
    adapter.base_url = settings.base_url
    return GraphServiceClient(request_adapter=adapter)
