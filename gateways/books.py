"""Market state rebuilt from the engine's event stream: L2 books, top of book, trades, candles.

Pure logic: no sockets, no clocks. The market-data service (``gateways.market_data``) feeds
every engine batch through ``MarketState.apply`` and publishes what it reports as changed;
the client library (``gateways.market_data_client``) keeps its local books in ``L2Book``.

* ``L2Book``: price levels of one instrument, built from ``BOOK_LEVEL`` events, each the new
  total quantity and order count of one level (0 orders: the level is gone). Best first on
  both sides, in the engine ``books`` control op's shape: ``[price, quantity, orders]``.
* ``CandleBuilder``: OHLCV candles of one instrument and one interval, from ``TRADE`` events.
  Time is the event ``ts`` (engine time, assigned by the sequencer and journaled): the same
  event stream always gives the same candles. A candle covers ``[start, start + interval)``
  with ``start`` a multiple of the interval; it closes when engine time (any event's ``ts``)
  reaches its end. Intervals without trades have no candle.
* ``MarketState``: every instrument's book, quote, recent trades and candles, and one pass
  over a batch of engine events that says what changed (``Changes``).

Prices and quantities are integers throughout (ticks and lots, as in ``core``).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
from sortedcontainers import SortedDict

from core.enums import EventKind, InstrumentStatus, Side

BUY, SELL = int(Side.BUY), int(Side.SELL)


class BookError(ValueError):
    """An update that cannot describe a price level (bad side, negative sizes...)."""


@dataclass(frozen=True, slots=True)
class TopOfBook:
    """Best bid and ask with their total quantities; a price is ``None`` when its side is
    empty (its size is then 0)."""
    bid: int | None
    bid_size: int
    ask: int | None
    ask_size: int


EMPTY_TOP = TopOfBook(None, 0, None, 0)


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade print. ``seq``/``ts``: the engine sequence number and time of the command
    that caused it; ``aggressor_side``: the taker's side (1 buy, 2 sell)."""
    instrument: int
    trade_id: int
    price: int
    quantity: int
    aggressor_side: int
    seq: int
    ts: int


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise BookError(f"{name} must be an integer, not {type(value).__name__}")
    return int(value)


