"""The journal contract, run against every journal implementation (DESIGN.md section 8)."""
from __future__ import annotations

import numpy as np
import pytest

from core import commands as C
from journal.format import GENESIS_HASH, ChainError, JournalError, encode
from journal.lmdb_journal import LmdbJournal
from journal.memory import MemoryJournal


def stamped(first_seq: int, count: int) -> np.ndarray:
    return C.stamp(C.batch(*[C.deposit_cash(1, 100 + i) for i in range(count)]), first_seq,
                   ts=10**18 + first_seq)


@pytest.fixture(params=["memory", "lmdb"])
def make_journal(request, tmp_path):
    made = []

    def make(name: str = "j"):
        journal = MemoryJournal() if request.param == "memory" else \
            LmdbJournal(tmp_path / name, durability="async")
        made.append(journal)
        return journal
    yield make
    for journal in made:
        journal.close()


def fill(journal, sizes=(3, 1, 5)) -> list:
    out = []
    for size in sizes:
        out.append(journal.append(stamped(journal.last_seq + 1, size)))
    return out


def test_an_empty_journal(make_journal):
    journal = make_journal()
    assert (journal.last_seq, journal.last_hash, journal.epoch) == (0, GENESIS_HASH, 1)
    assert list(journal.batches()) == []
    assert journal.verify() == 0


def test_batches_come_back_in_order_with_their_commands(make_journal):
    journal = make_journal()
    written = fill(journal)
    read = list(journal.batches())
    assert [b.first_seq for b in read] == [1, 4, 5]
    assert journal.last_seq == 9 and journal.last_hash == written[-1].hash
    for w, r in zip(written, read):
        assert r.raw == w.raw and r.commands.tobytes() == w.commands.tobytes()
    assert read[1].prev_hash == read[0].hash and read[0].prev_hash == GENESIS_HASH


def test_a_batch_must_continue_the_sequence(make_journal):
    journal = make_journal()
    fill(journal)
    with pytest.raises(JournalError):
        journal.append(stamped(11, 2))
    with pytest.raises(JournalError):
        journal.append(stamped(9, 2))
    assert journal.last_seq == 9


def test_reading_from_the_middle_and_up_to_a_seq(make_journal):
    journal = make_journal()
    fill(journal, (3, 3, 3, 3))
    assert [b.first_seq for b in journal.batches(from_seq=5)] == [4, 7, 10]
    assert [b.first_seq for b in journal.batches(from_seq=5, to_seq=8)] == [4, 7]
    assert [b.first_seq for b in journal.batches(from_seq=13)] == []
    assert journal.batch_containing(8).first_seq == 7
    assert journal.batch_containing(99) is None


def test_a_standby_takes_batches_made_elsewhere_only_when_they_link(make_journal):
    primary, standby = make_journal("p"), make_journal("s")
    written = fill(primary)
    standby.append_batch(written[0])
    with pytest.raises(ChainError):
        standby.append_batch(written[2])          # skips a batch
    standby.append_batch(written[1])
    standby.append_batch(written[2])
    assert standby.last_hash == primary.last_hash and standby.verify() == 9
    forged = encode(1, stamped(10, 2), b"\x01" * 32)
    with pytest.raises(ChainError):
        standby.append_batch(forged)              # does not link to our last batch


def test_the_epoch_only_rises_and_is_written_into_batches(make_journal):
    journal = make_journal()
    fill(journal, (2,))
    journal.set_epoch(3)
    batch = journal.append(stamped(3, 2))
    assert batch.epoch == 3 and journal.epoch == 3
    with pytest.raises(JournalError):
        journal.set_epoch(2)


def test_truncating_an_unreplicated_tail(make_journal):
    journal = make_journal()
    written = fill(journal, (2, 2, 2))
    with pytest.raises(JournalError):
        journal.truncate_after(3)                 # not a batch boundary
    assert journal.truncate_after(2) == 2
    assert journal.last_seq == 2 and journal.last_hash == written[0].hash
    assert journal.truncate_after(5) == 0
    journal.append(stamped(3, 1))                 # and the journal goes on from there
    assert journal.verify() == 3
    assert journal.truncate_after(0) == 2 and journal.last_seq == 0


def test_checkpoints_are_recorded_in_order(make_journal):
    journal = make_journal()
    fill(journal)
    journal.record_checkpoint(9, b"b" * 32)
    journal.record_checkpoint(4, b"a" * 32)
    assert journal.checkpoints() == [(4, b"a" * 32), (9, b"b" * 32)]


def test_the_configuration_is_recorded_once_and_then_enforced(make_journal):
    journal = make_journal()
    assert journal.config is None
    journal.set_config({"capacities": {"orders": 8}})
    journal.set_config({"capacities": {"orders": 8}})          # the same again is fine
    with pytest.raises(JournalError, match="replay it with its own configuration"):
        journal.set_config({"capacities": {"orders": 9}})
    assert journal.config == {"capacities": {"orders": 8}}
