"""``ringex marketdata`` as a real process for integration tests and the benchmark.

``MarketDataProcess`` starts the service on free loopback ports against the given engine
control endpoints, waits until it follows the engine (its ``status`` says ``ready``), and is
killed at the end of the test (or of the session, at the latest: ``tests.processes``
registers every process it starts for an ``atexit`` kill).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgpack
import zmq

from .processes import _LIVE, free_port, spawn, wait_until_ready


def snapshot_request(endpoint: str, request: dict, timeout_ms: int = 5000) -> dict:
    """One request to a snapshot service; its reply map (raises TimeoutError)."""
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    try:
        socket.send(msgpack.packb(request))
        if not socket.poll(timeout_ms):
            raise TimeoutError(f"no answer from {endpoint}")
        return msgpack.unpackb(socket.recv_multipart()[-1], raw=False)
    finally:
        socket.close(0)


class MarketDataProcess:
    def __init__(self, nodes: list[str], log: Path, *, heartbeat_ms: int = 200,
                 extra: tuple[str, ...] = ()) -> None:
        self.nodes = list(nodes)
        self.log = log
        self.heartbeat_ms = heartbeat_ms
        self.extra = extra
        self.publish_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.snapshot_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.drop_copy_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "cli.main", "marketdata",
                "--publish", self.publish_endpoint, "--snapshot", self.snapshot_endpoint,
                "--drop-copy", self.drop_copy_endpoint, "--heartbeat-ms", str(self.heartbeat_ms),
                *self.extra]
        for node in self.nodes:
            args += ["--node", node]
        return args

    def start(self, timeout: float = 60.0) -> "MarketDataProcess":
        self.proc = spawn(self.command(), self.log)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> dict:
        def ready() -> dict | None:
            status = self.request({"op": "status"}, timeout_ms=500)
            return status if status.get("ready") else None
        return wait_until_ready(self.proc, self.log, ready, timeout, "marketdata")

    def request(self, request: dict, timeout_ms: int = 5000) -> dict:
        return snapshot_request(self.snapshot_endpoint, request, timeout_ms)

    def status(self) -> dict:
        return self.request({"op": "status"})

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        if self.proc is not None:
            _LIVE.discard(self.proc)

    def __enter__(self) -> "MarketDataProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


class RandomFlow:
    """A random but reproducible order flow over a few instruments and margin accounts: limit
    orders around a mid price (so they trade), market, IOC and FOK orders, stops, cancels,
    modifies, mass cancels, the odd halt and resume. Many orders trade, some are rejected
    (that is part of what the drop copy must carry)."""

    SYMBOLS = ("ACME", "BOLT", "CRUX")

    def __init__(self, seed: int, instruments: int = 2, accounts: tuple[int, ...] = (1, 2, 3, 4),
                 mid: int = 1000) -> None:
        import random
        self.rng = random.Random(seed)
        self.instruments = list(range(instruments))
        self.accounts = accounts
        self.mid = mid
        self.next_id = {a: 0 for a in accounts}
        self.live: list[tuple[int, int]] = []       #: (account, client_order_id) sent
        self.halted: set[int] = set()

    def setup(self):
        from core import commands as C
        from core.enums import AccountType
        return C.batch(
            *[C.add_instrument(i, self.SYMBOLS[i], tick_size=1, lot_size=1,
                               reference_price=self.mid, collar_bps=5000)
              for i in self.instruments],
            *[C.add_account(a, AccountType.MARGIN) for a in self.accounts],
            *[C.deposit_cash(a, 10**13) for a in self.accounts],
            *[C.deposit_position(a, i, 100_000) for a in self.accounts for i in self.instruments])

    def one(self):
        from core import commands as C
        from core.enums import OrderType, Side, TimeInForce
        rng = self.rng
        if self.halted and rng.random() < 0.1:
            return C.resume(self.halted.pop())
        account = rng.choice(self.accounts)
        instrument = rng.choice(self.instruments)
        roll = rng.random()
        if roll < 0.12 and self.live:
            owner, client_id = rng.choice(self.live)
            return C.cancel(owner, client_order_id=client_id)
        if roll < 0.20 and self.live:
            owner, client_id = rng.choice(self.live)
            return C.modify(owner, client_order_id=client_id, quantity=rng.randint(1, 20),
                            price=self.mid + rng.randint(-8, 8))
        if roll < 0.21:
            return C.mass_cancel(account, instrument)
        if roll < 0.212:
            self.halted.add(instrument)
            return C.halt(instrument)
        self.next_id[account] += 1
        client_id = self.next_id[account]
        side = rng.choice((Side.BUY, Side.SELL))
        quantity = rng.randint(1, 20)
        if roll < 0.27:
            return C.new_order(account, instrument, side, quantity, client_order_id=client_id,
                               order_type=OrderType.MARKET, time_in_force=TimeInForce.IOC)
        if roll < 0.30:
            stop = self.mid + (3 if side == Side.BUY else -3)
            return C.new_order(account, instrument, side, quantity, client_order_id=client_id,
                               order_type=OrderType.STOP, stop_price=stop)
        tif = rng.choice((TimeInForce.GTC, TimeInForce.GTC, TimeInForce.DAY, TimeInForce.IOC,
                          TimeInForce.FOK))
        offset = rng.randint(-6, 10)
        price = self.mid - offset if side == Side.BUY else self.mid + offset
        self.live.append((account, client_id))
        if len(self.live) > 200:
            self.live.pop(0)
        return C.new_order(account, instrument, side, quantity, price, client_order_id=client_id,
                           time_in_force=tif)

    def batch(self, n: int):
        from core import commands as C
        return C.batch(*[self.one() for _ in range(n)])
