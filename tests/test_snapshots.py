"""Snapshots (journal/snapshots.py) and recovery (journal/recovery.py).

A live BLP is driven through a generated order flow; every batch is journaled into a real LMDB
journal and snapshots are taken along the way, as a node does. Recovery from a snapshot and the
journal's tail must then give exactly the state recovery from the first command gives, which
must be exactly the live engine's state at the same sequence number.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from core import commands as C
from core.blp import BusinessLogicProcessor
from core.config import Capacities
from core.records import COMMAND
from core.workload import StreamSpec, generate
from journal.format import ChainError
from journal.lmdb_journal import LmdbJournal
from journal.memory import MemoryJournal
from journal.recovery import RecoveryError, anchored, journal_capacities, recover
from journal.snapshots import (MAGIC, SnapshotError, SnapshotStore, SnapshotWriter,
                               capture, state_hash_of)

CAPACITIES = Capacities(instruments=8, accounts=64, orders=1024, positions=512,
                        client_order_ids=8192)
SPEC = StreamSpec(commands=3000, accounts=50, instruments=5, target_orders=300, seed=1234)
SNAPSHOT_AFTER_BATCHES = (6, 17, 29)   #: snapshots are taken after these batches (0-based)


def flow_of(spec: StreamSpec) -> np.ndarray:
    stream = generate(spec)
    out = np.zeros(len(stream.setup) + len(stream.main), COMMAND)
    out[:len(stream.setup)] = stream.setup
    out[len(stream.setup):] = stream.main
    return out


def batch_sizes(total: int, seed: int = 99) -> list[int]:
    rng = np.random.default_rng(seed)
    sizes, at = [], 0
    while at < total:
        size = min(int(rng.integers(1, 150)), total - at)
        sizes.append(size)
        at += size
    return sizes


@pytest.fixture(scope="module")
def flow() -> np.ndarray:
    return flow_of(SPEC)


@dataclass
class History:
    """A journal written by a live engine, its snapshots, and what the live engine saw."""
    journal: LmdbJournal
    store: SnapshotStore
    flow: np.ndarray
    sizes: list[int]
    live: dict[int, bytes] = field(default_factory=dict)   #: state hash at every batch end
    snapshots: list[Path] = field(default_factory=list)
    snapshot_seqs: list[int] = field(default_factory=list)
    final_blp: BusinessLogicProcessor | None = None

    @property
    def ends(self) -> list[int]:
        return np.cumsum(self.sizes).tolist()

    def live_hash_at(self, seq: int) -> bytes:
        """The live engine's state hash after ``seq`` (batch ends were recorded as it ran;
        inside a batch, a second engine is fed the same batches with the last one cut)."""
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
        assert blp.last_seq == seq
        return blp.state_hash()


def write_history(path: Path, flow: np.ndarray, *, snapshot_after=SNAPSHOT_AFTER_BATCHES,
                  retain: int = 10, store: SnapshotStore | None = None) -> History:
    journal = LmdbJournal(path / "journal", durability="async")
    journal.set_config({"capacities": CAPACITIES.as_dict()})
    store = store or SnapshotStore(path / "snapshots", retain=retain)
    history = History(journal, store, flow, batch_sizes(len(flow)))
    blp = BusinessLogicProcessor(CAPACITIES)
    at = 0
    for index, size in enumerate(history.sizes):
        commands = flow[at:at + size]
        journal.append(commands)
        blp.process_view(commands)
        at += size
        history.live[at] = blp.state_hash()
        if index in snapshot_after:
            arrays = capture(blp.arrays())
            history.snapshots.append(store.write(blp.last_seq, journal.epoch, journal.last_hash,
                                                 blp.state_hash(), CAPACITIES, arrays))
            history.snapshot_seqs.append(blp.last_seq)
    history.final_blp = blp
    return history


@pytest.fixture
def history(tmp_path, flow):
    made = write_history(tmp_path, flow)
    yield made
    made.journal.close()


def flip(path: Path, at: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0x40
    path.write_bytes(bytes(raw))


# ============================================================================ the snapshot file
def test_a_snapshot_round_trips_a_live_blps_arrays(tmp_path, flow):
    blp = BusinessLogicProcessor(CAPACITIES)
    blp.process(flow[:2000])
    arrays = capture(blp.arrays())
    state_hash = blp.state_hash()
    assert state_hash_of(arrays) == state_hash
    store = SnapshotStore(tmp_path / "snaps")
    path = store.write(2000, 4, b"j" * 32, state_hash, CAPACITIES, arrays)
    assert path == tmp_path / "snaps" / "snapshot-00000000000000002000.rxs"
    assert sorted(p.name for p in (tmp_path / "snaps").iterdir()) == [path.name]  # no .tmp
    loaded = store.load(path)
    assert (loaded.path, loaded.seq, loaded.epoch) == (path, 2000, 4)
    assert (loaded.journal_hash, loaded.state_hash) == (b"j" * 32, state_hash)
    assert loaded.capacities == CAPACITIES
    assert list(loaded.arrays) == list(arrays)
    for name, array in arrays.items():
        got = loaded.arrays[name]
        assert (got.dtype, got.shape) == (array.dtype, array.shape), name
        assert got.tobytes() == array.tobytes(), name
    assert state_hash_of(loaded.arrays) == state_hash
    # a BLP over the loaded arrays is the same engine: same hash, same future
    restored = BusinessLogicProcessor.from_arrays(loaded.capacities, loaded.arrays)
    assert restored.state_hash() == state_hash and restored.last_seq == 2000
    restored.check_integrity()
    assert restored.process(flow[2000:2600]).tobytes() == blp.process(flow[2000:2600]).tobytes()
    assert restored.state_hash() == blp.state_hash()


def test_a_snapshot_of_an_empty_engine_round_trips(tmp_path):
    blp = BusinessLogicProcessor(CAPACITIES)
    store = SnapshotStore(tmp_path)
    path = store.write(0, 1, bytes(32), blp.state_hash(), CAPACITIES, capture(blp.arrays()))
    loaded = store.load(path)
    assert loaded.seq == 0 and state_hash_of(loaded.arrays) == blp.state_hash()


def test_capture_is_a_private_copy(flow):
    blp = BusinessLogicProcessor(CAPACITIES)
    blp.process(flow[:500])
    arrays = capture(blp.arrays())
    before = state_hash_of(arrays)
    blp.process(flow[500:900])
    assert state_hash_of(arrays) == before != blp.state_hash()


@pytest.mark.parametrize("retain,kept", [(3, [50, 40, 30]), (1, [50]), (0, [50]),
                                         (10, [50, 40, 30, 20, 10])])
def test_only_the_newest_snapshots_are_kept(tmp_path, retain, kept):
    blp = BusinessLogicProcessor(CAPACITIES)
    arrays = capture(blp.arrays())
    store = SnapshotStore(tmp_path, retain=retain)
    for seq in (20, 10, 30, 50, 40):   # out of order: "newest" means highest seq
        store.write(seq, 1, bytes(32), blp.state_hash(), CAPACITIES, arrays)
    assert [store.load(p).seq for p in store.paths()] == kept
    assert len(list(tmp_path.iterdir())) == len(kept)


def test_an_empty_or_missing_directory_has_no_snapshot(tmp_path):
    assert SnapshotStore(tmp_path / "nowhere").paths() == []
    assert SnapshotStore(tmp_path / "nowhere").newest() is None
    assert SnapshotStore(tmp_path).newest() is None


def test_a_snapshot_directory_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("x")
    blp = BusinessLogicProcessor(CAPACITIES)
    store = SnapshotStore(tmp_path / "file" / "snapshots")
    with pytest.raises(SnapshotError, match="cannot create"):
        store.write(0, 1, bytes(32), blp.state_hash(), CAPACITIES, capture(blp.arrays()))


# ------------------------------------------------------------------------- damaged snapshots
def _other_format(path: Path) -> None:
    """A well-formed file with a valid checksum, of snapshot format 2."""
    import hashlib
    raw = path.read_bytes()
    size = int.from_bytes(raw[8:12], "little")
    header = json.loads(raw[12:12 + size])
    header["format"] = 2
    head = json.dumps(header).encode()
    body = MAGIC + len(head).to_bytes(4, "little") + head + raw[12 + size:-32]
    path.write_bytes(body + hashlib.blake2b(body, digest_size=32).digest())


DAMAGE = {
    "flipped byte in the arrays": (lambda p: flip(p, p.stat().st_size // 2), "damaged"),
    "flipped byte in the header": (lambda p: flip(p, 40), "damaged"),
    "flipped byte in the checksum": (lambda p: flip(p, p.stat().st_size - 5), "damaged"),
    "truncated to half": (lambda p: p.write_bytes(p.read_bytes()[:p.stat().st_size // 2]),
                          "damaged"),
    "truncated to 30 bytes": (lambda p: p.write_bytes(p.read_bytes()[:30]), "not a ringex"),
    "empty": (lambda p: p.write_bytes(b""), "not a ringex"),
    "another format": (_other_format, "format 2"),
    "another magic": (lambda p: p.write_bytes(b"RXSNAP09" + p.read_bytes()[8:]),
                      "not a ringex"),
    "not a snapshot at all": (lambda p: p.write_text("seq,hash\n1,abc\n" * 100),
                              "not a ringex"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_snapshot_is_refused_and_passed_over(tmp_path, flow, damage):
    damage_file, reason = DAMAGE[damage]
    blp = BusinessLogicProcessor(CAPACITIES)
    store = SnapshotStore(tmp_path)
    blp.process(flow[:300])
    good = store.write(300, 1, b"a" * 32, blp.state_hash(), CAPACITIES, capture(blp.arrays()))
    good_hash = blp.state_hash()
    blp.process(flow[300:700])
    bad = store.write(700, 1, b"b" * 32, blp.state_hash(), CAPACITIES, capture(blp.arrays()))
    damage_file(bad)
    with pytest.raises(SnapshotError, match=reason):
        store.load(bad)
    skipped = []
    newest = store.newest(on_skip=lambda path, why: skipped.append((path, why)))
    assert newest is not None and newest.path == good and newest.seq == 300
    assert state_hash_of(newest.arrays) == good_hash
    assert len(skipped) == 1 and skipped[0][0] == bad and reason in skipped[0][1]


def test_a_missing_file_cannot_be_loaded(tmp_path):
    with pytest.raises(SnapshotError, match="cannot read"):
        SnapshotStore(tmp_path).load(tmp_path / "snapshot-00000000000000000001.rxs")


def test_a_stray_file_with_a_snapshot_like_name_is_passed_over(tmp_path, flow):
    blp = BusinessLogicProcessor(CAPACITIES)
    blp.process(flow[:100])
    store = SnapshotStore(tmp_path)
    good = store.write(100, 1, b"a" * 32, blp.state_hash(), CAPACITIES, capture(blp.arrays()))
    (tmp_path / "snapshot-backup.rxs").write_bytes(good.read_bytes())
    skipped = []
    newest = store.newest(on_skip=lambda path, why: skipped.append((path, why)))
    assert newest is not None and newest.seq == 100
    assert [p.name for p, _ in skipped] == ["snapshot-backup.rxs"]


def test_newest_honours_max_seq_and_accept(tmp_path):
    blp = BusinessLogicProcessor(CAPACITIES)
    arrays = capture(blp.arrays())
    store = SnapshotStore(tmp_path, retain=5)
    for seq in (10, 20, 30):
        store.write(seq, 1, bytes([seq]) * 32, blp.state_hash(), CAPACITIES, arrays)
    skipped = []
    found = store.newest(max_seq=25, on_skip=lambda p, why: skipped.append((p.name, why)))
    assert found.seq == 20
    assert skipped == [("snapshot-00000000000000000030.rxs",
                        "is past seq 25, where this rebuild stops")]
    skipped.clear()
    found = store.newest(accept=lambda s: s.journal_hash == bytes([10]) * 32,
                         on_skip=lambda p, why: skipped.append((p.name, why)))
    assert found.seq == 10
    assert [name for name, _ in skipped] == ["snapshot-00000000000000000030.rxs",
                                             "snapshot-00000000000000000020.rxs"]
    assert all("does not belong" in why for _, why in skipped)
    assert store.newest(max_seq=5) is None


# =================================================================================== recovery
def test_recovery_from_a_snapshot_equals_recovery_from_the_start_and_the_live_engine(history):
    journal = history.journal
    last = journal.last_seq
    assert last == len(history.flow) and len(history.snapshot_seqs) == 3
    with_snapshots = recover(journal, history.store)
    from_start = recover(journal, None)
    live = history.live[last]
    assert with_snapshots.blp.state_hash() == from_start.blp.state_hash() == live
    assert with_snapshots.snapshot.seq == history.snapshot_seqs[-1]
    assert with_snapshots.snapshot.path == history.snapshots[-1]
    assert with_snapshots.replayed_commands == last - history.snapshot_seqs[-1] > 0
    assert with_snapshots.skipped_snapshots == []
    assert from_start.snapshot is None and from_start.replayed_commands == last
    assert with_snapshots.last_seq == from_start.last_seq == last
    # the whole state, not only its hash
    assert with_snapshots.blp.canonical_state().digest() == \
        history.final_blp.canonical_state().digest()
    with_snapshots.blp.check_integrity()


def recovery_points(history: History) -> dict[str, int]:
    ends = history.ends
    s1, s2, s3 = history.snapshot_seqs
    last = ends[-1]
    after_s2 = ends[ends.index(s2) + 1]          # end of the batch after the 2nd snapshot
    return {
        "before any snapshot, inside a batch": ends[2] + 1,
        "the end of the first batch": ends[0],
        "the first command": 1,
        "exactly a snapshot": s1,
        "one past a snapshot (inside the next batch)": s2 + 1,
        "inside the batch after a snapshot": (s2 + after_s2) // 2,
        "one before a snapshot": s3 - 1,
        "between snapshots, at a batch end": ends[ends.index(s2) + 3],
        "the last snapshot": s3,
        "one before the end": last - 1,
        "the end": last,
    }


def test_recovery_to_a_sequence_number_matches_the_live_engine_there(history):
    journal = history.journal
    for name, seq in recovery_points(history).items():
        with_snapshots = recover(journal, history.store, to_seq=seq)
        from_start = recover(journal, None, to_seq=seq)
        usable = [s for s in history.snapshot_seqs if s <= seq]
        expected_snapshot = max(usable) if usable else None
        got_snapshot = with_snapshots.snapshot.seq if with_snapshots.snapshot else None
        assert got_snapshot == expected_snapshot, name
        assert with_snapshots.last_seq == from_start.last_seq == seq, name
        assert with_snapshots.replayed_commands == seq - (expected_snapshot or 0), name
        assert with_snapshots.blp.state_hash() == from_start.blp.state_hash() == \
            history.live_hash_at(seq), name
        ahead = [path for path, why in with_snapshots.skipped_snapshots]
        assert ahead == [p for p, s in zip(history.snapshots, history.snapshot_seqs)
                         if s > seq][::-1], name


def test_to_seq_beyond_the_end_stops_at_the_end(history):
    recovered = recover(history.journal, history.store, to_seq=10**9)
    assert recovered.last_seq == history.journal.last_seq
    assert recovered.blp.state_hash() == history.live[history.journal.last_seq]


def test_to_seq_zero_is_the_empty_state(history):
    recovered = recover(history.journal, history.store, to_seq=0)
    assert recovered.last_seq == 0 and recovered.replayed_commands == 0
    assert recovered.blp.state_hash() == BusinessLogicProcessor(CAPACITIES).state_hash()


def test_a_recovered_engine_goes_on_exactly_as_the_live_one_did(history):
    """The BLP adopts the snapshot's arrays (no copy): it must be a working engine."""
    seq = history.snapshot_seqs[1] + 7
    recovered = recover(history.journal, history.store, to_seq=seq)
    assert recovered.snapshot.seq == history.snapshot_seqs[1]
    twin = BusinessLogicProcessor(CAPACITIES)
    twin.process(history.flow[:seq])
    rest = history.flow[seq:]
    assert recovered.blp.process(rest).tobytes() == twin.process(rest).tobytes()
    assert recovered.blp.state_hash() == history.live[len(history.flow)]
    # and the snapshot file it came from is untouched
    again = history.store.load(history.snapshots[1])
    assert state_hash_of(again.arrays) == again.state_hash == history.live[again.seq]


