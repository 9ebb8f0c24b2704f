"""The engine's event stream: wire format, history ring, and ``EventFeed`` against real nodes
(gaps, late joiners, restarts and a failover), plus the state queries feeds rebuild from."""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from core import commands as C
from core.enums import AccountType, EventKind, Side
from core.records import EVENT, join
from gateways.engine_feed import EventFeed, FeedReset
from replication.command_port import CommandClient
from replication.event_stream import (HEADER, EventHistory, Kind, StreamError, decode, encode,
                                      encode_heartbeat)

from .processes import ROOT, NodeProcess

SETUP = C.batch(C.add_instrument(0, "ACME", tick_size=1, lot_size=1, reference_price=100),
                C.add_account(1, AccountType.MARGIN), C.add_account(2, AccountType.MARGIN),
                C.deposit_cash(1, 10**12), C.deposit_cash(2, 10**12))


def events_for(first_seq: int, commands: int, per_command: int = 2) -> np.ndarray:
    out = np.zeros(commands * per_command, EVENT)
    out["seq"] = np.repeat(np.arange(first_seq, first_seq + commands), per_command)
    out["kind"] = EventKind.BOOK_LEVEL
    return out


# ---------------------------------------------------------------- wire format
def test_a_message_round_trips_and_a_heartbeat_is_empty():
    events = events_for(5, 3)
    batch = decode(encode(2, 5, 7, events))
    assert (batch.epoch, batch.first_seq, batch.last_seq) == (2, 5, 7)
    assert batch.events.tobytes() == events.tobytes() and not batch.is_heartbeat
    beat = decode(encode_heartbeat(3, 7))
    assert beat.is_heartbeat and beat.last_seq == 7 and len(beat.events) == 0


@pytest.mark.parametrize("frames", [
    [b"x"],
    [b"\0" * 32],
    [HEADER.pack(2, Kind.EVENTS, 1, 1, 1, 1), bytes(128)],           # version 2
    [HEADER.pack(1, 9, 1, 1, 1, 1), bytes(128)],                     # unknown kind
    [HEADER.pack(1, Kind.EVENTS, 2, 1, 1, 1), bytes(128)],           # body too short
    [HEADER.pack(1, Kind.EVENTS, 0, 1, 1, 1), b""],                  # events without events
    [HEADER.pack(1, Kind.EVENTS, 2, 1, 5, 5), events_for(5, 2, 1).tobytes()],  # outside range
])
def test_malformed_messages_are_refused(frames):
    with pytest.raises(StreamError):
        decode(frames)


# ---------------------------------------------------------------- history
def test_history_answers_from_any_seq_it_holds_and_says_when_it_no_longer_does():
    history = EventHistory(capacity=10)
    history.reset(1)
    for first in range(1, 31, 3):                  # batches of 3 commands, 6 events each
        history.append(first, first + 2, events_for(first, 3))
    assert history.next_seq == 31
    assert history.oldest_seq == 25                 # at least 10 events kept, whole batches
    assert history.since(24) is None
    last, events = history.since(26)
    assert last == 30 and list(events["seq"]) == [26, 26, 27, 27, 28, 28, 29, 29, 30, 30]
    assert history.since(31)[0] == 30 and len(history.since(31)[1]) == 0


def test_history_replies_are_bounded_by_whole_batches():
    history = EventHistory(capacity=1000)
    history.reset(1)
    for first in range(1, 101, 10):
        history.append(first, first + 9, events_for(first, 10))
    last, events = history.since(5, limit=25)      # 12 events from the first batch, then 20
    assert last == 20 and events["seq"][0] == 5 and events["seq"][-1] == 20


def test_a_discontinuous_batch_starts_the_history_afresh_so_it_never_has_a_hole():
    history = EventHistory()
    history.reset(1)
    history.append(1, 3, events_for(1, 3))
    history.append(10, 12, events_for(10, 3))
    assert history.oldest_seq == 10 and history.since(4) is None


def test_a_long_history_compacts_without_losing_its_place():
    history = EventHistory(capacity=50)
    history.reset(1)
    for first in range(1, 20_001):
        history.append(first, first, events_for(first, 1, per_command=1))
    assert history.oldest_seq == 19_951
    last, events = history.since(19_990)
    assert last == 20_000 and list(events["seq"]) == list(range(19_990, 20_001))


# ---------------------------------------------------------------- against real nodes
def collect(feed: EventFeed, until_seq: int, timeout: float = 20.0) -> list:
    batches = []
    deadline = time.monotonic() + timeout
    while feed.next_seq <= until_seq:
        assert time.monotonic() < deadline, f"feed stuck at {feed.next_seq}, want {until_seq}"
        feed.socket.poll(50)
        batches.extend(feed.drain())
    return batches


def flatten(batches) -> np.ndarray:
    return join([b.events for b in batches], EVENT)


def orders(client: CommandClient, n: int, start: int = 1) -> np.ndarray:
    """n crossing orders, one per request; the concatenated events of their replies."""
    replies = []
    for i in range(start, start + n):
        account, side = (1, Side.BUY) if i % 2 else (2, Side.SELL)
        reply = client.submit(C.new_order(account, 0, side, 1 + i % 5, 99 + i % 3,
                                          client_order_id=i))
        assert reply.ok
        replies.append(reply.events)
    return join(replies, EVENT)


