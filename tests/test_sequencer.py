"""The sequencer (core/sequencer.py) and the pipeline that wires it to the journal, the BLP and
the output stages (core/pipeline.py).

The sequencer is driven by a fake clock, so batching by size and by time is exact. The pipeline
runs with a real in-memory journal and a real BLP over a generated order flow.
"""
from __future__ import annotations

import numpy as np
import pytest

from core import commands as C
from core.blp import BusinessLogicProcessor
from core.config import Capacities
from core.enums import EventKind
from core.pipeline import Pipeline, PipelineStopped, events_of
from core.records import COMMAND, EVENT
from core.sequencer import Cut, Request, Sequencer
from core.workload import StreamSpec, generate
from journal.format import JournalError
from journal.memory import MemoryJournal

CAPACITIES = Capacities(instruments=8, accounts=64, orders=1024, positions=512,
                        client_order_ids=8192)


class FakeClock:
    """A settable clock (nanoseconds) that counts how often it is read."""

    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now
        self.reads = 0

    def __call__(self) -> int:
        self.reads += 1
        return self.now


def deposits(n: int, first_amount: int = 1) -> np.ndarray:
    """``n`` unstamped commands that differ from each other (the amount says which is which)."""
    return C.batch(*[C.deposit_cash(1, first_amount + i) for i in range(n)])


@pytest.fixture(scope="module")
def stream():
    return generate(StreamSpec(commands=3000, accounts=50, instruments=5, target_orders=300,
                               seed=31))


@pytest.fixture(scope="module")
def flow(stream) -> np.ndarray:
    """Setup and main stream as one COMMAND array (seq 1 .. n)."""
    out = np.zeros(len(stream.setup) + len(stream.main), COMMAND)
    out[:len(stream.setup)] = stream.setup
    out[len(stream.setup):] = stream.main
    return out


# ================================================================================ the sequencer
def test_sequence_numbers_are_contiguous_across_cuts():
    seq = Sequencer(next_seq=41, max_batch=8, clock=FakeClock())
    cuts = []
    for size in (3, 1, 8, 2, 5):
        seq.offer("p", size, deposits(size))
        cuts.append(seq.cut())
    all_seqs = np.concatenate([c.commands["seq"] for c in cuts])
    assert all_seqs.tolist() == list(range(41, 41 + 19))
    assert [(c.first_seq, c.last_seq) for c in cuts] == \
        [(41, 43), (44, 44), (45, 52), (53, 54), (55, 59)]
    assert seq.next_seq == 60


def test_several_requests_share_one_batch_in_arrival_order():
    seq = Sequencer(max_batch=16, clock=FakeClock())
    seq.offer("a", 1, deposits(2, 100))
    seq.offer("b", 7, deposits(3, 200))
    seq.offer("a", 2, deposits(1, 300))
    cut = seq.cut()
    assert cut.commands["seq"].tolist() == [1, 2, 3, 4, 5, 6]
    assert cut.commands["amount"].tolist() == [100, 101, 200, 201, 202, 300]
    assert cut.requests == (Request("a", 1, 0, 2), Request("b", 7, 2, 3),
                            Request("a", 2, 5, 1))


def test_commands_are_copied_unchanged_except_seq_and_ts(flow):
    """Every field of every kind survives (ADD_INSTRUMENT's symbol overlaps integer fields)."""
    original = flow[:200].copy()
    offered = flow[:200].copy()
    offered["seq"] = 0
    offered["ts"] = 0
    seq = Sequencer(next_seq=1, max_batch=256, clock=FakeClock(5))
    seq.offer("p", 1, offered)
    cut = seq.cut()
    assert offered["seq"].tolist() == [0] * 200 and offered["ts"].tolist() == [0] * 200
    got = cut.commands.copy()
    got["ts"] = original["ts"]
    assert got.tobytes() == original.tobytes()
    assert cut.commands["symbol"][:5].tolist() == original["symbol"][:5].tolist()
    assert set(cut.commands["ts"].tolist()) == {5}


