"""Graph credentials for every customer tenant the app serves, without a secret in app settings.

One multi-tenant app registration in the operator's tenant, admin-consented in each customer
tenant, is how the app reaches many tenants. kiota's auth provider never passes a tenant to
``get_token``, so each customer tenant gets a credential of its own, made on first use and kept:

* ``federatedIdentity``: the Function App's user-assigned managed identity is a federated
  identity credential of the app registration. Its token for ``api://AzureADTokenExchange`` is
  the client assertion that ``ClientAssertionCredential`` exchanges at the *customer* tenant's
  authority. One managed identity credential serves every tenant (it caches its token).
* ``certificate``: the app registration's certificate, read once from Key Vault (the
  certificate's private key is the secret of the same name) by the managed identity, or from a
  local file; a ``CertificateCredential`` per tenant.
* ``managedIdentity``: the Function App's identity itself, which must live in the customer
  tenant (one tenant only).
* ``staticToken``: the Graph simulator's token, for every tenant (loopback only).

``GRAPH_IDENTITY_URL`` points the real azure-identity code at a local stand-in for Entra ID and
the managed identity endpoint: every credential gets a transport that sends requests meant for
``https://login.microsoftonline.com`` or ``http://169.254.169.254`` there instead. azure-identity
1.27 picks the managed identity's endpoint from the environment (on Azure Functions,
``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER``); without those variables it asks IMDS at
169.254.169.254, with no probe first (it probes only inside ``DefaultAzureCredential``'s chain),
and that is the request the stand-in gets. The federated assertion is fetched synchronously
(see ``_managed_identity_assertion``), so the stand-in must not serve on the app's event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError
from azure.core.pipeline.transport import (
    AioHttpTransport,
    AsyncHttpTransport,
    HttpTransport,
    RequestsTransport,
)
from azure.identity import ManagedIdentityCredential as SyncManagedIdentityCredential
from azure.identity.aio import (
    CertificateCredential,
    ClientAssertionCredential,
    ManagedIdentityCredential,
)
from azure.keyvault.secrets.aio import SecretClient
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    AuthenticationProvider,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)

from shared.config import GraphAuth, GraphSettings

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"  # noqa: S105 - a scope, not a secret
"""The audience of a managed identity token that a federated identity credential accepts."""
ENTRA_AUTHORITY = "https://login.microsoftonline.com"
IMDS_ORIGIN = "http://169.254.169.254"
_PEM_CONTENT_TYPE = "application/x-pem-file"


class GraphCredentialError(Exception):
    """A credential cannot be made: the message names the app setting to check."""


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


# -- where the credentials' HTTP requests go ----------------------------------------------------


class IdentityRedirect:
    """Sends requests for Entra ID and the managed identity endpoint to a local stand-in.

    Only the origin changes: path and query stay, so the stand-in sees
    ``/{tenant}/oauth2/v2.0/token`` and ``/metadata/identity/oauth2/token?...`` as sent.
    """

    REDIRECTED = (ENTRA_AUTHORITY, IMDS_ORIGIN)

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._scheme, self._netloc = parts.scheme, parts.netloc
        self._prefix = parts.path.rstrip("/")

    def url_for(self, url: str) -> str:
        """``url`` itself, or its stand-in's URL when it is meant for a redirected origin."""
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}".lower() not in self.REDIRECTED:
            return url
        return urlunsplit(
            (self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment)
        )


class RedirectingTransport(HttpTransport[Any, Any]):
    """A sync azure-core transport (default: ``RequestsTransport``) behind an
    ``IdentityRedirect``."""

    def __init__(
        self, redirect: IdentityRedirect, inner: HttpTransport[Any, Any] | None = None
    ) -> None:
        self._redirect = redirect
        self._inner = inner if inner is not None else RequestsTransport()

    def send(self, request: Any, **kwargs: Any) -> Any:
        """Send ``request``, to the stand-in when it is meant for Entra ID or IMDS."""
        request.url = self._redirect.url_for(request.url)
        return self._inner.send(request, **kwargs)

    def open(self) -> None:
        """Open the inner transport."""
        self._inner.open()

    def close(self) -> None:
        """Close the inner transport."""
        self._inner.close()

    def __enter__(self) -> RedirectingTransport:
        self._inner.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self._inner.__exit__(exc_type, exc_value, traceback)