@pytest.fixture
def node(tmp_path):
    with NodeProcess(tmp_path / "node", snapshot_every=0, durability="async",
                     extra=("--replication", "none")) as running:
        yield running


def test_a_feed_gets_every_event_once_in_order_even_joining_late(node):
    client = CommandClient(node.command_endpoint)
    acked = [client.submit(SETUP).events, orders(client, 100)]
    feed = EventFeed([node.control_endpoint])          # joins after 105 commands: history
    try:
        batches = collect(feed, 105)
        acked.append(orders(client, 300, start=101))
        batches += collect(feed, 405)
        got = flatten(batches)
        assert got.tobytes() == join(acked, EVENT).tobytes()
        assert feed.gaps_recovered >= 1
    finally:
        feed.close()
        client.close()


def test_events_fetched_while_waiting_for_the_primary_are_handed_out_not_dropped(node):
    client = CommandClient(node.command_endpoint)
    acked = [client.submit(SETUP).events, orders(client, 20)]
    feed = EventFeed([node.control_endpoint])
    try:
        assert feed.wait_for_primary()["role"] == "primary"   # fetches seqs 1..25 already
        assert feed.next_seq == 26
        assert flatten(feed.drain()).tobytes() == join(acked, EVENT).tobytes()
    finally:
        feed.close()
        client.close()


def test_a_slow_subscriber_that_loses_messages_recovers_them(node):
    client = CommandClient(node.command_endpoint)
    acked = [client.submit(SETUP).events]
    feed = EventFeed([node.control_endpoint], rcvhwm=2)   # drops nearly everything
    try:
        collect(feed, 5)
        acked = [orders(client, 400)]                 # nobody reads while these go out
        got = flatten(collect(feed, 405))
        assert got.tobytes() == join(acked, EVENT).tobytes()
        assert feed.gaps_recovered >= 1
    finally:
        feed.close()
        client.close()


def test_the_state_queries_describe_the_book_and_the_accounts_live_orders(node):
    client = CommandClient(node.command_endpoint)
    client.submit(SETUP)
    client.submit(C.batch(C.new_order(1, 0, Side.BUY, 5, 99, client_order_id=1),
                          C.new_order(1, 0, Side.BUY, 7, 99, client_order_id=2),
                          C.new_order(1, 0, Side.BUY, 1, 98, client_order_id=3),
                          C.new_order(2, 0, Side.SELL, 4, 101, client_order_id=1),
                          C.new_order(2, 0, Side.SELL, 2, 99, client_order_id=2)))
    books = node.control({"op": "books", "depth": 5})
    assert books["seq"] == 10
    [book] = books["books"]
    assert book["symbol"] == "ACME" and book["last_price"] == 99
    assert book["bids"] == [[99, 10, 2], [98, 1, 1]] and book["asks"] == [[101, 4, 1]]
    ref = node.control({"op": "reference"})
    assert ref["instruments"][0]["symbol"] == "ACME" and len(ref["accounts"]) == 2
    mine = node.control({"op": "orders", "account": 1})["orders"]
    assert sorted((o["client_order_id"], o["leaves"], o["cum"]) for o in mine) == [
        (1, 3, 2), (2, 7, 0), (3, 1, 0)]
    assert "error" in node.control({"op": "orders", "account": "x"})
    assert "error" in node.control({"op": "books", "depth": -1})
    assert node.control({"op": "events", "from_seq": 0})["error"].startswith("from_seq")
    client.close()


def test_a_restarted_node_no_longer_holds_old_events_and_the_feed_says_so(tmp_path):
    node = NodeProcess(tmp_path / "node", snapshot_every=0, durability="async",
                       extra=("--replication", "none")).start()
    try:
        client = CommandClient(node.command_endpoint)
        client.submit(SETUP)
        client.close()
        node.stop()
        node.start()
        feed = EventFeed([node.control_endpoint])
        with pytest.raises(FeedReset) as reset:
            collect(feed, 5)
        assert reset.value.next_seq == 1
        feed.restart(node.control({"op": "books"})["seq"] + 1)
        client = CommandClient(node.command_endpoint)
        acked = orders(client, 10)
        assert flatten(collect(feed, 15)).tobytes() == acked.tobytes()
        feed.close()
        client.close()
    finally:
        node.close()


def test_the_feed_follows_a_failover_without_a_gap_or_a_repeat(tmp_path):
    primary = NodeProcess(tmp_path / "a", node_id=1, snapshot_every=0).start()
    standby = NodeProcess(tmp_path / "b", role="standby", node_id=2, snapshot_every=0,
                          primary=primary.replication_endpoint).start()
    feed = EventFeed([primary.control_endpoint, standby.control_endpoint])
    try:
        client = CommandClient(primary.command_endpoint)
        acked = [client.submit(SETUP).events, orders(client, 50)]
        collect(feed, 55)
        client.close()
        primary.kill()
        out = subprocess.run([sys.executable, "-m", "cli.main", "failover",
                              "--standby", standby.control_endpoint,
                              "--old-primary", primary.control_endpoint],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        client = CommandClient(standby.command_endpoint)
        acked.append(orders(client, 50, start=51))
        batches = collect(feed, 105)
        assert flatten(batches).tobytes()[-len(acked[-1].tobytes()):] == acked[-1].tobytes()
        assert feed.failovers == 1 and feed.epoch == 2
        client.close()
    finally:
        feed.close()
        standby.close()
        primary.close()
