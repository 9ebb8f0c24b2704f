"""Replication between real engine processes on loopback: a primary and its hot standby.

Every test starts real ``ringex primary`` / ``ringex standby`` processes (``tests.processes``),
drives them through the command and control ports, and judges the outcome from the outside: the
two journals (opened read-only, batch by batch, raw bytes), the state hashes the nodes report,
and their status. Failures are real ones too: SIGKILL, SIGSTOP/SIGCONT (a node cut off without
closing its connections), a tampered snapshot.

What "identical" means throughout: both journals verify (every batch hash and link checked from
the first batch), hold the same batches byte for byte, and both nodes report the same state hash
at the same applied sequence number.
"""
from __future__ import annotations

import random
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from contextlib import ExitStack

import numpy as np
import pytest
import zmq
from click.testing import CliRunner

from cli.node import failover, rejoin
from core import commands as C
from core.enums import AccountType, Side
from journal.lmdb_journal import LmdbJournal
from journal.offline import snapshot_offline
from journal.snapshots import SnapshotStore, state_hash_of
from replication.command_port import CommandClient, Status

from .processes import NodeProcess

pytestmark = pytest.mark.timeout(90)

ACCOUNTS = (1, 2, 3, 4)
SETUP = C.batch(C.add_instrument(0, "ACME", tick_size=1, lot_size=1, reference_price=100,
                                 collar_bps=5000),
                *[C.add_account(a, AccountType.MARGIN) for a in ACCOUNTS],
                *[C.deposit_cash(a, 10**12) for a in ACCOUNTS])
FAST_LOSS = ("--peer-timeout-ms", "500", "--sync-timeout-ms", "300")

#: Frequent state-hash checks. Since c994639 both nodes snapshot at the multiples of
#: ``--snapshot-every`` (the same batch boundaries on both), each hashes its own snapshot, and
#: the standby compares its hash with the primary's (``--hash-check-every`` is gone). So both
#: nodes need the same value; a snapshot still being written when the next multiple comes makes
#: that one skipped, so not every multiple is checked.
HASH_CHECKS = {"snapshot_every": 20}


#: Small tables, so that snapshots (hence snapshot-time hash checks) are quick to write. Every
#: node of a test must have the same (the journal records them; a standby must match).
CAPACITIES = {"instruments": 8, "accounts": 64, "orders": 1 << 13, "positions": 512,
              "client-ids": 1 << 15}


# ---------------------------------------------------------------- helpers
def node(data_dir, *, extra=(), checks: bool = False, **options) -> NodeProcess:
    """A NodeProcess; ``checks``: with frequent state-hash checks (``HASH_CHECKS``)."""
    options.setdefault("capacities", dict(CAPACITIES))
    if checks:
        options.setdefault("snapshot_every", HASH_CHECKS["snapshot_every"])
    return NodeProcess(data_dir, extra=tuple(extra), **options)


