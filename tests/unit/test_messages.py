from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.messages import SCHEMA, AssignmentMessage, MessageError

TENANT = "11111111-1111-1111-1111-111111111111"


def message(**overrides: object) -> AssignmentMessage:
    fields: dict[str, object] = {
        "tenant_id": TENANT,
        "run_id": "run-42",
        "user_id": "0f3a5c2e-0000-4000-8000-000000000001",
        "user_principal_name": "ann@contoso.example",
        "telephone_number": "+31855363011",
        "read_position": 3,
        "action": "assign",
        "reason": "number_changed",
        "number": "+31855363011",
        "previous_number": "+31855363012",
        "idempotency_key": "run-42|ann|assign|+31855363011",
    }
    fields.update(overrides)
    return AssignmentMessage.model_validate(fields)


def wire(**changes: object) -> str:
    body = json.loads(message().to_json())
    body.update(changes)
    return json.dumps(body)


def refusal(body: bytes | str) -> str:
    with pytest.raises(MessageError) as caught:
        AssignmentMessage.from_body(body)
    return str(caught.value)


def test_the_wire_form_is_versioned_camel_case_json_carrying_the_decision() -> None:
    body = json.loads(message().to_json())

    assert body == {
        "schema": "number-assignment/2",
        "tenantId": TENANT,
        "runId": "run-42",
        "userId": "0f3a5c2e-0000-4000-8000-000000000001",
        "userPrincipalName": "ann@contoso.example",
        "telephoneNumber": "+31855363011",
        "readPosition": 3,
        "action": "assign",
        "reason": "number_changed",
        "number": "+31855363011",
        "previousNumber": "+31855363012",
        "idempotencyKey": "run-42|ann|assign|+31855363011",
        "deferrals": 0,
        "operationLocation": None,
        "readAt": None,
    }
    assert SCHEMA == "number-assignment/2"


def test_a_former_members_unassign_has_no_number_raw_number_or_read_position() -> None:
    original = message(
        action="unassign", reason="left_group", number=None, telephone_number=None,
        read_position=None,
    )

    body = json.loads(original.to_json())

    assert body["action"] == "unassign"
    assert body["readPosition"] is None
    assert body["number"] is None
    assert body["telephoneNumber"] is None
    assert AssignmentMessage.from_body(original.to_json()) == original


def test_a_number_the_action_does_not_need_is_optional_on_the_wire() -> None:
    assign = json.loads(wire())
    del assign["previousNumber"]
    unassign = json.loads(wire(action="unassign"))
    del unassign["number"]

    assert AssignmentMessage.from_body(json.dumps(assign)).previous_number is None
    assert AssignmentMessage.from_body(json.dumps(unassign)).number is None


@pytest.mark.parametrize(
    ("action", "absent", "named"),
    [
        ("assign", {"number": None}, "number"),
        ("assign", {"number": ""}, "number"),
        ("unassign", {"previousNumber": None}, "previousNumber"),
        ("grant_policies", {}, "domain and policies"),
        ("revoke_policies", {"number": None}, "number and domain and policies"),
    ],
)
def test_a_message_without_what_its_action_needs_is_refused_when_read(
    action: str, absent: dict[str, object], named: str
) -> None:
    # Refused at parse time, so the queue function sets it aside on its first delivery instead
    # of failing it five times.
    text = refusal(wire(action=action, **absent))

    assert f"action={action!r} needs {named}: missing" in text


@pytest.mark.parametrize("number", ["+31855363010", " 0855363010 ", None])
@pytest.mark.parametrize("action", ["assign", "unassign"])
def test_a_message_survives_the_queue_round_trip(number: str | None, action: str) -> None:
    original = message(telephone_number=number, action=action)

    text = original.to_json()

    assert AssignmentMessage.from_body(text) == original
    assert AssignmentMessage.from_body(text.encode("utf-8")) == original


