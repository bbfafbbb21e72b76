import itertools
import json
from typing import Any

import pytest

from graph_simulator import (
    Directory,
    NotFoundError,
    RejectedError,
    World,
    parse_directory,
    parse_scenario,
)
from tests.simulator.support import EXAMPLE, FakeClock

ANN = "0f3a5c2e-0000-4000-8000-000000000001"
BOB = "0f3a5c2e-0000-4000-8000-000000000002"
CAROL = "0f3a5c2e-0000-4000-8000-000000000003"
DAVE = "0f3a5c2e-0000-4000-8000-000000000004"
ERIN = "0f3a5c2e-0000-4000-8000-000000000005"
CLI_POLICY_ID = "Q2FsbGluZ0xpbmVJZGVudGl0eXxNYWluTnVtYmVyLUNvbnRvc28"
VOICE_GROUP = "6b0d2c61-0000-4000-8000-0000000000a1"
FREE_DR = "+31855363099"
ANNS_DR = "+31855363011"


#: The worlds' wall clock in Unix seconds, moved by ``poll_to_end`` (never by sleeping).
CLOCK = FakeClock(1_800_000_000.0)


def make_world(**behaviour: Any) -> World:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    data["behaviour"] = {**data["behaviour"], **behaviour}
    counter = itertools.count(1)
    return World(parse_scenario(data), clock=lambda: "2026-01-01T00:00:00Z",
                 new_id=lambda: str(next(counter)), now=CLOCK)


def holders(world: World) -> dict[str, tuple[str | None, str]]:
    return {r.telephone_number: (r.assignment_target_id, r.activation_state)
            for r in world.number_assignments()}


def poll_to_end(world: World, op_id: str) -> list[str]:
    seen: list[str] = []
    for _ in range(10):
        status = world.poll_operation(op_id).status
        seen.append(status)
        if status in {"succeeded", "failed"}:
            return seen
        CLOCK.advance(1)  # a second passes between two polls
    raise AssertionError(f"operation never finished: {seen}")


def test_transitive_members_are_depth_first_in_member_order_each_once() -> None:
    world = make_world()
    assert [u.id for u in world.transitive_member_users(VOICE_GROUP)] == [ANN, CAROL, DAVE, BOB]


def test_assign_reserves_then_activates_when_its_time_has_passed() -> None:
    world = make_world(operationSeconds=2)
    op = world.request_assign(FREE_DR, "directRouting", BOB)
    assert holders(world)[FREE_DR] == (BOB, "assignmentPending")
    assert poll_to_end(world, op.id) == ["notStarted", "running", "succeeded"]
    assert holders(world)[FREE_DR] == (BOB, "activated")


def test_zero_polls_completes_at_once() -> None:
    world = make_world(operationSeconds=0)
    op = world.request_assign(FREE_DR, "directRouting", BOB)
    assert op.status == "succeeded"
    assert holders(world)[FREE_DR] == (BOB, "activated")


def test_new_primary_number_frees_the_old_one() -> None:
    world = make_world(operationSeconds=0)
    world.request_assign(FREE_DR, "directRouting", ANN)
    # The old number was direct routing inventory, so it stays, unassigned.
    assert holders(world)[ANNS_DR] == (None, "activated")
    assert holders(world)[FREE_DR] == (ANN, "activated")


def test_freed_non_inventory_direct_routing_number_disappears() -> None:
    world = make_world(operationSeconds=0)
    world.request_assign("+31855363050", "directRouting", BOB)
    assert holders(world)["+31855363050"] == (BOB, "activated")
    op = world.request_unassign("+31855363050", "directRouting")
    assert op.status == "succeeded"
    assert "+31855363050" not in holders(world)


def test_sync_mode_raises_for_a_number_held_by_someone_else() -> None:
    world = make_world(assignErrors="sync")
    with pytest.raises(RejectedError, match="already been assigned to another user"):
        world.request_assign(ANNS_DR, "directRouting", BOB)
    assert holders(world)[ANNS_DR] == (ANN, "activated")


def test_two_pending_assigns_of_one_number_only_one_succeeds() -> None:
    world = make_world()
    first = world.request_assign(FREE_DR, "directRouting", BOB)
    second = world.request_assign(FREE_DR, "directRouting", CAROL)
    # Complete the loser first: the outcome must not depend on polling order.
    assert poll_to_end(world, second.id)[-1] == "failed"
    assert poll_to_end(world, first.id)[-1] == "succeeded"
    assert holders(world)[FREE_DR] == (BOB, "activated")


def test_failed_assign_releases_its_reservation() -> None:
    world = make_world(operationSeconds=2)
    op = world.request_assign("+31855363051", "directRouting", BOB)
    # The target leaves the directory before the operation completes: the check is redone then.
    world.replace_directory(Directory())
    detail = world.poll_operation(op.id)
    assert poll_to_end(world, op.id)[-1] == "failed"
    assert detail.status == "notStarted"
    assert "+31855363051" not in holders(world)


