from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.errors import PermanentError, SyncError, TemporaryError
from shared.core.graph_errors import GraphFailure, classify, classify_operation_failure
from shared.core.outcomes import Reason

NUMBER = "+31855363010"
TENANT = "11111111-1111-1111-1111-111111111111"
USER = "0f3a5c2e-0000-4000-8000-000000000002"
NESTED_FORBIDDEN = '{"code":"Forbidden","message":"Access Denied."}'

# What a helpdesk must be told to do, per reason.
HINTS = {
    Reason.ASSIGNED_ELSEWHERE: "remove it there or correct the user's telephoneNumber",
    Reason.NOT_IN_INVENTORY: "ask the operator to add it",
    Reason.NOT_LICENSED: "Teams Phone licence",
    Reason.USER_NOT_FOUND: "check the account and licence",
    Reason.GRAPH_FORBIDDEN: "TeamsTelephoneNumber.ReadWrite.All",
    Reason.ASSIGNMENT_FAILED: "contact support",
}


def permanent(failure: GraphFailure) -> PermanentError:
    error = classify(failure)
    assert isinstance(error, PermanentError), f"expected permanent, got {error!r}"
    return error


def temporary(failure: GraphFailure) -> TemporaryError:
    error = classify(failure)
    assert isinstance(error, TemporaryError), f"expected temporary, got {error!r}"
    return error


@pytest.mark.parametrize(
    ("status", "code"),
    [(429, "TooManyRequests"), (503, "serviceNotAvailable"), (504, "timeout")],
)
def test_throttling_and_unavailability_are_temporary_and_keep_retry_after(
    status: int, code: str
) -> None:
    error = temporary(GraphFailure(status, code, "Please slow down.", retry_after_seconds=17.0))

    assert error.retry_after_seconds == 17.0
    assert str(status) in error.message
    assert "Please slow down." in error.message


def test_a_temporary_error_without_retry_after_leaves_the_delay_to_the_host() -> None:
    error = temporary(GraphFailure(503, "serviceNotAvailable", "down"))

    assert error.retry_after_seconds is None


@pytest.mark.parametrize("status", [401, 403])
def test_unauthorised_and_forbidden_mean_the_app_lacks_graph_permission(status: int) -> None:
    error = permanent(
        GraphFailure(status, "Authorization_RequestDenied", "Insufficient privileges")
    )

    assert error.reason is Reason.GRAPH_FORBIDDEN
    assert "admin consent" in error.message
    assert "Insufficient privileges" in error.message


@pytest.mark.parametrize("status", [400, 403, None])
def test_forbidden_nested_in_a_teams_unknown_error_is_graph_forbidden(status: int | None) -> None:
    error = permanent(GraphFailure(status, "UnknownError", NESTED_FORBIDDEN))

    assert error.reason is Reason.GRAPH_FORBIDDEN
    assert "Access Denied." in error.message  # the inner text, not the raw JSON
    assert '{"code"' not in error.message


def test_a_nested_error_wrapped_in_an_error_object_is_unwrapped() -> None:
    message = (
        '{"error":{"code":"BadRequest","message":"Telephone Number \''
        + NUMBER
        + "' is not found from tenant '"
        + TENANT
        + "'\"}}"
    )

    error = permanent(GraphFailure(400, "UnknownError", message))

    assert error.reason is Reason.NOT_IN_INVENTORY
    assert f"Telephone Number '{NUMBER}' is not found from tenant '{TENANT}'" in error.message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            f"Telephone Number '{NUMBER}' has already been assigned to another user",
            Reason.ASSIGNED_ELSEWHERE,
        ),
        (
            f"Telephone Number '{NUMBER}' is not found from tenant '{TENANT}'",
            Reason.NOT_IN_INVENTORY,
        ),
        (f"The user '{USER}' lacks appropriate licenses", Reason.NOT_LICENSED),
        (f"The user '{USER}' is not found", Reason.USER_NOT_FOUND),
    ],
)
def test_teams_refusal_texts_on_a_bad_request_map_to_their_reason(
    text: str, reason: Reason
) -> None:
    error = permanent(GraphFailure(400, "BadRequest", text))

    assert error.reason is reason
    assert text in error.message  # the operator still sees what Teams said


def test_service_unavailable_text_on_a_bad_request_is_temporary() -> None:
    temporary(GraphFailure(400, "BadRequest", "Service is unavailable. Please try again"))


def test_an_unrecognised_bad_request_is_a_generic_assignment_failure() -> None:
    error = permanent(GraphFailure(400, "BadRequest", "Something Teams has never said before"))

    assert error.reason is Reason.ASSIGNMENT_FAILED
    assert "Something Teams has never said before" in error.message
    assert "400" in error.message


def test_a_plain_404_means_teams_does_not_know_the_user() -> None:
    error = permanent(GraphFailure(404, "NotFound", "Resource could not be discovered."))

    assert error.reason is Reason.USER_NOT_FOUND


