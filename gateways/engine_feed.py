"""Follow the engine's event stream: every event exactly once, in sequence order, across gaps
and failovers. Gateways, market data and drop copy are built on it.

::

    nodes' control ports --status--> which one is primary? --> SUB to its event port
                                                                 |
      PUB message (epoch, first_seq..last_seq, events) ----------+
         already had it          -> dropped (or trimmed to the unseen part)
         starts after next_seq   -> gap: fetch next_seq.. from the node's history ("events" op)
         heartbeat ahead of us   -> lost tail: fetch it the same way
         silence > timeout       -> look for the primary again (a failover), then fetch

A consumer registers ``feed.socket`` in its poller and calls ``drain()`` when it is readable
and now and then (``drain`` also does the housekeeping). When the node no longer holds the
events the consumer needs (it restarted, or the consumer fell too far behind) ``drain`` raises
``FeedReset``: the consumer rebuilds what it derives from events out of the node's state
queries (``books``, ``orders``; each reply carries the ``seq`` it describes) and calls
``restart(seq + 1)``.

In ``sync`` replication every event a primary published is also on its standby, so a
failover loses nothing. In ``async`` mode a new primary may lack a tail its predecessor had
published; the feed notices (the new primary is behind what it delivered) and raises
``FeedReset``.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import zmq

from core.records import EVENT
from replication.control import best_primary, control_request
from replication.event_stream import EventBatch, StreamError, decode

log = logging.getLogger("ringex.feed")

RETRY_S = 0.2


class FeedReset(RuntimeError):
    """The events from ``next_seq`` on are no longer available: rebuild, then ``restart``."""

    def __init__(self, next_seq: int, why: str) -> None:
        super().__init__(f"events from seq {next_seq} are lost ({why}); rebuild from a state "
                         f"query and restart the feed")
        self.next_seq = next_seq


class FeedUnavailable(RuntimeError):
    """No primary answered (raised only by ``wait_for_primary``)."""


class EventFeed:
    """Every event from ``from_seq`` on, exactly once, in order (see the module docstring).

    ``nodes`` are the engine nodes' control endpoints. The feed's ``socket`` never changes,
    so it can stay registered in a poller across failovers.
    """

    def __init__(self, nodes: list[str], from_seq: int = 1, *, context: zmq.Context | None = None,
                 silence_timeout_ms: int = 1000, control_timeout_ms: int = 1000,
                 max_messages: int = 4096, rcvhwm: int = 100_000) -> None:
        if not nodes:
            raise ValueError("an event feed needs at least one node control endpoint")
        self.nodes = list(nodes)
        self.next_seq = from_seq
        self.epoch = 0
        self.primary: dict | None = None        #: the status of the node we follow
        self.silence_timeout = silence_timeout_ms / 1000
        self.control_timeout_ms = control_timeout_ms
        self.max_messages = max_messages
        self.socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.RCVHWM, rcvhwm)     # past it, messages drop: gaps
        self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._connected: str | None = None
        self._last_heard = time.monotonic()
        self._next_search = 0.0
        self._told: dict | None = None           #: a primary's status handed to ``follow``
        self._pending: list[EventBatch] = []     #: fetched outside ``drain``, not yet handed out
        self._reset: FeedReset | None = None     #: raised after the batches before it are out
        self.gaps_recovered = 0
        self.failovers = 0

    # ------------------------------------------------------------ public
    def drain(self) -> list[EventBatch]:
        """What has arrived, in order and without repeats; never blocks for long (it may ask a
        node for a missing range). Raises FeedReset when events were lost for good: after
        handing out every batch before the loss (so ``FeedReset.next_seq`` is exact)."""
        if self._reset is not None:
            reset, self._reset = self._reset, None
            raise reset
        out, self._pending = self._pending, []
        try:
            self._drain_into(out)
        except FeedReset as reset:
            if not out:
                raise
            self._reset = reset
        return out

    def _drain_into(self, out: list[EventBatch]) -> None:
        told, self._told = self._told, None
        if told is not None and told.get("epoch", 0) >= self.epoch:
            self._adopt(told, out)
        elif self.primary is None or \
                time.monotonic() - self._last_heard > self.silence_timeout:
            self._find_primary(out)
        for _ in range(self.max_messages):
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                batch = decode(frames)
            except StreamError as e:
                log.warning("dropped a malformed event message: %s", e)
                continue
            if batch.epoch < self.epoch:
                continue                        # a deposed primary's last words
            self.epoch = batch.epoch
            self._last_heard = time.monotonic()
            self._take(batch, out)

    def follow(self, status: dict) -> None:
        """Switch to this primary (its ``status`` reply) at the next ``drain``, without waiting
        for the old one's silence to time out: for a consumer that already learned of a
        failover (a gateway's engine link does)."""
        self._told = status

    def restart(self, from_seq: int) -> None:
        """Continue from ``from_seq`` after a FeedReset (the consumer has rebuilt to it - 1)."""
        self.next_seq = from_seq
        self._pending, self._reset = [], None
        self._last_heard = time.monotonic()

    def wait_for_primary(self, timeout_s: float = 10.0) -> dict:
        """Block until a primary is found; its status. Raises FeedUnavailable."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.primary is not None:
                return self.primary
            self._next_search = 0.0
            self._find_primary(self._pending)
            if self.primary is None:
                time.sleep(RETRY_S)
        raise FeedUnavailable(f"no primary among {self.nodes}")

    def close(self) -> None:
        self.socket.close(0)

    # ------------------------------------------------------------ internals
    def _take(self, batch: EventBatch, out: list[EventBatch]) -> None:
        if batch.last_seq < self.next_seq:
            return                                            # had it (or a heartbeat)
        if batch.first_seq > self.next_seq:
            self._recover(batch.first_seq - 1, out)           # a gap, or a lost tail
        if batch.is_heartbeat or batch.last_seq < self.next_seq:
            return
        events = batch.events
        if events["seq"][0] < self.next_seq:
            events = events[events["seq"] >= self.next_seq]
        out.append(EventBatch(batch.epoch, self.next_seq, batch.last_seq, events))
        self.next_seq = batch.last_seq + 1

    def _recover(self, through_seq: int, out: list[EventBatch]) -> None:
        """Fetch next_seq..through_seq from the primary's history."""
        if self.primary is None:
            return
        endpoint = self.primary["endpoints"]["control"]
        while self.next_seq <= through_seq:
            try:
                reply = control_request(endpoint, {"op": "events", "from_seq": self.next_seq},
                                        timeout_ms=self.control_timeout_ms)
            except TimeoutError:
                log.warning("primary %s did not answer a gap request", endpoint)
                self.primary = None
                return
            if reply.get("error") == "too_old":
                raise FeedReset(self.next_seq, f"{endpoint} holds events from seq "
                                               f"{reply.get('oldest_seq')} on")
            if "error" in reply:
                raise RuntimeError(f"{endpoint} refused an events request: {reply['error']}")
            if reply["last_seq"] < self.next_seq:
                return                                        # it has nothing newer yet
            events = np.frombuffer(reply["events"], EVENT)
            out.append(EventBatch(reply["epoch"], self.next_seq, reply["last_seq"], events))
            self.next_seq = reply["last_seq"] + 1
            self.gaps_recovered += 1

    def _find_primary(self, out: list[EventBatch]) -> None:
        """Ask every node for its status; follow the accepting primary with the highest epoch,
        then fetch whatever it has that we have not seen."""
        now = time.monotonic()
        if now < self._next_search:
            return
        self._next_search = now + RETRY_S
        best = best_primary(self._status(endpoint) for endpoint in self.nodes)
        if best is None:
            if self.primary is not None:
                log.warning("the primary went silent and no node is primary yet")
            self.primary = None
            return
        self._adopt(best, out)

    def _status(self, endpoint: str) -> dict | None:
        try:
            return control_request(endpoint, {"op": "status"},
                                   timeout_ms=self.control_timeout_ms // 4 or 1)
        except TimeoutError:
            return None

    def _adopt(self, best: dict, out: list[EventBatch]) -> None:
        """Follow the primary whose status is ``best``; fetch what we have not seen."""
        events_endpoint = best["endpoints"]["events"]
        if events_endpoint != self._connected:
            if self._connected is not None:
                self.socket.disconnect(self._connected)
                self.failovers += 1
                log.warning("following the new primary, node %s (epoch %s)",
                            best["node_id"], best["epoch"])
            self.socket.connect(events_endpoint)
            self._connected = events_endpoint
        self.primary = best
        self.epoch = max(self.epoch, best["epoch"])
        self._last_heard = time.monotonic()
        if best["applied_seq"] < self.next_seq - 1:
            raise FeedReset(self.next_seq, f"the primary (epoch {best['epoch']}) is at seq "
                                           f"{best['applied_seq']}, behind what was delivered")
        self._recover(best["applied_seq"], out)
