"""What the HTTP entry points accept: examples of every refusal, and properties over any JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.http_requests import (
    MAX_APPROVED_BY,
    MAX_BODY_BYTES,
    ApprovalRequest,
    HoldsQuery,
    RequestError,
    SyncRequest,
)

T = TypeVar("T")


def approval(body: object, params: dict[str, str] | None = None) -> ApprovalRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return ApprovalRequest.from_http(params or {}, raw)


def outcome(read: Callable[[], T]) -> T | RequestError:
    """What reading gave: the request, or the refusal (anything else raised fails the test)."""
    try:
        return read()
    except RequestError as error:
        return error


def refusal(body: object, params: dict[str, str] | None = None) -> RequestError:
    with pytest.raises(RequestError) as caught:
        approval(body, params)
    return caught.value


# -- POST /api/holds/approve ---------------------------------------------------------------


def test_a_valid_approval_reads_who_and_which_run() -> None:
    request = approval({"approvedBy": "  ops@operator.example ", "runId": "20261129T020304Z-1a"})

    assert (request.approved_by, request.run_id) == ("ops@operator.example", "20261129T020304Z-1a")
    assert approval({"approvedBy": "Jan de Vries"}).run_id is None


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "approvedBy=null"),
        (False, "approvedBy=false"),
        (123, "approvedBy=123"),
        ({}, "approvedBy={}"),
        ([], "approvedBy=[]"),
        (["ops"], 'approvedBy=["ops"]'),
    ],
)
def test_an_approver_that_is_not_text_is_refused_naming_it(value: object, shown: str) -> None:
    error = refusal({"approvedBy": value})

    assert (error.status, error.field) == (400, "approvedBy")
    assert error.message == f"{shown}: Input should be a valid string"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "not an empty text"),
        ("   ", "not an empty text"),
        ("x" * (MAX_APPROVED_BY + 1), f"at most {MAX_APPROVED_BY} characters"),
        ("ops\n2026-01-01 forged log line", "control characters"),
        ("ops\u0000", "control characters"),
    ],
)
def test_an_approver_that_names_nobody_is_refused(value: str, says: str) -> None:
    error = refusal({"approvedBy": value})

    assert (error.status, error.field) == (400, "approvedBy")
    assert says in error.message


def test_the_longest_approver_is_accepted() -> None:
    assert len(approval({"approvedBy": "é" * MAX_APPROVED_BY}).approved_by) == MAX_APPROVED_BY


def test_a_missing_approver_says_what_it_is() -> None:
    for body in ({}, {"runId": "r"}, b"", b" \n"):
        error = refusal(body)
        assert (error.field, error.message) == (
            "approvedBy", "approvedBy: missing (who approves: a name or e-mail)",
        )


@pytest.mark.parametrize("body", [[], ["ops"], None, "ops", 123, 1.5, True])
def test_a_body_that_is_not_an_object_is_refused(body: object) -> None:
    error = refusal(body)

    assert (error.status, error.field) == (400, "body")
    assert error.message.startswith(f"body={json.dumps(body)}: the body must be a JSON object")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{", "body: not valid JSON: EOF while parsing an object"),
        (b"\xff\xfe", "body: not valid JSON"),
        (b'{"approvedBy": "ops"} {}', "trailing characters"),
        (b"[" * 2000 + b"]" * 2000, "recursion limit exceeded"),
        (b'{"approvedBy": ' + b"[" * 1500 + b"]" * 1500 + b"}", "recursion limit exceeded"),
        (b'{"approvedBy": "\\ud800"}', "body: not valid JSON"),
    ],
)
def test_a_body_that_is_not_json_is_refused_without_recursing(body: bytes, says: str) -> None:
    assert len(body) <= MAX_BODY_BYTES
    error = refusal(body)

    assert (error.status, error.field) == (400, "body")
    assert says in error.message


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 10_000 + b"]" * 10_000,
        json.dumps({"approvedBy": "x" * 40_000}).encode(),
        b" " * (MAX_BODY_BYTES + 1),
    ],
)
def test_a_body_over_the_limit_is_refused_unread(body: bytes) -> None:
    error = refusal(body)

    assert (error.status, error.field) == (413, "body")
    assert f"{len(body):,} bytes, the limit is {MAX_BODY_BYTES:,}" in error.message


@pytest.mark.parametrize(
    ("run_id", "says"),
    [
        (123, "runId=123: Input should be a valid string"),
        (["r"], 'runId=["r"]: Input should be a valid string'),
        (None, "runId=null: give a run id, or leave runId out"),
        ("", 'runId="": String should have at least 1 character'),
        ("r" * 129, "String should have at most 128 characters"),
        ("run\r\n", "control characters"),
    ],
)
def test_a_run_id_that_is_not_a_run_is_refused(run_id: object, says: str) -> None:
    error = refusal({"approvedBy": "ops", "runId": run_id})

    assert (error.status, error.field) == (400, "runId")
    assert says in error.message


def test_unknown_fields_are_refused_by_name() -> None:
    error = refusal({"approvedBy": "ops", "approved_by": "x", "force": True})

    assert error.field == "approved_by"
    assert error.message == (
        'approved_by="x": unknown field; the body takes approvedBy, runId; '
        "force=true: unknown field; the body takes approvedBy, runId"
    )


def test_every_problem_is_named_and_the_first_is_the_field() -> None:
    error = refusal({"approvedBy": 1, "runId": 2})

    assert error.field == "approvedBy"
    assert "approvedBy=1" in error.message
    assert "runId=2" in error.message


def test_a_long_value_is_cut_short_in_the_message() -> None:
    error = refusal({"approvedBy": "x" * 1000})

    assert len(error.message) < 200
    assert "… (1,000 characters)" in error.message


def test_the_approval_takes_no_query_parameters_but_the_function_key() -> None:
    assert approval({"approvedBy": "ops"}, {"code": "function-key"}).approved_by == "ops"
    error = refusal({"approvedBy": "ops"}, {"runId": "r1"})

    assert (error.status, error.field) == (400, "runId")
    assert "unknown query parameter" in error.message
    assert "go in the JSON body" in error.message


def test_a_run_with_nothing_pending_is_a_404_naming_it() -> None:
    error = approval({"approvedBy": "ops", "runId": "r-typo"}).no_pending_holds()

    assert (error.status, error.field) == (404, "runId")
    assert error.to_json() == {
        "error": "runId",
        "message": 'runId="r-typo": no pending holds of this run (GET /api/holds?status=all '
                   "lists every hold with its run and status)",
    }


def test_the_cli_options_follow_the_same_rules_and_are_named_as_options() -> None:
    names = {"approvedBy": "--by", "runId": "--run"}
    assert ApprovalRequest.from_options(" ops ", None, names).approved_by == "ops"

    for approved_by in ("", "x" * 40_000, "a\x1bb"):
        with pytest.raises(RequestError) as caught:
            ApprovalRequest.from_options(approved_by, None, names)
        assert caught.value.field == "--by"
        assert caught.value.message.startswith("--by=")
    with pytest.raises(RequestError) as caught:
        ApprovalRequest.from_options("ops", "", names)
    assert caught.value.field == "--run"


# -- properties --------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=3),
    max_leaves=12,
)
approvers = st.text(min_size=1, max_size=MAX_APPROVED_BY).filter(
    lambda text: text.strip() and text.isprintable()
)
bodies = json_values | st.fixed_dictionaries(
    {"approvedBy": json_values | approvers},
    optional={"runId": json_values | st.text(max_size=12), "extra": json_values},
)


@settings(max_examples=400)
@given(bodies)
def test_any_json_is_read_or_refused_naming_a_field_never_raised(body: object) -> None:
    read = outcome(lambda: ApprovalRequest.from_http({}, json.dumps(body).encode()))

    if isinstance(read, RequestError):
        assert read.status in {400, 413}
        names = set(body) if isinstance(body, dict) else set()
        assert read.field in names | {"body", "approvedBy"}
        assert read.message.startswith(read.field)
        return
    assert isinstance(body, dict)
    assert set(body) <= {"approvedBy", "runId"}
    assert isinstance(body["approvedBy"], str)
    assert read.approved_by == body["approvedBy"].strip()
    assert read.run_id == body.get("runId")


@given(st.binary(max_size=64))
def test_any_bytes_are_read_or_refused_never_raised(raw: bytes) -> None:
    read = outcome(lambda: ApprovalRequest.from_http({}, raw))

    if isinstance(read, RequestError):
        assert read.field in {"body", "approvedBy"} or read.field in raw.decode(errors="replace")


@given(approvers, st.none() | st.text(min_size=1, max_size=128).filter(str.isprintable))
def test_a_valid_body_round_trips(approved_by: str, run_id: str | None) -> None:
    body = {"approvedBy": approved_by} | ({} if run_id is None else {"runId": run_id})

    request = ApprovalRequest.from_http({}, json.dumps(body).encode())

    assert request.model_dump(by_alias=True, exclude_none=True) == body | {
        "approvedBy": approved_by.strip()
    }


# -- POST /api/sync and GET /api/holds ---------------------------------------------------


@pytest.mark.parametrize(
    ("value", "dry_run"),
    [("true", True), ("TRUE", True), (" True ", True), ("1", True),
     ("false", False), ("False", False), ("0", False)],
)
def test_dry_run_reads_true_or_false(value: str, dry_run: bool) -> None:
    assert SyncRequest.from_http({"dryRun": value, "code": "key"}, b"").dry_run is dry_run


def test_no_dry_run_is_a_real_sync() -> None:
    assert SyncRequest.from_http({}, b"").dry_run is False
    assert SyncRequest.from_http({}, b" \r\n").dry_run is False


@pytest.mark.parametrize("value", ["maybe", "", "yes", "2", "tru", "true,false"])
def test_any_other_dry_run_is_refused_naming_it(value: str) -> None:
    with pytest.raises(RequestError) as caught:
        SyncRequest.from_http({"dryRun": value}, b"")

    assert (caught.value.status, caught.value.field) == (400, "dryRun")
    assert caught.value.message == f"dryRun={json.dumps(value)}: say true or false (or 1 or 0)"


def test_a_misspelt_dry_run_is_refused_not_ignored() -> None:
    with pytest.raises(RequestError) as caught:
        SyncRequest.from_http({"dryrun": "true"}, b"")

    assert caught.value.field == "dryrun"
    assert caught.value.message == (
        'dryrun="true": unknown query parameter; POST /api/sync takes dryRun'
    )


def test_a_sync_refuses_a_body_rather_than_ignoring_it() -> None:
    with pytest.raises(RequestError) as caught:
        SyncRequest.from_http({}, b'{"dryRun": true}')

    assert (caught.value.status, caught.value.field) == (400, "body")
    assert "?dryRun=true" in caught.value.message


@pytest.mark.parametrize(
    ("value", "ledger_status"),
    [("pending", "pending"), ("Approved", "approved"), ("dropped", "dropped"), ("all", None),
     ("ALL", None), ("", None)],
)
def test_status_reads_a_hold_status_or_all(value: str, ledger_status: str | None) -> None:
    assert HoldsQuery.from_http({"status": value}).ledger_status == ledger_status


def test_no_status_lists_the_pending_holds() -> None:
    assert HoldsQuery.from_http({"code": "key"}).ledger_status == "pending"


@pytest.mark.parametrize("params", [{"status": "bogus"}, {"status": "pending,approved"}])
def test_any_other_status_is_refused_naming_it(params: dict[str, str]) -> None:
    with pytest.raises(RequestError) as caught:
        HoldsQuery.from_http(params)

    assert (caught.value.status, caught.value.field) == (400, "status")
    assert caught.value.message == (
        f"status={json.dumps(params['status'])}: say pending, approved, dropped or all "
        "(empty: all)"
    )


@given(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3))
def test_any_query_is_read_or_refused_naming_a_parameter(params: dict[str, str]) -> None:
    for read in (
        outcome(lambda: SyncRequest.from_http(params, b"")),
        outcome(lambda: HoldsQuery.from_http(params)),
    ):
        if isinstance(read, RequestError):
            assert read.status == 400
            assert read.field in params
