"""The simulated tenant's state: directory, Teams numbers and long-running operations.

Pure and synchronous: no HTTP, no asyncio, no clock or randomness of its own (both are injected),
no locking (the server holds one lock around every call).

Theory of operation for number assignment, which is where the simulator must be as strict as
Graph:

* A number is *held* by a target when it is assigned (`activated`) or reserved by an accepted
  assign operation (`assignmentPending`). An accepted assign reserves a free number at once, so
  a second assign of it to someone else is refused -- at the POST (`assignErrors: sync`) or via a
  `failed` operation (`assignErrors: async`).
* Operations advance only when polled (`operationPolls` GETs see `notStarted`, then `running`).
  When one reaches its terminal state the checks run *again*, so whatever happened in between
  (an unassign, a directory change, a competing operation) is judged at completion, and two
  operations can never both succeed in giving one number to two users.
* Completing an assign gives the number to its target; a `primary` assign frees the target's
  other primary numbers. Freeing an inventory number makes it unassigned; freeing a direct
  routing number that was never inventory removes it from the list.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from pydantic import TypeAdapter

from graph_simulator.scenario import (
    AssignmentCategory,
    Behaviour,
    Directory,
    Group,
    NumberType,
    Scenario,
    Tenant,
    User,
)

OperationStatus = Literal["notStarted", "running", "succeeded", "failed"]
ActivationState = Literal["activated", "assignmentPending"]

TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed"})


class WorldError(Exception):
    """A refusal Graph would answer with an error; carries the HTTP status and code it uses."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class NotFoundError(WorldError):
    """The addressed resource does not exist."""

    def __init__(self, message: str, *, code: str = "Request_ResourceNotFound") -> None:
        super().__init__(message, status=404, code=code)


class RejectedError(WorldError):
    """The Teams backend refused an assign/unassign synchronously (`assignErrors: sync`)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=400, code="BadRequest")


def number_assignment_id(telephone_number: str) -> str:
    """Graph's numberAssignment ids are opaque; derive a stable one from the number."""
    return base64.urlsafe_b64encode(telephone_number.encode()).decode().rstrip("=")


@dataclass
class NumberRecord:
    """One Teams telephone number and who holds it."""

    telephone_number: str
    number_type: NumberType
    inventory: bool
    assignment_target_id: str | None = None
    assignment_category: AssignmentCategory = "primary"
    activation_state: ActivationState = "activated"
    reserved_by: str | None = None
    location_id: str | None = None
    operator_id: str | None = None
    iso_country_code: str | None = None
    city: str | None = None

    @property
    def id(self) -> str:
        """The numberAssignment id Graph would show."""
        return number_assignment_id(self.telephone_number)


@dataclass
class Operation:
    """A `telephoneNumberLongRunningOperation` for one assign or unassign."""

    id: str
    kind: Literal["assign", "unassign"]
    created_date_time: str
    telephone_number: str
    number_type: NumberType
    target_id: str | None = None
    assignment_category: AssignmentCategory = "primary"
    location_id: str | None = None
    status: OperationStatus = "notStarted"
    status_detail: str | None = None
    # A refusal found when the request was accepted (async mode) is reported at completion.
    refusal: str | None = None
    polls: int = 0


@dataclass
class TeamsState:
    """The persistable part of the world: numbers and operations (the `state_file` content)."""

    version: Literal[1] = 1
    number_assignments: list[NumberRecord] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)


TEAMS_STATE_ADAPTER: TypeAdapter[TeamsState] = TypeAdapter(TeamsState)


def _records_from_scenario(scenario: Scenario) -> dict[str, NumberRecord]:
    records: dict[str, NumberRecord] = {}
    for spec in scenario.number_assignments:
        records[spec.telephone_number] = NumberRecord(
            telephone_number=spec.telephone_number,
            number_type=spec.number_type,
            inventory=True,
            assignment_target_id=spec.assignment_target_id,
            assignment_category=spec.assignment_category,
            location_id=spec.location_id,
            operator_id=spec.operator_id,
            iso_country_code=spec.iso_country_code,
            city=spec.city,
        )
    return records


