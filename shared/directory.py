"""Directory facts the rules work on: voice-group members as Graph returns them, in read order."""

from __future__ import annotations

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

    @property
    def held(self) -> bool:
        """True while this app has the number on its holder in Teams."""
        return self.assigned and self.released_at is None