def test_unassign_while_assign_pending_then_assign_completes() -> None:
    world = make_world(operationSeconds=2)
    assign = world.request_assign(FREE_DR, "directRouting", BOB)
    world.behaviour = world.behaviour.model_copy(update={"operation_seconds": 0})
    unassign = world.request_unassign(FREE_DR, "directRouting")  # done while the assign waits
    assert poll_to_end(world, unassign.id)[-1] == "succeeded"
    assert holders(world)[FREE_DR] == (None, "activated")
    # Completion re-checks: the number is free, so the assign still succeeds.
    assert poll_to_end(world, assign.id)[-1] == "succeeded"
    assert holders(world)[FREE_DR] == (BOB, "activated")


def test_calling_plan_number_must_be_inventory_of_that_type() -> None:
    world = make_world(assignErrors="sync")
    with pytest.raises(RejectedError, match="is not found from tenant"):
        world.request_assign("+31207654321", "operatorConnect", BOB)
    with pytest.raises(RejectedError, match="is not found from tenant"):
        world.request_assign("+31200000000", "callingPlan", BOB)
    with pytest.raises(RejectedError, match="callingPlan number, not directRouting"):
        world.request_assign("+31207654321", "directRouting", BOB)


def test_polling_neither_speeds_an_operation_up_nor_is_needed() -> None:
    world = make_world(operationSeconds=30)
    op = world.request_assign(FREE_DR, "directRouting", BOB)
    for _ in range(50):
        assert world.poll_operation(op.id).status in {"notStarted", "running"}
    assert [n.telephone_number for n in world.read_user_configuration(BOB).numbers] == []
    CLOCK.advance(30)  # nobody asked in between
    assert [n.telephone_number for n in world.read_user_configuration(BOB).numbers] == [FREE_DR]
    assert world.poll_operation(op.id).status == "succeeded"


def test_a_distribution_of_durations_has_its_median_and_p95_and_repeats_per_tenant() -> None:
    def durations() -> list[float]:
        world = make_world(operationSeconds={"median": 8, "p95": 40})
        ops = [world.request_assign(f"+3185536{4000 + i}", "directRouting", BOB)
               for i in range(4_000)]
        return sorted(op.due_at - op.accepted_at for op in ops)

    sampled = durations()
    assert 8 * 0.85 < sampled[2_000] < 8 * 1.15
    assert 40 * 0.85 < sampled[3_800] < 40 * 1.15
    assert durations() == sampled