class World:
    """Everything the simulated Graph knows, with the rules for changing it."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        clock: Callable[[], str],
        new_id: Callable[[], str],
        teams_state: TeamsState | None = None,
    ) -> None:
        """Build the world from `scenario`; `teams_state` (from a state file) replaces its numbers.

        `clock` returns the ISO timestamp stamped on operations; `new_id` returns a fresh unique
        string used to build operation ids.
        """
        self._clock = clock
        self._new_id = new_id
        self.tenant: Tenant = scenario.tenant
        self.behaviour: Behaviour = scenario.behaviour
        self._users: dict[str, User] = {}
        self._groups: dict[str, Group] = {}
        self.replace_directory(scenario.directory)
        self._numbers: dict[str, NumberRecord] = _records_from_scenario(scenario)
        self._operations: dict[str, Operation] = {}
        if teams_state is not None:
            self._numbers = {
                record.telephone_number: copy.copy(record)
                for record in teams_state.number_assignments
            }
            self._operations = {op.id: copy.copy(op) for op in teams_state.operations}

    # -- directory ---------------------------------------------------------------------------

    def replace_directory(self, directory: Directory) -> None:
        """Swap users and groups; Teams numbers and operations are kept as they are."""
        self._users = {user.id: user for user in directory.users}
        self._groups = {group.id: group for group in directory.groups}

    def user(self, user_id: str) -> User | None:
        """The directory user with this id, if any."""
        return self._users.get(user_id)

    def transitive_member_users(self, group_id: str) -> list[User]:
        """Users reachable from the group, each once, depth-first in member-list order.

        Nested groups are expanded where they appear in the member list; a group already being
        or having been expanded is skipped, so membership cycles terminate.
        """
        if group_id not in self._groups:
            raise NotFoundError(f"Resource '{group_id}' does not exist or one of its queried "
                                "reference-property objects are not present.")
        seen_users: dict[str, User] = {}
        visited_groups: set[str] = set()

        def walk(gid: str) -> Iterator[User]:
            visited_groups.add(gid)
            for member in self._groups[gid].members:
                if member in self._users:
                    yield self._users[member]
                elif member in self._groups and member not in visited_groups:
                    yield from walk(member)

        for user in walk(group_id):
            seen_users.setdefault(user.id, user)
        return list(seen_users.values())

    # -- Teams numbers -----------------------------------------------------------------------

    def number_assignments(self) -> list[NumberRecord]:
        """All numbers in list order (inventory first, then numbers created by assignment)."""
        return [copy.copy(record) for record in self._numbers.values()]

    def teams_state(self) -> TeamsState:
        """A copy of the numbers and operations, for persisting."""
        return TeamsState(
            number_assignments=self.number_assignments(),
            operations=[copy.copy(op) for op in self._operations.values()],
        )

    def _not_found(self, number: str) -> str:
        return f"Telephone Number '{number}' is not found from tenant '{self.tenant.id}'"

    def _assign_refusal(self, number: str, number_type: NumberType, target_id: str) -> str | None:
        if target_id not in self._users:
            return f"The user '{target_id}' is not found"
        record = self._numbers.get(number)
        if number_type != "directRouting":
            # Calling Plan and Operator Connect numbers come from Microsoft or the operator,
            # so only numbers already in the tenant's inventory can be assigned.
            if record is None or not record.inventory or record.number_type != number_type:
                return self._not_found(number)
        elif record is not None and record.number_type != "directRouting":
            return (f"Telephone Number '{number}' is a {record.number_type} number, "
                    "not directRouting")
        if record is None or record.assignment_target_id in (None, target_id):
            return None
        return f"Telephone Number '{number}' has already been assigned to another user"

    def _unassign_refusal(self, number: str, number_type: NumberType) -> str | None:
        record = self._numbers.get(number)
        if record is None or record.number_type != number_type:
            return self._not_found(number)
        return None

    def _new_operation(
        self, kind: Literal["assign", "unassign"], number: str, number_type: NumberType
    ) -> Operation:
        # Shaped like Graph's ids, which decode to "Assignment|...": opaque base64 text.
        prefix = "Assignment" if kind == "assign" else "Unassignment"
        raw = f"{prefix}|{self.tenant.id}|{self._new_id()}"
        op_id = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        return Operation(id=op_id, kind=kind, created_date_time=self._clock(),
                         telephone_number=number, number_type=number_type)

    def request_assign(
        self,
        number: str,
        number_type: NumberType,
        target_id: str,
        category: AssignmentCategory = "primary",
        location_id: str | None = None,
    ) -> Operation:
        """Accept an assignNumber request and return its operation (reserving the number).

        Raises RejectedError instead when the request is refused and `assignErrors` is `sync`.
        """
        refusal = self._assign_refusal(number, number_type, target_id)
        if refusal is not None and self.behaviour.assign_errors == "sync":
            raise RejectedError(refusal)
        op = self._new_operation("assign", number, number_type)
        op.target_id = target_id
        op.assignment_category = category
        op.location_id = location_id
        op.refusal = refusal
        if refusal is None:
            record = self._numbers.get(number)
            if record is None:
                record = NumberRecord(telephone_number=number, number_type=number_type,
                                      inventory=False)
                self._numbers[number] = record
            if record.assignment_target_id is None:
                record.assignment_target_id = target_id
                record.assignment_category = category
                record.activation_state = "assignmentPending"
                record.reserved_by = op.id
        self._operations[op.id] = op
        self._advance(op)
        return copy.copy(op)

    def request_unassign(self, number: str, number_type: NumberType) -> Operation:
        """Accept an unassignNumber request and return its operation.

        Raises RejectedError instead when the request is refused and `assignErrors` is `sync`.
        """
        refusal = self._unassign_refusal(number, number_type)
        if refusal is not None and self.behaviour.assign_errors == "sync":
            raise RejectedError(refusal)
        op = self._new_operation("unassign", number, number_type)
        op.refusal = refusal
        self._operations[op.id] = op
        self._advance(op)
        return copy.copy(op)

    def poll_operation(self, operation_id: str) -> Operation:
        """Return the operation as it is now, then move it one step towards its terminal state."""
        op = self._operations.get(operation_id)
        if op is None:
            raise NotFoundError(f"Operation '{operation_id}' was not found.", code="NotFound")
        seen = copy.copy(op)
        if op.status not in TERMINAL_STATUSES:
            op.polls += 1
            self._advance(op)
        return seen

    def _advance(self, op: Operation) -> None:
        if op.polls >= self.behaviour.operation_polls:
            self._complete(op)
        elif op.polls > 0:
            op.status = "running"

    def _complete(self, op: Operation) -> None:
        if op.kind == "assign":
            assert op.target_id is not None
            refusal = op.refusal or self._assign_refusal(
                op.telephone_number, op.number_type, op.target_id
            )
        else:
            refusal = op.refusal or self._unassign_refusal(op.telephone_number, op.number_type)
        if refusal is not None:
            op.status = "failed"
            op.status_detail = refusal
            record = self._numbers.get(op.telephone_number)
            if record is not None and record.reserved_by == op.id:
                self._free(record)
            return
        if op.kind == "assign":
            self._give(op)
        else:
            self._free(self._numbers[op.telephone_number])
        op.status = "succeeded"

    def _give(self, op: Operation) -> None:
        assert op.target_id is not None
        if op.assignment_category == "primary":
            for other in list(self._numbers.values()):
                if (other.telephone_number != op.telephone_number
                        and other.assignment_target_id == op.target_id
                        and other.assignment_category == "primary"
                        and other.activation_state == "activated"):
                    self._free(other)
        record = self._numbers.get(op.telephone_number)
        if record is None:
            # An unassign completed while this assign was pending and removed the record.
            record = NumberRecord(telephone_number=op.telephone_number,
                                  number_type=op.number_type, inventory=False)
            self._numbers[op.telephone_number] = record
        record.assignment_target_id = op.target_id
        record.assignment_category = op.assignment_category
        record.activation_state = "activated"
        record.reserved_by = None
        if op.location_id is not None:
            record.location_id = op.location_id

    def _free(self, record: NumberRecord) -> None:
        if not record.inventory:
            del self._numbers[record.telephone_number]
            return
        record.assignment_target_id = None
        record.assignment_category = "primary"
        record.activation_state = "activated"
        record.reserved_by = None
