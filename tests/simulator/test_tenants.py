"""Many customer tenants in one simulator: each a world of its own, reached with tokens that
name it; and the Entra token endpoint and IMDS stand-ins that issue those tokens, also to the
real azure-identity credentials."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity.aio import ClientAssertionCredential, ManagedIdentityCredential

from graph_simulator import (
    EVERY_TENANT,
    GRAPH_SCOPE,
    MANAGED_IDENTITY_CLIENT_ID,
    MANAGED_IDENTITY_PRINCIPAL_ID,
    SIMULATOR_APP_ID,
    TOKEN_EXCHANGE_AUDIENCE,
    ScenarioError,
    SimulatorServer,
    parse_scenario,
)
from graph_simulator.permissions import KNOWN_PERMISSIONS
from tests.simulator.support import (
    ANN,
    ANNS_DR,
    AUTH,
    BOB,
    EXAMPLE,
    FREE_DR,
    NUMBERS,
    TENANT,
    VOICE_GROUP,
    FakeClock,
    run_assign,
)

FABRIKAM = "2d4f6a8c-1b3e-4d5f-8a7b-9c0d1e2f3a4b"
FAY = "0f3a5c2e-0000-4000-8000-0000000000f6"  # a user only Fabrikam has
FABRIKAM_GRANTS = ["GroupMember.Read.All", "TeamsTelephoneNumber.Read.All", "User.Read.All"]
MEMBERS = f"/groups/{VOICE_GROUP}/transitiveMembers/graph.user"
ADVANCED = {"ConsistencyLevel": "eventual"}
IMDS_PATH = "/metadata/identity/oauth2/token"
IMDS_QUERY = {"api-version": "2018-02-01", "resource": TOKEN_EXCHANGE_AUDIENCE,
              "client_id": MANAGED_IDENTITY_CLIENT_ID}
ENTRA_HOST = "https://login.microsoftonline.com"
IMDS_HOST = "http://169.254.169.254"


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


def fabrikam_entry() -> dict[str, Any]:
    """A second customer with the same user ids and numbers as Contoso (the example), other
    names, Ann's number free, one more user, and fewer permissions granted."""
    data = example()
    del data["version"]
    text = json.dumps(data).replace("contoso.example", "fabrikam.example")
    entry: dict[str, Any] = json.loads(text)
    entry["tenant"]["id"] = FABRIKAM
    entry["tenant"]["grantedPermissions"] = FABRIKAM_GRANTS
    entry["displayName"] = "Fabrikam"
    entry["numberAssignments"][0]["assignmentTargetId"] = None
    entry["users"].append({"id": FAY, "userPrincipalName": "fay@fabrikam.example"})
    return entry


def two_tenants(*, fabrikam_consented: bool = True) -> dict[str, Any]:
    contoso = example()
    del contoso["version"]
    contoso["displayName"] = "Contoso"
    fabrikam = {**fabrikam_entry(), "consented": fabrikam_consented}
    return {"version": 1, "tenants": [contoso, fabrikam]}


@pytest.fixture
def wall_clock() -> FakeClock:
    return FakeClock(start=time.time())


@pytest.fixture
def sim(wall_clock: FakeClock) -> Iterator[SimulatorServer]:
    # The monotonic clock stands still too: the rate limit never refills between requests.
    with SimulatorServer(parse_scenario(two_tenants()), clock=FakeClock(),
                         wall_clock=wall_clock) as server:
        yield server


def graph(sim: SimulatorServer, token: str) -> httpx.Client:
    return httpx.Client(base_url=sim.base_url,
                        headers={"Authorization": f"Bearer {token}", **ADVANCED})


@pytest.fixture
def contoso(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with graph(sim, sim.issue_token(TENANT)) as http:
        yield http


@pytest.fixture
def fabrikam(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with graph(sim, sim.issue_token(FABRIKAM)) as http:
        yield http


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's claims, unchecked (the test reads what the simulator put in)."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def with_claims(token: str, **changes: Any) -> str:
    """The token with some claims rewritten and its signature kept: a forgery."""
    header, payload, signature = token.split(".")
    claims = {**json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))),
              **changes}
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


# -- tenants served independently ------------------------------------------------------------


