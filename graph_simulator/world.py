"""One simulated tenant's state: directory, Teams numbers and long-running operations (the
simulator keeps one world per tenant).

Pure and synchronous: no HTTP, no asyncio, no clock of its own (injected), randomness only from a
generator seeded by the tenant id (reproducible), no locking (the server holds one lock around
every call).

Theory of operation for number assignment, which is where the simulator must be as strict as
Graph:

* A number is *held* by a target when it is assigned (`activated`) or reserved by an accepted
  assign operation (`assignmentPending`). An accepted assign reserves a free number at once, so
  a second assign of it to someone else is refused -- at the POST (`assignErrors: sync`) or via a
  `failed` operation (`assignErrors: async`).
* Operations take time, whoever asks (`operationSeconds`: fixed, or a median/p95 distribution
  sampled per operation with the tenant's seeded random numbers): each is due a duration after
  it was accepted, shows `notStarted` for the first tenth of it and `running` until then, and is
  completed by the first look at Teams' state (an operation, a number list, a user's
  configuration, another write) at or after its due moment, in due order. Polling neither
  speeds it up nor is needed. At completion the checks run *again*, so whatever happened in
  between (an unassign, a directory change, a competing operation) is judged then, and two
  operations can never both succeed in giving one number to two users.
* Completing an assign gives the number to its target; a `primary` assign frees the target's
  other primary numbers. Freeing an inventory number makes it unassigned; freeing a direct
  routing number that was never inventory removes it from the list.

Teams users: every directory user has a Teams record (present, licensed, Enterprise Voice,
direct policy assignments) built from their `teams` profile. The record is live state: a
directory replacement re-applies only the profile fields that changed, so an Enterprise Voice
flag switched on by an assignment survives an unrelated directory change.

Directory history: every directory replacement is a new version, kept (up to a limit) so delta
queries can diff any two versions; `sync_id` names this history, and changes when all delta
state is thrown away.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import math
import random
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from pydantic import TypeAdapter

from graph_simulator.scenario import (
    AssignmentCategory,
    Behaviour,
    Directory,
    Group,
    NumberType,
    Policy,
    TeamsProfile,
    Tenant,
    TenantEntry,
    User,
)

OperationStatus = Literal["notStarted", "running", "succeeded", "failed", "skipped"]
ActivationState = Literal["activated", "assignmentPending"]

TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "skipped"})
#: The standard normal's 95th percentile: a log-normal's sigma from its median and p95.
_Z95: Final = 1.6448536

# Enough for any test or demo; older versions are dropped and their delta tokens answer 410,
# which Graph also does when it no longer has the state a token refers to.
_MAX_DIRECTORY_VERSIONS: Final = 256
# The spelling the Teams backend uses in its licence message (seen from PowerShell).
_LICENCE_NUMBER_TYPE: Final[dict[str, str]] = {
    "directRouting": "DirectRouting",
    "callingPlan": "CallingPlan",
    "operatorConnect": "OperatorConnect",
}


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
    accepted_at: float = 0.0
    """Unix seconds (the injected ``now``) when the request was accepted."""
    due_at: float = 0.0
    """When it finishes: ``accepted_at`` plus its sampled duration."""


@dataclass
class TeamsUserRecord:
    """One directory user as the Teams backend knows them."""

    user_id: str
    # The profile last applied, so a directory replacement can tell which fields it changes.
    profile: TeamsProfile
    present: bool
    reads_until_visible: int
    licensed: bool
    enterprise_voice_enabled: bool
    created_date_time: str
    modified_date_time: str
    # policyType -> policyId of the user's direct assignments, in assignment order.
    policies: dict[str, str] = field(default_factory=dict)
    # Numbers given lately that the next `lagging_reads` configuration reads do not show yet.
    lagging_numbers: list[str] = field(default_factory=list)
    lagging_reads: int = 0
    # The direct policies the next `policy_lag_reads` configuration reads still show.
    shown_policies: dict[str, str] | None = None
    policy_lag_reads: int = 0


@dataclass
class UserConfiguration:
    """What `teamsUserConfiguration` shows for one user: a read-only snapshot."""

    user: User
    teams: TeamsUserRecord
    numbers: list[NumberRecord]
    policies: list[Policy]


@dataclass
class TeamsState:
    """The persistable part of the world: numbers, operations and Teams users (`state_file`)."""

    version: Literal[1] = 1
    number_assignments: list[NumberRecord] = field(default_factory=list)
    operations: list[Operation] = field(default_factory=list)
    # Added later; state files written before it load with every user fresh from the scenario.
    teams_users: list[TeamsUserRecord] = field(default_factory=list)


TEAMS_STATE_ADAPTER: TypeAdapter[TeamsState] = TypeAdapter(TeamsState)


def _records_from_scenario(scenario: TenantEntry) -> dict[str, NumberRecord]:
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
        scenario: TenantEntry,
        *,
        clock: Callable[[], str],
        new_id: Callable[[], str],
        teams_state: TeamsState | None = None,
        now: Callable[[], float] = lambda: 0.0,
    ) -> None:
        """Build the world of one tenant (`scenario`, or a scenario's first tenant);
        `teams_state` (from a state file) replaces its numbers.

        `clock` returns the ISO timestamp stamped on operations; `new_id` returns a fresh unique
        string used to build operation ids; `now` is the same wall clock in Unix seconds, which
        says when an operation is due (a fixed moment by default: only operations of no
        duration finish).
        """
        self._clock = clock
        self._now = now
        # Simulated operation times, not secrets: reproducible per tenant on purpose.
        self._durations = random.Random(zlib.crc32(scenario.tenant.id.encode()))  # noqa: S311
        self._new_id = new_id
        self.tenant: Tenant = scenario.tenant
        self.behaviour: Behaviour = scenario.behaviour
        self.policies: tuple[Policy, ...] = scenario.policies
        self._users: dict[str, User] = {}
        self._groups: dict[str, Group] = {}
        self._teams_users: dict[str, TeamsUserRecord] = {}
        self._history: dict[int, Directory] = {}
        self._version = 0
        self._sync_id = new_id()
        self._forced_failures: dict[str, list[str]] = {}
        # Eventual consistency (behaviour.*LagReads), in memory only: group id → user id →
        # reads of transitiveMembers still without the user; number → numberAssignments
        # requests still showing it as before its assignment.
        self._member_lag: dict[str, dict[str, int]] = {}
        self._number_lag: dict[str, int] = {}
        if teams_state is not None:
            self._teams_users = {record.user_id: copy.deepcopy(record)
                                 for record in teams_state.teams_users}
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
        """Swap users and groups as a new directory version; Teams numbers and operations stay.

        Teams users follow the directory: new users get a record from their `teams` profile,
        removed users lose theirs, and for the others only profile fields that differ from the
        previously applied profile are re-applied.
        """
        lag = self.behaviour.member_lag_reads
        # The scenario's own directory (version 0 → 1) is what the index starts from: no lag.
        before = {gid: {user.id for user in _transitive_users(self._groups, self._users, gid)}
                  for gid in self._groups} if lag and self._version else {}
        self._users = {user.id: user for user in directory.users}
        self._groups = {group.id: group for group in directory.groups}
        for gid, old_members in before.items():
            if gid not in self._groups:
                continue
            for user in _transitive_users(self._groups, self._users, gid):
                if user.id not in old_members:
                    self._member_lag.setdefault(gid, {})[user.id] = lag
        now = self._clock()
        records: dict[str, TeamsUserRecord] = {}
        for user in directory.users:
            record = self._teams_users.get(user.id)
            if record is None:
                record = _fresh_teams_user(user.id, user.teams, now)
            elif record.profile != user.teams:
                _apply_profile_change(record, user.teams, now)
            records[user.id] = record
        self._teams_users = records
        self._version += 1
        self._history[self._version] = directory
        while len(self._history) > _MAX_DIRECTORY_VERSIONS:
            del self._history[min(self._history)]

    def user(self, user_id: str) -> User | None:
        """The directory user with this id, if any."""
        return self._users.get(user_id)

    def find_user(self, key: str) -> User | None:
        """The directory user with this id or (case-insensitively) this userPrincipalName."""
        user = self._users.get(key)
        if user is None and "@" in key:
            folded = key.lower()
            user = next((candidate for candidate in self._users.values()
                         if candidate.user_principal_name.lower() == folded), None)
        return user

    # -- directory history (delta queries) ---------------------------------------------------

    @property
    def directory_version(self) -> int:
        """The current directory version (1 for the scenario's own directory)."""
        return self._version

    @property
    def sync_id(self) -> str:
        """Names the directory history; delta tokens from another history are unknown here."""
        return self._sync_id

    def directory_at(self, version: int) -> Directory | None:
        """The directory as it was at `version`, if that version is still kept."""
        return self._history.get(version)

    def expire_delta_state(self) -> None:
        """Forget every directory version but the current one, under a new `sync_id`."""
        self._sync_id = self._new_id()
        self._history = {self._version: self._history[self._version]}

    def transitive_member_users(self, group_id: str) -> list[User]:
        """Users reachable from the group, each once, depth-first in member-list order.

        Nested groups are expanded where they appear in the member list; a group already being
        or having been expanded is skipped, so membership cycles terminate.
        """
        if group_id not in self._groups:
            raise NotFoundError(f"Resource '{group_id}' does not exist or one of its queried "
                                "reference-property objects are not present.")
        return _transitive_users(self._groups, self._users, group_id)

    def listed_transitive_member_users(self, group_id: str) -> list[User]:
        """`transitive_member_users` as the lagging index lists them (`memberLagReads`): users
        who joined lately are left out until enough reads have passed (`count_member_read`)."""
        users = self.transitive_member_users(group_id)
        hidden = self._member_lag.get(group_id)
        return [user for user in users if not hidden or hidden.get(user.id, 0) <= 0]

    def count_member_read(self, group_id: str) -> None:
        """One whole read of the group's transitive members has been answered."""
        hidden = self._member_lag.get(group_id)
        if not hidden:
            return
        for user_id in list(hidden):
            hidden[user_id] -= 1
            if hidden[user_id] <= 0:
                del hidden[user_id]

    # -- Teams numbers -----------------------------------------------------------------------

    def number_assignments(self) -> list[NumberRecord]:
        """All numbers in list order (inventory first, then numbers created by assignment)."""
        self._settle()
        return [copy.copy(record) for record in self._numbers.values()]

    def listed_number_assignments(self) -> list[NumberRecord]:
        """The numbers as numberAssignments shows them now (`numberAssignmentsLagReads`): one
        assigned lately still looks as it did before (unassigned inventory, or not there)."""
        self._settle()
        if not self._number_lag:
            return self.number_assignments()
        listed: list[NumberRecord] = []
        for record in self._numbers.values():
            if record.telephone_number not in self._number_lag:
                listed.append(copy.copy(record))
            elif record.inventory:
                listed.append(dataclasses.replace(
                    record, assignment_target_id=None, assignment_category="primary",
                    activation_state="activated", reserved_by=None))
        return listed

    def count_number_read(self) -> None:
        """One numberAssignments request has been answered."""
        for number in list(self._number_lag):
            self._number_lag[number] -= 1
            if self._number_lag[number] <= 0:
                del self._number_lag[number]

    def teams_state(self) -> TeamsState:
        """A copy of the numbers, operations and Teams users, for persisting."""
        return TeamsState(
            number_assignments=self.number_assignments(),
            operations=[copy.copy(op) for op in self._operations.values()],
            teams_users=[copy.deepcopy(record) for record in self._teams_users.values()],
        )

    # -- Teams users and policies ------------------------------------------------------------

    def _configuration(self, user: User, record: TeamsUserRecord) -> UserConfiguration:
        lagging = set(record.lagging_numbers) if record.lagging_reads > 0 else set()
        numbers = [copy.copy(number) for number in self._numbers.values()
                   if number.assignment_target_id == user.id
                   and number.activation_state == "activated"
                   and number.telephone_number not in lagging]
        shown = record.policies
        if record.policy_lag_reads > 0 and record.shown_policies is not None:
            shown = record.shown_policies
        policies = [policy for policy_type, policy_id in shown.items()
                    if (policy := self._policy(policy_type, policy_id)) is not None]
        return UserConfiguration(user=user, teams=copy.deepcopy(record), numbers=numbers,
                                 policies=policies)

    def read_user_configuration(self, user_id: str) -> UserConfiguration:
        """One user's Teams configuration; counts as a read for `visibleAfterPolls`.

        Raises NotFoundError (code `NotFound`) while the user is not in Teams.
        """
        self._settle()
        user = self._users.get(user_id)
        record = self._teams_users.get(user_id)
        if user is None or record is None or not record.present:
            if record is not None and record.reads_until_visible > 0:
                record.reads_until_visible -= 1
                # Visible from the next read on: this one still finds nothing.
                record.present = record.reads_until_visible == 0
            raise NotFoundError(f"User '{user_id}' was not found in Teams.", code="NotFound")
        configuration = self._configuration(user, record)
        if record.lagging_reads > 0:
            record.lagging_reads -= 1
            if record.lagging_reads == 0:
                record.lagging_numbers.clear()
        if record.policy_lag_reads > 0:
            record.policy_lag_reads -= 1
            if record.policy_lag_reads == 0:
                record.shown_policies = None
        return configuration

    def user_configurations(self) -> list[UserConfiguration]:
        """Configurations of every user present in Teams, in directory order (not a read)."""
        self._settle()
        return [self._configuration(user, record)
                for user in self._users.values()
                if (record := self._teams_users.get(user.id)) is not None and record.present]

    def _policy(self, policy_type: str, policy_id: str) -> Policy | None:
        return next((policy for policy in self.policies
                     if policy.type == policy_type and policy.id == policy_id), None)

    def policies_named(self, policy_type: str, name: str) -> list[Policy]:
        """Policies of this type and name (exact, case-sensitive match)."""
        return [policy for policy in self.policies
                if policy.type == policy_type and policy.name == name]

    def _present_teams_user(self, user_id: str) -> TeamsUserRecord:
        record = self._teams_users.get(user_id)
        if user_id not in self._users or record is None or not record.present:
            raise NotFoundError(f"User '{user_id}' was not found in Teams.", code="NotFound")
        return record

    def assign_policies(self, assignments: Sequence[tuple[str, str, str]]) -> None:
        """Give each (userId, policyType, policyId) directly; all or nothing.

        A user holds one direct policy per type, so a new one replaces the old. Raises
        NotFoundError for a user not in Teams, RejectedError for an unknown policy.
        """
        for user_id, policy_type, policy_id in assignments:
            self._present_teams_user(user_id)
            if self._policy(policy_type, policy_id) is None:
                raise RejectedError(self._shown(f"Policy '{policy_id}' of type "
                                                f"'{policy_type}' was not found."))
        now = self._clock()
        for user_id, policy_type, policy_id in assignments:
            record = self._teams_users[user_id]
            self._start_policy_lag(record)
            record.policies.pop(policy_type, None)  # re-insert: keep assignment order
            record.policies[policy_type] = policy_id
            record.modified_date_time = now

    def unassign_policies(self, unassignments: Sequence[tuple[str, str]]) -> None:
        """Remove each (userId, policyType) direct assignment; all or nothing.

        Unassigning a type the user has no direct policy of is not an error. Raises
        NotFoundError for a user not in Teams, RejectedError for a type no policy has.
        """
        known_types = {policy.type for policy in self.policies}
        for user_id, policy_type in unassignments:
            self._present_teams_user(user_id)
            if policy_type not in known_types:
                raise RejectedError(self._shown(f"Policy type '{policy_type}' was not found."))
        now = self._clock()
        for user_id, policy_type in unassignments:
            record = self._teams_users[user_id]
            if policy_type in record.policies:
                self._start_policy_lag(record)
            if record.policies.pop(policy_type, None) is not None:
                record.modified_date_time = now

    def _start_policy_lag(self, record: TeamsUserRecord) -> None:
        """Before a policy change: the user's configuration keeps showing the policies as they
        are now for `policyLagReads` reads (a change within the lag restarts it)."""
        lag = self.behaviour.policy_lag_reads
        if not lag:
            return
        if record.policy_lag_reads <= 0 or record.shown_policies is None:
            record.shown_policies = dict(record.policies)
        record.policy_lag_reads = lag

    def _touch(self, user_id: str | None) -> None:
        record = self._teams_users.get(user_id) if user_id is not None else None
        if record is not None:
            record.modified_date_time = self._clock()

    # -- injected operation failures ---------------------------------------------------------

    def fail_next_operations(self, kind: Literal["assign", "unassign"], status_detail: str,
                             count: int) -> None:
        """Make the next `count` accepted operations of `kind` end `failed` with this detail.

        Replaces any failures still pending for that kind.
        """
        self._forced_failures[kind] = [status_detail] * count

    def _take_forced_failure(self, kind: str) -> str | None:
        pending = self._forced_failures.get(kind)
        if not pending:
            return None
        return pending.pop()

    def _not_found(self, number: str) -> str:
        return f"Telephone Number '{number}' is not found from tenant '{self.tenant.id}'"

    def _shown(self, refusal: str) -> str:
        """A refusal as `refusalTexts` has Teams word it (the same text always reads the same)."""
        if self.behaviour.refusal_texts == "teams":
            return refusal
        reference = zlib.crc32(refusal.encode()) % 100_000
        text = f"The number service declined this request (decision {reference:05d})."
        if self.behaviour.refusal_texts == "unseenTryAgain":
            text += " Please try again later."
        return text

    def _assign_refusal(self, number: str, number_type: NumberType, target_id: str,
                        operation_id: str | None = None) -> str | None:
        refusal = self._assign_refusal_text(number, number_type, target_id, operation_id)
        return None if refusal is None else self._shown(refusal)

    def _assign_refusal_text(self, number: str, number_type: NumberType, target_id: str,
                             operation_id: str | None) -> str | None:
        teams_user = self._teams_users.get(target_id)
        if target_id not in self._users or teams_user is None or not teams_user.present:
            return f"The user '{target_id}' is not found"
        if not teams_user.licensed:
            # Every number type needs Teams Phone (Phone System), not only Calling Plan.
            return (f"User '{target_id}' lacks appropriate licenses to assign a "
                    f"'{_LICENCE_NUMBER_TYPE[number_type]}' number")
        record = self._numbers.get(number)
        if number_type != "directRouting":
            # Calling Plan and Operator Connect numbers come from Microsoft or the operator,
            # so only numbers already in the tenant's inventory can be assigned.
            if record is None or not record.inventory or record.number_type != number_type:
                return self._not_found(number)
        elif record is not None and record.number_type != "directRouting":
            return (f"Telephone Number '{number}' is a {record.number_type} number, "
                    "not directRouting")
        if record is None or record.assignment_target_id is None:
            return None
        if record.assignment_target_id != target_id:
            return f"Telephone Number '{number}' has already been assigned to another user"
        # The target has it, or an operation of its own reserved it: a repeat, unless this is
        # that very operation completing.
        own = operation_id is not None and record.reserved_by == operation_id
        if self.behaviour.repeated_assign == "refused" and not own:
            return f"Telephone Number '{number}' is already assigned to this user"
        return None

    def _unassign_refusal(self, number: str, number_type: NumberType) -> str | None:
        record = self._numbers.get(number)
        if record is None or record.number_type != number_type:
            return self._shown(self._not_found(number))
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
        self._settle()
        refusal = self._assign_refusal(number, number_type, target_id)
        if refusal is not None and self.behaviour.assign_errors == "sync":
            raise RejectedError(refusal)
        op = self._new_operation("assign", number, number_type)
        op.target_id = target_id
        op.assignment_category = category
        op.location_id = location_id
        op.refusal = refusal
        # An injected failure still reserves the number, like any accepted request, and
        # releases it when the operation fails.
        forced = self._take_forced_failure("assign")
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
        if forced is not None:
            op.refusal = forced
        self._operations[op.id] = op
        self._schedule(op)
        return copy.copy(op)

    def request_unassign(self, number: str, number_type: NumberType) -> Operation:
        """Accept an unassignNumber request and return its operation.

        Raises RejectedError instead when the request is refused and `assignErrors` is `sync`.
        """
        self._settle()
        refusal = self._unassign_refusal(number, number_type)
        if refusal is not None and self.behaviour.assign_errors == "sync":
            raise RejectedError(refusal)
        op = self._new_operation("unassign", number, number_type)
        op.refusal = self._take_forced_failure("unassign") or refusal
        self._operations[op.id] = op
        self._schedule(op)
        return copy.copy(op)

    def carry_out(self, operation_id: str) -> Operation:
        """Complete the operation now, however long it would have taken (Teams carried the
        request out; `assignAnswerLost`)."""
        op = self._operations[operation_id]
        if op.status not in TERMINAL_STATUSES:
            op.due_at = min(op.due_at, self._now())
            self._complete(op)
        return copy.copy(op)

    def poll_operation(self, operation_id: str) -> Operation:
        """The operation as it is now: polling changes nothing (it finishes when it is due)."""
        self._settle()
        op = self._operations.get(operation_id)
        if op is None:
            raise NotFoundError(f"Operation '{operation_id}' was not found.", code="NotFound")
        if op.status not in TERMINAL_STATUSES:
            started = op.accepted_at + (op.due_at - op.accepted_at) / 10
            op.status = "running" if self._now() >= started else "notStarted"
        return copy.copy(op)

    def _duration(self) -> float:
        """A sampled operation duration in seconds (``operationSeconds``)."""
        spec = self.behaviour.operation_seconds
        if isinstance(spec, int | float):
            return float(spec)
        sigma = math.log(spec.p95 / spec.median) / _Z95
        return self._durations.lognormvariate(math.log(spec.median), sigma)

    def _schedule(self, op: Operation) -> None:
        """Give the operation its due moment; one of no duration finishes now."""
        op.accepted_at = self._now()
        duration = self._duration()
        op.due_at = op.accepted_at + duration
        if duration <= 0:
            self._complete(op)

    def _settle(self) -> None:
        """Complete every operation due by now, in due order (then acceptance order)."""
        now = self._now()
        due = [op for op in self._operations.values()
               if op.status not in TERMINAL_STATUSES and op.due_at <= now]
        for op in sorted(due, key=lambda op: op.due_at):  # stable: acceptance order on ties
            self._complete(op)

    def _complete(self, op: Operation) -> None:
        if op.kind == "assign":
            assert op.target_id is not None
            refusal = op.refusal or self._assign_refusal(
                op.telephone_number, op.number_type, op.target_id, op.id
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
        if self._skips(op):
            op.status = "skipped"
            record = self._numbers.get(op.telephone_number)
            if record is not None and record.reserved_by == op.id:
                self._free(record)
            return
        if op.kind == "assign":
            self._give(op)
        else:
            self._free(self._numbers[op.telephone_number])
        op.status = "succeeded"

    def _skips(self, op: Operation) -> bool:
        """Whether the operation ends `skipped` (`skippedOperations`): always, or when what it
        asks for is already so."""
        mode = self.behaviour.skipped_operations
        if mode != "alreadyDone":
            return mode == "always"
        record = self._numbers.get(op.telephone_number)
        if op.kind == "unassign":
            return record is not None and record.assignment_target_id is None
        return (record is not None and record.assignment_target_id == op.target_id
                and record.activation_state == "activated")

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
        self._touch(op.target_id)
        teams_user = self._teams_users.get(op.target_id)
        if teams_user is not None and self.behaviour.assign_enables_enterprise_voice:
            teams_user.enterprise_voice_enabled = True
        if teams_user is not None and self.behaviour.configuration_lag_reads:
            teams_user.lagging_numbers.append(op.telephone_number)
            teams_user.lagging_reads = self.behaviour.configuration_lag_reads
        if self.behaviour.number_assignments_lag_reads:
            self._number_lag[op.telephone_number] = self.behaviour.number_assignments_lag_reads

    def _free(self, record: NumberRecord) -> None:
        self._number_lag.pop(record.telephone_number, None)
        if record.activation_state == "activated":
            self._touch(record.assignment_target_id)
        if not record.inventory:
            del self._numbers[record.telephone_number]
            return
        record.assignment_target_id = None
        record.assignment_category = "primary"
        record.activation_state = "activated"
        record.reserved_by = None


def _transitive_users(
    groups: Mapping[str, Group], users: Mapping[str, User], group_id: str
) -> list[User]:
    """Users reachable from the group, each once, depth-first in member-list order (a group
    already expanded is skipped, so membership cycles terminate)."""
    seen_users: dict[str, User] = {}
    visited_groups: set[str] = set()

    def walk(gid: str) -> Iterator[User]:
        visited_groups.add(gid)
        for member in groups[gid].members:
            if member in users:
                yield users[member]
            elif member in groups and member not in visited_groups:
                yield from walk(member)

    for user in walk(group_id):
        seen_users.setdefault(user.id, user)
    return list(seen_users.values())


def _fresh_teams_user(user_id: str, profile: TeamsProfile, now: str) -> TeamsUserRecord:
    return TeamsUserRecord(
        user_id=user_id,
        profile=profile,
        present=profile.present and profile.visible_after_polls == 0,
        reads_until_visible=profile.visible_after_polls,
        licensed=profile.licensed,
        enterprise_voice_enabled=profile.enterprise_voice_enabled,
        created_date_time=now,
        modified_date_time=now,
    )


def _apply_profile_change(record: TeamsUserRecord, profile: TeamsProfile, now: str) -> None:
    before = record.profile
    if (profile.present, profile.visible_after_polls) != (before.present,
                                                          before.visible_after_polls):
        record.present = profile.present and profile.visible_after_polls == 0
        record.reads_until_visible = profile.visible_after_polls
    if profile.licensed != before.licensed:
        record.licensed = profile.licensed
    if profile.enterprise_voice_enabled != before.enterprise_voice_enabled:
        record.enterprise_voice_enabled = profile.enterprise_voice_enabled
    record.profile = profile
    record.modified_date_time = now
