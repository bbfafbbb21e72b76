"""The voice group after a delta round: examples, then properties over any round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from shared.core.directory import Member
from shared.core.member_delta import apply_delta, full_read_due, joiners_to_read, move_forward
from shared.core.records import DirectorySnapshot, GroupDelta, UserDelta


def _m(name: str, position: int, phone: str | None = None, *, enabled: bool = True) -> Member:
    return Member(name, f"{name}@contoso.example", (phone,) if phone else (), enabled, position)


GROUP = (_m("ann", 0, "+31855363011"), _m("bob", 1, "+31855363012"), _m("cy", 2))


def test_nothing_reported_leaves_the_group_as_it_was() -> None:
    assert apply_delta(GROUP, changed={}, gone=(), joined=()) == GROUP


def test_a_changed_number_is_taken_in_place_and_keeps_the_read_position() -> None:
    changed = {"bob": _m("bob", 0, "+31855363099", enabled=False)}
    after = apply_delta(GROUP, changed=changed, gone=(), joined=())
    assert after[1] == _m("bob", 1, "+31855363099", enabled=False)


def test_changes_to_users_outside_the_group_are_ignored() -> None:
    after = apply_delta(GROUP, changed={"zed": _m("zed", 0, "+31855363077")}, gone=(),
                        joined=())
    assert after == GROUP


def test_joiners_are_read_after_everyone_known_in_the_order_they_joined() -> None:
    after = apply_delta(GROUP, changed={}, gone=["ann"],
                        joined=[_m("dee", 0, "+31855363011"), _m("eve", 0)])
    assert [(m.user_id, m.read_position) for m in after] == [
        ("bob", 1), ("cy", 2), ("dee", 3), ("eve", 4)]


def test_a_joiner_already_known_through_a_nested_group_keeps_their_place() -> None:
    after = apply_delta(GROUP, changed={}, gone=(), joined=[_m("ann", 0, "+31855363011")])
    assert after == GROUP


def test_a_joiner_whose_fields_changed_in_the_same_round_gets_the_new_ones() -> None:
    after = apply_delta(GROUP, changed={"dee": _m("dee", 0, "+31855363014")}, gone=(),
                        joined=[_m("dee", 0)])
    assert after[-1] == _m("dee", 3, "+31855363014")


_names = st.sampled_from([f"u{i}" for i in range(12)])


@st.composite
def _group(draw: st.DrawFn) -> tuple[Member, ...]:
    names = draw(st.lists(_names, unique=True, max_size=10))
    gaps = draw(st.lists(st.integers(0, 3), min_size=len(names), max_size=len(names)))
    position, members = 0, list[Member]()
    for name, gap in zip(names, gaps, strict=True):
        position += gap
        members.append(_m(name, position, f"+3185536{len(members):04}"))
        position += 1
    return tuple(members)


Round = tuple[tuple[Member, ...], dict[str, Member], set[str], list[Member]]


def _applied(round_: Round) -> tuple[Member, ...]:
    members, changed, gone, joined = round_
    return apply_delta(members, changed=changed, gone=gone, joined=joined)


_rounds = st.tuples(
    _group(),
    st.sets(_names).map(lambda names: {name: _m(name, 0, "+31855363999") for name in names}),
    st.sets(_names),
    st.lists(_names, unique=True).map(lambda names: [_m(name, 0) for name in names]),
)


@given(_rounds)
def test_the_group_is_the_kept_members_then_the_joiners_each_once(
    round_: Round,
) -> None:
    members, _, gone, joined = round_
    after = _applied(round_)
    ids = [m.user_id for m in after]
    kept = [m.user_id for m in members if m.user_id not in gone]
    assert ids == kept + [m.user_id for m in joined if m.user_id not in kept]


@given(_rounds)
def test_read_order_only_grows_and_known_members_keep_their_positions(
    round_: Round,
) -> None:
    members, _, gone, _ = round_
    after = _applied(round_)
    positions = [m.read_position for m in after]
    assert positions == sorted(set(positions))
    before = {m.user_id: m.read_position for m in members}
    for member in after:
        if member.user_id in before and member.user_id not in gone:
            assert member.read_position == before[member.user_id]
        else:
            assert member.read_position > max(before.values(), default=-1)


@given(_rounds)
def test_every_member_carries_the_fields_last_reported(
    round_: Round,
) -> None:
    changed = round_[1]
    after = _applied(round_)
    for member in after:
        if member.user_id in changed:
            assert member.business_phones == changed[member.user_id].business_phones


# --- when a run reads everything, and one delta round as a whole -------------------------------

AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _snapshot(full_read_at: datetime | None = AT, links: bool = True) -> DirectorySnapshot:
    return DirectorySnapshot(GROUP, {}, "users-link" if links else None,
                             "group-link" if links else None, full_read_at)


def test_a_full_read_is_due_without_a_snapshot_links_or_a_recent_full_read() -> None:
    assert full_read_due(None, HOUR, AT) == "no snapshot yet"
    assert full_read_due(_snapshot(links=False), HOUR, AT) == "no delta links yet"
    assert full_read_due(_snapshot(), HOUR, AT + HOUR) == "the regular full read (every 1:00:00)"
    assert full_read_due(_snapshot(full_read_at=None), HOUR, AT) is not None
    assert full_read_due(_snapshot(), HOUR, AT + HOUR / 2) is None


def test_the_hourly_full_read_is_due_at_the_tick_that_starts_seconds_earlier() -> None:
    # Stamped 20 s into its tick; the tick an hour later starts 5 s in: 59:45 later. Without the
    # slack the full read would wait one more tick (65 minutes).
    stamped = _snapshot(full_read_at=AT + timedelta(seconds=20))
    assert full_read_due(stamped, HOUR, AT + HOUR + timedelta(seconds=5)) is not None
    assert full_read_due(stamped, HOUR, AT + HOUR - timedelta(minutes=2)) is None


def test_only_joiners_without_fields_in_the_users_round_are_read() -> None:
    users = UserDelta((_m("dee", 0, "+31855363014"),), (), "u2")
    group = GroupDelta(("dee", "eve", "ann"), (), False, "g2")
    assert joiners_to_read(_snapshot(), users, group) == ["eve"]


def test_a_round_moves_the_group_forward_and_says_who_was_read_now() -> None:
    users = UserDelta((_m("dee", 0, "+31855363014"), _m("bob", 0, "+31855363099")), ("cy",),
                      "u2")
    group = GroupDelta(("dee", "eve", "fay"), ("ann",), False, "g2")
    moved = move_forward(_snapshot(), users, group, {"eve": _m("eve", 0), "fay": None})
    assert [m.user_id for m in moved.members] == ["bob", "dee", "eve"]
    assert [m.read_position for m in moved.members] == [1, 3, 4]
    assert moved.read_now == {"bob", "dee", "eve"}
    assert moved.joined == 3
