"""Real engine processes for integration and chaos tests, cleaned up whatever happens.

``NodeProcess`` runs ``ringex primary`` (through ``python -m cli.main``) on free loopback TCP
ports with its own data directory, waits until the node answers on its control port, and can
stop it cleanly, kill it with SIGKILL, or restart it. Every process a test starts is killed at
the end of the test session at the latest (``atexit``).
"""
from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from replication.control import control_request

ROOT = Path(__file__).parent.parent
_LIVE: set[subprocess.Popen] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        if proc.poll() is None:
            proc.kill()


#: Ports handed out come from below the kernel's ephemeral range (32768.., where outgoing
#: connections take their local ports: a port picked there can be taken by a client socket
#: before the node binds it), spread by process id, never the same twice in one process.
_PORTS = range(20_000, 32_000)
_next_port = _PORTS.start + (os.getpid() * 97) % len(_PORTS)


def free_port() -> int:
    """A loopback TCP port that is free now and was not handed out before by this process."""
    global _next_port
    for _ in range(len(_PORTS)):
        port = _next_port
        _next_port = _PORTS.start + (_next_port + 1 - _PORTS.start) % len(_PORTS)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def spawn(command: list[str], log: Path) -> subprocess.Popen:
    """Start ``command`` in the repository, its output appended to ``log``; it is killed at
    the end of the test session at the latest."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=out,
                                env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    _LIVE.add(proc)
    return proc


def wait_until_ready(proc: subprocess.Popen, log: Path, ready, timeout: float, what: str):
    """Call ``ready()`` until it gives a true value (a TimeoutError counts as "not yet") and
    return that value. Raises RuntimeError, with the log's tail, if the process exits first,
    and TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n"
                               f"{log.read_text()[-3000:]}")
        try:
            answer = ready()
            if answer:
                return answer
        except TimeoutError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready in {timeout} s:\n{log.read_text()[-3000:]}")


class NodeProcess:
    def __init__(self, data_dir: Path, *, role: str = "primary", primary: str | None = None,
                 snapshot_every: int = 0, durability: str = "fsync",
                 capacities: dict | None = None, log: Path | None = None,
                 node_id: int = 1, extra: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.role = role
        self.primary = primary
        self.node_id = node_id
        self.extra = extra
        self.command_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.control_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.replication_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.event_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.snapshot_every = snapshot_every
        self.durability = durability
        self.capacities = capacities or {"instruments": 8, "accounts": 64, "orders": 1 << 15,
                                         "positions": 512, "client-ids": 1 << 18}
        self.log = log or data_dir.parent / f"{data_dir.name}.log"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "cli.main", self.role, "--data", str(self.data_dir),
                "--commands", self.command_endpoint, "--control", self.control_endpoint,
                "--replication-port", self.replication_endpoint, "--events", self.event_endpoint,
                "--node-id", str(self.node_id),
                "--durability", self.durability, "--snapshot-every", str(self.snapshot_every),
                *self.extra]
        if self.role == "standby":
            args += ["--primary", self.primary]
        for name, value in self.capacities.items():
            args += [f"--{name}", str(value)]
        return args

    def start(self, timeout: float = 120.0) -> "NodeProcess":
        self.proc = spawn(self.command(), self.log)
        wait_until_ready(self.proc, self.log, self.status, timeout, "node")
        return self

    def status(self, with_hash: bool = False, timeout_ms: int = 500) -> dict:
        return control_request(self.control_endpoint, {"op": "status", "hash": with_hash},
                               timeout_ms=timeout_ms)

    def snapshot(self) -> dict:
        return control_request(self.control_endpoint, {"op": "snapshot"}, timeout_ms=60_000)

    def control(self, request: dict, timeout_ms: int = 10_000) -> dict:
        return control_request(self.control_endpoint, request, timeout_ms=timeout_ms)

    def stop(self, timeout: float = 60.0) -> int:
        """Ask the node to stop cleanly; returns its exit code."""
        control_request(self.control_endpoint, {"op": "stop"}, timeout_ms=10_000)
        return self._wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to flush, checkpoint or close anything."""
        self.proc.send_signal(signal.SIGKILL)
        self._wait(30)

    def _wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            _LIVE.discard(self.proc)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> "NodeProcess":
        return self.start() if not self.alive else self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Kill the process if it still runs (what a test's cleanup calls)."""
        if self.alive:
            self.proc.kill()
            self._wait(30)


class WitnessProcess:
    """``ringex witness`` on a free loopback port."""

    def __init__(self, log: Path, lease_ms: int = 600) -> None:
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.lease_ms = lease_ms
        self.log = log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "WitnessProcess":
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "witness", "--bind", self.endpoint,
             "--lease-ms", str(self.lease_ms)], cwd=ROOT, stdout=out, stderr=out)
        _LIVE.add(self.proc)
        time.sleep(0.3)
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        _LIVE.discard(self.proc)
