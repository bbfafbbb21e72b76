"""Removing a customer tenant: what ``tenants remove --release-numbers`` may take back.

Pure. Removal itself never unassigns anything. With ``--release-numbers`` every number this app
provably put on a user (a claim with the ownership marker) becomes a hold, exactly as the
mass-unassign guard holds a run's unassignments: nothing leaves Teams until a person approves
the holds (``holds approve``), and then only numbers still carrying the app's marker.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from shared.core.directory import Claim
from shared.core.records import Hold

RELEASE_REASON = "tenant_removed"


def release_run_id(now: datetime) -> str:
    """The run id the release's holds are filed under (one per removal)."""
    return f"{now:%Y%m%dT%H%M%S.%fZ}-release"


def holds_for_release(
    claims: Iterable[Claim], *, run_id: str, by: str, now: datetime
) -> list[Hold]:
    """A pending hold for every number the app assigned (ownership marker set and not
    released), in number order; found and reserved numbers are never the app's to take."""
    return [
        Hold(
            run_id=run_id, user_id=claim.holder_user_id, user_principal_name=claim.holder_upn,
            number=claim.number, reason=RELEASE_REASON,
            message=(f"The tenant was removed by {by} with --release-numbers: {claim.number} "
                     f"leaves {claim.holder_upn} in Teams once a person approves this hold."),
            status="pending", created_at=now,
        )
        for claim in sorted(claims, key=lambda claim: claim.number)
        if claim.held
    ]
