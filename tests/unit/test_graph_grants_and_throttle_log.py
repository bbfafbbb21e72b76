"""Member objects Graph cut down for a missing grant, refusals that name the permission, and
the log line of every 429 (Graph's throttle scope and information)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from shared.adapters.graph.directory import check_user_properties_readable
from shared.adapters.graph.throttling import ThrottleLogHandler, throttle_line
from shared.core.errors import PermanentError
from shared.core.graph_errors import GraphFailure, classify
from shared.core.outcomes import Reason

ROUTE = "GET /groups/{id}/transitiveMembers/microsoft.graph.user"
FULL = {"id": "u1", "userPrincipalName": "ann@contoso.example", "businessPhones": [],
        "accountEnabled": True}
SCOPE = "Tenant_Application/ReadWrite/9a3d526c-b3c1-4479-ba74-197b5c5751ae/0785ef7c"
TENANT = "0785ef7c-0000-4000-8000-00000000aaaa"


@pytest.mark.parametrize("member", [
    {"@odata.type": "#microsoft.graph.user", "id": "u1"},  # properties left out
    {"@odata.type": "#microsoft.graph.user", "id": "u1", "userPrincipalName": None,
     "businessPhones": None, "accountEnabled": None},  # "indicated as null"
    {"id": "u1", "userPrincipalName": "ann@contoso.example"},  # some selected ones missing
])
def test_a_member_without_its_selected_properties_is_a_missing_user_read_all(
    member: dict[str, Any],
) -> None:
    with pytest.raises(PermanentError) as raised:
        check_user_properties_readable(member, ROUTE)
    assert raised.value.reason is Reason.GRAPH_FORBIDDEN
    assert "grant it User.Read.All" in raised.value.message
    assert "'u1'" in raised.value.message
    assert ROUTE in raised.value.message


def test_a_full_member_passes() -> None:
    check_user_properties_readable(FULL, ROUTE)
    check_user_properties_readable({**FULL, "businessPhones": ["+31855363011"]}, ROUTE)


def test_a_refusal_names_the_permission_the_call_needs() -> None:
    refused = GraphFailure(403, "Authorization_RequestDenied",
                           "Insufficient privileges to complete the operation.")
    default = classify(refused)
    named = classify(refused, needs="GroupMember.Read.All")
    assert isinstance(default, PermanentError)
    assert isinstance(named, PermanentError)
    assert "TeamsTelephoneNumber.ReadWrite.All" in default.message
    assert named.message.startswith("The app was refused by Microsoft Graph; grant it "
                                    "GroupMember.Read.All with admin consent. (Graph answered "
                                    "403 Authorization_RequestDenied: Insufficient privileges")
    assert "TeamsTelephoneNumber" not in named.message
    # Only refusals: anything else is classified as before.
    throttled = classify(GraphFailure(429, "TooManyRequests", "slow down"), needs="X.Read.All")
    assert "X.Read.All" not in throttled.message


def test_the_throttle_line_names_scope_information_and_wait() -> None:
    line = throttle_line("GET", "/v1.0/users/delta()", httpx.Headers({
        "Retry-After": "7", "x-ms-throttle-scope": SCOPE,
        "x-ms-throttle-information": "ResourceUnitLimitExceeded"}))
    assert line == (f"Graph throttled GET /v1.0/users/delta(): scope={SCOPE}, "
                    "information=ResourceUnitLimitExceeded, retry after 7 s")
    bare = throttle_line("POST", "/v1.0/admin/teams/x", httpx.Headers({}))
    assert bare.endswith("scope=(none given), information=(none given), retry after (not given)")
    for_tenant = throttle_line("POST", "/v1.0/admin/teams/x", httpx.Headers({}), TENANT)
    assert for_tenant.startswith(f"Graph throttled POST /v1.0/admin/teams/x for tenant {TENANT}: ")


class _Answers(httpx.AsyncBaseTransport):
    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self._status, self._headers = status, headers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(self._status, headers=self._headers, request=request)


async def test_the_middleware_names_the_tenant_its_client_is_for(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = _Answers(429, {"x-ms-throttle-scope": SCOPE})
    with caplog.at_level(logging.WARNING, logger="shared.adapters.graph.throttling"):
        await ThrottleLogHandler(TENANT).send(
            httpx.Request("GET", "http://127.0.0.1/v1.0/admin/teams/userConfigurations/u1"),
            transport)
    assert [record.getMessage() for record in caplog.records] == [
        f"Graph throttled GET /v1.0/admin/teams/userConfigurations/u1 for tenant {TENANT}: "
        f"scope={SCOPE}, information=(none given), retry after (not given)"]


@pytest.mark.parametrize(("status", "logged"), [(429, True), (200, False), (503, False)])
async def test_the_middleware_logs_each_429_and_passes_every_answer_on(
    caplog: pytest.LogCaptureFixture, status: int, logged: bool,
) -> None:
    transport = _Answers(status, {"Retry-After": "1", "x-ms-throttle-scope": SCOPE})
    with caplog.at_level(logging.WARNING, logger="shared.adapters.graph.throttling"):
        response = await ThrottleLogHandler().send(
            httpx.Request("GET", "http://127.0.0.1/v1.0/groups/g/transitiveMembers"), transport)
    assert response.status_code == status
    lines = [record.getMessage() for record in caplog.records]
    assert (lines == [f"Graph throttled GET /v1.0/groups/g/transitiveMembers: scope={SCOPE}, "
                      "information=(none given), retry after 1 s"]) is logged
