"""Order flow for demo traffic: LOBSTER files and synthetic days turned into client requests.

The strongest check replays the converted requests through the real business-logic processor
on an empty venue and demands, after every LOBSTER message, that the engine's top levels equal
the orderbook row LOBSTER published, with no rejection and with exactly the traded volume of
LOBSTER's visible executions. Tests that need the LOBSTER sample folder are marked ``lobster``
and skip when it is absent; the synthetic flow and the converter's rules are tested anywhere.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cli.flow import DemoFlow
from cli.lobster import (CANCEL, DAY_END, DELETION, EXECUTION, MASS_CANCEL, MODIFY, NEW,
                         PARTIAL_CANCEL, RESYNC, SUBMISSION, BookRow, ClientIds, Converter,
                         DayFiles, Message, Request, book_row, find_days, parse_time,
                         read_day, steps)
from cli.synthetic import SyntheticSpec, synthetic_day
from core import commands as C
from core.blp import BusinessLogicProcessor
from core.config import Capacities
from core.enums import AccountType, EventKind, Side, TimeInForce

LOBSTER = Path(__file__).parent.parent.parent / "shared" / "data" / "lobster"
needs_lobster = pytest.mark.skipif(not find_days(LOBSTER), reason=f"no LOBSTER data in {LOBSTER}")
ACCOUNTS = 8
B, S = Side.BUY, Side.SELL


# ---------------------------------------------------------------- replay through the engine
def command(request: Request) -> np.ndarray:
    account = request.account + 1
    if request.action == NEW:
        return C.new_order(account, 0, request.side, request.quantity, request.price,
                           client_order_id=request.client_order_id,
                           time_in_force=request.time_in_force)
    if request.action == CANCEL:
        return C.cancel(account, client_order_id=request.client_order_id)
    if request.action == MODIFY:
        return C.modify(account, quantity=request.quantity, price=request.price,
                        client_order_id=request.client_order_id)
    raise AssertionError(f"unexpected request {request}")


class Replay:
    """One instrument on an empty kernel BLP; the book is followed from BOOK_LEVEL events."""

    def __init__(self, symbol: str, reference_price: int) -> None:
        self.blp = BusinessLogicProcessor(Capacities(instruments=1, accounts=ACCOUNTS + 1,
                                                     orders=1 << 15, positions=64,
                                                     client_order_ids=1 << 18))
        setup = [C.add_instrument(0, symbol, tick_size=100, lot_size=1,
                                  reference_price=reference_price, collar_bps=10_000)]
        for a in range(1, ACCOUNTS + 1):
            setup += [C.add_account(a, AccountType.MARGIN), C.deposit_cash(a, 10**15)]
        self.seq = 1
        self.levels: dict[tuple[int, int], int] = {}
        self.rejected: list[str] = []
        self.traded = 0
        self._run(C.batch(*setup))

    def _run(self, commands: np.ndarray) -> None:
        C.stamp(commands, self.seq)
        self.seq += len(commands)
        events = self.blp.process_view(commands)
        for e in events[events["kind"] == EventKind.BOOK_LEVEL]:
            key = (int(e["side"]), int(e["price"]))
            if e["order_count"]:
                self.levels[key] = int(e["level_quantity"])
            else:
                self.levels.pop(key, None)
        for e in events[events["kind"] == EventKind.REJECTED]:
            self.rejected.append(f"seq {int(e['seq'])} code {int(e['code'])}")
        self.traded += int(events["quantity"][events["kind"] == EventKind.TRADE].sum())

    def send(self, requests: list[Request]) -> None:
        if requests:
            self._run(C.batch(*[command(r) for r in requests]))

    def top(self, depth: int) -> BookRow:
        asks = sorted((p, q) for (s, p), q in self.levels.items() if s == S)
        bids = sorted(((p, q) for (s, p), q in self.levels.items() if s == B), reverse=True)
        return BookRow(tuple(asks[:depth]), tuple(bids[:depth]))


def replay_and_compare(symbol: str, messages: list[Message], rows: list[BookRow],
                       start_ns: int, depth: int, compare: int) -> tuple[Replay, Converter]:
    """Replay a day's requests step by step; after each, the engine's top ``compare``
    levels must equal LOBSTER's row."""
    first = rows[0]
    reference = (first.asks[0][0] + first.bids[0][0]) // 200 * 100
    replay = Replay(symbol, reference)
    converter = Converter(symbol, ClientIds(ACCOUNTS), start_ns, depth)
    for step in steps(converter, messages, rows):
        replay.send(step.requests)
        want = rows[step.last]
        assert replay.top(compare) == BookRow(want.asks[:compare], want.bids[:compare]), \
            f"after message {step.last}: engine {replay.top(compare)} LOBSTER {want}"
    assert replay.rejected == []
    replay.blp.check_integrity()
    return replay, converter


