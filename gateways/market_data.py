"""The market-data service (``ringex marketdata``): engine events in, market data and drop copy
out. Wire format: ``gateways.md_protocol`` and ``docs/market-data.md``.

::

    engine nodes ──EventFeed──▶ MarketState.apply ──▶ PUB  "<SYM> quote|trades|depth|candles"
    (control: status,            (one pass a batch)  ──▶ PUB  "dropcopy" (every execution report)
     reference, books)                 │
                                       └── snapshot service (ROUTER): "snapshot" of a symbol,
                                           "drop_copy" replay, "symbols", "status"

One thread, one loop. Each time the feed has events, the service makes one pass over them
(``gateways.books.MarketState``) and publishes one message per changed topic: every trade,
every changed price level (its final state), the top of book when it changed (coalesced),
the candles that opened, changed or closed; and one drop-copy message with every execution
report. Snapshots are served from the same state in the same thread, so a snapshot at engine
seq S with topic sequence T is exactly what the incrementals T+1, T+2, ... continue (the
zguide Clone pattern).

Start and reset: the service finds the primary among ``nodes``, loads instruments and books
with the ``reference`` and ``books`` control ops (both describe a seq S) and follows the event
stream from S + 1. When the feed reports that events were lost for good (``FeedReset``), it
does the same again under a new **session** number: subscribers see the session change and
resync from snapshots, and the drop copy carries a LOST report naming the engine seqs it could
not cover.
"""
from __future__ import annotations

import gc
import logging
import os
import re
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import islice

import msgpack
import zmq

from core.records import EVENT, join
from replication.control import control_request

from . import md_protocol as P
from .books import BookError, MarketState
from .engine_feed import EventFeed, FeedReset

log = logging.getLogger("ringex.marketdata")

ENDPOINT = re.compile(r"^(tcp://(\[[0-9a-fA-F:.]+\]|[^:/\s\[\]]+):\d{1,5}|ipc://\S+|inproc://\S+)$")

SECOND = 1_000_000_000
MAX_REPLAY = 100_000          #: drop-copy reports per replay reply at most


@dataclass
class MarketDataConfig:
    """What ``ringex marketdata`` takes on its command line."""
    nodes: list[str]                                   #: engine control endpoints
    publish_endpoint: str = "tcp://127.0.0.1:7101"
    snapshot_endpoint: str = "tcp://127.0.0.1:7102"
    drop_copy_endpoint: str = "tcp://127.0.0.1:7103"
    heartbeat_ms: int = 1000
    candle_intervals: tuple[int, ...] = (SECOND, 60 * SECOND)     #: ns of engine time
    trade_history: int = 1000          #: recent trades per instrument, for gap recovery
    candle_history: int = 100          #: closed candles kept per instrument and interval
    report_history: int = 100_000      #: drop-copy reports kept for replay
    send_hwm: int = 100_000            #: messages queued per subscriber before PUB drops
    control_timeout_ms: int = 2000
    silence_timeout_ms: int = 1000     #: no event or heartbeat this long: look for a primary
    retry_ms: int = 500                #: between attempts to reach the engine


class NotReady(RuntimeError):
    """The engine could not be reached (no primary, or a query failed)."""


@dataclass
class _Published:
    """Per instrument: topic frames, topic sequence numbers, the last quote, and the recent
    trade messages ``(topic_seq, rows)``: whole messages, so that a subscriber recovering
    from a gap either gets all the trades of a message or knows the message is gone."""
    topics: list[bytes]
    seqs: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    quote: list | None = None
    trades: deque = field(default_factory=deque)
    trade_count: int = 0

    def keep_trades(self, topic_seq: int, rows: list, limit: int) -> None:
        """Remember a trades message; forget the oldest whole messages beyond ``limit``
        trades."""
        self.trades.append((topic_seq, rows))
        self.trade_count += len(rows)
        while self.trade_count - len(self.trades[0][1]) >= limit:
            self.trade_count -= len(self.trades.popleft()[1])