class L2Book:
    """The aggregated price levels of one instrument.

    ``apply`` sets one level to its new totals (the meaning of a ``BOOK_LEVEL`` event); a level
    with 0 orders is removed. ``load`` replaces the whole book (from a snapshot). The book never
    checks that it is uncrossed (``crossed`` says whether it is): it mirrors what it is told.
    """

    __slots__ = ("instrument", "symbol", "_bids", "_asks")

    def __init__(self, instrument: int = -1, symbol: str = "") -> None:
        self.instrument = instrument
        self.symbol = symbol
        self._bids: SortedDict = SortedDict()   # -price -> (quantity, orders): best first
        self._asks: SortedDict = SortedDict()   # price -> (quantity, orders): best first

    def apply(self, side: int, price: int, quantity: int, orders: int) -> None:
        """Set the level ``price`` on ``side`` (1 buy, 2 sell) to ``quantity`` and ``orders``;
        ``orders == 0`` removes it. Raises ``BookError`` for a bad side or negative sizes, or
        a level with orders but no quantity."""
        side = _check_int("side", side)
        price = _check_int("price", price)
        quantity = _check_int("quantity", quantity)
        orders = _check_int("orders", orders)
        if side == BUY:
            levels, key = self._bids, -price
        elif side == SELL:
            levels, key = self._asks, price
        else:
            raise BookError(f"side must be 1 (buy) or 2 (sell), not {side}")
        if quantity < 0 or orders < 0:
            raise BookError(f"negative level {quantity} / {orders} orders at {price}")
        if orders == 0:
            levels.pop(key, None)
        elif quantity == 0:
            raise BookError(f"level at {price} has {orders} orders but no quantity")
        else:
            levels[key] = (quantity, orders)

    def load(self, bids: list, asks: list) -> None:
        """Replace the book with ``bids`` and ``asks``, each a list of ``[price, quantity,
        orders]`` (any order). Raises ``BookError`` on a malformed level (the book is then
        left empty)."""
        self.clear()
        try:
            for side, levels in ((BUY, bids), (SELL, asks)):
                if not isinstance(levels, (list, tuple)):
                    raise BookError("levels must be a list of [price, quantity, orders]")
                for level in levels:
                    if not isinstance(level, (list, tuple)) or len(level) != 3:
                        raise BookError(f"a level is [price, quantity, orders], not {level!r}")
                    if level[2] <= 0:
                        raise BookError(f"a snapshot level needs orders: {level!r}")
                    self.apply(side, *level)
        except BookError:
            self.clear()
            raise

    def clear(self) -> None:
        """Remove every level."""
        self._bids.clear()
        self._asks.clear()

    def best_bid(self) -> tuple[int, int, int] | None:
        """``(price, quantity, orders)`` of the best bid, or None."""
        if not self._bids:
            return None
        key, (quantity, orders) = self._bids.peekitem(0)
        return -key, quantity, orders

    def best_ask(self) -> tuple[int, int, int] | None:
        """``(price, quantity, orders)`` of the best ask, or None."""
        if not self._asks:
            return None
        price, (quantity, orders) = self._asks.peekitem(0)
        return price, quantity, orders

    def top(self) -> TopOfBook:
        """Best bid and ask with their total quantities."""
        bid, ask = self.best_bid(), self.best_ask()
        return TopOfBook(bid[0] if bid else None, bid[1] if bid else 0,
                         ask[0] if ask else None, ask[1] if ask else 0)

    def bids(self, depth: int = 0) -> list[list[int]]:
        """Bid levels best (highest) first, ``[price, quantity, orders]``; ``depth`` 0: all."""
        items = self._bids.items()
        if depth:
            items = items[:depth]
        return [[-key, q, n] for key, (q, n) in items]

    def asks(self, depth: int = 0) -> list[list[int]]:
        """Ask levels best (lowest) first, ``[price, quantity, orders]``; ``depth`` 0: all."""
        items = self._asks.items()
        if depth:
            items = items[:depth]
        return [[price, q, n] for price, (q, n) in items]

    def level(self, side: int, price: int) -> tuple[int, int] | None:
        """``(quantity, orders)`` at a price, or None when there is no such level."""
        return (self._bids if side == BUY else self._asks).get(-price if side == BUY else price)

    def crossed(self) -> bool:
        """True if the best bid is at or above the best ask."""
        return bool(self._bids and self._asks and -self._bids.peekitem(0)[0]
                    >= self._asks.peekitem(0)[0])

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, L2Book):
            return NotImplemented
        return self._bids == other._bids and self._asks == other._asks

    def __repr__(self) -> str:
        return f"L2Book({self.symbol or self.instrument}, bids={self.bids(5)}, " \
               f"asks={self.asks(5)}{', ...' if len(self) > 10 else ''})"


@dataclass(slots=True)
class Candle:
    """OHLCV of one instrument over ``[start, start + interval)`` in engine time (ns).
    ``closed``: engine time has reached the end, the candle will not change again."""
    instrument: int
    interval: int
    start: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int
    closed: bool = False

    @property
    def end(self) -> int:
        """The first engine time no longer in this candle."""
        return self.start + self.interval


class CandleBuilder:
    """Candles of one instrument at one interval (nanoseconds of engine time).

    ``trade`` adds a trade at engine time ``ts``; ``advance`` moves engine time on. Both
    return the candles they closed or changed. Engine time never goes back: a ``ts`` earlier
    than the open candle's start counts as that start (the sequencer's clock is monotonic, so
    this only guards against a misbehaving source). ``history`` keeps the last closed candles.
    """

    def __init__(self, instrument: int, interval: int, history: int = 100) -> None:
        if _check_int("interval", interval) <= 0:
            raise ValueError(f"a candle interval must be positive, not {interval}")
        self.instrument = instrument
        self.interval = int(interval)
        self.current: Candle | None = None
        self.history: deque[Candle] = deque(maxlen=history)

    def advance(self, ts: int) -> Candle | None:
        """Engine time is now ``ts``: close the open candle if it has ended (returned)."""
        candle = self.current
        if candle is None or ts < candle.start + self.interval:
            return None
        candle.closed = True
        self.history.append(candle)
        self.current = None
        return candle

    def trade(self, ts: int, price: int, quantity: int) -> list[Candle]:
        """Add a trade; returns the candles touched: the one it closed (if any), then the one
        the trade went into."""
        touched = []
        closed = self.advance(ts)
        if closed is not None:
            touched.append(closed)
        candle = self.current
        if candle is None:
            start = ts - ts % self.interval
            candle = self.current = Candle(self.instrument, self.interval, start, price, price,
                                           price, price, quantity, 1)
        else:
            candle.high = max(candle.high, price)
            candle.low = min(candle.low, price)
            candle.close = price
            candle.volume += quantity
            candle.trades += 1
        touched.append(candle)
        return touched

    def recent(self) -> list[Candle]:
        """Closed candles kept (oldest first), then the open one if there is one."""
        return list(self.history) + ([self.current] if self.current is not None else [])


