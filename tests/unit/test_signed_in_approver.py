"""Behind App Service Authentication, an approval is recorded in the signed-in person's name."""

from __future__ import annotations

import json

import pytest

from shared.http_requests import (
    MAX_BODY_BYTES,
    ApprovalRequest,
    RequestError,
    signed_in_principal,
    with_signed_in_approver,
)

_SIGNED_IN = {"X-MS-CLIENT-PRINCIPAL-NAME": "ana@operator.example"}
_AUTH_ON = {"WEBSITE_AUTH_ENABLED": "True"}


def test_the_signed_in_person_approves_whatever_the_body_says() -> None:
    body = json.dumps({"approvedBy": "someone else", "runId": "run-1"}).encode()
    principal = signed_in_principal(_SIGNED_IN, _AUTH_ON)
    approval = ApprovalRequest.from_http({}, with_signed_in_approver(body, principal))
    assert (approval.approved_by, approval.run_id) == ("ana@operator.example", "run-1")


def test_a_signed_in_person_need_not_say_who_approves() -> None:
    principal = signed_in_principal(_SIGNED_IN, _AUTH_ON)
    approval = ApprovalRequest.from_http({}, with_signed_in_approver(b"", principal))
    assert approval.approved_by == "ana@operator.example"


def test_the_header_is_not_believed_without_app_service_authentication() -> None:
    # Anyone with a function key could send it: only the platform's word counts.
    assert signed_in_principal(_SIGNED_IN, {}) is None
    assert signed_in_principal(_SIGNED_IN, {"WEBSITE_AUTH_ENABLED": "False"}) is None
    with pytest.raises(RequestError, match="approvedBy"):
        ApprovalRequest.from_http({}, with_signed_in_approver(b"{}", None))


def test_header_names_are_case_insensitive_and_a_blank_principal_is_refused() -> None:
    assert signed_in_principal({"x-ms-client-principal-name": "ana"}, _AUTH_ON) == "ana"
    assert signed_in_principal({}, _AUTH_ON) is None
    with pytest.raises(RequestError, match="X-MS-CLIENT-PRINCIPAL-NAME"):
        signed_in_principal({"X-MS-CLIENT-PRINCIPAL-NAME": "  "}, _AUTH_ON)


@pytest.mark.parametrize("body", [b"[1]", b"not json", b"x" * (MAX_BODY_BYTES + 1)])
def test_a_body_that_is_no_object_is_left_for_its_validation(body: bytes) -> None:
    assert with_signed_in_approver(body, "ana") == body
