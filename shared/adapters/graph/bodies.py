"""Reading Graph's JSON answers strictly: the shape every adapter relies on is checked here.

A 2xx body the app cannot read — not JSON, ``value`` that is not a list, an item without a
field the app needs — raises ``UnreadableAnswerError`` naming the route and what was
unexpected. It is never read as "nothing there": an empty list read from a malformed body
would look like an emptied group, a number nobody has, or a user without numbers, and the app
would act on that.

The one deliberate leniency: where Graph's own documented example shows ``value`` as a single
object instead of a list (``numberAssignments``), a caller may accept it as a one-item list.
"""

from __future__ import annotations

from typing import Any

from shared.core.errors import UnreadableAnswerError


def json_object(response: Any, route: str) -> dict[str, Any]:
    """The body of a raw (``NativeResponseHandler``) 2xx answer, which must be a JSON object."""
    try:
        body = response.json()
    except ValueError:
        raise UnreadableAnswerError(route, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise UnreadableAnswerError(route, f"the body is {kind(body)}, not a JSON object")
    return body


def value_items(
    body: dict[str, Any], route: str, *, one_object_is_a_list: bool = False
) -> list[dict[str, Any]]:
    """The objects of a collection's ``value``.

    ``one_object_is_a_list``: a single object in ``value`` is taken as a one-item list (for
    routes whose documented example shows that shape).
    """
    if "value" not in body:
        raise UnreadableAnswerError(route, "the collection has no 'value'")
    value = body["value"]
    if isinstance(value, dict) and one_object_is_a_list:
        return [value]
    if not isinstance(value, list):
        raise UnreadableAnswerError(route, f"'value' is {kind(value)}, not a list")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise UnreadableAnswerError(route, f"value[{index}] is {kind(item)}, not an object")
    return value


def required_text(item: dict[str, Any], name: str, route: str, where: str) -> str:
    """``item[name]``, which must be a non-empty string; ``where`` names the item."""
    value = item.get(name)
    if isinstance(value, str) and value:
        return value
    if name not in item:
        raise UnreadableAnswerError(route, f"{where} has no '{name}'")
    if value == "":
        raise UnreadableAnswerError(route, f"{where} has an empty '{name}'")
    raise UnreadableAnswerError(route, f"{where} has '{name}' {kind(value)}, not a string")


def optional_text(item: dict[str, Any], name: str, route: str, where: str) -> str | None:
    """``item[name]`` when it is a string, None when it is null or absent; else an error."""
    value = item.get(name)
    if value is None or isinstance(value, str):
        return value or None
    raise UnreadableAnswerError(route, f"{where} has '{name}' {kind(value)}, not a string")


def optional_list(item: dict[str, Any], name: str, route: str, where: str) -> list[Any]:
    """``item[name]`` when it is a list, ``[]`` when it is null or absent; else an error."""
    value = item.get(name)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise UnreadableAnswerError(route, f"{where} has '{name}' {kind(value)}, not a list")


def required_list(item: dict[str, Any], name: str, route: str, where: str) -> list[Any]:
    """``item[name]``, which must be present and a list (a selected collection that is missing
    cannot be read as empty)."""
    if name not in item:
        raise UnreadableAnswerError(route, f"{where} has no '{name}'")
    value = item[name]
    if not isinstance(value, list):
        raise UnreadableAnswerError(route, f"{where} has '{name}' {kind(value)}, not a list")
    return value


def optional_bool(item: dict[str, Any], name: str, route: str, where: str) -> bool | None:
    """``item[name]`` when it is true or false, None when it is null or absent; else an error."""
    value = item.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise UnreadableAnswerError(route, f"{where} has '{name}' {kind(value)}, not true/false")


def odata_link(body: dict[str, Any], name: str, route: str) -> str | None:
    """An ``@odata.nextLink``/``@odata.deltaLink``: a non-empty string, or None when absent."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str) and value:
        return value
    raise UnreadableAnswerError(route, f"'{name}' is {kind(value)}, not a URL")


def kind(value: object) -> str:
    """How a JSON value is described in a message: ``a list``, ``null``, ``a string``…"""
    if value is None:
        return "null"
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false"}
    for python_type, name in names.items():
        if type(value) is python_type:
            return name
    return "a number" if isinstance(value, (int, float)) else type(value).__name__
