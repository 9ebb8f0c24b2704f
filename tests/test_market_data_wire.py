"""The market-data wire format and the client protocol logic, in process and deterministic.

The real service (``MarketDataService``, on inproc sockets, fed straight from an in-process
BLP instead of an engine node) publishes; the clients' sans-I/O sessions
(``MarketDataSession``, ``DropCopySession``) consume what it published, with messages dropped
on purpose, and their snapshot requests are answered by the service's own ``answer``. Replies
are delivered one batch late, so messages newer than a snapshot are always in flight when it
arrives (the Clone pattern's hard case). Every test ends by comparing with the engine: books
with the BLP's books, trades and reports with the BLP's events.
"""
from __future__ import annotations

import itertools
import random

import msgpack
import numpy as np
import pytest
import zmq

from core import commands as C
from core.blp import BusinessLogicProcessor
from core.config import Capacities
from core.enums import CommandKind, EventKind
from core.records import EVENT
from gateways import md_protocol as P
from gateways.engine_feed import FeedReset
from gateways.market_data import MarketDataConfig, MarketDataService
from gateways.market_data_client import (BookUpdate, DropCopySession, ExecutionReport,
                                         MarketDataSession, ReportsLost, SessionChanged,
                                         SubscriptionError, Synced, Trade, TradesLost)
from replication import queries
from replication.event_stream import EventBatch

from .md_processes import RandomFlow

S = 1_000_000_000
_names = itertools.count()


class Venue:
    """An in-process BLP, the service publishing its events, and a SUB on each stream."""

    def __init__(self, seed: int = 1, **config) -> None:
        name = f"{next(_names)}-{random.random()}"
        self.context = zmq.Context.instance()
        self.service = MarketDataService(MarketDataConfig(
            nodes=["tcp://127.0.0.1:9"], publish_endpoint=f"inproc://md-{name}",
            snapshot_endpoint=f"inproc://snap-{name}", drop_copy_endpoint=f"inproc://dc-{name}",
            candle_intervals=(S,), **config), self.context)
        self.md = self._sub(f"inproc://md-{name}")
        self.dc = self._sub(f"inproc://dc-{name}")
        self.flow = RandomFlow(seed, instruments=2)
        self.blp = BusinessLogicProcessor(Capacities(instruments=4, accounts=16,
                                                     orders=1 << 12, positions=64,
                                                     client_order_ids=1 << 14))
        self.events: list[np.ndarray] = []
        self.seq = 1
        self.step = 0
        self._run(self.flow.setup())
        self.load()

    def _sub(self, endpoint: str) -> zmq.Socket:
        socket = self.context.socket(zmq.SUB)
        socket.setsockopt(zmq.RCVHWM, 0)
        socket.setsockopt(zmq.SUBSCRIBE, b"")
        socket.connect(endpoint)
        return socket

    def _run(self, commands: np.ndarray) -> np.ndarray:
        events = self.blp.process(C.stamp(commands, self.seq, ts=(100 + self.step) * S,
                                          ts_step=1000))
        self.seq += len(commands)
        self.step += 1
        self.events.append(events)
        return events

    def load(self) -> None:
        state = self.blp.canonical_state()
        reference = queries.reference(state, {})
        books = queries.books(state, {})
        books["seq"] = self.blp.last_seq
        self.service.load(reference, books)

    def trade(self, n: int = 40) -> None:
        self.service.publish(self._run(self.flow.batch(n)))

    def frames(self, socket: zmq.Socket) -> list[list[bytes]]:
        out = []
        while socket.poll(0):
            out.append(socket.recv_multipart())
        return out

    def engine_book(self, symbol: str) -> tuple[list, list]:
        for item in queries.books(self.blp.canonical_state(), {})["books"]:
            if item["symbol"] == symbol:
                return item["bids"], item["asks"]
        raise KeyError(symbol)

    def all_events(self) -> np.ndarray:
        return np.concatenate(self.events)

    def close(self) -> None:
        self.md.close(0)
        self.dc.close(0)
        self.service.close()


@pytest.fixture
def venue():
    v = Venue()
    yield v
    v.close()


