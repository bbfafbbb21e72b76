"""``GraphCredentials``: the real azure-identity and Key Vault code, over in-process transports
that stand in for Entra ID, the managed identity endpoint and Key Vault and record every
request; and the ``GRAPH_IDENTITY_URL`` redirect over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from azure.core.pipeline.transport import (
    AioHttpTransport,
    AsyncHttpTransport,
    HttpTransport,
    RequestsTransport,
)
from azure.core.rest import HttpRequest
from azure.core.rest._http_response_impl import RestHttpClientTransportResponse
from azure.core.rest._http_response_impl_async import RestAsyncHttpClientTransportResponse
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from kiota_abstractions.request_information import RequestInformation

from graph_simulator.serving_thread import ServingThread
from shared.adapters.graph.credentials import (
    AsyncRedirectingTransport,
    GraphCredentialError,
    GraphCredentials,
    IdentityRedirect,
    RedirectingTransport,
    token_roles,
)
from shared.config import GraphAuth, GraphSettings

APP_ID = "5c0ffee0-0000-4000-8000-00000000a990"
IDENTITY_ID = "1d0e0000-0000-4000-8000-0000000001d0"
CONTOSO = "11111111-1111-4111-8111-111111111111"
FABRIKAM = "22222222-2222-4222-8222-222222222222"
OPERATOR_TENANT = "33333333-3333-4333-8333-333333333333"
VAULT_URL = "https://numbersync-kv.vault.azure.net"
CERTIFICATE_NAME = "graph-app"
GRAPH_URL = "https://graph.microsoft.com/v1.0/users"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(autouse=True)
def _on_imds(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever the machine has, the managed identity goes to IMDS (169.254.169.254), as on a
    # developer's machine with GRAPH_IDENTITY_URL: no App Service, Arc or workload variables.
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT",
                 "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                 "AZURE_FEDERATED_TOKEN_FILE", "AZURE_TENANT_ID", "AZURE_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)


def unsigned_jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def unpadded_b64decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def jwt_part(token: str, index: int) -> dict[str, Any]:
    segment = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(unpadded_b64decode(segment))
    return decoded


# -- the stand-in cloud, in process ---------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One request as it reached the transport."""

    method: str
    url: str
    headers: dict[str, str]
    form: dict[str, str]

    @property
    def query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlsplit(self.url).query).items()}

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


