"""How long work tells whoever started it how far it got: the CLI draws progress bars from it.

The service reports stages and steps; what is shown (a bar on a terminal's stderr, nothing in a
script) is the caller's business, so the service runs the same either way.
"""

from __future__ import annotations

from typing import Protocol


class WorkProgress(Protocol):
    """Receives the stages of a piece of work and the steps done in each."""

    def stage(self, description: str, total: int | None = None) -> None:
        """A new stage begins: ``total`` steps (None: a count not known in advance)."""
        ...

    def advance(self, steps: int = 1) -> None:
        """``steps`` more steps of the current stage are done."""
        ...


class NoProgress:
    """Implements ``WorkProgress`` by showing nothing (the default: scripts, the Functions host)."""

    def stage(self, description: str, total: int | None = None) -> None:
        """Nothing to show."""

    def advance(self, steps: int = 1) -> None:
        """Nothing to show."""


NO_PROGRESS = NoProgress()
"""The progress nobody watches."""