class Orders:
    """Crossing limit orders from four accounts (so they trade), unique client order ids."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.next_id = Counter()

    def one(self) -> np.ndarray:
        account = self.rng.choice(ACCOUNTS)
        self.next_id[account] += 1
        return C.new_order(account, 0, self.rng.choice([Side.BUY, Side.SELL]),
                           self.rng.randint(1, 5), self.rng.randint(98, 102),
                           client_order_id=self.next_id[account])

    def request(self, size: int | None = None) -> np.ndarray:
        return C.batch(*[self.one() for _ in range(size or self.rng.randint(1, 4))])


def bodies(commands: np.ndarray) -> list[bytes]:
    """A command record without its seq and ts (bytes 16..64): what the client sent."""
    return [r[16:].tobytes() for r in commands.view(np.uint8).reshape(-1, 64)]


class Client:
    """A blocking client that remembers what was acknowledged (seq -> command body)."""

    def __init__(self, node: NodeProcess, orders: Orders | None = None,
                 timeout_ms: int = 10_000) -> None:
        self.client = CommandClient(node.command_endpoint, timeout_ms=timeout_ms)
        self.orders = orders or Orders()
        self.acked: dict[int, bytes] = {}
        self.requests = 0

    def submit(self, commands: np.ndarray):
        reply = self.client.submit(commands)
        self.requests += 1
        if reply.ok:
            for i, body in enumerate(bodies(commands)):
                self.acked[reply.first_seq + i] = body
        return reply

    def order(self):
        reply = self.submit(self.orders.request())
        assert reply.ok, (reply.status, reply.message)
        return reply

    def close(self) -> None:
        self.client.close()


class Load(threading.Thread):
    """A client on its own thread keeping ``window`` requests in flight until stopped.

    Records every acknowledged command (seq -> body) and every error reply's status."""

    def __init__(self, node: NodeProcess, seed: int = 7, window: int = 8,
                 first_ids: Counter | None = None) -> None:
        super().__init__(daemon=True, name="load")
        self.endpoint = node.command_endpoint
        self.orders = Orders(seed)
        if first_ids:
            self.orders.next_id = Counter(first_ids)
        self.window = window
        self.halt = threading.Event()
        self.acked: dict[int, bytes] = {}
        self.errors: Counter = Counter()
        self.failure: BaseException | None = None

    @property
    def count(self) -> int:
        return len(self.acked)

    def run(self) -> None:
        client = CommandClient(self.endpoint, context=zmq.Context.instance())
        inflight: dict[int, np.ndarray] = {}
        drain_deadline = None
        try:
            while True:
                if self.halt.is_set():
                    drain_deadline = drain_deadline or time.monotonic() + 15
                    if not inflight or time.monotonic() > drain_deadline:
                        break
                else:
                    while len(inflight) < self.window:
                        commands = self.orders.request()
                        inflight[client.send(commands)] = commands
                try:
                    reply = client.receive(100)
                except TimeoutError:
                    continue
                commands = inflight.pop(reply.request_id)
                if reply.ok:
                    for i, body in enumerate(bodies(commands)):
                        self.acked[reply.first_seq + i] = body
                else:
                    self.errors[reply.status] += 1
            if inflight:
                raise AssertionError(f"{len(inflight)} requests never answered")
        except BaseException as e:    # reported by stop()
            self.failure = e
        finally:
            client.close()

    def wait_for_more(self, more: int, timeout: float = 15) -> None:
        target = self.count + more
        wait_for(lambda: self.count >= target or self.failure,
                 timeout, f"{more} more acknowledged commands")
        assert self.failure is None, self.failure

    def stop(self) -> None:
        self.halt.set()
        self.join(30)
        assert not self.is_alive(), "the load thread did not finish"
        if self.failure is not None:
            raise self.failure


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05,
             error: type[AssertionError] = AssertionError):
    """Poll ``predicate`` (TimeoutError from a busy node counts as not yet) until truthy."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except TimeoutError as e:
            last_error = e
        time.sleep(interval)
    raise error(f"timed out after {timeout} s waiting for {what}"
                         + (f" (last: {last_error})" if last_error else ""))


def status(node: NodeProcess, with_hash: bool = False) -> dict:
    return node.status(with_hash=with_hash, timeout_ms=3_000)


def link(node: NodeProcess) -> dict:
    return status(node)["replication"]


def wait_live(primary: NodeProcess, standby: NodeProcess, timeout: float = 20) -> None:
    wait_for(lambda: link(primary)["standby"] == "live" and link(standby)["link"] == "live"
             and status(standby)["role"] == "standby", timeout, "the standby to be live")


def wait_caught_up(primary: NodeProcess, standby: NodeProcess, timeout: float = 20) -> int:
    """Wait until the standby has journaled and applied everything the primary has."""
    def done():
        p, s = status(primary), status(standby)
        return p["last_seq"] == s["last_seq"] == s["applied_seq"] == p["applied_seq"] and \
            s["replication"]["link"] == "live" and p["last_seq"]
    wait_for(done, timeout, "the standby to catch up")
    return status(primary)["last_seq"]


def journal_batches(node: NodeProcess) -> list[tuple[int, bytes]]:
    """Every batch of a node's journal as (first seq, raw record), after a full verify()."""
    with LmdbJournal(node.data_dir / "journal", readonly=True) as journal:
        last = journal.verify()
        batches = [(b.first_seq, bytes(b.raw)) for b in journal.batches()]
        assert journal.last_seq == last
    return batches


def journal_bodies(node: NodeProcess) -> dict[int, bytes]:
    with LmdbJournal(node.data_dir / "journal", readonly=True) as journal:
        return {seq: body for b in journal.batches()
                for seq, body in enumerate(bodies(b.commands), b.first_seq)}


