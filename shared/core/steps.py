"""The reads and writes a queue message may need, as values: the sans-I/O vocabulary.

The per-message flows (``shared.core.assignment_steps``, ``shared.core.policy_steps``) are
generators in the style of h11: they *yield* the next step — read the user, claim the number,
assign it in Teams — and receive what the shell observed when it performed it. They decide
everything and do nothing; the shell (``shared.service.message_handler``) only performs each
step against the ports and feeds the answer back. So every point where a worker can die is one
of these steps, and a test can enumerate them all.

Each step says which answers it accepts; an answer of another type is a bug in the shell and is
refused at once, naming the step. A refusal Teams gives (``PermanentError``) is an answer the
flow decides on; a temporary failure is not: it is raised out of the flow by the shell.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar, cast

from shared.core.directory import Claim, Member
from shared.core.errors import PermanentError
from shared.core.policy_planner import PolicyGrant
from shared.core.records import OperationState, TeamsNumber, UserStatus
from shared.core.teams_readiness import TeamsUser

T = TypeVar("T")
R = TypeVar("R")

_NONE = type(None)


class Step(Generic[T]):
    """One thing the shell does for a flow; ``T`` is what it answers."""

    __slots__ = ()
    #: A read or write of the world: a point where a worker may die (the clock and log lines
    #: are not).
    io: ClassVar[bool] = True
    #: Whether the world changes when the step is performed.
    writes: ClassVar[bool] = False
    answers: ClassVar[tuple[type, ...]]

    def accept(self, answer: object) -> T:
        """``answer`` as this step's answer type.

        Raises:
            TypeError: the shell answered with something this step cannot return.
        """
        if not isinstance(answer, self.answers):
            allowed = ", ".join(kind.__name__ for kind in self.answers)
            raise TypeError(
                f"{type(self).__name__} was answered with {type(answer).__name__}; "
                f"it answers {allowed}"
            )
        return cast(T, answer)


#: A flow: yields steps, is sent their answers, returns its result.
Flow = Generator[Step[Any], object, R]


def ask(step: Step[T]) -> Generator[Step[Any], object, T]:
    """Yield ``step`` and return its answer, typed (``x = yield from ask(ReadUser(...))``)."""
    answer = yield step
    return step.accept(answer)


# --- Not I/O ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Now(Step[datetime]):
    """The app's clock (the local runner moves it to replay days in seconds)."""

    io: ClassVar[bool] = False
    answers: ClassVar[tuple[type, ...]] = (datetime,)


@dataclass(frozen=True, slots=True)
class Note(Step[None]):
    """A log line for the operator."""

    level: Literal["info", "warning"]
    text: str
    io: ClassVar[bool] = False
    answers: ClassVar[tuple[type, ...]] = (_NONE,)


# --- Reads --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EffectDone(Step[bool]):
    """Whether a message with this idempotency key has completed."""

    key: str
    answers: ClassVar[tuple[type, ...]] = (bool,)


@dataclass(frozen=True, slots=True)
class ReadDirectoryUser(Step[Member | None]):
    """The user read again from the directory (None: gone)."""

    user_id: str
    answers: ClassVar[tuple[type, ...]] = (Member, _NONE)


@dataclass(frozen=True, slots=True)
class IsServed(Step[bool | None]):
    """Whether the stored voice group has the user (None before the first full read)."""

    user_id: str
    answers: ClassVar[tuple[type, ...]] = (bool, _NONE)


@dataclass(frozen=True, slots=True)
class GetClaim(Step[Claim | None]):
    """The claim on a number."""

    number: str
    answers: ClassVar[tuple[type, ...]] = (Claim, _NONE)


@dataclass(frozen=True, slots=True)
class LookAtTeamsUser(Step[TeamsUser | None]):
    """A quick look at the user's Teams configuration; None when unknown *or unreadable* (the
    flow then learns the answer the slower way)."""

    user_id: str
    answers: ClassVar[tuple[type, ...]] = (TeamsUser, _NONE)


@dataclass(frozen=True, slots=True)
class ReadTeamsUser(Step[TeamsUser | None | PermanentError]):
    """The user's Teams configuration (None: Teams does not know the user), or the refusal."""

    user_id: str
    answers: ClassVar[tuple[type, ...]] = (TeamsUser, _NONE, PermanentError)


@dataclass(frozen=True, slots=True)
class ReadStatus(Step[UserStatus | None]):
    """The user's stored status (its attempts set the backoff, its wait the patience)."""

    user_id: str
    answers: ClassVar[tuple[type, ...]] = (UserStatus, _NONE)


@dataclass(frozen=True, slots=True)
class FindNumber(Step[TeamsNumber | None]):
    """The number's Teams record (who has it)."""

    number: str
    answers: ClassVar[tuple[type, ...]] = (TeamsNumber, _NONE)


@dataclass(frozen=True, slots=True)
class GetGrant(Step[PolicyGrant | None]):
    """The main-number policies this app granted the user."""

    user_id: str
    answers: ClassVar[tuple[type, ...]] = (PolicyGrant, _NONE)


@dataclass(frozen=True, slots=True)
class ResolvePolicy(Step[str | PermanentError]):
    """A policy's id by type and name, or the refusal (not found, forbidden)."""

    policy_type: str
    name: str
    answers: ClassVar[tuple[type, ...]] = (str, PermanentError)


# --- Writes -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClaimNumber(Step[Claim]):
    """Claim the number for the user, conditionally; answers the claim as it now stands (a
    claim someone else holds is returned unchanged)."""

    claim: Claim
    writes: ClassVar[bool] = True
    answers: ClassVar[tuple[type, ...]] = (Claim,)


