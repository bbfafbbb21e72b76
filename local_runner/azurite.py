"""Start and stop Azurite (the Azure Storage emulator, pinned in package.json) for local runs.

Each service runs in its own process (Azurite's ``azurite-blob``, ``azurite-queue`` and
``azurite-table``), not all three in one: the queue service sweeps deleted messages every minute
(a mark-and-sweep its command line cannot configure), and in one process that sweep stalls every
table call behind it for seconds at a time under load: the pace reservations with them, so no
Teams request goes out while it runs. Azure Storage has no such pause. Apart, a sweep holds the
queue service's calls only, and ``queue_sweep_every`` (15 minutes by default, set through a
preloaded module: ``azurite_queue_sweep.cjs``) keeps it out of most runs: a benchmark measures the
app, not the emulator's housekeeping.

Every service also preloads ``azurite_lookups.cjs``: Azurite finds a table row by walking every
row of its partition (a tenant), the queue service re-sorts its message indices on every call,
and its sweep re-sorts the extents' index once for every extent it deletes. That module has
those lookups use the index of their most selective key and removes one document in place,
answering the same. Without it a call's cost grows with the tenant's rows, which Azure Storage's
does not, a large onboarding measures the emulator's scans instead of the app, and a sweep after
10,000 messages holds the queue service for minutes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
AZURITE_BINS = REPO / "node_modules" / ".bin"
QUEUE_SWEEP_PRELOAD = Path(__file__).resolve().parent / "azurite_queue_sweep.cjs"
LOOKUPS_PRELOAD = Path(__file__).resolve().parent / "azurite_lookups.cjs"
_SERVICES = ("blob", "queue", "table")
#: How often the queue service sweeps deleted messages' extents (Azurite's own: every minute).
QUEUE_SWEEP_EVERY = timedelta(minutes=15)

# Azurite's published development account; not a secret.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class AzuriteError(RuntimeError):
    """Azurite could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Azurite:
    """Azurite's three services, a process each, on free loopback ports; a context manager that
    stops what it started.

    ``location`` keeps the data on disk between runs (the demo); without it, data lives in memory
    and is gone when the process stops (tests).
    """

    def __init__(
        self,
        *,
        location: Path | None = None,
        ports: tuple[int, int, int] | None = None,
        queue_sweep_every: timedelta = QUEUE_SWEEP_EVERY,
        debug_log: Path | None = None,
    ) -> None:
        """``debug_log``: a folder for each service's debug log (``<service>.log``)."""
        if queue_sweep_every.total_seconds() < 1:
            raise AzuriteError(f"queue_sweep_every must be at least 1 s, not {queue_sweep_every}")
        self.location = location
        self.queue_sweep_every = queue_sweep_every
        self.debug_log = debug_log
        self.blob_port, self.queue_port, self.table_port = ports or (
            free_port(), free_port(), free_port()
        )
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def connection_string(self) -> str:
        """The storage connection string for this instance (the app's ``AzureWebJobsStorage``)."""
        base = "http://127.0.0.1"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
            f"BlobEndpoint={base}:{self.blob_port}/{DEV_ACCOUNT};"
            f"QueueEndpoint={base}:{self.queue_port}/{DEV_ACCOUNT};"
            f"TableEndpoint={base}:{self.table_port}/{DEV_ACCOUNT};"
        )

    @property
    def pids(self) -> dict[str, int]:
        """The process id of each service (``blob``, ``queue``, ``table``) while they run
        (benchmarks read their CPU time)."""
        return {service: process.pid for service, process in self._processes.items()}

    def start(self, timeout_seconds: float = 30.0) -> Azurite:
        """Start the three services and wait until each accepts connections."""
        persistence = ["--inMemoryPersistence"]
        if self.location is not None:
            # One folder for all three: each service keeps its own files in it.
            self.location.mkdir(parents=True, exist_ok=True)
            persistence = ["--location", str(self.location)]
        services = dict(zip(_SERVICES, (self.blob_port, self.queue_port, self.table_port),
                            strict=True))
        for service in services:
            if not (AZURITE_BINS / f"azurite-{service}").exists():
                raise AzuriteError(f"{AZURITE_BINS / f'azurite-{service}'} is missing; "
                                   "run 'npm ci' first")
        node = shutil.which("node")
        if node is None:
            raise AzuriteError("node is not on PATH; Azurite runs on Node.js")
        environment = {**os.environ, "AZURITE_QUEUE_SWEEP_MS": str(
            int(self.queue_sweep_every.total_seconds() * 1000))}
        if self.debug_log is not None:
            self.debug_log.mkdir(parents=True, exist_ok=True)
        for service, port in services.items():
            preload = ["--require", str(LOOKUPS_PRELOAD)] + (
                ["--require", str(QUEUE_SWEEP_PRELOAD)] if service == "queue" else [])
            debug = ([] if self.debug_log is None
                     else ["--debug", str(self.debug_log / f"{service}.log")])
            command = [
                node, *preload, str(AZURITE_BINS / f"azurite-{service}"), "--silent",
                "--disableTelemetry", "--skipApiVersionCheck", *persistence, *debug,
                f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port),
            ]
            self._processes[service] = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment
            )
        deadline = time.monotonic() + timeout_seconds
        ports = tuple(services.values())
        while not all(_listening(port) for port in ports):
            for service, process in self._processes.items():
                if process.poll() is not None:
                    stderr = process.stderr.read().decode() if process.stderr else ""
                    self.stop()
                    raise AzuriteError(
                        f"Azurite's {service} service exited with {process.returncode}: {stderr}"
                    )
            if time.monotonic() > deadline:
                self.stop()
                raise AzuriteError(f"Azurite did not listen on {ports} within {timeout_seconds}s")
            time.sleep(0.05)  # polling a port with a deadline; nothing to wait on instead
        return self

    def stop(self) -> None:
        """Stop Azurite's services and wait for their processes to go."""
        processes, self._processes = list(self._processes.values()), {}
        for process in processes:
            if process.poll() is None:
                # SIGINT: the one signal on which every service saves its data and closes (the
                # table service ignores SIGTERM's shutdown and would lose what it held on disk).
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            if process.stderr:
                process.stderr.close()

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