def journaled_through(node: NodeProcess) -> int:
    with LmdbJournal(node.data_dir / "journal", readonly=True) as journal:
        return journal.last_seq


def assert_identical(primary: NodeProcess, standby: NodeProcess) -> list[tuple[int, bytes]]:
    """Caught up, same batches byte for byte (contiguous, none lost or doubled), same hash."""
    last = wait_caught_up(primary, standby)
    ours, theirs = journal_batches(primary), journal_batches(standby)
    assert [seq for seq, _ in theirs] == [seq for seq, _ in ours]
    assert theirs == ours
    p, s = status(primary, with_hash=True), status(standby, with_hash=True)
    assert p["last_seq"] == s["applied_seq"] == last
    assert p["journal_hash"] == s["journal_hash"]
    assert p["state_hash"] == s["state_hash"]
    return ours


def assert_contains(node: NodeProcess, acked: dict[int, bytes]) -> None:
    """Every acknowledged command is journaled at the seq it was acknowledged with."""
    stored = journal_bodies(node)
    wrong = [seq for seq, body in acked.items() if stored.get(seq) != body]
    assert not wrong, f"acknowledged but not journaled as acknowledged: {sorted(wrong)[:10]}"


def start_pair(stack: ExitStack, tmp_path, primary_extra=(), standby_extra=(), *,
               checks: bool = False, live: bool = True) -> tuple[NodeProcess, NodeProcess]:
    primary = stack.enter_context(node(tmp_path / "p", node_id=1, extra=primary_extra,
                                       checks=checks))
    standby = stack.enter_context(node(tmp_path / "s", role="standby", node_id=2,
                                       primary=primary.replication_endpoint,
                                       extra=standby_extra, checks=checks))
    if live:
        wait_live(primary, standby)
    return primary, standby


def resume(process: NodeProcess) -> None:
    if process.alive:
        process.proc.send_signal(signal.SIGCONT)


def checks_passed(standby: NodeProcess) -> int:
    return link(standby)["hash_checks_passed"]


def trade_until(client: "Client", condition, what: str, max_requests: int = 400):
    """Send orders (one request, one batch at a time) until ``condition()`` is truthy."""
    for _ in range(max_requests):
        client.order()
        value = condition()
        if value:
            return value
    raise AssertionError(f"{max_requests} requests and still not {what}")


def check_more_hashes(client: "Client", standby: NodeProcess, more: int = 2) -> None:
    """Trade until the standby has passed ``more`` further state-hash checks."""
    target = checks_passed(standby) + more
    trade_until(client, lambda: checks_passed(standby) >= target,
                f"{more} more hash checks passed")


def hash_at(process: NodeProcess, seq: int) -> str:
    """A node's state hash after ``seq``, rebuilt from its journal and snapshots."""
    from journal.recovery import recover
    with LmdbJournal(process.data_dir / "journal", readonly=True) as journal:
        store = SnapshotStore(process.data_dir / "snapshots")
        return recover(journal, store, to_seq=seq).blp.state_hash().hex()


# ---------------------------------------------------------------- basics
def test_replication_basics_identical_journals_and_state_standby_refuses_commands(tmp_path):
    with ExitStack() as stack:
        primary, standby = start_pair(stack, tmp_path, checks=True)
        client = Client(primary)
        stack.callback(client.close)
        assert client.submit(SETUP).ok
        for _ in range(60):                     # one batch each
            client.order()
        check_more_hashes(client, standby)
        batches = assert_identical(primary, standby)
        assert len(batches) == client.requests >= 61   # one request at a time: one batch each
        assert_contains(standby, client.acked)

        p, s = status(primary), status(standby)
        assert (p["role"], p["epoch"], p["accepting"]) == ("primary", 1, True)
        assert (s["role"], s["epoch"], s["accepting"]) == ("standby", 1, False)
        assert s["replication"]["link"] == "live"
        assert s["replication"]["following"] == primary.replication_endpoint
        assert s["replication"]["primary_node"] == 1
        assert s["replication"]["hash_checks_passed"] > 0
        assert s["replication"]["diverged"] is None
        assert s["replication"]["lag_commands"] == 0
        r = p["replication"]
        assert r["mode"] == "sync" and r["standby"] == "live" and r["standby_node"] == 2
        assert r["alarm"] is None and r["diverged"] is None
        assert r["acked_seq"] == p["last_seq"]
        assert r["lag_commands"] == 0 and r["lag_batches"] == 0
        assert r["lag_seconds"] == 0.0

        # the standby refuses commands, and journals nothing of them
        refused = CommandClient(standby.command_endpoint)
        stack.callback(refused.close)
        reply = refused.submit(Orders(99).request(2))
        assert not reply.ok and reply.status == Status.NOT_PRIMARY
        assert "standby" in reply.message
        time.sleep(0.2)
        assert status(standby)["last_seq"] == status(primary)["last_seq"]
        assert journal_batches(standby) == batches


