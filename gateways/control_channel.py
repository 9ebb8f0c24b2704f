"""Non-blocking requests to one engine node's control port, from inside a poll loop.

The node's control port is a REP socket: one msgpack map in, one out, in lock step. A
``ControlChannel`` speaks to it through a DEALER (with the empty delimiter frame REP expects),
keeps one request outstanding and queues the rest, and gives up on a request after
``timeout_s``: its callback then gets ``None`` and the socket is replaced, so a late answer can
never be taken for the next request's.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import Callable

import msgpack
import zmq

log = logging.getLogger("ringex.gateway.control")

Callback = Callable[["dict | None"], None]


class ControlChannel:
    def __init__(self, endpoint: str, context: zmq.Context, timeout_s: float = 1.0,
                 max_queued: int = 64) -> None:
        self.endpoint = endpoint
        self.context = context
        self.timeout_s = timeout_s
        self.max_queued = max_queued
        self.socket = self._connect()
        self._queue: deque[tuple[dict, Callback]] = deque()
        self._current: tuple[dict, Callback, float] | None = None

    def _connect(self) -> zmq.Socket:
        socket = self.context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.connect(self.endpoint)
        return socket

    @property
    def idle(self) -> bool:
        return self._current is None and not self._queue

    def ask(self, request: dict, callback: Callback) -> bool:
        """Queue a request; ``callback(reply)`` runs from ``on_readable`` or ``tick`` (with
        None on timeout). False (and no callback) when too many are queued."""
        if len(self._queue) >= self.max_queued:
            return False
        self._queue.append((request, callback))
        self._send_next()
        return True

    def _send_next(self) -> None:
        if self._current is not None or not self._queue:
            return
        request, callback = self._queue.popleft()
        self.socket.send_multipart([b"", msgpack.packb(request)])
        self._current = (request, callback, time.monotonic())

    def on_readable(self) -> None:
        """Take whatever replies arrived and run their callbacks."""
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if self._current is None:
                continue
            _, callback, _ = self._current
            self._current = None
            try:
                reply = msgpack.unpackb(frames[-1], raw=False)
            except Exception:
                reply = None
                log.warning("undecodable control reply from %s", self.endpoint)
            if not isinstance(reply, dict):
                reply = None
            self._send_next()
            callback(reply)

    def tick(self, now: float) -> None:
        """Time out the outstanding request if it waited too long."""
        if self._current is None or now - self._current[2] < self.timeout_s:
            return
        request, callback, _ = self._current
        self._current = None
        self.socket.close(0)
        self.socket = self._connect()
        self._send_next()
        callback(None)

    def close(self) -> None:
        self.socket.close(0)
        pending = ([self._current[1]] if self._current else []) + [c for _, c in self._queue]
        self._current = None
        self._queue.clear()
        for callback in pending:
            callback(None)
