"""Directory facts the rules work on: voice-group members as Graph returns them, in read order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Member:
    """A user who is (transitively) a member of the tenant's voice group.

    ``read_position`` is the 0-based order in which the directory returned the user in this run;
    the customer's duplicate rule ("the one read later is not assigned") is defined on it.
    """

    user_id: str
    user_principal_name: str
    business_phones: tuple[str, ...]
    account_enabled: bool
    read_position: int

    @property
    def telephone_number(self) -> str | None:
        """AD ``telephoneNumber``: Entra ID holds it as the only entry of ``businessPhones``."""
        return self.business_phones[0] if self.business_phones else None


@dataclass(frozen=True, slots=True)
class Claim:
    """Who a personal number belongs to, as recorded in Table Storage (first claim wins).

    ``assigned`` is set once this app has put the number on the holder in Teams: the app's
    ownership marker. Only numbers with it are ever taken back by the app. A claim without it
    records a number Teams already had on its holder (found, never removed) or a reservation.

    ``assigning_since`` is the intent half of the marker, written *before* the app asks Teams to
    assign the number: should the answer be lost (a dropped connection, a killed worker), a
    number later found on the holder with the intent recorded is still known to be the app's.
    """

    number: str
    holder_user_id: str
    holder_upn: str
    run_id: str
    read_position: int
    assigned: bool = False
    release_pending_since: datetime | None = None
    """When a run first decided to take the number back (the grace period counts from here)."""
    released_at: datetime | None = None
    """Set when the app took the number back and it is cooling down before anyone else gets it."""
    assigning_since: datetime | None = None
    """When the app set out to assign the number to the holder (None: it never did, or Teams
    refused and the intent was withdrawn)."""

    @property
    def held(self) -> bool:
        """True while this app has the number on its holder in Teams."""
        return self.assigned and self.released_at is None


def adopted_by_intent(claims: Mapping[str, Claim], teams: Mapping[str, str]) -> list[Claim]:
    """Claims whose number Teams has on the holder after the app recorded its intent to put it
    there, without the ownership marker: the app's own numbers whose assignment answer was lost.

    Pure. The caller sets the marker on each, so that the number is taken back like any other
    the app assigned when its holder leaves.
    """
    return [
        claim for number, claim in claims.items()
        if claim.assigning_since is not None and not claim.assigned
        and claim.released_at is None and teams.get(number) == claim.holder_user_id
    ]
