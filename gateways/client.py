"""Python clients of the order-entry gateway: ``OrderClient`` (blocking) and
``AsyncOrderClient`` (asyncio). Both speak ``docs/protocol.md`` v1.

::

    with OrderClient("tcp://127.0.0.1:7100", key) as client:        # connects and logs on
        ack = client.place("ACME", "buy", 100, price=1_000_000)      # waits for the answer
        if ack["exec"] == "accepted":
            client.cancel(order_id=ack["order_id"])
        for report in client.reports(timeout=1.0):                   # fills and the rest
            print(report)

Prices and quantities are integers (ticks of the instrument's price unit, and units).
Every message is a plain dict exactly as ``docs/protocol.md`` describes it.

Each request gets a fresh ``req``; a call that waits returns the gateway's answer to it: a
``report`` (``accepted``, ``rejected``, ``duplicate``, ``cancelled``, ``replaced``,
``mass_cancelled``), an ``order_status``, or a ``reject``. ``reports()`` yields everything the
gateway sends except heartbeats, answers included, in arrival order (the last
``keep_reports`` are kept until read). Waiting calls raise ``TimeoutError`` when no answer
comes in time. The clients send heartbeats by themselves; a client with
``cancel_on_disconnect=True`` that stops heartbeating has its orders cancelled.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import time
from collections import deque
from typing import AsyncIterator, Iterator

import msgpack
import zmq
import zmq.asyncio

from .protocol import VERSION, decode_incoming

log = logging.getLogger("ringex.client")

ANSWER_TYPES = frozenset({"report", "reject", "order_status", "logged_on", "logged_out",
                          "heartbeat"})


class LogonError(RuntimeError):
    """The gateway refused the logon; ``answer`` is its reject message."""

    def __init__(self, answer: dict) -> None:
        super().__init__(f"logon refused: {answer.get('reason')}: {answer.get('text')}")
        self.answer = answer


# ---------------------------------------------------------------- request builders
def _drop_none(**fields) -> dict:
    return {k: v for k, v in fields.items() if v is not None}


def new_order(symbol: str, side: str, quantity: int, price: int | None = None, *,
              client_order_id: int, order_type: str = "limit", time_in_force: str = "day",
              stop_price: int | None = None, trail_ticks: int | None = None,
              account: int | None = None) -> dict:
    """A ``new_order`` request map (without ``req``; for ``send_batch``)."""
    return _drop_none(type="new_order", symbol=symbol, side=side, quantity=quantity,
                      price=price, client_order_id=client_order_id, order_type=order_type,
                      time_in_force=time_in_force, stop_price=stop_price,
                      trail_ticks=trail_ticks, account=account)


def cancel(*, order_id: int | None = None, client_order_id: int | None = None,
           account: int | None = None) -> dict:
    return _drop_none(type="cancel", order_id=order_id, client_order_id=client_order_id,
                      account=account)


def modify(quantity: int, *, order_id: int | None = None, client_order_id: int | None = None,
           price: int | None = None, stop_price: int | None = None,
           account: int | None = None) -> dict:
    """``quantity`` is the order's new TOTAL quantity (filled + open), as in FIX."""
    return _drop_none(type="modify", quantity=quantity, order_id=order_id,
                      client_order_id=client_order_id, price=price, stop_price=stop_price,
                      account=account)


def mass_cancel(*, symbol: str | None = None, account: int | None = None) -> dict:
    return _drop_none(type="mass_cancel", symbol=symbol, account=account)


def order_status(*, order_id: int | None = None, client_order_id: int | None = None,
                 account: int | None = None) -> dict:
    return _drop_none(type="order_status", order_id=order_id, client_order_id=client_order_id,
                      account=account)


