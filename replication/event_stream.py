"""The engine's event stream: every event, in sequence order, for gateways and feeds.

Execution reports, market data and drop copy are all functions of the BLP's events. The primary
publishes them on its **event port** (a ZeroMQ PUB), one message per batch, after the batch is
durable and applied; a consumer that misses messages (PUB drops when a subscriber is slow, and a
subscriber that joins late sees nothing of the past) asks the node for the missing range on the
control port (``events`` op), served from a bounded in-memory ring, ``EventHistory``. Consumers
use ``gateways.engine_feed.EventFeed``, which does all of that and follows failovers.

Wire format, version 1, two frames, little-endian::

    frame 1, 32 bytes: version u16 (1), kind u16 (1 = EVENTS, 2 = HEARTBEAT), count u32,
                       epoch i64, first_seq i64, last_seq i64
    frame 2: count EVENT records of 128 bytes (core.records)

EVENTS covers the commands ``first_seq .. last_seq`` (every command has at least one event; an
event's ``seq`` is its command's). HEARTBEAT (count 0, empty frame 2) says "I am the primary and
have applied up to ``last_seq``"; ``first_seq`` is ``last_seq + 1``. It goes out when nothing
else did for ``HEARTBEAT_S``, so a consumer sees both a silent primary and a lost tail.

Sequence numbers are contiguous across batches and epochs. A standby keeps the ring too (it
applies every batch), but publishes nothing until it is promoted; then it serves the events of
batches its old primary acknowledged but never got to publish.
"""
from __future__ import annotations

import bisect
import struct
import time
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import zmq

from core.records import EVENT, EVENT_SIZE, join

VERSION = 1
HEADER = struct.Struct("<HHIqqq")
HEARTBEAT_S = 0.1
DEFAULT_HISTORY = 262_144         #: events kept for gap recovery (32 MiB)
MAX_REPLAY = 65_536               #: events per ``events`` reply at most


class Kind(IntEnum):
    EVENTS = 1
    HEARTBEAT = 2


class StreamError(ValueError):
    """A message that is not a version-1 event-stream message."""


@dataclass(frozen=True)
class EventBatch:
    """The events of the commands ``first_seq .. last_seq`` (``events`` may start later when a
    consumer already had the first ones)."""
    epoch: int
    first_seq: int
    last_seq: int
    events: np.ndarray

    @property
    def is_heartbeat(self) -> bool:
        return self.first_seq > self.last_seq


def encode(epoch: int, first_seq: int, last_seq: int, events: np.ndarray) -> list[bytes]:
    return [HEADER.pack(VERSION, Kind.EVENTS, len(events), epoch, first_seq, last_seq),
            events.tobytes()]


def encode_heartbeat(epoch: int, last_seq: int) -> list[bytes]:
    return [HEADER.pack(VERSION, Kind.HEARTBEAT, 0, epoch, last_seq + 1, last_seq), b""]


def decode(frames: list[bytes]) -> EventBatch:
    """Raises StreamError on anything but a well-formed version-1 message."""
    if len(frames) != 2 or len(frames[0]) != HEADER.size:
        raise StreamError("an event message is a 32-byte header and a body")
    version, kind, count, epoch, first, last = HEADER.unpack(frames[0])
    if version != VERSION or kind not in (Kind.EVENTS, Kind.HEARTBEAT):
        raise StreamError(f"unsupported event stream version {version} or kind {kind}")
    if len(frames[1]) != count * EVENT_SIZE:
        raise StreamError("event message body does not hold its events")
    events = np.frombuffer(frames[1], EVENT)
    if kind == Kind.EVENTS and (count == 0 or first > last or events["seq"][0] < first
                                or events["seq"][-1] > last):
        raise StreamError(f"events do not match their range {first}..{last}")
    return EventBatch(epoch, first, last, events)


class EventHistory:
    """The most recent events, whole batches, at least ``capacity`` of them when available.

    Batches must arrive in order and contiguous; one that does not (the node rebuilt its state
    from the journal, say) starts the history afresh, so ``since`` never answers with a hole.
    """

    def __init__(self, capacity: int = DEFAULT_HISTORY) -> None:
        self.capacity = capacity
        self._firsts: list[int] = []
        self._batches: list[np.ndarray] = []
        self._head = 0                 #: index of the oldest batch still held
        self._count = 0
        self.next_seq = 0              #: the seq the next batch must start at (0: any)

    def reset(self, next_seq: int) -> None:
        self._firsts, self._batches, self._head, self._count = [], [], 0, 0
        self.next_seq = next_seq

    def append(self, first_seq: int, last_seq: int, events: np.ndarray) -> None:
        """Keep a copy of one batch's events."""
        if self.next_seq and first_seq != self.next_seq:
            self.reset(first_seq)
        self._firsts.append(first_seq)
        self._batches.append(np.array(events, copy=True))
        self._count += len(events)
        self.next_seq = last_seq + 1
        while self._count - len(self._batches[self._head]) >= self.capacity:
            self._count -= len(self._batches[self._head])
            self._batches[self._head] = None
            self._head += 1
        if self._head > 1024 and self._head * 2 > len(self._batches):
            del self._firsts[:self._head], self._batches[:self._head]
            self._head = 0

    @property
    def oldest_seq(self) -> int:
        """The first seq held; ``next_seq`` when nothing is."""
        return self._firsts[self._head] if self._head < len(self._firsts) else self.next_seq

    def since(self, from_seq: int, limit: int = MAX_REPLAY) -> tuple[int, np.ndarray] | None:
        """(last_seq, events) for the commands from ``from_seq`` on, whole batches up to about
        ``limit`` events (always at least one batch); None when ``from_seq`` is no longer held.
        Nothing new: (from_seq - 1, no events)."""
        if from_seq < self.oldest_seq:
            return None
        if from_seq >= self.next_seq:
            return from_seq - 1, np.empty(0, EVENT)
        index = max(self._head, bisect.bisect_right(self._firsts, from_seq) - 1)
        parts, total = [], 0
        while index < len(self._batches) and (not parts or total < limit):
            part = self._batches[index]
            if not parts:
                part = part[part["seq"] >= from_seq]
            parts.append(part)
            total += len(part)
            index += 1
        last = self._firsts[index] - 1 if index < len(self._firsts) else self.next_seq - 1
        return last, join(parts, EVENT)


class EventPublisher:
    """Output stage of a primary: publish each batch's events and keep them in the history."""

    def __init__(self, socket: zmq.Socket, history: EventHistory, epoch) -> None:
        self.socket = socket
        self.history = history
        self.epoch = epoch              #: a callable: the node's current epoch
        self.last_sent = time.monotonic()

    def on_batch(self, cut, events: np.ndarray) -> None:
        last_seq = cut.first_seq + len(cut.commands) - 1
        self.history.append(cut.first_seq, last_seq, events)
        self.socket.send_multipart(encode(self.epoch(), cut.first_seq, last_seq, events),
                                   copy=False)
        self.last_sent = time.monotonic()

    def heartbeat_if_idle(self, last_seq: int) -> None:
        if time.monotonic() - self.last_sent >= HEARTBEAT_S:
            self.socket.send_multipart(encode_heartbeat(self.epoch(), last_seq))
            self.last_sent = time.monotonic()