def test_recovery_callbacks_see_the_start_and_every_replayed_batch(history):
    started, progress = [], []
    seq = history.snapshot_seqs[0] + 10
    recovered = recover(history.journal, history.store, to_seq=seq,
                        on_start=lambda blp: started.append(blp.last_seq),
                        on_batch=lambda batch, n: progress.append((batch.first_seq, n)))
    assert started == [history.snapshot_seqs[0]]
    assert progress[0][0] == history.snapshot_seqs[0] + 1
    assert progress[-1][1] == recovered.replayed_commands == 10


def _foreign_snapshot(tmp_path: Path, sizes_from: History, at_batch: int,
                      into: SnapshotStore) -> tuple[Path, int]:
    """A snapshot taken from another node's journal (another order flow, same batch sizes,
    so it sits at one of our batch boundaries), written into our snapshot directory."""
    other_flow = flow_of(StreamSpec(**{**SPEC.__dict__, "seed": SPEC.seed + 1}))
    end = sizes_from.ends[at_batch]
    with LmdbJournal(tmp_path / "other" / "journal", durability="async") as other:
        blp = BusinessLogicProcessor(CAPACITIES)
        at = 0
        for size in sizes_from.sizes[:at_batch + 1]:
            other.append(other_flow[at:at + size])
            blp.process_view(other_flow[at:at + size])
            at += size
        assert other.last_seq == end
        path = into.write(end, other.epoch, other.last_hash, blp.state_hash(), CAPACITIES,
                          capture(blp.arrays()))
        assert blp.state_hash() != sizes_from.live[end]   # it would be the wrong state
    return path, end