@pytest.mark.parametrize(
    ("status_detail", "reason"),
    [
        (
            f"Telephone Number '{NUMBER}' has already been assigned to another user",
            Reason.ASSIGNED_ELSEWHERE,
        ),
        (
            f"Telephone Number '{NUMBER}' is not found from tenant '{TENANT}'",
            Reason.NOT_IN_INVENTORY,
        ),
        (f"The user '{USER}' lacks appropriate licenses", Reason.NOT_LICENSED),
        (f"The user '{USER}' is not found", Reason.USER_NOT_FOUND),
        (NESTED_FORBIDDEN, Reason.GRAPH_FORBIDDEN),
        ("The operation failed for an unknown reason", Reason.ASSIGNMENT_FAILED),
    ],
)
def test_failed_assignment_operations_are_classified_by_their_status_detail(
    status_detail: str, reason: Reason
) -> None:
    error = classify_operation_failure(status_detail)

    assert isinstance(error, PermanentError)
    assert error.reason is reason
    assert HINTS[reason] in error.message


def test_a_failed_operation_that_says_try_again_is_temporary() -> None:
    error = classify_operation_failure("Service is unavailable. Please try again later.")

    assert isinstance(error, TemporaryError)


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (GraphFailure(400, "BadRequest", "has already been assigned"), Reason.ASSIGNED_ELSEWHERE),
        (GraphFailure(400, "BadRequest", "is not found from tenant"), Reason.NOT_IN_INVENTORY),
        (GraphFailure(400, "BadRequest", "lacks appropriate licenses"), Reason.NOT_LICENSED),
        (GraphFailure(400, "BadRequest", "The user 'x' is not found"), Reason.USER_NOT_FOUND),
        (GraphFailure(403, "Forbidden", "no"), Reason.GRAPH_FORBIDDEN),
        (GraphFailure(400, "BadRequest", "???"), Reason.ASSIGNMENT_FAILED),
    ],
)
def test_every_permanent_error_tells_a_person_what_to_change(
    failure: GraphFailure, reason: Reason
) -> None:
    error = permanent(failure)

    assert error.reason is reason
    assert HINTS[reason] in error.message
    assert "Graph answered" in error.message  # and the detail behind it
    assert str(error) == error.message


def test_sync_error_cannot_be_raised_directly() -> None:
    with pytest.raises(TypeError, match="TemporaryError or PermanentError"):
        SyncError("something went wrong")


def test_both_error_kinds_are_sync_errors_the_shell_can_catch() -> None:
    assert isinstance(TemporaryError("later"), SyncError)
    assert isinstance(PermanentError(Reason.ASSIGNMENT_FAILED, "never"), SyncError)


@settings(max_examples=200, deadline=None)
@given(
    status=st.one_of(st.none(), st.integers(min_value=100, max_value=599)),
    code=st.text(max_size=20),
    message=st.one_of(
        st.text(),
        st.builds(
            lambda c, m: f'{{"code": {c!r}, "message": {m!r}}}'.replace("'", '"'),
            st.text(alphabet="abcXYZ", max_size=8),
            st.text(alphabet="abc .", max_size=20),
        ),
    ),
)
def test_classify_always_answers_temporary_or_permanent_with_a_hint(
    status: int | None, code: str, message: str
) -> None:
    error = classify(GraphFailure(status, code, message))

    if isinstance(error, PermanentError):
        assert error.reason in HINTS
        assert HINTS[error.reason] in error.message
    else:
        assert isinstance(error, TemporaryError)
    if status in {429, 503, 504}:
        assert isinstance(error, TemporaryError)


# -- refusal texts the classifier has never seen (issue 11, item 9) -------------------------

UNSEEN = "The number service declined this request (decision 04821)."


@pytest.mark.parametrize("status", [400, 409, 422, None])
def test_an_unseen_refusal_text_is_assignment_failed_with_the_whole_text(
    status: int | None,
) -> None:
    error = permanent(GraphFailure(status, "BadRequest", UNSEEN))

    assert error.reason is Reason.ASSIGNMENT_FAILED
    assert UNSEEN in error.message


def test_an_unseen_operation_detail_is_assignment_failed_with_the_whole_text() -> None:
    error = classify_operation_failure(UNSEEN)

    assert isinstance(error, PermanentError)
    assert error.reason is Reason.ASSIGNMENT_FAILED
    assert UNSEEN in error.message


@pytest.mark.parametrize("text", [
    f"{UNSEEN} Please try again later.",
    "Declined for now; retry later.",
    "The backend is temporarily unavailable (decision 04821).",
])
def test_an_unseen_text_that_says_try_again_is_temporary(text: str) -> None:
    assert text in temporary(GraphFailure(400, "BadRequest", text)).message
    assert isinstance(classify_operation_failure(text), TemporaryError)


@pytest.mark.parametrize("status", [500, 501, 502, 503, 504, 505, 507, 599])
def test_any_5xx_status_is_temporary_whatever_its_text(status: int) -> None:
    assert UNSEEN in temporary(GraphFailure(status, "UnknownError", UNSEEN)).message


@pytest.mark.parametrize("text", [
    '{"code":"InternalServerError","message":"Declined (decision 04821)."}',
    '{"error":{"code":"Declined","status":503,"message":"Declined (decision 04821)."}}',
    "Declined by the number service: upstream answered HTTP 502 (decision 04821).",
    "Declined, status code 500 (decision 04821).",
])
def test_an_unseen_text_that_carries_a_5xx_is_temporary(text: str) -> None:
    assert isinstance(classify(GraphFailure(400, "UnknownError", text)), TemporaryError)
    assert isinstance(classify_operation_failure(text), TemporaryError)


def test_digits_of_a_number_in_a_text_are_not_a_5xx_status() -> None:
    text = f"Declined {NUMBER} for user {USER} (decision 503)."

    assert permanent(GraphFailure(400, "BadRequest", text)).reason is Reason.ASSIGNMENT_FAILED