@dataclass(frozen=True, slots=True)
class MarkAssigning(Step[bool]):
    """Record (``since``) or withdraw (None) the intent to assign, before Teams is asked;
    False when the user no longer holds the claim."""

    number: str
    user_id: str
    since: datetime | None
    writes: ClassVar[bool] = True
    answers: ClassVar[tuple[type, ...]] = (bool,)


@dataclass(frozen=True, slots=True)
class MarkAssigned(Step[bool]):
    """Set the ownership marker: Teams has the number on the holder because of this app."""

    number: str
    user_id: str
    writes: ClassVar[bool] = True
    answers: ClassVar[tuple[type, ...]] = (bool,)


@dataclass(frozen=True, slots=True)
class NoteFound(Step[None]):
    """Note in the snapshot that Teams has the number on the user (delta runs stop planning
    it until the next full read)."""

    number: str
    user_id: str
    writes: ClassVar[bool] = True
    answers: ClassVar[tuple[type, ...]] = (_NONE,)


@dataclass(frozen=True, slots=True)
class Accepted:
    """Teams accepted an assignment and carries it out in its own time: ``location`` is its
    long-running operation."""

    location: str


@dataclass(frozen=True, slots=True)
class AssignNumber(Step[Accepted | PermanentError]):
    """Ask Teams to assign the number (once: whether it landed is looked at later)."""

    number: str
    user_id: str
    writes: ClassVar[bool] = True
    answers: ClassVar[tuple[type, ...]] = (Accepted, PermanentError)


@dataclass(frozen=True, slots=True)
class ReadOperation(Step[OperationState | PermanentError]):
    """Read an assignment's operation once (a refusal: Teams no longer knows it)."""

    location: str
    answers: ClassVar[tuple[type, ...]] = (OperationState, PermanentError)


@dataclass(frozen=True, slots=True)
class AssignmentSettled(Step[None]):
    """An assignment Teams accepted earlier has ended: ``landed`` on the user or not, with what
    said so (for the audit trail; no I/O of its own)."""

    number: str
    user_id: str
    landed: bool
    detail: str
    io: ClassVar[bool] = False
    answers: ClassVar[tuple[type, ...]] = (_NONE,)


@dataclass(frozen=True, slots=True)
class NoteOperationLook(Step[None]):
    """Tell the tenant's learned operation wait what a look found: the assignment done (or not)
    ``elapsed_seconds`` after Teams accepted it."""

    elapsed_seconds: float
    done: bool
    answers: ClassVar[tuple[type, ...]] = (_NONE,)


@dataclass(frozen=True, slots=True)
class UnassignNumber(Step[None | PermanentError]):
    """Take the number off whoever has it in Teams."""

    number: str
    writes: ClassVar[bool] = True
    answers: ClassVar[tuple[type, ...]] = (_NONE, PermanentError)


@dataclass(frozen=True, slots=True)
class ReleaseClaim(Step[bool]):
    """Drop the user's claim (with ``cooling_since``: keep the row, resting the number)."""

    number: str
    user_id: str
    cooling_since: datetime | None
    writes: ClassVar[bool] = True
    answers: ClassVar[tuple[type, ...]] = (bool,)


@dataclass(frozen=True, slots=True)
class SaveGrant(Step[None]):
    """Store the user's grant (ownership markers included), replacing the one before."""

    grant: PolicyGrant
    writes: ClassVar[bool] = True
    answers: ClassVar[tuple[type, ...]] = (_NONE,)


@dataclass(frozen=True, slots=True)
class AssignPolicies(Step[None | PermanentError]):
    """Give the user these (policy type, policy id) directly, in one request."""

    user_id: str
    assignments: tuple[tuple[str, str], ...]
    writes: ClassVar[bool] = True
    answers: ClassVar[tuple[type, ...]] = (_NONE, PermanentError)


@dataclass(frozen=True, slots=True)
class UnassignPolicies(Step[None | PermanentError]):
    """Remove the user's direct policies of these types, in one request."""

    user_id: str
    policy_types: tuple[str, ...]
    writes: ClassVar[bool] = True
    answers: ClassVar[tuple[type, ...]] = (_NONE, PermanentError)


@dataclass(frozen=True, slots=True)
class RemoveGrant(Step[bool]):
    """Forget the user's grant."""

    user_id: str
    writes: ClassVar[bool] = True
    answers: ClassVar[tuple[type, ...]] = (bool,)


@dataclass(frozen=True, slots=True)
class RecordStatus(Step[None]):
    """Store the user's latest outcome."""

    status: UserStatus
    writes: ClassVar[bool] = True
    answers: ClassVar[tuple[type, ...]] = (_NONE,)


@dataclass(frozen=True, slots=True)
class MarkEffectDone(Step[None]):
    """Record the message's effect as complete (a redelivery then does nothing)."""

    key: str
    at: datetime
    writes: ClassVar[bool] = True
    answers: ClassVar[tuple[type, ...]] = (_NONE,)


@dataclass(frozen=True, slots=True)
class ClearInFlight(Step[None]):
    """Drop the user's in-flight marker of this change (the next run may plan them again)."""

    user_id: str
    kind: str
    key: str
    writes: ClassVar[bool] = True
    answers: ClassVar[tuple[type, ...]] = (_NONE,)


def replay(flow: Flow[R], answers: Sequence[object]) -> Step[Any] | tuple[R]:
    """The step ``flow`` asks for after ``answers`` — or, once it has finished, its result in
    a 1-tuple: the flow as a pure function of what has been observed so far."""
    try:
        step = next(flow)
        for answer in answers:
            step = flow.send(answer)
    except StopIteration as finished:
        return (cast(R, finished.value),)
    return step
