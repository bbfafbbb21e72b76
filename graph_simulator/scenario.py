"""The scenario file: the directory, the Teams number inventory and the simulator's behaviour,
for one customer tenant or several (`tenants`, see `Scenario`).

A scenario is JSON (version 1) validated with pydantic. Anything wrong with it is reported as a
`ScenarioError` whose message names the field path and the offending value, because the people
reading it are editing a JSON file by hand and need to know where to look.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from graph_simulator.permissions import KNOWN_PERMISSIONS

NumberType = Literal["directRouting", "callingPlan", "operatorConnect"]
AssignmentCategory = Literal["primary", "private", "alternate"]

# E.164 allows up to 15 digits after the country code's leading non-zero digit.
_PHONE_RE = re.compile(r"^\+?[1-9][0-9]{3,14}$")


class ScenarioError(ValueError):
    """A scenario (or directory, or state file) that cannot be used, with a readable reason."""


def normalise_number(value: str) -> str:
    """Return `value` in the `+` form Graph displays, or raise ValueError if it is not a number.

    Graph accepts numbers with or without the leading `+` and always shows them with it.
    """
    if not _PHONE_RE.fullmatch(value):
        raise ValueError(f"not a telephone number in E.164 form: {value!r}")
    return value if value.startswith("+") else f"+{value}"


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class Tenant(_Model):
    """The tenant the simulator pretends to be.

    `rules` is stored and handed back untouched: it belongs to the app's planner (main numbers,
    number ranges, ...), not to Graph, so the simulator never reads it.
    """

    id: Annotated[str, Field(min_length=1)]
    voice_group_id: Annotated[str, Field(min_length=1)]
    default_domain: Annotated[str, Field(min_length=1)]
    rules: dict[str, Any] = Field(default_factory=dict)
    granted_permissions: tuple[str, ...] | None = None
    """The application permissions the tenant's admin granted the app (its token's roles);
    None: every one. A route without its permission answers 403; transitive members without a
    user permission come back as limited information (`graph_simulator.permissions`)."""

    @field_validator("granted_permissions")
    @classmethod
    def _known_permissions(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return check_permission_names(value)


def check_permission_names(value: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """`value` unchanged, or ValueError naming a permission no simulated route knows."""
    for name in value or ():
        if name not in KNOWN_PERMISSIONS:
            raise ValueError(f"unknown application permission {name!r} (known: "
                             f"{', '.join(sorted(KNOWN_PERMISSIONS))})")
    return value


class TeamsProfile(_Model):
    """How a directory user looks to Teams when the scenario starts.

    * `present`: the user exists in Teams at all (false: userConfigurations answers 404 and
      assignNumber fails with "The user '...' is not found").
    * `licensed`: the user has Teams Phone; without it every number type is refused.
    * `visibleAfterPolls`: the user shows up in Teams only after this many reads of their
      userConfiguration -- licence propagation modelled without a clock. Needs `present`.
    """

    present: bool = True
    licensed: bool = True
    enterprise_voice_enabled: bool = False
    account_type: Literal["user", "resourceAccount", "guest", "sfbOnPremUser", "unknown"] = "user"
    """Teams' `accountType`: `resourceAccount` for the account behind a call queue or auto
    attendant (where a company's main number belongs)."""
    visible_after_polls: Annotated[int, Field(ge=0, le=1_000_000)] = 0

    @model_validator(mode="after")
    def _visible_needs_present(self) -> TeamsProfile:
        if not self.present and self.visible_after_polls:
            raise ValueError("visibleAfterPolls needs present: true (a user who is never "
                             "present cannot become visible)")
        return self


class User(_Model):
    """A directory user, with the properties Graph can return for it."""

    id: Annotated[str, Field(min_length=1)]
    user_principal_name: Annotated[str, Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")]
    display_name: str | None = None
    business_phones: tuple[str, ...] = ()
    account_enabled: bool = True
    given_name: str | None = None
    surname: str | None = None
    mail: str | None = None
    mobile_phone: str | None = None
    job_title: str | None = None
    office_location: str | None = None
    preferred_language: str | None = None
    on_premises_sync_enabled: bool | None = None
    # Not a Graph user property: never returned by /users routes, only used by Teams routes.
    teams: TeamsProfile = TeamsProfile()


#: User fields that are Graph user properties (everything but the simulator-only `teams`).
USER_GRAPH_FIELDS: tuple[str, ...] = tuple(name for name in User.model_fields if name != "teams")


class Policy(_Model):
    """An existing Teams policy instance: `type` as Graph's policyType, `name` without `Tag:`."""

    type: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    id: Annotated[str, Field(min_length=1)]


class Group(_Model):
    """A directory group; `members` are user ids or group ids, in membership order."""

    id: Annotated[str, Field(min_length=1)]
    display_name: str
    members: tuple[str, ...] = ()


class NumberAssignment(_Model):
    """A Teams telephone number that exists before the simulation starts (inventory)."""

    telephone_number: str
    number_type: NumberType
    assignment_target_id: str | None = None
    assignment_category: AssignmentCategory = "primary"
    location_id: str | None = None
    operator_id: str | None = None
    iso_country_code: str | None = None
    city: str | None = None

    @field_validator("telephone_number")
    @classmethod
    def _plus_form(cls, value: str) -> str:
        return normalise_number(value)


class RateLimit(_Model):
    """A token bucket shared by all requests in `scope`.

    * `teamsAdmin`: every /admin/teams route; each request takes one of `requestsPerSecond`.
    * `directory`: the directory routes (/users, /groups), counted in Graph's resource units:
      each request takes its route's cost (`RESOURCE_UNITS`: a transitive-members page 5,
      other reads 1) of `resourceUnitsPerSecond`.

    The bucket holds at most one second's worth (at least one request's cost), so a burst of
    one second's worth passes and the next request is throttled: 429 with `Retry-After` and
    Graph's `x-ms-throttle-scope` and `x-ms-throttle-information`.
    """

    requests_per_second: Annotated[float, Field(gt=0, le=100_000)] | None = None
    resource_units_per_second: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    scope: Literal["teamsAdmin", "directory"] = "teamsAdmin"

    @model_validator(mode="after")
    def _rate_for_scope(self) -> RateLimit:
        if self.scope == "teamsAdmin" and (self.requests_per_second is None
                                           or self.resource_units_per_second is not None):
            raise ValueError("scope teamsAdmin counts requests: set requestsPerSecond only")
        if self.scope == "directory" and (self.resource_units_per_second is None
                                          or self.requests_per_second is not None):
            raise ValueError("scope directory counts resource units: set "
                             "resourceUnitsPerSecond only")
        return self

    @property
    def per_second(self) -> float:
        """The bucket's refill rate, in its scope's unit (requests or resource units)."""
        rate = self.requests_per_second or self.resource_units_per_second
        assert rate is not None  # the validator wants one of them
        return rate


#: Seven days: Graph's documented lifetime of directory (users, groups) delta tokens.
DEFAULT_DELTA_TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600


class OperationDuration(_Model):
    """How long Teams takes to carry out an assign or unassign: log-normal, given by its median
    and 95th percentile in seconds (a long tail: most take seconds, a few minutes)."""

    median: Annotated[float, Field(gt=0, le=3600)]
    p95: Annotated[float, Field(gt=0, le=36_000)]

    @model_validator(mode="after")
    def _p95_not_below_median(self) -> Self:
        if self.p95 < self.median:
            raise ValueError(f"operationSeconds.p95={self.p95:g} is below its "
                             f"median={self.median:g}")
        return self


class Behaviour(_Model):
    """Knobs for the parts of Graph's behaviour the documentation leaves open."""

    operation_seconds: OperationDuration | Annotated[float, Field(ge=0, le=3600)] = 0.0
    """How long an accepted assign or unassign operation takes to finish, in wall-clock time
    (the simulator's ``wall_clock``): a fixed number of seconds (0: done when accepted) or a
    ``{"median": 8, "p95": 40}`` distribution, sampled per operation, reproducibly per tenant.
    Polling the operation neither speeds it up nor is needed: it finishes when it is due, and
    the user's configuration shows the number from then on."""
    operation_body_shape: Literal["root", "value"] = "root"
    assign_errors: Literal["async", "sync"] = "async"
    default_page_size: Annotated[int, Field(ge=1, le=999)] = 100
    max_page_size: Annotated[int, Field(ge=1, le=999)] | None = None
    """The most members a transitive-members page carries, whatever ``$top`` asks: Graph may
    answer a page with fewer items than ``$top`` (a client must follow ``@odata.nextLink``), and
    a small cap lets a test read a small group in several pages."""
    assign_enables_enterprise_voice: bool = True
    user_configuration_body_shape: Literal["root", "value"] = "root"
    rate_limit: RateLimit | None = None
    delta_token_lifetime_seconds: Annotated[int, Field(ge=1)] = (
        DEFAULT_DELTA_TOKEN_LIFETIME_SECONDS
    )
    delta_gone_error_code: Literal["syncStateNotFound", "resyncRequired"] = "syncStateNotFound"
    delta_removed_reason: Literal["deleted", "changed"] = "deleted"
    configuration_lag_reads: Annotated[int, Field(ge=0, le=1000)] = 0
    """After a number lands on a user, this many reads of their userConfiguration still miss
    it (Teams' configuration view is eventually consistent; a read-back can come too early)."""
    # Issue 11, items 1 and 11: numberAssignments as documented rather than as kind.
    number_assignments_paging: Literal["nextLink", "skipOnly"] = "nextLink"
    """`nextLink`: list pages carry `@odata.nextLink`; `skipOnly`: as Graph documents the list,
    `$top`/`$skip` and no link, so a client reads the next page by asking for it."""
    number_assignments_value_shape: Literal["list", "object"] = "list"
    """`object`: a list answer of exactly one number has `value` as that object, as Graph's
    documented example shows it; other answers stay lists."""
    # -- eventual consistency (issue 11 item 7): each view lags by reads, not by time ----------
    member_lag_reads: Annotated[int, Field(ge=0, le=1000)] = 0
    """A user who becomes a transitive member of a group by a directory replacement is left out
    of that group's transitiveMembers for this many reads (a read ends with the page that has no
    nextLink); delta queries see the change at once (the advanced-query index lags)."""
    number_assignments_lag_reads: Annotated[int, Field(ge=0, le=1000)] = 0
    """After an assignment completes, this many numberAssignments requests (list pages, filtered
    lists, single GETs) still show the number as before it: unassigned when it is inventory,
    absent otherwise."""
    policy_lag_reads: Annotated[int, Field(ge=0, le=1000)] = 0
    """After a policy assign or unassign, this many reads of the user's configuration still
    show the effectivePolicyAssignments from before it."""
    # Where Graph documents no values, or more than one form (issue 11, items 4, 6 and 8).
    phone_feature_types: tuple[Annotated[str, Field(min_length=1)], ...] = ("PhoneSystem",)
    """The featureTypes a user with Teams Phone lists besides ``Teams``. Graph documents no
    values (its example shows ``CallingPlan``), so a test can serve spellings the app has never
    seen."""
    delta_gone_status: Literal[400, 404, 409, 410] = 410
    """The status an expired delta token answers: 410 with a ``Location`` (documented), or
    another of "the 40X-series errors with codes such as syncStateNotFound" (also documented;
    no ``Location``), its code being ``deltaGoneErrorCode``."""
    effective_policy_ids: Literal["same", "opaque"] = "same"
    """``opaque``: effectivePolicyAssignments show a base64-like id for a policy that
    getPolicyId answers with its GUID-style id (as Graph's own examples differ); assign still
    takes the getPolicyId id."""
    # -- issue 11, items 3, 5 and 9: where documented Graph is harsher than the defaults ------
    skipped_operations: Literal["never", "alreadyDone", "always"] = "never"
    """Graph v1.0 lists `skipped` among the operation statuses (the SDK enum lacks it):
    `alreadyDone` ends an assign of a number already on its target (or an unassign of a free
    number) `skipped` instead of `succeeded`; `always` ends every assign and unassign `skipped`
    and changes nothing."""
    assign_answer_lost: Literal["never", "gatewayTimeout", "connectionDropped"] = "never"
    """An assignNumber that is a first try (no `Retry-Attempt` header) is carried out at once --
    its operation completes -- and then answered 504 (`gatewayTimeout`) or not at all, the
    connection reset (`connectionDropped`): Teams did it, the client cannot know."""
    repeated_assign: Literal["newOperation", "refused"] = "newOperation"
    """An assignNumber of a number its target already has (or has pending): accepted as a new
    operation that succeeds, or refused "already assigned to this user" (at the POST or in
    the operation, as `assignErrors` says)."""
    refusal_texts: Literal["teams", "unseen", "unseenTryAgain"] = "teams"
    """The texts of Teams' refusals: the ones Teams PowerShell shows (`teams`), or each replaced
    by a text no classifier has seen (`unseen`), or by one that also says "try again"."""


def _check_directory(users: Sequence[User], groups: Sequence[Group]) -> None:
    """Raise ValueError naming the first broken reference or duplicate in a directory."""
    user_ids: set[str] = set()
    upns: set[str] = set()
    for index, user in enumerate(users):
        if user.id in user_ids:
            raise ValueError(f"users[{index}].id: duplicate user id {user.id!r}")
        user_ids.add(user.id)
        # Entra compares UPNs case-insensitively.
        upn = user.user_principal_name.lower()
        if upn in upns:
            raise ValueError(
                f"users[{index}].userPrincipalName: duplicate {user.user_principal_name!r}"
            )
        upns.add(upn)
    group_ids: set[str] = set()
    for index, group in enumerate(groups):
        if group.id in group_ids or group.id in user_ids:
            raise ValueError(f"groups[{index}].id: duplicate directory object id {group.id!r}")
        group_ids.add(group.id)
    known = user_ids | group_ids
    for index, group in enumerate(groups):
        for position, member in enumerate(group.members):
            if member not in known:
                raise ValueError(
                    f"groups[{index}].members[{position}]: unknown user or group id {member!r}"
                )


def _check_policies(policies: Sequence[Policy]) -> None:
    names: set[tuple[str, str]] = set()
    ids: set[tuple[str, str]] = set()
    for index, policy in enumerate(policies):
        if (policy.type, policy.name) in names:
            raise ValueError(f"policies[{index}].name: duplicate {policy.type} policy "
                             f"{policy.name!r}")
        if (policy.type, policy.id) in ids:
            raise ValueError(f"policies[{index}].id: duplicate {policy.type} policy id "
                             f"{policy.id!r}")
        names.add((policy.type, policy.name))
        ids.add((policy.type, policy.id))


class Directory(_Model):
    """Users and groups only: what `/_simulator/directory` replaces between syncs."""

    users: tuple[User, ...] = ()
    groups: tuple[Group, ...] = ()

    @model_validator(mode="after")
    def _references(self) -> Directory:
        _check_directory(self.users, self.groups)
        return self


class TimelineStep(_Model):
    """What happens next: the clock moves on and/or the directory changes; then a sync runs."""

    description: str
    advance_hours: Annotated[float, Field(ge=0)] = 0.0
    directory: Directory | None = None


#: The fields of one tenant's entry: in the one-tenant format they are the scenario's own.
_TENANT_ENTRY_FIELDS: Final = ("tenant", "users", "groups", "number_assignments", "policies",
                               "behaviour", "app_state", "display_name", "consented")


class TenantEntry(_Model):
    """One customer tenant of a scenario: its directory, Teams numbers, behaviour and consent.

    A scenario serves one tenant (the entry's fields at the top level) or several (`tenants`,
    a list of entries); each tenant is a world of its own, so user ids and numbers may repeat
    between tenants.
    """

    tenant: Tenant
    users: tuple[User, ...] = ()
    groups: tuple[Group, ...] = ()
    number_assignments: tuple[NumberAssignment, ...] = ()
    policies: tuple[Policy, ...] = ()
    behaviour: Behaviour = Behaviour()
    app_state: dict[str, Any] = Field(default_factory=dict)
    """The app's own stored state before the first sync (e.g. the numbers it claimed in earlier
    runs): read by the local runner and the plan preview, ignored by the simulator."""
    display_name: str | None = None
    """The customer's name, for people reading reports; the simulator never reads it."""
    consented: bool = True
    """Whether the customer's admin consented to the app (it has a service principal in the
    tenant); without it the token endpoint refuses the tenant (AADSTS7000229)."""

    @model_validator(mode="after")
    def _references(self) -> Self:
        _check_directory(self.users, self.groups)
        _check_policies(self.policies)
        if not any(group.id == self.tenant.voice_group_id for group in self.groups):
            raise ValueError(
                f"tenant.voiceGroupId: no group with id {self.tenant.voice_group_id!r}"
            )
        user_ids = {user.id for user in self.users}
        numbers: set[str] = set()
        for index, number in enumerate(self.number_assignments):
            if number.telephone_number in numbers:
                raise ValueError(
                    f"numberAssignments[{index}].telephoneNumber: duplicate "
                    f"{number.telephone_number!r}"
                )
            numbers.add(number.telephone_number)
            target = number.assignment_target_id
            if target is not None and target not in user_ids:
                raise ValueError(
                    f"numberAssignments[{index}].assignmentTargetId: unknown user id {target!r}"
                )
        return self

    @property
    def directory(self) -> Directory:
        """The users and groups of this tenant."""
        return Directory(users=self.users, groups=self.groups)


class Scenario(TenantEntry):
    """A whole simulation: one or more customer tenants, each with its directory, Teams numbers
    and behaviour, and the timeline the local runner plays.

    Its own `TenantEntry` fields are the first tenant's, so code that knows one tenant reads a
    scenario as before; `other_tenants` holds the rest. In JSON a scenario is either one tenant
    (`tenant`, `users`, ... at the top level) or `tenants: [...]` (every tenant, first one
    first; `appState` and `timeline` may stay at the top level and then belong to the first).
    `tenant_scenarios()` splits it into one-tenant scenarios.
    """

    version: Literal[1]
    timeline: tuple[TimelineStep, ...] = ()
    """Directory states of the first tenant that follow the initial one, each followed by a sync
    (local runner)."""
    other_tenants: tuple[TenantEntry, ...] = ()
    """The tenants after the first, in `tenants` order (JSON: only through `tenants`)."""

    @model_validator(mode="before")
    @classmethod
    def _tenants_form(cls, data: Any) -> Any:
        """Turn `tenants: [...]` into the first tenant's fields plus `other_tenants`."""
        if not isinstance(data, Mapping):
            return data
        if "otherTenants" in data or "other_tenants" in data:
            raise ValueError("otherTenants: not a scenario field; list every tenant in tenants")
        if "tenants" not in data:
            return data
        spelled = {name for field in _TENANT_ENTRY_FIELDS if field != "app_state"
                   for name in (field, to_camel(field))}
        misplaced = sorted(key for key in data if key in spelled)
        if misplaced:
            raise ValueError(f"{misplaced[0]}: with tenants, each tenant's fields go in its "
                             "entry, not at the top level")
        entries = _tenant_entries(data["tenants"])
        rest = {key: value for key, value in data.items() if key != "tenants"}
        top_app_state = rest.pop("appState", rest.pop("app_state", None))
        first = entries[0]
        if top_app_state is not None and "app_state" in first.model_fields_set:
            raise ValueError("appState: the first tenant's appState is given both at the top "
                             "level and in tenants[0]")
        own = {name: getattr(first, name) for name in _TENANT_ENTRY_FIELDS}
        if top_app_state is not None:
            own["app_state"] = top_app_state
        return {**rest, **own, "other_tenants": entries[1:]}

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler,
              info: SerializationInfo) -> dict[str, Any]:
        """One tenant: the one-tenant format (as it always was); more: the `tenants` format."""
        data: dict[str, Any] = handler(self)
        by_alias = bool(info.by_alias)
        others = data.pop("otherTenants" if by_alias else "other_tenants", None)
        if not self.other_tenants:
            return data
        keys = [to_camel(name) if by_alias else name for name in _TENANT_ENTRY_FIELDS]
        first = {key: data.pop(key) for key in keys if key in data}
        data["tenants"] = [first, *(others or [])]
        return data

    def tenant_entries(self) -> tuple[TenantEntry, ...]:
        """Every tenant, first one first (the scenario itself stands for the first)."""
        return (self, *self.other_tenants)

    def tenant_ids(self) -> tuple[str, ...]:
        """The ids of every tenant, first one first."""
        return tuple(entry.tenant.id for entry in self.tenant_entries())

    def tenant_scenarios(self) -> tuple[Scenario, ...]:
        """One one-tenant scenario per tenant, first one first: what the local runner (and
        anything else that knows one tenant) is given. The timeline stays with the first."""
        if not self.other_tenants:
            return (self,)
        first = self.model_copy(update={"other_tenants": ()})
        return (first, *(
            Scenario(version=1, **{name: getattr(entry, name) for name in _TENANT_ENTRY_FIELDS})
            for entry in self.other_tenants
        ))


def _tenant_entries(raw: Any) -> tuple[TenantEntry, ...]:
    """Validate `tenants`: a non-empty list of entries with distinct tenant ids; a problem is a
    ValueError naming `tenants[i]` and the field path in the entry."""
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes) or not raw:
        shown = json.dumps(raw, default=str)[:120]
        raise ValueError(f"tenants: expected a non-empty list of tenant entries (got {shown})")
    entries: list[TenantEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        try:
            entry = TenantEntry.model_validate(item)
        except ValidationError as error:
            raise ValueError(_describe(error, f"tenants[{index}]")) from None
        if entry.tenant.id in seen:
            raise ValueError(f"tenants[{index}].tenant.id: duplicate tenant id "
                             f"{entry.tenant.id!r}")
        seen.add(entry.tenant.id)
        entries.append(entry)
    return tuple(entries)


class Fault(_Model):
    """An injected failure: the next `count` requests to `route` answer `status`."""

    route: str
    status: Annotated[int, Field(ge=400, le=599)]
    count: Annotated[int, Field(ge=1)] = 1
    after: Annotated[int, Field(ge=0)] = 0
    """Let this many requests to the route through first (e.g. fail a read on its 2nd page)."""
    retry_after_seconds: Annotated[int, Field(ge=0)] | None = None
    code: str | None = None
    message: str | None = None


class LatencyFault(_Model):
    """Injected slowness: the answers to the next `count` requests to `route` are delayed.

    The request is processed first and only its answer waits, like a slow network: a client
    that times out and retries has already had its first request carried out.
    """

    route: str
    latency_ms: Annotated[int, Field(ge=0, le=600_000)]
    count: Annotated[int, Field(ge=1)] = 1


class OperationFailure(_Model):
    """Injected Teams failure: the next `count` operations accepted by `route` end `failed`.

    `route` is `assignNumber` or `unassignNumber`; the POST is still accepted (202) and the
    operation reports `statusDetail` when it completes, as the Teams backend does.
    """

    route: Literal["assignNumber", "unassignNumber"]
    status_detail: Annotated[str, Field(min_length=1)]
    count: Annotated[int, Field(ge=1)] = 1


class GrantedPermissions(_Model):
    """`POST /_simulator/permissions`: the tenant's grants from now on (null: every one)."""

    granted_permissions: tuple[str, ...] | None

    @field_validator("granted_permissions")
    @classmethod
    def _known_permissions(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return check_permission_names(value)


class TenantConsent(_Model):
    """`POST /_simulator/consent`: whether the tenant's admin has consented to the app now."""

    consented: bool


def _format_location(location: Sequence[int | str]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


# How a model-level check's message starts: the field path it is about, then ": ".
_MODEL_PATH_RE: Final = re.compile(r"^([A-Za-z_][\w.\[\]]*): ")


def describe_validation_error(error: ValidationError, source: str) -> str:
    """Render the first pydantic error as one line: `source: field.path: reason (got value)`."""
    return f"{source}: {_describe(error)}"


def _describe(error: ValidationError, prefix: str = "") -> str:
    """The first error as `field.path: reason (got value)`, its path under `prefix` (a field
    path such as `tenants[1]`, or empty)."""
    first = error.errors()[0]
    # Model-level checks already name their path in the message; pydantic prefixes it.
    reason = str(first["msg"]).removeprefix("Value error, ")
    location = _format_location(first["loc"])
    shown = ""
    if location and first["type"] not in {"missing"}:
        shown = f" (got {json.dumps(first.get('input'), default=str)[:120]})"
    model_path = _MODEL_PATH_RE.match(reason) if not location else None
    if prefix and model_path:
        # A model-level message names its own path ("users[2].id: ..."): put it under prefix.
        location, reason = f"{prefix}.{model_path[1]}", reason[model_path.end():]
    elif prefix:
        location = f"{prefix}.{location}" if location else prefix
    where = f"{location}: " if location else ""
    extra = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
    return f"{where}{reason}{shown}{extra}"


def _decode(data: str | bytes | Mapping[str, Any], source: str) -> Any:
    if isinstance(data, Mapping):
        return data
    try:
        return json.loads(data)
    except json.JSONDecodeError as error:
        raise ScenarioError(
            f"{source}: not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None


def parse_scenario(data: str | bytes | Mapping[str, Any], source: str = "scenario") -> Scenario:
    """Validate scenario JSON (text or already decoded); raise ScenarioError on any problem."""
    try:
        return Scenario.model_validate(_decode(data, source))
    except ValidationError as error:
        raise ScenarioError(describe_validation_error(error, source)) from None


def parse_directory(data: str | bytes | Mapping[str, Any], source: str = "directory") -> Directory:
    """Validate `{"users": [...], "groups": [...]}`, or a whole scenario (its directory is used)."""
    decoded = _decode(data, source)
    if isinstance(decoded, Mapping) and "version" in decoded:
        return parse_scenario(decoded, source).directory
    try:
        return Directory.model_validate(decoded)
    except ValidationError as error:
        raise ScenarioError(describe_validation_error(error, source)) from None


def load_directory(path: str | Path) -> Directory:
    """Read a directory file (users and groups) or a scenario file and return its directory."""
    file = Path(path)
    try:
        text = file.read_bytes()
    except OSError as error:
        raise ScenarioError(f"{file}: cannot read directory file: {error.strerror}") from None
    return parse_directory(text, str(file))


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; the error message starts with the file name."""
    file = Path(path)
    try:
        text = file.read_bytes()
    except OSError as error:
        raise ScenarioError(f"{file}: cannot read scenario file: {error.strerror}") from None
    return parse_scenario(text, str(file))
