"""Pieces of the Graph contract test: its tenant, a wire recorder, and model-graph checks.

The contract test drives the simulator with msgraph-sdk exactly as the app builds it
(`shared.adapters.graph.client.build_graph_client` over the SDK's default middleware), with one
difference: the innermost httpx transport records every request as it leaves for the wire and
every answer as it arrives, so a test can compare what the SDK really sent with what the
simulator logged, and a parsed model with the JSON it was parsed from.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from kiota_abstractions.serialization import Parsable
from kiota_http.middleware.options import RetryHandlerOption
from msgraph_core import GraphClientFactory

from graph_simulator import DEFAULT_TOKEN, Directory, Scenario, SimulatorServer, parse_scenario
from shared.adapters.graph.client import build_graph_client, close_graph_transport
from shared.adapters.graph.credentials import GraphCredentials
from shared.config import GraphAuth, GraphSettings

TENANT = "2f0c7a8e-0000-4000-8000-00000000c0c0"
VOICE = "9a1e0000-0000-4000-8000-0000000000a1"  # the voice group: ANN, SALES (nested), BOB
SALES = "9a1e0000-0000-4000-8000-0000000000a2"  # nested: CAROL, DAVE, ANN (ANN twice overall)
TEMP = "9a1e0000-0000-4000-8000-0000000000a3"  # FRANK and ERIN; loses FRANK in CHANGED
OLD = "9a1e0000-0000-4000-8000-0000000000a4"  # ERIN; deleted in CHANGED
ANN = "5e7a0000-0000-4000-8000-000000000001"  # every user property set; has ANN_DR
BOB = "5e7a0000-0000-4000-8000-000000000002"  # in Teams, no number
CAROL = "5e7a0000-0000-4000-8000-000000000003"  # Enterprise Voice on, has CAROL_DR
DAVE = "5e7a0000-0000-4000-8000-000000000004"  # disabled, not in Teams
ERIN = "5e7a0000-0000-4000-8000-000000000005"  # in Teams without a Teams Phone licence
FRANK = "5e7a0000-0000-4000-8000-000000000006"  # not in Teams; deleted in CHANGED
ANN_DR = "+31855363011"
CAROL_DR = "+31855363013"
FREE_DR = "+31855363099"
OPERATOR_CONNECT = "+31201234567"
OPERATOR_ID = "3b7d5e2a-0000-4000-8000-00000000c0de"
CALLING_PLAN = "+31207654321"
LOCATION_ID = "c1c1c1c1-0000-4000-8000-00000000100c"
CLI_TYPE, CLI_NAME, CLI_ID = (
    "CallingLineIdentity", "MainNumber-Contoso",
    "Q2FsbGluZ0xpbmVJZGVudGl0eXxNYWluTnVtYmVyLUNvbnRvc28",
)
DIAL_PLAN_TYPE, DIAL_PLAN_NAME, DIAL_PLAN_ID = (
    "TenantDialPlan", "NL-Default", "VGVuYW50RGlhbFBsYW58TkwtRGVmYXVsdA",
)
#: The users' Graph properties, as the scenario gives them (ANN has every one set).
ANN_PROPERTIES: dict[str, Any] = {
    "id": ANN, "userPrincipalName": "ann@contoso.example", "displayName": "Ann Andersen",
    "businessPhones": [ANN_DR], "accountEnabled": True, "givenName": "Ann",
    "surname": "Andersen", "mail": "ann@contoso.example", "mobilePhone": "+31612345678",
    "jobTitle": "Buyer", "officeLocation": "Utrecht", "preferredLanguage": "nl-NL",
    "onPremisesSyncEnabled": True,
}
#: Page size for delta and unpaged directory reads, small so every route pages.
PAGE_SIZE = 3

_USERS: list[dict[str, Any]] = [
    ANN_PROPERTIES,
    {"id": BOB, "userPrincipalName": "bob@contoso.example", "displayName": "Bob Bakker",
     "businessPhones": ["+31 85 536 3012"]},
    {"id": CAROL, "userPrincipalName": "carol@contoso.example", "displayName": "Carol de Vries",
     "businessPhones": [CAROL_DR], "teams": {"enterpriseVoiceEnabled": True}},
    {"id": DAVE, "userPrincipalName": "dave@contoso.example", "displayName": "Dave Dekker",
     "businessPhones": ["+31855363014"], "accountEnabled": False, "teams": {"present": False}},
    {"id": ERIN, "userPrincipalName": "erin@contoso.example", "displayName": "Erin Evers",
     "businessPhones": ["+31855363015"], "teams": {"licensed": False}},
    {"id": FRANK, "userPrincipalName": "frank@contoso.example", "displayName": "Frank Fris",
     "teams": {"present": False}},
]
_GROUPS: list[dict[str, Any]] = [
    {"id": VOICE, "displayName": "EnterpriseVoiceEnabled", "members": [ANN, SALES, BOB]},
    {"id": SALES, "displayName": "Sales", "members": [CAROL, DAVE, ANN]},
    {"id": TEMP, "displayName": "Temps", "members": [FRANK, ERIN]},
    {"id": OLD, "displayName": "Old project", "members": [ERIN]},
]
#: The directory after FRANK and OLD are deleted (a delta round then shows `@removed`).
CHANGED = Directory.model_validate({
    "users": [user for user in _USERS if user["id"] != FRANK],
    "groups": [{**group, "members": [m for m in group["members"] if m != FRANK]}
               for group in _GROUPS if group["id"] != OLD],
})


def scenario(*, body_shape: str = "root") -> Scenario:
    """The contract tenant; `body_shape` sets both documented-wrapper knobs (`root`/`value`)."""
    return parse_scenario({
        "version": 1,
        "tenant": {"id": TENANT, "voiceGroupId": VOICE, "defaultDomain": "contoso.example"},
        "users": _USERS,
        "groups": _GROUPS,
        "numberAssignments": [
            {"telephoneNumber": ANN_DR, "numberType": "directRouting",
             "assignmentTargetId": ANN, "locationId": LOCATION_ID},
            {"telephoneNumber": CAROL_DR, "numberType": "directRouting",
             "assignmentTargetId": CAROL, "assignmentCategory": "primary"},
            {"telephoneNumber": FREE_DR, "numberType": "directRouting"},
            {"telephoneNumber": OPERATOR_CONNECT, "numberType": "operatorConnect",
             "operatorId": OPERATOR_ID, "isoCountryCode": "NL", "city": "Amsterdam"},
            {"telephoneNumber": CALLING_PLAN, "numberType": "callingPlan",
             "isoCountryCode": "NL", "city": "Amsterdam"},
        ],
        "policies": [
            {"type": CLI_TYPE, "name": CLI_NAME, "id": CLI_ID},
            {"type": DIAL_PLAN_TYPE, "name": DIAL_PLAN_NAME, "id": DIAL_PLAN_ID},
        ],
        "behaviour": {"defaultPageSize": PAGE_SIZE, "operationSeconds": 0,
                      "operationBodyShape": body_shape,
                      "userConfigurationBodyShape": body_shape},
    }, "contract scenario")


def original_directory() -> Directory:
    """The scenario's own directory, to put back after a delta test changed it."""
    return scenario().directory