class ClientOrderIds:
    """Client order ids that stay unique across restarts: microseconds since the epoch,
    strictly increasing within the process."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns() // 1000)
            return self._last


def _configure(socket: zmq.Socket, server_key: str | bytes | None) -> None:
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.ROUTING_ID, b"c" + os.urandom(15))   # kept across reconnects
    socket.setsockopt(zmq.RCVHWM, 0)
    if server_key is not None:
        public, secret = zmq.curve_keypair()
        socket.curve_serverkey = server_key.encode() if isinstance(server_key, str) \
            else server_key
        socket.curve_publickey = public
        socket.curve_secretkey = secret


class _Mailbox:
    """What both clients share: request numbering, answers by ``req``, the report stream."""

    def __init__(self, keep_reports: int) -> None:
        self._reqs = itertools.count(1)
        self.answers: dict[int, dict] = {}
        self.expecting: set[int] = set()
        self.reports: deque[dict] = deque(maxlen=keep_reports)
        self.session: dict | None = None

    def stamp(self, request: dict) -> tuple[int, dict]:
        req = next(self._reqs)
        self.expecting.add(req)
        return req, {**request, "req": req}

    def take(self, frame: bytes) -> list[dict]:
        """File one frame's messages; returns them."""
        messages = decode_incoming(frame)
        for message in messages:
            kind = message.get("type")
            req = message.get("req")
            if req in self.expecting and kind in ANSWER_TYPES:
                self.expecting.discard(req)
                self.answers[req] = message
            if kind == "logged_out":
                self.session = None
            if kind != "heartbeat":
                self.reports.append(message)
        return messages


class OrderClient:
    """A blocking client; safe to share between threads (one lock guards the socket). A
    background thread sends heartbeats while the session is open."""

    def __init__(self, endpoint: str, key: str, *, cancel_on_disconnect: bool = False,
                 heartbeat_ms: int = 1000, server_key: str | bytes | None = None,
                 timeout: float = 10.0, keep_reports: int = 100_000,
                 context: zmq.Context | None = None, logon: bool = True) -> None:
        self.key = key
        self.cancel_on_disconnect = cancel_on_disconnect
        self.heartbeat_ms = heartbeat_ms
        self.timeout = timeout
        self.client_order_ids = ClientOrderIds()
        self.socket = (context or zmq.Context.instance()).socket(zmq.DEALER)
        _configure(self.socket, server_key)
        self.socket.connect(endpoint)
        self._box = _Mailbox(keep_reports)
        self._lock = threading.RLock()
        self._last_send = time.monotonic()
        self._closed = threading.Event()
        self._beats: threading.Thread | None = None
        if logon:
            try:
                self.logon()
            except BaseException:
                self.close()
                raise

    # ------------------------------------------------------------ session
    @property
    def session(self) -> dict | None:
        """The ``logged_on`` answer of the open session, or None."""
        return self._box.session

    def logon(self) -> dict:
        answer = self.request({"type": "logon", "key": self.key,
                               "heartbeat_ms": self.heartbeat_ms,
                               "cancel_on_disconnect": self.cancel_on_disconnect})
        if answer.get("type") != "logged_on":
            raise LogonError(answer)
        self._box.session = answer
        if self._beats is None:
            self._beats = threading.Thread(target=self._heartbeat, daemon=True,
                                           name="ringex-heartbeat")
            self._beats.start()
        return answer

    def logout(self) -> dict:
        """End the session (cancel-on-disconnect applies); the connection stays open."""
        return self.request({"type": "logout"})

    def ping(self) -> float:
        """Round trip to the gateway in seconds."""
        started = time.perf_counter()
        self.request({"type": "heartbeat"})
        return time.perf_counter() - started

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self.socket.close(0)

    def __enter__(self) -> "OrderClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _heartbeat(self) -> None:
        interval = self.heartbeat_ms / 1000
        while not self._closed.wait(interval / 4):
            if self._box.session is not None and \
                    time.monotonic() - self._last_send >= interval / 2:
                with self._lock:
                    if self._closed.is_set():
                        return
                    self._send({"type": "heartbeat"})

    # ------------------------------------------------------------ orders
    def place(self, symbol: str, side: str, quantity: int, price: int | None = None, *,
              wait: bool = True, **options) -> dict | int:
        """Enter an order (options as ``new_order``; ``client_order_id`` defaults to a fresh
        one). Returns its first answer (``accepted``, ``rejected``, ``duplicate`` or a
        ``reject``), or with ``wait=False`` the request's ``req``."""
        options.setdefault("client_order_id", self.client_order_ids())
        return self._call(new_order(symbol, side, quantity, price, **options), wait)

    def cancel(self, *, wait: bool = True, **reference) -> dict | int:
        """Cancel by ``order_id`` or ``client_order_id`` (and ``account``)."""
        return self._call(cancel(**reference), wait)

    def modify(self, quantity: int, *, wait: bool = True, **fields) -> dict | int:
        """Replace an order: new total ``quantity`` and ``price`` / ``stop_price``."""
        return self._call(modify(quantity, **fields), wait)

    def mass_cancel(self, *, wait: bool = True, **scope) -> dict | int:
        return self._call(mass_cancel(**scope), wait)

    def order_status(self, **reference) -> dict:
        return self.request(order_status(**reference))

    def send_batch(self, requests: list[dict]) -> list[int]:
        """Send many requests (maps from the builders above) in ONE frame; returns their
        ``req`` numbers in order (``wait_for`` each, or read ``reports``)."""
        reqs, stamped = [], []
        for request in requests:
            req, message = self._box.stamp(request)
            reqs.append(req)
            stamped.append(message)
        with self._lock:
            self._send({"type": "batch", "requests": stamped})
        return reqs

    # ------------------------------------------------------------ receiving
    def request(self, request: dict, timeout: float | None = None) -> dict:
        """Send one request and return its answer."""
        req, message = self._box.stamp(request)
        with self._lock:
            self._send(message)
        return self.wait_for(req, timeout)

    def wait_for(self, req: int, timeout: float | None = None) -> dict:
        """The answer to request ``req``; raises TimeoutError."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while req not in self._box.answers:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to request {req}")
            self._receive(left)
        return self._box.answers.pop(req)

    def next_report(self, timeout: float | None = None) -> dict | None:
        """The next message of the report stream, or None after ``timeout`` seconds."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self._box.reports:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._receive(left)
        return self._box.reports.popleft()

    def reports(self, timeout: float | None = None) -> Iterator[dict]:
        """Every message of the report stream until none comes for ``timeout`` seconds
        (forever if None)."""
        while True:
            report = self.next_report(timeout if timeout is not None else 3600.0)
            if report is None:
                if timeout is not None:
                    return
                continue
            yield report

    def _receive(self, timeout: float) -> None:
        with self._lock:
            if self.socket.poll(max(1, int(min(timeout, 0.05) * 1000))):
                while True:
                    try:
                        frame = self.socket.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._box.take(frame)

    def _send(self, message: dict) -> None:
        self.socket.send(msgpack.packb({"v": VERSION, **message}))
        self._last_send = time.monotonic()

    def _call(self, request: dict, wait: bool) -> dict | int:
        if wait:
            return self.request(request)
        req, message = self._box.stamp(request)
        with self._lock:
            self._send(message)
        return req


