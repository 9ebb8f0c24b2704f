"""The engine link against fake engine nodes in this process: batching, the in-flight window,
finding the primary, re-sending the very same requests after a failover or a silent primary,
giving up queued commands when no primary comes, and the control channel's timeouts."""
from __future__ import annotations

import time

import msgpack
import numpy as np
import pytest
import zmq

from core.enums import CommandKind as K
from core.records import COMMAND, EVENT, join
from gateways.codes import GatewayCode as G
from gateways.control_channel import ControlChannel
from gateways.engine_link import EngineLink, pack
from gateways.validation import Command
from replication.command_port import Status, decode_request, encode_error, encode_events

CONTEXT = zmq.Context.instance()
_names = iter(range(10**6))


class FakeNode:
    """A control REP and a command ROUTER on inproc endpoints, answered by ``serve``."""

    def __init__(self, role: str = "standby", epoch: int = 1) -> None:
        n = next(_names)
        self.control_endpoint = f"inproc://control-{n}"
        self.command_endpoint = f"inproc://commands-{n}"
        self.control = CONTEXT.socket(zmq.REP)
        self.control.bind(self.control_endpoint)
        self.commands = CONTEXT.socket(zmq.ROUTER)
        self.commands.bind(self.command_endpoint)
        self.role, self.epoch = role, epoch
        self.answer_status = True
        self.reply_with: Status | None = Status.OK     #: None: never reply
        self.received: list[tuple[int, np.ndarray]] = []
        self.seq = 0

    def serve(self) -> None:
        while self.answer_status and self.control.poll(0):
            self.control.recv()
            self.control.send(msgpack.packb({
                "role": self.role, "accepting": self.role == "primary", "epoch": self.epoch,
                "node_id": self.epoch, "endpoints": {"commands": self.command_endpoint,
                                                     "control": self.control_endpoint}}))
        while self.commands.poll(0):
            producer, *body = self.commands.recv_multipart()
            request_id, commands = decode_request(body)
            self.received.append((request_id, commands))
            if self.reply_with is Status.OK:
                self.commands.send_multipart([producer, *encode_events(
                    request_id, self.seq + 1, np.zeros(len(commands), EVENT))])
                self.seq += len(commands)
            elif self.reply_with is not None:
                self.commands.send_multipart(
                    [producer, *encode_error(request_id, self.reply_with, "no")])

    def close(self) -> None:
        self.control.close(0)
        self.commands.close(0)


class Recorder:
    def __init__(self) -> None:
        self.failed: list[tuple] = []
        self.resent: list[list[Command]] = []
        self.primaries: list[dict] = []

    def link(self, nodes, **options) -> EngineLink:
        return EngineLink([n.control_endpoint for n in nodes], CONTEXT,
                          on_failed=lambda c, t, code, text: self.failed.append((c, t, code)),
                          on_resent=lambda c, t: self.resent.append(c),
                          on_primary=self.primaries.append, **options)