def test_a_cut_is_a_copy_that_later_requests_do_not_touch():
    seq = Sequencer(max_batch=4, clock=FakeClock())
    seq.offer("p", 1, deposits(4, 10))
    first = seq.cut()
    before = first.commands.tobytes()
    seq.offer("p", 2, deposits(4, 50))
    seq.cut()
    assert first.commands.tobytes() == before
    assert first.commands["amount"].tolist() == [10, 11, 12, 13]


def test_timestamps_follow_the_clock_and_never_decrease():
    clock = FakeClock(1_000)
    seq = Sequencer(max_batch=64, clock=clock)
    stamps = []
    for now in (1_000, 1_500, 1_200, 900, 2_000, 1_999, 2_000, 5_000):
        clock.now = now
        seq.offer("p", now, deposits(2))
        stamps += seq.cut().commands["ts"].tolist()
    assert stamps == [1_000] * 2 + [1_500] * 6 + [2_000] * 6 + [5_000] * 2
    assert np.all(np.diff(stamps) >= 0)
    assert seq.last_ts == 5_000


def test_timestamps_do_not_go_back_across_a_restart():
    """A node restarts with ``last_ts`` from its journal; a clock behind it is not trusted."""
    clock = FakeClock(10_000)
    seq = Sequencer(next_seq=101, last_ts=50_000, clock=clock)
    seq.offer("p", 1, deposits(3))
    assert seq.cut().commands["ts"].tolist() == [50_000] * 3
    clock.now = 60_000
    seq.offer("p", 2, deposits(1))
    assert seq.cut().commands["ts"].tolist() == [60_000]


def test_one_request_shares_one_timestamp():
    clock = FakeClock(7_000)
    seq = Sequencer(max_batch=64, clock=clock)
    seq.offer("p", 1, deposits(5))
    clock.now = 8_000
    seq.offer("p", 2, deposits(2))
    assert seq.cut().commands["ts"].tolist() == [7_000] * 5 + [8_000] * 2


def test_a_full_batch_is_due_at_once():
    clock = FakeClock(1_000)
    seq = Sequencer(max_batch=4, max_delay_ns=1_000_000, clock=clock)
    seq.offer("p", 1, deposits(3))
    assert not seq.due()
    seq.offer("p", 2, deposits(1))
    assert seq.room == 0 and seq.due()
    assert len(seq.cut().commands) == 4
    assert not seq.due() and seq.pending == 0 and seq.room == 4


def test_a_partial_batch_is_due_when_its_oldest_command_has_waited_max_delay():
    clock = FakeClock(10_000)
    seq = Sequencer(max_batch=100, max_delay_ns=200, clock=clock)
    assert not seq.due() and seq.wait_ns() is None   # nothing pending: never due
    seq.offer("p", 1, deposits(1))
    assert not seq.due() and seq.wait_ns() == 200
    clock.now = 10_150
    seq.offer("p", 2, deposits(1))   # a younger command does not restart the wait
    assert not seq.due() and seq.wait_ns() == 50
    clock.now = 10_199
    assert not seq.due() and seq.wait_ns() == 1
    clock.now = 10_200
    assert seq.due() and seq.wait_ns() == 0
    clock.now = 99_999
    assert seq.due() and seq.wait_ns() == 0
    cut = seq.cut()
    assert len(cut.commands) == 2
    seq.offer("p", 3, deposits(1))   # the next batch's wait starts from its own first arrival
    assert not seq.due() and seq.wait_ns() == 200


def test_an_empty_sequencer_is_never_due_however_long_it_waits():
    clock = FakeClock(0)
    seq = Sequencer(max_batch=2, max_delay_ns=1, clock=clock)
    clock.now = 10**15
    assert not seq.due() and seq.wait_ns() is None


def test_a_clock_that_stepped_back_does_not_hold_a_partial_batch():
    """The node starts its sequencer with ``last_ts`` from the journal. If the wall clock is
    behind it (a restore on another machine, an NTP step back), the first command is stamped
    ``last_ts``, but it still arrived at the clock's ``now`` and has waited ``max_delay_ns``
    once the clock has advanced by that much."""
    clock = FakeClock(1_000_000)
    seq = Sequencer(last_ts=1_000_000 + 3_600 * 10**9, max_batch=100, max_delay_ns=200_000,
                    clock=clock)        # the journal's last stamp is an hour ahead of us
    seq.offer("p", 1, deposits(1))
    clock.now += 200_000               # it has waited max_delay_ns
    assert seq.wait_ns() == 0
    assert seq.due()


