"""The OData a route reads: query options, skip tokens and action bodies, each checked as
strictly as Graph documents it (a repeated option, an unsupported `$` option or a stray body
parameter is refused with 400)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

from graph_simulator.protocol import bad_request


def parse_query(raw_query: str) -> dict[str, str]:
    """The query options of a raw query string; an option given twice is refused."""
    # parse_qsl decodes '+' as a space, exactly as a server must: clients that want a plus sign
    # in a value have to send %2B.
    options: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        if name in options:
            raise bad_request(f"Query option '{name}' was specified more than once, but it "
                              "must be specified at most once.")
        options[name] = value
    return options


def reject_unsupported_options(options: Mapping[str, str], allowed: frozenset[str]) -> None:
    """Refuse any `$` option a route does not support (other names pass)."""
    for name in options:
        if name.startswith("$") and name not in allowed:
            supported = ", ".join(sorted(allowed)) or "none"
            raise bad_request(
                f"The query option '{name}' is not supported by the Graph simulator on this "
                f"route (supported: {supported})."
            )


def int_option(options: Mapping[str, str], name: str, *, default: int, low: int, high: int,
               code: str = "BadRequest") -> int:
    """An integer option between `low` and `high` inclusive, `default` when absent."""
    raw = options.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]+", raw):
        raise bad_request(f"Invalid value '{raw}' for query option '{name}'.", code)
    value = int(raw)
    if not low <= value <= high:
        if name == "$top":
            raise bad_request(f"Invalid page size specified: '{value}'. Must be between "
                              f"{low} and {high} inclusive.", code)
        raise bad_request(f"Invalid value '{value}' for query option '{name}'.", code)
    return value


def query_string(options: Mapping[str, str]) -> str:
    """Options as a query string for a link (commas left readable, as Graph's are)."""
    return "&".join(f"{name}={quote(value, safe=',')}" for name, value in options.items())


def encode_skiptoken(scope: str, offset: int) -> str:
    """An opaque `$skiptoken` for the page at `offset` of the collection named `scope`."""
    # Opaque to clients, like Graph's; it names the collection (a group id, say) so a token
    # cannot be replayed against another one.
    raw = json.dumps([scope, offset], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def skiptoken_offset(token: str | None, scope: str) -> int:
    """The offset a `$skiptoken` of `scope` stands for (0 without one); else 400."""
    if token is None:
        return 0
    decoded = _decode_skiptoken(token)
    if decoded is None or decoded[0] != scope:
        raise bad_request("Invalid $skiptoken.", "Request_BadRequest")
    return decoded[1]


def _decode_skiptoken(token: str) -> tuple[str, int] | None:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        return None
    if (isinstance(decoded, list) and len(decoded) == 2 and isinstance(decoded[0], str)
            and isinstance(decoded[1], int) and decoded[1] >= 0):
        return decoded[0], decoded[1]
    return None


def action_body(raw: bytes, action: str, *, required: tuple[str, ...],
                optional: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object body of an OData action, with its required parameters present and no
    parameter it does not know (`@odata.` annotations pass)."""
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise bad_request("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise bad_request(f"The request body of '{action}' must be a JSON object.")
    for name in body:
        if name not in required and name not in optional and not name.startswith("@odata."):
            raise bad_request(f"The parameter '{name}' in the request payload is not a valid "
                              f"parameter for the operation '{action}'.")
    for name in required:
        if body.get(name) is None:
            raise bad_request(f"The parameter '{name}' of the operation '{action}' is "
                              "required.")
    return body