def run(link: EngineLink, nodes, seconds: float, until=lambda: False) -> None:
    """Drive the link and the fake nodes together, as the gateway loop would."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not until():
        for node in nodes:
            node.serve()
        poller = zmq.Poller()
        for socket in link.sockets():
            poller.register(socket, zmq.POLLIN)
        ready = {s for s, _ in poller.poll(5)}
        link.on_readable(ready)
        now = time.monotonic()
        link.tick(now)
        link.flush(now)


def orders(n: int, start: int = 1) -> list[Command]:
    return [Command(K.NEW_ORDER, 1, 0, 1, 2, 2, 0, i, 0, 100, 0, 10)
            for i in range(start, start + n)]


@pytest.fixture
def nodes():
    made = [FakeNode("primary"), FakeNode("standby")]
    yield made
    for node in made:
        node.close()


def test_what_arrives_goes_in_one_request_and_big_bursts_in_requests_of_max_batch(nodes):
    rec = Recorder()
    link = rec.link(nodes, max_batch=4096)
    run(link, nodes, 2, until=lambda: link.connected)
    assert link.connected and rec.primaries[0]["epoch"] == 1
    for command in orders(10):
        link.submit(command, None, time.monotonic())
    run(link, nodes, 2, until=lambda: not link.inflight and len(nodes[0].received) == 1)
    assert [len(c) for _, c in nodes[0].received] == [10]
    for command in orders(10_000, 100):
        link.submit(command, None, time.monotonic())
    run(link, nodes, 5, until=lambda: not link.inflight and not link.queue)
    assert [len(c) for _, c in nodes[0].received] == [10, 4096, 4096, 1808]
    sent = join([c for _, c in nodes[0].received[1:]], COMMAND)
    assert sent.tobytes() == pack(orders(10_000, 100)).tobytes()
    assert not rec.failed and not rec.resent


def test_at_most_window_requests_are_in_flight(nodes):
    rec = Recorder()
    link = rec.link(nodes, max_batch=10, window=2)
    nodes[0].reply_with = None
    run(link, nodes, 2, until=lambda: link.connected)
    for command in orders(50):
        link.submit(command, None, time.monotonic())
    run(link, nodes, 0.3)
    assert len(nodes[0].received) == 2 and len(link.queue) == 30


def test_a_refusing_primary_is_replaced_and_the_same_requests_re_sent(nodes):
    old, new = nodes
    rec = Recorder()
    link = rec.link(nodes)
    run(link, nodes, 2, until=lambda: link.connected)
    old.reply_with = Status.NOT_PRIMARY
    for command in orders(5):
        link.submit(command, ("tag", command.client_order_id), time.monotonic())
    run(link, nodes, 0.5, until=lambda: bool(old.received))
    old.role, new.role, new.epoch = "fenced", "primary", 2
    run(link, nodes, 3, until=lambda: not link.inflight)
    assert not link.inflight and len(new.received) == 1
    assert new.received[0][1].tobytes() == old.received[0][1].tobytes()
    assert new.received[0][0] == old.received[0][0]               # the same request id
    assert rec.resent == [orders(5)] and link.primary["epoch"] == 2
    assert link.stats.primary_changes == 1 and not rec.failed


def test_a_silent_primary_is_given_up_after_the_reply_timeout(nodes):
    old, new = nodes
    rec = Recorder()
    link = rec.link(nodes, reply_timeout_s=0.3, control_timeout_s=0.1)
    run(link, nodes, 2, until=lambda: link.connected)
    old.reply_with = None
    for command in orders(3):
        link.submit(command, None, time.monotonic())
    run(link, nodes, 0.2)
    assert link.inflight
    old.answer_status = False                              # as if killed
    new.role, new.epoch = "primary", 2
    run(link, nodes, 3, until=lambda: not link.inflight)
    assert not link.inflight and new.received[0][1].tobytes() == pack(orders(3)).tobytes()


def test_a_slow_primary_that_is_still_primary_is_waited_for(nodes):
    rec = Recorder()
    link = rec.link(nodes, reply_timeout_s=0.1)
    nodes[0].reply_with = None
    run(link, nodes, 2, until=lambda: link.connected)
    link.submit(orders(1)[0], None, time.monotonic())
    run(link, nodes, 0.6)
    assert len(nodes[0].received) == 1 and link.inflight and not rec.resent


def test_queued_commands_are_given_up_when_no_primary_comes(nodes):
    for node in nodes:
        node.role = "standby"
    rec = Recorder()
    link = rec.link(nodes, queue_timeout_s=0.3)
    link.submit(orders(1)[0], "mine", time.monotonic())
    run(link, nodes, 1.5, until=lambda: bool(rec.failed))
    [(commands, tags, code)] = rec.failed
    assert tags == ["mine"] and code == G.ENGINE_UNAVAILABLE and not link.queue


def test_a_request_the_engine_calls_malformed_is_given_up(nodes):
    rec = Recorder()
    link = rec.link(nodes)
    nodes[0].reply_with = Status.MALFORMED
    run(link, nodes, 2, until=lambda: link.connected)
    link.submit(orders(1)[0], "t", time.monotonic())
    run(link, nodes, 2, until=lambda: bool(rec.failed))
    assert rec.failed[0][1:] == (["t"], G.ENGINE_REFUSED) and not link.inflight


def test_the_control_channel_queues_requests_and_times_out():
    node = FakeNode("primary")
    channel = ControlChannel(node.control_endpoint, CONTEXT, timeout_s=0.2, max_queued=2)
    answers = []
    assert channel.ask({"op": "status"}, answers.append)
    assert channel.ask({"op": "status"}, answers.append)
    assert channel.ask({"op": "status"}, answers.append)
    assert not channel.ask({"op": "status"}, answers.append)        # queue full
    deadline = time.monotonic() + 2
    while len(answers) < 3 and time.monotonic() < deadline:
        node.serve()
        if channel.socket.poll(5):
            channel.on_readable()
    assert [a["role"] for a in answers] == ["primary"] * 3 and channel.idle
    node.answer_status = False
    channel.ask({"op": "status"}, answers.append)
    time.sleep(0.25)
    channel.tick(time.monotonic())
    assert answers[-1] is None and channel.idle
    channel.close()
    node.close()