class Consumer:
    """A session fed by a venue's stream; requests answered now, replies delivered later."""

    def __init__(self, venue: Venue, session, socket: zmq.Socket,
                 drop=lambda index, frames: False) -> None:
        self.venue, self.session, self.socket, self.drop = venue, session, socket, drop
        self.index = 0
        self.replies: list[bytes] = []
        self.updates: list = []

    def consume(self) -> None:
        for frames in self.venue.frames(self.socket):
            self.index += 1
            if not self.drop(self.index, frames):
                self.updates += self.session.on_message(frames)
        for body in self.replies:
            self.updates += self.session.on_reply(body)
        self.replies = [msgpack.packb(self.venue.service.answer(body))
                        for body in self.session.take_requests()]

    def settle(self) -> None:
        """Heartbeats and replies until nothing is pending."""
        for _ in range(10):
            self.venue.service._heartbeat()
            self.consume()
            if not self.replies:
                return
        raise AssertionError("the session never settled")


def engine_trades(venue: Venue, instrument: int) -> list[int]:
    events = venue.all_events()
    mine = events[(events["kind"] == EventKind.TRADE) & (events["instrument"] == instrument)]
    return mine["trade_id"].tolist()


# ---------------------------------------------------------------- frames
def test_topics_are_unambiguous_under_prefix_matching():
    assert P.topic("ACME", "depth") == b"ACME depth" and P.topic("ACME", P.TRADES) == \
        b"ACME trades"
    assert not P.topic("ACMEX", "quote").startswith(b"ACME ")
    assert P.split_topic(b"BRK.B candles") == ("BRK.B", P.CANDLES)
    for bad in (b"ACME", b"ACME bogus", b"\xff quote", b"A B quote"):
        with pytest.raises(P.WireError):
            P.split_topic(bad)
    with pytest.raises(ValueError):
        P.topic("ACME", "prices")


def test_messages_round_trip_and_malformed_ones_are_refused_clearly():
    frames = P.encode(b"ACME quote", P.MsgKind.QUOTE, 7, 3, 99, 12345, [1, 2, None, 0, 5, 1])
    assert P.decode(frames) == (b"ACME quote", P.MsgKind.QUOTE, 7, 3, 99, 12345,
                                [1, 2, None, 0, 5, 1])
    good = msgpack.packb([1, 1, 7, 3, 99, 1, []])
    for frames, message in [
        ([b"t"], "two frames"),
        ([b"t", b"\xc1"], "msgpack"),
        ([b"t", msgpack.packb({"v": 1})], "array of 7"),
        ([b"t", msgpack.packb([1, 1, 7])], "array of 7"),
        ([b"t", msgpack.packb([2, 1, 7, 3, 99, 1, []])], "version"),
        ([b"t", msgpack.packb([1, 42, 7, 3, 99, 1, []])], "kind"),
        ([b"t", msgpack.packb([1, 1, "7", 3, 99, 1, []])], "session"),
        ([b"t", msgpack.packb([1, 1, 7, 3.0, 99, 1, []])], "topic_seq"),
        ([b"t", good, b"extra"], "two frames"),
    ]:
        with pytest.raises(P.WireError, match=message):
            P.decode(frames)