def test_a_snapshot_from_another_journal_is_not_used(tmp_path, history):
    at_batch = history.ends.index(history.snapshot_seqs[-1]) + 5
    foreign, seq = _foreign_snapshot(tmp_path, history, at_batch, history.store)
    assert seq > history.snapshot_seqs[-1]
    assert not anchored(history.journal, history.store.load(foreign))
    recovered = recover(history.journal, history.store)
    assert recovered.snapshot.seq == history.snapshot_seqs[-1]
    assert [(p, "does not belong" in why) for p, why in recovered.skipped_snapshots] == \
        [(foreign, True)]
    assert recovered.blp.state_hash() == history.live[history.journal.last_seq]


def test_a_snapshot_not_at_a_batch_boundary_is_not_used(history):
    seq = history.snapshot_seqs[-1] + 3          # inside the next batch
    blp = BusinessLogicProcessor(CAPACITIES)
    blp.process(history.flow[:seq])
    containing = history.journal.batch_containing(seq)
    assert containing.last_seq != seq
    odd = history.store.write(seq, 1, containing.hash, blp.state_hash(), CAPACITIES,
                              capture(blp.arrays()))
    recovered = recover(history.journal, history.store)
    assert recovered.snapshot.seq == history.snapshot_seqs[-1]
    assert [p for p, _ in recovered.skipped_snapshots] == [odd]
    assert recovered.blp.state_hash() == history.live[history.journal.last_seq]