# -- the wire ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WireExchange:
    """One HTTP exchange as it crossed the wire (below all of the SDK's middleware)."""

    method: str
    target: str  # the request target: raw path, then '?' and the raw query if there is one
    request_body: bytes
    status: int
    location: str | None
    response_body: bytes

    def request_json(self) -> Any:
        """The request body, decoded."""
        return json.loads(self.request_body)

    def response_json(self) -> Any:
        """The answer's body, decoded."""
        return json.loads(self.response_body)


class RecordingTransport(httpx.AsyncHTTPTransport):
    """The real transport, keeping a copy of every request and answer."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[WireExchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`; record it with its answer; hand the SDK an identical answer."""
        request_body = await request.aread()
        response = await super().handle_async_request(request)
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
        self.exchanges.append(WireExchange(
            method=request.method, target=request.url.raw_path.decode("ascii"),
            request_body=request_body, status=response.status_code,
            location=response.headers.get("location"), response_body=raw,
        ))
        return httpx.Response(response.status_code, headers=response.headers, content=raw,
                              extensions=response.extensions, request=request)


class Exchanges:
    """The requests of one step: as the SDK sent them and as the simulator logged them.

    Live while its `Graph.capture()` block runs, frozen when the block ends.
    """

    def __init__(self, server: SimulatorServer, recorder: RecordingTransport) -> None:
        self._server = server
        self._recorder = recorder
        self._wire_start = len(recorder.exchanges)
        self._log_start = len(server.request_log())
        self._frozen: tuple[list[WireExchange], list[dict[str, Any]]] | None = None

    @property
    def wire(self) -> list[WireExchange]:
        """Requests as they left the SDK for the wire, with their answers."""
        if self._frozen is not None:
            return self._frozen[0]
        return self._recorder.exchanges[self._wire_start:]

    @property
    def log(self) -> list[dict[str, Any]]:
        """The simulator's log entries for the same requests."""
        if self._frozen is not None:
            return self._frozen[1]
        return self._server.request_log()[self._log_start:]

    @property
    def last(self) -> WireExchange:
        """The latest request sent."""
        return self.wire[-1]

    def freeze(self) -> None:
        """Stop collecting."""
        self._frozen = (self.wire, self.log)