@dataclass(slots=True)
class Instrument:
    """One instrument's reference data and market state."""
    instrument: int
    symbol: str
    tick_size: int
    lot_size: int
    status: int = int(InstrumentStatus.TRADING)
    last_price: int | None = None
    book: L2Book = field(default=None)
    candles: list[CandleBuilder] = field(default_factory=list)
    trades: deque = field(default=None)

    def reference(self) -> dict:
        """Reference data and status as a plain map (the snapshot service's ``symbols``)."""
        return {"instrument": self.instrument, "symbol": self.symbol,
                "tick_size": self.tick_size, "lot_size": self.lot_size, "status": self.status,
                "last_price": self.last_price}


@dataclass(slots=True)
class InstrumentChanges:
    """What one pass changed for one instrument. ``levels``: ``(side, price) -> (quantity,
    orders)``, only each level's final state; ``trades``: in order; ``candles``: ``(interval,
    start) -> Candle`` for every candle opened, changed or closed (its final state);
    ``quote``: the top of book, last price or status may have changed (compare before
    publishing); ``seq``/``ts``: of the last event that touched the instrument."""
    levels: dict = field(default_factory=dict)
    trades: list = field(default_factory=list)
    candles: dict = field(default_factory=dict)
    quote: bool = False
    seq: int = 0
    ts: int = 0


@dataclass(slots=True)
class Changes:
    """What ``MarketState.apply`` changed: per instrument, plus instruments added."""
    instruments: dict[int, InstrumentChanges] = field(default_factory=dict)
    added: list[int] = field(default_factory=list)
    last_seq: int = 0
    last_ts: int = 0

    def of(self, instrument: int) -> InstrumentChanges:
        """The changes of ``instrument``, created empty on first use."""
        found = self.instruments.get(instrument)
        if found is None:
            found = self.instruments[instrument] = InstrumentChanges()
        return found


_K_TRADE = int(EventKind.TRADE)
_K_LEVEL = int(EventKind.BOOK_LEVEL)
_K_ADDED = int(EventKind.INSTRUMENT_ADDED)
_K_STATUS = int(EventKind.INSTRUMENT_STATUS_CHANGED)
_NEVER = 2**63 - 1
_MARKET = np.zeros(256, bool)           #: the event kinds market data is made of
_MARKET[[_K_TRADE, _K_LEVEL, _K_ADDED, _K_STATUS]] = True


