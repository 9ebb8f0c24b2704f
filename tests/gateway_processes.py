"""Real order-gateway processes for integration tests, and a small venue to run them against.

``GatewayProcess`` runs ``ringex gateway`` (through ``python -m cli.main``) on a free loopback
port against the given nodes' control endpoints, with a key file of its own, and waits until
the gateway has found the primary and loaded reference data. Like ``NodeProcess`` it is
killed at the end of the test session at the latest.
"""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import zmq

from core import commands as C
from core.enums import AccountType
from gateways.keys import KeyStore
from replication.command_port import CommandClient

from .processes import _LIVE, NodeProcess, free_port, spawn, wait_until_ready

ACCOUNTS = (1, 2, 3, 4, 5, 6)
TICK, LOT = 5, 10
#: ACME has a tick of 5 and a lot of 10; the others tick 1, lot 1: one per test, so tests
#: sharing a venue never trade with each other's leftovers
SYMBOLS = ("ACME", "S1", "S2", "S3", "S4", "S5", "S6")


def setup_venue(node: NodeProcess) -> None:
    """The instruments of SYMBOLS (reference price 1000, collar 50 %) and six margin accounts
    with plenty of cash, through the command port (admin commands never go through the
    gateway)."""
    client = CommandClient(node.command_endpoint)
    reply = client.submit(C.batch(
        *[C.add_instrument(i, symbol, tick_size=TICK if symbol == "ACME" else 1,
                           lot_size=LOT if symbol == "ACME" else 1, reference_price=1000,
                           collar_bps=5000) for i, symbol in enumerate(SYMBOLS)],
        *[C.add_account(a, AccountType.MARGIN) for a in ACCOUNTS],
        *[C.deposit_cash(a, 10**13) for a in ACCOUNTS]))
    client.close()
    assert reply.ok, reply.message


class GatewayProcess:
    def __init__(self, workdir: Path, nodes: list[str], *, extra: tuple[str, ...] = (),
                 heartbeat_ms: int = 1000) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = nodes
        self.extra = extra
        self.heartbeat_ms = heartbeat_ms
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.keys_path = workdir / "keys.json"
        self.log = workdir / "gateway.log"
        self.proc: subprocess.Popen | None = None

    def add_key(self, *accounts: int) -> str:
        """A new API key for ``accounts`` (a running gateway picks it up within a second)."""
        store = KeyStore.load(self.keys_path, missing_ok=True)
        key = store.add(list(accounts))
        store.save()
        return key

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "cli.main", "gateway", "--listen", self.endpoint,
                "--keys", str(self.keys_path), "--heartbeat-ms", str(self.heartbeat_ms),
                *self.extra]
        for node in self.nodes:
            args += ["--node", node]
        return args

    def start(self, timeout: float = 60.0, wait_ready: bool = True) -> "GatewayProcess":
        """Start; unless ``wait_ready`` is False, wait until it has found the primary and
        loaded reference data."""
        if not self.keys_path.exists():
            KeyStore(self.keys_path).save()
        self.proc = spawn(self.command(), self.log)
        wait_until_ready(self.proc, self.log,
                         lambda: not wait_ready or "gateway ready" in self.log.read_text(),
                         timeout, "gateway")
        return self

    def raw_socket(self, **options) -> zmq.Socket:
        """A bare DEALER connected to the gateway, for tests that speak the wire directly."""
        socket = zmq.Context.instance().socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        for name, value in options.items():
            socket.setsockopt(getattr(zmq, name), value)
        socket.connect(self.endpoint)
        return socket

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM: the gateway ends its sessions and drains its queue, then exits."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            _LIVE.discard(self.proc)

    def __enter__(self) -> "GatewayProcess":
        return self.start() if not self.alive else self

    def __exit__(self, *exc) -> None:
        self.close()