def test_sync_means_durable_twice_every_acknowledged_seq_is_already_on_the_standby(tmp_path):
    with ExitStack() as stack:
        primary, standby = start_pair(stack, tmp_path)
        client = Client(primary)
        stack.callback(client.close)
        assert client.submit(SETUP).ok
        for _ in range(20):
            client.order()
            last = max(client.acked)                 # the request's last seq
            # the reply is the acknowledgement: by now the standby has journaled it (fsync)
            assert journaled_through(standby) >= last
            assert journal_bodies(standby)[last] == client.acked[last]
        assert status(primary)["replication"]["standby"] == "live"


# ---------------------------------------------------------------- catching up
def test_an_empty_standby_catches_up_under_live_load_losing_and_doubling_nothing(tmp_path):
    with ExitStack() as stack:
        primary = stack.enter_context(node(tmp_path / "p", checks=True))
        client = Client(primary)
        stack.callback(client.close)
        assert client.submit(SETUP).ok
        for _ in range(400):                         # history: 400 batches
            client.order()
        history = status(primary)["last_seq"]
        load = Load(primary, first_ids=client.orders.next_id)
        stack.callback(load.halt.set)
        load.start()
        load.wait_for_more(50)

        standby = stack.enter_context(node(
            tmp_path / "s", role="standby", node_id=2, primary=primary.replication_endpoint,
            checks=True))
        at_start = load.count
        wait_live(primary, standby)
        during_catch_up = load.count - at_start
        load.wait_for_more(100)                     # and some more once live (sync)
        load.stop()
        assert not load.errors
        client.orders.next_id = load.orders.next_id    # (fresh client order ids)
        check_more_hashes(client, standby, 1)

        batches = assert_identical(primary, standby)
        assert batches[-1][0] > history
        # the chain is contiguous: each batch starts right after the previous one
        with LmdbJournal(standby.data_dir / "journal", readonly=True) as journal:
            ends = [b.last_seq for b in journal.batches()]
        assert [first for first, _ in batches][1:] == [end + 1 for end in ends[:-1]]
        assert_contains(standby, {**client.acked, **load.acked})
        assert during_catch_up > 0, "the load should have gone on while the standby caught up"
        assert link(standby)["diverged"] is None and link(primary)["diverged"] is None


def test_a_standby_killed_and_restarted_under_load_catches_up_and_the_alarm_clears(tmp_path):
    with ExitStack() as stack:
        primary, standby = start_pair(stack, tmp_path, FAST_LOSS, FAST_LOSS,
                                      checks=True)
        client = Client(primary)
        stack.callback(client.close)
        assert client.submit(SETUP).ok
        load = Load(primary, first_ids=client.orders.next_id)
        stack.callback(load.halt.set)
        load.start()
        load.wait_for_more(200)
        assert link(primary)["alarm"] is None

        standby.kill()
        alarm = wait_for(lambda: link(primary)["alarm"], 10, "the standby-lost alarm")
        assert "standby lost" in alarm and "continuing without it" in alarm
        assert link(primary)["standby"] == "absent"
        load.wait_for_more(200)                     # acknowledged without the standby

        standby.start()                             # same data dir, same ports
        wait_for(lambda: link(primary)["standby"] == "live", 20, "the standby to be live again")
        assert link(primary)["alarm"] is None
        load.wait_for_more(200)
        load.stop()
        assert not load.errors

        assert_identical(primary, standby)
        assert_contains(standby, {**client.acked, **load.acked})
        assert link(primary)["alarm"] is None