def _new_session() -> int:
    return int.from_bytes(os.urandom(4), "little") or 1


class MarketDataService:
    """See the module docstring. ``run`` loops until ``stop``; ``step`` is one iteration."""

    def __init__(self, config: MarketDataConfig, context: zmq.Context | None = None) -> None:
        """Binds the three sockets (raises zmq.ZMQError if it cannot); raises ValueError for
        a configuration that cannot work."""
        if not config.nodes:
            raise ValueError("the market-data service needs at least one engine node")
        for endpoint in config.nodes:
            if not isinstance(endpoint, str) or not ENDPOINT.match(endpoint):
                raise ValueError(f"not a ZeroMQ endpoint: {endpoint!r} (e.g. "
                                 f"tcp://127.0.0.1:7002)")
        if config.heartbeat_ms <= 0 or config.report_history <= 0 or \
                config.trade_history <= 0 or config.send_hwm <= 0:
            raise ValueError("heartbeat_ms, report_history, trade_history and send_hwm must "
                             "be positive")
        self.config = config
        self.context = context or zmq.Context.instance()
        self.publisher = self._bind(zmq.PUB, config.publish_endpoint)
        self.drop_copy = self._bind(zmq.PUB, config.drop_copy_endpoint)
        self.snapshots = self.context.socket(zmq.ROUTER)
        self.snapshots.setsockopt(zmq.LINGER, 0)
        self.snapshots.setsockopt(zmq.MAXMSGSIZE, P.MAX_REQUEST_BYTES)
        self.snapshots.bind(config.snapshot_endpoint)
        self.feed: EventFeed | None = None
        self.state = MarketState(config.candle_intervals, config.trade_history,
                                 config.candle_history)
        self.session = 0
        self.published: dict[int, _Published] = {}
        self.reports: deque = deque(maxlen=config.report_history)
        self.next_report = 1
        self.resets = 0
        self.requests_served = 0
        self.bad_requests = 0
        self._heartbeats = 0
        self._next_heartbeat = 0.0
        self._next_attempt = 0.0
        self._lost_from: int | None = None     #: a reset lost the events from this seq on
        self._stopping = False
        self._poller = zmq.Poller()
        self._poller.register(self.snapshots, zmq.POLLIN)

    def _bind(self, kind: int, endpoint: str) -> zmq.Socket:
        socket = self.context.socket(kind)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SNDHWM, self.config.send_hwm)
        socket.bind(endpoint)
        return socket

    # ------------------------------------------------------------ the loop
    def run(self) -> None:
        """Serve until ``stop`` (a signal handler may call it), then close the sockets."""
        gc.freeze()           # what exists now lives forever: keep it out of every collection
        log.info("market data: publish %s, snapshots %s, drop copy %s, engine %s",
                 self.config.publish_endpoint, self.config.snapshot_endpoint,
                 self.config.drop_copy_endpoint, ", ".join(self.config.nodes))
        try:
            while not self._stopping:
                self.step()
        finally:
            self.close()

    def stop(self) -> None:
        """Make ``run`` return after the current step."""
        self._stopping = True

    @property
    def ready(self) -> bool:
        """A session is loaded and no events are known to be missing."""
        return self.session != 0 and self._lost_from is None

    def step(self, max_wait_ms: int = 100) -> None:
        """Wait for events or requests (at most until the next heartbeat), handle them."""
        wait = max(0, min(max_wait_ms, int((self._next_heartbeat - time.monotonic()) * 1000)))
        ready = dict(self._poller.poll(wait))
        if self.feed is None or not self.ready:
            self._try_bootstrap()
        else:
            self._follow()
        if self.snapshots in ready:
            self._serve()
        if time.monotonic() >= self._next_heartbeat:
            self._heartbeat()

    def _follow(self) -> None:
        try:
            batches = self.feed.drain()
        except FeedReset as e:
            log.warning("%s", e)
            self._lost_from = self.state.last_seq + 1   # (the feed may have dropped batches
                                                        # it had not handed out yet)
            self._try_bootstrap()
            return
        except RuntimeError as e:              # a node refused an events request
            log.error("event feed: %s", e)
            return
        if batches:
            events = batches[0].events if len(batches) == 1 else \
                join([b.events for b in batches], EVENT)
            try:
                self.publish(events)
            except BookError as e:             # the engine's events contradict our books
                log.error("events from seq %d do not apply (%s): rebuilding from the engine",
                          self.state.last_seq + 1, e)
                self._lost_from = self.state.last_seq + 1
                self._try_bootstrap()

    # ------------------------------------------------------------ start and reset
    def _try_bootstrap(self) -> None:
        now = time.monotonic()
        if now < self._next_attempt:
            return
        self._next_attempt = now + self.config.retry_ms / 1000
        try:
            self._bootstrap()
        except NotReady as e:
            log.warning("engine not reachable yet: %s", e)

    def _ask(self, endpoint: str, request: dict) -> dict:
        try:
            reply = control_request(endpoint, request, self.config.control_timeout_ms)
        except (TimeoutError, zmq.ZMQError) as e:
            raise NotReady(f"{endpoint}: {e}") from None
        if "error" in reply:
            raise NotReady(f"{endpoint} refused {request['op']}: {reply['error']}")
        return reply

    def _primary(self) -> dict:
        best = None
        for endpoint in self.config.nodes:
            try:
                status = control_request(endpoint, {"op": "status"},
                                         self.config.control_timeout_ms // 4 or 1)
            except (TimeoutError, zmq.ZMQError):
                continue
            if status.get("role") == "primary" and status.get("accepting") and \
                    (best is None or status["epoch"] > best["epoch"]):
                best = status
        if best is None:
            raise NotReady(f"no primary among {', '.join(self.config.nodes)}")
        return best

    def _bootstrap(self) -> None:
        """Load instruments and books at some seq S from the primary, start a new session,
        follow the events from S + 1."""
        control = self._primary()["endpoints"]["control"]
        reference = self._ask(control, {"op": "reference"})
        books = self._ask(control, {"op": "books"})
        known = {item["instrument"] for item in reference["instruments"]}
        if any(item["instrument"] not in known for item in books["books"]):
            reference = self._ask(control, {"op": "reference"})   # one was added in between
        seq = self.load(reference, books)
        if self.feed is None:
            self.feed = EventFeed(self.config.nodes, seq + 1, context=self.context,
                                  silence_timeout_ms=self.config.silence_timeout_ms,
                                  control_timeout_ms=self.config.control_timeout_ms)
            self._poller.register(self.feed.socket, zmq.POLLIN)
        else:
            self.feed.restart(seq + 1)

    def load(self, reference: dict, books: dict) -> int:
        """Start a new session from the engine's ``reference`` and ``books`` replies (the
        ``books`` one no older than the ``reference`` one); returns the seq they describe.
        The events to ``publish`` next are those from that seq + 1."""
        state = MarketState(self.config.candle_intervals, self.config.trade_history,
                            self.config.candle_history)
        state.load_reference(reference)
        state.load_books(books)
        seq = int(books["seq"])
        self.state = state
        self.session = _new_session()
        self.published = {i: self._topics(s.symbol) for i, s in state.instruments.items()}
        self.reports.clear()
        self.next_report = 1
        if self._lost_from is not None:
            self.resets += 1
            if seq >= self._lost_from:
                self._publish_reports([P.lost_report(self._lost_from, seq)], seq, 0)
        self._lost_from = None
        log.info("session %d: %d instruments at engine seq %d", self.session,
                 len(state.instruments), seq)
        self._heartbeat()          # subscribers learn of the new session at once
        return seq

    def _topics(self, symbol: str) -> _Published:
        return _Published([P.topic(symbol, c) for c in range(len(P.CHANNELS))])

    # ------------------------------------------------------------ publishing
    def publish(self, events) -> None:
        """Apply the engine events that follow the state's seq (one or more whole batches, in
        order) and publish every change, then their execution reports."""
        changes = self.state.apply(events)
        send = self.publisher.send_multipart
        session = self.session
        for instrument in changes.added:
            if instrument not in self.published:
                self.published[instrument] = self._topics(
                    self.state.instruments[instrument].symbol)
        for instrument, changed in changes.instruments.items():
            state = self.state.instruments.get(instrument)
            if state is None:
                continue
            out = self.published[instrument]
            seqs = out.seqs
            seq, ts = (changed.seq, changed.ts) if changed.seq else \
                (changes.last_seq, changes.last_ts)
            if changed.trades:
                seqs[P.TRADES] += 1
                rows = [P.trade_row(t) for t in changed.trades]
                send(P.encode(out.topics[P.TRADES], P.MsgKind.TRADES, session, seqs[P.TRADES],
                              seq, ts, rows))
                out.keep_trades(seqs[P.TRADES], rows, self.config.trade_history)
            if changed.quote:
                quote = P.quote_payload(state.book.top(), state.last_price, state.status)
                if quote != out.quote:
                    out.quote = quote
                    seqs[P.QUOTE] += 1
                    send(P.encode(out.topics[P.QUOTE], P.MsgKind.QUOTE, session,
                                  seqs[P.QUOTE], seq, ts, quote))
            if changed.levels:
                seqs[P.DEPTH] += 1
                rows = [[side, price, quantity, orders]
                        for (side, price), (quantity, orders) in changed.levels.items()]
                send(P.encode(out.topics[P.DEPTH], P.MsgKind.DEPTH, session, seqs[P.DEPTH],
                              seq, ts, rows))
            if changed.candles:
                seqs[P.CANDLES] += 1
                rows = [P.candle_row(c) for c in changed.candles.values()]
                send(P.encode(out.topics[P.CANDLES], P.MsgKind.CANDLES, session,
                              seqs[P.CANDLES], seq, ts, rows))
        reports = P.execution_reports(events)
        if reports:
            self._publish_reports(reports, changes.last_seq, changes.last_ts)

    def _publish_reports(self, reports: list[tuple], seq: int, ts: int) -> None:
        for at in range(0, len(reports), P.MAX_REPORTS_PER_MESSAGE):
            chunk = reports[at:at + P.MAX_REPORTS_PER_MESSAGE]
            self.drop_copy.send_multipart(P.encode(P.DROP_COPY_TOPIC, P.MsgKind.DROP_COPY,
                                                   self.session, self.next_report, seq, ts,
                                                   chunk))
            self.reports.extend(chunk)
            self.next_report += len(chunk)

    def _heartbeat(self) -> None:
        self._next_heartbeat = time.monotonic() + self.config.heartbeat_ms / 1000
        if self.session == 0:
            return
        self._heartbeats += 1
        seq, ts = self.state.last_seq, self.state.last_ts
        seqs = {self.state.instruments[i].symbol: out.seqs for i, out in self.published.items()}
        self.publisher.send_multipart(P.encode(P.HEARTBEAT_TOPIC, P.MsgKind.HEARTBEAT,
                                               self.session, self._heartbeats, seq, ts, seqs))
        self.drop_copy.send_multipart(P.encode(
            P.HEARTBEAT_TOPIC, P.MsgKind.DROP_COPY_HEARTBEAT, self.session, self._heartbeats,
            seq, ts, self.next_report - 1))

    # ------------------------------------------------------------ the snapshot service
    def _serve(self, limit: int = 256) -> None:
        for _ in range(limit):
            try:
                frames = self.snapshots.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) < 2:
                self.bad_requests += 1
                continue
            reply = self.answer(frames[-1])
            self.requests_served += 1
            self.snapshots.send_multipart(frames[:-1] + [msgpack.packb(reply,
                                                                       use_bin_type=True)])

    def answer(self, body: bytes) -> dict:
        """The reply map to one snapshot-service request body (never raises)."""
        try:
            request = msgpack.unpackb(body, raw=False)
        except (ValueError, msgpack.UnpackException):
            request = None
        if not isinstance(request, dict) or not isinstance(request.get("op"), str):
            self.bad_requests += 1
            return {"v": P.VERSION, "error": "bad_request",
                    "message": "a request is a msgpack map with an \"op\" string"}
        handler = {"snapshot": self._snapshot, "drop_copy": self._replay,
                   "symbols": self._symbols, "status": self._status}.get(request["op"])
        if handler is None:
            self.bad_requests += 1
            reply = {"error": "bad_request", "message": f"unknown op {request['op']!r}; ops "
                                                        f"are snapshot, drop_copy, symbols, "
                                                        f"status"}
        elif handler is not self._status and not self.ready:
            reply = {"error": "not_ready", "message": "not following the engine yet"}
        else:
            try:
                reply = handler(request)
            except (TypeError, ValueError) as e:
                self.bad_requests += 1
                reply = {"error": "bad_request", "message": str(e)}
        reply["v"] = P.VERSION
        if "id" in request:
            reply["id"] = request["id"]
        return reply

    @staticmethod
    def _int(request: dict, name: str, default: int, low: int, high: int) -> int:
        value = request.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"{name} must be an integer in {low}..{high}")
        return value

    def _snapshot(self, request: dict) -> dict:
        symbol = request.get("symbol")
        if not isinstance(symbol, str):
            raise ValueError("snapshot needs a \"symbol\" string")
        depth = self._int(request, "depth", 0, 0, 1_000_000)
        state = self.state.by_symbol.get(symbol)
        if state is None:
            return {"error": "unknown_symbol", "message": f"no instrument {symbol!r}"}
        out = self.published[state.instrument]
        quote = P.quote_payload(state.book.top(), state.last_price, state.status)
        candles = [P.candle_row(c) for builder in state.candles for c in builder.recent()]
        return {"session": self.session, "seq": self.state.last_seq, "ts": self.state.last_ts,
                "symbol": symbol, "instrument": state.instrument,
                "tick_size": state.tick_size, "lot_size": state.lot_size,
                "topics": list(out.seqs), "quote": quote,
                "bids": state.book.bids(depth), "asks": state.book.asks(depth),
                "trades": [(topic_seq, *row) for topic_seq, rows in out.trades
                           for row in rows],
                "candles": candles}

    def _replay(self, request: dict) -> dict:
        first = self._int(request, "from", 1, 1, 2**62)
        limit = self._int(request, "limit", 10_000, 1, MAX_REPLAY)
        session = request.get("session", self.session)
        oldest = self.next_report - len(self.reports)
        base = {"session": self.session, "oldest": oldest, "next": self.next_report}
        if session != self.session:
            return {**base, "error": "resync", "message": "session changed: the reports you "
                                                          "have are of another session"}
        if first < oldest:
            return {**base, "error": "resync", "message": f"reports before {oldest} are no "
                                                          f"longer held"}
        first = min(first, self.next_report)
        start = first - oldest
        reports = list(islice(self.reports, start, start + limit))
        return {**base, "first": first, "reports": reports}

    def _symbols(self, request: dict) -> dict:
        return {"session": self.session, "seq": self.state.last_seq,
                "instruments": [s.reference() for s in self.state.instruments.values()]}

    def _status(self, request: dict) -> dict:
        feed = self.feed
        return {"session": self.session, "ready": self.ready, "seq": self.state.last_seq,
                "ts": self.state.last_ts, "instruments": len(self.state.instruments),
                "reports": self.next_report - 1,
                "oldest_report": self.next_report - len(self.reports),
                "epoch": feed.epoch if feed else 0,
                "primary": feed.primary["node_id"] if feed and feed.primary else None,
                "failovers": feed.failovers if feed else 0,
                "gaps_recovered": feed.gaps_recovered if feed else 0,
                "resets": self.resets, "requests": self.requests_served,
                "bad_requests": self.bad_requests}

    def close(self) -> None:
        """Close the feed and the sockets."""
        if self.feed is not None:
            self.feed.close()
        for socket in (self.publisher, self.drop_copy, self.snapshots):
            socket.close(0)
