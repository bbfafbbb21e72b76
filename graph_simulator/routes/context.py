"""What a route handler is given: the simulator's state for one request, and its signature."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from graph_simulator.protocol import GraphRequest, Reply
from graph_simulator.routes.odata import query_string
from graph_simulator.routing import Route
from graph_simulator.world import World


@dataclass(frozen=True)
class RouteContext:
    """The simulator as a handler sees it while it holds the simulator's lock.

    `base_url` is the simulator's own `.../v1.0` (for links and `@odata.context`), `clock` its
    monotonic clock (delta token expiry), `save_state` persists Teams state after a change.
    """

    world: World
    base_url: str
    clock: Callable[[], float]
    save_state: Callable[[], None]

    def next_link(self, request: GraphRequest, options: Mapping[str, str]) -> str:
        """The request's own path on the simulator's origin, with these query options."""
        # Absolute, with the simulator's own origin: clients follow it as-is (with_url), so a
        # relative or graph.microsoft.com link would escape the simulator.
        path = request.raw_path.removeprefix("/v1.0")
        query = query_string(options)
        return f"{self.base_url}{path}?{query}" if query else f"{self.base_url}{path}"


#: A route handler: answers one request that matched its route (or raises GraphHttpError or
#: WorldError, which the simulator turns into a Graph error reply).
Handler = Callable[[RouteContext, Route, GraphRequest], Reply]
