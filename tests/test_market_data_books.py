"""Market state from engine events (``gateways.books``): L2 books, top of book, trades, candles.

The strongest check runs the real BLP in process on a random order flow and demands, after
every batch, that the books rebuilt from the BOOK_LEVEL events equal the engine's own books
(the ``books`` control op's answer over the BLP's canonical state).
"""
from __future__ import annotations

import numpy as np
import pytest

from core import commands as C
from core.blp import BusinessLogicProcessor
from core.config import Capacities
from core.enums import EventKind, InstrumentStatus, Side
from core.records import EVENT
from gateways.books import BookError, CandleBuilder, L2Book, MarketState, TopOfBook
from replication import queries

from .md_processes import RandomFlow

S = 1_000_000_000


def event(kind: EventKind, seq: int = 1, ts: int = 0, **fields) -> np.ndarray:
    out = np.zeros(1, EVENT)
    out["kind"], out["seq"], out["ts"] = kind, seq, ts
    for name, value in fields.items():
        out[name] = value
    return out


def level(side, price, quantity, orders, instrument=0, seq=1, ts=0):
    return event(EventKind.BOOK_LEVEL, seq, ts, instrument=instrument, side=side, price=price,
                 level_quantity=quantity, order_count=orders)


def trade(price, quantity, ts, instrument=0, seq=1, trade_id=1, aggressor=Side.BUY):
    return event(EventKind.TRADE, seq, ts, instrument=instrument, price=price,
                 quantity=quantity, trade_id=trade_id, aggressor_side=aggressor)


# ---------------------------------------------------------------- L2Book
def test_levels_are_set_to_their_new_totals_and_removed_at_zero_orders():
    book = L2Book(0, "ACME")
    book.apply(Side.BUY, 99, 10, 1)
    book.apply(Side.BUY, 100, 5, 2)
    book.apply(Side.BUY, 98, 7, 1)
    book.apply(Side.SELL, 103, 4, 1)
    book.apply(Side.SELL, 101, 6, 3)
    assert book.bids() == [[100, 5, 2], [99, 10, 1], [98, 7, 1]]
    assert book.asks() == [[101, 6, 3], [103, 4, 1]]
    assert book.top() == TopOfBook(100, 5, 101, 6)
    book.apply(Side.BUY, 100, 3, 1)                   # a new total, not a delta
    book.apply(Side.SELL, 101, 0, 0)                  # gone
    assert book.top() == TopOfBook(100, 3, 103, 4)
    assert book.bids(2) == [[100, 3, 1], [99, 10, 1]] and book.asks(1) == [[103, 4, 1]]
    assert book.level(Side.BUY, 99) == (10, 1) and book.level(Side.SELL, 101) is None
    book.apply(Side.SELL, 555, 0, 0)                  # removing an absent level: no-op
    assert len(book) == 4 and not book.crossed()
    book.apply(Side.SELL, 100, 1, 1)
    assert book.crossed()


def test_an_empty_side_has_no_price_and_size_zero():
    book = L2Book()
    assert book.top() == TopOfBook(None, 0, None, 0)
    assert book.best_bid() is None and book.best_ask() is None
    book.apply(Side.SELL, 10, 1, 1)
    assert book.top() == TopOfBook(None, 0, 10, 1)


@pytest.mark.parametrize("args, message", [
    ((3, 100, 1, 1), "side"),
    ((Side.BUY, 100, -1, 1), "negative"),
    ((Side.BUY, 100, 1, -1), "negative"),
    ((Side.BUY, 100, 0, 2), "no quantity"),
    ((Side.BUY, 100.5, 1, 1), "integer"),
    ((Side.BUY, "100", 1, 1), "integer"),
    ((Side.BUY, 100, True, 1), "integer"),
])
def test_bad_updates_are_refused_with_a_clear_error_and_change_nothing(args, message):
    book = L2Book()
    book.apply(Side.BUY, 100, 5, 1)
    with pytest.raises(BookError, match=message):
        book.apply(*args)
    assert book.bids() == [[100, 5, 1]]


def test_load_replaces_the_book_and_a_bad_snapshot_leaves_it_empty():
    book = L2Book()
    book.apply(Side.BUY, 1, 1, 1)
    book.load([[99, 3, 1], [100, 2, 1]], [[101, 4, 2]])
    assert book.bids() == [[100, 2, 1], [99, 3, 1]] and book.asks() == [[101, 4, 2]]
    other = L2Book()
    other.load(book.bids(), book.asks())
    assert other == book
    for bids, asks in (([[99, 3]], []), ([[99, 3, 0]], []), ("x", []), ([], [["a", 1, 1]])):
        with pytest.raises(BookError):
            book.load(bids, asks)
        assert len(book) == 0


# ---------------------------------------------------------------- candles
def test_candles_are_ohlcv_per_interval_of_engine_time_and_close_when_time_passes():
    builder = CandleBuilder(0, 10 * S)
    first = builder.trade(3 * S, 100, 5)
    assert [(c.start, c.open, c.high, c.low, c.close, c.volume, c.trades, c.closed)
            for c in first] == [(0, 100, 100, 100, 100, 5, 1, False)]
    builder.trade(4 * S, 104, 1)
    builder.trade(9 * S, 98, 2)
    c = builder.current
    assert (c.open, c.high, c.low, c.close, c.volume, c.trades) == (100, 104, 98, 98, 8, 3)
    assert builder.advance(9 * S + 999) is None              # still inside [0, 10 s)
    touched = builder.trade(25 * S, 101, 4)                  # 10-20 s had no trade: no candle
    assert [(t.start, t.closed) for t in touched] == [(0, True), (20 * S, False)]
    assert touched[0].close == 98 and touched[1].open == 101
    closed = builder.advance(30 * S)
    assert closed.start == 20 * S and closed.closed and builder.current is None
    assert [c.start for c in builder.recent()] == [0, 20 * S]


