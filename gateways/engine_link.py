"""The gateway's link to the engine: validated commands to the primary, in batches, across
failovers.

::

    submit(command, tag) ──▶ queue ──flush()──▶ one request of up to max_batch commands
                                                per loop iteration ──▶ primary's command port
                                                       │ in flight until its reply
     probe every node's control port ◀── NOT_PRIMARY, UNAVAILABLE, or no reply in time
     (status): follow the accepting primary with the highest epoch; re-send everything
     in flight there, the same commands with the same client order ids

A reply with events means the commands are durable; the gateway builds its reports from the
event stream, so a reply only ends the request's time in flight. Re-sending is safe because
exactly-once is the engine's: an order it already has is answered DUPLICATE_ORDER. Commands
still queued (never sent) when no primary has been found for ``queue_timeout_s`` are given up
(``on_failed``), as are commands the engine refuses as malformed. ``tag`` is the caller's: it
comes back in those callbacks.
"""
from __future__ import annotations

import logging
import operator
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import zmq

from core.records import COMMAND, COMMAND_KIND_DTYPES, COMMAND_SIZE, command_fields
from replication.command_port import (MAX_COMMANDS, ProtocolError, Status, decode_reply,
                                      encode_request)
from replication.control import best_primary

from .codes import GatewayCode
from .control_channel import ControlChannel
from .validation import Command

log = logging.getLogger("ringex.gateway.link")

_GETTERS = {kind: operator.attrgetter(*command_fields(kind)) for kind in COMMAND_KIND_DTYPES
            if command_fields(kind)}


def pack(commands: list[Command]) -> np.ndarray:
    """COMMAND records for ``commands``, each kind writing only its own fields."""
    out = np.zeros(len(commands), COMMAND)
    rows = out.view(np.uint8).reshape(len(commands), COMMAND_SIZE)
    by_kind: dict[int, list[int]] = {}
    for index, command in enumerate(commands):
        by_kind.setdefault(command.kind, []).append(index)
    for kind, indexes in by_kind.items():
        getter = _GETTERS[kind]
        records = np.zeros(len(indexes), COMMAND_KIND_DTYPES[kind])   # zeroed gaps too
        records[:] = [(0, 0, kind, *getter(commands[i])) for i in indexes]
        rows[indexes] = records.view(np.uint8).reshape(len(indexes), COMMAND_SIZE)
    return out


@dataclass
class InFlight:
    commands: list[Command]
    tags: list[Any]
    records: np.ndarray
    sent_at: float
    resend: bool = False              #: to be sent again (failover, or refused unjournaled)
    retry_at: float = 0.0             #: not before this time


@dataclass
class LinkStats:
    requests: int = 0
    commands: int = 0
    resent_requests: int = 0
    primary_changes: int = 0
    given_up: int = 0
    by_status: dict = field(default_factory=dict)


