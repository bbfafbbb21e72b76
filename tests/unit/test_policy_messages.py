"""The policy actions on the number-assignments queue: they round-trip, and number messages'
wire form is unchanged by them."""

from __future__ import annotations

import json

from shared.core.messages import AssignmentMessage
from shared.core.tenant_rules import MainNumberPolicy

BASE = {
    "schema": "number-assignment/2", "tenantId": "t", "runId": "r", "userId": "u",
    "userPrincipalName": "u@contoso.example", "telephoneNumber": "+31855363010",
    "readPosition": 0, "reason": "main_number", "idempotencyKey": "k",
}


def test_a_grant_message_round_trips_with_its_domain_and_policies() -> None:
    message = AssignmentMessage.model_validate({
        **BASE, "action": "grant_policies", "number": "+31855363010",
        "domain": "contoso.example",
        "policies": [{"policyType": "CallingLineIdentity", "name": "Contoso Main"}],
    })

    again = AssignmentMessage.from_body(message.to_json())

    assert again == message
    assert again.policies == (
        MainNumberPolicy(policy_type="CallingLineIdentity", name="Contoso Main"),
    )


def test_number_messages_keep_their_wire_form() -> None:
    message = AssignmentMessage.from_body(json.dumps({
        **BASE, "action": "assign", "number": "+31855363011",
    }))

    assert "domain" not in json.loads(message.to_json())
    assert "policies" not in json.loads(message.to_json())
