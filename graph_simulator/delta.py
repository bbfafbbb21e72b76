"""Delta queries on users and groups: state tokens, change sets and paging.

Pure functions over two `Directory` versions (the one a token was issued at and the one being
read), so a round of `@odata.nextLink` pages is stable however the directory changes while a
client pages through it: every page of a round diffs the same two versions.

Tokens are opaque to clients, like Graph's, but not secret: base64url JSON naming the query
(`$select`, `$filter`), the directory versions, the directory history they belong to and when
the round started (on the simulator's monotonic clock, for expiry).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from graph_simulator.scenario import Directory, Group, User

DeltaKind = Literal["users", "groups"]
TokenType = Literal["skip", "delta"]

USER_TYPE: Final = "#microsoft.graph.user"
GROUP_TYPE: Final = "#microsoft.graph.group"
#: Graph's documented limit on ids in a groups delta `$filter`.
MAX_FILTER_IDS: Final = 50
#: Group properties a groups delta can `$select` (plus the `members` relationship).
GROUP_PROPERTIES: Final = ("id", "displayName")

_FILTER_ID_RE: Final = re.compile(r"id eq '(?P<id>(?:[^']|'')+)'")


@dataclass(frozen=True)
class DeltaToken:
    """The state behind a `$skiptoken` (`type` skip) or a `$deltatoken` (`type` delta).

    A delta token means "changes since `version`"; a skip token means "page `page` of the
    changes from `since` (None: everything) to `version`". `issued_at` is when the token was
    issued for a delta token and when its round started for a skip token, so every page of a
    round expires together.
    """

    type: TokenType
    kind: DeltaKind
    select: str | None
    filter: str | None
    sync_id: str
    version: int
    since: int | None
    page: int
    issued_at: float

    def encode(self) -> str:
        """The token text that goes into a link."""
        raw = json.dumps(asdict(self), separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> DeltaToken | None:
        """The token, or None when `text` is not one of ours."""
        try:
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            token = cls(**data)
        except (ValueError, TypeError, binascii.Error):
            return None
        fields_ok = (
            token.type in {"skip", "delta"} and token.kind in {"users", "groups"}
            and isinstance(token.sync_id, str) and isinstance(token.version, int)
            and isinstance(token.page, int) and token.page >= 0
            and (token.since is None or isinstance(token.since, int))
            and isinstance(token.issued_at, int | float)
            and (token.select is None or isinstance(token.select, str))
            and (token.filter is None or isinstance(token.filter, str))
        )
        return token if fields_ok else None


def parse_group_filter(expression: str) -> tuple[str, ...]:
    """The ids of `id eq '…' or id eq '…'`; ValueError for anything else or over 50 ids."""
    clauses = expression.split(" or ")
    ids: list[str] = []
    for clause in clauses:
        match = _FILTER_ID_RE.fullmatch(clause.strip())
        if match is None:
            raise ValueError(f"Unsupported $filter '{expression}' on groups delta: only "
                             "\"id eq '<id>'\" clauses joined by 'or' are supported.")
        ids.append(match["id"].replace("''", "'"))
    if len(ids) > MAX_FILTER_IDS:
        raise ValueError(f"Too many ids in $filter: {len(ids)} (at most {MAX_FILTER_IDS}).")
    return tuple(dict.fromkeys(ids))


# -- users --------------------------------------------------------------------------------


def user_changes(
    before: Directory | None,
    after: Directory,
    project: Callable[[User], dict[str, Any]],
    *,
    minimal: bool,
    removed_reason: str,
) -> list[dict[str, Any]]:
    """Users as a delta shows them: everyone when `before` is None, else what changed.

    A user counts as changed when a *projected* (selected) property differs; `minimal`
    (`Prefer: return=minimal`) keeps only `id` and the properties that changed. Changed and
    added users come in directory order, then removed ones.
    """
    if before is None:
        return [project(user) for user in after.users]
    old = {user.id: project(user) for user in before.users}
    changes: list[dict[str, Any]] = []
    for user in after.users:
        now = project(user)
        previous = old.get(user.id)
        if previous is None:
            changes.append(now)
        elif previous != now:
            if minimal:
                now = {"id": user.id,
                       **{name: value for name, value in now.items()
                          if name != "id" and previous.get(name) != value}}
            changes.append(now)
    current = {user.id for user in after.users}
    changes += [{"id": user.id, "@removed": {"reason": removed_reason}}
                for user in before.users if user.id not in current]
    return changes


def page_users(changes: Sequence[dict[str, Any]], page_size: int) -> list[list[dict[str, Any]]]:
    """Split user changes into pages (always at least one, possibly empty)."""
    pages = [list(changes[start:start + page_size])
             for start in range(0, len(changes), page_size)]
    return pages or [[]]


# -- groups -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupChange:
    """One changed group: its selected properties and its `members@delta` entries."""

    body: dict[str, Any]
    members: tuple[dict[str, Any], ...] = ()


def _member_ref(directory: Directory, member_id: str) -> dict[str, Any]:
    is_group = any(group.id == member_id for group in directory.groups)
    return {"@odata.type": GROUP_TYPE if is_group else USER_TYPE, "id": member_id}


def _group_body(group: Group, properties: Sequence[str]) -> dict[str, Any]:
    values = {"id": group.id, "displayName": group.display_name}
    return {name: values[name] for name in dict.fromkeys(["id", *properties])}


def group_changes(
    before: Directory | None,
    after: Directory,
    *,
    properties: Sequence[str],
    members: bool,
    ids: Sequence[str] | None,
    removed_reason: str,
) -> list[GroupChange]:
    """Groups as a delta shows them: all when `before` is None, else those that changed.

    `members@delta` covers *direct* members only (Graph's delta has no transitive form):
    all of them on a full read, otherwise the removed ones (with `@removed`) then the added
    ones. A group changes when a selected property changes or, with `members`, its member
    list gains or loses someone.
    """
    wanted = set(ids) if ids is not None else None

    def tracked(group: Group) -> bool:
        return wanted is None or group.id in wanted

    old = {group.id: group for group in before.groups} if before is not None else {}
    changes: list[GroupChange] = []
    for group in after.groups:
        if not tracked(group):
            continue
        body = _group_body(group, properties)
        previous = old.get(group.id)
        if previous is None:
            refs = [_member_ref(after, member) for member in group.members] if members else []
            changes.append(GroupChange(body, tuple(refs)))
            continue
        assert before is not None
        entries: list[dict[str, Any]] = []
        if members:
            kept = set(group.members)
            entries += [{**_member_ref(before, member), "@removed": {"reason": "deleted"}}
                        for member in previous.members if member not in kept]
            was = set(previous.members)
            entries += [_member_ref(after, member) for member in group.members
                        if member not in was]
        if entries or _group_body(previous, properties) != body:
            changes.append(GroupChange(body, tuple(entries)))
    if before is not None:
        current = {group.id for group in after.groups}
        changes += [GroupChange({"id": group.id, "@removed": {"reason": removed_reason}})
                    for group in before.groups if group.id not in current and tracked(group)]
    return changes


def page_groups(changes: Sequence[GroupChange], page_size: int) -> list[list[dict[str, Any]]]:
    """Pages of group objects holding at most `page_size` member entries (or groups) each.

    A group with more member changes than fit is split: it appears again on the following
    page(s) with the rest of its `members@delta`, as Graph does for large groups. A group
    without member entries has no `members@delta` property at all.
    """
    pages: list[list[dict[str, Any]]] = [[]]
    weight = 0
    for change in changes:
        chunks = [change.members[start:start + page_size]
                  for start in range(0, len(change.members), page_size)] or [()]
        for chunk in chunks:
            item = dict(change.body)
            if chunk:
                item["members@delta"] = list(chunk)
            item_weight = max(1, len(chunk))
            if pages[-1] and weight + item_weight > page_size:
                pages.append([])
                weight = 0
            pages[-1].append(item)
            weight += item_weight
    return pages
