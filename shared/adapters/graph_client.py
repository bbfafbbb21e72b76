"""Build the msgraph-sdk client: credentials chosen by settings, base URL without a trailing slash.

In Azure the token comes from azure-identity: the Function App's managed identity, or a certificate
credential for an app registration in the customer's tenant. Against the local Graph simulator it
comes from a static token (allowed only for loopback URLs; ``shared.config`` enforces that).
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlsplit

from azure.identity.aio import CertificateCredential, ManagedIdentityCredential
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    AuthenticationProvider,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from shared.config import GraphAuth, GraphSettings

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class StaticTokenProvider(AccessTokenProvider):  # type: ignore[misc]  # kiota base is untyped here
    """Hands out one fixed bearer token, for the local Graph simulator only."""

    def __init__(self, token: str, host: str) -> None:
        self._token = token
        self._hosts = AllowedHostsValidator([host])

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: dict[str, Any] | None = None
    ) -> str:
        """The token, for requests to the simulator's host only."""
        del additional_authentication_context
        return self._token if self._hosts.is_url_host_valid(uri) else ""

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        """Only the simulator's host gets the token."""
        return self._hosts


class GraphTransport(Protocol):
    """The SDK's HTTP client, as far as the app needs to know it: it must be closed."""

    async def aclose(self) -> None:
        """Close pooled connections."""
        ...


def graph_http_client(settings: GraphSettings) -> GraphTransport:
    """The SDK's HTTP client with its default middleware (retry honours ``Retry-After``)."""
    transport: GraphTransport = GraphClientFactory.create_with_default_middleware(
        options={RetryHandlerOption.get_key(): RetryHandlerOption(max_retries=settings.max_retries)}
    )
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
    settings: GraphSettings, tenant_id: str, http_client: GraphTransport
) -> GraphServiceClient:
    """A Graph client over ``http_client``, pointed at ``settings.base_url``."""
    adapter = GraphRequestAdapter(_auth_provider(settings, tenant_id), client=http_client)
    # Explicit, without a trailing slash: the SDK's default base gives "v1.0//admin/...".
    adapter.base_url = settings.base_url
    return GraphServiceClient(request_adapter=adapter)


def _auth_provider(settings: GraphSettings, tenant_id: str) -> AuthenticationProvider:
    host = urlsplit(settings.base_url).hostname or ""
    if settings.auth is GraphAuth.STATIC_TOKEN:
        assert settings.static_token is not None
        return BaseBearerTokenAuthenticationProvider(
            StaticTokenProvider(settings.static_token, host)
        )
    credential: CertificateCredential | ManagedIdentityCredential
    if settings.auth is GraphAuth.CERTIFICATE:
        # GraphSettings has validated both for the certificate mode.
        assert settings.client_id
        assert settings.certificate_path
        credential = CertificateCredential(
            tenant_id, settings.client_id, certificate_path=settings.certificate_path
        )
    else:
        credential = ManagedIdentityCredential(client_id=settings.client_id)
    return AzureIdentityAuthenticationProvider(
        credential, scopes=[GRAPH_SCOPE], allowed_hosts=[host]
    )