def visible_execution_volume(messages: list[Message]) -> int:
    return sum(m.size for m in messages[1:] if m.type == EXECUTION)


# ---------------------------------------------------------------- the converter's rules
def convert(messages: list[Message], rows: list[BookRow], depth: int = 1) -> list[list[Request]]:
    converter = Converter("TEST", ClientIds(4), 0, depth)
    return [step.requests for step in steps(converter, messages, rows)]


def row(ask: tuple[int, int] | None, bid: tuple[int, int] | None) -> BookRow:
    return BookRow((ask,) if ask else (), (bid,) if bid else ())


def summary(requests: list[Request]) -> list[tuple]:
    return [(r.action, r.side, r.quantity, r.price, r.time_in_force, r.origin) for r in requests]


def test_the_opening_row_seeds_the_book_and_a_submission_becomes_a_limit_order():
    messages = [Message(1, SUBMISSION, 5, 100, 1000, 1), Message(2, SUBMISSION, 9, 30, 1100, -1)]
    rows = [row((1200, 50), (1000, 100)), row((1100, 30), (1000, 100))]
    seed, submit = convert(messages, rows)
    assert summary(seed) == [("new", S, 50, 1200, TimeInForce.GTC, "seed"),
                             ("new", B, 100, 1000, TimeInForce.GTC, "seed")]
    assert summary(submit) == [("new", S, 30, 1100, TimeInForce.GTC, "submit")]
    assert submit[0].account == 9 % 4          # a LOBSTER order's account: its id mod accounts


def test_partial_cancel_lowers_the_total_and_deletion_cancels():
    messages = [Message(0, SUBMISSION, 1, 10, 1000, 1), Message(1, SUBMISSION, 7, 100, 1100, -1),
                Message(2, PARTIAL_CANCEL, 7, 40, 1100, -1), Message(3, DELETION, 7, 60, 1100, -1)]
    rows = [row(None, (1000, 10)), row((1100, 100), (1000, 10)), row((1100, 60), (1000, 10)),
            row(None, (1000, 10))]
    _, submit, reduce, delete = convert(messages, rows)
    assert summary(reduce) == [("modify", S, 60, 1100, 0, "reduce")]
    assert summary(delete) == [("cancel", S, 0, 1100, 0, "delete")]
    assert reduce[0].client_order_id == delete[0].client_order_id == submit[0].client_order_id


def test_executions_sharing_a_time_become_one_ioc_order_at_the_worst_price():
    """Two bids swept by one seller: one IOC sell for both, priced at the lower bid; the
    second level, which a level-1 file never showed, is added first (a resync)."""
    messages = [Message(0, SUBMISSION, 1, 10, 1000, 1),
                Message(5, EXECUTION, 1, 10, 1000, 1), Message(5, EXECUTION, 2, 30, 990, 1)]
    rows = [row((1100, 5), (1000, 10)), row((1100, 5), (990, 30)), row((1100, 5), (980, 70))]
    _, sweep = convert(messages, rows)
    assert summary(sweep) == [("new", B, 30, 990, TimeInForce.GTC, RESYNC),
                              ("new", S, 40, 990, TimeInForce.IOC, "execute"),
                              ("new", B, 70, 980, TimeInForce.GTC, RESYNC)]


def test_the_rest_of_an_aggressor_entering_the_book_makes_it_one_limit_order():
    messages = [Message(0, SUBMISSION, 1, 10, 1000, 1),
                Message(5, EXECUTION, 1, 10, 1000, 1), Message(5, SUBMISSION, 3, 25, 1000, -1)]
    rows = [row((1100, 5), (1000, 10)), row((1100, 5), None), row((1000, 25), None)]
    converter = Converter("TEST", ClientIds(4), 0, 1)
    out = list(steps(converter, messages, rows))
    assert [s.last for s in out] == [0, 2]
    assert summary(out[1].requests) == [("new", S, 35, 1000, TimeInForce.GTC, "execute")]
    assert converter.book.top(S, 1) == ((1000, 25),)


