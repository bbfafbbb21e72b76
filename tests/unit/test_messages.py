from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.messages import SCHEMA_V1, AssignmentMessage, MessageError

TENANT = "11111111-1111-1111-1111-111111111111"


def message(**overrides: object) -> AssignmentMessage:
    fields: dict[str, object] = {
        "tenant_id": TENANT,
        "run_id": "run-42",
        "user_id": "0f3a5c2e-0000-4000-8000-000000000001",
        "user_principal_name": "ann@contoso.example",
        "telephone_number": "+31855363010",
        "read_position": 3,
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


def test_the_wire_form_is_versioned_camel_case_json() -> None:
    body = json.loads(message().to_json())

    assert body == {
        "schema": "number-assignment/1",
        "tenantId": TENANT,
        "runId": "run-42",
        "userId": "0f3a5c2e-0000-4000-8000-000000000001",
        "userPrincipalName": "ann@contoso.example",
        "telephoneNumber": "+31855363010",
        "readPosition": 3,
    }
    assert SCHEMA_V1 == "number-assignment/1"


@pytest.mark.parametrize("number", ["+31855363010", " 0855363010 ", None])
def test_a_message_survives_the_queue_round_trip(number: str | None) -> None:
    original = message(telephone_number=number)

    text = original.to_json()

    assert AssignmentMessage.from_body(text) == original
    assert AssignmentMessage.from_body(text.encode("utf-8")) == original


@settings(max_examples=100, deadline=None)
@given(
    run_id=st.text(min_size=1),
    upn=st.text(),
    number=st.one_of(st.none(), st.text()),
    position=st.integers(min_value=0, max_value=2**53),
)
def test_any_valid_message_round_trips_exactly(
    run_id: str, upn: str, number: str | None, position: int
) -> None:
    original = message(
        run_id=run_id, user_principal_name=upn, telephone_number=number, read_position=position
    )

    assert AssignmentMessage.from_body(original.to_json().encode("utf-8")) == original


@pytest.mark.parametrize("body", ["not json", b"\xff\xfe\xfd", "", "{'single': 'quotes'}"])
def test_a_body_that_is_not_json_is_refused(body: bytes | str) -> None:
    assert "not JSON" in refusal(body)


@pytest.mark.parametrize(("body", "kind"), [("[]", "list"), ('"text"', "str"), ("42", "int")])
def test_a_body_that_is_not_a_json_object_is_refused_naming_its_kind(body: str, kind: str) -> None:
    text = refusal(body)

    assert "JSON object" in text
    assert kind in text


def test_a_newer_schema_version_is_refused_naming_it() -> None:
    text = refusal(wire(schema="number-assignment/2"))

    assert "schema='number-assignment/2'" in text
    assert "number-assignment/1" in text


@pytest.mark.parametrize(
    "field", ["tenantId", "runId", "userId", "userPrincipalName", "telephoneNumber", "readPosition"]
)
def test_a_missing_field_is_refused_naming_it(field: str) -> None:
    body = json.loads(message().to_json())
    del body[field]

    assert f"{field}: missing" in refusal(json.dumps(body))


def test_a_negative_read_position_is_refused_naming_field_and_value() -> None:
    text = refusal(wire(readPosition=-1))

    assert "readPosition=-1" in text


@pytest.mark.parametrize("field", ["tenantId", "runId", "userId"])
def test_an_empty_identifier_is_refused_naming_it(field: str) -> None:
    assert f"{field}=''" in refusal(wire(**{field: ""}))


def test_an_unknown_field_is_refused_naming_it() -> None:
    assert "priority" in refusal(wire(priority="high"))


def test_every_problem_in_a_message_is_listed() -> None:
    body = json.loads(message().to_json())
    del body["userId"]
    body["readPosition"] = -5

    text = refusal(json.dumps(body))

    assert "userId: missing" in text
    assert "readPosition=-5" in text
