"""Working with recorded history: replay, audit, drill and offline snapshots (journal/replay.py,
journal/audit.py, journal/drill.py, journal/offline.py), as library calls and through the
``ringex`` command line (cli/history.py, cli/node.py).

Each test works on a data directory laid out the way a node lays it out: ``DATA/journal`` (LMDB,
with the capacities recorded as the journal's configuration) and ``DATA/snapshots``, with a
checkpoint (the live engine's state hash) recorded at every snapshot and at the clean stop.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import lmdb
import numpy as np
import pytest
from click.testing import CliRunner, Result

from cli.main import main
from core.blp import BusinessLogicProcessor
from core.canonical import CanonicalState
from core.config import Capacities
from core.describe import describe_book
from core.enums import CommandKind as K
from core.enums import EventKind as E
from core.records import COMMAND, EVENT
from core.workload import StreamSpec, generate
from journal import audit
from journal.drill import drill
from journal.format import JournalError, batch_key
from journal.lmdb_journal import LmdbJournal
from journal.memory import MemoryJournal
from journal.offline import open_readonly, resolve, snapshot_offline
from journal.replay import replay, seq_at_time
from journal.snapshots import SnapshotStore, capture

CAPACITIES = Capacities(instruments=8, accounts=64, orders=1024, positions=512,
                        client_order_ids=8192)
SPEC = StreamSpec(commands=3000, accounts=50, instruments=5, target_orders=300, seed=1234)
SNAPSHOT_AFTER_BATCHES = (6, 17, 29)


def batch_sizes(total: int, seed: int = 99) -> list[int]:
    rng = np.random.default_rng(seed)
    sizes, at = [], 0
    while at < total:
        size = min(int(rng.integers(1, 150)), total - at)
        sizes.append(size)
        at += size
    return sizes


@dataclass(frozen=True)
class Node:
    """A node's data directory and what its live engine saw while writing it."""
    data: Path
    flow: np.ndarray
    sizes: tuple[int, ...]
    live: dict                      #: seq -> state hash at every batch end
    events: np.ndarray              #: every event the live engine emitted, in order
    snapshot_seqs: tuple[int, ...]
    checkpoints: tuple[int, ...]
    final_state: CanonicalState

    @property
    def ends(self) -> list[int]:
        return np.cumsum(self.sizes).tolist()

    @property
    def last_seq(self) -> int:
        return len(self.flow)

    @property
    def final_hash(self) -> bytes:
        return self.live[self.last_seq]

    def live_hash_at(self, seq: int) -> bytes:
        if seq in self.live:
            return self.live[seq]
        blp = BusinessLogicProcessor(CAPACITIES)
        at = 0
        for size in self.sizes:
            end = min(at + size, seq)
            blp.process_view(self.flow[at:end])
            at = end
            if at == seq:
                break
        return blp.state_hash()

    def ts(self, seq: int) -> int:
        return int(self.flow["ts"][seq - 1])


def build_node(data: Path, flow: np.ndarray, *, snapshots: bool = True,
               checkpoints: bool = True) -> Node:
    """Drive a live engine through ``flow`` the way a node does: journal each batch, apply it,
    snapshot now and then (recording the state hash as a checkpoint), and record the final
    state hash at the clean stop."""
    sizes = batch_sizes(len(flow))
    live, events, snapshot_seqs, marks = {}, [], [], []
    store = SnapshotStore(data / "snapshots")
    with LmdbJournal(data / "journal", durability="async", node_id=1) as journal:
        journal.set_config({"capacities": CAPACITIES.as_dict()})
        blp = BusinessLogicProcessor(CAPACITIES)
        at = 0
        for index, size in enumerate(sizes):
            commands = flow[at:at + size]
            journal.append(commands)
            events.append(blp.process(commands).tobytes())
            at += size
            live[at] = blp.state_hash()
            if snapshots and index in SNAPSHOT_AFTER_BATCHES:
                store.write(at, journal.epoch, journal.last_hash, live[at], CAPACITIES,
                            capture(blp.arrays()))
                snapshot_seqs.append(at)
                if checkpoints:
                    journal.record_checkpoint(at, live[at])
                    marks.append(at)
        if checkpoints:
            journal.record_checkpoint(at, live[at])       # the clean stop
            marks.append(at)
    return Node(data, flow, tuple(sizes), live, np.frombuffer(b"".join(events), EVENT),
                tuple(snapshot_seqs), tuple(marks), blp.canonical_state())


