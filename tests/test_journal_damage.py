"""A damaged or unusable journal gives a clear error naming what is wrong; nothing is lost.

Each test damages a real LMDB journal the way disks, operators and bugs do, then checks that
opening or reading it fails with ``JournalError`` / ``ChainError`` (naming the first sequence
number that cannot be trusted) instead of crashing or silently skipping.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from contextlib import contextmanager

import lmdb
import numpy as np
import pytest

from core import commands as C
from journal.format import HEADER, ChainError, JournalError, batch_key, encode
from journal.lmdb_journal import LmdbJournal


def stamped(first_seq: int, count: int) -> np.ndarray:
    return C.stamp(C.batch(*[C.deposit_cash(1, 1 + i) for i in range(count)]), first_seq)


@pytest.fixture
def journal_dir(tmp_path):
    """A journal of four batches, seqs 1-3, 4-6, 7-9, 10-12, closed."""
    path = tmp_path / "journal"
    with LmdbJournal(path, node_id=7) as journal:
        for first in (1, 4, 7, 10):
            journal.append(stamped(first, 3))
        journal.record_checkpoint(6, b"h" * 32)
    return path


def rewrite(path, first_seq: int, raw: bytes | None) -> None:
    """Replace (or delete) one stored batch behind the journal's back."""
    env = lmdb.open(str(path), max_dbs=4)
    db = env.open_db(b"batches")
    with env.begin(write=True) as txn:
        if raw is None:
            txn.delete(batch_key(first_seq), db=db)
        else:
            txn.put(batch_key(first_seq), raw, db=db)
    env.close()


def stored(path, first_seq: int) -> bytes:
    env = lmdb.open(str(path), max_dbs=4, readonly=True)
    db = env.open_db(b"batches", create=False)
    with env.begin() as txn:
        raw = txn.get(batch_key(first_seq), db=db)
    env.close()
    return raw


def chain_error(path) -> ChainError:
    """The ChainError from opening and verifying the journal (the last batch is checked as
    the journal opens, the rest by ``verify``)."""
    with pytest.raises(ChainError) as caught:
        with LmdbJournal(path, readonly=True) as journal:
            journal.verify()
    return caught.value


def test_everything_survives_a_reopen(journal_dir):
    with LmdbJournal(journal_dir) as journal:
        assert (journal.node_id, journal.epoch, journal.last_seq) == (7, 1, 12)
        assert journal.checkpoints() == [(6, b"h" * 32)]
        assert journal.verify() == 12


def test_flipped_bits_in_a_batch_are_detected_at_that_batch(journal_dir):
    raw = bytearray(stored(journal_dir, 4))
    raw[200] ^= 0x10
    rewrite(journal_dir, 4, bytes(raw))
    error = chain_error(journal_dir)
    assert error.seq == 4 and "hash" in error.reason


def test_a_rewritten_batch_with_a_fresh_hash_breaks_the_next_link(journal_dir):
    altered = stamped(4, 3)
    altered["amount"][1] = 10**9                          # someone "fixes" a deposit
    forged = encode(1, altered, stored(journal_dir, 4)[32:64])
    rewrite(journal_dir, 4, forged.raw)   # self-consistent, but not the batch 7 was chained to
    error = chain_error(journal_dir)
    assert error.seq == 7 and "link" in error.reason


def test_a_missing_batch_is_named(journal_dir):
    rewrite(journal_dir, 7, None)
    assert chain_error(journal_dir).seq == 10


def test_a_batch_stored_out_of_order_is_named(journal_dir):
    rewrite(journal_dir, 13, stored(journal_dir, 10))
    rewrite(journal_dir, 10, None)
    assert chain_error(journal_dir).seq == 13


def test_a_truncated_record_is_named(journal_dir):
    rewrite(journal_dir, 7, stored(journal_dir, 7)[:150])
    error = chain_error(journal_dir)
    assert error.seq == 7


def test_a_batch_of_another_format_version_is_refused(journal_dir):
    raw = bytearray(stored(journal_dir, 4))
    struct.pack_into("<H", raw, 4, 2)
    rewrite(journal_dir, 4, bytes(raw))
    error = chain_error(journal_dir)
    assert error.seq == 4 and "version" in error.reason


