"""Reading a voice group that spans several pages, through msgraph-sdk, against the simulator."""

from __future__ import annotations

import pytest

from graph_simulator import Scenario
from tests.integration.conftest import LocalApp
from tests.integration.scenario_builder import build_scenario

MEMBERS = 2_100  # at $top=999, three pages


@pytest.fixture
def scenario() -> Scenario:
    return build_scenario([(f"user{n:04d}", [f"+3185536{n:04d}"]) for n in range(MEMBERS)])


async def test_consistency_level_is_sent_on_every_page(local_app: LocalApp) -> None:
    members = await (await local_app.runtime()).context.ports.directory.read_members(
        str(local_app.scenario.tenant.voice_group_id)
    )

    pages = [
        entry for entry in local_app.simulator.request_log()
        if entry["route"] == "listTransitiveMemberUsers"
    ]
    assert len(pages) == 3
    assert all(entry["status"] == 200 for entry in pages)
    assert all(entry["consistencyLevel"] == "eventual" for entry in pages)
    assert [m.read_position for m in members] == list(range(MEMBERS))
    assert len({m.user_id for m in members}) == MEMBERS


async def test_no_request_path_has_a_double_slash(local_app: LocalApp) -> None:
    await local_app.run_timer()

    paths = [entry["path"] for entry in local_app.simulator.request_log()]
    assert paths
    assert not [path for path in paths if "//" in path]
    assert all(path.startswith("/v1.0/") for path in paths)


async def test_the_timer_enqueues_one_message_per_member_of_all_pages(local_app: LocalApp) -> None:
    await local_app.run_timer()

    async with local_app.queue() as queue:
        properties = await queue.get_queue_properties()
    assert properties.approximate_message_count == MEMBERS
