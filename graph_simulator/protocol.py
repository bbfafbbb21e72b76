"""What the simulator sees of a Graph request and what it answers: no I/O, nothing normalised.

`GraphRequest` is a request exactly as sent (method, raw path, raw query, headers, body);
`Reply` is the answer (status, JSON body, headers); `GraphHttpError` is an error answer in
Graph's shape, raised anywhere while a request is handled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

# Graph answers with OData JSON; kiota picks its parser from the part before the first ';'.
_ODATA_JSON: Final = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)


class GraphHttpError(Exception):
    """An error reply in Graph's shape; raised anywhere while handling a request."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str, code: str = "BadRequest") -> GraphHttpError:
    """A 400 error (to raise) with Graph's `BadRequest` code unless told another."""
    return GraphHttpError(400, code, message)


@dataclass(frozen=True)
class GraphRequest:
    """An HTTP request as the simulator needs to see it: nothing normalised."""

    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass
class Reply:
    """What to answer: status, JSON body (None for an empty body) and extra headers.

    `delay_seconds` (injected latency) is honoured by the aiohttp app, which waits that long
    before sending the answer; `Simulator.handle` itself never waits. `drop_connection`: the
    aiohttp app resets the connection instead of answering (the request was carried out).
    """

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = _ODATA_JSON
    delay_seconds: float = 0.0
    drop_connection: bool = False