def test_execution_reports_carry_every_order_event_once_and_both_sides_of_each_trade():
    venue = Venue(seed=4)
    for _ in range(20):
        venue.trade()
    venue.service.publish(venue._run(C.batch(C.withdraw_cash(1, 10**15),
                                             C.add_account(1))))      # two admin rejections
    events = venue.all_events()
    reports = P.execution_reports(events)
    kinds = events["kind"]
    order_rejections = (kinds == EventKind.REJECTED) & np.isin(
        events["command_kind"], [CommandKind.NEW_ORDER, CommandKind.CANCEL,
                                 CommandKind.MODIFY, CommandKind.MASS_CANCEL])
    expected = sum(int((kinds == k).sum()) for k in P.ReportKind if k not in
                   (P.ReportKind.LOST, P.ReportKind.REJECTED, P.ReportKind.FILL))
    expected += int(order_rejections.sum()) + 2 * int((kinds == EventKind.TRADE).sum())
    assert len(reports) == expected
    assert int((kinds == EventKind.REJECTED).sum()) > int(order_rejections.sum())  # admin ones
    assert {r[0] for r in reports} >= {1, 2, 3, 4, 5}
    for report in reports:          # every report has its kind's documented shape
        kind = P.ReportKind(report[0])
        assert len(report) == 6 + len(P.REPORT_FIELDS[kind])
        assert all(isinstance(v, int) for v in report if v is not None)
    trades = events[kinds == EventKind.TRADE]
    fills = [r for r in reports if r[0] == P.ReportKind.FILL]
    for t, (maker, taker) in zip(trades, zip(fills[::2], fills[1::2])):
        names = P.REPORT_FIELDS[P.ReportKind.FILL]
        m, k = dict(zip(names, maker[6:])), dict(zip(names, taker[6:]))
        assert (maker[3], maker[5], m["liquidity"]) == (t["maker_account"],
                                                        t["maker_order_id"], P.MAKER)
        assert (taker[3], taker[5], k["liquidity"]) == (t["taker_account"],
                                                        t["taker_order_id"], P.TAKER)
        assert k["side"] == t["aggressor_side"] and m["side"] == 3 - t["aggressor_side"]
        assert m["leaves"] == t["maker_leaves"] and k["fee"] == t["taker_fee"]
        assert m["trade_id"] == k["trade_id"] == t["trade_id"]
    accepted = events[kinds == EventKind.ORDER_ACCEPTED][0]
    first = next(r for r in reports if r[0] == P.ReportKind.ACCEPTED)
    assert list(first[1:6]) == [int(accepted[n]) for n in ("seq", "ts", "account",
                                                           "instrument", "order_id")]
    assert dict(zip(P.REPORT_FIELDS[P.ReportKind.ACCEPTED], first[6:]))["quantity"] == \
        accepted["quantity"]
    venue.close()


# ---------------------------------------------------------------- market data sessions
def run_subscriber(venue: Venue, consumer: Consumer, batches: int = 30,
                   symbol: str = "ACME") -> None:
    for _ in range(batches):
        venue.trade()
        consumer.consume()
    consumer.settle()
    assert consumer.session.synced(symbol)
    bids, asks = venue.engine_book(symbol)
    book = consumer.session.book(symbol)
    assert (book.bids(), book.asks()) == (bids, asks)


def delivered_trades(updates: list, symbol: str = "ACME") -> list[int]:
    return [u.trade_id for u in updates if isinstance(u, Trade) and u.symbol == symbol]


def test_a_subscriber_from_the_start_sees_every_trade_once_and_keeps_the_engines_book(venue):
    consumer = Consumer(venue, MarketDataSession(), venue.md)
    topics = consumer.session.subscribe("ACME")
    assert topics == [b"ACME quote", b"ACME trades", b"ACME depth", b"ACME candles"]
    consumer.consume()                          # the snapshot: before the first trade
    consumer.consume()
    assert consumer.session.synced("ACME")
    run_subscriber(venue, consumer)
    updates = consumer.updates
    assert delivered_trades(updates) == engine_trades(venue, 0)
    assert [u.reason for u in updates if isinstance(u, Synced)] == ["subscribed"]
    assert consumer.session.gaps == consumer.session.resyncs == 0
    assert any(isinstance(u, BookUpdate) for u in updates)
    assert all(u.symbol == "ACME" for u in updates if hasattr(u, "symbol"))


def test_a_dropped_range_is_detected_and_repaired_from_a_snapshot_and_recent_trades(venue):
    drop = lambda index, frames: 40 <= index < 55 and frames[0].startswith(b"ACME")
    consumer = Consumer(venue, MarketDataSession(), venue.md, drop)
    consumer.session.subscribe("ACME")
    consumer.consume()
    consumer.consume()
    run_subscriber(venue, consumer)
    assert consumer.session.gaps >= 1 and consumer.session.resyncs >= 1
    assert "gap" in [u.reason for u in consumer.updates if isinstance(u, Synced)]
    assert delivered_trades(consumer.updates) == engine_trades(venue, 0)   # all, once, in order
    assert not [u for u in consumer.updates if isinstance(u, TradesLost)]


def test_trades_no_longer_held_are_reported_lost_not_silently_skipped():
    venue = Venue(trade_history=3)
    drop = lambda index, frames: 30 <= index < 80 and frames[0].startswith(b"ACME")
    consumer = Consumer(venue, MarketDataSession(), venue.md, drop)
    consumer.session.subscribe("ACME")
    run_subscriber(venue, consumer)
    lost = [u for u in consumer.updates if isinstance(u, TradesLost)]
    assert lost and all(u.first <= u.last for u in lost)
    seen = delivered_trades(consumer.updates)
    assert len(seen) == len(set(seen)) and seen == sorted(seen)
    assert set(seen) < set(engine_trades(venue, 0))
    venue.close()


