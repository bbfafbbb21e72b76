"""Stand-ins for Entra ID's token endpoint and the managed identity endpoint (IMDS), and the
JWTs the simulator issues and checks.

In production the app reads each customer tenant as one multi-tenant app registration with no
secret: its Function App's managed identity gets a token for `api://AzureADTokenExchange` from
IMDS, and the customer tenant's token endpoint takes that token as the client assertion (a
federated identity credential on the app registration trusts the identity) and answers a Graph
token whose `roles` are the application permissions the customer's admin granted. The simulator
plays both on its own HTTP server, so the app's real credential code (azure-identity) runs
against it:

* `GET /metadata/identity/oauth2/token?api-version=..&resource=api://AzureADTokenExchange`,
  header `Metadata: true` (IMDS): a managed-identity token, the answer's fields strings as
  IMDS sends them. Without the header 400, which is also what azure-identity's probe (a request
  without the header) takes as "IMDS is there".
* `POST /{tenant}/oauth2/v2.0/token` (Entra), form-encoded `grant_type=client_credentials`,
  `client_id`, `scope=https://graph.microsoft.com/.default`, `client_assertion_type` (JWT
  bearer) and `client_assertion` (a token from the IMDS stand-in): a Graph token for that
  tenant, or an error in Entra's shape (`error`, `error_description` starting `AADSTS<code>:`,
  `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`).

Tokens are JWTs signed HS256 with a key made at random for each simulator, so a token edited by
hand (another `tid`, more `roles`) fails its signature, and a token from another simulator run is
not accepted. Times (`iat`, `nbf`, `exp`) come from the simulator's wall clock, which tests can
move; they are checked without the few minutes of clock skew Entra and Graph allow.

Plain synchronous code: the `Simulator` passes in its tenants (`TenantAccess`) and holds its
lock around every call.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import jwt

from graph_simulator.protocol import Reply

#: The application (client) id of the app registration the simulator's tokens are issued to;
#: Graph names it in `x-ms-throttle-scope`.
SIMULATOR_APP_ID: Final = "5e1a7c3d-0000-4000-8000-00000000a99e"
#: The tenant the app registration and its managed identity live in (the publisher's own, not a
#: customer's): the issuer of managed-identity tokens.
HOME_TENANT_ID: Final = "5e1a7c3d-0000-4000-8000-0000000000e0"
#: The client id of the user-assigned managed identity IMDS answers for (`client_id=`).
MANAGED_IDENTITY_CLIENT_ID: Final = "5e1a7c3d-0000-4000-8000-0000000001d0"
#: The managed identity's principal (object) id: `sub` and `oid` of its tokens, and the subject
#: the app registration's federated identity credential trusts.
MANAGED_IDENTITY_PRINCIPAL_ID: Final = "5e1a7c3d-0000-4000-8000-0000000001d1"
MANAGED_IDENTITY_ISSUER: Final = f"https://login.microsoftonline.com/{HOME_TENANT_ID}/v2.0"

GRAPH_RESOURCE: Final = "https://graph.microsoft.com"
GRAPH_SCOPE: Final = f"{GRAPH_RESOURCE}/.default"
#: Graph's own application id, which Entra also accepts (and Graph also takes as audience).
_GRAPH_APP_ID: Final = "00000003-0000-0000-c000-000000000000"
_GRAPH_AUDIENCES: Final = frozenset({GRAPH_RESOURCE, f"{GRAPH_RESOURCE}/", _GRAPH_APP_ID})
TOKEN_EXCHANGE_AUDIENCE: Final = "api://AzureADTokenExchange"  # noqa: S105 -- not a secret
JWT_BEARER_ASSERTION: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

GRAPH_TOKEN_SECONDS: Final = 3600
#: Managed-identity tokens live about a day (IMDS answers `expires_in` 86399 or so).
MANAGED_IDENTITY_TOKEN_SECONDS: Final = 86400

_ALGORITHM: Final = "HS256"
_JSON: Final = "application/json; charset=utf-8"


#: Why a token was refused.
TokenProblem = Literal["malformed", "signature", "audience", "issuer", "expired", "notYetValid"]


class InvalidTokenError(Exception):
    """A token that must not be accepted; `tenant_id` is the tenant it names when its signature
    holds (so the refusal can be put down to that tenant), else None."""

    def __init__(self, problem: TokenProblem, message: str, tenant_id: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message
        self.tenant_id = tenant_id


@dataclass(frozen=True)
class GraphTokenClaims:
    """What a valid Graph token says: the tenant it is for and the roles it carries."""

    tenant_id: str
    roles: frozenset[str]


@dataclass(frozen=True)
class TenantAccess:
    """A tenant as the token endpoint sees it: its id, whether the customer's admin consented
    to the app, and the application permissions a token issued now carries."""

    tenant_id: str
    consented: bool
    roles: tuple[str, ...]


class TokenSigner:
    """Signs and checks the simulator's JWTs with a key of its own, made at random."""

    def __init__(self, wall_clock: Callable[[], float]) -> None:
        """`wall_clock` gives the Unix time (seconds) tokens are issued and checked at."""
        self._key = secrets.token_bytes(32)
        self._wall_clock = wall_clock

    def now(self) -> int:
        """The wall clock, in whole seconds."""
        return int(self._wall_clock())

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A JWT with these claims."""
        return jwt.encode(dict(claims), self._key, algorithm=_ALGORITHM)

    def claims(self, token: str) -> dict[str, Any]:
        """The claims of a token this signer signed; InvalidTokenError (`malformed` or `signature`)
        otherwise. Nothing but the signature is checked here."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token, self._key, algorithms=[_ALGORITHM],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "verify_aud": False, "verify_iss": False, "verify_sub": False},
            )
        except jwt.InvalidSignatureError:
            raise InvalidTokenError("signature", "Invalid signature.") from None
        except jwt.PyJWTError:
            raise InvalidTokenError("malformed", "The token is not a well-formed JWT.") from None
        return claims

    def check_lifetime(self, claims: Mapping[str, Any], tenant_id: str | None = None) -> None:
        """InvalidTokenError (`expired`, `notYetValid`) unless `nbf` <= now < `exp`."""
        now = self.now()
        expires, not_before = claims.get("exp"), claims.get("nbf", claims.get("iat"))
        if not isinstance(expires, int) or now >= expires:
            raise InvalidTokenError("expired", "Lifetime validation failed, the token is expired.",
                                tenant_id)
        if isinstance(not_before, int) and now < not_before:
            raise InvalidTokenError("notYetValid",
                                "Lifetime validation failed, the token is not yet valid.",
                                tenant_id)

    def graph_token(self, tenant_id: str, roles: tuple[str, ...],
                    lifetime_seconds: int = GRAPH_TOKEN_SECONDS) -> str:
        """An app-only Graph token for `tenant_id` carrying `roles`, as Entra issues it."""
        now = self.now()
        principal = service_principal_id(tenant_id)
        return self.sign({
            "aud": GRAPH_RESOURCE, "iss": graph_issuer(tenant_id), "iat": now, "nbf": now,
            "exp": now + lifetime_seconds, "tid": tenant_id, "appid": SIMULATOR_APP_ID,
            "appidacr": "2", "idtyp": "app", "oid": principal, "sub": principal,
            "roles": sorted(roles), "ver": "1.0", "uti": uuid.uuid4().hex,
        })

    def managed_identity_token(self) -> str:
        """A token of the managed identity for `api://AzureADTokenExchange`, as IMDS issues it."""
        now = self.now()
        return self.sign({
            "aud": TOKEN_EXCHANGE_AUDIENCE, "iss": MANAGED_IDENTITY_ISSUER, "iat": now,
            "nbf": now, "exp": now + MANAGED_IDENTITY_TOKEN_SECONDS, "tid": HOME_TENANT_ID,
            "sub": MANAGED_IDENTITY_PRINCIPAL_ID, "oid": MANAGED_IDENTITY_PRINCIPAL_ID,
            "azp": MANAGED_IDENTITY_CLIENT_ID, "appid": MANAGED_IDENTITY_CLIENT_ID,
            "idtyp": "app", "ver": "2.0", "uti": uuid.uuid4().hex,
        })

    def read_graph_token(self, token: str) -> GraphTokenClaims:
        """The tenant and roles of a valid Graph token; InvalidTokenError with Graph's reason for
        anything else (whether the tenant is served is the caller's to check)."""
        claims = self.claims(token)
        tenant_id = claims.get("tid")
        if not isinstance(tenant_id, str) or not tenant_id:
            raise InvalidTokenError("malformed", "The token has no tenant (tid).")
        if claims.get("aud") not in _GRAPH_AUDIENCES:
            raise InvalidTokenError("audience", "Invalid audience.", tenant_id)
        if claims.get("iss") != graph_issuer(tenant_id):
            raise InvalidTokenError("issuer", "Invalid issuer.", tenant_id)
        self.check_lifetime(claims, tenant_id)
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise InvalidTokenError("malformed", "The token's roles are not a list of names.",
                                tenant_id)
        return GraphTokenClaims(tenant_id, frozenset(roles))