def test_a_standby_cut_off_past_the_peer_timeout_resynchronises_by_itself(tmp_path):
    with ExitStack() as stack:
        primary, standby = start_pair(stack, tmp_path, FAST_LOSS, FAST_LOSS,
                                      checks=True)
        stack.callback(resume, standby)
        client = Client(primary)
        stack.callback(client.close)
        assert client.submit(SETUP).ok
        load = Load(primary, first_ids=client.orders.next_id)
        stack.callback(load.halt.set)
        load.start()
        load.wait_for_more(200)

        standby.proc.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        alarm = wait_for(lambda: link(primary)["alarm"], 10, "the standby-lost alarm")
        assert "standby lost" in alarm
        load.wait_for_more(200)                     # on_standby_loss async: still acknowledging
        assert link(primary)["standby"] == "absent"
        behind = status(primary)["last_seq"]
        time.sleep(max(0.0, 1.5 - (time.monotonic() - stopped)))   # 3x the peer timeout

        standby.proc.send_signal(signal.SIGCONT)
        wait_live(primary, standby)
        assert link(primary)["alarm"] is None
        load.wait_for_more(100)
        load.stop()
        assert not load.errors

        assert_identical(primary, standby)
        assert status(standby)["last_seq"] > behind
        assert_contains(standby, {**client.acked, **load.acked})
        assert link(standby)["diverged"] is None


# ---------------------------------------------------------------- on_standby_loss stop
def test_on_standby_loss_stop_refuses_orders_while_the_standby_is_away(tmp_path):
    extra = FAST_LOSS + ("--on-standby-loss", "stop")
    with ExitStack() as stack:
        primary, standby = start_pair(stack, tmp_path, extra, FAST_LOSS)
        stack.callback(resume, standby)
        client = Client(primary)
        stack.callback(client.close)
        assert client.submit(SETUP).ok
        for _ in range(10):
            client.order()
        assert status(primary)["accepting"]

        # 1. idle when the standby vanishes: the loss is noticed by the peer timeout, then
        #    every new request is refused at once with UNAVAILABLE, and nothing is journaled
        standby.proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: not status(primary)["accepting"], 10, "the primary to stop accepting")
        before = status(primary)
        assert before["role"] == "primary"
        assert before["replication"]["standby"] == "absent"
        assert "accepting no orders" in before["replication"]["alarm"]
        for _ in range(3):
            reply = client.submit(client.orders.request())
            assert not reply.ok and reply.status == Status.UNAVAILABLE
        assert status(primary)["last_seq"] == before["last_seq"]
        standby.proc.send_signal(signal.SIGCONT)
        wait_live(primary, standby)
        assert status(primary)["accepting"] and link(primary)["alarm"] is None
        client.order()

        # 2. a request in flight when the standby vanishes: it is journaled on the primary but
        #    not acknowledged until the standby has it; meanwhile the node answers its control
        #    port and refuses new requests with UNAVAILABLE
        standby.proc.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        in_flight = CommandClient(primary.command_endpoint)
        stack.callback(in_flight.close)
        pending = client.orders.request()
        in_flight.send(pending)
        with pytest.raises(TimeoutError):
            in_flight.receive(1000)
        waiting = status(primary)
        assert not waiting["accepting"]
        assert "accepting no orders" in waiting["replication"]["alarm"]
        reply = client.submit(client.orders.request())
        assert not reply.ok and reply.status == Status.UNAVAILABLE
        time.sleep(max(0.0, 1.5 - (time.monotonic() - stopped)))
        standby.proc.send_signal(signal.SIGCONT)
        late = in_flight.receive(10_000)
        assert late.ok and late.first_seq == waiting["last_seq"] - len(pending) + 1
        for i, body in enumerate(bodies(pending)):
            client.acked[late.first_seq + i] = body
        wait_live(primary, standby)
        for _ in range(5):
            client.order()                          # accepting orders again

        assert_identical(primary, standby)
        assert_contains(standby, client.acked)      # nothing acknowledged is missing