def test_room_shrinks_with_each_request_and_resets_at_a_cut():
    seq = Sequencer(max_batch=10, clock=FakeClock())
    assert seq.room == 10 and seq.pending == 0
    seq.offer("p", 1, deposits(3))
    assert seq.room == 7 and seq.pending == 3
    seq.offer("p", 2, deposits(7))
    assert seq.room == 0 and seq.pending == 10
    seq.cut()
    assert seq.room == 10 and seq.pending == 0


@pytest.mark.parametrize("size", [0, 8])
def test_a_request_that_does_not_fit_is_refused_and_changes_nothing(size):
    clock = FakeClock(500)
    seq = Sequencer(max_batch=10, clock=clock)
    seq.offer("p", 1, deposits(3))
    clock.now = 900
    with pytest.raises(ValueError, match="does not fit"):
        seq.offer("q", 2, deposits(size))
    assert (seq.pending, seq.room, seq.last_ts) == (3, 7, 500)
    seq.offer("q", 3, deposits(7))          # exactly the room left is fine
    cut = seq.cut()
    assert cut.requests == (Request("p", 1, 0, 3), Request("q", 3, 3, 7))
    assert cut.commands["seq"].tolist() == list(range(1, 11))


def test_records_of_another_dtype_are_refused():
    seq = Sequencer(max_batch=10, clock=FakeClock())
    with pytest.raises(TypeError):
        seq.offer("p", 1, np.zeros(2, EVENT))
    with pytest.raises(TypeError):
        seq.offer("p", 1, np.zeros(2, np.int64))
    with pytest.raises(TypeError):
        seq.offer("p", 1, np.zeros(2, COMMAND).view(np.uint8))
    assert seq.pending == 0 and seq.room == 10


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError):
        Sequencer(max_batch=0)


# ================================================================================ the pipeline
class Recorder:
    """An output stage that logs what it saw (events copied: they are valid only during the
    call) and the state of journal and BLP at that moment."""

    def __init__(self, name: str, log: list, journal, blp) -> None:
        self.name, self.log, self.journal, self.blp = name, log, journal, blp
        self.seen: list[tuple[Cut, np.ndarray]] = []

    def on_batch(self, cut: Cut, events: np.ndarray) -> None:
        self.log.append((self.name, cut.first_seq, self.journal.last_seq, self.blp.last_seq))
        self.seen.append((cut, events.copy()))


class SpyJournal(MemoryJournal):
    """A memory journal that logs each append (and what the BLP had applied at that moment),
    and can be told to fail."""

    def __init__(self, log: list, blp_holder: list) -> None:
        super().__init__()
        self.log = log
        self.blp_holder = blp_holder
        self.fail_at_call: int | None = None
        self.calls = 0

    def append(self, commands):
        self.calls += 1
        blp = self.blp_holder[0]
        self.log.append(("journal", int(commands["seq"][0]), self.last_seq, blp.last_seq))
        if self.calls == self.fail_at_call:
            raise JournalError("disk full: nothing of this write was stored")
        return super().append(commands)


def make_pipeline(max_batch: int = 64, max_delay_ns: int = 1_000):
    log: list = []
    holder: list = []
    journal = SpyJournal(log, holder)
    blp = BusinessLogicProcessor(CAPACITIES)
    holder.append(blp)
    clock = FakeClock(1_000_000)
    outputs = [Recorder("first", log, journal, blp), Recorder("second", log, journal, blp)]
    pipeline = Pipeline(Sequencer(max_batch=max_batch, max_delay_ns=max_delay_ns, clock=clock),
                        journal, blp, outputs)
    return pipeline, journal, blp, outputs, log, clock


