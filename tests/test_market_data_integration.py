"""Market data and drop copy as real processes on loopback: engine node(s), ``ringex
marketdata``, and the client library.

Orders go straight to the engine's command port (``CommandClient``); the engine's replies
carry every event, which is what each test judges by: after a random session, every
subscriber's local book equals the engine's (``books`` control op), the trades a subscriber
saw are the engine's trades, and the drop copy holds exactly the execution reports of the
engine's events, each once, in order. Subscribers that miss messages (a service whose PUB
queue for them is tiny while they are not reading; a late joiner; a service restart) resync
and end equal all the same.
"""
from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import zmq
from click.testing import CliRunner

from cli.node import failover
from core.enums import EventKind
from gateways import md_protocol as P
from gateways.market_data_client import (AsyncDropCopyClient, AsyncMarketDataClient,
                                         DropCopyClient, ExecutionReport, MarketDataClient,
                                         SessionChanged, Synced, Trade)
from replication.command_port import CommandClient

from .md_processes import MarketDataProcess, RandomFlow
from .processes import NodeProcess

pytestmark = pytest.mark.timeout(120)

SYMBOLS = ("ACME", "BOLT")


class Session:
    """Drives the engine and remembers every event it answered with."""

    def __init__(self, endpoint: str, seed: int) -> None:
        self.client = CommandClient(endpoint)
        self.flow = RandomFlow(seed, instruments=len(SYMBOLS))
        self.events: list[np.ndarray] = []

    def submit(self, commands) -> None:
        reply = self.client.submit(commands)
        assert reply.ok, reply.message
        self.events.append(reply.events)

    def trade(self, requests: int, size: int = 50, between=lambda: None) -> None:
        for _ in range(requests):
            self.submit(self.flow.batch(size))
            between()

    def since(self, seq: int) -> np.ndarray:
        events = np.concatenate(self.events)
        return events[events["seq"] > seq]

    def use(self, endpoint: str) -> None:
        self.client.close()
        self.client = CommandClient(endpoint)


