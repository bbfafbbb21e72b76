"""The two kinds of failure the shell understands (after kopf's TemporaryError/PermanentError).

A ``TemporaryError`` is worth retrying later: the queue message is retried by the host and lands in
the poison queue after ``maxDequeueCount``. A ``PermanentError`` is final for this input: it is
recorded as the user's outcome, with a reason code a helpdesk can act on, and never retried.
"""

from __future__ import annotations

from shared.core.outcomes import Reason


class SyncError(Exception):
    """Base of the app's own failures; never raised directly."""

    def __init__(self, message: str) -> None:
        if type(self) is SyncError:
            raise TypeError("raise TemporaryError or PermanentError, not SyncError")
        super().__init__(message)
        self.message = message


class TemporaryError(SyncError):
    """Retry later (throttling, 5xx, timeouts, an operation that is still running)."""

    def __init__(self, message: str, *, retry_after_seconds: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class PermanentError(SyncError):
    """Retrying will not help; the reason code says what a person must change."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class OperationPendingError(TemporaryError):
    """Teams accepted the change but its operation has not finished; look again later at
    ``location`` (None: the number's Teams record, no operation known) instead of sending the
    change a second time."""

    def __init__(
        self, message: str, *, location: str | None, retry_after_seconds: float
    ) -> None:
        super().__init__(message, retry_after_seconds=retry_after_seconds)
        self.location = location


class UnreadableAnswerError(TemporaryError):
    """Graph answered 2xx with a body the app cannot read (a list that is not one, a field it
    needs that is missing). Never read as "nothing there": the run or message fails and is
    tried again later, and the message names the route and what was unexpected."""

    def __init__(self, route: str, problem: str) -> None:
        super().__init__(f"Graph's answer to {route} could not be read: {problem}")
        self.route = route
        self.problem = problem


class DeltaGoneError(Exception):
    """Graph no longer knows a delta link (``410 Gone``, an expired or unknown token): the
    caller starts again with a full read. Not a failure of the run."""
