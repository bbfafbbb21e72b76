"""The fault proxy: a faithful reverse proxy in front of the simulator, and each kind of fault
as an HTTP client sees it."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from graph_simulator import SimulatorServer
from graph_simulator.fault_proxy import (
    TRANSIENT_OPERATION_DETAIL,
    FaultKind,
    FaultPlan,
    FaultProxy,
    ForwardedAnswer,
)
from tests.simulator.support import (
    ANN,
    AUTH,
    BOB,
    CONFIGURATIONS,
    FREE_DR,
    NUMBERS,
    VOICE_GROUP,
    run_assign,
)

MEMBERS = f"/groups/{VOICE_GROUP}/transitiveMembers/graph.user"
ADVANCED = {"ConsistencyLevel": "eventual"}


def only(kind: FaultKind, **options: Any) -> FaultPlan:
    """Every request (of the routes given) meets this one kind of fault."""
    return FaultPlan(rate=1.0, mix={kind: 1.0}, **options)


@pytest.fixture
def proxy(sim: SimulatorServer) -> Iterator[FaultProxy]:
    with FaultProxy(sim.url) as running:
        yield running


@pytest.fixture
def client(proxy: FaultProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.base_url, headers=AUTH, timeout=10) as http:
        yield http


def assign_body(number: str = FREE_DR, target: str = BOB) -> dict[str, str]:
    return {"telephoneNumber": number, "assignmentTargetId": target,
            "numberType": "directRouting"}


# -- faithful forwarding ---------------------------------------------------------------------


def test_answers_come_through_unchanged(
    sim: SimulatorServer, proxy: FaultProxy, client: httpx.Client
) -> None:
    through = client.get(f"{CONFIGURATIONS}/{ANN}", headers={"client-request-id": "abc-123"})
    with httpx.Client(base_url=sim.base_url, headers=AUTH) as direct:
        straight = direct.get(f"{CONFIGURATIONS}/{ANN}")

    assert through.status_code == 200
    assert through.headers["client-request-id"] == "abc-123"
    assert through.headers["request-id"]
    assert through.headers["content-type"] == straight.headers["content-type"]
    body, expected = through.json(), straight.json()
    assert body.pop("@odata.context") == expected.pop("@odata.context").replace(sim.url,
                                                                                 proxy.url)
    assert body == expected
    assert proxy.request_counts() == {"getUserConfiguration": 1}
    assert proxy.forwarded_counts() == {"getUserConfiguration": 1}


def test_errors_and_request_headers_are_forwarded(
    sim: SimulatorServer, proxy: FaultProxy
) -> None:
    with httpx.Client(base_url=proxy.base_url) as anonymous:
        refused = anonymous.get(f"{CONFIGURATIONS}/{ANN}")
    with httpx.Client(base_url=proxy.base_url, headers=AUTH) as client:
        missing_header = client.get(MEMBERS, params={"$count": "true"})
        members = client.get(MEMBERS, params={"$count": "true"}, headers=ADVANCED)

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert missing_header.status_code == 400
    assert members.status_code == 200
    seen = [entry["consistencyLevel"] for entry in sim.request_log()
            if entry["route"] == "listTransitiveMemberUsers"]
    assert seen == [None, "eventual"]


def test_paths_reach_the_simulator_exactly_as_sent(client: httpx.Client) -> None:
    # The simulator refuses '//' rather than normalising it; a proxy must not hide that.
    assert client.get("/admin/teams//userConfigurations").status_code == 400
    policy = client.get("/admin/teams/policy/getPolicyId(type='TenantDialPlan',name='NL-Default')")
    assert policy.status_code == 200
    assert policy.json()["value"]


def test_next_links_lead_back_through_the_proxy(
    sim: SimulatorServer, proxy: FaultProxy, client: httpx.Client
) -> None:
    page = client.get(MEMBERS, params={"$count": "true", "$top": "1"}, headers=ADVANCED).json()
    names = [user["userPrincipalName"] for user in page["value"]]
    while "@odata.nextLink" in page:
        link = page["@odata.nextLink"]
        assert link.startswith(proxy.base_url)
        page = client.get(link, headers=ADVANCED).json()
        names += [user["userPrincipalName"] for user in page["value"]]

    assert len(names) == 4
    assert proxy.request_counts()["listTransitiveMemberUsers"] == 4
    assert sim.request_counts()["listTransitiveMemberUsers"] == 4


def test_an_operation_location_leads_back_through_the_proxy(
    sim: SimulatorServer, proxy: FaultProxy, client: httpx.Client
) -> None:
    accepted = client.post(f"{NUMBERS}/assignNumber", json=assign_body())
    assert accepted.status_code == 202
    assert accepted.headers["Location"].startswith(f"{proxy.base_url}/admin/teams/")

    final = run_assign(client, FREE_DR, BOB)

    assert final["status"] == "succeeded"
    assert final["numbers"][0]["resourceLocation"].startswith(proxy.base_url)
    assert sim.number_assignments()[FREE_DR] == BOB
    assert proxy.request_counts()["getOperation"] >= 1


# -- each kind of fault ----------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "status", "code", "retry_after"), [
    (FaultKind.THROTTLE_SHORT, 429, "TooManyRequests", "1"),
    (FaultKind.THROTTLE_LONG, 429, "TooManyRequests", "4"),
    (FaultKind.UNAVAILABLE, 503, "serviceNotAvailable", None),
    (FaultKind.GATEWAY_TIMEOUT, 504, "timeout", None),
])
def test_error_answers_look_like_graph_and_never_reach_the_simulator(
    sim: SimulatorServer, proxy: FaultProxy, client: httpx.Client,
    kind: FaultKind, status: int, code: str, retry_after: str | None,
) -> None:
    proxy.set_plan(only(kind))

    answer = client.post(f"{NUMBERS}/assignNumber", json=assign_body(),
                         headers={"client-request-id": "req-1"})

    assert answer.status_code == status
    assert answer.headers.get("Retry-After") == retry_after
    error = answer.json()["error"]
    assert error["code"] == code
    assert error["innerError"]["client-request-id"] == "req-1"
    assert sim.request_counts() == {}
    assert sim.number_assignments()[FREE_DR] is None
    assert proxy.injected() == {kind: 1}
    assert proxy.injected_by_route() == {"assignNumber": {kind: 1}}


def test_a_connection_dropped_before_forwarding_changes_nothing(
    sim: SimulatorServer, proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.set_plan(only(FaultKind.DROP_BEFORE))

    with pytest.raises(httpx.RemoteProtocolError):
        client.post(f"{NUMBERS}/assignNumber", json=assign_body())

    assert sim.request_counts() == {}
    assert sim.number_assignments()[FREE_DR] is None
    [entry] = proxy.request_log()
    assert (entry.fault, entry.forwarded, entry.status) == (FaultKind.DROP_BEFORE, False, None)


def test_a_connection_dropped_after_forwarding_was_carried_out(
    sim: SimulatorServer, proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.set_plan(only(FaultKind.DROP_AFTER))

    with pytest.raises(httpx.ReadError):
        client.post(f"{NUMBERS}/assignNumber", json=assign_body())

    # Teams accepted the assignment; the client never heard of it.
    assert sim.request_counts() == {"assignNumber": 1}
    assert sim.number_assignments()[FREE_DR] == BOB
    [entry] = proxy.request_log()
    assert (entry.fault, entry.forwarded, entry.status) == (FaultKind.DROP_AFTER, True, None)
    assert b"assignmentTargetId" in entry.body


def test_a_failed_operation_leaves_the_number_free(
    sim: SimulatorServer, proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.set_plan(only(FaultKind.OPERATION_FAILED))

    final = run_assign(client, FREE_DR, BOB)

    assert final["status"] == "failed"
    assert final["numbers"][0]["statusDetail"] == TRANSIENT_OPERATION_DETAIL
    assert sim.number_assignments()[FREE_DR] is None
    # Only the assignment met the fault: the operation polls are not operations themselves.
    assert proxy.injected_by_route() == {"assignNumber": {FaultKind.OPERATION_FAILED: 1}}
    proxy.pause()
    assert run_assign(client, FREE_DR, BOB)["status"] == "succeeded"


def test_faults_can_be_kept_to_some_routes(
    sim: SimulatorServer, proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.set_plan(only(FaultKind.UNAVAILABLE, routes=frozenset({"getOperation"})))

    accepted = client.post(f"{NUMBERS}/assignNumber", json=assign_body())
    polled = client.get(accepted.headers["Location"])
    configuration = client.get(f"{CONFIGURATIONS}/{BOB}")

    assert (accepted.status_code, polled.status_code, configuration.status_code) == (
        202, 503, 200)
    assert proxy.injected_by_route() == {"getOperation": {FaultKind.UNAVAILABLE: 1}}


def test_paused_faults_forward_everything_and_still_count(
    proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.set_plan(only(FaultKind.UNAVAILABLE))
    with proxy.paused():
        statuses = [client.get(f"{CONFIGURATIONS}/{ANN}").status_code for _ in range(3)]
    after = client.get(f"{CONFIGURATIONS}/{ANN}").status_code

    assert statuses == [200, 200, 200]
    assert after == 503
    assert proxy.request_counts() == {"getUserConfiguration": 4}
    assert proxy.forwarded_counts() == {"getUserConfiguration": 3}


# -- the random sequence ---------------------------------------------------------------------


def _faults_seen(proxy: FaultProxy, client: httpx.Client, requests: int) -> list[str | None]:
    proxy.clear()
    for _ in range(requests):
        # A dropped connection is one of the faults being counted.
        with contextlib.suppress(httpx.TransportError):
            client.get(f"{CONFIGURATIONS}/{ANN}")
    return [entry.fault.value if entry.fault else None for entry in proxy.request_log()]


def test_the_same_seed_gives_the_same_faults_at_the_rate_asked(
    proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.set_plan(FaultPlan(rate=0.2, seed=9))
    first = _faults_seen(proxy, client, 300)
    proxy.set_plan(FaultPlan(rate=0.2, seed=9))
    again = _faults_seen(proxy, client, 300)
    proxy.set_plan(FaultPlan(rate=0.2, seed=10))
    other = _faults_seen(proxy, client, 300)

    assert first == again
    assert first != other
    faults = [kind for kind in first if kind is not None]
    assert 40 <= len(faults) <= 80  # 20 % of 300, give or take the dice
    # A read never meets operation_failed; every other kind turns up.
    assert set(faults) == {kind.value for kind in FaultKind} - {"operation_failed"}


def test_plans_that_make_no_sense_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        FaultPlan(rate=1.5)
    with pytest.raises(ValueError, match="weights"):
        FaultPlan(rate=0.1, mix={FaultKind.UNAVAILABLE: -1.0})


# -- held answers ----------------------------------------------------------------------------


def _post_in_background(client: httpx.Client, outcome: list[object]) -> threading.Thread:
    def post() -> None:
        try:
            outcome.append(client.post(f"{NUMBERS}/assignNumber", json=assign_body()))
        except httpx.TransportError as error:
            outcome.append(error)

    thread = threading.Thread(target=post)
    thread.start()
    return thread


@pytest.mark.parametrize("drop", [True, False])
def test_a_held_answer_waits_until_released(
    sim: SimulatorServer, proxy: FaultProxy, client: httpx.Client, drop: bool
) -> None:
    hold = proxy.hold_next("assignNumber", lambda answer: answer.status == 202)
    outcome: list[object] = []
    thread = _post_in_background(client, outcome)

    assert hold.wait(timeout_seconds=10)
    # Teams has accepted the assignment while the client still waits for the answer.
    assert sim.number_assignments()[FREE_DR] == BOB
    assert outcome == []
    assert isinstance(hold.answer, ForwardedAnswer)
    assert hold.answer.status == 202
    hold.release(drop=drop)
    thread.join(timeout=10)

    [result] = outcome
    if drop:
        assert isinstance(result, httpx.ReadError)
    else:
        assert isinstance(result, httpx.Response)
        assert result.status_code == 202
