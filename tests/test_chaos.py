"""Chaos: kill -9 the engine at random moments under steady load; nothing acknowledged is lost.

A client keeps a window of requests in flight (new orders from four accounts, crossing each
other so they trade), records every acknowledged command with the sequence number it got, and
a timer SIGKILLs the node at a random moment. The node restarts and recovers (snapshots are
taken every few hundred commands, so recovery often starts from one); the client re-sends what
was in flight, with the same client order ids, as a real client would. At the end:

* every acknowledged command is in the journal, at the sequence number it was acknowledged
  with, byte for byte;
* no order was executed twice: each (account, client order id) was accepted exactly once, and
  re-sends of journaled ones were answered DUPLICATE_ORDER;
* the node's final state hash equals a fresh replay of the journal, from the first command and
  from the newest snapshot.

``RINGEX_CHAOS_ITERATIONS`` sets how many kills (3 in CI; the stress figure is in
BENCHMARKS.md).
"""
from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter

import numpy as np

from core import commands as C
from core.enums import AccountType, EventKind, Side
from journal.lmdb_journal import LmdbJournal
from journal.recovery import recover
from journal.snapshots import SnapshotStore
from replication.command_port import CommandClient

from .processes import NodeProcess

ITERATIONS = int(os.environ.get("RINGEX_CHAOS_ITERATIONS", "3"))
ACCOUNTS = (1, 2, 3, 4)
WINDOW = 16


class Load:
    """A client with a window of requests in flight that remembers what was acknowledged."""

    def __init__(self, endpoint: str, rng: random.Random) -> None:
        self.rng = rng
        self.client = CommandClient(endpoint, timeout_ms=1500)
        self.inflight: dict[int, np.ndarray] = {}
        self.acked: dict[int, bytes] = {}          # seq -> command body (bytes 16..64)
        self.next_client_id = Counter()
        self.resent_duplicates = 0
        self.resent = 0

    def request(self) -> np.ndarray:
        orders = []
        for _ in range(self.rng.randint(1, 8)):
            account = self.rng.choice(ACCOUNTS)
            self.next_client_id[account] += 1
            orders.append(C.new_order(
                account, 0, self.rng.choice([Side.BUY, Side.SELL]), self.rng.randint(1, 10),
                self.rng.randint(95, 105), client_order_id=self.next_client_id[account]))
        return C.batch(*orders)

    def _record(self, reply, commands: np.ndarray) -> None:
        assert reply.ok, reply.message
        for i, record in enumerate(commands.view(np.uint8).reshape(-1, 64)):
            self.acked[reply.first_seq + i] = record[16:].tobytes()

    def pump(self, seconds: float) -> bool:
        """Keep the window full for ``seconds``; False as soon as the node stops answering."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            while len(self.inflight) < WINDOW:
                commands = self.request()
                self.inflight[self.client.send(commands)] = commands
            try:
                reply = self.client.receive()
            except TimeoutError:
                return False
            self._record(reply, self.inflight.pop(reply.request_id))
        return True

    def drain(self) -> None:
        """Wait for every reply still in flight."""
        while self.inflight:
            reply = self.client.receive()
            self._record(reply, self.inflight.pop(reply.request_id))

    def reconnect(self, endpoint: str) -> None:
        """A new connection; re-send everything unacknowledged, with the same client ids."""
        self.client.close()
        self.client = CommandClient(endpoint, timeout_ms=10_000)
        pending, self.inflight = list(self.inflight.values()), {}
        for commands in pending:
            reply = self.client.submit(commands)
            self._record(reply, commands)
            self.resent += len(commands)
            self.resent_duplicates += int(np.count_nonzero(
                reply.events["kind"] == EventKind.DUPLICATE_ORDER))

    def close(self) -> None:
        self.client.close()


def test_kill_9_under_load_loses_nothing_acknowledged_and_executes_nothing_twice(tmp_path):
    rng = random.Random(int(os.environ.get("RINGEX_CHAOS_SEED", "20261124")))
    node = NodeProcess(tmp_path / "node", snapshot_every=400).start()
    try:
        load = Load(node.command_endpoint, rng)
        setup = C.batch(C.add_instrument(0, "ACME", tick_size=1, lot_size=1,
                                         reference_price=100, collar_bps=5000),
                        *[C.add_account(a, AccountType.MARGIN) for a in ACCOUNTS],
                        *[C.deposit_cash(a, 10**14) for a in ACCOUNTS])
        load._record(load.client.submit(setup), setup)
        for _ in range(ITERATIONS):
            killer = threading.Timer(rng.uniform(0.05, 1.0), node.kill)
            killer.start()
            while load.pump(0.2):
                pass                          # until the node dies under us
            killer.join()
            node.start()
            load.reconnect(node.command_endpoint)
        assert load.pump(0.3)
        load.drain()
        final = node.status(with_hash=True)
        assert node.stop() == 0
        load.close()
    finally:
        if node.alive:
            node.kill()

    with LmdbJournal(node.data_dir / "journal", readonly=True) as journal:
        stored = {}
        for batch in journal.batches():
            for record in batch.commands.view(np.uint8).reshape(-1, 64):
                stored[int(record[:8].view(np.int64)[0])] = record[16:].tobytes()
        missing = [seq for seq, body in load.acked.items() if stored.get(seq) != body]
        assert not missing, f"acknowledged but not journaled as acknowledged: {missing[:10]}"

        from_start = recover(journal)
        from_snapshot = recover(journal, SnapshotStore(node.data_dir / "snapshots"))
        assert from_snapshot.snapshot is not None
        assert from_start.blp.state_hash().hex() == final["state_hash"]
        assert from_snapshot.blp.state_hash().hex() == final["state_hash"]
        from_start.blp.check_integrity()

        accepted: Counter = Counter()
        duplicates = 0
        from core.blp import BusinessLogicProcessor
        from journal.recovery import journal_capacities
        replayer = BusinessLogicProcessor(journal_capacities(journal))
        for batch in journal.batches():
            events = replayer.process_view(batch.commands)
            ok = events[events["kind"] == EventKind.ORDER_ACCEPTED]
            accepted.update(zip(ok["account"].tolist(), ok["client_order_id"].tolist()))
            duplicates += int(np.count_nonzero(events["kind"] == EventKind.DUPLICATE_ORDER))
    twice = [key for key, n in accepted.items() if n > 1]
    assert not twice, f"executed more than once: {twice[:10]}"
    acknowledged = {(int.from_bytes(body[4:8], "little"), int.from_bytes(body[16:24], "little"))
                    for body in load.acked.values() if body[0] == 1}   # NEW_ORDER bodies
    assert acknowledged == set(accepted)   # every acknowledged order executed, exactly once
    assert duplicates == load.resent_duplicates
