"""CSV cells a spreadsheet shows as text (the report's and the export's CSV share it)."""

from __future__ import annotations

import re
from typing import Final

FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
"""What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list)."""

# A phone number as the directory or Teams has it: digits and spaces after a +, maybe an
# extension. Nothing in it can call a function, and it must read back exactly.
_PLAIN_NUMBER: Final = re.compile(r"\+[0-9][0-9 ]*(;ext=[0-9]+)?")


def spreadsheet_safe(value: str) -> str:
    """A cell value a spreadsheet shows as text: one that would start a formula (a display name
    ``=HYPERLINK(…)`` put in the directory) gets a leading apostrophe; a phone number
    (``+31855363011``, ``+31 85 536 3012;ext=12``) stays as it is."""
    if value.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value