class AsyncRedirectingTransport(AsyncHttpTransport[Any, Any]):
    """An async azure-core transport (default: ``AioHttpTransport``) behind an
    ``IdentityRedirect``."""

    def __init__(
        self, redirect: IdentityRedirect, inner: AsyncHttpTransport[Any, Any] | None = None
    ) -> None:
        self._redirect = redirect
        self._inner = inner if inner is not None else AioHttpTransport()

    async def send(self, request: Any, **kwargs: Any) -> Any:
        """Send ``request``, to the stand-in when it is meant for Entra ID or IMDS."""
        request.url = self._redirect.url_for(request.url)
        return await self._inner.send(request, **kwargs)

    async def open(self) -> None:
        """Open the inner transport."""
        await self._inner.open()

    async def close(self) -> None:
        """Close the inner transport."""
        await self._inner.close()

    async def __aenter__(self) -> AsyncRedirectingTransport:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc_value, traceback)


class CredentialTransports(Protocol):
    """Makes the transport of each credential (None: azure-core's default); one per credential,
    so that closing one tenant's credential closes only its own connections."""

    def sync_transport(self) -> HttpTransport[Any, Any] | None:
        """A transport for a sync credential (the shared managed identity)."""
        ...

    def async_transport(self) -> AsyncHttpTransport[Any, Any] | None:
        """A transport for an async credential or the Key Vault client."""
        ...


@dataclass(frozen=True)
class DefaultTransports:
    """azure-core's transports, behind an ``IdentityRedirect`` when ``identity_url`` is set."""

    identity_url: str | None = None

    def sync_transport(self) -> HttpTransport[Any, Any] | None:
        """``RequestsTransport`` (redirected), or None for azure-core's own choice."""
        if self.identity_url is None:
            return None
        return RedirectingTransport(IdentityRedirect(self.identity_url))

    def async_transport(self) -> AsyncHttpTransport[Any, Any] | None:
        """``AioHttpTransport`` (redirected), or None for azure-core's own choice."""
        if self.identity_url is None:
            return None
        return AsyncRedirectingTransport(IdentityRedirect(self.identity_url))


# -- the roles a token carries ------------------------------------------------------------------