# ---------------------------------------------------------------- divergence
def test_a_corrupted_standby_is_detected_by_the_state_hash_check(tmp_path):
    with ExitStack() as stack:
        primary = node(tmp_path / "p", checks=True)
        stack.enter_context(primary)
        client = Client(primary)
        assert client.submit(SETUP).ok
        for _ in range(20):
            client.order()
        client.close()
        assert primary.stop() == 0

        # the standby's data: a copy of the primary's, with a snapshot that loads fine
        # (checksum, anchor) but holds one more unit of cash in account 1
        shutil.copytree(tmp_path / "p", tmp_path / "s")
        shutil.rmtree(tmp_path / "s" / "snapshots", ignore_errors=True)
        path, seq, true_hash = snapshot_offline(tmp_path / "s")
        store = SnapshotStore(tmp_path / "s" / "snapshots")
        snap = store.load(path)
        arrays = {name: array.copy() for name, array in snap.arrays.items()}
        assert arrays["accounts.cash"][1] > 0
        arrays["accounts.cash"][1] += 1
        forged = state_hash_of(arrays)
        assert forged != true_hash
        assert store.write(seq, snap.epoch, snap.journal_hash, forged, snap.capacities,
                           arrays) == path
        assert store.load(path).state_hash == forged

        primary.start()
        standby = stack.enter_context(node(
            tmp_path / "s", role="standby", node_id=2, primary=primary.replication_endpoint,
            checks=True))
        wait_live(primary, standby)
        assert status(standby, True)["state_hash"] == forged.hex() != \
            status(primary, True)["state_hash"]
        assert link(standby)["diverged"] is None    # nothing compared yet

        client = Client(primary, Orders(5))
        client.orders.next_id = Counter({a: 1000 for a in ACCOUNTS})
        stack.callback(client.close)
        diverged = trade_until(client, lambda: link(standby)["diverged"],
                               "the standby diverged")
        assert diverged["ours"] != diverged["theirs"]
        assert diverged["theirs"] == hash_at(primary, diverged["seq"])     # the true state
        assert diverged["ours"] == hash_at(standby, diverged["seq"])       # the forged one
        reported = wait_for(lambda: link(primary)["diverged"], 10, "the primary to hear of it")
        assert reported["seq"] == diverged["seq"]
        assert bytes(reported["ours"]).hex() == diverged["ours"]
        assert bytes(reported["theirs"]).hex() == diverged["theirs"]
        # the journals are identical: only the hash check can tell
        wait_caught_up(primary, standby)
        assert journal_batches(standby) == journal_batches(primary)
        assert link(standby)["hash_checks_passed"] == 0


# ---------------------------------------------------------------- failover
def test_failover_fences_the_old_primary_promotes_the_standby_and_rejoin_follows(tmp_path):
    with ExitStack() as stack:
        old, new = start_pair(stack, tmp_path, checks=True)
        client = Client(old)
        stack.callback(client.close)
        assert client.submit(SETUP).ok
        for _ in range(20):
            client.order()
        wait_caught_up(old, new)
        runner = CliRunner()

        result = runner.invoke(failover, ["--standby", new.control_endpoint,
                                          "--old-primary", old.control_endpoint])
        assert result.exit_code == 0, result.output
        assert "old primary: " in result.output and "fenced" in result.output
        o, n = status(old), status(new)
        assert (o["role"], o["accepting"]) == ("fenced", False)
        assert (n["role"], n["epoch"], n["accepting"]) == ("primary", 2, True)
        assert n["last_seq"] == o["last_seq"]
        reply = client.submit(client.orders.request())
        assert not reply.ok and reply.status == Status.NOT_PRIMARY
        assert status(old)["last_seq"] == o["last_seq"]

        to_new = Client(new, client.orders)
        stack.callback(to_new.close)
        first = to_new.order()
        assert first.first_seq == o["last_seq"] + 1
        for _ in range(5):
            to_new.order()

        result = runner.invoke(rejoin, [old.control_endpoint,
                                        "--primary", new.replication_endpoint])
        assert result.exit_code == 0, result.output
        wait_live(new, old)
        assert status(old)["epoch"] == 2
        for _ in range(20):
            to_new.order()
        check_more_hashes(to_new, old)
        assert_identical(new, old)
        assert_contains(old, {**client.acked, **to_new.acked})
        with LmdbJournal(old.data_dir / "journal", readonly=True) as journal:
            epochs = {b.first_seq: b.epoch for b in journal.batches()}
        assert {e for s, e in epochs.items() if s <= o["last_seq"]} == {1}
        assert {e for s, e in epochs.items() if s > o["last_seq"]} == {2}
        assert link(old)["diverged"] is None and link(new)["diverged"] is None
        assert link(new)["alarm"] is None