@pytest.fixture(scope="module")
def flow() -> np.ndarray:
    stream = generate(SPEC)
    out = np.zeros(len(stream.setup) + len(stream.main), COMMAND)
    out[:len(stream.setup)] = stream.setup
    out[len(stream.setup):] = stream.main
    return out


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, flow) -> Node:
    """One node's data, shared by the tests that only read it."""
    return build_node(tmp_path_factory.mktemp("node") / "data", flow)


@pytest.fixture
def node(pristine, tmp_path) -> Node:
    """A private copy of the node's data, for tests that change or add to it."""
    data = tmp_path / "data"
    shutil.copytree(pristine.data, data)
    return replace(pristine, data=data)


def ringex(*args) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def record_checkpoint(node: Node, seq: int, state_hash: bytes) -> None:
    with LmdbJournal(node.data / "journal") as journal:
        journal.record_checkpoint(seq, state_hash)


def flip_stored_batch(node: Node, first_seq: int, at: int = 300) -> None:
    """Flip bits in one stored batch behind the journal's back (a disk or a bug)."""
    env = lmdb.open(str(node.data / "journal"), max_dbs=4)
    db = env.open_db(b"batches")
    with env.begin(write=True) as txn:
        raw = bytearray(txn.get(batch_key(first_seq), db=db))
        raw[at] ^= 0x04
        txn.put(batch_key(first_seq), bytes(raw), db=db)
    env.close()


def iso(ts_ns: int) -> str:
    """An exact ISO 8601 UTC time for a microsecond-aligned timestamp."""
    assert ts_ns % 1000 == 0
    seconds, rest = divmod(ts_ns, 10**9)
    moment = datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None)
    return moment.isoformat() + f".{rest // 1000:06d}"


# ====================================================================================== replay
def test_the_node_data_looks_like_a_nodes(pristine):
    where = resolve(pristine.data)
    assert where.journal == pristine.data / "journal" and where.snapshots.is_dir()
    journal, store = open_readonly(pristine.data)
    with journal:
        assert journal.config == {"capacities": CAPACITIES.as_dict()}
        assert journal.last_seq == pristine.last_seq
        assert [seq for seq, _ in journal.checkpoints()] == list(pristine.checkpoints)
    assert [store.load(p).seq for p in store.paths()] == list(pristine.snapshot_seqs)[::-1]
    assert len(pristine.checkpoints) == 4 and len(pristine.snapshot_seqs) == 3


def test_replay_verify_rebuilds_from_the_newest_snapshot_and_matches(pristine):
    result = ringex("replay", pristine.data, "--verify")
    assert result.exit_code == 0, result.output
    out = result.stdout
    last, newest = pristine.last_seq, pristine.snapshot_seqs[-1]
    assert f"hash chain verified through seq {last:,}\n" in out
    assert f"replayed {last - newest:,} commands from snapshot at seq {newest:,} to seq " \
           f"{last:,}" in out
    assert f"state hash {pristine.final_hash.hex()}\n" in out
    compared = [line for line in out.splitlines() if line.startswith("  seq")]
    assert len(compared) == 1
    assert f"{last:,}" in compared[0] and compared[0].endswith("match")
    assert pristine.final_hash.hex()[:16] in compared[0]
    assert "MISMATCH" not in out


def test_replay_from_start_compares_every_recorded_checkpoint(pristine):
    result = ringex("replay", pristine.data, "--from-start")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"replayed {pristine.last_seq:,} commands from the first command" in out
    compared = [line.split() for line in out.splitlines() if line.startswith("  seq")]
    assert [(words[1], words[-1]) for words in compared] == \
        [(f"{seq:,}", "match") for seq in pristine.checkpoints]
    for words, seq in zip(compared, pristine.checkpoints):
        assert words[3] == pristine.live[seq].hex()[:16] + "…"
    assert f"state hash {pristine.final_hash.hex()}\n" in out
    assert "hash chain verified" not in out           # (only with --verify)


def test_replay_library_report(pristine):
    journal, store = open_readonly(pristine.data)
    with journal:
        report = replay(journal, store, verify=True)
        assert report.chain_verified_to == pristine.last_seq
        assert report.state_hash == pristine.final_hash and report.mismatches == []
        assert report.snapshot_seq == pristine.snapshot_seqs[-1]
        assert report.replayed_commands == pristine.last_seq - pristine.snapshot_seqs[-1]
        full = replay(journal, None, checkpoint_every=1000)
        assert full.snapshot_seq is None and full.replayed_commands == pristine.last_seq
        assert [c.seq for c in full.checkpoints if c.recorded is not None] == \
            list(pristine.checkpoints)
        assert all(c.computed == pristine.live_hash_at(c.seq) for c in full.checkpoints)
        computed = [c.seq for c in full.checkpoints if c.verdict == "computed"]
        assert computed                                # every ~1000 commands
        assert all(c.verdict in ("match", "computed") for c in full.checkpoints)