def test_each_tenant_is_served_from_its_own_world(sim: SimulatorServer, contoso: httpx.Client,
                                                  fabrikam: httpx.Client) -> None:
    assert sim.tenant_ids() == [TENANT, FABRIKAM]
    assert contoso.get(f"/users/{ANN}").json()["userPrincipalName"] == "ann@contoso.example"
    assert fabrikam.get(f"/users/{ANN}").json()["userPrincipalName"] == "ann@fabrikam.example"
    numbers = {tenant: {n["telephoneNumber"]: n["assignmentTargetId"]
                        for n in client.get(NUMBERS).json()["value"]}
               for tenant, client in ((TENANT, contoso), (FABRIKAM, fabrikam))}
    assert numbers[TENANT][ANNS_DR] == ANN
    assert numbers[FABRIKAM][ANNS_DR] is None


def test_objects_of_another_tenant_are_not_there(contoso: httpx.Client,
                                                 fabrikam: httpx.Client) -> None:
    assert fabrikam.get(f"/users/{FAY}").status_code == 200
    missing = contoso.get(f"/users/{FAY}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"


def test_a_change_in_one_tenant_leaves_the_other_alone(sim: SimulatorServer,
                                                       contoso: httpx.Client,
                                                       fabrikam: httpx.Client) -> None:
    assert run_assign(contoso, FREE_DR, BOB)["status"] == "succeeded"
    assert fabrikam.get(NUMBERS).status_code == 200
    assert sim.number_assignments(TENANT)[FREE_DR] == BOB
    assert sim.number_assignments(FABRIKAM)[FREE_DR] is None
    assert sim.number_assignments() == sim.number_assignments(TENANT)
    # The log says which tenant's world served each request: Fabrikam's saw one read only.
    log = sim.request_log(EVERY_TENANT)
    assert {entry["tenant"] for entry in log} == {TENANT, FABRIKAM}
    served_fabrikam = [(entry["method"], entry["route"]) for entry in log
                       if entry["tenant"] == FABRIKAM]
    assert served_fabrikam == [("GET", "listNumberAssignments")]
    assert sim.request_log(FABRIKAM) == [entry for entry in log if entry["tenant"] == FABRIKAM]
    assert sim.request_counts(FABRIKAM) == {"listNumberAssignments": 1}
    assert sim.request_counts(TENANT)["assignNumber"] == 1


def test_the_fixed_token_means_the_first_tenant(sim: SimulatorServer) -> None:
    with httpx.Client(base_url=sim.base_url, headers=AUTH) as http:
        assert http.get(f"/users/{ANN}").json()["userPrincipalName"] == "ann@contoso.example"
        assert http.get(f"/users/{FAY}").status_code == 404
    assert [entry["tenant"] for entry in sim.request_log()] == [TENANT, TENANT]


def test_state_behaviour_faults_and_rate_limits_are_per_tenant(
        sim: SimulatorServer, contoso: httpx.Client, fabrikam: httpx.Client) -> None:
    sim.inject_fault("getUser", 503, tenant=FABRIKAM)
    assert contoso.get(f"/users/{ANN}").status_code == 200
    assert fabrikam.get(f"/users/{ANN}").status_code == 503
    sim.set_behaviour(FABRIKAM, rateLimit={"requestsPerSecond": 1, "scope": "teamsAdmin"})
    assert fabrikam.get(NUMBERS).status_code == 200
    throttled = fabrikam.get(NUMBERS)
    assert throttled.status_code == 429
    assert throttled.headers["x-ms-throttle-scope"].endswith(f"/{SIMULATOR_APP_ID}/{FABRIKAM}")
    assert all(contoso.get(NUMBERS).status_code == 200 for _ in range(3))
    assert FAY in {c["id"] for c in sim.user_configurations(FABRIKAM)}
    assert FAY not in {c["id"] for c in sim.user_configurations(TENANT)}
    with pytest.raises(ScenarioError, match="serves no tenant 'nobody'"):
        sim.number_assignments("nobody")


def test_directory_replacement_and_scenario_load_for_one_tenant(
        sim: SimulatorServer, contoso: httpx.Client, fabrikam: httpx.Client) -> None:
    entry = fabrikam_entry()
    entry["groups"][0]["members"] = [FAY]
    sim.replace_directory(parse_scenario({"version": 1, **entry}).directory, tenant=FABRIKAM)
    assert [m["id"] for m in fabrikam.get(MEMBERS, params={"$count": "true"}).json()["value"]] \
        == [FAY]
    assert FAY not in {m["id"] for m in
                       contoso.get(MEMBERS, params={"$count": "true"}).json()["value"]}
    sim.grant_permissions(None, tenant=FABRIKAM)
    with graph(sim, sim.issue_token(FABRIKAM)) as full_rights:
        assert run_assign(full_rights, FREE_DR, FAY)["status"] == "succeeded"
    sim.load_scenario(parse_scenario({"version": 1, **fabrikam_entry()}), tenant=FABRIKAM)
    assert sim.number_assignments(FABRIKAM)[FREE_DR] is None
    with pytest.raises(ScenarioError, match="one-tenant scenario of that tenant"):
        sim.load_scenario(EXAMPLE, tenant=FABRIKAM)


def test_state_file_keeps_each_tenants_numbers(tmp_path: Path) -> None:
    state_file = tmp_path / "teams-state.json"
    scenario = parse_scenario(two_tenants())
    with SimulatorServer(scenario, state_file=state_file) as first:
        first.grant_permissions(None, tenant=FABRIKAM)
        with graph(first, first.issue_token(FABRIKAM)) as http:
            assert run_assign(http, FREE_DR, FAY)["status"] == "succeeded"
    assert set(json.loads(state_file.read_text())["tenants"]) == {TENANT, FABRIKAM}
    with SimulatorServer(scenario, state_file=state_file) as second:
        assert second.number_assignments(FABRIKAM)[FREE_DR] == FAY
        assert second.number_assignments(TENANT)[FREE_DR] is None


# -- tokens ----------------------------------------------------------------------------------


def test_issued_token_names_tenant_app_and_granted_roles(sim: SimulatorServer) -> None:
    claims = claims_of(sim.issue_token(FABRIKAM))
    assert claims["aud"] == "https://graph.microsoft.com"
    assert claims["iss"] == f"https://sts.windows.net/{FABRIKAM}/"
    assert claims["tid"] == FABRIKAM
    assert claims["appid"] == SIMULATOR_APP_ID
    assert claims["roles"] == sorted(FABRIKAM_GRANTS)
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["nbf"] == claims["iat"]
    contoso_claims = claims_of(sim.issue_token(TENANT))
    assert contoso_claims["roles"] == sorted(KNOWN_PERMISSIONS)  # grantedPermissions null
    assert contoso_claims["oid"] != claims["oid"]  # a service principal per tenant


@pytest.mark.parametrize("forgery", ["tid", "roles", "other key"])
def test_forged_token_is_refused(sim: SimulatorServer, forgery: str) -> None:
    token = sim.issue_token(FABRIKAM)
    if forgery == "tid":
        token = with_claims(token, tid=TENANT, iss=f"https://sts.windows.net/{TENANT}/")
    elif forgery == "roles":
        token = with_claims(token, roles=sorted(KNOWN_PERMISSIONS))
    else:
        token = jwt.encode(claims_of(token), "a key the simulator does not have " * 2,
                           algorithm="HS256")
    with graph(sim, token) as http:
        response = http.get(NUMBERS)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert "signature" in response.json()["error"]["message"]
    # A forgery names no tenant the simulator can trust: it touched no world.
    assert sim.request_log(EVERY_TENANT)[-1]["tenant"] is None
    assert sim.request_counts(FABRIKAM) == {}
    assert sim.request_counts() == {"unauthorized": 1}


def test_token_of_a_tenant_no_longer_served_is_refused(sim: SimulatorServer) -> None:
    token = sim.issue_token(FABRIKAM)
    sim.load_scenario(EXAMPLE)  # Contoso only from now on
    assert sim.tenant_ids() == [TENANT]
    with graph(sim, token) as http:
        response = http.get(NUMBERS)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert FABRIKAM in response.json()["error"]["message"]


def test_expired_token_and_wrong_audience_are_refused(sim: SimulatorServer,
                                                      wall_clock: FakeClock) -> None:
    token = sim.issue_token(FABRIKAM)
    with graph(sim, token) as http:
        assert http.get(NUMBERS).status_code == 200
        wall_clock.advance(3600)
        expired = http.get(NUMBERS)
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]
    # Refused, but the signature holds: the refusal is put down to Fabrikam.
    assert sim.request_counts(FABRIKAM) == {"listNumberAssignments": 1, "unauthorized": 1}
    managed_identity_token = httpx.get(f"{sim.url}{IMDS_PATH}", params=IMDS_QUERY,
                                       headers={"Metadata": "true"}).json()["access_token"]
    with graph(sim, managed_identity_token) as http:
        wrong_audience = http.get(NUMBERS)
    assert wrong_audience.status_code == 401
    assert "Invalid audience" in wrong_audience.json()["error"]["message"]