def test_an_unreplicated_async_tail_is_dropped_when_the_old_primary_rejoins(tmp_path):
    """The price of ``--replication async``: orders acknowledged while the standby was cut off
    exist only on the primary; if the primary then dies and the standby is promoted, those
    acknowledged orders are gone for good. The old primary, rejoining as a standby, drops them
    (its journal becomes byte-identical to the new primary's) rather than fork the history."""
    extra = FAST_LOSS + ("--replication", "async")
    with ExitStack() as stack:
        old, new = start_pair(stack, tmp_path, extra, FAST_LOSS)
        stack.callback(resume, new)
        client = Client(old)
        stack.callback(client.close)
        assert client.submit(SETUP).ok
        for _ in range(20):
            client.order()
        shared = wait_caught_up(old, new)

        new.proc.send_signal(signal.SIGSTOP)
        # wait until the primary has given up on the standby: from then on it sends nothing
        wait_for(lambda: link(old)["standby"] == "absent", 10, "the primary to drop the standby")
        tail = Client(old, client.orders)
        stack.callback(tail.close)
        for _ in range(10):
            tail.order()                             # acknowledged: async does not wait
        assert min(tail.acked) == shared + 1
        assert status(old)["last_seq"] == max(tail.acked)
        old.kill()
        assert_contains(old, tail.acked)             # durable on the old primary only

        new.proc.send_signal(signal.SIGCONT)
        promoted = wait_for(lambda: new.control({"op": "promote"}).get("ok") and True, 10,
                            "the standby to accept promotion")
        assert promoted
        n = status(new)
        assert (n["role"], n["epoch"], n["last_seq"]) == ("primary", 2, shared)
        after = Client(new, Orders(11))
        after.orders.next_id = Counter({a: 5000 for a in ACCOUNTS})
        stack.callback(after.close)
        for _ in range(15):
            after.order()
        assert min(after.acked) == shared + 1        # the same seqs, other commands

        rejoined = stack.enter_context(node(
            old.data_dir, role="standby", node_id=1, primary=new.replication_endpoint,
            extra=FAST_LOSS))
        wait_live(new, rejoined)
        batches = assert_identical(new, rejoined)
        assert status(rejoined)["epoch"] == 2
        stored = journal_bodies(rejoined)
        lost = [seq for seq, body in tail.acked.items() if stored.get(seq) == body]
        assert lost == [], "the async tail should have been dropped"
        assert set(tail.acked.values()).isdisjoint(stored.values())
        assert_contains(rejoined, {**client.acked, **after.acked})
        assert batches[-1][0] <= max(after.acked)


# ---------------------------------------------------------------- regressions (bugs found, fixed)
#: Past the sync timeout (the primary gives up waiting for an ack) but well within the peer
#: timeout (neither side considers the other gone).
SHORT_SYNC = ("--sync-timeout-ms", "300", "--peer-timeout-ms", "3000")


def test_a_standby_stalled_past_the_sync_timeout_but_not_the_peer_timeout_is_taken_back(
        tmp_path):
    with ExitStack() as stack:
        primary, standby = start_pair(stack, tmp_path, SHORT_SYNC, SHORT_SYNC,
                                      checks=True)
        stack.callback(resume, standby)
        client = Client(primary)
        stack.callback(client.close)
        assert client.submit(SETUP).ok
        for _ in range(5):
            client.order()
        standby.proc.send_signal(signal.SIGSTOP)
        client.order()                   # acknowledged after the 0.3 s sync timeout, alone
        alarm = link(primary)["alarm"]
        assert alarm and "no acknowledgement" in alarm and "continuing without it" in alarm
        time.sleep(0.7)                  # stalled ~1 s: a long fsync, a GC pause, a VM hiccup
        standby.proc.send_signal(signal.SIGCONT)
        for _ in range(5):
            client.order()
        wait_for(lambda: link(primary)["standby"] == "live", 8,
                 "the primary to take the standby back")
        assert link(primary)["alarm"] is None
        assert_identical(primary, standby)