class AsyncOrderClient:
    """The asyncio client: ``await AsyncOrderClient.connect(endpoint, key)``. Methods mirror
    ``OrderClient``; a reader task files incoming messages, a heartbeat task keeps the
    session alive."""

    def __init__(self, endpoint: str, key: str, *, cancel_on_disconnect: bool = False,
                 heartbeat_ms: int = 1000, server_key: str | bytes | None = None,
                 timeout: float = 10.0, keep_reports: int = 100_000,
                 context: zmq.asyncio.Context | None = None) -> None:
        self.key = key
        self.cancel_on_disconnect = cancel_on_disconnect
        self.heartbeat_ms = heartbeat_ms
        self.timeout = timeout
        self.client_order_ids = ClientOrderIds()
        self.socket = (context or zmq.asyncio.Context.instance()).socket(zmq.DEALER)
        _configure(self.socket, server_key)
        self.socket.connect(endpoint)
        self._box = _Mailbox(keep_reports)
        self._waiters: dict[int, asyncio.Future] = {}
        self._report_ready = asyncio.Event()
        self._last_send = time.monotonic()
        self._tasks: list[asyncio.Task] = []

    @classmethod
    async def connect(cls, endpoint: str, key: str, **options) -> "AsyncOrderClient":
        """Connect and log on."""
        client = cls(endpoint, key, **options)
        client._tasks.append(asyncio.ensure_future(client._read()))
        try:
            await client.logon()
        except BaseException:
            await client.close()
            raise
        client._tasks.append(asyncio.ensure_future(client._heartbeat()))
        return client

    @property
    def session(self) -> dict | None:
        return self._box.session

    async def logon(self) -> dict:
        answer = await self.request({"type": "logon", "key": self.key,
                                     "heartbeat_ms": self.heartbeat_ms,
                                     "cancel_on_disconnect": self.cancel_on_disconnect})
        if answer.get("type") != "logged_on":
            raise LogonError(answer)
        self._box.session = answer
        return answer

    async def logout(self) -> dict:
        return await self.request({"type": "logout"})

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.socket.close(0)

    async def __aenter__(self) -> "AsyncOrderClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ------------------------------------------------------------ orders
    async def place(self, symbol: str, side: str, quantity: int, price: int | None = None, *,
                    wait: bool = True, **options) -> dict | int:
        options.setdefault("client_order_id", self.client_order_ids())
        return await self._call(new_order(symbol, side, quantity, price, **options), wait)

    async def cancel(self, *, wait: bool = True, **reference) -> dict | int:
        return await self._call(cancel(**reference), wait)

    async def modify(self, quantity: int, *, wait: bool = True, **fields) -> dict | int:
        return await self._call(modify(quantity, **fields), wait)

    async def mass_cancel(self, *, wait: bool = True, **scope) -> dict | int:
        return await self._call(mass_cancel(**scope), wait)

    async def order_status(self, **reference) -> dict:
        return await self.request(order_status(**reference))

    async def send_batch(self, requests: list[dict]) -> list[int]:
        reqs, stamped = [], []
        for request in requests:
            req, message = self._box.stamp(request)
            reqs.append(req)
            stamped.append(message)
        await self._send({"type": "batch", "requests": stamped})
        return reqs

    # ------------------------------------------------------------ receiving
    async def request(self, request: dict, timeout: float | None = None) -> dict:
        req, message = self._box.stamp(request)
        await self._send(message)
        return await self.wait_for(req, timeout)

    async def wait_for(self, req: int, timeout: float | None = None) -> dict:
        if req in self._box.answers:
            return self._box.answers.pop(req)
        future = self._waiters.setdefault(req, asyncio.get_running_loop().create_future())
        try:
            await asyncio.wait_for(asyncio.shield(future), self.timeout if timeout is None
                                   else timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no answer to request {req}") from None
        finally:
            self._waiters.pop(req, None)
        return self._box.answers.pop(req)

    async def next_report(self, timeout: float | None = None) -> dict | None:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self._box.reports:
            self._report_ready.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                await asyncio.wait_for(self._report_ready.wait(), left)
            except asyncio.TimeoutError:
                return None
        return self._box.reports.popleft()

    async def reports(self, timeout: float | None = None) -> AsyncIterator[dict]:
        while True:
            report = await self.next_report(timeout if timeout is not None else 3600.0)
            if report is None:
                if timeout is not None:
                    return
                continue
            yield report

    async def _read(self) -> None:
        while True:
            frame = await self.socket.recv()
            try:
                messages = self._box.take(frame)
            except ValueError as e:
                log.error("%s", e)
                continue
            for message in messages:
                req = message.get("req")
                waiter = self._waiters.get(req)
                if waiter is not None and not waiter.done() and req in self._box.answers:
                    waiter.set_result(None)
            if self._box.reports:
                self._report_ready.set()

    async def _heartbeat(self) -> None:
        interval = self.heartbeat_ms / 1000
        while True:
            await asyncio.sleep(interval / 4)
            if self._box.session is not None and \
                    time.monotonic() - self._last_send >= interval / 2:
                await self._send({"type": "heartbeat"})

    async def _send(self, message: dict) -> None:
        await self.socket.send(msgpack.packb({"v": VERSION, **message}))
        self._last_send = time.monotonic()

    async def _call(self, request: dict, wait: bool) -> dict | int:
        if wait:
            return await self.request(request)
        req, message = self._box.stamp(request)
        await self._send(message)
        return req