def test_a_request_needs_its_permission_in_the_token_and_in_the_grants_now(
        sim: SimulatorServer) -> None:
    with graph(sim, sim.issue_token(TENANT, roles=["User.Read.All"])) as narrow:
        assert narrow.get(f"/users/{ANN}").status_code == 200
        assert narrow.get(NUMBERS).status_code == 403
    with graph(sim, sim.issue_token(TENANT)) as full:
        assert full.get(NUMBERS).status_code == 200
        sim.grant_permissions(["User.Read.All"], tenant=TENANT)  # revoked: at once
        assert full.get(NUMBERS).status_code == 403
        assert full.get(f"/users/{ANN}").status_code == 200


# -- Entra's token endpoint ------------------------------------------------------------------


def managed_identity_token(sim: SimulatorServer) -> str:
    response = httpx.get(f"{sim.url}{IMDS_PATH}", params=IMDS_QUERY, headers={"Metadata": "true"})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def token_form(assertion: str, **changes: str | None) -> dict[str, str]:
    form: dict[str, str | None] = {
        "grant_type": "client_credentials", "client_id": SIMULATOR_APP_ID, "scope": GRAPH_SCOPE,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion, **changes,
    }
    return {key: value for key, value in form.items() if value is not None}


def ask_entra(sim: SimulatorServer, tenant: str, form: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{sim.url}/{tenant}/oauth2/v2.0/token", data=form)


def test_token_endpoint_exchanges_the_managed_identity_token_for_a_graph_token(
        sim: SimulatorServer) -> None:
    response = ask_entra(sim, FABRIKAM, token_form(managed_identity_token(sim)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert {key: body[key] for key in ("token_type", "expires_in", "ext_expires_in")} == {
        "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599}
    claims = claims_of(body["access_token"])
    assert (claims["tid"], claims["appid"], claims["roles"]) == (
        FABRIKAM, SIMULATOR_APP_ID, sorted(FABRIKAM_GRANTS))
    with graph(sim, body["access_token"]) as http:
        assert http.get(f"/users/{FAY}").status_code == 200
    # By default domain too, as Entra takes it; roles are the grants at issue time.
    sim.grant_permissions(["User.Read.All"], tenant=FABRIKAM)
    by_domain = ask_entra(sim, "fabrikam.example", token_form(managed_identity_token(sim)))
    assert claims_of(by_domain.json()["access_token"])["roles"] == ["User.Read.All"]
    assert [(entry["endpoint"], entry["tenant"], entry["status"])
            for entry in sim.identity_requests(EVERY_TENANT)] == [
        ("imds", None, 200), ("token", FABRIKAM, 200), ("imds", None, 200),
        ("token", FABRIKAM, 200)]


def assert_entra_error(response: httpx.Response, status: int, error: str, code: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert body["error_codes"] == [code]
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)


def test_token_endpoint_refuses_an_unknown_tenant(sim: SimulatorServer) -> None:
    response = ask_entra(sim, "0e0e0e0e-0000-4000-8000-000000000000",
                         token_form(managed_identity_token(sim)))
    assert_entra_error(response, 400, "invalid_request", 90002)


def test_token_endpoint_refuses_a_tenant_without_consent_until_it_is_given(
        sim: SimulatorServer, wall_clock: FakeClock) -> None:
    sim.set_consent(False, tenant=FABRIKAM)
    refused = ask_entra(sim, FABRIKAM, token_form(managed_identity_token(sim)))
    assert_entra_error(refused, 400, "invalid_client", 7000229)
    assert ask_entra(sim, TENANT, token_form(managed_identity_token(sim))).status_code == 200
    sim.set_consent(True, tenant=FABRIKAM)
    assert ask_entra(sim, FABRIKAM, token_form(managed_identity_token(sim))).status_code == 200


def test_scenario_can_start_a_tenant_without_consent() -> None:
    with SimulatorServer(parse_scenario(two_tenants(fabrikam_consented=False))) as sim:
        assert [t["consented"] for t in sim.simulator.tenants()] == [True, False]
        refused = ask_entra(sim, FABRIKAM, token_form(managed_identity_token(sim)))
        assert_entra_error(refused, 400, "invalid_client", 7000229)


def test_token_endpoint_refuses_another_app(sim: SimulatorServer) -> None:
    response = ask_entra(sim, FABRIKAM, token_form(managed_identity_token(sim),
                                                   client_id="11111111-2222-4333-8444-555555555555"))
    assert_entra_error(response, 400, "unauthorized_client", 700016)


@pytest.mark.parametrize(("assertion", "status", "error", "code"), [
    (None, 401, "invalid_client", 7000216),
    ("not-a-jwt", 400, "invalid_request", 50027),
    ("forged", 401, "invalid_client", 700027),
    ("graph token", 401, "invalid_client", 700211),  # not the managed identity's issuer
    ("expired", 401, "invalid_client", 700024),
])
def test_token_endpoint_refuses_a_bad_assertion(sim: SimulatorServer, wall_clock: FakeClock,
                                                assertion: str | None, status: int, error: str,
                                                code: int) -> None:
    sent = assertion
    if assertion == "forged":
        sent = with_claims(managed_identity_token(sim), sub="someone-else")
    elif assertion == "graph token":
        sent = sim.issue_token(FABRIKAM)
    elif assertion == "expired":
        sent = managed_identity_token(sim)
        wall_clock.advance(86400)
    form = token_form("unused", client_assertion=sent)
    assert_entra_error(ask_entra(sim, FABRIKAM, form), status, error, code)


@pytest.mark.parametrize(("changes", "error", "code"), [
    ({"grant_type": "authorization_code"}, "unsupported_grant_type", 70003),
    ({"grant_type": None}, "invalid_request", 900144),
    ({"scope": "https://graph.microsoft.com/User.Read.All"}, "invalid_scope", 1002012),
    ({"scope": "https://management.azure.com/.default"}, "invalid_resource", 500011),
    ({"client_assertion_type": "password"}, "invalid_request", 90014),
])
def test_token_endpoint_refuses_a_malformed_request(sim: SimulatorServer,
                                                    changes: dict[str, str | None], error: str,
                                                    code: int) -> None:
    form = token_form(managed_identity_token(sim), **changes)
    assert_entra_error(ask_entra(sim, FABRIKAM, form), 400, error, code)


def test_token_endpoint_takes_only_post(sim: SimulatorServer) -> None:
    response = httpx.get(f"{sim.url}/{FABRIKAM}/oauth2/v2.0/token")
    assert_entra_error(response, 400, "invalid_request", 900561)


# -- IMDS ------------------------------------------------------------------------------------


def test_imds_answers_a_managed_identity_token_with_string_fields(sim: SimulatorServer,
                                                                 wall_clock: FakeClock) -> None:
    body = httpx.get(f"{sim.url}{IMDS_PATH}", params=IMDS_QUERY,
                     headers={"Metadata": "true"}).json()
    assert set(body) == {"access_token", "client_id", "expires_in", "expires_on",
                         "ext_expires_in", "not_before", "resource", "token_type"}
    assert all(isinstance(value, str) for value in body.values())
    assert (body["resource"], body["client_id"], body["token_type"]) == (
        TOKEN_EXCHANGE_AUDIENCE, MANAGED_IDENTITY_CLIENT_ID, "Bearer")
    assert int(body["expires_on"]) > wall_clock.now
    claims = claims_of(body["access_token"])
    assert claims["aud"] == TOKEN_EXCHANGE_AUDIENCE
    assert claims["sub"] == claims["oid"] == MANAGED_IDENTITY_PRINCIPAL_ID


@pytest.mark.parametrize(("headers", "query", "error"), [
    ({}, IMDS_QUERY, "invalid_request"),  # azure-identity's probe: IMDS is there
    ({"Metadata": "true"}, {**IMDS_QUERY, "client_id": "someone-else"}, "invalid_request"),
    ({"Metadata": "true"}, {**IMDS_QUERY, "resource": "https://vault.azure.net"},
     "invalid_resource"),
    ({"Metadata": "true"}, {"resource": TOKEN_EXCHANGE_AUDIENCE}, "invalid_request"),
])
def test_imds_refuses_a_request_it_cannot_answer(sim: SimulatorServer, headers: dict[str, str],
                                                 query: dict[str, str], error: str) -> None:
    response = httpx.get(f"{sim.url}{IMDS_PATH}", params=query, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == error


# -- control routes --------------------------------------------------------------------------


def test_control_routes_take_a_tenant(sim: SimulatorServer, contoso: httpx.Client,
                                      fabrikam: httpx.Client) -> None:
    with httpx.Client(base_url=sim.url) as control:
        tenants = control.get("/_simulator/tenants").json()["tenants"]
        assert [(t["id"], t["displayName"], t["consented"]) for t in tenants] == [
            (TENANT, "Contoso", True), (FABRIKAM, "Fabrikam", True)]
        state = control.get("/_simulator/state", params={"tenant": FABRIKAM}).json()
        assert {n["telephoneNumber"]: n["assignmentTargetId"]
                for n in state["numberAssignments"]}[ANNS_DR] is None
        assert control.post("/_simulator/faults", params={"tenant": FABRIKAM},
                            json={"route": "listNumberAssignments", "status": 503}).is_success
        assert contoso.get(NUMBERS).status_code == 200
        assert fabrikam.get(NUMBERS).status_code == 503
        assert control.post("/_simulator/consent", params={"tenant": FABRIKAM},
                            json={"consented": False}).is_success
        assert sim.simulator.tenants()[1]["consented"] is False
        requests = control.get("/_simulator/requests", params={"tenant": FABRIKAM}).json()
        assert requests["counts"] == {"listNumberAssignments": 1}
        every = control.get("/_simulator/requests", params={"tenant": "*"}).json()
        assert len(every["log"]) == 2
        unknown = control.get("/_simulator/state", params={"tenant": "nobody"})
        assert unknown.status_code == 400
        assert "nobody" in unknown.json()["error"]["message"]
        assert control.post("/_simulator/requests/clear",
                            params={"tenant": FABRIKAM}).is_success
        assert sim.request_counts(EVERY_TENANT) == {"listNumberAssignments": 1}


# -- the real azure-identity credentials -----------------------------------------------------


class RedirectingTransport(AioHttpTransport):  # type: ignore[misc]  # azure-core's overloads
    """azure-core's aiohttp transport, sending Entra's and IMDS's hosts to the simulator."""

    def __init__(self, simulator_url: str) -> None:
        super().__init__()
        self._target = urlsplit(simulator_url)

    async def send(self, request: Any, **config: Any) -> Any:
        url = urlsplit(request.url)
        if f"{url.scheme}://{url.netloc}" in {ENTRA_HOST, IMDS_HOST}:
            request.url = urlunsplit((self._target.scheme, self._target.netloc, url.path,
                                      url.query, url.fragment))
        return await super().send(request, **config)


@pytest.fixture
def no_managed_identity_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing in the environment that makes ManagedIdentityCredential use anything but IMDS."""
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT",
                 "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                 "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def managed_identity(sim: SimulatorServer, no_managed_identity_environment: None
                           ) -> AsyncIterator[ManagedIdentityCredential]:
    # _enable_imds_probe: probe first, as the credential does inside a chain.
    credential = ManagedIdentityCredential(client_id=MANAGED_IDENTITY_CLIENT_ID,
                                           transport=RedirectingTransport(sim.url),
                                           _enable_imds_probe=True)
    async with credential:
        yield credential


async def test_azure_identity_obtains_a_graph_token_for_each_tenant(
        sim: SimulatorServer, managed_identity: ManagedIdentityCredential) -> None:
    assertion = await managed_identity.get_token(f"{TOKEN_EXCHANGE_AUDIENCE}/.default")
    tokens = {}
    for tenant in (TENANT, FABRIKAM):
        credential = ClientAssertionCredential(tenant, SIMULATOR_APP_ID, lambda: assertion.token,
                                               transport=RedirectingTransport(sim.url))
        async with credential:
            tokens[tenant] = (await credential.get_token(GRAPH_SCOPE)).token
    assert claims_of(tokens[FABRIKAM])["tid"] == FABRIKAM
    with graph(sim, tokens[FABRIKAM]) as http:
        assert http.get(f"/users/{FAY}").status_code == 200
    with graph(sim, tokens[TENANT]) as http:
        assert http.get(f"/users/{FAY}").status_code == 404
    # The probe (no Metadata header) was answered 400, which the credential takes as "there".
    assert [(entry["endpoint"], entry["status"])
            for entry in sim.identity_requests(EVERY_TENANT)] == [
        ("imds", 400), ("imds", 200), ("token", 200), ("token", 200)]


async def test_azure_identity_reports_a_tenant_without_consent(
        sim: SimulatorServer, managed_identity: ManagedIdentityCredential) -> None:
    sim.set_consent(False, tenant=FABRIKAM)
    assertion = await managed_identity.get_token(f"{TOKEN_EXCHANGE_AUDIENCE}/.default")
    credential = ClientAssertionCredential(FABRIKAM, SIMULATOR_APP_ID, lambda: assertion.token,
                                           transport=RedirectingTransport(sim.url))
    async with credential:
        with pytest.raises(ClientAuthenticationError, match="AADSTS7000229"):
            await credential.get_token(GRAPH_SCOPE)

