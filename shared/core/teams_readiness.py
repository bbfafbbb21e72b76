"""Is a user ready for a Teams number, and did an assignment really land? Pure rules.

Teams learns about a user and their Teams Phone licence some time after Entra does (Microsoft
quotes up to 24 hours for licence changes to reach Teams), so a user Teams does not know yet, or
knows without a phone licence, is only *waiting* at first. It becomes a problem a helpdesk must
act on once ``patience`` has passed since the app first saw the user; until then the app looks
again with a backoff (15 minutes, doubling, at most 6 hours).

After an assignment the user's Teams configuration is read back: the number must be on the user
and Enterprise Voice must be on. Graph has no call that turns Enterprise Voice on by itself, so
that case gets its own reason code and a message that names the PowerShell fix.

No I/O and no SDK imports: the adapters turn Graph's ``teamsUserConfiguration`` into the
``TeamsUser`` below. Its reason codes are members of the one ``shared.core.outcomes.Reason``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from shared.core.outcomes import Reason

# The reason codes these rules give (members of the one Reason enum).
EV_NOT_ENABLED: Final = Reason.EV_NOT_ENABLED
VERIFY_FAILED: Final = Reason.VERIFY_FAILED
WAITING_FOR_TEAMS: Final = Reason.WAITING_FOR_TEAMS
NOT_LICENSED: Final = Reason.NOT_LICENSED
# Not reason codes: a read-back that found everything in place, a user Teams is ready for.
OK: Final = "ok"
READY: Final = "ready"

DEFAULT_PATIENCE = timedelta(hours=24)  # licences take up to 24 hours to reach Teams
FIRST_BACKOFF = timedelta(minutes=15)
MAX_BACKOFF = timedelta(hours=6)
WAIT_LOOK_CAP = timedelta(minutes=50)
"""The longest a user waiting for Teams (not known yet, no Teams Phone licence) goes unlooked-at:
a licence that arrives during a long wait must still reach the number within the one-hour
promise (50 minutes, plus up to a timer tick, plus the assignment). A look is one Teams read, so
even thousands of waiting users cost a small part of the tenant's pace (benchmarks.latency,
"late licence")."""
# 15 min · 2^5 = 8 h > 6 h: from here on the cap applies; avoids huge powers of two.
_DOUBLINGS_TO_CAP = 5

# Formatting Teams or people may put around a number; only digits, "+" and ";ext=" matter.
_FORMATTING = re.compile(r"[\s\-().\u00a0/]")


@dataclass(frozen=True, slots=True)
class TeamsUser:
    """A user as Teams sees them (``teamsUserConfiguration``), reduced to what the rules read.

    ``licensed_for_phone`` is true when Teams lists a Teams Phone feature for the user
    (``featureTypes`` holds ``PhoneSystem``, ``CallingPlan`` or ``PhoneSystemVirtualUser``; a
    calling plan cannot exist without Teams Phone). Graph documents no featureTypes values, so
    it never stops a write: the app assigns first, and reads it only to explain a refusal
    (``feature_types`` keeps what Teams listed, for the message). ``effective_policies`` maps
    policyType to the policyId in effect, whether assigned directly or through a group, and
    ``effective_policy_names`` policyType to that policy's displayName (ids of the same policy
    may differ in form between getPolicyId and this list; names do not).
    """

    user_id: str
    enterprise_voice_enabled: bool
    telephone_numbers: tuple[str, ...]
    effective_policies: dict[str, str] = field(default_factory=dict)
    licensed_for_phone: bool = False
    account_type: str = "user"
    feature_types: tuple[str, ...] = ()
    effective_policy_names: dict[str, str] = field(default_factory=dict)

    def has_number(self, number: str) -> bool:
        """Whether ``number`` is among the user's Teams numbers (formatting ignored)."""
        wanted = canonical_number(number)
        return any(canonical_number(own) == wanted for own in self.telephone_numbers)


@dataclass(frozen=True, slots=True)
class Verification:
    """The read-back after an assignment: ``reason`` is ``ok``, ``ev_not_enabled`` or
    ``verify_failed``; ``message`` is for the helpdesk."""

    ok: bool
    reason: Reason | Literal["ok"]
    message: str


@dataclass(frozen=True, slots=True)
class Readiness:
    """Whether Teams is ready to give the user a number.

    ``state`` is ``ready``, ``waiting_for_teams`` or ``not_licensed`` (the last two are reason
    codes). ``is_problem`` turns true only once the patience has run out; ``check_again_at`` is
    None when ready.
    """

    state: Reason | Literal["ready"]
    is_problem: bool
    check_again_at: datetime | None
    message: str

    @property
    def ready(self) -> bool:
        """Teams knows the user and they have Teams Phone."""
        return self.state == READY