class MarketState:
    """Every instrument's L2 book, quote, recent trades and candles.

    ``apply(events)`` makes one pass over a batch of engine events (``core.records.EVENT``)
    in order and returns the ``Changes``. Events of an instrument it does not know (one added
    before the state was loaded, which ``load_reference`` should have supplied) are counted in
    ``unknown_instrument_events`` and otherwise ignored, never raised on.
    """

    def __init__(self, candle_intervals: tuple[int, ...] = (1_000_000_000, 60_000_000_000),
                 trade_history: int = 1000, candle_history: int = 100) -> None:
        for interval in candle_intervals:
            if _check_int("interval", interval) <= 0:
                raise ValueError(f"a candle interval must be positive, not {interval}")
        self.candle_intervals = tuple(int(i) for i in candle_intervals)
        self.trade_history = trade_history
        self.candle_history = candle_history
        self.instruments: dict[int, Instrument] = {}
        self.by_symbol: dict[str, Instrument] = {}
        self.last_seq = 0
        self.last_ts = 0
        self.unknown_instrument_events = 0
        self._next_close = _NEVER         #: no open candle ends before this engine time

    # ------------------------------------------------------------ reference data and loading
    def add_instrument(self, instrument: int, symbol: str, tick_size: int, lot_size: int,
                       status: int = int(InstrumentStatus.TRADING),
                       last_price: int | None = None) -> Instrument:
        """Add (or, if known, update the reference data of) an instrument."""
        known = self.instruments.get(instrument)
        if known is not None:
            known.symbol, known.tick_size, known.lot_size = symbol, tick_size, lot_size
            known.status = status
            if last_price is not None:
                known.last_price = last_price
            self.by_symbol[symbol] = known
            return known
        state = Instrument(instrument, symbol, tick_size, lot_size, status, last_price,
                           L2Book(instrument, symbol),
                           [CandleBuilder(instrument, i, self.candle_history)
                            for i in self.candle_intervals],
                           deque(maxlen=self.trade_history))
        self.instruments[instrument] = state
        self.by_symbol[symbol] = state
        return state

    def load_reference(self, reply: dict) -> None:
        """Instruments from the engine's ``reference`` control op reply."""
        for item in reply["instruments"]:
            self.add_instrument(int(item["instrument"]), str(item["symbol"]),
                                int(item["tick_size"]), int(item["lot_size"]),
                                int(item.get("status", InstrumentStatus.TRADING)),
                                item.get("last_price") or None)

    def load_books(self, reply: dict) -> None:
        """Books from the engine's ``books`` control op reply (every level); the state is then
        at the reply's ``seq``. Raises KeyError for an instrument ``load_reference`` did not
        supply, ``BookError`` for a malformed level."""
        for item in reply["books"]:
            state = self.instruments[int(item["instrument"])]
            state.book.load(item["bids"], item["asks"])
            if item.get("last_price"):
                state.last_price = int(item["last_price"])
        self.last_seq = int(reply["seq"])

    def book(self, symbol: str) -> L2Book | None:
        """The book of ``symbol``, or None for an unknown symbol."""
        found = self.by_symbol.get(symbol)
        return found.book if found is not None else None

    # ------------------------------------------------------------ the pass
    def apply(self, events: np.ndarray) -> Changes:
        """Apply a batch of engine events, in order; return what changed."""
        changes = Changes()
        if len(events) == 0:
            return changes
        market = events[_MARKET[events["kind"]]]
        if len(market):
            self._apply_market(market, changes)
        last = events[-1]
        changes.last_seq = self.last_seq = int(last["seq"])
        self.last_ts = max(self.last_ts, int(last["ts"]))
        changes.last_ts = self.last_ts
        if self.last_ts >= self._next_close:         # engine time ended some open candles
            self._close_candles(changes)
        return changes

    def _close_candles(self, changes: Changes) -> None:
        next_close = _NEVER
        for state in self.instruments.values():
            for builder in state.candles:
                closed = builder.advance(self.last_ts)
                if closed is not None:
                    changes.of(state.instrument).candles[(closed.interval, closed.start)] = \
                        closed
                elif builder.current is not None:
                    next_close = min(next_close, builder.current.end)
        self._next_close = next_close

    def _apply_market(self, events: np.ndarray, changes: Changes) -> None:
        kinds = events["kind"].tolist()
        seqs = events["seq"].tolist()
        tss = events["ts"].tolist()
        instruments = events["instrument"].tolist()
        sides = events["side"].tolist()
        prices = events["price"].tolist()
        level_qty = events["level_quantity"].tolist()
        counts = events["order_count"].tolist()
        quantities = events["quantity"].tolist()
        trade_ids = events["trade_id"].tolist()
        aggressors = events["aggressor_side"].tolist()
        known = self.instruments
        clock = self.last_ts
        for i, kind in enumerate(kinds):
            instrument = instruments[i]
            state = known.get(instrument)
            if state is None and kind != _K_ADDED:
                self.unknown_instrument_events += 1
                continue
            if kind == _K_LEVEL:
                side, price = sides[i], prices[i]
                state.book.apply(side, price, level_qty[i], counts[i])
                touched = changes.of(instrument)
                touched.levels[(side, price)] = (level_qty[i], counts[i])
                touched.quote = True
            elif kind == _K_TRADE:
                ts, price, quantity = tss[i], prices[i], quantities[i]
                trade = Trade(instrument, trade_ids[i], price, quantity, aggressors[i], seqs[i],
                              ts)
                touched = changes.of(instrument)
                touched.trades.append(trade)
                touched.quote = True
                state.last_price = price
                state.trades.append(trade)
                clock = max(ts, clock)
                for builder in state.candles:
                    for candle in builder.trade(clock, price, quantity):
                        touched.candles[(candle.interval, candle.start)] = candle
                    if builder.current.end < self._next_close:
                        self._next_close = builder.current.end
            elif kind == _K_STATUS:
                state.status = int(events[i]["instrument_status"])
                touched = changes.of(instrument)
                touched.quote = True
            else:
                row = events[i]
                symbol = bytes(row["symbol"]).rstrip(b"\0").decode("ascii", "replace")
                self.add_instrument(instrument, symbol, int(row["tick_size"]),
                                    int(row["lot_size"]))
                changes.added.append(instrument)
                touched = changes.of(instrument)
                touched.quote = True
            touched.seq, touched.ts = seqs[i], tss[i]
