"""Chaos with failover: kill -9 the primary under load, promote the standby, keep trading.

Two nodes in sync replication. Each iteration: a client keeps a window of pipelined requests
(new orders from four accounts, crossing so they trade) going to the primary; at a random
moment the primary is SIGKILLed; a watcher that sees it die promotes the standby (``ringex
failover``'s promote); the client reconnects to the new primary and re-sends everything
unacknowledged with the same client order ids; the dead node's data directory is started again
as a standby of the new primary (it rejoins, dropping anything never replicated) and must be
live before the next kill. Roles alternate.

At the end:
* every acknowledged command is in the final primary's journal at the sequence number it was
  acknowledged with, byte for byte (sync replication: acknowledged = journaled on both);
* every acknowledged order was accepted exactly once (no double execution across failovers:
  re-sends of journaled orders come back DUPLICATE_ORDER);
* both nodes end with byte-identical journals, and the primary's state hash equals the
  standby's and a fresh replay of the journal.

``RINGEX_CHAOS_ITERATIONS`` sets the number of failovers (3 in CI; the stress figure is in
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
from core.blp import BusinessLogicProcessor
from core.enums import AccountType, CommandKind, EventKind
from journal.lmdb_journal import LmdbJournal
from journal.recovery import journal_capacities, recover

from .processes import NodeProcess
from .test_chaos import ACCOUNTS, Load

ITERATIONS = int(os.environ.get("RINGEX_CHAOS_ITERATIONS", "3"))
FAST = ("--peer-timeout-ms", "600", "--sync-timeout-ms", "600")
#: A stress run sends ~4,000 orders per failover: size the tables for all of them (a full table
#: rejects, which is correct but would leave nothing to execute twice), and snapshot less often
#: so copying the larger arrays does not dominate.
STRESS = ITERATIONS > 10
CAPACITIES = {"instruments": 8, "accounts": 64, "orders": 1 << 19, "positions": 512,
              "client-ids": 1 << 21} if STRESS else None
SNAPSHOT_EVERY = 20_000 if STRESS else 500


def wait_live(standby: NodeProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = standby.status()
        except TimeoutError:          # busy rebuilding its state: it answers once done
            continue
        if status["role"] == "standby" and status["replication"].get("link") == "live":
            return
        time.sleep(0.05)
    raise TimeoutError(f"standby not live: {standby.status()}")


def raw_batches(data_dir) -> list[bytes]:
    with LmdbJournal(data_dir / "journal", readonly=True) as journal:
        return [b.raw for b in journal.batches()]


def test_failover_under_load_loses_nothing_acknowledged_and_executes_nothing_twice(tmp_path):
    rng = random.Random(int(os.environ.get("RINGEX_CHAOS_SEED", "4242")))
    dirs = [tmp_path / "a", tmp_path / "b"]
    primary = NodeProcess(dirs[0], node_id=1, snapshot_every=SNAPSHOT_EVERY, extra=FAST,
                          capacities=CAPACITIES).start()
    standby = NodeProcess(dirs[1], role="standby", primary=primary.replication_endpoint,
                          node_id=2, snapshot_every=SNAPSHOT_EVERY, extra=FAST,
                                  capacities=CAPACITIES).start()
    nodes = [primary, standby]
    failover_ms = []
    try:
        wait_live(standby)
        load = Load(primary.command_endpoint, rng)
        setup = C.batch(C.add_instrument(0, "ACME", tick_size=1, lot_size=1,
                                         reference_price=100, collar_bps=5000),
                        *[C.add_account(a, AccountType.MARGIN) for a in ACCOUNTS],
                        *[C.deposit_cash(a, 10**14) for a in ACCOUNTS])
        load._record(load.client.submit(setup), setup)
        for _ in range(ITERATIONS):
            died = threading.Event()

            def kill_and_fail_over(old=primary, new=standby) -> None:
                old.kill()
                killed = time.perf_counter()
                assert new.control({"op": "promote"}).get("ok"), "promotion refused"
                failover_ms.append((time.perf_counter() - killed) * 1000)
                died.set()

            killer = threading.Timer(rng.uniform(0.1, 1.0), kill_and_fail_over)
            killer.start()
            while not died.is_set() and load.pump(0.1):
                pass
            killer.join()
            died.wait()
            primary, standby = standby, primary
            load.reconnect(primary.command_endpoint)
            standby = NodeProcess(standby.data_dir, role="standby",
                                  primary=primary.replication_endpoint,
                                  node_id=standby.node_id, snapshot_every=SNAPSHOT_EVERY, extra=FAST,
                                  capacities=CAPACITIES)
            nodes.append(standby.start())
            wait_live(standby)
        assert load.pump(0.3)
        load.drain()
        time.sleep(0.3)                       # the standby applies the last batches
        final = primary.status(with_hash=True)
        mirror = standby.status(with_hash=True)
        assert final["role"] == "primary" and final["epoch"] == 1 + ITERATIONS
        assert mirror["state_hash"] == final["state_hash"]
        assert primary.stop() == 0 and standby.stop() == 0
        load.close()
    finally:
        for node in nodes:
            if node.alive:
                node.kill()

    assert raw_batches(primary.data_dir) == raw_batches(standby.data_dir)
    with LmdbJournal(primary.data_dir / "journal", readonly=True) as journal:
        stored = {}
        for batch in journal.batches():
            for record in batch.commands.view(np.uint8).reshape(-1, 64):
                stored[int(record[:8].view(np.int64)[0])] = record[16:].tobytes()
        missing = [s for s, body in load.acked.items() if stored.get(s) != body]
        assert not missing, f"acknowledged but not journaled as acknowledged: {missing[:10]}"
        assert recover(journal).blp.state_hash().hex() == final["state_hash"]
        replayer = BusinessLogicProcessor(journal_capacities(journal))
        accepted: Counter = Counter()
        rejected: set = set()
        for batch in journal.batches():
            events = replayer.process_view(batch.commands)
            ok = events[events["kind"] == EventKind.ORDER_ACCEPTED]
            refused = events[(events["kind"] == EventKind.REJECTED) &
                             (events["command_kind"] == CommandKind.NEW_ORDER)]
            accepted.update(zip(ok["account"].tolist(), ok["client_order_id"].tolist()))
            rejected.update(zip(refused["account"].tolist(),
                                refused["client_order_id"].tolist()))
    assert not [k for k, n in accepted.items() if n > 1], "an order executed twice"
    acknowledged = {(int.from_bytes(b[4:8], "little"), int.from_bytes(b[16:24], "little"))
                    for b in load.acked.values() if b[0] == CommandKind.NEW_ORDER}
    # every acknowledged new order has its outcome in the surviving journal, and every
    # accepted order was acknowledged to its client (after a resend, if need be)
    assert acknowledged == set(accepted) | rejected
    assert len(rejected) < len(accepted) // 10, "mostly rejections: the test tests little"
    print(f"\n{ITERATIONS} failovers, {len(accepted)} orders, {len(rejected)} rejected, "
          f"{load.resent} re-sent "
          f"({load.resent_duplicates} duplicates); promotion after the kill: "
          f"{', '.join(f'{ms:.0f}' for ms in failover_ms)} ms")