def test_a_batch_is_journaled_then_applied_then_published_to_each_stage_in_order(flow):
    pipeline, journal, blp, outputs, log, _ = make_pipeline()
    pipeline.offer("gw", 1, flow[:10].copy())
    pipeline.offer("gw", 2, flow[10:25].copy())
    assert log == [] and journal.last_seq == 0 and blp.last_seq == 0   # nothing before a cut
    assert pipeline.flush() == 25
    # journal sees it before the BLP has applied it; each stage after both, first then second
    assert log == [("journal", 1, 0, 0), ("first", 1, 25, 25), ("second", 1, 25, 25)]
    pipeline.offer("gw", 3, flow[25:30].copy())
    assert pipeline.flush() == 5
    assert log[3:] == [("journal", 26, 25, 25), ("first", 26, 30, 30), ("second", 26, 30, 30)]
    assert pipeline.flush() == 0 and len(log) == 6     # nothing pending: nothing happens
    assert journal.verify() == 30
    journaled = np.concatenate([b.commands["seq"] for b in journal.batches()])
    assert journaled.tolist() == list(range(1, 31))
    # both stages saw the same cuts and the same events
    (cut_a, ev_a), (cut_b, ev_b) = outputs[0].seen[0], outputs[1].seen[0]
    assert cut_a is cut_b and ev_a.tobytes() == ev_b.tobytes()


def test_the_events_published_are_the_blps_events_for_the_journaled_commands(flow):
    pipeline, journal, blp, outputs, _, _ = make_pipeline(max_batch=128)
    at = 0
    for size in (100, 28, 50, 77, 1, 128):
        pipeline.offer("gw", at, flow[at:at + size].copy())
        pipeline.flush()
        at += size
    twin = BusinessLogicProcessor(CAPACITIES)
    for batch, (cut, events) in zip(journal.batches(), outputs[0].seen):
        assert batch.commands.tobytes() == cut.commands.tobytes()
        assert twin.process(batch.commands).tobytes() == events.tobytes()
    assert twin.state_hash() == blp.state_hash()


def test_events_of_slices_each_requests_events_exactly(flow):
    sizes = [1, 17, 3, 60, 2, 120, 9, 250]            # 462 commands, 8 requests, one batch
    pipeline, _, _, outputs, _, _ = make_pipeline(max_batch=512)
    at = 0
    for i, size in enumerate(sizes):
        pipeline.offer(f"producer-{i % 3}", 1000 + i, flow[at:at + size].copy())
        at += size
    pipeline.flush()
    cut, events = outputs[0].seen[0]
    assert [r.producer for r in cut.requests] == [f"producer-{i % 3}" for i in range(8)]
    assert [r.request_id for r in cut.requests] == [1000 + i for i in range(8)]
    assert [r.count for r in cut.requests] == sizes
    assert [r.offset for r in cut.requests] == np.cumsum([0] + sizes[:-1]).tolist()
    pieces = []
    for index, request in enumerate(cut.requests):
        mine = events_of(cut, events, index)
        first = cut.first_seq + request.offset
        assert len(mine) >= request.count                # every command has an event
        assert set(mine["seq"].tolist()) == set(range(first, first + request.count))
        pieces.append(mine.tobytes())
    assert b"".join(pieces) == events.tobytes()          # nothing lost, nothing twice
    kinds = set(events["kind"].tolist())
    assert {EventKind.TRADE, EventKind.BOOK_LEVEL} & kinds   # a non-trivial batch


def test_a_request_that_does_not_fit_flushes_the_pending_batch_first(flow):
    pipeline, journal, _, outputs, _, _ = make_pipeline(max_batch=10)
    pipeline.offer("gw", 1, flow[:6].copy())
    pipeline.offer("gw", 2, flow[6:11].copy())          # 5 > room 4: the 6 go out first
    assert journal.last_seq == 6 and pipeline.sequencer.pending == 5
    with pytest.raises(ValueError):
        pipeline.offer("gw", 3, flow[11:22].copy())      # larger than any batch
    assert journal.last_seq == 11 and pipeline.sequencer.pending == 0
    assert pipeline.stopped is None                      # a bad request is not a failure
    pipeline.offer("gw", 4, flow[11:13].copy())
    pipeline.flush()
    assert journal.verify() == 13
    assert [c.first_seq for c, _ in outputs[0].seen] == [1, 7, 12]


