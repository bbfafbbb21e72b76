"""The ``number-assignments`` queue message: one planned change to Teams for one user.

Versioned JSON (``schema``), camelCase keys. The queue function refuses a body it cannot read with
an error that names the field and the value; the body itself is kept in the poison queue.
Version 2 carries the planner's decision (``action``, ``number``, ``previousNumber``, ``reason``)
so the queue function re-checks exactly what was planned; version 1 (one message per member with
the raw number only) is no longer written or read. ``grant_policies`` / ``revoke_policies`` carry
a main number's policies (``domain``, ``policies``); both fields are optional, so every
``assign``/``unassign`` body written before them still reads.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from shared.core.tenant_rules import MainNumberPolicy

SCHEMA = "number-assignment/2"
#: Message actions about a main number's policies rather than a personal number.
POLICY_ACTIONS = frozenset({"grant_policies", "revoke_policies"})


class MessageError(Exception):
    """A queue message that cannot be processed, whatever the retry: a permanent error."""


class AssignmentMessage(BaseModel):
    """Work for the queue function: one assign or unassign the planner decided."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    schema_: Annotated[Literal["number-assignment/2"], Field(alias="schema")] = (
        "number-assignment/2"
    )
    tenant_id: Annotated[str, Field(min_length=1)]
    run_id: Annotated[str, Field(min_length=1)]
    user_id: Annotated[str, Field(min_length=1)]
    user_principal_name: str
    telephone_number: str | None
    read_position: Annotated[StrictInt, Field(ge=0)] | None
    action: Literal["assign", "unassign", "grant_policies", "revoke_policies"]
    reason: str
    number: str | None = None
    previous_number: str | None = None
    idempotency_key: Annotated[str, Field(min_length=1)]
    """The same for every delivery of one planned change; its effect is recorded under it."""
    deferrals: Annotated[StrictInt, Field(ge=0)] = 0
    """How often the change was put back on the queue to wait (throttling, a slow operation)."""
    operation_location: str | None = None
    """A Teams operation already started for this change: follow it, do not send it again."""
    read_at: datetime | None = None
    """When the directory data behind this change was read from Graph (None: from the stored
    snapshot). The queue function reads the user again unless this is recent."""
    domain: str | None = None
    """The SIP domain whose main number the policies belong to (policy actions only)."""
    policies: tuple[MainNumberPolicy, ...] = ()
    """grant: the main number's policies; revoke: the ones this app gave and takes back."""

    @model_validator(mode="after")
    def _names_what_its_action_needs(self) -> AssignmentMessage:
        # Checked here, at parse time, so that a message that can never be carried out goes to
        # the poison queue on its first delivery instead of failing five times.
        needs = {
            "assign": ("number",),
            "unassign": ("previous_number",),
            "grant_policies": ("number", "domain", "policies"),
            "revoke_policies": ("number", "domain", "policies"),
        }[self.action]
        missing = [to_camel(name) for name in needs if not getattr(self, name)]
        if missing:
            raise ValueError(f"action={self.action!r} needs {' and '.join(missing)}: missing")
        return self

    def to_json(self) -> str:
        """The wire form: compact JSON with camelCase keys (a number message's is unchanged by
        the policy fields: they are left out while empty)."""
        unset = {"domain", "policies"} if self.domain is None and not self.policies else None
        return self.model_dump_json(by_alias=True, exclude=unset)

    @classmethod
    def from_body(cls, body: bytes | str) -> AssignmentMessage:
        """Parse a queue message body.

        Raises:
            MessageError: naming the field and value that are wrong.
        """
        data = json_object_body(body, "queue message")
        if "schema" not in data:
            # A body without a version is not ours to guess at.
            raise MessageError(f"queue message is not a valid {SCHEMA}: schema: missing")
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            problems = "; ".join(_describe(problem) for problem in error.errors())
            raise MessageError(f"queue message is not a valid {SCHEMA}: {problems}") from None


def json_object_body(body: bytes | str, what: str) -> dict[str, object]:
    """A queue message body as the JSON object it must be.

    Raises:
        MessageError: the body is not JSON, or not an object (``what`` names the message).
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise MessageError(f"{what} is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise MessageError(f"{what} must be a JSON object, got {type(data).__name__}")
    return data


def _describe(problem: ErrorDetails) -> str:
    field = ".".join(str(part) for part in problem["loc"]) or "body"
    if problem["type"] == "missing":
        return f"{field}: missing"
    if problem["type"] == "value_error":  # a check across fields names them in its message
        return str(problem.get("ctx", {}).get("error", problem["msg"]))
    return f"{field}={problem.get('input')!r}: {problem['msg']}"
