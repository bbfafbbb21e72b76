"""Helpers shared by the simulator tests: ids of the example tenant, a test clock, SDK parsing."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

EXAMPLE = Path(__file__).resolve().parents[2] / "scenarios" / "example-small.json"
TENANT = "7a1c0a64-3f0e-4d3b-9a57-0c5d2f1e9b10"
VOICE_GROUP = "6b0d2c61-0000-4000-8000-0000000000a1"
SALES_GROUP = "6b0d2c61-0000-4000-8000-0000000000a2"
ANN = "0f3a5c2e-0000-4000-8000-000000000001"
BOB = "0f3a5c2e-0000-4000-8000-000000000002"
CAROL = "0f3a5c2e-0000-4000-8000-000000000003"
DAVE = "0f3a5c2e-0000-4000-8000-000000000004"  # not in Teams
ERIN = "0f3a5c2e-0000-4000-8000-000000000005"  # in Teams without a Teams Phone licence
ANNS_DR = "+31855363011"
FREE_DR = "+31855363099"
OPERATOR_CONNECT = "+31201234567"
CALLING_PLAN = "+31207654321"
CLI_POLICY_ID = "Q2FsbGluZ0xpbmVJZGVudGl0eXxNYWluTnVtYmVyLUNvbnRvc28"
DIAL_PLAN_ID = "VGVuYW50RGlhbFBsYW58TkwtRGVmYXVsdA"
AUTH = {"Authorization": "Bearer simulator-token"}
NUMBERS = "/admin/teams/telephoneNumberManagement/numberAssignments"
CONFIGURATIONS = "/admin/teams/userConfigurations"
POLICY = "/admin/teams/policy"
ASSIGNMENT_TYPE = "#microsoft.graph.teamsAdministration.teamsPolicyUserAssignment"
# Keys Graph sends that no SDK model declares: they are expected in additional_data.
EXPECTED_EXTRA_KEYS = frozenset({"@odata.context", "@removed", "members@delta"})


def example(**behaviour: Any) -> dict[str, Any]:
    """The example scenario as JSON data, with `behaviour` keys overridden."""
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    data["behaviour"] = {**data["behaviour"], **behaviour}
    return data


def user_entry(data: dict[str, Any], user_id: str) -> dict[str, Any]:
    """The scenario JSON of one user, to edit in place."""
    entry: dict[str, Any] = next(user for user in data["users"] if user["id"] == user_id)
    return entry


def directory_of(data: dict[str, Any]) -> dict[str, Any]:
    """The `{"users", "groups"}` part of scenario data, as /_simulator/directory takes it."""
    return {"users": data["users"], "groups": data["groups"]}


class FakeClock:
    """A monotonic clock that only moves when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


#: The simulator fixture's wall clock: Teams operations finish by it; polls move it a second.
WALL = FakeClock(time.time())


def run_assign(client: httpx.Client, number: str, target: str,
               number_type: str = "directRouting") -> dict[str, Any]:
    """POST assignNumber and poll its operation to the end; returns the final operation."""
    response = client.post(f"{NUMBERS}/assignNumber", json={
        "telephoneNumber": number, "assignmentTargetId": target, "numberType": number_type})
    assert response.status_code == 202, response.text
    for _ in range(10):
        body: dict[str, Any] = client.get(response.headers["Location"]).json()
        if body["status"] in {"succeeded", "failed"}:
            return body
        WALL.advance(1)
    raise AssertionError("operation never finished")


def parse(model: Any, body: Any) -> Any:
    """Deserialise `body` with an msgraph model class, as the SDK would."""
    node = JsonParseNodeFactory().get_root_parse_node("application/json",
                                                      json.dumps(body).encode())
    return node.get_object_value(model)


def unexpected_data(model: Any, path: str = "$") -> dict[str, Any]:
    """Every `additional_data` entry in a parsed model tree that no model declared.

    Keys Graph sends outside the models (`@odata.context`, `@removed`, `members@delta`) are
    expected and left out.
    """
    found: dict[str, Any] = {}
    for key, value in (getattr(model, "additional_data", None) or {}).items():
        if key not in EXPECTED_EXTRA_KEYS:
            found[f"{path}.{key}"] = value
    for name, value in vars(model).items():
        if name == "additional_data" or value is None:
            continue
        children = value if isinstance(value, list) else [value]
        for index, child in enumerate(children):
            if hasattr(child, "additional_data"):
                found |= unexpected_data(child, f"{path}.{name}[{index}]")
    return found


class _StaticToken(AccessTokenProvider):  # type: ignore[misc]  # kiota is not followed
    def __init__(self, token: str) -> None:
        self._token = token

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: dict[str, Any] | None = None
    ) -> str:
        return self._token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return AllowedHostsValidator(["127.0.0.1"])


@asynccontextmanager
async def graph_client(base_url: str) -> AsyncIterator[Any]:
    """A GraphServiceClient (default middleware) pointed at the simulator."""
    # msgraph_core's AsyncGraphTransport has no aclose(); close the real transport ourselves.
    transport = httpx.AsyncHTTPTransport()
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=transport))
    adapter = GraphRequestAdapter(
        BaseBearerTokenAuthenticationProvider(_StaticToken("simulator-token")), client=http)
    client = GraphServiceClient(request_adapter=adapter)
    client.request_adapter.base_url = base_url
    try:
        yield client
    finally:
        await http.aclose()
        await transport.aclose()