@dataclass
class FakeCloud:
    """Answers like Entra ID (token endpoint per tenant), IMDS and Key Vault; keeps requests."""

    roles: dict[str, list[str]] = field(default_factory=dict)
    secret: tuple[str, str] | None = None
    """The certificate's secret: (value, content type)."""
    seen: list[Seen] = field(default_factory=list)
    identity_tokens: int = 0

    def answer(self, request: HttpRequest) -> tuple[int, dict[str, str], bytes]:
        seen = Seen(request.method, request.url, dict(request.headers), _form(request.content))
        self.seen.append(seen)
        origin = f"{urlsplit(request.url).scheme}://{urlsplit(request.url).netloc}"
        if origin == "https://login.microsoftonline.com":
            return self._entra(seen)
        if origin == "http://169.254.169.254":
            return self._imds(seen)
        if origin == VAULT_URL:
            return self._vault(seen)
        return 404, {}, b""

    def _entra(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        tenant = seen.path.split("/")[1]
        token = unsigned_jwt({"tid": tenant, "aud": "https://graph.microsoft.com",
                              "appid": seen.form.get("client_id"),
                              "roles": self.roles.get(tenant, [])})
        return _json({"token_type": "Bearer", "expires_in": 3599, "access_token": token})

    def _imds(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        self.identity_tokens += 1
        return _json({
            "access_token": f"identity-token-{self.identity_tokens}-for-{seen.query['resource']}",
            "expires_in": "86399", "expires_on": str(int(time.time()) + 86399),
            "resource": seen.query["resource"], "token_type": "Bearer",
        })

    def _vault(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if "Authorization" not in seen.headers:
            challenge = (f'Bearer authorization="https://login.microsoftonline.com/'
                         f'{OPERATOR_TENANT}", resource="https://vault.azure.net"')
            return 401, {"WWW-Authenticate": challenge}, b""
        if self.secret is None:
            return 404, {"Content-Type": "application/json"}, json.dumps(
                {"error": {"code": "SecretNotFound", "message": "A secret with (name/id) "
                           "graph-app was not found in this key vault."}}).encode()
        value, content_type = self.secret
        name = seen.path.strip("/").split("/")[1]
        return _json({"value": value, "contentType": content_type,
                      "id": f"{VAULT_URL}/secrets/{name}/0123456789abcdef",
                      "attributes": {"enabled": True}})

    def to(self, origin: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.url.startswith(origin)]


def _form(content: object) -> dict[str, str]:
    # azure-core keeps a form body as the dict it was given; the transport would encode it.
    if isinstance(content, dict):
        return {str(key): str(value) for key, value in content.items()}
    if isinstance(content, bytes):
        return {key: values[0] for key, values in parse_qs(content.decode()).items()}
    return {}


def _json(body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


class _Answer:
    """What azure-core's http.client adapters read from a response."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.reason, self._body = status, "OK" if status < 400 else "Error", body
        self._headers = Message()
        for name, value in headers.items():
            self._headers[name] = value

    def getheaders(self) -> list[tuple[str, str]]:
        return list(self._headers.items())

    def read(self) -> bytes:
        return self._body

    def close(self) -> None:
        pass


class InProcessTransport(HttpTransport[Any, Any]):
    """A sync transport answered by the ``FakeCloud``."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud, self.closed = cloud, False

    def send(self, request: Any, **kwargs: Any) -> Any:
        response = RestHttpClientTransportResponse(  # type: ignore[no-untyped-call]
            request=request, internal_response=_Answer(*self.cloud.answer(request))
        )
        response.read()  # type: ignore[no-untyped-call]  # as azure-core's transports do unless asked to stream
        return response

    def open(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def __exit__(self, *args: object) -> None:
        self.close()


class AsyncInProcessTransport(AsyncHttpTransport[Any, Any]):
    """An async transport answered by the ``FakeCloud``."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud, self.closed = cloud, False

    async def send(self, request: Any, **kwargs: Any) -> Any:
        response = RestAsyncHttpClientTransportResponse(  # type: ignore[no-untyped-call]
            request=request, internal_response=_Answer(*self.cloud.answer(request))
        )
        await response.read()  # type: ignore[no-untyped-call]  # as azure-core's transports do unless asked to stream
        return response

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True

    async def __aexit__(self, *args: object) -> None:
        await self.close()


@dataclass
class InProcessTransports:
    """Hands each credential its own in-process transport and keeps them, to see them closed."""

    cloud: FakeCloud
    made: list[InProcessTransport | AsyncInProcessTransport] = field(default_factory=list)

    def sync_transport(self) -> InProcessTransport:
        self.made.append(transport := InProcessTransport(self.cloud))
        return transport

    def async_transport(self) -> AsyncInProcessTransport:
        self.made.append(transport := AsyncInProcessTransport(self.cloud))
        return transport


async def bearer_token(credentials: GraphCredentials, tenant_id: str) -> str:
    """The Authorization header the tenant's auth provider puts on a Graph request."""
    request = RequestInformation()
    request.url = GRAPH_URL
    await credentials.auth_provider(tenant_id).authenticate_request(request)
    header = str(next(iter(request.headers.get("Authorization"))))
    assert header.startswith("Bearer ")
    return header.removeprefix("Bearer ")


FEDERATED = GraphSettings(auth=GraphAuth.FEDERATED_IDENTITY, client_id=APP_ID,
                          managed_identity_client_id=IDENTITY_ID)


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud(roles={CONTOSO: ["User.Read.All", "TeamsTelephoneNumber.ReadWrite.All"],
                            FABRIKAM: ["User.Read.All"]})


@pytest.fixture
async def federated(
    cloud: FakeCloud,
) -> AsyncIterator[tuple[GraphCredentials, InProcessTransports]]:
    transports = InProcessTransports(cloud)
    credentials = GraphCredentials(FEDERATED, transports=transports)
    yield credentials, transports
    await credentials.close()


# -- federatedIdentity ----------------------------------------------------------------------------


async def test_each_customer_tenant_exchanges_the_identity_token_at_its_own_authority(
    federated: tuple[GraphCredentials, InProcessTransports], cloud: FakeCloud
) -> None:
    credentials, _ = federated

    contoso_token = await bearer_token(credentials, CONTOSO)
    fabrikam_token = await bearer_token(credentials, FABRIKAM)

    exchanges = cloud.to("https://login.microsoftonline.com")
    assert [seen.url for seen in exchanges] == [
        f"https://login.microsoftonline.com/{CONTOSO}/oauth2/v2.0/token",
        f"https://login.microsoftonline.com/{FABRIKAM}/oauth2/v2.0/token",
    ]
    identity_token = "identity-token-1-for-api://AzureADTokenExchange"
    for seen in exchanges:
        assert seen.method == "POST"
        assert seen.form["client_assertion"] == identity_token
        assert seen.form["client_assertion_type"] == JWT_BEARER
        assert seen.form["grant_type"] == "client_credentials"
        assert seen.form["client_id"] == APP_ID
        assert seen.form["scope"] == "https://graph.microsoft.com/.default"
    assert jwt_part(contoso_token, 1)["tid"] == CONTOSO
    assert jwt_part(fabrikam_token, 1)["tid"] == FABRIKAM


async def test_one_managed_identity_token_serves_every_tenant(
    federated: tuple[GraphCredentials, InProcessTransports], cloud: FakeCloud
) -> None:
    credentials, _ = federated

    await bearer_token(credentials, CONTOSO)
    await bearer_token(credentials, FABRIKAM)

    [identity] = cloud.to("http://169.254.169.254")
    assert identity.method == "GET"
    assert identity.path == "/metadata/identity/oauth2/token"
    assert identity.query["resource"] == "api://AzureADTokenExchange"
    assert identity.query["client_id"] == IDENTITY_ID
    assert identity.headers["Metadata"] == "true"


async def test_a_tenant_keeps_its_credential_and_its_token(
    federated: tuple[GraphCredentials, InProcessTransports], cloud: FakeCloud
) -> None:
    credentials, _ = federated

    first = await bearer_token(credentials, CONTOSO)
    second = await bearer_token(credentials, CONTOSO)

    assert first == second
    assert credentials.auth_provider(CONTOSO) is credentials.auth_provider(CONTOSO)
    assert len(cloud.to("https://login.microsoftonline.com")) == 1


async def test_granted_roles_are_the_roles_of_the_tenants_token(
    federated: tuple[GraphCredentials, InProcessTransports],
) -> None:
    credentials, _ = federated

    assert await credentials.granted_roles(CONTOSO) == frozenset(
        {"User.Read.All", "TeamsTelephoneNumber.ReadWrite.All"}
    )
    assert await credentials.granted_roles(FABRIKAM) == frozenset({"User.Read.All"})


async def test_a_tenant_without_consent_has_no_roles(
    federated: tuple[GraphCredentials, InProcessTransports],
) -> None:
    credentials, _ = federated

    assert await credentials.granted_roles("44444444-4444-4444-8444-444444444444") == frozenset()


async def test_forget_closes_that_tenants_credential_only(
    federated: tuple[GraphCredentials, InProcessTransports], cloud: FakeCloud
) -> None:
    credentials, transports = federated
    await credentials.granted_roles(CONTOSO)
    await credentials.granted_roles(FABRIKAM)
    # Made in the order first needed: the tenant's, then (on its first token) the identity's.
    contoso, identity, fabrikam = transports.made
    assert isinstance(identity, InProcessTransport)
    contoso_provider = credentials.auth_provider(CONTOSO)

    await credentials.forget(CONTOSO)

    assert contoso.closed
    assert not fabrikam.closed
    assert not identity.closed
    # The next use makes a new credential, which asks its authority again.
    assert credentials.auth_provider(CONTOSO) is not contoso_provider
    await credentials.granted_roles(CONTOSO)
    assert len(cloud.to(f"https://login.microsoftonline.com/{CONTOSO}/")) == 2


async def test_close_closes_every_credential_and_the_managed_identity(
    federated: tuple[GraphCredentials, InProcessTransports],
) -> None:
    credentials, transports = federated
    await credentials.granted_roles(CONTOSO)
    await credentials.granted_roles(FABRIKAM)

    await credentials.close()

    assert len(transports.made) == 3
    assert all(transport.closed for transport in transports.made)


# -- certificate ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    pkcs12: bytes
    pem: bytes
    certificate: x509.Certificate


@pytest.fixture(scope="module")
def certificate() -> Certificate:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "numbersync-graph")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    pfx = pkcs12.serialize_key_and_certificates(
        b"graph-app", key, cert, None, serialization.NoEncryption()
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    pem += cert.public_bytes(serialization.Encoding.PEM)
    return Certificate(pfx, pem, cert)


def assert_signed_by(assertion: str, certificate: x509.Certificate, tenant_id: str) -> None:
    """The client assertion names the certificate (x5t#S256), is signed by its key, and is for
    the customer tenant's token endpoint."""
    header, claims = jwt_part(assertion, 0), jwt_part(assertion, 1)
    der = certificate.public_bytes(serialization.Encoding.DER)
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert header["x5t#S256"].rstrip("=") == thumbprint
    assert header["alg"] == "PS256"  # azure-identity 1.27 signs with PSS, not RS256
    assert claims["aud"] == f"https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token"
    assert claims["iss"] == claims["sub"] == APP_ID
    signed, signature = assertion.rsplit(".", 1)
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(  # raises InvalidSignature otherwise
        unpadded_b64decode(signature), signed.encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH),
        hashes.SHA256(),
    )


KEY_VAULT_CERTIFICATE = GraphSettings(
    auth=GraphAuth.CERTIFICATE, client_id=APP_ID, managed_identity_client_id=IDENTITY_ID,
    certificate_key_vault_url=VAULT_URL, certificate_name=CERTIFICATE_NAME,
)


async def test_the_certificate_is_read_once_from_key_vault_and_signs_each_tenants_assertion(
    cloud: FakeCloud, certificate: Certificate
) -> None:
    cloud.secret = (base64.b64encode(certificate.pkcs12).decode(), "application/x-pkcs12")
    credentials = GraphCredentials(KEY_VAULT_CERTIFICATE, transports=InProcessTransports(cloud))
    try:
        contoso_roles = await credentials.granted_roles(CONTOSO)
        await bearer_token(credentials, FABRIKAM)
    finally:
        await credentials.close()

    authorized = [seen for seen in cloud.to(VAULT_URL) if "Authorization" in seen.headers]
    [secret_read] = authorized
    assert secret_read.method == "GET"
    assert secret_read.path.rstrip("/") == f"/secrets/{CERTIFICATE_NAME}"
    identity = cloud.to("http://169.254.169.254")
    assert [seen.query["resource"] for seen in identity] == ["https://vault.azure.net"]
    assert identity[0].query["client_id"] == IDENTITY_ID
    assert secret_read.headers["Authorization"] == (
        "Bearer identity-token-1-for-https://vault.azure.net"
    )
    exchanges = cloud.to("https://login.microsoftonline.com")
    assert [seen.path for seen in exchanges] == [
        f"/{CONTOSO}/oauth2/v2.0/token", f"/{FABRIKAM}/oauth2/v2.0/token"
    ]
    for seen, tenant in zip(exchanges, [CONTOSO, FABRIKAM], strict=True):
        assert seen.form["client_assertion_type"] == JWT_BEARER
        assert seen.form["client_id"] == APP_ID
        assert_signed_by(seen.form["client_assertion"], certificate.certificate, tenant)
    assert contoso_roles == frozenset({"User.Read.All", "TeamsTelephoneNumber.ReadWrite.All"})


async def test_a_pem_certificate_in_key_vault_is_used_as_it_is(
    cloud: FakeCloud, certificate: Certificate
) -> None:
    cloud.secret = (certificate.pem.decode(), "application/x-pem-file")
    credentials = GraphCredentials(KEY_VAULT_CERTIFICATE, transports=InProcessTransports(cloud))
    try:
        await bearer_token(credentials, CONTOSO)
    finally:
        await credentials.close()

    [exchange] = cloud.to("https://login.microsoftonline.com")
    assert_signed_by(exchange.form["client_assertion"], certificate.certificate, CONTOSO)


async def test_a_secret_that_is_no_certificate_names_the_settings(cloud: FakeCloud) -> None:
    cloud.secret = ("not base64 at all!", "application/x-pkcs12")
    credentials = GraphCredentials(KEY_VAULT_CERTIFICATE, transports=InProcessTransports(cloud))
    try:
        with pytest.raises(GraphCredentialError) as caught:
            await credentials.granted_roles(CONTOSO)
    finally:
        await credentials.close()

    assert f"GRAPH_CERTIFICATE_KEY_VAULT_URL={VAULT_URL!r}" in str(caught.value)
    assert f"GRAPH_CERTIFICATE_NAME={CERTIFICATE_NAME!r}" in str(caught.value)


async def test_a_certificate_missing_from_key_vault_names_the_settings(cloud: FakeCloud) -> None:
    credentials = GraphCredentials(KEY_VAULT_CERTIFICATE, transports=InProcessTransports(cloud))
    try:
        with pytest.raises(GraphCredentialError) as caught:
            await bearer_token(credentials, CONTOSO)
        # Nothing is kept from a failed read: the next token request reads Key Vault again.
        with pytest.raises(GraphCredentialError):
            await bearer_token(credentials, CONTOSO)
    finally:
        await credentials.close()

    assert "cannot be read from Key Vault" in str(caught.value)
    assert f"GRAPH_CERTIFICATE_NAME={CERTIFICATE_NAME!r}" in str(caught.value)
    assert "SecretNotFound" in str(caught.value)
    assert len([seen for seen in cloud.to(VAULT_URL) if "Authorization" in seen.headers]) == 2
    assert cloud.to("https://login.microsoftonline.com") == []


async def test_a_local_certificate_file_works_too(
    cloud: FakeCloud, certificate: Certificate, tmp_path: Path
) -> None:
    path = tmp_path / "graph-app.pfx"
    path.write_bytes(certificate.pkcs12)
    settings = GraphSettings(auth=GraphAuth.CERTIFICATE, client_id=APP_ID,
                             certificate_path=str(path))
    credentials = GraphCredentials(settings, transports=InProcessTransports(cloud))
    try:
        await bearer_token(credentials, FABRIKAM)
    finally:
        await credentials.close()

    [exchange] = cloud.to("https://login.microsoftonline.com")
    assert_signed_by(exchange.form["client_assertion"], certificate.certificate, FABRIKAM)
    assert cloud.to(VAULT_URL) == []


def test_a_missing_certificate_file_names_the_setting(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.pfx")
    settings = GraphSettings(auth=GraphAuth.CERTIFICATE, client_id=APP_ID,
                             certificate_path=missing)

    with pytest.raises(GraphCredentialError) as caught:
        GraphCredentials(settings).auth_provider(CONTOSO)

    assert f"GRAPH_CERTIFICATE_PATH={missing!r}" in str(caught.value)


# -- staticToken, managedIdentity ---------------------------------------------------------------


async def test_the_static_token_serves_every_tenant_and_has_no_roles() -> None:
    settings = GraphSettings(base_url="http://127.0.0.1:7071/v1.0", auth=GraphAuth.STATIC_TOKEN,
                             static_token="simulator-token")
    credentials = GraphCredentials(settings)
    request = RequestInformation()
    request.url = "http://127.0.0.1:7071/v1.0/users"

    for tenant in (CONTOSO, FABRIKAM):
        await credentials.auth_provider(tenant).authenticate_request(request)
        assert request.headers.get("Authorization") == {"Bearer simulator-token"}
        request.headers.remove("Authorization")
        assert await credentials.granted_roles(tenant) is None
    await credentials.close()


async def test_the_managed_identity_mode_asks_the_identity_for_graph(cloud: FakeCloud) -> None:
    settings = GraphSettings(auth=GraphAuth.MANAGED_IDENTITY, client_id=IDENTITY_ID)
    credentials = GraphCredentials(settings, transports=InProcessTransports(cloud))
    try:
        token = await bearer_token(credentials, CONTOSO)
    finally:
        await credentials.close()

    [identity] = cloud.to("http://169.254.169.254")
    assert identity.query["resource"] == "https://graph.microsoft.com"
    assert identity.query["client_id"] == IDENTITY_ID
    assert token == "identity-token-1-for-https://graph.microsoft.com"
    assert cloud.to("https://login.microsoftonline.com") == []


# -- token_roles --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "roles"),
    [
        (unsigned_jwt({"roles": ["User.Read.All", "GroupMember.Read.All"]}),
         {"User.Read.All", "GroupMember.Read.All"}),
        (unsigned_jwt({"tid": CONTOSO}), frozenset()),
        (unsigned_jwt({"roles": "User.Read.All"}), frozenset()),
        ("simulator-token", None),
        ("a.b.c", None),
        ("a.W10.c", None),  # a JSON list, not claims
    ],
)
def test_token_roles_reads_the_roles_claim(token: str, roles: frozenset[str] | None) -> None:
    assert token_roles(token) == roles


# -- GRAPH_IDENTITY_URL: the redirect -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "redirected"),
    [
        (f"https://login.microsoftonline.com/{CONTOSO}/oauth2/v2.0/token",
         f"http://127.0.0.1:7071/{CONTOSO}/oauth2/v2.0/token"),
        ("http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
         "&resource=api://AzureADTokenExchange",
         "http://127.0.0.1:7071/metadata/identity/oauth2/token?api-version=2018-02-01"
         "&resource=api://AzureADTokenExchange"),
        ("https://graph.microsoft.com/v1.0/users", "https://graph.microsoft.com/v1.0/users"),
        (f"{VAULT_URL}/secrets/x", f"{VAULT_URL}/secrets/x"),
        ("http://login.microsoftonline.com/t", "http://login.microsoftonline.com/t"),
        ("https://169.254.169.254/metadata", "https://169.254.169.254/metadata"),
    ],
)
def test_the_redirect_moves_only_entra_and_imds(url: str, redirected: str) -> None:
    assert IdentityRedirect("http://127.0.0.1:7071").url_for(url) == redirected


def test_the_redirect_keeps_a_path_prefix_of_the_stand_in() -> None:
    redirect = IdentityRedirect("http://localhost:9000/entra/")

    assert redirect.url_for("https://login.microsoftonline.com/t/oauth2/v2.0/token?x=1") == (
        "http://localhost:9000/entra/t/oauth2/v2.0/token?x=1"
    )


@dataclass
class EchoServer:
    """A loopback HTTP server that answers every request with what it received."""

    name: str
    received: list[str] = field(default_factory=list)
    port: int = 0

    async def _echo(self, request: web.Request) -> web.Response:
        self.received.append(str(request.rel_url))
        return web.json_response({"server": self.name, "path_qs": str(request.rel_url),
                                  "form": dict(await request.post())})

    async def serve(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._echo)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.port = runner.addresses[0][1]
        return runner

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[EchoServer, EchoServer]]:
    """A stand-in and another host, each on its own loop in a thread (the sync transport blocks
    its caller, as azure-identity's sync managed identity credential does)."""
    stand_in, other = EchoServer("stand-in"), EchoServer("other")
    threads = [ServingThread(server.name, server.serve, _shutdown) for server in (stand_in, other)]
    for thread in threads:
        thread.start()
    yield stand_in, other
    for thread in threads:
        thread.stop()


async def _shutdown(runner: web.AppRunner) -> None:
    await runner.cleanup()


async def test_the_async_redirect_sends_entra_requests_to_the_stand_in_over_http(
    servers: tuple[EchoServer, EchoServer],
) -> None:
    stand_in, other = servers
    async with AsyncRedirectingTransport(IdentityRedirect(stand_in.url), AioHttpTransport()) as t:
        token = await t.send(HttpRequest(
            "POST", f"https://login.microsoftonline.com/{CONTOSO}/oauth2/v2.0/token?p=1",
            data={"grant_type": "client_credentials"},
        ))
        await token.read()
        untouched = await t.send(HttpRequest("GET", f"{other.url}/v1.0/users?$top=1"))
        await untouched.read()

    assert token.json() == {"server": "stand-in", "path_qs": f"/{CONTOSO}/oauth2/v2.0/token?p=1",
                            "form": {"grant_type": "client_credentials"}}
    assert untouched.json()["server"] == "other"
    assert untouched.json()["path_qs"] == "/v1.0/users?$top=1"


async def test_the_sync_redirect_sends_imds_requests_to_the_stand_in_over_http(
    servers: tuple[EchoServer, EchoServer],
) -> None:
    stand_in, other = servers

    def send_both() -> tuple[Any, Any]:
        with RedirectingTransport(IdentityRedirect(stand_in.url), RequestsTransport()) as t:
            identity = t.send(HttpRequest(
                "GET", "http://169.254.169.254/metadata/identity/oauth2/token",
                params={"api-version": "2018-02-01", "resource": "api://AzureADTokenExchange"},
            ))
            identity.read()
            untouched = t.send(HttpRequest("GET", f"{other.url}/elsewhere"))
            untouched.read()
            return identity, untouched

    identity, untouched = await asyncio.to_thread(send_both)

    assert identity.json()["server"] == "stand-in"
    assert identity.json()["path_qs"] == (
        "/metadata/identity/oauth2/token?api-version=2018-02-01"
        "&resource=api://AzureADTokenExchange"
    )
    assert untouched.json() == {"server": "other", "path_qs": "/elsewhere", "form": {}}


@dataclass
class EntraStandIn:
    """A loopback stand-in for Entra ID's token endpoint and IMDS, like the simulator's."""

    received: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    async def _token(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.received.append((request.path, form))
        tenant = request.match_info["tenant"]
        token = unsigned_jwt({"tid": tenant, "roles": [f"Granted.In.{tenant[:8]}"]})
        return web.json_response({"token_type": "Bearer", "expires_in": 3599,
                                  "access_token": token})

    async def _identity(self, request: web.Request) -> web.Response:
        self.received.append((request.path, dict(request.query)))
        return web.json_response({"access_token": "stand-in-identity-token",
                                  "expires_in": "86399", "token_type": "Bearer",
                                  "resource": request.query["resource"]})

    async def serve(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_get("/metadata/identity/oauth2/token", self._identity)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.port = runner.addresses[0][1]
        return runner


async def test_with_graph_identity_url_the_real_credentials_reach_the_stand_in() -> None:
    stand_in = EntraStandIn()
    thread = ServingThread("entra-stand-in", stand_in.serve, _shutdown)
    thread.start()
    settings = GraphSettings(
        base_url="http://127.0.0.1:7071/v1.0", auth=GraphAuth.FEDERATED_IDENTITY,
        client_id=APP_ID, managed_identity_client_id=IDENTITY_ID,
        identity_url=f"http://127.0.0.1:{stand_in.port}",
    )
    credentials = GraphCredentials(settings)  # azure-core's own transports, redirected
    try:
        contoso = await credentials.granted_roles(CONTOSO)
        fabrikam = await credentials.granted_roles(FABRIKAM)
    finally:
        await credentials.close()
        thread.stop()

    assert contoso == frozenset({f"Granted.In.{CONTOSO[:8]}"})
    assert fabrikam == frozenset({f"Granted.In.{FABRIKAM[:8]}"})
    (identity_path, identity_query), *exchanges = stand_in.received
    assert identity_path == "/metadata/identity/oauth2/token"
    assert identity_query["resource"] == "api://AzureADTokenExchange"
    assert identity_query["client_id"] == IDENTITY_ID
    assert [path for path, _ in exchanges] == [
        f"/{CONTOSO}/oauth2/v2.0/token", f"/{FABRIKAM}/oauth2/v2.0/token"
    ]
    assert all(form["client_assertion"] == "stand-in-identity-token" for _, form in exchanges)
