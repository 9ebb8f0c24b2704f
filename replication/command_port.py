"""The command port: how producers (gateways, admin tools, tests) hand validated commands to
an engine node, and get back the events those commands caused. Protocol version 1.

Transport: ZeroMQ, the node binds a ROUTER, each producer connects a DEALER. Every message is
two frames, little-endian::

    request  (producer -> node)
      frame 1, 16 bytes: version u16 (1), kind u16 (1 = COMMANDS), count u32, request_id u64
      frame 2: count COMMAND records of 64 bytes (core.records); seq and ts are ignored,
               the sequencer assigns them

    reply    (node -> producer)
      frame 1, 32 bytes: version u16, kind u16 (2 = EVENTS, 3 = ERROR), count u32,
                         request_id u64, first_seq i64, status u32, reserved u32
      frame 2: EVENTS: count EVENT records of 128 bytes (core.records), all the events of the
               request's commands, in order; the request's commands got sequence numbers
               first_seq .. first_seq + commands - 1.
               ERROR: a UTF-8 message; status says why (see ``Status``); nothing was journaled.

A reply with EVENTS is the acknowledgement: it is sent only after the commands are durable
(journaled, and replicated when the node replicates). Requests may be pipelined; replies carry
the producer's ``request_id``. A request holds at most ``MAX_COMMANDS`` commands.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import zmq

from core.records import COMMAND, COMMAND_SIZE, EVENT, EVENT_SIZE

VERSION = 1
MAX_COMMANDS = 4096
REQUEST = struct.Struct("<HHIQ")
REPLY = struct.Struct("<HHIQqII")


class Kind(IntEnum):
    COMMANDS = 1
    EVENTS = 2
    ERROR = 3


class Status(IntEnum):
    OK = 0
    MALFORMED = 1       #: frames of the wrong size, version or kind
    TOO_LARGE = 2       #: more than MAX_COMMANDS commands
    NOT_PRIMARY = 3     #: this node does not accept commands (standby, fenced)
    UNAVAILABLE = 4     #: the primary accepts no orders now (its standby is lost and its
                        #: policy is to stop, or it stopped on an internal error)


class ProtocolError(ValueError):
    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status


def encode_request(request_id: int, commands: np.ndarray) -> list[bytes]:
    return [REQUEST.pack(VERSION, Kind.COMMANDS, len(commands), request_id),
            np.ascontiguousarray(commands, COMMAND).tobytes()]


def decode_request(frames: list[bytes]) -> tuple[int, np.ndarray]:
    """(request_id, commands) of a request; raises ProtocolError when malformed."""
    if len(frames) != 2 or len(frames[0]) != REQUEST.size:
        raise ProtocolError(Status.MALFORMED, "a request is a 16-byte header and a body")
    version, kind, count, request_id = REQUEST.unpack(frames[0])
    if version != VERSION or kind != Kind.COMMANDS:
        raise ProtocolError(Status.MALFORMED, f"unsupported version {version} or kind {kind}")
    if count == 0 or count > MAX_COMMANDS:
        raise ProtocolError(Status.TOO_LARGE, f"a request holds 1..{MAX_COMMANDS} commands")
    if len(frames[1]) != count * COMMAND_SIZE:
        raise ProtocolError(Status.MALFORMED, f"body of {len(frames[1])} bytes is not "
                                              f"{count} commands of {COMMAND_SIZE}")
    return request_id, np.frombuffer(frames[1], COMMAND).copy()


def encode_events(request_id: int, first_seq: int, events: np.ndarray) -> list[bytes]:
    return [REPLY.pack(VERSION, Kind.EVENTS, len(events), request_id, first_seq, Status.OK, 0),
            events.tobytes()]


def encode_error(request_id: int, status: Status, message: str) -> list[bytes]:
    return [REPLY.pack(VERSION, Kind.ERROR, 0, request_id, 0, status, 0),
            message.encode()]


@dataclass
class Reply:
    request_id: int
    first_seq: int
    events: np.ndarray | None      # None for an error
    status: Status = Status.OK
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.events is not None


def decode_reply(frames: list[bytes]) -> Reply:
    if len(frames) != 2 or len(frames[0]) != REPLY.size:
        raise ProtocolError(Status.MALFORMED, "a reply is a 32-byte header and a body")
    version, kind, count, request_id, first_seq, status, _ = REPLY.unpack(frames[0])
    if version != VERSION:
        raise ProtocolError(Status.MALFORMED, f"unsupported reply version {version}")
    if kind == Kind.ERROR:
        return Reply(request_id, 0, None, Status(status), frames[1].decode("utf-8", "replace"))
    if len(frames[1]) != count * EVENT_SIZE:
        raise ProtocolError(Status.MALFORMED, "reply body does not hold its events")
    return Reply(request_id, first_seq, np.frombuffer(frames[1], EVENT).copy())


class CommandClient:
    """A blocking producer: one DEALER, requests answered in order of completion."""

    def __init__(self, endpoint: str, context: zmq.Context | None = None,
                 timeout_ms: int = 10_000) -> None:
        self.context = context or zmq.Context.instance()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.timeout_ms = timeout_ms
        self._next_id = 1

    def send(self, commands: np.ndarray) -> int:
        """Send a request without waiting; returns its request id."""
        request_id = self._next_id
        self._next_id += 1
        self.socket.send_multipart(encode_request(request_id, commands))
        return request_id

    def receive(self, timeout_ms: int | None = None) -> Reply:
        """The next reply; raises TimeoutError if none comes in time."""
        if not self.socket.poll(self.timeout_ms if timeout_ms is None else timeout_ms):
            raise TimeoutError("no reply from the engine node")
        return decode_reply(self.socket.recv_multipart())

    def submit(self, commands: np.ndarray) -> Reply:
        """Send one request and wait for its reply."""
        request_id = self.send(commands)
        while True:
            reply = self.receive()
            if reply.request_id == request_id:
                return reply

    def close(self) -> None:
        self.socket.close(0)