def test_a_lost_tail_is_revealed_by_the_heartbeat(venue):
    consumer = Consumer(venue, MarketDataSession(), venue.md)
    consumer.session.subscribe("ACME")
    run_subscriber(venue, consumer, batches=5)
    venue.trade()
    venue.frames(venue.md)                      # the last batch's messages never arrive
    assert consumer.session.gaps == 0
    consumer.settle()
    assert consumer.session.gaps == 1
    bids, asks = venue.engine_book("ACME")
    assert (consumer.session.book("ACME").bids(), consumer.session.book("ACME").asks()) == \
        (bids, asks)


def test_a_late_joiner_starts_from_a_snapshot(venue):
    for _ in range(20):
        venue.trade()
    venue.frames(venue.md)
    consumer = Consumer(venue, MarketDataSession(), venue.md)
    consumer.session.subscribe("BOLT", ["depth", "quote"])
    run_subscriber(venue, consumer, batches=10, symbol="BOLT")
    assert not delivered_trades(consumer.updates, "BOLT")       # not subscribed to trades
    quote = consumer.session.symbols["BOLT"].quote
    bids, asks = venue.engine_book("BOLT")
    assert (quote.bid, quote.ask) == (bids[0][0] if bids else None, asks[0][0] if asks else None)


def test_adding_a_channel_resyncs_without_replaying_history(venue):
    consumer = Consumer(venue, MarketDataSession(), venue.md)
    consumer.session.subscribe("ACME", ["depth"])
    run_subscriber(venue, consumer, batches=5)
    assert not delivered_trades(consumer.updates)
    before = len(venue.events)
    assert consumer.session.subscribe("ACME", ["trades", "depth"]) == [b"ACME trades"]
    consumer.consume()
    consumer.consume()
    run_subscriber(venue, consumer, batches=5)
    since = np.concatenate(venue.events[before:])
    assert delivered_trades(consumer.updates) == since[
        (since["kind"] == EventKind.TRADE) & (since["instrument"] == 0)]["trade_id"].tolist()


def test_a_new_service_session_makes_every_subscriber_resync(venue):
    consumer = Consumer(venue, MarketDataSession(), venue.md)
    consumer.session.subscribe("ACME")
    run_subscriber(venue, consumer, batches=5)
    old = venue.service.session
    venue.load()                                # what a reset or a restart does
    assert venue.service.session != old
    run_subscriber(venue, consumer, batches=5)
    assert "session" in [u.reason for u in consumer.updates if isinstance(u, Synced)]
    assert old in consumer.session.dead_sessions


def test_unknown_symbols_bad_subscriptions_and_garbage_are_handled():
    venue = Venue()
    consumer = Consumer(venue, MarketDataSession(), venue.md)
    consumer.session.subscribe("NOPE")
    consumer.consume()
    consumer.consume()
    assert [type(u) for u in consumer.updates] == [SubscriptionError]
    assert "NOPE" not in consumer.session.symbols
    for bad in ("", "A B", "ÄCME", 7):
        with pytest.raises(ValueError):
            consumer.session.subscribe(bad)
    with pytest.raises(ValueError):
        consumer.session.subscribe("ACME", ["prices"])
    session = consumer.session
    for frames in ([b"ACME quote", b"\xc1"], [b"ACME quote"],
                   P.encode(b"ACME quote", P.MsgKind.TRADES, 1, 1, 1, 1, []),
                   P.encode(b"garbage", P.MsgKind.QUOTE, 1, 1, 1, 1, []),
                   P.encode(P.HEARTBEAT_TOPIC, P.MsgKind.HEARTBEAT, 1, 1, 1, 1, [1])):
        assert session.on_message(frames) == []
    assert session.bad_messages == 5
    assert session.on_reply(b"\xc1") == [] and session.on_reply(msgpack.packb(3)) == []
    venue.close()


