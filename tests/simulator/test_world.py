import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from graph_simulator import Directory, NotFoundError, RejectedError, World, parse_scenario

EXAMPLE = Path(__file__).resolve().parents[2] / "scenarios" / "example-small.json"
ANN = "0f3a5c2e-0000-4000-8000-000000000001"
BOB = "0f3a5c2e-0000-4000-8000-000000000002"
CAROL = "0f3a5c2e-0000-4000-8000-000000000003"
DAVE = "0f3a5c2e-0000-4000-8000-000000000004"
VOICE_GROUP = "6b0d2c61-0000-4000-8000-0000000000a1"
FREE_DR = "+31855363099"
ANNS_DR = "+31855363011"


def make_world(**behaviour: Any) -> World:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    data["behaviour"] = {**data["behaviour"], **behaviour}
    counter = itertools.count(1)
    return World(parse_scenario(data), clock=lambda: "2026-01-01T00:00:00Z",
                 new_id=lambda: str(next(counter)))


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
    raise AssertionError(f"operation never finished: {seen}")


def test_transitive_members_are_depth_first_in_member_order_each_once() -> None:
    world = make_world()
    assert [u.id for u in world.transitive_member_users(VOICE_GROUP)] == [ANN, CAROL, DAVE, BOB]


def test_assign_reserves_then_activates_after_polls() -> None:
    world = make_world()
    op = world.request_assign(FREE_DR, "directRouting", BOB)
    assert holders(world)[FREE_DR] == (BOB, "assignmentPending")
    assert poll_to_end(world, op.id) == ["notStarted", "running", "succeeded"]
    assert holders(world)[FREE_DR] == (BOB, "activated")


def test_zero_polls_completes_at_once() -> None:
    world = make_world(operationPolls=0)
    op = world.request_assign(FREE_DR, "directRouting", BOB)
    assert op.status == "succeeded"
    assert holders(world)[FREE_DR] == (BOB, "activated")


def test_new_primary_number_frees_the_old_one() -> None:
    world = make_world(operationPolls=0)
    world.request_assign(FREE_DR, "directRouting", ANN)
    # The old number was direct routing inventory, so it stays, unassigned.
    assert holders(world)[ANNS_DR] == (None, "activated")
    assert holders(world)[FREE_DR] == (ANN, "activated")


def test_freed_non_inventory_direct_routing_number_disappears() -> None:
    world = make_world(operationPolls=0)
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
    world = make_world()
    op = world.request_assign("+31855363051", "directRouting", BOB)
    # The target leaves the directory before the operation completes: the check is redone then.
    world.replace_directory(Directory())
    detail = world.poll_operation(op.id)
    assert poll_to_end(world, op.id)[-1] == "failed"
    assert detail.status == "notStarted"
    assert "+31855363051" not in holders(world)


def test_unassign_while_assign_pending_then_assign_completes() -> None:
    world = make_world()
    assign = world.request_assign(FREE_DR, "directRouting", BOB)
    unassign = world.request_unassign(FREE_DR, "directRouting")
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


def test_unknown_operation_is_not_found() -> None:
    world = make_world()
    with pytest.raises(NotFoundError):
        world.poll_operation("nope")


def test_teams_state_round_trips() -> None:
    world = make_world()
    op = world.request_assign(FREE_DR, "directRouting", BOB)
    counter = itertools.count(100)
    restored = World(parse_scenario(json.loads(EXAMPLE.read_text())),
                     clock=lambda: "2026-01-02T00:00:00Z", new_id=lambda: str(next(counter)),
                     teams_state=world.teams_state())
    assert holders(restored)[FREE_DR] == (BOB, "assignmentPending")
    assert poll_to_end(restored, op.id) == ["notStarted", "running", "succeeded"]
