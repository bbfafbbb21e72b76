"""The main-number policies this app granted, in Azure Table Storage (table ``policygrants``).

PartitionKey = tenant id, RowKey = Entra user id. ``Policies`` is JSON: one object per policy
with ``policyType``, ``name``, ``policyId`` and ``assignedByApp`` (the ownership marker: only such
policies are ever taken back). Writes are whole-row upserts (a grant is rewritten as a whole by
the one message that owns the user at a time) and deletes under the row's ETag.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from shared.core.policy_planner import GrantedPolicy, PolicyGrant

GRANTS_TABLE = "policygrants"


class TablePolicyGrantStore:
    """Implements ``PolicyGrantStore`` on the ``policygrants`` table."""

    def __init__(self, service: TableServiceClient, tenant_id: str) -> None:
        self._tenant_id = tenant_id  # one tenant per app: every row's PartitionKey
        self._table: TableClient = service.get_table_client(GRANTS_TABLE)

    async def list_grants(self) -> dict[str, PolicyGrant]:
        """Every grant of the tenant, by user id."""
        entities = self._table.query_entities(
            "PartitionKey eq @tenant", parameters={"tenant": self._tenant_id}
        )
        return {entity["RowKey"]: _grant(entity) async for entity in entities}

    async def get_grant(self, user_id: str) -> PolicyGrant | None:
        """One user's grant, if any."""
        try:
            return _grant(await self._table.get_entity(self._tenant_id, user_id))
        except ResourceNotFoundError:
            return None

    async def save_grant(self, grant: PolicyGrant) -> None:
        """Upsert the user's grant as a whole (idempotent)."""
        await self._table.upsert_entity(_entity(self._tenant_id, grant), mode=UpdateMode.REPLACE)

    async def remove_grant(self, user_id: str) -> bool:
        """Delete the user's grant under its ETag; False when there was none."""
        try:
            entity = await self._table.get_entity(self._tenant_id, user_id)
        except ResourceNotFoundError:
            return False
        try:
            await self._table.delete_entity(
                self._tenant_id, user_id, etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            return await self.remove_grant(user_id)
        except ResourceNotFoundError:
            return False
        return True


def _entity(tenant_id: str, grant: PolicyGrant) -> dict[str, object]:
    return {
        "PartitionKey": tenant_id,
        "RowKey": grant.user_id,
        "UserPrincipalName": grant.user_principal_name,
        "Domain": grant.domain,
        "MainNumber": grant.main_number,
        "Policies": json.dumps([
            {"policyType": p.policy_type, "name": p.name, "policyId": p.policy_id,
             "assignedByApp": p.assigned_by_app}
            for p in grant.policies
        ]),
        "GrantedAt": grant.granted_at,
        "Verified": grant.verified,
    }


def _grant(entity: Any) -> PolicyGrant:
    granted_at = entity.get("GrantedAt")
    return PolicyGrant(
        user_id=str(entity["RowKey"]),
        user_principal_name=str(entity.get("UserPrincipalName", "")),
        domain=str(entity.get("Domain", "")),
        main_number=str(entity.get("MainNumber", "")),
        policies=tuple(
            GrantedPolicy(
                policy_type=str(item["policyType"]), name=str(item["name"]),
                policy_id=str(item["policyId"]), assigned_by_app=bool(item["assignedByApp"]),
            )
            for item in json.loads(str(entity.get("Policies") or "[]"))
        ),
        granted_at=(
            granted_at if isinstance(granted_at, datetime) else datetime.fromtimestamp(0, UTC)
        ),
        verified=bool(entity.get("Verified", False)),
    )