def test_on_standby_loss_stop_accepts_orders_again_after_a_short_standby_stall(tmp_path):
    with ExitStack() as stack:
        primary, standby = start_pair(stack, tmp_path,
                                      SHORT_SYNC + ("--on-standby-loss", "stop"), SHORT_SYNC)
        stack.callback(resume, standby)
        client = Client(primary)
        stack.callback(client.close)
        assert client.submit(SETUP).ok
        for _ in range(5):
            client.order()
        standby.proc.send_signal(signal.SIGSTOP)
        in_flight = CommandClient(primary.command_endpoint)
        stack.callback(in_flight.close)
        in_flight.send(client.orders.request())
        with pytest.raises(TimeoutError):
            in_flight.receive(1000)      # not acknowledged while the standby is away: right
        standby.proc.send_signal(signal.SIGCONT)
        assert in_flight.receive(5000).ok    # the standby journaled it: acknowledged: right
        wait_for(lambda: status(primary)["accepting"], 8,
                 "the primary to accept orders again")
        client.order()
        assert_identical(primary, standby)


@pytest.mark.parametrize("how", ["control-stop", "sigterm"])
def test_a_primary_waiting_for_a_lost_standby_can_still_be_stopped(tmp_path, how):
    with ExitStack() as stack:
        primary, standby = start_pair(stack, tmp_path, FAST_LOSS + ("--on-standby-loss", "stop"),
                                      FAST_LOSS)
        stack.callback(resume, standby)
        client = Client(primary)
        stack.callback(client.close)
        assert client.submit(SETUP).ok
        client.order()
        standby.proc.send_signal(signal.SIGSTOP)     # and it stays away
        client.client.send(client.orders.request())
        with pytest.raises(TimeoutError):
            client.client.receive(1000)              # waiting for the standby, as designed
        assert not status(primary)["accepting"]
        if how == "control-stop":
            assert primary.control({"op": "stop"}) == {"ok": True}
        else:
            primary.proc.send_signal(signal.SIGTERM)
        try:
            code = primary.proc.wait(5)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{how}: the node still runs 5 s later") from None
        assert code == 0


def test_a_finished_snapshot_is_not_forgotten_when_the_next_one_starts(tmp_path):
    """In-process (the loop stepped by hand, to make the timing deterministic)."""
    from core.config import Capacities
    from replication.node import EngineNode, NodeConfig

    from .processes import free_port
    config = NodeConfig(
        data_dir=tmp_path / "n", replication="none", snapshot_every=10,
        command_endpoint=f"tcp://127.0.0.1:{free_port()}",
        control_endpoint=f"tcp://127.0.0.1:{free_port()}",
        replication_endpoint=f"tcp://127.0.0.1:{free_port()}",
        event_endpoint=f"tcp://127.0.0.1:{free_port()}",
        capacities=Capacities(instruments=8, accounts=64, orders=1 << 15, positions=512,
                              client_order_ids=1 << 18))    # ~30 MB: a snapshot takes a while
    engine = EngineNode(config)
    client = CommandClient(config.command_endpoint)
    orders = Orders()
    try:
        def process(commands: np.ndarray) -> None:
            """Step the loop just until the request is processed (no further steps)."""
            target = engine.processed + len(commands)
            client.send(commands)
            deadline = time.monotonic() + 10
            while engine.processed < target:
                assert time.monotonic() < deadline
                engine._step()
            assert client.receive(5000).ok

        def snapshot_files() -> set[int]:
            return {int(p.name[9:29]) for p in engine.snapshots.paths()}

        process(SETUP)                                   # seq 1..9
        process(orders.request(1))                       # seq 10: a snapshot starts
        wait_for(lambda: 10 in snapshot_files(), 30, "snapshot 10 on disk")
        time.sleep(0.2)                                  # ... and its writer done
        process(orders.request(10))                      # seq 11..20: the next one starts
        wait_for(lambda: engine._step() or 20 in dict(engine.journal.checkpoints()), 30,
                 "the checkpoint of snapshot 20", interval=0)
        assert {10, 20} <= snapshot_files()              # both snapshots were written
        recorded = dict(engine.journal.checkpoints())
        if 10 not in recorded:
            raise AssertionError(f"snapshot 10 is on disk but its checkpoint was never recorded "
                           f"(recorded: {sorted(recorded)})")
    finally:
        client.close()
        engine._shutdown()