@settings(max_examples=100, deadline=None)
@given(
    run_id=st.text(min_size=1),
    upn=st.text(),
    number=st.one_of(st.none(), st.text()),
    previous=st.one_of(st.none(), st.text()),
    position=st.one_of(st.none(), st.integers(min_value=0, max_value=2**53)),
    action=st.sampled_from(["assign", "unassign"]),
    reason=st.text(),
)
def test_any_valid_message_round_trips_exactly(
    run_id: str,
    upn: str,
    number: str | None,
    previous: str | None,
    position: int | None,
    action: str,
    reason: str,
) -> None:
    # Each action carries the number it acts on; the other one is optional.
    if action == "assign":
        number = number or "+31855363011"
    else:
        previous = previous or "+31855363012"
    original = message(
        run_id=run_id, user_principal_name=upn, telephone_number=number, number=number,
        previous_number=previous, read_position=position, action=action, reason=reason,
    )

    assert AssignmentMessage.from_body(original.to_json().encode("utf-8")) == original


def test_a_version_1_body_is_refused_naming_the_schema() -> None:
    v1 = {
        "schema": "number-assignment/1",
        "tenantId": TENANT,
        "runId": "run-42",
        "userId": "0f3a5c2e-0000-4000-8000-000000000001",
        "userPrincipalName": "ann@contoso.example",
        "telephoneNumber": "+31855363011",
        "readPosition": 3,
    }

    text = refusal(json.dumps(v1))

    assert "schema='number-assignment/1'" in text
    assert "number-assignment/2" in text


@pytest.mark.parametrize("schema", ["number-assignment/3", "", None, 2])
def test_any_other_schema_is_refused_naming_it(schema: object) -> None:
    text = refusal(wire(schema=schema))

    assert f"schema={schema!r}" in text


def test_a_body_without_a_schema_is_refused_naming_it() -> None:
    body = json.loads(wire())
    del body["schema"]

    assert "schema: missing" in refusal(json.dumps(body))


@pytest.mark.parametrize("action", ["keep", "skip", "hold", "ASSIGN", "", None])
def test_an_action_that_is_not_assign_or_unassign_is_refused_naming_it(action: object) -> None:
    text = refusal(wire(action=action))

    assert f"action={action!r}" in text


@pytest.mark.parametrize("body", ["not json", b"\xff\xfe\xfd", "", "{'single': 'quotes'}"])
def test_a_body_that_is_not_json_is_refused(body: bytes | str) -> None:
    assert "not JSON" in refusal(body)


@pytest.mark.parametrize(("body", "kind"), [("[]", "list"), ('"text"', "str"), ("42", "int")])
def test_a_body_that_is_not_a_json_object_is_refused_naming_its_kind(body: str, kind: str) -> None:
    text = refusal(body)

    assert "JSON object" in text
    assert kind in text


@pytest.mark.parametrize(
    "field",
    [
        "tenantId", "runId", "userId", "userPrincipalName", "telephoneNumber", "readPosition",
        "action", "reason",
    ],
)
def test_a_missing_field_is_refused_naming_it(field: str) -> None:
    body = json.loads(message().to_json())
    del body[field]

    assert f"{field}: missing" in refusal(json.dumps(body))


@pytest.mark.parametrize("position", [-1, "3", 2.5, True])
def test_a_read_position_that_is_not_a_non_negative_integer_is_refused(position: object) -> None:
    text = refusal(wire(readPosition=position))

    assert f"readPosition={position!r}" in text


@pytest.mark.parametrize("field", ["tenantId", "runId", "userId"])
def test_an_empty_identifier_is_refused_naming_it(field: str) -> None:
    assert f"{field}=''" in refusal(wire(**{field: ""}))


def test_an_unknown_field_is_refused_naming_it() -> None:
    assert "priority" in refusal(wire(priority="high"))


def test_every_problem_in_a_message_is_listed() -> None:
    body = json.loads(message().to_json())
    del body["userId"]
    body["readPosition"] = -5
    body["action"] = "keep"

    text = refusal(json.dumps(body))

    assert "userId: missing" in text
    assert "readPosition=-5" in text
    assert "action='keep'" in text


def test_the_read_time_travels_as_iso_8601_and_comes_back_equal() -> None:
    read_at = datetime(2026, 11, 29, 4, 30, 5, 123000, tzinfo=UTC)
    original = message(read_at=read_at)

    assert json.loads(original.to_json())["readAt"] == "2026-11-29T04:30:05.123000Z"
    assert AssignmentMessage.from_body(original.to_json()).read_at == read_at