def test_a_snapshot_of_other_capacities_is_not_used(history):
    seq = history.snapshot_seqs[-1]
    bigger = Capacities(instruments=8, accounts=64, orders=2048, positions=512,
                        client_order_ids=8192)
    blp = BusinessLogicProcessor(bigger)
    blp.process(history.flow[:history.ends[-2]])
    batch = history.journal.batch_containing(history.ends[-2])
    other = history.store.write(batch.last_seq, 1, batch.hash, blp.state_hash(), bigger,
                                capture(blp.arrays()))
    recovered = recover(history.journal, history.store)
    assert recovered.snapshot.seq == seq
    assert [p for p, _ in recovered.skipped_snapshots] == [other]
    assert recovered.blp.capacities == CAPACITIES
    assert recovered.blp.state_hash() == history.live[history.journal.last_seq]


def test_a_damaged_newest_snapshot_falls_back_to_an_older_one(history):
    flip(history.snapshots[-1], history.snapshots[-1].stat().st_size // 3)
    recovered = recover(history.journal, history.store)
    assert recovered.snapshot.seq == history.snapshot_seqs[-2]
    assert recovered.skipped_snapshots[0][0] == history.snapshots[-1]
    assert "damaged" in recovered.skipped_snapshots[0][1]
    assert recovered.replayed_commands == history.journal.last_seq - history.snapshot_seqs[-2]
    assert recovered.blp.state_hash() == history.live[history.journal.last_seq]


def test_with_every_snapshot_unusable_recovery_replays_everything(history):
    for path in history.snapshots:
        path.write_bytes(path.read_bytes()[:1000])
    recovered = recover(history.journal, history.store)
    assert recovered.snapshot is None
    assert recovered.replayed_commands == history.journal.last_seq
    assert len(recovered.skipped_snapshots) == 3
    assert recovered.blp.state_hash() == history.live[history.journal.last_seq]


def test_snapshots_from_a_longer_history_are_not_used_after_a_truncation(history):
    """A former primary drops its unreplicated tail; its snapshots beyond it must go unused,
    and a new history written over the same seqs must not pick them up either."""
    journal = history.journal
    keep = history.ends[history.ends.index(history.snapshot_seqs[1]) + 2]
    journal.truncate_after(keep)
    recovered = recover(journal, history.store)
    assert recovered.snapshot.seq == history.snapshot_seqs[1]
    assert recovered.blp.state_hash() == history.live[keep]
    # different commands now continue the journal past the old last snapshot
    count = history.snapshot_seqs[2] - keep
    replacement = C.stamp(C.batch(*[C.deposit_cash(3, 1 + i) for i in range(count)]),
                          keep + 1, ts=int(history.flow["ts"][keep]))
    journal.append(replacement)
    assert journal.last_seq == history.snapshot_seqs[2]
    recovered = recover(journal, history.store)
    assert recovered.snapshot.seq == history.snapshot_seqs[1]
    assert "does not belong" in recovered.skipped_snapshots[0][1]
    from_start = recover(journal, None)
    assert recovered.blp.state_hash() == from_start.blp.state_hash()


def test_a_journal_without_a_recorded_configuration_cannot_be_recovered(flow):
    journal = MemoryJournal()
    journal.append(flow[:50])
    with pytest.raises(RecoveryError, match="no engine configuration"):
        recover(journal)
    with pytest.raises(RecoveryError):
        journal_capacities(journal)
    other = MemoryJournal()
    other.set_config({"durability": "async"})          # a config, but no capacities
    with pytest.raises(RecoveryError):
        recover(other)


def test_recovery_stops_at_damage_in_the_tail_naming_the_first_bad_seq(history):
    """LMDB is trusted for storage; the hash chain is what catches a changed batch."""
    journal, victim = damaged_memory_journal(history)
    with pytest.raises(ChainError) as caught:
        recover(journal)
    assert caught.value.seq == victim
    with pytest.raises(ChainError) as caught:
        recover(journal, to_seq=victim + 5)
    assert caught.value.seq == victim
    earlier = history.ends[4] - 1                     # two batches before the damage
    assert recover(journal, to_seq=earlier).blp.state_hash() == history.live_hash_at(earlier)


def damaged_memory_journal(history: History) -> tuple[MemoryJournal, int]:
    journal = MemoryJournal()
    journal.set_config({"capacities": CAPACITIES.as_dict()})
    at = 0
    for size in history.sizes[:10]:
        journal.append(history.flow[at:at + size])
        at += size
    victim = history.ends[5] + 1                       # first seq of the 7th batch
    raw = bytearray(journal._raw[victim])
    raw[200] ^= 1
    journal._raw[victim] = bytes(raw)
    return journal, victim


def test_recovery_up_to_just_before_a_damaged_batch_works(history):
    journal, victim = damaged_memory_journal(history)
    recovered = recover(journal, to_seq=victim - 1)
    assert recovered.blp.state_hash() == history.live[victim - 1]


# ============================================================================ background writer
def test_the_writer_hashes_and_writes_in_the_background(tmp_path, flow):
    store = SnapshotStore(tmp_path)
    writer = SnapshotWriter(store)
    blp = BusinessLogicProcessor(CAPACITIES)
    blp.process(flow[:1500])
    expected = blp.state_hash()
    threads = []
    release = threading.Event()
    real_write = store.write

    def slow_write(*args, **kwargs):
        threads.append(threading.current_thread().name)
        assert release.wait(30)
        return real_write(*args, **kwargs)
    store.write = slow_write
    future = writer.submit(1500, 2, b"h" * 32, CAPACITIES, capture(blp.arrays()))
    assert future is not None
    blp.process(flow[1500:2500])                     # the engine goes on meanwhile
    assert writer.submit(2500, 2, b"i" * 32, CAPACITIES, capture(blp.arrays())) is None  # busy
    assert not future.done()
    release.set()
    path, state_hash = future.result(timeout=30)
    assert threads == ["snapshot-1500"]
    assert state_hash == expected != blp.state_hash()
    loaded = store.load(path)
    assert (loaded.seq, loaded.epoch, loaded.journal_hash) == (1500, 2, b"h" * 32)
    assert loaded.state_hash == expected == state_hash_of(loaded.arrays)
    # no longer busy
    second = writer.submit(2500, 2, b"i" * 32, CAPACITIES, capture(blp.arrays()))
    assert second.result(timeout=30)[1] == blp.state_hash()
    assert [store.load(p).seq for p in store.paths()] == [2500, 1500]


def test_a_failed_background_write_is_reported_through_the_future(tmp_path):
    (tmp_path / "file").write_text("x")
    writer = SnapshotWriter(SnapshotStore(tmp_path / "file" / "snapshots"))
    blp = BusinessLogicProcessor(CAPACITIES)
    future = writer.submit(0, 1, bytes(32), CAPACITIES, capture(blp.arrays()))
    with pytest.raises(SnapshotError):
        future.result(timeout=30)
    writer.store = SnapshotStore(tmp_path / "ok")
    again = writer.submit(0, 1, bytes(32), CAPACITIES, capture(blp.arrays()))
    assert again is not None                         # the failure released the writer
    path, state_hash = again.result(timeout=30)
    assert path.exists() and state_hash == blp.state_hash()