@dataclass
class Graph:
    """An msgraph-sdk client built the app's way, pointed at a simulator, with a recorder."""

    client: Any
    server: SimulatorServer
    recorder: RecordingTransport

    @property
    def base_url(self) -> str:
        """The simulator's Graph base URL (`http://127.0.0.1:<port>/v1.0`)."""
        return self.server.base_url

    @asynccontextmanager
    async def capture(self) -> AsyncIterator[Exchanges]:
        """Collect the wire exchanges and simulator log entries made inside the block."""
        seen = Exchanges(self.server, self.recorder)
        try:
            yield seen
        finally:
            seen.freeze()


@asynccontextmanager
async def graph_for(server: SimulatorServer) -> AsyncIterator[Graph]:
    """The app's client (static-token auth, explicit base URL, default middleware, no retries)."""
    settings = GraphSettings(base_url=server.base_url, auth=GraphAuth.STATIC_TOKEN,
                             static_token=DEFAULT_TOKEN, max_retries=0)
    recorder = RecordingTransport()
    # What shared.adapters.graph.client.graph_http_client builds, over the recording transport.
    http = GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=recorder, timeout=httpx.Timeout(30.0)),
        options={RetryHandlerOption.get_key():
                 RetryHandlerOption(max_retries=settings.max_retries)},
    )
    client = build_graph_client(settings, GraphCredentials(settings).auth_provider(TENANT), http)
    try:
        yield Graph(client=client, server=server, recorder=recorder)
    finally:
        await close_graph_transport(http)


# -- model graphs -----------------------------------------------------------------------------

#: Extra keys allowed in `additional_data`, per model class (a class not listed: none).
Allowed = Mapping[type, frozenset[str]]


def _children(model: Any) -> list[tuple[str, Any]]:
    """(attribute path, nested Parsable) for each nested model, collections flattened."""
    found: list[tuple[str, Any]] = []
    for name, value in vars(model).items():
        if name == "additional_data" or value is None:
            continue
        items = value if isinstance(value, list) else [value]
        found += [(f"{name}[{index}]" if isinstance(value, list) else name, item)
                  for index, item in enumerate(items) if isinstance(item, Parsable)]
    return found


def unexpected_additional_data(model: Any, allowed: Allowed, path: str = "$") -> list[str]:
    """Every `additional_data` key anywhere in the model graph that `allowed` does not allow.

    Returns `path (ModelClass): key` strings, so a failing assert names where the SDK found
    a property its models do not declare.
    """
    permitted = allowed.get(type(model), frozenset())
    problems = [f"{path} ({type(model).__name__}): {key}"
                for key in getattr(model, "additional_data", None) or {}
                if key not in permitted]
    for name, child in _children(model):
        problems += unexpected_additional_data(child, allowed, f"{path}.{name}")
    return problems


def attribute_name(key: str) -> str:
    """The SDK's attribute for a JSON property: `@odata.nextLink` -> `odata_next_link`."""
    name = key.lstrip("@").replace(".", "_").replace("-", "_")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def untyped_properties(model: Any, raw: Any, path: str = "$") -> list[str]:
    """Non-null JSON properties the typed model lost (left None, or an item of a list None).

    A property kept in `additional_data` is not lost (`unexpected_additional_data` judges it);
    anything else must have come through as a typed value. This catches what additional_data
    cannot show: an enum member the SDK does not know parses to None.
    """
    problems: list[str] = []
    extra = getattr(model, "additional_data", None) or {}
    for key, value in raw.items():
        if value is None or key in extra:
            continue
        attribute = attribute_name(key)
        typed = getattr(model, attribute, None)
        where = f"{path}.{key}"
        if typed is None:
            problems.append(f"{where}: sent {value!r}, parsed as None")
        elif isinstance(value, dict):
            problems += untyped_properties(typed, value, where)
        elif isinstance(value, list):
            if not isinstance(typed, list) or len(typed) != len(value):
                problems.append(f"{where}: sent {len(value)} items, parsed {typed!r}")
                continue
            for index, (item, typed_item) in enumerate(zip(value, typed, strict=True)):
                if typed_item is None:
                    problems.append(f"{where}[{index}]: sent {item!r}, parsed as None")
                elif isinstance(item, dict):
                    problems += untyped_properties(typed_item, item, f"{where}[{index}]")
    return problems
