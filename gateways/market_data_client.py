"""Market-data and drop-copy clients: subscribe, keep books in sync, never miss a gap.

Synchronous::

    from gateways.market_data_client import MarketDataClient, Trade

    with MarketDataClient("tcp://127.0.0.1:7101", "tcp://127.0.0.1:7102") as md:
        md.subscribe("ACME")                     # quote, trades, depth, candles
        md.wait_synced("ACME")
        for update in md.updates(timeout=5):     # stops after 5 s without any update
            if isinstance(update, Trade):
                print(update.price, update.quantity)
        print(md.book("ACME").bids(5), md.quote("ACME"))

asyncio: ``AsyncMarketDataClient`` has the same methods, awaitable (``async for update in
md.updates()``). Drop copy: ``DropCopyClient`` / ``AsyncDropCopyClient`` yield every
``ExecutionReport`` once, in order.

How a book stays right (the zguide Clone pattern, ``docs/market-data.md``): ``subscribe``
subscribes first, then asks the snapshot service for the symbol's state (book at engine seq S,
each channel's topic sequence T); messages that arrive meanwhile are buffered; then those with
topic_seq > T are applied in order. Whenever a topic skips a number, a heartbeat shows a message
the client never got, or the service's session changes, the client resyncs the symbol the same
way, reports it (``Synced``), and recovers the trades it missed from the snapshot's recent
trades (or says they are lost: ``TradesLost``). The client's books therefore equal the
service's, which equal the engine's.

The protocol logic lives in sans-I/O classes (``MarketDataSession``, ``DropCopySession``: bytes
in, updates and requests out); the clients only move bytes. Bad messages from the network are
counted in ``bad_messages`` and dropped, never raised.
"""
from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import AsyncIterator, Iterator

import msgpack
import zmq
import zmq.asyncio

from . import md_protocol as P
from .books import BookError, Candle, L2Book

ALL_CHANNELS = P.CHANNELS
MAX_BUFFER = 100_000          #: messages buffered per symbol while a snapshot is awaited


