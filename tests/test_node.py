"""An engine node as a real process on loopback: acknowledgements, bad frames, control, restart."""
from __future__ import annotations

import msgpack
import numpy as np
import pytest
import zmq

from core import commands as C
from core.enums import AccountType, EventKind, Side
from journal.lmdb_journal import LmdbJournal
from replication.command_port import (REQUEST, CommandClient, Kind, Status, decode_reply,
                                      encode_request)

from .processes import NodeProcess

SETUP = C.batch(C.add_instrument(0, "ACME", tick_size=1, lot_size=1, reference_price=100),
                C.add_account(1, AccountType.MARGIN), C.add_account(2, AccountType.MARGIN),
                C.deposit_cash(1, 10**12), C.deposit_cash(2, 10**12))


@pytest.fixture
def node(tmp_path):
    with NodeProcess(tmp_path / "node", snapshot_every=0) as running:
        yield running


def journaled(node: NodeProcess) -> np.ndarray:
    with LmdbJournal(node.data_dir / "journal", readonly=True) as journal:
        batches = [b.commands for b in journal.batches()]
    return np.concatenate([b.view(np.uint8).reshape(-1, 64) for b in batches]) \
        if batches else np.zeros((0, 64), np.uint8)


def test_replies_come_after_journaling_with_the_commands_sequence_numbers(node):
    client = CommandClient(node.command_endpoint)
    first = client.submit(SETUP)
    assert first.ok and first.first_seq == 1
    assert [int(k) for k in first.events["kind"]] == [
        EventKind.INSTRUMENT_ADDED, EventKind.ACCOUNT_ADDED, EventKind.ACCOUNT_ADDED,
        EventKind.CASH_MOVED, EventKind.CASH_MOVED]
    sell = client.submit(C.new_order(2, 0, Side.SELL, 10, 100, client_order_id=1))
    buy = client.submit(C.new_order(1, 0, Side.BUY, 4, 100, client_order_id=1))
    assert (sell.first_seq, buy.first_seq) == (6, 7)
    assert EventKind.TRADE in buy.events["kind"]
    rows = journaled(node)
    assert len(rows) == 7
    sent = C.batch(SETUP, C.new_order(2, 0, Side.SELL, 10, 100, client_order_id=1),
                   C.new_order(1, 0, Side.BUY, 4, 100, client_order_id=1))
    assert np.array_equal(rows[:, 16:], sent.view(np.uint8).reshape(-1, 64)[:, 16:])
    client.close()


def test_pipelined_requests_from_two_producers_each_get_their_own_replies(node):
    a, b = CommandClient(node.command_endpoint), CommandClient(node.command_endpoint)
    assert a.submit(SETUP).ok
    sent = {}
    for i in range(1, 201):
        sent[("a", a.send(C.new_order(1, 0, Side.BUY, 1, 99 + i % 3, client_order_id=i)))] = i
        sent[("b", b.send(C.new_order(2, 0, Side.SELL, 1, 99 + i % 3, client_order_id=i)))] = i
    seqs = []
    for name, client in (("a", a), ("b", b)):
        for _ in range(200):
            reply = client.receive()
            assert reply.ok and (name, reply.request_id) in sent
            accepted = reply.events[reply.events["kind"] == EventKind.ORDER_ACCEPTED]
            assert int(accepted["client_order_id"][0]) == sent[(name, reply.request_id)]
            seqs.append(reply.first_seq)
    assert sorted(seqs) == list(range(6, 406))           # every command sequenced once
    assert node.status()["last_seq"] == 405
    a.close()
    b.close()


@pytest.mark.parametrize("frames, status", [
    ([b"short"], Status.MALFORMED),
    ([REQUEST.pack(2, Kind.COMMANDS, 1, 7), bytes(64)], Status.MALFORMED),     # version 2
    ([REQUEST.pack(1, Kind.EVENTS, 1, 7), bytes(64)], Status.MALFORMED),       # wrong kind
    ([REQUEST.pack(1, Kind.COMMANDS, 2, 7), bytes(64)], Status.MALFORMED),     # body short
    ([REQUEST.pack(1, Kind.COMMANDS, 0, 7), b""], Status.TOO_LARGE),
    ([REQUEST.pack(1, Kind.COMMANDS, 5000, 7), bytes(64 * 5000)], Status.TOO_LARGE),
    ([b"\xff" * 16, b"garbage", b"more"], Status.MALFORMED),
])
def test_malformed_requests_get_an_error_and_never_reach_the_journal(node, frames, status):
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.connect(node.command_endpoint)
    socket.send_multipart(frames)
    assert socket.poll(5000)
    reply = decode_reply(socket.recv_multipart())
    assert not reply.ok and reply.status == status and reply.message
    assert node.status()["last_seq"] == 0
    socket.send_multipart(encode_request(9, SETUP))       # the node carries on
    assert socket.poll(5000) and decode_reply(socket.recv_multipart()).ok
    socket.close(0)


def test_the_control_port_answers_and_refuses_nonsense(node):
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.connect(node.control_endpoint)
    for request in (b"\xc1not msgpack", msgpack.packb([1, 2]), msgpack.packb({"op": "dance"})):
        socket.send(request)
        assert socket.poll(5000)
        assert "error" in msgpack.unpackb(socket.recv(), raw=False)
    socket.close(0)
    status = node.status(with_hash=True)
    assert status["role"] == "primary" and status["epoch"] == 1 and len(status["state_hash"]) == 64


def test_a_snapshot_on_request_a_clean_stop_and_a_restart_that_recovers(node):
    client = CommandClient(node.command_endpoint)
    client.submit(SETUP)
    for i in range(1, 51):
        client.submit(C.new_order(1 + i % 2, 0, Side(1 + i % 2), 3, 99 + i % 3,
                                  client_order_id=i))
    assert node.snapshot() == {"ok": True, "seq": 55}
    client.submit(C.new_order(1, 0, Side.BUY, 3, 100, client_order_id=99))
    before = node.status(with_hash=True)
    assert node.stop() == 0
    with LmdbJournal(node.data_dir / "journal", readonly=True) as journal:
        marks = dict(journal.checkpoints())
    assert marks[56].hex() == before["state_hash"] and 55 in marks
    client.close()

    node.start()                                     # recovers: snapshot 55 + one command
    after = node.status(with_hash=True)
    assert (after["last_seq"], after["state_hash"]) == (56, before["state_hash"])
    client = CommandClient(node.command_endpoint)
    again = client.submit(C.new_order(1, 0, Side.BUY, 3, 100, client_order_id=99))
    assert again.first_seq == 57 and int(again.events["kind"][0]) == EventKind.DUPLICATE_ORDER
    client.close()
