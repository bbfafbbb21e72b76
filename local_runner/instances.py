"""Function instances in processes of their own, as Azure scales the app out: each one a host
that drains ``number-assignments`` into the real queue function with its own runtime.

A process can be killed with SIGKILL (a crashed instance: nothing is cleaned up, the messages it
had fetched come back when their lease runs out). Processes are started with ``spawn``: a fresh
interpreter, as each host has, sharing nothing with the starter but the app settings.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import time
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Self

from local_runner.queue_host import PROCESSING_LEASE, DrainStats
from local_runner.session import app_environment, drain_queue
from shared.host_settings import QueueHostSettings, read_queue_settings


class InstanceError(RuntimeError):
    """An instance did not finish its drain: it raised, was killed, or is still running."""


@dataclass(frozen=True)
class InstanceSettings:
    """What an instance process needs: the app settings and the host's queue settings."""

    app_settings: dict[str, str]
    host: QueueHostSettings = field(default_factory=read_queue_settings)
    processing_lease: timedelta = PROCESSING_LEASE
    timeout_seconds: float = 600.0
    log_level: int = logging.ERROR


def run_instance(settings: InstanceSettings, results: Connection) -> None:
    """An instance process's main: drain the queue, then send back its ``DrainStats`` (or the
    traceback of what stopped it)."""
    logging.basicConfig(level=settings.log_level,
                        format="instance %(process)d %(levelname)s %(name)s: %(message)s")
    os.environ.update(settings.app_settings)

    async def drain() -> DrainStats:
        async with app_environment(settings.app_settings):
            return await drain_queue(
                settings.app_settings, host=settings.host,
                timeout_seconds=settings.timeout_seconds,
                processing_lease=settings.processing_lease,
            )

    try:
        stats = asyncio.run(drain())
    except BaseException:
        results.send(traceback.format_exc())
        raise
    results.send(stats)


class InstanceProcess:
    """One instance in its own process; a context manager that kills it if it is still alive."""

    def __init__(self, settings: InstanceSettings) -> None:
        context = multiprocessing.get_context("spawn")
        self._results, sender = context.Pipe(duplex=False)
        self._sender = sender
        self._process: BaseProcess = context.Process(
            target=run_instance, args=(settings, sender), name="function-instance", daemon=True
        )
        self._outcome: DrainStats | str | None = None

    def start(self) -> Self:
        """Start the process (its drain begins once its interpreter has imported the app)."""
        self._process.start()
        self._sender.close()  # the child holds the sending end now
        return self

    @property
    def pid(self) -> int:
        """The process id (after ``start``)."""
        if self._process.pid is None:
            raise InstanceError("the instance has not been started")
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the process is still alive."""
        return self._process.is_alive()

    def kill(self) -> None:
        """SIGKILL: the instance dies at once, mid-invocation, without cleaning anything up."""
        if self._process.is_alive():
            os.kill(self.pid, signal.SIGKILL)
        self._process.join(timeout=30)

    def wait(self, timeout_seconds: float) -> DrainStats:
        """The instance's drain figures once it has finished.

        Raises:
            InstanceError: it raised (the traceback is in the message), was killed, or was
                still running after ``timeout_seconds``.
        """
        deadline = time.monotonic() + timeout_seconds
        while self._outcome is None:
            if self._results.poll(min(0.2, max(deadline - time.monotonic(), 0))):
                try:
                    self._outcome = self._results.recv()
                except EOFError:
                    break  # the process died without a word: killed
                continue
            if not self._process.is_alive() and not self._results.poll():
                break
            if time.monotonic() > deadline:
                raise InstanceError(f"instance {self.pid} still draining after "
                                    f"{timeout_seconds:.0f}s")
        self._process.join(timeout=30)
        if isinstance(self._outcome, DrainStats):
            return self._outcome
        if isinstance(self._outcome, str):
            raise InstanceError(f"instance {self.pid} failed:\n{self._outcome}")
        raise InstanceError(f"instance {self.pid} ended with exit code {self._process.exitcode}")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
        self._results.close()
