"""The ``tenant-syncs`` queue message: run one customer tenant's sync now.

The timer (and ``POST /api/sync``) enqueues one per active tenant that is due; the queue function
runs that tenant's sync with its own lease, so one tenant's slow or failing Graph never delays
another's. Versioned JSON (``schema``), camelCase keys; a body the queue function cannot read is
set aside with an error naming the field and the value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from shared.core.messages import MessageError, json_object_body

TENANT_SYNC_SCHEMA = "tenant-sync/1"


class TenantSyncMessage(BaseModel):
    """Work for the tenant-sync queue function: one tenant's planning run."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    schema_: Annotated[Literal["tenant-sync/1"], Field(alias="schema")] = "tenant-sync/1"
    tenant_id: UUID
    requested_at: datetime
    requested_by: Annotated[str, Field(min_length=1, max_length=256)]
    """``timer``, or who asked through ``POST /api/sync``."""

    @property
    def tenant_key(self) -> str:
        """The tenant id as registry rows and stores key it."""
        return str(self.tenant_id)

    def to_json(self) -> str:
        """The wire form: compact JSON with camelCase keys."""
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_body(cls, body: bytes | str) -> TenantSyncMessage:
        """Parse a queue message body.

        Raises:
            MessageError: naming the field and value that are wrong.
        """
        data = json_object_body(body, "tenant-sync message")
        if data.get("schema") != TENANT_SYNC_SCHEMA:
            raise MessageError(f"tenant-sync message is not a {TENANT_SYNC_SCHEMA} object: "
                               f"schema={data.get('schema')!r}")
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in problem['loc'])}="
                f"{problem.get('input')!r}: {problem['msg']}"
                if problem["type"] != "missing"
                else f"{'.'.join(str(part) for part in problem['loc'])}: missing"
                for problem in error.errors()
            )
            raise MessageError(f"tenant-sync message is not valid: {problems}") from None