def canonical_number(value: str) -> str:
    """``value`` as ``+digits[;ext=digits]``: without ``tel:`` and formatting, with the ``+``.

    Graph shows numbers with a leading ``+`` but accepts them without; comparing canonical forms
    keeps a cosmetic difference from reading as a failed assignment.
    """
    text = _FORMATTING.sub("", value.strip())
    if text[:4].lower() == "tel:":
        text = text[4:]
    text = text.lower()
    return text if text.startswith("+") else f"+{text}"


def verify_assignment(user: TeamsUser | None, number: str) -> Verification:
    """Whether Teams shows ``number`` on the user and Enterprise Voice on.

    A missing number is reported before a missing Enterprise Voice flag: without the number,
    turning Enterprise Voice on would not help.
    """
    if user is None:
        return Verification(
            ok=False,
            reason=VERIFY_FAILED,
            message=(
                f"Teams accepted {number} but no longer shows a Teams configuration for the "
                "user; check that the account still exists and is licensed for Teams."
            ),
        )
    if not user.has_number(number):
        shown = ", ".join(user.telephone_numbers) or "no number"
        return Verification(
            ok=False,
            reason=VERIFY_FAILED,
            message=(
                f"Teams accepted {number} but the user's Teams configuration shows {shown}; "
                "check the number in the Teams admin center (it may have been changed since)."
            ),
        )
    if not user.enterprise_voice_enabled:
        return Verification(
            ok=False,
            reason=EV_NOT_ENABLED,
            message=(
                f"The user has {number} in Teams but Enterprise Voice is off, so they cannot "
                "call; Microsoft Graph cannot turn it on. Run "
                f"Set-CsPhoneNumberAssignment -Identity {user.user_id} "
                "-EnterpriseVoiceEnabled $true in Teams PowerShell."
            ),
        )
    return Verification(ok=True, reason=OK, message=f"Teams shows {number} with Enterprise Voice.")


def backoff(attempts: int) -> timedelta:
    """How long to wait after ``attempts`` earlier looks: 15 min, doubling, at most 6 h.

    Raises:
        ValueError: ``attempts`` is negative.
    """
    if attempts < 0:
        raise ValueError(f"attempts must be 0 or more, got {attempts}")
    if attempts >= _DOUBLINGS_TO_CAP:
        return MAX_BACKOFF
    return min(FIRST_BACKOFF * (1 << attempts), MAX_BACKOFF)


def readiness(
    user: TeamsUser | None,
    *,
    first_seen: datetime,
    now: datetime,
    patience: timedelta = DEFAULT_PATIENCE,
    attempts: int = 0,
) -> Readiness:
    """Whether Teams is ready for the user, whether that is a problem yet, and when to look again.

    ``first_seen`` is when the app first wanted a number for the user, ``attempts`` how many
    times it has looked since (it sets the backoff). Both waiting states are problems only from
    ``first_seen + patience`` on; before that, the next look is never scheduled later than that
    moment, so a problem is reported on time rather than up to one backoff late.
    """
    if user is not None and user.licensed_for_phone:
        return Readiness(READY, is_problem=False, check_again_at=None,
                         message="Teams knows the user and they have Teams Phone.")
    deadline = first_seen + patience
    is_problem = now >= deadline
    check_again_at = now + min(backoff(attempts), WAIT_LOOK_CAP)
    if not is_problem:
        check_again_at = min(check_again_at, deadline)
    hours = _hours(patience)
    if user is None:
        message = (
            "Teams does not know this user yet. New users and licences can take up to "
            f"{hours} to reach Teams; "
            + ("they still have not, so check that the user has a Teams licence and is enabled."
               if is_problem else "the app will look again.")
        )
        return Readiness(WAITING_FOR_TEAMS, is_problem, check_again_at, message)
    listed = ", ".join(user.feature_types) or "none"
    message = (
        f"Teams knows the user but shows no Teams Phone licence (its features: {listed}). "
        f"Licences can take up to {hours} to reach Teams; "
        + ("it still has not, so give the user a Teams Phone licence (or check the one they "
           "have)." if is_problem else "the app will look again.")
    )
    return Readiness(NOT_LICENSED, is_problem, check_again_at, message)


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} hours" if hours != 1 else "1 hour"