def test_a_malformed_incremental_triggers_a_resync_not_a_crash(venue):
    consumer = Consumer(venue, MarketDataSession(), venue.md)
    consumer.session.subscribe("ACME")
    run_subscriber(venue, consumer, batches=3)
    session = consumer.session
    nxt = session.symbols["ACME"].expected[P.DEPTH]
    bad = P.encode(b"ACME depth", P.MsgKind.DEPTH, venue.service.session, nxt, 1, 1,
                   [[9, 100, 1, 1]])
    assert session.on_message(bad) == [] and session.bad_messages == 1
    assert not session.synced("ACME")
    run_subscriber(venue, consumer, batches=3)


# ---------------------------------------------------------------- drop copy
def expected_reports(venue: Venue, since: int = 0) -> list[list]:
    return [list(r) for r in P.execution_reports(np.concatenate(venue.events[since:]))]


def as_wire(report: ExecutionReport) -> list:
    return [int(report.kind), report.seq, report.ts, report.account, report.instrument,
            report.order_id, *report.fields.values()]


def run_drop_copy(venue: Venue, consumer: Consumer, batches: int = 25) -> None:
    for _ in range(batches):
        venue.trade()
        consumer.consume()
    consumer.settle()


def test_the_drop_copy_delivers_every_execution_report_exactly_once_across_gaps():
    venue = Venue(seed=9)
    drop = lambda index, frames: index in (3, 4, 5, 11) or 20 <= index < 24
    consumer = Consumer(venue, DropCopySession(), venue.dc, drop)
    run_drop_copy(venue, consumer)
    reports = [u for u in consumer.updates if isinstance(u, ExecutionReport)]
    assert [as_wire(r) for r in reports] == expected_reports(venue, since=1)
    assert [r.number for r in reports] == list(range(1, len(reports) + 1))
    assert consumer.session.gaps >= 2
    assert not [u for u in consumer.updates if not isinstance(u, ExecutionReport)]
    fill = next(r for r in reports if r.kind == P.ReportKind.FILL)
    assert fill["liquidity"] == P.MAKER and fill.order_id > 0
    venue.close()


def test_reports_no_longer_held_are_reported_lost_then_delivery_resumes():
    venue = Venue(seed=9, report_history=50)
    drop = lambda index, frames: 5 <= index < 15
    consumer = Consumer(venue, DropCopySession(), venue.dc, drop)
    run_drop_copy(venue, consumer)
    lost = [u for u in consumer.updates if isinstance(u, ReportsLost)]
    reports = [u for u in consumer.updates if isinstance(u, ExecutionReport)]
    assert len(lost) >= 1
    numbers = [r.number for r in reports]
    missing = set(range(1, numbers[-1] + 1)) - set(numbers)
    assert missing == {n for u in lost for n in range(u.first, u.last + 1)}
    assert numbers == sorted(set(numbers))
    venue.close()


def test_drop_copy_start_oldest_resume_and_session_change():
    venue = Venue(seed=3)
    for _ in range(5):
        venue.trade()
    venue.frames(venue.dc)
    oldest = Consumer(venue, DropCopySession(start="oldest"), venue.dc)
    run_drop_copy(venue, oldest, batches=5)
    got = [as_wire(u) for u in oldest.updates if isinstance(u, ExecutionReport)]
    assert got == expected_reports(venue, since=1)

    session, position = oldest.session.session, oldest.session.next
    resumed = Consumer(venue, DropCopySession(resume=(session, position - 10)), venue.dc)
    venue.load()                                # a new session before it even starts
    run_drop_copy(venue, resumed, batches=3)
    changed = [u for u in resumed.updates if isinstance(u, SessionChanged)]
    assert changed and changed[0].old_session == session
    after = [as_wire(u) for u in resumed.updates if isinstance(u, ExecutionReport)]
    assert after == expected_reports(venue, since=len(venue.events) - 3)
    venue.close()


# ---------------------------------------------------------------- the snapshot service
def test_the_snapshot_service_answers_bad_requests_clearly(venue):
    answer = venue.service.answer
    assert answer(b"\xc1")["error"] == "bad_request"
    assert answer(msgpack.packb([1, 2]))["error"] == "bad_request"
    assert answer(msgpack.packb({"op": "dance"}))["error"] == "bad_request"
    assert answer(msgpack.packb({"op": "snapshot"}))["error"] == "bad_request"
    assert answer(msgpack.packb({"op": "snapshot", "symbol": "ACME", "depth": -1}))["error"] \
        == "bad_request"
    assert answer(msgpack.packb({"op": "snapshot", "symbol": "NOPE"}))["error"] == \
        "unknown_symbol"
    assert answer(msgpack.packb({"op": "drop_copy", "from": "x"}))["error"] == "bad_request"
    reply = answer(msgpack.packb({"op": "snapshot", "symbol": "ACME", "depth": 1, "id": 5}))
    assert reply["id"] == 5 and reply["v"] == 1 and len(reply["bids"]) <= 1
    assert {i["symbol"] for i in answer(msgpack.packb({"op": "symbols"}))["instruments"]} == \
        {"ACME", "BOLT"}
    assert answer(msgpack.packb({"op": "status"}))["bad_requests"] == 6