def caught_up(md: MarketDataProcess, node: NodeProcess, timeout: float = 20) -> dict:
    target = node.status()["last_seq"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = md.status()
        if status["seq"] >= target:
            return status
        time.sleep(0.02)
    raise AssertionError(f"market data stuck at {md.status()} (engine at {target})")


def settle(*clients, seconds: float = 0.8) -> list[list]:
    """Let every client handle what is in flight, heartbeats included; their updates."""
    out = [[] for _ in clients]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        idle = True
        for i, client in enumerate(clients):
            updates = client.poll(0)
            out[i] += updates
            idle = idle and not updates
        if idle:
            time.sleep(0.005)
    for i, client in enumerate(clients):
        if hasattr(client, "synced"):
            for symbol in client.core.symbols:
                assert client.wait_synced(symbol, 10), symbol
            out[i] += client.poll(0)
    return out


def assert_books_equal(node: NodeProcess, client) -> None:
    books = {b["symbol"]: b for b in node.control({"op": "books"})["books"]}
    for symbol in client.core.symbols:
        book = client.book(symbol)
        assert (book.bids(), book.asks()) == (books[symbol]["bids"], books[symbol]["asks"]), \
            symbol
        assert books[symbol]["bids"] or books[symbol]["asks"]        # not trivially empty


def wire(reports: list) -> list[tuple]:
    """Received reports as the service's ``execution_reports`` makes them."""
    return [(int(r.kind), r.seq, r.ts, r.account, r.instrument, r.order_id,
             *r.fields.values()) for r in reports if isinstance(r, ExecutionReport)]


def trades_of(events: np.ndarray, instrument: int) -> list[int]:
    mine = events[(events["kind"] == EventKind.TRADE) & (events["instrument"] == instrument)]
    return mine["trade_id"].tolist()


def test_subscribers_and_the_drop_copy_match_the_engine_through_gaps_and_a_restart(tmp_path):
    with NodeProcess(tmp_path / "node", durability="async",
                     extra=("--replication", "none")) as node:
        session = Session(node.command_endpoint, seed=11)
        session.submit(session.flow.setup())
        md = MarketDataProcess([node.control_endpoint], tmp_path / "md.log",
                               extra=("--send-hwm", "10"))
        with md:
            start_seq = md.status()["seq"]
            live = MarketDataClient(md.publish_endpoint, md.snapshot_endpoint)
            slow = MarketDataClient(md.publish_endpoint, md.snapshot_endpoint, rcvhwm=1)
            slow.sub.disconnect(md.publish_endpoint)    # a tiny kernel buffer as well, so
            slow.sub.setsockopt(zmq.RCVBUF, 2048)       # that the service's queue for it
            slow.sub.connect(md.publish_endpoint)       # (10 messages) overflows
            drop_copy = DropCopyClient(md.drop_copy_endpoint, md.snapshot_endpoint,
                                       start="oldest")
            for symbol in SYMBOLS:
                live.subscribe(symbol)
                slow.subscribe(symbol)
                assert live.wait_synced(symbol) and slow.wait_synced(symbol)
            got, reports = [], []

            def keep_up() -> None:                  # the live ones read as they go
                got.extend(live.poll(0))
                reports.extend(drop_copy.poll(0))

            session.trade(30, between=keep_up)
            late = MarketDataClient(md.publish_endpoint, md.snapshot_endpoint)
            late.subscribe("BOLT", ["depth", "trades"])
            session.trade(30, between=keep_up)
            caught_up(md, node)
            more, _, _, dc = settle(live, slow, late, drop_copy)
            got += more
            reports += dc

            for client in (live, slow, late):
                assert_books_equal(node, client)
            assert slow.core.gaps >= 1 and slow.core.resyncs >= 1     # it really lost some
            events = session.since(start_seq)
            for instrument, symbol in enumerate(SYMBOLS):
                seen = [u.trade_id for u in got if isinstance(u, Trade) and u.symbol == symbol]
                assert seen == trades_of(events, instrument) and seen     # even if it lost
                                                                          # some on the way
            assert wire(reports) == P.execution_reports(events)
            assert len(reports) > 1000 and drop_copy.core.bad_messages == 0
            quote = live.quote("ACME")
            assert (quote.bid, quote.ask) == (live.book("ACME").top().bid,
                                              live.book("ACME").top().ask)
            assert live.candles("ACME")

        # the service restarts on the same ports: a new session, everyone resyncs
        restarted = MarketDataProcess([node.control_endpoint], tmp_path / "md2.log")
        restarted.publish_endpoint, restarted.snapshot_endpoint, \
            restarted.drop_copy_endpoint = md.publish_endpoint, md.snapshot_endpoint, \
            md.drop_copy_endpoint
        with restarted:
            restart_seq = restarted.status()["seq"]
            got.clear()
            reports.clear()
            session.trade(10, between=keep_up)
            caught_up(restarted, node)
            more, dc = settle(live, drop_copy, seconds=1.2)
            got += more
            reports += dc
            assert_books_equal(node, live)
            assert "session" in [u.reason for u in got if isinstance(u, Synced)]
            assert [u for u in reports if isinstance(u, SessionChanged)]
            after = [r for r in reports if isinstance(r, ExecutionReport)
                     and r.session == restarted.status()["session"]]
            assert wire(after) == P.execution_reports(session.since(restart_seq))
            for client in (live, slow, late, drop_copy):
                client.close()


def test_async_clients_on_a_service_started_before_any_instrument_existed(tmp_path):
    with NodeProcess(tmp_path / "node", durability="async",
                     extra=("--replication", "none")) as node:
        session = Session(node.command_endpoint, seed=5)
        with MarketDataProcess([node.control_endpoint], tmp_path / "md.log") as md:
            start_seq = md.status()["seq"]
            assert start_seq == 0 and md.status()["instruments"] == 0
            session.submit(session.flow.setup())       # instruments appear as events
            caught_up(md, node)
            assert md.status()["instruments"] == len(SYMBOLS)

            async def main() -> tuple[list, list]:
                async with AsyncMarketDataClient(md.publish_endpoint, md.snapshot_endpoint) \
                        as client, AsyncDropCopyClient(md.drop_copy_endpoint,
                                                       md.snapshot_endpoint,
                                                       start="oldest") as drop_copy:
                    await client.subscribe("ACME")
                    assert await client.wait_synced("ACME")
                    sending = asyncio.get_running_loop().run_in_executor(None, session.trade,
                                                                         10)
                    trades = [t async for t in client.trades(timeout=1.0)]
                    await sending
                    trades += [t async for t in client.trades(timeout=0.5)]
                    assert_books_equal(node, client)
                    reports = [r async for r in drop_copy.reports(timeout=0.5)]
                    return trades, reports

            trades, reports = asyncio.run(main())
            assert trades and [t.trade_id for t in trades] == \
                trades_of(session.since(start_seq), 0)
            assert wire(reports) == P.execution_reports(session.since(start_seq))


def test_the_service_follows_a_failover_losing_and_repeating_nothing(tmp_path):
    capacities = {"instruments": 8, "accounts": 64, "orders": 1 << 13, "positions": 512,
                  "client-ids": 1 << 15}
    old = NodeProcess(tmp_path / "a", node_id=1, durability="async", capacities=capacities)
    with old:
        new = NodeProcess(tmp_path / "b", role="standby", node_id=2, durability="async",
                          primary=old.replication_endpoint, capacities=capacities)
        with new:
            session = Session(old.command_endpoint, seed=23)
            session.submit(session.flow.setup())
            nodes = [old.control_endpoint, new.control_endpoint]
            with MarketDataProcess(nodes, tmp_path / "md.log") as md:
                start = md.status()
                live = MarketDataClient(md.publish_endpoint, md.snapshot_endpoint)
                drop_copy = DropCopyClient(md.drop_copy_endpoint, md.snapshot_endpoint,
                                           start="oldest")
                for symbol in SYMBOLS:
                    live.subscribe(symbol)
                    assert live.wait_synced(symbol)
                got, reports = [], []

                def keep_up() -> None:
                    got.extend(live.poll(0))
                    reports.extend(drop_copy.poll(0))

                session.trade(15, between=keep_up)
                result = CliRunner().invoke(failover, ["--standby", new.control_endpoint,
                                                       "--old-primary", old.control_endpoint])
                assert result.exit_code == 0, result.output
                session.use(new.command_endpoint)
                session.trade(15, between=keep_up)
                status = caught_up(md, new)
                more, dc = settle(live, drop_copy, seconds=1.5)
                got += more
                reports += dc
                assert status["failovers"] >= 1 and status["epoch"] == 2
                assert status["session"] == start["session"] and status["resets"] == 0
                assert_books_equal(new, live)
                events = session.since(start["seq"])
                for instrument, symbol in enumerate(SYMBOLS):
                    assert [u.trade_id for u in got if isinstance(u, Trade)
                            and u.symbol == symbol] == trades_of(events, instrument)
                assert wire(reports) == P.execution_reports(events)
                assert not [u for u in got if isinstance(u, Synced) and u.reason != "subscribed"]
                live.close()
                drop_copy.close()