def test_candle_time_never_goes_back():
    builder = CandleBuilder(0, 10 * S)
    builder.trade(15 * S, 100, 1)
    touched = builder.trade(2 * S, 90, 1)                    # earlier ts: counts as now
    assert len(touched) == 1 and touched[0].start == 10 * S and touched[0].low == 90
    with pytest.raises(ValueError):
        CandleBuilder(0, 0)


# ---------------------------------------------------------------- MarketState
def make_state(*intervals: int) -> MarketState:
    state = MarketState(intervals or (10 * S,))
    state.add_instrument(0, "ACME", 1, 1)
    state.add_instrument(1, "BOLT", 1, 1)
    return state


def test_one_pass_reports_final_levels_trades_quotes_and_candles_per_instrument():
    state = make_state(10 * S, 60 * S)
    events = np.concatenate([
        level(Side.SELL, 101, 10, 1, seq=1, ts=1 * S),
        level(Side.SELL, 101, 14, 2, seq=2, ts=2 * S),
        trade(101, 4, ts=3 * S, seq=3, trade_id=7),
        level(Side.SELL, 101, 10, 1, seq=3, ts=3 * S),
        level(Side.BUY, 50, 1, 1, instrument=1, seq=4, ts=4 * S),
        event(EventKind.CASH_MOVED, seq=5, ts=5 * S, account=1),
    ]).astype(EVENT)
    changes = state.apply(events)
    acme, bolt = changes.instruments[0], changes.instruments[1]
    assert acme.levels == {(Side.SELL, 101): (10, 1)}            # final state only
    assert [(t.trade_id, t.price, t.quantity, t.seq, t.ts) for t in acme.trades] == \
        [(7, 101, 4, 3, 3 * S)]
    assert acme.quote and (acme.seq, acme.ts) == (3, 3 * S)
    assert sorted(acme.candles) == [(10 * S, 0), (60 * S, 0)]
    assert bolt.levels == {(Side.BUY, 50): (1, 1)} and not bolt.trades
    assert (changes.last_seq, changes.last_ts) == (5, 5 * S)
    assert state.instruments[0].last_price == 101
    assert state.book("ACME").top() == TopOfBook(None, 0, 101, 10)
    assert [t.trade_id for t in state.instruments[0].trades] == [7]

    later = state.apply(event(EventKind.CASH_MOVED, seq=6, ts=12 * S))   # time passes
    closed = later.instruments[0].candles[(10 * S, 0)]
    assert closed.closed and closed.volume == 4 and state.instruments[0].candles[0].current is None
    assert 1 not in later.instruments               # BOLT never traded: no candle to close
    assert later.instruments[0].seq == 0          # touched by time, not by an event


def test_instrument_added_and_status_events_update_the_reference_data():
    state = MarketState((S,))
    added = event(EventKind.INSTRUMENT_ADDED, seq=1, instrument=3, symbol=b"NEWCO",
                  tick_size=5, lot_size=10)
    changes = state.apply(added)
    assert changes.added == [3]
    assert state.by_symbol["NEWCO"].tick_size == 5 and state.by_symbol["NEWCO"].lot_size == 10
    halted = event(EventKind.INSTRUMENT_STATUS_CHANGED, seq=2, instrument=3,
                   instrument_status=InstrumentStatus.HALTED)
    assert state.apply(halted).instruments[3].quote
    assert state.by_symbol["NEWCO"].status == InstrumentStatus.HALTED


def test_events_of_unknown_instruments_are_counted_not_raised():
    state = MarketState((S,))
    changes = state.apply(level(Side.BUY, 10, 1, 1, instrument=5))
    assert not changes.instruments and state.unknown_instrument_events == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_books_rebuilt_from_blp_events_equal_the_engines_books_after_every_batch(seed):
    flow = RandomFlow(seed, instruments=3)
    blp = BusinessLogicProcessor(Capacities(instruments=4, accounts=16, orders=1 << 12,
                                            positions=64, client_order_ids=1 << 14))
    state = MarketState((S,))
    seq = 1
    first = blp.process(C.stamp(flow.setup(), seq, ts=10 * S, ts_step=1000))
    seq += len(flow.setup())
    state.load_reference(queries.reference(blp.canonical_state(), {}))
    state.apply(first)
    trades = 0
    volume = {i: 0 for i in flow.instruments}
    for step in range(60):
        commands = flow.batch(50)
        events = blp.process(C.stamp(commands, seq, ts=(11 + step) * S, ts_step=1000))
        seq += len(commands)
        changes = state.apply(events)
        trades += sum(len(c.trades) for c in changes.instruments.values())
        printed = events[events["kind"] == EventKind.TRADE]
        for instrument, quantity in zip(printed["instrument"].tolist(),
                                        printed["quantity"].tolist()):
            volume[instrument] += quantity
        engine = queries.books(blp.canonical_state(), {})["books"]
        for item in engine:
            book = state.instruments[item["instrument"]].book
            assert book.bids() == item["bids"] and book.asks() == item["asks"], step
            assert not book.crossed()
            assert state.instruments[item["instrument"]].last_price == (item["last_price"]
                                                                        or None)
    assert trades > 100                 # the flow really trades
    blp.check_integrity()
    for instrument, traded in volume.items():         # every trade is in one candle
        candles = state.instruments[instrument].candles[0].recent()
        assert sum(c.volume for c in candles) == traded
        assert all(a.end <= b.start for a, b in zip(candles, candles[1:]))