def test_flush_due_cuts_by_time_and_by_size(flow):
    pipeline, journal, _, _, _, clock = make_pipeline(max_batch=8, max_delay_ns=1_000)
    pipeline.offer("gw", 1, flow[:3].copy())
    assert pipeline.flush_due() == 0 and journal.last_seq == 0
    clock.now += 999
    assert pipeline.flush_due() == 0
    clock.now += 1
    assert pipeline.flush_due() == 3 and journal.last_seq == 3
    pipeline.offer("gw", 2, flow[3:11].copy())           # full at once
    assert pipeline.flush_due() == 8 and journal.last_seq == 11


def test_a_whole_flow_through_the_pipeline_matches_a_blp_fed_directly(flow):
    """Many producers, requests of varied sizes, batches cut by size and by time."""
    pipeline, journal, blp, outputs, _, clock = make_pipeline(max_batch=64, max_delay_ns=500)
    rng = np.random.default_rng(5)
    at, request = 0, 0
    while at < len(flow):
        size = min(int(rng.integers(1, 40)), len(flow) - at)
        pipeline.offer(int(rng.integers(0, 4)), request, flow[at:at + size].copy())
        at += size
        request += 1
        clock.now += int(rng.integers(0, 300))
        pipeline.flush_due()
    pipeline.flush()
    assert journal.verify() == len(flow) == blp.last_seq
    direct = BusinessLogicProcessor(CAPACITIES)
    direct.process(flow)
    assert blp.state_hash() == direct.state_hash()
    assert len(outputs[0].seen) == len(list(journal.batches()))
    sizes = [len(c.commands) for c, _ in outputs[0].seen]
    assert max(sizes) <= 64 and any(s < 40 for s in sizes)   # some were cut by time


def test_a_journal_failure_stops_the_pipeline_before_anything_is_applied(flow):
    pipeline, journal, blp, outputs, log, _ = make_pipeline()
    pipeline.offer("gw", 1, flow[:20].copy())
    pipeline.flush()
    hash_before = blp.state_hash()
    journal.fail_at_call = 2
    pipeline.offer("gw", 2, flow[20:30].copy())
    with pytest.raises(JournalError, match="disk full"):
        pipeline.flush()
    assert isinstance(pipeline.stopped, JournalError)
    assert journal.last_seq == 20 and blp.last_seq == 20      # nothing of it applied
    assert blp.state_hash() == hash_before
    assert [len(o.seen) for o in outputs] == [1, 1]          # no stage saw the failed batch
    assert log[-1][0] == "journal"
    with pytest.raises(PipelineStopped, match="disk full"):
        pipeline.offer("gw", 3, flow[20:21].copy())
    assert pipeline.sequencer.pending == 0
    assert pipeline.flush() == 0 and pipeline.flush_due() == 0
    assert blp.last_seq == 20 and [len(o.seen) for o in outputs] == [1, 1]


class RingStage:
    """An output stage that copies each batch's events into a preallocated EVENT buffer (what
    a market-data publisher or a drop copy does)."""

    def __init__(self) -> None:
        self.ring = np.zeros(1 << 15, EVENT)
        self.copied: list[bytes] = []

    def on_batch(self, cut: Cut, events: np.ndarray) -> None:
        self.ring[:len(events)] = events
        self.copied.append(self.ring[:len(events)].tobytes())


def test_output_stages_receive_event_records_even_after_a_large_batch(flow):
    ring = RingStage()
    blp = BusinessLogicProcessor(CAPACITIES)
    journal = MemoryJournal()
    pipeline = Pipeline(Sequencer(max_batch=4096, clock=FakeClock()), journal, blp, [ring])
    twin = BusinessLogicProcessor(CAPACITIES)
    pipeline.offer("gw", 1, flow[:3000].copy())       # > 4096 events
    pipeline.flush()
    pipeline.offer("gw", 2, flow[3000:3010].copy())   # a small batch afterwards
    pipeline.flush()
    expected = [twin.process(batch.commands).tobytes() for batch in journal.batches()]
    assert len(expected[0]) // EVENT.itemsize > 4096
    assert ring.copied == expected