@pytest.mark.parametrize("where", ["the first command", "inside a batch before any snapshot",
                                   "a snapshot", "inside the batch after a snapshot",
                                   "the last command but one"])
def test_replay_to_seq(pristine, where):
    ends, snaps = pristine.ends, pristine.snapshot_seqs
    seq = {"the first command": 1,
           "inside a batch before any snapshot": ends[3] + 5,
           "a snapshot": snaps[1],
           "inside the batch after a snapshot": snaps[1] + 3,
           "the last command but one": pristine.last_seq - 1}[where]
    result = ringex("replay", pristine.data, "--to-seq", seq)
    assert result.exit_code == 0, result.output
    assert f"to seq {seq:,} in" in result.stdout
    assert f"state hash {pristine.live_hash_at(seq).hex()}\n" in result.stdout
    usable = [s for s in snaps if s <= seq]
    start = f"snapshot at seq {max(usable):,}" if usable else "the first command"
    assert f"from {start} to seq" in result.stdout


def test_replay_to_time_in_nanoseconds(pristine):
    seq = pristine.snapshot_seqs[0] + 17
    cases = {pristine.ts(seq): seq,                 # a command's own time: included
             pristine.ts(seq) + 999: seq,           # before the next command
             pristine.ts(seq + 1) - 1: seq,
             pristine.ts(1) - 1: 0,                 # before everything
             pristine.ts(pristine.last_seq) + 10**12: pristine.last_seq}
    for when, expected in cases.items():
        result = ringex("replay", pristine.data, "--to-time", when)
        assert result.exit_code == 0, result.output
        assert f"to seq {expected:,} in" in result.stdout, when
        assert f"state hash {pristine.live_hash_at(expected).hex()}" in result.stdout