def test_orders_the_file_never_showed_are_resynced_from_the_next_row():
    """A deletion of an unknown order trims the book from the back of its queue; a level
    the real book no longer has is cancelled; an emptied side is emptied."""
    messages = [Message(0, SUBMISSION, 1, 10, 1000, 1), Message(1, SUBMISSION, 2, 5, 1000, 1),
                Message(2, DELETION, 77, 8, 1000, 1), Message(3, DELETION, 78, 7, 1000, 1)]
    rows = [row((1100, 5), (1000, 20)), row((1100, 5), (1000, 25)), row((1100, 5), (1000, 17)),
            row((1100, 5), None)]
    _, _, trim, empty = convert(messages, rows)
    assert summary(trim) == [("cancel", B, 0, 1000, 0, RESYNC),      # the 5 at the back
                             ("modify", B, 17, 1000, 0, RESYNC)]     # the seed's 20 -> 17
    assert summary(empty) == [("cancel", B, 0, 1000, 0, RESYNC)]


def test_deeper_rows_show_whole_sides_and_deep_levels_are_kept():
    """With 2 levels per row a side showing 2 levels may have more below (kept); one showing
    fewer has no more (a stale deeper level is cancelled)."""
    messages = [Message(0, SUBMISSION, 1, 10, 1000, 1), Message(1, DELETION, 1, 10, 1000, 1),
                Message(2, SUBMISSION, 2, 10, 1000, 1)]
    rows = [BookRow(((1100, 5),), ((1000, 10), (990, 3))),
            BookRow(((1100, 5),), ((990, 3), (970, 4))),
            BookRow(((1100, 5),), ((1000, 10),))]
    _, delete, submit = convert(messages, rows, depth=2)
    assert summary(delete)[-1] == ("new", B, 4, 970, TimeInForce.GTC, RESYNC)
    assert [r.action for r in submit] == ["new", "cancel", "cancel"]


def test_times_parse_exactly_and_empty_levels_are_dropped():
    assert parse_time("34200.18960767") == 34_200_189_607_670
    assert parse_time("34200.017459617") == 34_200_017_459_617
    assert parse_time("57599") == 57_599_000_000_000
    assert book_row([2239500, 100, -9999999999, 0, 9999999999, 0, 2231800, 7]) == \
        BookRow(((2239500, 100),), ((2231800, 7),))


def test_find_days_pairs_message_and_orderbook_files(tmp_path):
    (tmp_path / "ZZZ_2012-06-21_34200000_57600000_message_1.csv").write_text(
        "34200.5,1,7,100,1000,1\n34201,3,7,100,1000,1\n")
    (tmp_path / "ZZZ_2012-06-21_34200000_57600000_orderbook_1.csv").write_text(
        "9999999999,0,1000,100\n9999999999,0,-9999999999,0\n")
    (tmp_path / "YYY_2012-06-21_34200000_57600000_message_1.csv").write_text("")
    days = find_days(tmp_path)
    assert list(days) == ["ZZZ"]
    day = days["ZZZ"]
    assert (day.start_ns, day.levels) == (34_200 * 10**9, 1)
    messages, rows = read_day(day)
    assert messages[1] == Message(34_201 * 10**9, DELETION, 7, 100, 1000, 1)
    assert rows == [BookRow((), ((1000, 100),)), BookRow((), ())]
    assert find_days(tmp_path / "absent") == {}


# ---------------------------------------------------------------- synthetic days
def test_a_synthetic_day_is_deterministic_and_a_sane_market():
    spec = SyntheticSpec("MSFT", 305_000, messages=3_000, seed=4)
    messages, rows = synthetic_day(spec)
    assert (messages, rows) == synthetic_day(spec)
    assert messages != synthetic_day(SyntheticSpec("MSFT", 305_000, messages=3_000, seed=5))[0]
    assert len(messages) == len(rows) >= 3_000
    times = [m.time_ns for m in messages]
    assert times == sorted(times)
    kinds = Counter(m.type for m in messages)
    assert set(kinds) == {SUBMISSION, PARTIAL_CANCEL, DELETION, EXECUTION}
    assert kinds[EXECUTION] > 0.05 * len(messages)
    for r in rows:
        assert r.asks and r.bids and r.bids[0][0] < r.asks[0][0]      # never crossed or empty
        assert all(p % 100 == 0 and q > 0 for p, q in r.asks + r.bids)
    mids = [(r.asks[0][0] + r.bids[0][0]) / 2 for r in rows]
    assert max(abs(m / 305_000 - 1) for m in mids) < 0.05             # stays near reference


def test_a_converted_synthetic_day_replays_exactly_through_the_engine():
    spec = SyntheticSpec("MSFT", 305_000, messages=6_000, seed=2)
    messages, rows = synthetic_day(spec)
    replay, converter = replay_and_compare("MSFT", messages, rows, 0, spec.levels, spec.levels)
    assert replay.traded == visible_execution_volume(messages)
    # the converter knew every order but the opening ones: resyncs are few
    assert converter.counts.requests[RESYNC] < 0.05 * len(messages)