def test_an_epoch_that_goes_back_is_refused(journal_dir):
    with LmdbJournal(journal_dir) as journal:
        journal.set_epoch(5)
        journal.append(stamped(13, 2))
        journal.append(stamped(15, 2))
    prev_hash = HEADER.unpack_from(stored(journal_dir, 15))[7]
    rewrite(journal_dir, 15, encode(1, stamped(15, 2), prev_hash).raw)   # epoch 5 -> 1
    error = chain_error(journal_dir)
    assert error.seq == 15 and "epoch" in error.reason


def test_a_journal_of_another_format_version_will_not_open(journal_dir):
    env = lmdb.open(str(journal_dir), max_dbs=4)
    meta = env.open_db(b"meta")      # (opening a db inside a write txn would deadlock)
    with env.begin(write=True) as txn:
        txn.put(b"format", (9).to_bytes(8, "big"), db=meta)
    env.close()
    with pytest.raises(JournalError, match="format 9"):
        LmdbJournal(journal_dir)


def test_a_truncated_file_is_refused_before_lmdb_maps_it(journal_dir):
    data = journal_dir / "data.mdb"
    os.truncate(data, data.stat().st_size // 2)
    with pytest.raises(JournalError, match="truncated"):
        LmdbJournal(journal_dir, readonly=True)


def test_a_file_that_is_not_lmdb_is_refused(tmp_path):
    (tmp_path / "data.mdb").write_bytes(b"not a database at all" * 500)
    with pytest.raises(JournalError, match="not an LMDB file"):
        LmdbJournal(tmp_path)


def test_a_missing_journal_cannot_be_read(tmp_path):
    with pytest.raises(JournalError, match="no journal"):
        LmdbJournal(tmp_path / "nowhere", readonly=True)


def test_a_directory_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(JournalError, match="cannot create"):
        LmdbJournal(tmp_path / "file" / "journal")
    with pytest.raises(JournalError):
        LmdbJournal("/proc/ringex-journal")


@contextmanager
def read_only(*paths):
    """Make paths unwritable, even for root (immutable attribute); skip where impossible."""
    if os.geteuid() != 0:
        for p in paths:
            p.chmod(0o500 if p.is_dir() else 0o400)
        yield
        for p in paths:
            p.chmod(0o700 if p.is_dir() else 0o600)
        return
    if subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True).returncode:
        pytest.skip("this filesystem cannot make files immutable for root")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], capture_output=True)


def test_a_read_only_directory_cannot_hold_a_new_journal(tmp_path):
    path = tmp_path / "ro"
    path.mkdir()
    with read_only(path):
        with pytest.raises(JournalError):
            LmdbJournal(path)


def test_a_read_only_journal_opens_for_reading_but_not_for_writing(journal_dir):
    with read_only(journal_dir / "data.mdb", journal_dir / "lock.mdb", journal_dir):
        with pytest.raises(JournalError):
            LmdbJournal(journal_dir)
        with LmdbJournal(journal_dir, readonly=True) as journal:
            assert journal.verify() == 12


def test_a_full_map_grows_and_then_fails_cleanly_at_its_limit(tmp_path):
    with LmdbJournal(tmp_path / "j", map_size=1 << 20, max_map_size=1 << 22) as journal:
        appended = 0
        with pytest.raises(JournalError, match="map full"):
            while True:
                journal.append(stamped(journal.last_seq + 1, 500))
                appended += 500
        assert appended > (1 << 20) // 64           # it grew past its first size
        assert journal.last_seq == appended          # the failed batch left nothing behind
        assert journal.verify() == appended
    with LmdbJournal(tmp_path / "j", max_map_size=1 << 24) as journal:
        assert journal.last_seq == appended
        journal.append(stamped(appended + 1, 500))  # more room: the journal goes on


def test_a_disk_that_refuses_writes_loses_nothing_already_journaled(journal_dir):
    """RLIMIT_FSIZE makes the kernel refuse to grow the file, as a full disk would."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {os.getcwd()!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        from journal.lmdb_journal import LmdbJournal
        from journal.format import JournalError
        from tests.test_journal_damage import stamped
        journal = LmdbJournal({str(journal_dir)!r})
        size = (journal.path / "data.mdb").stat().st_size
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
        try:
            while True:
                journal.append(stamped(journal.last_seq + 1, 1000))
        except JournalError as e:
            print("REFUSED", journal.last_seq, e)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert "REFUSED" in out.stdout, out.stderr
    refused_at = int(out.stdout.split()[1])
    with LmdbJournal(journal_dir, readonly=True) as journal:
        assert journal.verify() == journal.last_seq == refused_at
