"""Start and stop Azurite (the Azure Storage emulator, pinned in package.json) for local runs."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO / "node_modules" / ".bin" / "azurite"

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
    """An Azurite process on free loopback ports; a context manager that stops what it started.

    ``location`` keeps the data on disk between runs (the demo); without it, data lives in memory
    and is gone when the process stops (tests).
    """

    def __init__(
        self, *, location: Path | None = None, ports: tuple[int, int, int] | None = None
    ) -> None:
        self.location = location
        self.blob_port, self.queue_port, self.table_port = ports or (
            free_port(), free_port(), free_port()
        )
        self._process: subprocess.Popen[bytes] | None = None

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
    def pid(self) -> int | None:
        """The Azurite process's id while it runs (benchmarks read its CPU time)."""
        return None if self._process is None else self._process.pid

    def start(self, timeout_seconds: float = 30.0) -> Azurite:
        """Start Azurite and wait until all three services accept connections."""
        if not AZURITE_BIN.exists():
            raise AzuriteError(f"{AZURITE_BIN} is missing; run 'npm ci' first")
        persistence = ["--inMemoryPersistence"]
        if self.location is not None:
            self.location.mkdir(parents=True, exist_ok=True)
            persistence = ["--location", str(self.location)]
        command = [
            str(AZURITE_BIN), "--silent", "--disableTelemetry", "--skipApiVersionCheck",
            *persistence,
            "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
            "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
            "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
        ]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + timeout_seconds
        ports = (self.blob_port, self.queue_port, self.table_port)
        while not all(_listening(port) for port in ports):
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode() if self._process.stderr else ""
                raise AzuriteError(f"Azurite exited with {self._process.returncode}: {stderr}")
            if time.monotonic() > deadline:
                self.stop()
                raise AzuriteError(f"Azurite did not listen on {ports} within {timeout_seconds}s")
            time.sleep(0.05)  # polling a port with a deadline; nothing to wait on instead
        return self

    def stop(self) -> None:
        """Stop Azurite and wait for the process to go."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        if self._process.stderr:
            self._process.stderr.close()
        self._process = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