def test_a_flow_merges_symbols_in_time_and_loops_days_with_a_mass_cancel():
    flow = DemoFlow({"MSFT": 305_000, "INTC": 270_000}, folder=None, accounts=3, loop=True,
                    synthetic_messages=400)
    assert [s.kind for s in flow.sources] == ["synthetic", "synthetic"]
    requests, day_ends = [], 0
    for r in flow:
        requests.append(r)
        day_ends += r.origin == DAY_END
        if day_ends == 12:            # two days ended: 2 symbols x 3 accounts each
            break
    times = [r.time_ns for r in requests]
    assert times == sorted(times)
    assert {r.symbol for r in requests} == {"MSFT", "INTC"}
    ends = [i for i, r in enumerate(requests) if r.origin == DAY_END]
    assert all(requests[i].action == MASS_CANCEL for i in ends)
    assert ends[:6] == list(range(ends[0], ends[0] + 6))          # all at once at the day's end
    assert ends[6:] == list(range(ends[6], ends[6] + 6)) and ends[6] > ends[5] + 400
    assert requests[ends[5] + 1].origin == "seed"                   # the next day opens
    ids = Counter((r.account, r.client_order_id) for r in requests if r.action == NEW)
    assert max(ids.values()) == 1                          # never reused, even across days
    new = {(r.account, r.client_order_id) for r in requests if r.action == NEW}
    assert all((r.account, r.client_order_id) in new for r in requests
               if r.action in (CANCEL, MODIFY))
    assert flow.counts.messages[SUBMISSION] > 0


def test_a_flow_without_loop_ends_after_one_day():
    flow = DemoFlow({"MSFT": 305_000}, folder=None, synthetic_messages=300)
    requests = list(flow)
    assert requests and all(r.origin != DAY_END for r in requests)


# ---------------------------------------------------------------- LOBSTER's NASDAQ days
@pytest.mark.lobster
@needs_lobster
@pytest.mark.parametrize("symbol", ["AMZN", "GOOG"])
def test_a_nasdaq_day_replays_with_the_published_top_of_book_after_every_message(symbol):
    """The first 20,000 messages (the whole day takes ~8 s; run it by hand if in doubt)."""
    day = find_days(LOBSTER)[symbol]
    messages, rows = read_day(day)
    messages, rows = messages[:20_000], rows[:20_000]
    replay, converter = replay_and_compare(symbol, messages, rows, day.start_ns, 1, 1)
    assert replay.traded == visible_execution_volume(messages)
    counts = converter.counts
    assert counts.messages[SUBMISSION] == sum(m.type == SUBMISSION for m in messages)


@pytest.mark.lobster
@needs_lobster
@pytest.mark.parametrize("folder, compare", [("prefix_AAPL_L10_first999", 10),
                                             ("prefix_AAPL_L50_first672", 30)])
def test_deeper_nasdaq_files_replay_level_by_level(folder, compare):
    """Level-10 and level-50 prefixes. In the level-50 file one ask sits at $2,000, more than
    the widest price collar allows around $585: the engine rightly refuses it, so only the top
    30 levels are compared there."""
    day = find_days(LOBSTER / folder)["AAPL"]
    messages, rows = read_day(day)
    first = rows[0]
    reference = (first.asks[0][0] + first.bids[0][0]) // 200 * 100
    replay = Replay("AAPL", reference)
    converter = Converter("AAPL", ClientIds(ACCOUNTS), day.start_ns, day.levels)
    for step in steps(converter, messages, rows):
        replay.send(step.requests)
        want = rows[step.last]
        assert replay.top(compare) == BookRow(want.asks[:compare], want.bids[:compare])
    assert len(replay.rejected) == sum(p > 2 * reference for p, _ in rows[0].asks)
    assert replay.traded == visible_execution_volume(messages)


@pytest.mark.lobster
@needs_lobster
def test_the_demo_flow_uses_lobster_where_it_has_the_symbol():
    flow = DemoFlow({"AMZN": 2_235_600, "MSFT": 305_000}, folder=LOBSTER)
    assert [(s.symbol, s.kind) for s in flow.sources] == [("AMZN", "lobster"),
                                                         ("MSFT", "synthetic")]
    assert isinstance(flow.days["AMZN"], DayFiles)
    first = []
    for r in flow:
        first.append(r)
        if len(first) == 500:
            break
    assert {r.symbol for r in first} == {"AMZN", "MSFT"}
    assert first[0].origin == "seed"