# ---------------------------------------------------------------- a reset
class LosingFeed:
    """Stands in for the EventFeed at the moment it finds events lost for good."""

    def __init__(self) -> None:
        self.restarted_at: int | None = None
        self.resets = 1

    def drain(self) -> list:
        if self.resets:
            self.resets -= 1
            raise FeedReset(123, "the engine no longer holds them")
        return []

    def restart(self, from_seq: int) -> None:
        self.restarted_at = from_seq

    def close(self) -> None:
        self.resets = 0


def test_lost_events_make_a_new_session_a_lost_report_and_everyone_resyncs(venue):
    market = Consumer(venue, MarketDataSession(), venue.md)
    market.session.subscribe("ACME")
    drop_copy = Consumer(venue, DropCopySession(), venue.dc)
    for _ in range(3):
        venue.trade()
        market.consume()
        drop_copy.consume()
    published_to = venue.blp.last_seq
    for _ in range(4):                          # the service never sees these
        venue._run(venue.flow.batch(40))
    state = venue.blp.canonical_state()
    engine = {"reference": queries.reference(state, {}),
              "books": {**queries.books(state, {}), "seq": venue.blp.last_seq}}
    service = venue.service
    service.feed = feed = LosingFeed()
    service._primary = lambda: {"endpoints": {"control": "tcp://engine:1"}}
    service._ask = lambda endpoint, request: engine[request["op"]]
    old = service.session
    service._follow()
    assert service.session != old and service.ready and service.resets == 1
    assert feed.restarted_at == venue.blp.last_seq + 1
    for _ in range(3):
        venue.trade()
        market.consume()
        drop_copy.consume()
    market.settle()
    drop_copy.settle()
    assert "session" in [u.reason for u in market.updates if isinstance(u, Synced)]
    assert (market.session.book("ACME").bids(), market.session.book("ACME").asks()) == \
        venue.engine_book("ACME")
    changed = [u for u in drop_copy.updates if isinstance(u, SessionChanged)]
    lost = [u for u in drop_copy.updates if isinstance(u, ReportsLost)]
    assert [c.old_session for c in changed] == [old]
    assert [(u.first_seq, u.last_seq) for u in lost] == [(published_to + 1,
                                                          venue.blp.last_seq - 120)]
    after = [as_wire(u) for u in drop_copy.updates[drop_copy.updates.index(lost[0]):]
             if isinstance(u, ExecutionReport)]
    assert after == expected_reports(venue, since=len(venue.events) - 3)


class BadFeed(LosingFeed):
    """Hands out an event the books cannot take (a BOOK_LEVEL with side 9)."""

    def __init__(self, seq: int) -> None:
        super().__init__()
        self.seq = seq

    def drain(self) -> list:
        if self.resets:
            self.resets -= 1
            bad = np.zeros(1, EVENT)
            bad["kind"], bad["seq"], bad["side"], bad["order_count"] = \
                EventKind.BOOK_LEVEL, self.seq, 9, 1
            return [EventBatch(1, self.seq, self.seq, bad)]
        return []


def test_events_that_contradict_the_books_make_the_service_rebuild_not_crash(venue):
    state = venue.blp.canonical_state()
    engine = {"reference": queries.reference(state, {}),
              "books": {**queries.books(state, {}), "seq": venue.blp.last_seq}}
    service = venue.service
    service.feed = feed = BadFeed(venue.blp.last_seq + 1)
    service._primary = lambda: {"endpoints": {"control": "tcp://engine:1"}}
    service._ask = lambda endpoint, request: engine[request["op"]]
    old = service.session
    service._follow()
    assert service.session != old and service.ready and service.resets == 1
    assert feed.restarted_at == venue.blp.last_seq + 1