@pytest.mark.parametrize(("spec", "field"), [
    ({"median": 8, "p95": 4}, "p95=4 is below its median=8"),
    (-1, "operationSeconds"),
    ({"median": 0, "p95": 4}, "median"),
])
def test_a_bad_operation_duration_names_the_field(spec: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make_world(operationSeconds=spec)


def test_unknown_operation_is_not_found() -> None:
    world = make_world()
    with pytest.raises(NotFoundError):
        world.poll_operation("nope")


def test_teams_state_round_trips() -> None:
    world = make_world(operationSeconds=2)
    op = world.request_assign(FREE_DR, "directRouting", BOB)
    counter = itertools.count(100)
    restored = World(parse_scenario(json.loads(EXAMPLE.read_text())),
                     clock=lambda: "2026-01-02T00:00:00Z", new_id=lambda: str(next(counter)),
                     teams_state=world.teams_state(), now=CLOCK)
    assert holders(restored)[FREE_DR] == (BOB, "assignmentPending")
    assert poll_to_end(restored, op.id) == ["notStarted", "running", "succeeded"]


def test_completed_assignment_enables_enterprise_voice_and_a_failed_one_does_not() -> None:
    world = make_world(operationSeconds=0)
    world.request_assign(ANNS_DR, "directRouting", BOB)  # held by Ann: fails
    assert world.read_user_configuration(BOB).teams.enterprise_voice_enabled is False
    world.request_assign(FREE_DR, "directRouting", BOB)
    configuration = world.read_user_configuration(BOB)
    assert configuration.teams.enterprise_voice_enabled is True
    assert [n.telephone_number for n in configuration.numbers] == [FREE_DR]


def test_enterprise_voice_knob_off() -> None:
    world = make_world(operationSeconds=0, assignEnablesEnterpriseVoice=False)
    world.request_assign(FREE_DR, "directRouting", BOB)
    assert world.read_user_configuration(BOB).teams.enterprise_voice_enabled is False


def test_licence_and_presence_refusals_are_checked_again_at_completion() -> None:
    world = make_world(operationSeconds=2)
    op = world.request_assign(FREE_DR, "directRouting", BOB)
    data = json.loads(EXAMPLE.read_text())
    data["users"][1]["teams"] = {"licensed": False}
    world.replace_directory(parse_directory(data))
    poll_to_end(world, op.id)
    assert world.poll_operation(op.id).status_detail == (
        f"User '{BOB}' lacks appropriate licenses to assign a 'DirectRouting' number")
    assert holders(world)[FREE_DR] == (None, "activated")


def test_sync_mode_refuses_users_not_in_teams_and_unlicensed_users() -> None:
    world = make_world(assignErrors="sync")
    with pytest.raises(RejectedError, match=f"The user '{DAVE}' is not found"):
        world.request_assign(FREE_DR, "directRouting", DAVE)
    with pytest.raises(RejectedError, match="lacks appropriate licenses to assign a "
                                            "'OperatorConnect' number"):
        world.request_assign("+31201234567", "operatorConnect", ERIN)


def test_visible_after_polls_counts_reads_of_that_user_only() -> None:
    data = json.loads(EXAMPLE.read_text())
    data["users"][1]["teams"] = {"visibleAfterPolls": 1}
    world = World(parse_scenario(data), clock=lambda: "2026-01-01T00:00:00Z",
                  new_id=lambda: "x")
    assert [c.user.id for c in world.user_configurations()] == [ANN, CAROL, ERIN]
    with pytest.raises(NotFoundError):
        world.read_user_configuration(BOB)
    assert world.read_user_configuration(BOB).user.id == BOB


def test_forced_failures_are_used_up_in_order_of_requests() -> None:
    world = make_world(operationSeconds=0)
    world.fail_next_operations("assign", "try later", 1)
    first = world.request_assign(FREE_DR, "directRouting", BOB)
    assert (first.status, first.status_detail) == ("failed", "try later")
    assert world.request_assign(FREE_DR, "directRouting", BOB).status == "succeeded"
    world.fail_next_operations("unassign", "ported", 2)
    assert world.request_unassign(FREE_DR, "directRouting").status_detail == "ported"
    assert holders(world)[FREE_DR] == (BOB, "activated")


def test_policies_assign_replace_and_unassign_atomically() -> None:
    world = make_world()
    world.assign_policies([(BOB, "CallingLineIdentity", CLI_POLICY_ID)])
    with pytest.raises(RejectedError):
        world.assign_policies([(ANN, "CallingLineIdentity", CLI_POLICY_ID),
                               (ANN, "TenantDialPlan", "nope")])
    assert world.read_user_configuration(ANN).policies == []
    with pytest.raises(NotFoundError):
        world.unassign_policies([(DAVE, "CallingLineIdentity")])
    assert [p.name for p in world.read_user_configuration(BOB).policies] == [
        "MainNumber-Contoso"]
    world.unassign_policies([(BOB, "CallingLineIdentity")])
    assert world.read_user_configuration(BOB).policies == []


def test_profile_changes_apply_only_the_changed_fields() -> None:
    world = make_world(operationSeconds=0)
    world.request_assign(FREE_DR, "directRouting", BOB)
    world.assign_policies([(BOB, "CallingLineIdentity", CLI_POLICY_ID)])
    data = json.loads(EXAMPLE.read_text())
    data["users"][1]["teams"] = {"licensed": False}
    world.replace_directory(parse_directory(data))
    bob = world.read_user_configuration(BOB)
    assert (bob.teams.licensed, bob.teams.enterprise_voice_enabled) == (False, True)
    assert [p.id for p in bob.policies] == [CLI_POLICY_ID]
    # Leaving the directory drops the Teams record; coming back starts from the profile.
    world.replace_directory(Directory())
    world.replace_directory(parse_directory(json.loads(EXAMPLE.read_text())))
    bob = world.read_user_configuration(BOB)
    assert (bob.teams.enterprise_voice_enabled, bob.policies) == (False, [])


def test_teams_users_round_trip_through_the_state() -> None:
    world = make_world(operationSeconds=0)
    world.request_assign(FREE_DR, "directRouting", BOB)
    world.assign_policies([(BOB, "CallingLineIdentity", CLI_POLICY_ID)])
    restored = World(parse_scenario(json.loads(EXAMPLE.read_text())),
                     clock=lambda: "2026-01-02T00:00:00Z", new_id=lambda: "y",
                     teams_state=world.teams_state())
    bob = restored.read_user_configuration(BOB)
    assert bob.teams.enterprise_voice_enabled is True
    assert bob.teams.created_date_time == "2026-01-01T00:00:00Z"
    assert [p.id for p in bob.policies] == [CLI_POLICY_ID]


def test_directory_versions_and_delta_state() -> None:
    world = make_world()
    assert world.directory_version == 1
    first = world.directory_at(1)
    world.replace_directory(Directory())
    assert world.directory_version == 2
    assert world.directory_at(1) == first
    old_sync_id = world.sync_id
    world.expire_delta_state()
    assert world.sync_id != old_sync_id
    assert world.directory_at(1) is None
    assert world.directory_at(2) == Directory()
    for _ in range(300):
        world.replace_directory(Directory())
    assert world.directory_at(2) is None  # only the newest versions are kept
    assert world.directory_at(world.directory_version) is not None