def test_replay_to_time_in_iso_8601(pristine):
    """Whole seconds convert exactly; a time without a zone is UTC."""
    first, last = pristine.ts(1), pristine.ts(pristine.last_seq)
    assert first // 10**9 == last // 10**9          # the whole flow lies within one second
    before = datetime.fromtimestamp(first // 10**9, timezone.utc)
    after = datetime.fromtimestamp(first // 10**9 + 1, timezone.utc)
    paris = timezone(timedelta(hours=1))
    for text, expected in [(before.replace(tzinfo=None).isoformat(), 0),
                           (before.isoformat(), 0),
                           (after.replace(tzinfo=None).isoformat(), pristine.last_seq),
                           (after.astimezone(paris).isoformat(), pristine.last_seq),
                           (before.astimezone(paris).replace(tzinfo=None).isoformat(),
                            pristine.last_seq)]:         # an hour later, read as UTC
        result = ringex("replay", pristine.data, "--to-time", text)
        assert result.exit_code == 0, result.output
        assert f"to seq {expected:,} in" in result.stdout, text


def test_replay_to_an_exact_iso_time_includes_the_command_stamped_then(pristine):
    start = pristine.snapshot_seqs[-1] + 1
    wrong = []
    for seq in range(start, start + 8):
        result = ringex("replay", pristine.data, "--to-time", iso(pristine.ts(seq)))
        assert result.exit_code == 0, result.output
        if f"to seq {seq:,} in" not in result.stdout:
            wrong.append(seq)
    assert wrong == []


def test_seq_at_time_picks_the_last_command_at_or_before_a_time():
    """Commands of one request share a timestamp; times never go back."""
    from core import commands as C
    journal = MemoryJournal()
    seq = 1
    for stamps in ([10, 10, 10], [20, 20], [20, 30], [30], [45, 50, 50]):
        commands = C.batch(*[C.deposit_cash(1, 1) for _ in stamps])
        commands["seq"] = np.arange(seq, seq + len(stamps))
        commands["ts"] = stamps
        journal.append(commands)
        seq += len(stamps)
    expected = {0: 0, 9: 0, 10: 3, 19: 3, 20: 6, 29: 6, 30: 8, 44: 8, 45: 9, 49: 9, 50: 11,
                10**18: 11}
    assert {t: seq_at_time(journal, t) for t in expected} == expected
    assert seq_at_time(MemoryJournal(), 10**18) == 0


def test_replay_shows_books_and_accounts(pristine):
    result = ringex("replay", pristine.data, "--show-book", "SYM0001", "--show-book", "SYM0003",
                    "--show-accounts")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    state = pristine.final_state
    for symbol, instrument in (("SYM0001", 1), ("SYM0003", 3)):
        expected = describe_book(state, instrument)
        assert len(expected) > 5                     # a real book
        at = lines.index(f"book {symbol}:")
        assert lines[at + 1:at + 1 + len(expected)] == [f"  {line}" for line in expected]
    header = lines.index(next(line for line in lines if line.split()[:2] == ["account",
                                                                             "type"]))
    rows = [line.split() for line in lines[header + 1:] if line.strip()]
    got = {int(r[0]): (int(r[1]), int(r[2].replace(",", "")), int(r[3].replace(",", "")))
           for r in rows}
    assert got == {int(a["account"]): (int(a["account_type"]), int(a["cash"]),
                                       int(a["reserved"])) for a in state.accounts}
    assert len(got) == SPEC.accounts and any(v[2] for v in got.values())


def test_replay_refuses_an_unknown_symbol(pristine):
    result = ringex("replay", pristine.data, "--show-book", "NOPE")
    assert result.exit_code == 1 and "no instrument 'NOPE'" in result.output


@pytest.mark.parametrize("mode", [[], ["--from-start"], ["--verify"]])
def test_a_tampered_final_checkpoint_is_a_mismatch(node, mode):
    record_checkpoint(node, node.last_seq, b"\x5a" * 32)
    result = ringex("replay", node.data, *mode)
    assert result.exit_code == 1
    assert f"state hash {node.final_hash.hex()}" in result.stdout   # still the true state
    verdicts = [line.split()[-1] for line in result.stdout.splitlines()
                if line.startswith("  seq")]
    assert verdicts[-1] == "MISMATCH" and verdicts.count("MISMATCH") == 1
    assert "1 checkpoint(s) differ" in result.output


def test_a_tampered_early_checkpoint_is_a_mismatch_when_replayed_over(node):
    record_checkpoint(node, node.snapshot_seqs[0], b"\x5a" * 32)
    result = ringex("replay", node.data, "--from-start")
    assert result.exit_code == 1
    mismatched = [line.split()[1] for line in result.stdout.splitlines()
                  if line.startswith("  seq") and line.endswith("MISMATCH")]
    assert mismatched == [f"{node.snapshot_seqs[0]:,}"]


@pytest.mark.parametrize("which", ["middle", "last"])
def test_flipped_bits_in_a_batch_fail_a_verified_replay_naming_the_first_bad_seq(node, which):
    index = 20 if which == "middle" else len(node.sizes) - 1
    first_seq = node.ends[index] - node.sizes[index] + 1
    flip_stored_batch(node, first_seq)
    result = ringex("replay", node.data, "--verify")
    assert result.exit_code == 1
    assert f"journal damaged: first bad seq {first_seq}:" in result.output
    assert "state hash" not in result.stdout
    result = ringex("replay", node.data, "--from-start")
    assert result.exit_code == 1 and f"first bad seq {first_seq}:" in result.output


def test_replay_of_a_directory_that_is_missing_or_holds_no_journal(tmp_path):
    result = ringex("replay", tmp_path / "nowhere")
    assert result.exit_code == 2 and "does not exist" in result.output
    result = ringex("replay", tmp_path)
    assert result.exit_code == 1 and "no journal in" in result.output


def test_replay_accepts_the_journal_directory_itself(pristine):
    result = ringex("replay", pristine.data / "journal")
    assert result.exit_code == 0, result.output
    assert f"snapshot at seq {pristine.snapshot_seqs[-1]:,}" in result.stdout
    assert f"state hash {pristine.final_hash.hex()}" in result.stdout


def test_replay_reports_snapshots_it_could_not_use(node):
    newest = node.data / "snapshots" / f"snapshot-{node.snapshot_seqs[-1]:020d}.rxs"
    raw = bytearray(newest.read_bytes())
    raw[5000] ^= 1
    newest.write_bytes(bytes(raw))
    result = ringex("replay", node.data)
    assert result.exit_code == 0, result.output
    assert f"snapshot {newest.name} not used:" in result.stdout and "damaged" in result.stdout
    assert f"from snapshot at seq {node.snapshot_seqs[-2]:,}" in result.stdout
    assert f"state hash {node.final_hash.hex()}" in result.stdout


def test_replay_with_a_malformed_time_is_a_usage_error(pristine):
    result = ringex("replay", pristine.data, "--to-time", "yesterday")
    assert result.exit_code == 2 and "yesterday" in result.output


# ======================================================================================= audit
def _rows_key(rows: list[dict]) -> list[tuple]:
    return [(r["type"], r["seq"], r["kind"]) for r in rows]


def interesting_order(node: Node) -> dict:
    """An order that rested and traded as maker, traded as taker (moved through the spread),
    was modified and cancelled."""
    events = node.events
    trades = events[events["kind"] == E.TRADE]
    for accepted in events[events["kind"] == E.ORDER_ACCEPTED]:
        oid = int(accepted["order_id"])
        mine = events[np.isin(events["kind"], [E.ORDER_REPLACED, E.ORDER_CANCELLED]) &
                      (events["order_id"] == oid)]
        if (trades["maker_order_id"] == oid).any() and \
                (trades["taker_order_id"] == oid).any() and \
                {E.ORDER_REPLACED, E.ORDER_CANCELLED} <= set(mine["kind"].tolist()):
            return {"order_id": oid, "account": int(accepted["account"]),
                    "client_order_id": int(accepted["client_order_id"])}
    raise AssertionError("the flow has no such order")


def expected_order_rows(node: Node, order: dict) -> list[tuple]:
    """From the live engine's output: the order's commands and events, in seq order."""
    flow, events = node.flow, node.events
    oid, account, cid = order["order_id"], order["account"], order["client_order_id"]
    names_it = (flow["account"] == account) & (flow["client_order_id"] == cid)
    commands = flow[(flow["kind"] == K.NEW_ORDER) & names_it |
                    np.isin(flow["kind"], [K.CANCEL, K.MODIFY]) &
                    ((flow["order_id"] == oid) | names_it & (flow["order_id"] == 0))]
    ek = events["kind"]
    mine = events[np.isin(ek, [E.ORDER_ACCEPTED, E.ORDER_CANCELLED, E.ORDER_REPLACED,
                               E.ORDER_EXPIRED, E.STOP_TRIGGERED]) & (events["order_id"] == oid) |
                  (ek == E.TRADE) & ((events["maker_order_id"] == oid) |
                                     (events["taker_order_id"] == oid))]
    rows = [("command", int(c["seq"]), K(int(c["kind"])).name) for c in commands] + \
        [("event", int(e["seq"]), E(int(e["kind"])).name) for e in mine]
    return sorted(rows, key=lambda r: (r[1], r[0] != "command"))


def test_the_life_of_an_order(pristine):
    order = interesting_order(pristine)
    journal, _ = open_readonly(pristine.data)
    with journal:
        rows = audit.order_history(journal, order_id=order["order_id"])
        by_client = audit.order_history(journal, account=order["account"],
                                        client_order_id=order["client_order_id"])
    assert rows == by_client
    assert _rows_key(rows) == expected_order_rows(pristine, order)
    seqs = [r["seq"] for r in rows]
    assert seqs == sorted(seqs)
    entry, accepted = rows[0], rows[1]
    assert (entry["type"], entry["kind"], entry["account"], entry["client_order_id"]) == \
        ("command", "NEW_ORDER", order["account"], order["client_order_id"])
    assert (accepted["type"], accepted["kind"], accepted["order_id"], accepted["seq"]) == \
        ("event", "ORDER_ACCEPTED", order["order_id"], entry["seq"])
    kinds = {(r["type"], r["kind"]) for r in rows}
    assert {("command", "MODIFY"), ("command", "CANCEL"), ("event", "ORDER_REPLACED"),
            ("event", "ORDER_CANCELLED"), ("event", "TRADE")} <= kinds
    trades = [r for r in rows if r["kind"] == "TRADE"]
    assert any(t["maker_order_id"] == order["order_id"] for t in trades)
    assert any(t["taker_order_id"] == order["order_id"] for t in trades)
    live_trades = pristine.events[(pristine.events["kind"] == E.TRADE) &
                                  ((pristine.events["maker_order_id"] == order["order_id"]) |
                                   (pristine.events["taker_order_id"] == order["order_id"]))]
    assert [t["trade_id"] for t in trades] == live_trades["trade_id"].tolist()
    for r in rows:                                   # every row is about this order
        if r["type"] == "command":
            assert (r["account"], r["client_order_id"]) == (order["account"],
                                                            order["client_order_id"])
        elif r["kind"] != "TRADE":
            assert r["order_id"] == order["order_id"]
    cancel = next(r for r in rows if r["kind"] == "CANCEL")
    assert any(r["kind"] == "ORDER_CANCELLED" and r["seq"] == cancel["seq"] for r in rows)
    assert rows[-1]["kind"] == "ORDER_CANCELLED"     # nothing happens to it afterwards


def test_naming_the_account_too_gives_the_same_history(pristine):
    order = interesting_order(pristine)
    by_id = ringex("audit", pristine.data, "--order-id", order["order_id"])
    with_account = ringex("audit", pristine.data, "--order-id", order["order_id"],
                          "--account", order["account"])
    assert by_id.exit_code == with_account.exit_code == 0
    assert with_account.stdout == by_id.stdout


def test_an_order_that_never_existed_has_no_history(pristine):
    journal, _ = open_readonly(pristine.data)
    with journal:
        assert audit.order_history(journal, order_id=10**9) == []
        with pytest.raises(ValueError):
            audit.order_history(journal, account=3)


def test_audit_cli_lists_an_order_by_id_or_by_client_order_id(pristine):
    order = interesting_order(pristine)
    by_id = ringex("audit", pristine.data, "--order-id", order["order_id"])
    assert by_id.exit_code == 0, by_id.output
    rows = [json.loads(line) for line in by_id.stdout.splitlines()]
    assert _rows_key(rows) == expected_order_rows(pristine, order)
    by_client = ringex("audit", pristine.data, "--account", order["account"],
                       "--client-order-id", order["client_order_id"])
    assert by_client.exit_code == 0 and by_client.stdout == by_id.stdout
    nothing = ringex("audit", pristine.data, "--order-id", 10**9)
    assert nothing.exit_code == 0 and nothing.stdout == "" and "nothing found" in nothing.output


def account_window(node: Node) -> tuple[int, int, int]:
    """A busy account and a window that starts and ends at its own commands."""
    main = node.flow[len(node.flow) // 3:]
    account = int(np.bincount(main["account"][main["kind"] == K.NEW_ORDER]).argmax())
    theirs = main[np.isin(main["kind"], [K.NEW_ORDER, K.CANCEL, K.MODIFY]) &
                  (main["account"] == account)]
    return account, int(theirs["ts"][5]), int(theirs["ts"][-5])


def expected_account_rows(node: Node, account: int, since: int, until: int) -> list[tuple]:
    flow, events = node.flow, node.events
    account_commands = [K.NEW_ORDER, K.CANCEL, K.MODIFY, K.MASS_CANCEL, K.DEPOSIT_CASH,
                        K.WITHDRAW_CASH, K.DEPOSIT_POSITION, K.WITHDRAW_POSITION,
                        K.SET_ACCOUNT_LIMITS, K.SET_POSITION_LIMIT, K.ADD_ACCOUNT,
                        K.SET_ACCOUNT_STATUS]
    commands = flow[(flow["ts"] >= since) & (flow["ts"] <= until) &
                    np.isin(flow["kind"], account_commands) & (flow["account"] == account)]
    ek = events["kind"]
    about = np.isin(ek, [E.ORDER_ACCEPTED, E.REJECTED, E.ORDER_CANCELLED, E.ORDER_REPLACED,
                         E.ORDER_EXPIRED, E.STOP_TRIGGERED, E.DUPLICATE_ORDER, E.CASH_MOVED,
                         E.POSITION_MOVED, E.ACCOUNT_ADDED, E.ACCOUNT_LIMITS_SET,
                         E.POSITION_LIMIT_SET, E.ACCOUNT_STATUS_CHANGED, E.MASS_CANCELLED]) & \
        (events["account"] == account) | \
        (ek == E.TRADE) & ((events["maker_account"] == account) |
                           (events["taker_account"] == account))
    mine = events[(events["ts"] >= since) & (events["ts"] <= until) & about]
    rows = [("command", int(c["seq"]), K(int(c["kind"])).name) for c in commands] + \
        [("event", int(e["seq"]), E(int(e["kind"])).name) for e in mine]
    return sorted(rows, key=lambda r: (r[1], r[0] != "command"))


def test_an_accounts_activity_within_a_time_range(pristine):
    account, since, until = account_window(pristine)
    journal, _ = open_readonly(pristine.data)
    with journal:
        rows = audit.account_activity(journal, account, since_ns=since, until_ns=until)
        everything = audit.account_activity(journal, account)
    assert _rows_key(rows) == expected_account_rows(pristine, account, since, until)
    assert rows[0]["ts"] == since and rows[-1]["ts"] == until      # bounds are inclusive
    assert all(since <= r["ts"] <= until for r in rows)
    for r in rows:
        if r["kind"] == "TRADE":
            assert account in (r["maker_account"], r["taker_account"])
        else:
            assert r["account"] == account
    kinds = {r["kind"] for r in rows}
    assert {"NEW_ORDER", "ORDER_ACCEPTED", "MODIFY", "ORDER_REPLACED", "TRADE"} <= kinds
    assert len(everything) > len(rows)
    assert {"ADD_ACCOUNT", "DEPOSIT_CASH", "CASH_MOVED"} <= {r["kind"] for r in everything}


def test_audit_cli_account_activity_and_csv(pristine):
    account, since, until = account_window(pristine)
    result = ringex("audit", pristine.data, "--account", account, "--since", since,
                    "--until", until)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert _rows_key(rows) == expected_account_rows(pristine, account, since, until)
    as_csv = ringex("audit", pristine.data, "--account", account, "--since", since,
                    "--until", until, "--format", "csv")
    assert as_csv.exit_code == 0, as_csv.output
    reader = csv.DictReader(io.StringIO(as_csv.stdout))
    assert reader.fieldnames[:4] == ["type", "seq", "ts", "kind"]
    table = list(reader)
    assert [(r["type"], int(r["seq"]), r["kind"]) for r in table] == _rows_key(rows)
    for row, original in zip(table, rows):
        for name in reader.fieldnames:
            assert row[name] == (str(original[name]) if name in original else ""), name


def test_audit_cli_writes_to_a_file(pristine, tmp_path):
    order = interesting_order(pristine)
    out = tmp_path / "order.csv"
    result = ringex("audit", pristine.data, "--order-id", order["order_id"], "--format", "csv",
                    "--output", out)
    assert result.exit_code == 0, result.output
    with out.open() as f:
        table = list(csv.DictReader(f))
    assert [(r["type"], int(r["seq"]), r["kind"]) for r in table] == \
        expected_order_rows(pristine, order)


def test_audit_iso_bounds_are_inclusive(pristine):
    account, since, until = account_window(pristine)
    by_ns = ringex("audit", pristine.data, "--account", account, "--since", since,
                   "--until", until)
    # the account's next few commands as the end of the range: each must be included
    flow = pristine.flow
    theirs = flow[(flow["account"] == account) & (flow["ts"] >= until)]["ts"][:8].tolist()
    wrong = []
    for end in theirs:
        result = ringex("audit", pristine.data, "--account", account, "--since", iso(since),
                        "--until", iso(end))
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        if not rows or rows[0]["ts"] != since or rows[-1]["ts"] != end:
            wrong.append(end)
    assert by_ns.exit_code == 0 and wrong == []


def test_audit_needs_a_subject(pristine):
    result = ringex("audit", pristine.data)
    assert result.exit_code == 2 and "--order-id" in result.output


def test_audit_of_a_damaged_journal_names_the_first_bad_seq(node):
    first_seq = node.ends[10] - node.sizes[10] + 1
    flip_stored_batch(node, first_seq)
    result = ringex("audit", node.data, "--account", 3)
    assert result.exit_code == 1 and f"first bad seq {first_seq}:" in result.output


# ======================================================================================= drill
def test_the_drill_passes_and_reports_the_rto(pristine, tmp_path):
    result = ringex("drill", pristine.data, "--workdir", tmp_path / "restore")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "(RTO)" in out and out.rstrip().endswith("PASSED")
    assert f"rebuilt to seq {pristine.last_seq:,}" in out
    assert f"snapshot {pristine.snapshot_seqs[-1]}" in out
    assert f"state hash {pristine.final_hash.hex()}" in out
    assert "rebuilds agree" in out
    assert [line.strip() for line in out.splitlines() if "checkpoint seq" in line] == \
        [f"checkpoint seq {seq:,}: match" for seq in pristine.checkpoints]
    assert list((tmp_path / "restore").iterdir()) == []   # its restored copy is removed


def test_the_drill_can_keep_its_copy(pristine, tmp_path):
    result = ringex("drill", pristine.data, "--workdir", tmp_path / "restore", "--keep")
    assert result.exit_code == 0, result.output
    [copy] = (tmp_path / "restore").iterdir()          # a directory of its own in there
    assert f"to {copy} in" in result.stdout
    with LmdbJournal(copy / "journal", readonly=True) as journal:
        assert journal.verify() == pristine.last_seq
    assert sorted(p.name for p in (copy / "snapshots").iterdir()) == \
        sorted(p.name for p in (pristine.data / "snapshots").iterdir())


def test_the_drill_as_a_library_call(pristine, tmp_path):
    report = drill(pristine.data, tmp_path / "restore")
    assert report.passed and report.rebuilds_agree
    assert report.copy.parent == tmp_path / "restore" and report.source == pristine.data
    assert report.last_seq == pristine.last_seq and report.state_hash == pristine.final_hash
    assert report.snapshot_seq == pristine.snapshot_seqs[-1]
    assert report.replayed_commands == pristine.last_seq - pristine.snapshot_seqs[-1]
    assert [c.seq for c in report.compared] == list(pristine.checkpoints)
    assert report.rebuild_seconds >= 0 and report.copy_seconds >= 0


def test_a_drill_with_a_tampered_checkpoint_fails(node):
    record_checkpoint(node, node.snapshot_seqs[1], b"\x11" * 32)
    result = ringex("drill", node.data)
    assert result.exit_code == 1
    out = result.stdout
    assert f"checkpoint seq {node.snapshot_seqs[1]:,}: MISMATCH" in out
    assert out.rstrip().endswith("FAILED")
    assert "rebuilds agree" in out                    # the state itself is fine


def test_a_drill_with_nothing_to_compare_fails(tmp_path, flow):
    bare = build_node(tmp_path / "bare", flow, checkpoints=False)
    result = ringex("drill", bare.data)
    assert result.exit_code == 1
    assert "nothing to compare" in result.stdout
    assert result.stdout.rstrip().endswith("FAILED")
    assert not drill(bare.data, tmp_path / "w").passed


def test_a_drill_without_snapshots_rebuilds_from_the_first_command(tmp_path, flow):
    plain = build_node(tmp_path / "plain", flow, snapshots=False)
    assert plain.checkpoints == (plain.last_seq,)
    result = ringex("drill", plain.data)
    assert result.exit_code == 0, result.output
    assert "snapshot none" in result.stdout and "PASSED" in result.stdout


def test_a_drill_of_a_damaged_journal_fails_naming_the_first_bad_seq(node):
    first_seq = node.ends[25] - node.sizes[25] + 1   # before the newest snapshot
    flip_stored_batch(node, first_seq)
    result = ringex("drill", node.data)
    assert result.exit_code != 0
    assert f"first bad seq {first_seq}:" in result.output
    assert "PASSED" not in result.output


def test_the_drill_removes_only_what_it_restored(node, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("not the drill's")
    result = ringex("drill", node.data, "--workdir", workdir)
    assert result.exit_code == 0, result.output
    assert (workdir / "notes.txt").read_text() == "not the drill's"


def test_a_second_drill_into_the_same_workdir_gets_a_copy_of_its_own(pristine, tmp_path):
    workdir = tmp_path / "restore"
    assert ringex("drill", pristine.data, "--workdir", workdir, "--keep").exit_code == 0
    assert ringex("drill", pristine.data, "--workdir", workdir, "--keep").exit_code == 0
    copies = list(workdir.iterdir())
    assert len(copies) == 2
    for copy in copies:
        with LmdbJournal(copy / "journal", readonly=True) as journal:
            assert journal.verify() == pristine.last_seq


# ====================================================================================== snapshot
def test_an_offline_snapshot_matches_a_replay(node):
    result = ringex("snapshot", node.data)
    assert result.exit_code == 0, result.output
    path = node.data / "snapshots" / f"snapshot-{node.last_seq:020d}.rxs"
    assert result.stdout.strip() == (f"snapshot at seq {node.last_seq} written to {path} "
                                     f"(state hash {node.final_hash.hex()})")
    store = SnapshotStore(node.data / "snapshots")
    snapshot = store.load(path)
    with LmdbJournal(node.data / "journal", readonly=True) as journal:
        assert snapshot.journal_hash == journal.last_hash
        assert snapshot.epoch == journal.epoch
    assert snapshot.state_hash == node.final_hash and snapshot.capacities == CAPACITIES
    # the default retention (3) dropped the oldest of the node's snapshots
    assert [store.load(p).seq for p in store.paths()] == \
        [node.last_seq, *node.snapshot_seqs[:0:-1]]
    replayed = ringex("replay", node.data, "--verify")
    assert replayed.exit_code == 0, replayed.output
    assert f"replayed 0 commands from snapshot at seq {node.last_seq:,}" in replayed.stdout
    assert f"state hash {node.final_hash.hex()}" in replayed.stdout
    assert "match" in replayed.stdout


def test_an_offline_snapshot_into_another_directory(node, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    result = ringex("snapshot", node.data / "journal", "--snapshots", elsewhere)
    assert result.exit_code == 0, result.output
    [path] = SnapshotStore(elsewhere).paths()
    assert SnapshotStore(elsewhere).load(path).state_hash == node.final_hash
    assert len(SnapshotStore(node.data / "snapshots").paths()) == 3    # untouched
    written, seq, state_hash = snapshot_offline(node.data, tmp_path / "third")
    assert (seq, state_hash) == (node.last_seq, node.final_hash) and written.exists()


def test_an_offline_snapshot_of_no_journal_fails(tmp_path):
    result = ringex("snapshot", tmp_path)
    assert result.exit_code == 1 and "no journal" in result.output
    with pytest.raises(JournalError):
        snapshot_offline(tmp_path)