def token_roles(token: str) -> frozenset[str] | None:
    """The ``roles`` claim of an access token: the application permissions granted to the app in
    the token's tenant (empty: none). None when the token is not a JWT (the simulator's token).

    The signature is not checked: the token came from Entra ID over TLS, straight to this
    process, and is read only to tell the operator what was consented; Graph checks it.
    """
    segments = token.split(".")
    if len(segments) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(segments[1] + "=" * (-len(segments[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    roles = payload.get("roles", [])
    return frozenset(role for role in roles if isinstance(role, str)) if isinstance(roles, list) \
        else frozenset()


# -- per tenant ---------------------------------------------------------------------------------


class _DeferredCredential:
    """A tenant's credential whose making needs I/O (its certificate): made on the first token
    request, so that ``auth_provider`` stays synchronous."""

    def __init__(self, make: Callable[[], Awaitable[AsyncTokenCredential]]) -> None:
        self._make = make
        self._credential: AsyncTokenCredential | None = None
        self._making = asyncio.Lock()

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """The made credential's token."""
        if self._credential is None:
            async with self._making:
                if self._credential is None:
                    self._credential = await self._make()
        return await self._credential.get_token(
            *scopes, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae, **kwargs
        )

    async def close(self) -> None:
        """Close the made credential, if it was made."""
        if self._credential is not None:
            await self._credential.close()

    async def __aenter__(self) -> _DeferredCredential:
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()


@dataclass(frozen=True)
class _TenantCredential:
    provider: AuthenticationProvider
    credential: AsyncTokenCredential | None
    """None for the static token, which has nothing to ask or close."""


class GraphCredentials:
    """The app's Graph credentials: one per customer tenant, made on first use and kept.

    One per app (per worker): the managed identity credential and the certificate it holds are
    shared by every tenant's credential.
    """

    def __init__(
        self, settings: GraphSettings, *, transports: CredentialTransports | None = None
    ) -> None:
        self._settings = settings
        self._transports = transports or DefaultTransports(settings.identity_url)
        self._graph_host = urlsplit(settings.base_url).hostname or ""
        self._tenants: dict[str, _TenantCredential] = {}
        self._managed_identity: SyncManagedIdentityCredential | None = None
        self._certificate: bytes | None = None
        self._reading_certificate = asyncio.Lock()

    def auth_provider(self, tenant_id: str) -> AuthenticationProvider:
        """The kiota auth provider of ``tenant_id``'s Graph client (made on first use)."""
        return self._tenant(tenant_id).provider

    async def granted_roles(self, tenant_id: str) -> frozenset[str] | None:
        """The application permissions granted in ``tenant_id``, read from a Graph token's
        ``roles`` claim (see ``token_roles``); None when the token is not a JWT."""
        tenant = self._tenant(tenant_id)
        if tenant.credential is None:
            assert self._settings.static_token is not None
            return token_roles(self._settings.static_token)
        token = await tenant.credential.get_token(GRAPH_SCOPE)
        return token_roles(token.token)

    async def forget(self, tenant_id: str) -> None:
        """Close and drop ``tenant_id``'s credential (a paused or removed tenant); the next use
        makes a new one."""
        tenant = self._tenants.pop(tenant_id, None)
        if tenant is not None and tenant.credential is not None:
            await tenant.credential.close()

    async def close(self) -> None:
        """Close every tenant's credential and the shared managed identity."""
        for tenant_id in list(self._tenants):
            await self.forget(tenant_id)
        if self._managed_identity is not None:
            self._managed_identity.close()
            self._managed_identity = None

    # -- making them --

    def _tenant(self, tenant_id: str) -> _TenantCredential:
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            tenant = self._tenants[tenant_id] = self._new_tenant(tenant_id)
        return tenant

    def _new_tenant(self, tenant_id: str) -> _TenantCredential:
        settings = self._settings
        if settings.auth is GraphAuth.STATIC_TOKEN:
            assert settings.static_token is not None  # GraphSettings validated the mode
            provider = BaseBearerTokenAuthenticationProvider(
                StaticTokenProvider(settings.static_token, self._graph_host)
            )
            return _TenantCredential(provider, None)
        credential = self._new_credential(tenant_id)
        return _TenantCredential(
            AzureIdentityAuthenticationProvider(
                credential, scopes=[GRAPH_SCOPE], allowed_hosts=[self._graph_host]
            ),
            credential,
        )

    def _new_credential(self, tenant_id: str) -> AsyncTokenCredential:
        settings = self._settings
        if settings.auth is GraphAuth.FEDERATED_IDENTITY:
            assert settings.client_id is not None
            return ClientAssertionCredential(
                tenant_id=tenant_id,
                client_id=settings.client_id,
                func=self._managed_identity_assertion,
                **self._async_transport(),
            )
        if settings.auth is GraphAuth.CERTIFICATE and settings.certificate_path:
            return self._certificate_credential(tenant_id, self._certificate_file())
        if settings.auth is GraphAuth.CERTIFICATE:
            # Key Vault is read on the first token request: auth_provider is synchronous.
            return _DeferredCredential(self._key_vault_certificate_credential(tenant_id))
        # managedIdentity: the identity is in the customer tenant; no tenant to pass.
        return ManagedIdentityCredential(client_id=settings.client_id, **self._async_transport())

    def _managed_identity_assertion(self) -> str:
        # azure-identity 1.27 calls this synchronously from the async ClientAssertionCredential,
        # so the identity's side is the sync credential. It caches its token (about a day), so
        # the blocking round trip to the identity endpoint happens rarely, not per tenant.
        if self._managed_identity is None:
            self._managed_identity = SyncManagedIdentityCredential(
                client_id=self._settings.managed_identity_client_id, **self._sync_transport()
            )
        token: AccessToken = self._managed_identity.get_token(TOKEN_EXCHANGE_SCOPE)
        return token.token

    def _certificate_credential(self, tenant_id: str, certificate: bytes) -> AsyncTokenCredential:
        assert self._settings.client_id is not None
        try:
            return CertificateCredential(
                tenant_id, self._settings.client_id, certificate_data=certificate,
                **self._async_transport(),
            )
        except ValueError as error:  # not a certificate with an RSA private key
            raise GraphCredentialError(
                f"the certificate of {self._certificate_source()} cannot be used: {error}"
            ) from error

    def _certificate_source(self) -> str:
        settings = self._settings
        if settings.certificate_path:
            return f"GRAPH_CERTIFICATE_PATH={settings.certificate_path!r}"
        return (f"GRAPH_CERTIFICATE_KEY_VAULT_URL={settings.certificate_key_vault_url!r}, "
                f"GRAPH_CERTIFICATE_NAME={settings.certificate_name!r}")

    def _certificate_file(self) -> bytes:
        """The local certificate file (PEM or PKCS#12, with its private key), read once."""
        path = self._settings.certificate_path
        assert path is not None
        if self._certificate is None:
            try:
                self._certificate = Path(path).read_bytes()
            except OSError as error:
                raise GraphCredentialError(
                    f"GRAPH_CERTIFICATE_PATH={path!r} cannot be read: {error}"
                ) from error
        return self._certificate

    def _key_vault_certificate_credential(
        self, tenant_id: str
    ) -> Callable[[], Awaitable[AsyncTokenCredential]]:
        async def make() -> AsyncTokenCredential:
            return self._certificate_credential(tenant_id, await self._key_vault_certificate())
        return make

    async def _key_vault_certificate(self) -> bytes:
        """The Key Vault certificate with its private key (PKCS#12 or PEM bytes), read once."""
        vault_url = self._settings.certificate_key_vault_url
        name = self._settings.certificate_name
        assert vault_url is not None
        assert name is not None
        if self._certificate is None:
            async with self._reading_certificate:
                if self._certificate is None:
                    self._certificate = await self._read_key_vault_certificate(vault_url, name)
        return self._certificate

    async def _read_key_vault_certificate(self, vault_url: str, name: str) -> bytes:
        where = self._certificate_source()
        # Read once, so the identity and the vault client are closed straight after.
        async with ManagedIdentityCredential(
            client_id=self._settings.managed_identity_client_id, **self._async_transport()
        ) as identity:
            try:
                async with SecretClient(vault_url, identity, **self._async_transport()) as vault:
                    secret = await vault.get_secret(name)
            except AzureError as error:
                raise GraphCredentialError(
                    f"the certificate cannot be read from Key Vault ({where}): {error}"
                ) from error
        if not secret.value:
            raise GraphCredentialError(f"the certificate's secret in Key Vault is empty ({where})")
        # Key Vault keeps the certificate with its private key as a secret of the same name:
        # base64 PKCS#12 by default, PEM text when the certificate's policy says so.
        if secret.properties.content_type == _PEM_CONTENT_TYPE:
            return secret.value.encode("utf-8")
        try:
            return base64.b64decode(secret.value, validate=True)
        except binascii.Error as error:
            raise GraphCredentialError(
                f"the certificate's secret in Key Vault is not base64 PKCS#12 ({where})"
            ) from error

    def _sync_transport(self) -> dict[str, Any]:
        transport = self._transports.sync_transport()
        return {} if transport is None else {"transport": transport}

    def _async_transport(self) -> dict[str, Any]:
        transport = self._transports.async_transport()
        return {} if transport is None else {"transport": transport}