# ---------------------------------------------------------------- what clients hand out
@dataclass(frozen=True, slots=True)
class Trade:
    """A trade print of ``symbol``; ``aggressor_side`` 1 buy, 2 sell; ``seq``/``ts``: engine
    sequence number and time of the command that caused it."""
    symbol: str
    trade_id: int
    price: int
    quantity: int
    aggressor_side: int
    seq: int
    ts: int


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book: a price is None when its side is empty; ``last_price`` None before the
    first trade; ``status`` 1 trading, 2 halted."""
    symbol: str
    bid: int | None
    bid_size: int
    ask: int | None
    ask_size: int
    last_price: int | None
    status: int
    seq: int
    ts: int


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """Levels that changed (already applied to the client's ``book(symbol)``): each
    ``(side, price, quantity, orders)``, orders 0 meaning the level is gone."""
    symbol: str
    levels: tuple
    seq: int
    ts: int


@dataclass(frozen=True, slots=True)
class CandleUpdate:
    """A candle opened, changed or closed (``candle.closed``)."""
    symbol: str
    candle: Candle
    seq: int


@dataclass(frozen=True, slots=True)
class Synced:
    """The symbol's state was (re)loaded from a snapshot at engine ``seq``. ``reason``:
    ``subscribed``, ``gap`` (a message was missed), ``session`` (the service restarted or
    rebuilt)."""
    symbol: str
    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class TradesLost:
    """Trades of ``symbol`` were missed and are no longer in the service's recent trades:
    the trade messages with topic sequence ``first..last`` (of ``session``) are gone.
    ``last`` is 0 when unknown (the service's session changed)."""
    symbol: str
    session: int
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class SubscriptionError:
    """The service refused a symbol (unknown symbol); the subscription was dropped."""
    symbol: str
    message: str


Update = Trade | Quote | BookUpdate | CandleUpdate | Synced | TradesLost | SubscriptionError


# ---------------------------------------------------------------- sans-I/O market data
@dataclass
class _Symbol:
    symbol: str
    channels: frozenset[int]
    book: L2Book
    session: int = 0
    expected: list = field(default_factory=lambda: [0, 0, 0, 0])   #: next topic_seq; 0: none
    syncing: bool = False
    request_id: int = 0
    requested_at: float = 0.0
    reason: str = "subscribed"
    buffer: list = field(default_factory=list)
    overflowed: bool = False
    quote: Quote | None = None
    candles: dict = field(default_factory=dict)      #: interval -> latest Candle
    instrument: int = -1
    trades_synced: bool = False     #: expected[TRADES] counts trades delivered in ``session``


class MarketDataSession:
    """The market-data protocol without I/O.

    Feed it every message (``on_message(frames)``) and every snapshot-service reply
    (``on_reply(body)``); it returns updates. ``subscribe`` returns the topics to subscribe;
    ``take_requests`` the request bodies to send to the snapshot service; ``tick(now)``
    re-sends requests unanswered for ``request_timeout`` seconds.
    """

    def __init__(self, request_timeout: float = 2.0) -> None:
        self.symbols: dict[str, _Symbol] = {}
        self.request_timeout = request_timeout
        self.dead_sessions: set[int] = set()
        self.gaps = 0
        self.resyncs = 0
        self.bad_messages = 0
        self.last_heartbeat = 0.0
        self._ids = itertools.count(1)
        self._outbox: list[bytes] = []

    # ------------------------------------------------------------ subscriptions
    def subscribe(self, symbol: str, channels=ALL_CHANNELS) -> list[bytes]:
        """Start following ``symbol`` on ``channels`` (names from CHANNELS); returns the topics
        to subscribe to. Raises ValueError for a bad symbol or channel."""
        if not isinstance(symbol, str) or not symbol or " " in symbol or \
                not symbol.isascii() or not symbol.isprintable():
            raise ValueError(f"a symbol is printable ASCII without spaces, not {symbol!r}")
        wanted = frozenset(P.CHANNELS.index(c) if c in P.CHANNELS else
                           _bad_channel(c) for c in channels)
        if not wanted:
            raise ValueError("subscribe to at least one channel")
        known = self.symbols.get(symbol)
        new = sorted(wanted - known.channels) if known else sorted(wanted)
        if known:
            known.channels = known.channels | wanted
        else:
            self.symbols[symbol] = _Symbol(symbol, wanted, L2Book(symbol=symbol))
        self._resync(self.symbols[symbol], "subscribed")
        return [P.topic(symbol, c) for c in new]

    def unsubscribe(self, symbol: str) -> list[bytes]:
        """Stop following ``symbol``; returns the topics to unsubscribe from."""
        state = self.symbols.pop(symbol, None)
        return [P.topic(symbol, c) for c in sorted(state.channels)] if state else []

    def synced(self, symbol: str) -> bool:
        """True once ``symbol``'s state is loaded and no resync is under way."""
        state = self.symbols.get(symbol)
        return state is not None and state.session != 0 and not state.syncing

    def take_requests(self) -> list[bytes]:
        """Request bodies to send to the snapshot service (each once)."""
        out, self._outbox = self._outbox, []
        return out

    def tick(self, now: float) -> None:
        """Re-send snapshot requests unanswered for ``request_timeout`` seconds."""
        for state in self.symbols.values():
            if state.syncing and now - state.requested_at > self.request_timeout:
                self._request(state, now)

    def _resync(self, state: _Symbol, reason: str) -> None:
        if not state.syncing:
            state.syncing = True
            state.reason = reason
            state.buffer = []
            state.overflowed = False
            if reason != "subscribed":
                self.resyncs += 1
            self._request(state, time.monotonic())

    def _request(self, state: _Symbol, now: float) -> None:
        state.request_id = next(self._ids)
        state.requested_at = now
        self._outbox.append(msgpack.packb({"v": P.VERSION, "op": "snapshot",
                                           "symbol": state.symbol, "id": state.request_id}))

    # ------------------------------------------------------------ incoming
    def on_message(self, frames: list[bytes]) -> list[Update]:
        """One market-data message (topic and body frames); the updates it makes."""
        try:
            topic, kind, session, topic_seq, seq, ts, payload = P.decode(frames)
            if kind == P.MsgKind.HEARTBEAT:
                return self._heartbeat(session, payload)
            symbol, channel = P.split_topic(topic)
            if P.CHANNEL_KIND[channel] != kind:
                raise P.WireError(f"a {kind.name} message on a {P.CHANNELS[channel]} topic")
        except P.WireError:
            self.bad_messages += 1
            return []
        state = self.symbols.get(symbol)
        if state is None or channel not in state.channels:
            return []
        out: list[Update] = []
        self._take(state, (channel, session, topic_seq, seq, ts, payload), out)
        return out

    def _take(self, state: _Symbol, message: tuple, out: list[Update]) -> None:
        channel, session, topic_seq, seq, ts, payload = message
        if state.syncing:
            if len(state.buffer) < MAX_BUFFER:
                state.buffer.append(message)
            else:
                state.overflowed = True
            return
        if session != state.session:
            if session in self.dead_sessions:
                return
            self._resync(state, "session")
            state.buffer.append(message)
            return
        expected = state.expected[channel]
        if topic_seq < expected:
            return                                      # had it already
        if topic_seq > expected:
            self.gaps += 1
            self._resync(state, "gap")
            state.buffer.append(message)
            return
        try:
            self._apply(state, channel, seq, ts, payload, out)
        except (BookError, TypeError, ValueError, IndexError):
            self.bad_messages += 1
            self._resync(state, "gap")
            return
        state.expected[channel] = expected + 1

    def _apply(self, state: _Symbol, channel: int, seq: int, ts: int, payload,
               out: list[Update]) -> None:
        symbol = state.symbol
        if channel == P.TRADES:
            for trade_id, price, quantity, side, trade_seq, trade_ts in payload:
                out.append(Trade(symbol, trade_id, price, quantity, side, trade_seq, trade_ts))
        elif channel == P.DEPTH:
            levels = tuple(tuple(level) for level in payload)
            for side, price, quantity, orders in levels:
                state.book.apply(side, price, quantity, orders)
            out.append(BookUpdate(symbol, levels, seq, ts))
        elif channel == P.QUOTE:
            state.quote = Quote(symbol, *_quote_fields(payload), seq, ts)
            out.append(state.quote)
        else:
            for row in payload:
                candle = _candle(state.instrument, row)
                state.candles[candle.interval] = candle
                out.append(CandleUpdate(symbol, candle, seq))

    def _heartbeat(self, session: int, payload) -> list[Update]:
        self.last_heartbeat = time.monotonic()
        if not isinstance(payload, dict):
            self.bad_messages += 1
            return []
        for state in self.symbols.values():
            if state.syncing:
                continue
            if session != state.session:
                if session not in self.dead_sessions:
                    self._resync(state, "session")
                continue
            seqs = payload.get(state.symbol)
            if not isinstance(seqs, list) or len(seqs) < 4:
                continue
            if any(isinstance(seqs[c], int) and seqs[c] >= state.expected[c]
                   for c in state.channels):
                self.gaps += 1                          # the last message(s) never came
                self._resync(state, "gap")
        return []

    def on_reply(self, body: bytes) -> list[Update]:
        """A snapshot-service reply (body frame)."""
        try:
            reply = msgpack.unpackb(body, raw=False, strict_map_key=False)
            request_id = reply.get("id")
        except (ValueError, AttributeError, msgpack.UnpackException):
            self.bad_messages += 1
            return []
        state = next((s for s in self.symbols.values()
                      if s.syncing and s.request_id == request_id), None)
        if state is None:
            return []                                   # stale: superseded or unsubscribed
        error = reply.get("error")
        if error == "unknown_symbol":
            self.symbols.pop(state.symbol, None)
            return [SubscriptionError(state.symbol, str(reply.get("message")))]
        if error is not None:
            state.requested_at = time.monotonic() - self.request_timeout + 0.2
            return []                                   # not ready: ask again shortly
        try:
            return self._load(state, reply)
        except (BookError, KeyError, TypeError, ValueError, IndexError):
            self.bad_messages += 1
            state.requested_at = 0.0                    # ask again at the next tick
            return []

    def _load(self, state: _Symbol, reply: dict) -> list[Update]:
        session, topics = reply["session"], reply["topics"]
        if not isinstance(session, int) or not isinstance(topics, list) or len(topics) < 4:
            raise ValueError("malformed snapshot")
        out: list[Update] = []
        if state.trades_synced and session == state.session:
            out.extend(self._missed_trades(state, reply))
        elif state.session and session != state.session:
            self.dead_sessions.add(state.session)
        state.book.load(reply["bids"], reply["asks"])
        state.trades_synced = P.TRADES in state.channels
        state.instrument = reply["instrument"]
        state.session = session
        state.expected = [t + 1 for t in topics[:4]]
        state.quote = Quote(state.symbol, *_quote_fields(reply["quote"]), reply["seq"],
                            reply["ts"])
        state.candles = {}
        for row in reply["candles"]:
            candle = _candle(state.instrument, row)
            state.candles[candle.interval] = candle
        state.syncing = False
        out.insert(0, Synced(state.symbol, reply["seq"], state.reason))
        if P.QUOTE in state.channels:
            out.append(state.quote)
        buffered, overflowed = state.buffer, state.overflowed
        state.buffer = []
        if overflowed:
            self._resync(state, "gap")
            return out
        for message in buffered:
            self._take(state, message, out)
        return out

    def _missed_trades(self, state: _Symbol, reply: dict) -> list[Update]:
        """Same session: the trades after the last trades message applied, from the
        snapshot's recent trades; TradesLost for any that are no longer there."""
        after = state.expected[P.TRADES] - 1
        last = reply["topics"][P.TRADES]
        if last <= after:
            return []
        recent = [row for row in reply["trades"] if row[0] > after]
        out: list[Update] = []
        oldest = recent[0][0] if recent else last + 1
        if oldest > after + 1:
            out.append(TradesLost(state.symbol, state.session, after + 1, oldest - 1))
        for _, trade_id, price, quantity, side, seq, ts in recent:
            out.append(Trade(state.symbol, trade_id, price, quantity, side, seq, ts))
        return out

    def book(self, symbol: str) -> L2Book:
        """The local book of a subscribed symbol (KeyError if not subscribed)."""
        return self.symbols[symbol].book


def _bad_channel(name) -> int:
    raise ValueError(f"unknown channel {name!r}; channels are {', '.join(P.CHANNELS)}")


def _quote_fields(payload) -> tuple:
    bid, bid_size, ask, ask_size, last_price, status = payload[:6]
    for value in (bid_size, ask_size, status):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("malformed quote")
    return bid, bid_size, ask, ask_size, last_price, status


def _candle(instrument: int, row) -> Candle:
    interval, start, open_, high, low, close, volume, trades, closed = row[:9]
    return Candle(instrument, interval, start, open_, high, low, close, volume, trades,
                  bool(closed))


# ---------------------------------------------------------------- sans-I/O drop copy
@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """One drop-copy report. ``number``: its place in the session's report sequence;
    ``kind``: a ``ReportKind``; ``fields``: the kind's fields (``md_protocol.REPORT_FIELDS``),
    also readable as ``report["leaves"]``. ``order_id`` is None for MASS_CANCELLED."""
    session: int
    number: int
    kind: P.ReportKind
    seq: int
    ts: int
    account: int
    instrument: int
    order_id: int | None
    fields: dict

    def __getitem__(self, name: str) -> int:
        return self.fields[name]


@dataclass(frozen=True, slots=True)
class ReportsLost:
    """Reports that will never be delivered. Within a session: report numbers
    ``first..last`` (no longer held for replay). A ``LOST`` report from the service says the
    engine events of seqs ``first_seq..last_seq`` have no reports (it rebuilt from the
    engine's state); then ``first``/``last`` are 0."""
    session: int
    first: int
    last: int
    first_seq: int = 0
    last_seq: int = 0


@dataclass(frozen=True, slots=True)
class SessionChanged:
    """The service started a new report sequence (it restarted or rebuilt); reports of the
    old session after ``last_number`` were not seen."""
    old_session: int
    new_session: int
    last_number: int


DropCopyUpdate = ExecutionReport | ReportsLost | SessionChanged


def decode_report(session: int, number: int, row: list) -> ExecutionReport | ReportsLost:
    """A report array as sent on the wire; raises ValueError when malformed."""
    try:
        kind = P.ReportKind(row[0])
        if kind == P.ReportKind.LOST:
            return ReportsLost(session, 0, 0, row[1], row[2])
        names = P.REPORT_FIELDS[kind]
        values = row[6:6 + len(names)]
        if len(values) != len(names):
            raise ValueError(f"a {kind.name} report has {len(names)} fields")
        return ExecutionReport(session, number, kind, row[1], row[2], row[3], row[4], row[5],
                               dict(zip(names, values)))
    except (TypeError, IndexError, KeyError) as e:
        raise ValueError(f"malformed report: {e}") from None


class DropCopySession:
    """The drop-copy protocol without I/O: every report once, in order, or a notice saying
    which were lost. ``start``: ``"live"`` (from the first report seen) or ``"oldest"``
    (first replay what the service still holds of its current session); ``resume``:
    ``(session, next_number)`` to carry on where an earlier consumer stopped.

    Continuity: a message whose first report number is past ``next`` (or a heartbeat naming a
    report not seen) makes the session ask the snapshot service for the reports from ``next``
    on (``drop_copy`` op, page by page), buffering what arrives meanwhile. Reports the service
    no longer holds become one ``ReportsLost``; a new service session, a ``SessionChanged``
    followed by that session's reports from its first."""

    def __init__(self, start: str = "live", resume: tuple[int, int] | None = None,
                 request_timeout: float = 2.0, page: int = 10_000) -> None:
        if start not in ("live", "oldest"):
            raise ValueError("start is 'live' or 'oldest'")
        self.start = start
        self.session, self.next = resume if resume else (0, 0)
        self.request_timeout = request_timeout
        self.page = page
        self.syncing = False
        self.buffer: list = []
        self.request_id = 0
        self.requested_at = 0.0
        self.dead_sessions: set[int] = set()
        self.gaps = 0
        self.bad_messages = 0
        self._quiet_loss = False      #: start="oldest": what is gone was never asked for
        self._ids = itertools.count(1)
        self._outbox: list[bytes] = []

    def take_requests(self) -> list[bytes]:
        """Request bodies to send to the snapshot service (each once)."""
        out, self._outbox = self._outbox, []
        return out

    def tick(self, now: float) -> None:
        """Re-send a replay request unanswered for ``request_timeout`` seconds."""
        if self.syncing and now - self.requested_at > self.request_timeout:
            self._request()

    def _request(self) -> None:
        self.syncing = True
        self.request_id = next(self._ids)
        self.requested_at = time.monotonic()
        self._outbox.append(msgpack.packb({"v": P.VERSION, "op": "drop_copy",
                                           "id": self.request_id, "session": self.session,
                                           "from": self.next, "limit": self.page}))

    def on_message(self, frames: list[bytes]) -> list[DropCopyUpdate]:
        """One drop-copy message (topic and body frames); what it delivers."""
        try:
            _, kind, session, number, _, _, payload = P.decode(frames)
            if kind == P.MsgKind.DROP_COPY and isinstance(payload, list):
                first = number
            elif kind == P.MsgKind.DROP_COPY_HEARTBEAT and isinstance(payload, int):
                first, payload = payload + 1, []      # "reports up to payload exist"
            else:
                raise P.WireError("not a drop-copy message")
        except P.WireError:
            self.bad_messages += 1
            return []
        out: list[DropCopyUpdate] = []
        self._handle(session, first, payload, out)
        return out

    def _handle(self, session: int, first: int, payload: list, out: list) -> None:
        if self.syncing:
            self.buffer.append((session, first, payload))
            return
        if session != self.session:
            if session in self.dead_sessions:
                return
            if self.session == 0 and self.start == "live":
                self.session, self.next = session, first
            else:
                self._new_session(session, out)
                self.buffer.append((session, first, payload))
                return
        self._deliver(session, first, payload, out)

    def _new_session(self, session: int, out: list) -> None:
        """Follow ``session`` from its first report."""
        if self.session:
            out.append(SessionChanged(self.session, session, self.next - 1))
            self.dead_sessions.add(self.session)
        else:
            self._quiet_loss = True
        self.session, self.next = session, 1
        self._request()

    def _deliver(self, session: int, first: int, payload: list, out: list) -> None:
        if first > self.next:
            self.gaps += 1
            self.buffer.append((session, first, payload))
            self._request()
            return
        for offset, row in enumerate(payload):
            number = first + offset
            if number < self.next:
                continue
            try:
                out.append(decode_report(session, number, row))
            except ValueError:
                self.bad_messages += 1
            self.next = number + 1

    def on_reply(self, body: bytes) -> list[DropCopyUpdate]:
        """A snapshot-service reply to a ``drop_copy`` request (body frame)."""
        out: list[DropCopyUpdate] = []
        try:
            reply = msgpack.unpackb(body, raw=False, strict_map_key=False)
            if not self.syncing or reply.get("id") != self.request_id:
                return out
            session = reply["session"]
            if session != self.session:
                self._new_session(session, out)
                return out
            if reply.get("error") == "resync":
                oldest = reply["oldest"]
                if oldest > self.next:
                    if not self._quiet_loss:
                        out.append(ReportsLost(session, self.next, oldest - 1))
                    self.next = oldest
                self._request()
                return out
            if "error" in reply:
                self.requested_at = time.monotonic() - self.request_timeout + 0.2
                return out
            reports, first = reply["reports"], reply["first"]
            if not isinstance(reports, list) or not isinstance(first, int):
                raise ValueError("malformed replay")
        except (ValueError, AttributeError, KeyError, TypeError, msgpack.UnpackException):
            self.bad_messages += 1
            return out
        self.syncing = False
        self._quiet_loss = False
        self._deliver(session, first, reports, out)
        if not self.syncing and self.next < reply.get("next", 0):
            self._request()                     # more than one page behind: the next page
        if self.syncing:
            return out
        buffered, self.buffer = self.buffer, []
        for item in buffered:
            self._handle(*item, out)
        return out


# ---------------------------------------------------------------- the I/O around them
class _Connection:
    """A SUB for a stream, a DEALER for the snapshot service, and a sans-I/O session."""

    def __init__(self, stream: str, snapshot: str, core, topics: list[bytes],
                 context: zmq.Context | None, rcvhwm: int) -> None:
        self.context = context or zmq.Context.instance()
        self.core = core
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.RCVHWM, rcvhwm)
        for topic in topics:
            self.sub.setsockopt(zmq.SUBSCRIBE, topic)
        self.sub.connect(stream)
        self.requests = self.context.socket(zmq.DEALER)
        self.requests.setsockopt(zmq.LINGER, 0)
        self.requests.connect(snapshot)
        self.pending: deque = deque()

    def _pump(self, limit: int = 10_000) -> int:
        """Handle what has arrived (no waiting); returns how many messages."""
        core, handled = self.core, 0
        for _ in range(limit):
            try:
                frames = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self.pending.extend(core.on_message(frames))
            handled += 1
        while True:
            try:
                frames = self.requests.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self.pending.extend(core.on_reply(frames[-1]))
            handled += 1
        core.tick(time.monotonic())
        for body in core.take_requests():
            self.requests.send(body)
        return handled

    def _take(self) -> list:
        out = list(self.pending)
        self.pending.clear()
        return out

    def close(self) -> None:
        """Close both sockets."""
        self.sub.close(0)
        self.requests.close(0)


class _Sync(_Connection):
    def poll(self, timeout_ms: int = 0) -> list:
        """Updates that arrived, waiting up to ``timeout_ms`` for the first (-1: forever)."""
        self._pump()
        if not self.pending and timeout_ms:
            deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
            poller = zmq.Poller()
            poller.register(self.sub, zmq.POLLIN)
            poller.register(self.requests, zmq.POLLIN)
            while not self.pending:
                left = 200 if deadline is None else int((deadline - time.monotonic()) * 1000)
                if left <= 0:
                    break
                poller.poll(min(left, 200))
                self._pump()
        return self._take()

    def updates(self, timeout: float | None = None) -> Iterator:
        """Every update as it comes; ends after ``timeout`` seconds without one (None:
        never)."""
        wait = -1 if timeout is None else max(1, int(timeout * 1000))
        while True:
            batch = self.poll(wait)
            if not batch:
                return
            yield from batch

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Async(_Connection):
    async def poll(self, timeout_ms: int = 0) -> list:
        """Updates that arrived, waiting up to ``timeout_ms`` for the first (-1: forever)."""
        self._pump()
        if not self.pending and timeout_ms:
            deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
            poller = zmq.asyncio.Poller()
            poller.register(self.sub, zmq.POLLIN)
            poller.register(self.requests, zmq.POLLIN)
            while not self.pending:
                left = 200 if deadline is None else int((deadline - time.monotonic()) * 1000)
                if left <= 0:
                    break
                await poller.poll(min(left, 200))
                self._pump()
        return self._take()

    async def updates(self, timeout: float | None = None) -> AsyncIterator:
        """Every update as it comes; ends after ``timeout`` seconds without one."""
        wait = -1 if timeout is None else max(1, int(timeout * 1000))
        while True:
            batch = await self.poll(wait)
            if not batch:
                return
            for update in batch:
                yield update

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()


class _MarketDataMethods:
    """What both market-data clients add to their connection."""
    core: MarketDataSession

    def _subscribe(self, symbol: str, channels) -> None:
        for topic in self.core.subscribe(symbol, channels):
            self.sub.setsockopt(zmq.SUBSCRIBE, topic)
        for body in self.core.take_requests():
            self.requests.send(body)

    def unsubscribe(self, symbol: str) -> None:
        """Stop following ``symbol`` (its book is forgotten)."""
        for topic in self.core.unsubscribe(symbol):
            self.sub.setsockopt(zmq.UNSUBSCRIBE, topic)

    def book(self, symbol: str) -> L2Book:
        """The local L2 book of a subscribed symbol (KeyError if not subscribed); equal to the
        engine's once ``synced``."""
        return self.core.book(symbol)

    def quote(self, symbol: str) -> Quote | None:
        """The latest top of book of a subscribed symbol (None before it is synced)."""
        return self.core.symbols[symbol].quote

    def candles(self, symbol: str) -> dict[int, Candle]:
        """The latest candle per interval (ns)."""
        return dict(self.core.symbols[symbol].candles)

    def synced(self, symbol: str) -> bool:
        """True while the local state of ``symbol`` is known to be the service's."""
        return self.core.synced(symbol)


class MarketDataClient(_MarketDataMethods, _Sync):
    """Synchronous market-data subscriber (see the module docstring).

    ``publish``: the service's market-data PUB; ``snapshot``: its snapshot service.
    ``rcvhwm``: messages ZeroMQ queues for this subscriber before dropping (a gap the client
    then repairs)."""

    def __init__(self, publish: str, snapshot: str, *, context: zmq.Context | None = None,
                 request_timeout: float = 2.0, rcvhwm: int = 100_000) -> None:
        super().__init__(publish, snapshot, MarketDataSession(request_timeout),
                         [P.HEARTBEAT_TOPIC], context, rcvhwm)

    def subscribe(self, symbol: str, channels=ALL_CHANNELS) -> None:
        """Follow ``symbol`` on ``channels``; raises ValueError for a bad symbol or channel.
        The book is usable once ``synced`` (a ``Synced`` update says so)."""
        self._subscribe(symbol, channels)

    def wait_synced(self, symbol: str, timeout: float = 5.0) -> bool:
        """Handle messages until ``symbol`` is synced (updates are kept for ``poll``)."""
        deadline = time.monotonic() + timeout
        poller = zmq.Poller()
        poller.register(self.sub, zmq.POLLIN)
        poller.register(self.requests, zmq.POLLIN)
        while not self.synced(symbol) and time.monotonic() < deadline:
            poller.poll(20)
            self._pump()
        return self.synced(symbol)

    def trades(self, timeout: float | None = None) -> Iterator[Trade]:
        """Trades only (other updates are still applied to books and quotes)."""
        return (u for u in self.updates(timeout) if isinstance(u, Trade))

    def quotes(self, timeout: float | None = None) -> Iterator[Quote]:
        """Quotes only (other updates are still applied)."""
        return (u for u in self.updates(timeout) if isinstance(u, Quote))


class AsyncMarketDataClient(_MarketDataMethods, _Async):
    """asyncio market-data subscriber: ``MarketDataClient``'s methods, awaitable."""

    def __init__(self, publish: str, snapshot: str, *, context: zmq.Context | None = None,
                 request_timeout: float = 2.0, rcvhwm: int = 100_000) -> None:
        super().__init__(publish, snapshot, MarketDataSession(request_timeout),
                         [P.HEARTBEAT_TOPIC], context, rcvhwm)

    async def subscribe(self, symbol: str, channels=ALL_CHANNELS) -> None:
        """As ``MarketDataClient.subscribe``."""
        self._subscribe(symbol, channels)

    async def wait_synced(self, symbol: str, timeout: float = 5.0) -> bool:
        """As ``MarketDataClient.wait_synced``."""
        deadline = time.monotonic() + timeout
        poller = zmq.asyncio.Poller()
        poller.register(self.sub, zmq.POLLIN)
        poller.register(self.requests, zmq.POLLIN)
        while not self.synced(symbol) and time.monotonic() < deadline:
            await poller.poll(20)
            self._pump()
        return self.synced(symbol)

    async def trades(self, timeout: float | None = None) -> AsyncIterator[Trade]:
        """Trades only (other updates are still applied)."""
        async for update in self.updates(timeout):
            if isinstance(update, Trade):
                yield update

    async def quotes(self, timeout: float | None = None) -> AsyncIterator[Quote]:
        """Quotes only (other updates are still applied)."""
        async for update in self.updates(timeout):
            if isinstance(update, Quote):
                yield update


class DropCopyClient(_Sync):
    """Synchronous drop-copy consumer: ``poll``/``updates`` give every ``ExecutionReport``
    once, in order, and ``ReportsLost``/``SessionChanged`` where continuity broke.
    ``start``/``resume``: see ``DropCopySession``; ``position`` is what to pass as ``resume``
    to carry on later."""

    def __init__(self, drop_copy: str, snapshot: str, *, start: str = "live",
                 resume: tuple[int, int] | None = None, context: zmq.Context | None = None,
                 request_timeout: float = 2.0, rcvhwm: int = 100_000) -> None:
        super().__init__(drop_copy, snapshot, DropCopySession(start, resume, request_timeout),
                         [P.DROP_COPY_TOPIC, P.HEARTBEAT_TOPIC], context, rcvhwm)

    @property
    def position(self) -> tuple[int, int]:
        """(session, next report number): pass it as ``resume`` to carry on later."""
        return self.core.session, self.core.next

    def reports(self, timeout: float | None = None) -> Iterator[ExecutionReport]:
        """Execution reports only (losses and session changes are left out: use ``updates``
        to see them)."""
        return (u for u in self.updates(timeout) if isinstance(u, ExecutionReport))


class AsyncDropCopyClient(_Async):
    """asyncio drop-copy consumer: ``DropCopyClient``'s methods, awaitable."""

    def __init__(self, drop_copy: str, snapshot: str, *, start: str = "live",
                 resume: tuple[int, int] | None = None, context: zmq.Context | None = None,
                 request_timeout: float = 2.0, rcvhwm: int = 100_000) -> None:
        super().__init__(drop_copy, snapshot, DropCopySession(start, resume, request_timeout),
                         [P.DROP_COPY_TOPIC, P.HEARTBEAT_TOPIC], context, rcvhwm)

    @property
    def position(self) -> tuple[int, int]:
        """(session, next report number): pass it as ``resume`` to carry on later."""
        return self.core.session, self.core.next

    async def reports(self, timeout: float | None = None) -> AsyncIterator[ExecutionReport]:
        """Execution reports only (use ``updates`` to see losses and session changes)."""
        async for update in self.updates(timeout):
            if isinstance(update, ExecutionReport):
                yield update
