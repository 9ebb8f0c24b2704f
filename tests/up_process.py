"""``ringex up`` as a real process for end-to-end tests, cleaned up whatever happens.

``UpProcess`` runs ``python -m cli.main up`` with a data directory and a base port whose twelve
ports are all free, reads its output on a thread, and waits for ``ringex is up``. ``stop``
sends SIGINT (what Ctrl-C does) and waits; ``kill`` is for cleanup after a failure: SIGKILL, and
the children follow (the supervisor starts them with ``PR_SET_PDEATHSIG``). Every process is
also killed at the end of the test session (``tests.processes`` registers it).
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from cli.supervisor import Layout

from .processes import _LIVE, ROOT


def free_base_port() -> int:
    """A base port (see ``cli.supervisor.Layout``) whose every port can be bound now."""
    for _ in range(200):
        base = random.randrange(20_000, 31_800, 200)    # below the ephemeral range
        if all(_bindable(p) for p in Layout(Path("."), base).ports()):
            return base
    raise RuntimeError("no free range of ports")


def _bindable(port: int) -> bool:
    """Whether a server could listen on ``port`` (as ZeroMQ does, with SO_REUSEADDR: old
    connections in TIME_WAIT do not count, a process still listening does)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class UpProcess:
    def __init__(self, data_dir: Path, base_port: int, *args: str, cwd: Path = ROOT) -> None:
        self.data_dir = data_dir
        self.layout = Layout(data_dir.resolve(), base_port)
        self.args = list(args)
        self.cwd = cwd
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def start(self, timeout: float = 180.0) -> dict:
        """Start and wait for ``ringex is up``; returns DATA/connect.json."""
        self.lines = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "up", "--data", str(self.data_dir),
             "--base-port", str(self.layout.base_port), "--view", "plain", "--interval", "1",
             *self.args],
            cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)})
        _LIVE.add(self.proc)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for_line("ringex is up", timeout)
        return json.loads((self.layout.data_dir / "connect.json").read_text())

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float, after: int = 0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines[after:]:
                if text in line:
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                raise RuntimeError(f"ringex up exited with {self.proc.returncode}:\n"
                                   f"{self.output()[-4000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"no {text!r} from ringex up in {timeout} s:\n{self.output()[-4000:]}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60.0) -> int:
        """SIGINT (Ctrl-C) or another signal; returns the exit code."""
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        finally:
            self.kill()
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        _LIVE.discard(self.proc)

    def ports_free(self, timeout: float = 10.0) -> bool:
        """Whether every port of the cluster can be bound again (all children gone)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(_bindable(p) for p in self.layout.ports()):
                return True
            time.sleep(0.1)
        return False


def ringex(*args: str, cwd: Path = ROOT, timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run one ``ringex`` command line; returns the completed process (output in stdout)."""
    return subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1",
                               "PYTHONPATH": str(ROOT)})