def graph_issuer(tenant_id: str) -> str:
    """The `iss` of Graph tokens for this tenant (Entra's v1.0 issuer, as Graph tokens have)."""
    return f"https://sts.windows.net/{tenant_id}/"


def service_principal_id(tenant_id: str) -> str:
    """The object id of the app's service principal in this tenant (`oid` of its tokens): a
    stable id derived from the tenant, as each tenant's service principal has its own."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{graph_issuer(tenant_id)}{SIMULATOR_APP_ID}"))


# -- Entra's token endpoint ------------------------------------------------------------------


class _EntraError(Exception):
    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.code = code
        self.description = description


def _missing(parameter: str) -> _EntraError:
    return _EntraError(400, "invalid_request", 900144, "The request body must contain the "
                         f"following parameter: '{parameter}'.")


def answer_token_request(
    signer: TokenSigner,
    tenant: str,
    *,
    method: str,
    form: Mapping[str, str],
    headers: Mapping[str, str],
    find_tenant: Callable[[str], TenantAccess | None],
) -> Reply:
    """Answer `method /{tenant}/oauth2/v2.0/token` with this form body as Entra would for the
    simulator's app: a Graph token, or Entra's error. `find_tenant` looks a tenant up by the
    path segment (its id or default domain); None: Entra has no such tenant."""
    correlation_id = (headers.get("client-request-id") or headers.get("x-ms-client-request-id")
                      or str(uuid.uuid4()))
    try:
        access = _check_token_request(signer, tenant, method, form, find_tenant)
    except _EntraError as refusal:
        return _entra_error(refusal, signer.now(), correlation_id)
    body = {"token_type": "Bearer", "expires_in": GRAPH_TOKEN_SECONDS - 1,
            "ext_expires_in": GRAPH_TOKEN_SECONDS - 1,
            "access_token": signer.graph_token(access.tenant_id, access.roles)}
    return Reply(200, body, {"client-request-id": correlation_id}, _JSON)


def _check_token_request(
    signer: TokenSigner,
    tenant: str,
    method: str,
    form: Mapping[str, str],
    find_tenant: Callable[[str], TenantAccess | None],
) -> TenantAccess:
    """The tenant a token may be issued for, or the _EntraError Entra would answer (checked
    in about Entra's order: the request, the tenant, the client, the scope, the assertion)."""
    if method != "POST":
        raise _EntraError(400, "invalid_request", 900561, "The endpoint only accepts POST "
                            f"requests. Received a {method} request.")
    access = find_tenant(tenant)
    if access is None:
        raise _EntraError(400, "invalid_request", 90002, f"Tenant '{tenant}' not found. Check "
                            "to make sure you have the correct tenant ID and are signing into "
                            "the correct cloud.")
    grant_type = form.get("grant_type")
    if not grant_type:
        raise _missing("grant_type")
    if grant_type != "client_credentials":
        raise _EntraError(400, "unsupported_grant_type", 70003, "The app requested an "
                            f"unsupported grant type '{grant_type}'.")
    client_id = form.get("client_id")
    if not client_id:
        raise _missing("client_id")
    if client_id != SIMULATOR_APP_ID:
        raise _EntraError(400, "unauthorized_client", 700016, "Application with identifier "
                            f"'{client_id}' was not found in the directory '{tenant}'. This can "
                            "happen if the application has not been installed by the "
                            "administrator of the tenant or consented to by any user in the "
                            "tenant. You may have sent your authentication request to the "
                            "wrong tenant.")
    if not access.consented:
        raise _EntraError(400, "invalid_client", 7000229, f"The client application "
                            f"{client_id} is missing service principal in the tenant "
                            f"{access.tenant_id}.")
    _check_scope(form.get("scope"), tenant)
    _check_assertion(signer, form)
    return access


def _check_scope(scope: str | None, tenant: str) -> None:
    if not scope:
        raise _missing("scope")
    resource = scope.removesuffix("/.default")
    if resource == scope or " " in scope:
        raise _EntraError(400, "invalid_scope", 1002012, f"The provided value for scope "
                            f"{scope} is not valid. Client credential flows must have a scope "
                            "value with /.default suffixed to the resource identifier "
                            "(application ID URI).")
    if resource not in _GRAPH_AUDIENCES:
        raise _EntraError(400, "invalid_resource", 500011, f"The resource principal named "
                            f"{resource} was not found in the tenant named {tenant}. (The "
                            "simulator issues Graph tokens only.)")


def _check_assertion(signer: TokenSigner, form: Mapping[str, str]) -> None:
    """The client assertion must be the managed identity's token that the app registration's
    federated identity credential trusts (issuer, subject, audience)."""
    if "client_secret" in form:
        raise _EntraError(401, "invalid_client", 7000215, "Invalid client secret provided. "
                            "(The simulator's app has no secrets, only its federated identity "
                            "credential.)")
    assertion = form.get("client_assertion")
    if not assertion:
        raise _EntraError(401, "invalid_client", 7000216, "'client_assertion', "
                            "'client_secret' or 'request' is required for the "
                            "'client_credentials' grant type.")
    if form.get("client_assertion_type") != JWT_BEARER_ASSERTION:
        raise _EntraError(400, "invalid_request", 90014, "The required field "
                            "'client_assertion_type' is missing from the credential or is not "
                            f"'{JWT_BEARER_ASSERTION}'.")
    try:
        claims = signer.claims(assertion)
        signer.check_lifetime(claims)
    except InvalidTokenError as rejected:
        if rejected.problem == "malformed":
            raise _EntraError(400, "invalid_request", 50027,
                                "JWT token is invalid or malformed.") from None
        if rejected.problem == "signature":
            raise _EntraError(401, "invalid_client", 700027,
                                "Client assertion failed signature validation.") from None
        raise _EntraError(401, "invalid_client", 700024, "Client assertion is not within its "
                            "valid time range.") from None
    for claim, expected, code in (("iss", MANAGED_IDENTITY_ISSUER, 700211),
                                  ("sub", MANAGED_IDENTITY_PRINCIPAL_ID, 700213),
                                  ("aud", TOKEN_EXCHANGE_AUDIENCE, 700212)):
        if claims.get(claim) != expected:
            name = {"iss": "issuer", "sub": "subject", "aud": "audience"}[claim]
            raise _EntraError(401, "invalid_client", code, "No matching federated identity "
                                f"record found for presented assertion {name} "
                                f"'{claims.get(claim)}'. Please check your federated identity "
                                "credential Subject, Audience and Issuer against the presented "
                                "assertion.")


def _entra_error(refusal: _EntraError, now: int, correlation_id: str) -> Reply:
    trace_id = str(uuid.uuid4())
    timestamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return Reply(refusal.status, {
        "error": refusal.error,
        "error_description": f"AADSTS{refusal.code}: {refusal.description} Trace ID: "
                             f"{trace_id} Correlation ID: {correlation_id} Timestamp: "
                             f"{timestamp}",
        "error_codes": [refusal.code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={refusal.code}",
    }, {"client-request-id": correlation_id}, _JSON)


# -- IMDS ------------------------------------------------------------------------------------


def answer_imds_request(
    signer: TokenSigner, *, method: str, query: Mapping[str, str], headers: Mapping[str, str]
) -> Reply:
    """Answer `method /metadata/identity/oauth2/token?query` as IMDS does on a host whose one
    managed identity is `MANAGED_IDENTITY_CLIENT_ID`."""
    if method != "GET":
        return _imds_error(405, "invalid_request", f"The {method} method is not allowed.")
    if headers.get("Metadata", "").lower() != "true":
        return _imds_error(400, "invalid_request", "Required metadata header not specified")
    for parameter in ("api-version", "resource"):
        if not query.get(parameter):
            return _imds_error(400, "invalid_request",
                               f"Required query variable '{parameter}' is missing")
    if (query.get("client_id", MANAGED_IDENTITY_CLIENT_ID) != MANAGED_IDENTITY_CLIENT_ID
            or query.get("object_id", MANAGED_IDENTITY_PRINCIPAL_ID)
            != MANAGED_IDENTITY_PRINCIPAL_ID
            or "msi_res_id" in query or "mi_res_id" in query):
        return _imds_error(400, "invalid_request", "Identity not found")
    resource = query["resource"]
    if resource.removesuffix("/.default") != TOKEN_EXCHANGE_AUDIENCE:
        return _imds_error(400, "invalid_resource", f"AADSTS500011: The resource principal "
                           f"named {resource} was not found in the tenant named "
                           f"{HOME_TENANT_ID}. (The simulator's IMDS issues tokens for "
                           f"{TOKEN_EXCHANGE_AUDIENCE} only.)")
    now = signer.now()
    lifetime = str(MANAGED_IDENTITY_TOKEN_SECONDS - 1)
    # IMDS sends every field as a string, numbers included.
    return Reply(200, {
        "access_token": signer.managed_identity_token(),
        "client_id": MANAGED_IDENTITY_CLIENT_ID,
        "expires_in": lifetime,
        "expires_on": str(now + MANAGED_IDENTITY_TOKEN_SECONDS - 1),
        "ext_expires_in": lifetime,
        "not_before": str(now),
        "resource": resource,
        "token_type": "Bearer",
    }, {}, _JSON)


def _imds_error(status: int, error: str, description: str) -> Reply:
    return Reply(status, {"error": error, "error_description": description}, {}, _JSON)
