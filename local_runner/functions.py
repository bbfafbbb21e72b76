"""The app's v2-model functions, indexed once (as the host indexes ``function_app.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

import function_app


@cache
def _indexed() -> tuple[Any, ...]:
    # FunctionApp.get_functions() may run only once per app object.
    return tuple(function_app.app.get_functions())


def user_functions() -> dict[str, Callable[..., Awaitable[Any]]]:
    """Function name → the user function the host would invoke."""
    return {function.get_function_name(): function.get_user_function() for function in _indexed()}


def function_json() -> dict[str, str]:
    """Function name → its function.json-style binding document."""
    return {function.get_function_name(): function.get_function_json() for function in _indexed()}
