"""An aiohttp server on its own event loop in a daemon thread: how the simulator and the fault
proxy run beside synchronous tests and the local runner."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from aiohttp import web


class ServingThread:
    """Runs ``serve()`` (which binds and returns the runner) on a fresh loop in a thread, until
    ``stop()``; then ``shutdown(runner)`` on the same loop."""

    def __init__(
        self,
        name: str,
        serve: Callable[[], Awaitable[web.AppRunner]],
        shutdown: Callable[[web.AppRunner], Awaitable[None]],
    ) -> None:
        self._name = name
        self._serve = serve
        self._shutdown = shutdown
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None

    def start(self) -> None:
        """Start serving; returns once the port is bound (raises what binding raised)."""
        if self._thread is not None:
            raise RuntimeError(f"{self._name} already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError(f"{self._name} did not start within 30 s")
        if self._loop is None:
            self._thread.join()
            raise self._startup_error or RuntimeError(f"{self._name} failed to start")

    def stop(self) -> None:
        """Stop serving and join the thread; safe to call twice."""
        loop, thread = self._loop, self._thread
        self._loop = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        runner: web.AppRunner | None = None
        try:
            runner = loop.run_until_complete(self._serve())
        except OSError as error:
            self._startup_error = error
        finally:
            # Wake start() whatever happened, so it never waits out its timeout on a crash.
            if runner is None:
                loop.close()
            else:
                self._loop = loop
            self._ready.set()
        if runner is None:
            return
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown(runner))
            loop.close()