class EngineLink:
    def __init__(self, nodes: list[str], context: zmq.Context, *,
                 on_failed: Callable[[list[Command], list[Any], int, str], None],
                 on_resent: Callable[[list[Command], list[Any]], None] = lambda c, t: None,
                 on_primary: Callable[[dict], None] = lambda status: None,
                 max_batch: int = MAX_COMMANDS, window: int = 8, reply_timeout_s: float = 2.0,
                 probe_interval_s: float = 0.2, control_timeout_s: float = 0.5,
                 queue_limit: int = 1 << 16, queue_timeout_s: float = 5.0) -> None:
        if not nodes:
            raise ValueError("the engine link needs at least one node control endpoint")
        if not 1 <= max_batch <= MAX_COMMANDS:
            raise ValueError(f"max_batch must be in 1..{MAX_COMMANDS}")
        self.context = context
        self.channels = {n: ControlChannel(n, context, control_timeout_s) for n in nodes}
        self.on_failed, self.on_resent, self.on_primary = on_failed, on_resent, on_primary
        self.max_batch, self.window = max_batch, window
        self.reply_timeout_s, self.probe_interval_s = reply_timeout_s, probe_interval_s
        self.queue_limit, self.queue_timeout_s = queue_limit, queue_timeout_s
        self.primary: dict | None = None           #: status of the node we send to
        self.socket: zmq.Socket | None = None
        self.queue: deque[tuple[Command, Any, float]] = deque()
        self.inflight: OrderedDict[int, InFlight] = OrderedDict()
        self._next_id = 1
        self._probing: dict[str, dict | None] | None = None
        self._next_probe = 0.0
        self._lost_since: float | None = time.monotonic()
        self._closed = False
        self.stats = LinkStats()

    # ------------------------------------------------------------ for the gateway
    @property
    def connected(self) -> bool:
        return self.socket is not None

    @property
    def primary_channel(self) -> ControlChannel | None:
        return self.channels.get(self.primary["endpoints"]["control"]) if self.primary \
            else None

    def sockets(self) -> list[zmq.Socket]:
        out = [c.socket for c in self.channels.values()]
        return out + [self.socket] if self.socket is not None else out

    def submit(self, command: Command, tag: Any, now: float) -> bool:
        """Queue a command for the next request; False if the queue is full."""
        if len(self.queue) >= self.queue_limit:
            return False
        self.queue.append((command, tag, now))
        return True

    def flush(self, now: float) -> None:
        """Send what is queued: one request per call (several only past max_batch), while
        fewer than ``window`` requests are in flight; and re-send what must be, in order."""
        if self.socket is None:
            return
        for request_id, flight in self.inflight.items():
            if flight.resend and now >= flight.retry_at:
                self.socket.send_multipart(encode_request(request_id, flight.records),
                                           copy=False)
                flight.sent_at, flight.resend = now, False
                self.stats.resent_requests += 1
                self.on_resent(flight.commands, flight.tags)
        while self.queue and len(self.inflight) < self.window:
            take = min(len(self.queue), self.max_batch)
            batch = [self.queue.popleft() for _ in range(take)]
            commands = [c for c, _, _ in batch]
            flight = InFlight(commands, [t for _, t, _ in batch], pack(commands), now)
            request_id = self._next_id
            self._next_id += 1
            self.inflight[request_id] = flight
            self.socket.send_multipart(encode_request(request_id, flight.records), copy=False)
            self.stats.requests += 1
            self.stats.commands += take

    def on_readable(self, sockets: set) -> None:
        """Handle whatever arrived on the sockets among ``sockets`` that are ours."""
        for channel in list(self.channels.values()):
            if channel.socket in sockets:
                channel.on_readable()
        if self.socket is not None and self.socket in sockets:
            self._replies()

    def tick(self, now: float) -> None:
        """Timeouts: control requests, replies that never came, queued commands that waited
        too long for a primary; and probing for the primary when we have none."""
        for channel in self.channels.values():
            channel.tick(now)
        if self.inflight and self._probing is None:
            oldest = next(iter(self.inflight.values()))
            if now - oldest.sent_at > self.reply_timeout_s:
                log.warning("no reply from the primary for %.1f s: looking for the primary",
                            now - oldest.sent_at)
                oldest.sent_at = now          # one probe per timeout, not one per tick
                self._probe(now)
        if self.socket is None and self._probing is None and now >= self._next_probe:
            self._probe(now)
        if self.socket is None and self.queue and self._lost_since is not None and \
                now - self._lost_since > self.queue_timeout_s:
            self._give_up_queue(f"no primary for {now - self._lost_since:.1f} s")

    def close(self) -> None:
        self._closed = True
        if self.socket is not None:
            self.socket.close(0)
            self.socket = None
        for channel in self.channels.values():
            channel.close()

    # ------------------------------------------------------------ replies
    def _replies(self) -> None:
        while self.socket is not None:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                reply = decode_reply(frames)
            except ProtocolError as e:
                log.error("undecodable reply from the primary: %s", e)
                continue
            flight = self.inflight.get(reply.request_id)
            self.stats.by_status[reply.status.name] = \
                self.stats.by_status.get(reply.status.name, 0) + 1
            if flight is None:
                if not reply.ok and reply.request_id == 0:
                    log.error("the primary refused a request it could not read: %s",
                              reply.message)
                continue
            if reply.ok:
                del self.inflight[reply.request_id]
            elif reply.status in (Status.NOT_PRIMARY, Status.UNAVAILABLE):
                now = time.monotonic()
                flight.resend, flight.retry_at = True, now + self.probe_interval_s
                if self._probing is None:
                    log.warning("primary refused a request (%s: %s): looking for the primary",
                                reply.status.name, reply.message)
                    self._probe(now)
            else:
                del self.inflight[reply.request_id]
                log.error("the engine refused %d commands: %s %s", len(flight.commands),
                          reply.status.name, reply.message)
                self.stats.given_up += len(flight.commands)
                self.on_failed(flight.commands, flight.tags, GatewayCode.ENGINE_REFUSED,
                               f"{reply.status.name}: {reply.message}")

    def _give_up_queue(self, why: str) -> None:
        commands, tags = [], []
        while self.queue:
            command, tag, _ = self.queue.popleft()
            commands.append(command)
            tags.append(tag)
        log.warning("gave up %d queued commands: %s", len(commands), why)
        self.stats.given_up += len(commands)
        self.on_failed(commands, tags, GatewayCode.ENGINE_UNAVAILABLE, why)

    # ------------------------------------------------------------ finding the primary
    def _disconnect(self) -> None:
        if self.socket is not None:
            self.socket.close(0)
            self.socket = None
            if self._lost_since is None:
                self._lost_since = time.monotonic()

    def _probe(self, now: float) -> None:
        """Ask every node for its status; ``_probed`` decides once all have answered."""
        self._probing = {}
        self._next_probe = now + self.probe_interval_s
        for endpoint, channel in self.channels.items():
            def answer(reply, endpoint=endpoint):
                self._probing[endpoint] = reply
                if len(self._probing) == len(self.channels):
                    self._probed()
            if not channel.ask({"op": "status"}, answer):
                answer(None)

    def _probed(self) -> None:
        replies, self._probing = self._probing, None
        if self._closed:
            return
        best = best_primary(replies.values())
        if best is None:
            if self.socket is not None and self.primary is not None:
                log.warning("no node says it is an accepting primary: waiting for one")
            self._disconnect()
            return
        endpoint = best["endpoints"]["commands"]
        same = self.socket is not None and self.primary is not None and \
            self.primary["endpoints"]["commands"] == endpoint and \
            self.primary.get("epoch") == best.get("epoch")
        if same:
            return            # still the primary: keep waiting, re-send what it refused
        changed = self.primary is not None
        self._disconnect()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDHWM, 0)
        self.socket.connect(endpoint)
        self.primary = best
        self._lost_since = None
        if changed:
            self.stats.primary_changes += 1
        log.info("sending to the primary: node %s, epoch %s, %s%s", best.get("node_id"),
                 best.get("epoch"), endpoint,
                 f" (re-sending {len(self.inflight)} requests)" if self.inflight else "")
        for flight in self.inflight.values():
            flight.resend, flight.retry_at = True, 0.0
        self.on_primary(best)
