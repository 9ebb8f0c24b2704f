"""The witness: a third process that lets a standby promote itself without ever allowing two
primaries. Optional (off unless nodes are given ``--witness``).

It grants a **lease**, for one epoch, to one node at a time (REP socket, msgpack maps):

* ``{"op": "renew", "node", "epoch"}`` from the primary, every heartbeat: granted when the
  epoch is current (or newer: the witness learns it) and nobody else holds an unexpired lease;
  the answer says for how long (``lease_ms``);
* ``{"op": "claim", "node", "epoch"}`` from a standby that has lost its primary, for the next
  epoch: granted only when the current lease has expired; the claimant then holds the lease;
* ``{"op": "status"}``.

Why this is safe: the primary counts its lease from the moment it *sent* the renewal, minus a
margin, so its lease always ends before the witness's (which started when the renewal
arrived); it acknowledges nothing after that and fences itself when a renewal is refused. A
standby promotes only with a granted claim, which comes only after the witness's lease ended.
After a restart the witness knows no leases, so it grants no claim for one lease period.
The witness is then a single point of failure for *acknowledging*: a primary that cannot reach
it stops within one lease. Run it on a third machine.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import msgpack
import zmq

log = logging.getLogger("ringex.witness")


class Witness:
    def __init__(self, endpoint: str, lease_ms: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lease = lease_ms / 1000
        self.clock = clock
        self.epoch = 0
        self.holder: int | None = None
        self.lease_until = 0.0
        self.hold_until = clock() + self.lease      # leases granted before a restart
        self.socket = zmq.Context.instance().socket(zmq.REP)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(endpoint)
        self._stopping = False

    def answer(self, request: dict) -> dict:
        op, node, epoch = request.get("op"), request.get("node"), request.get("epoch")
        now = self.clock()
        if op == "status":
            return {"epoch": self.epoch, "holder": self.holder,
                    "lease_left_ms": max(0, round((self.lease_until - now) * 1000))}
        if not isinstance(node, int) or not isinstance(epoch, int):
            return {"ok": False, "reason": "requests name a node and an epoch"}
        expired = now >= self.lease_until
        if op == "renew":
            if epoch < self.epoch:
                return {"ok": False, "reason": f"epoch {self.epoch} exists", "epoch": self.epoch}
            if self.holder not in (None, node) and not expired:
                return {"ok": False, "reason": f"node {self.holder} holds the lease"}
            return self._grant(node, epoch, now)
        if op == "claim":
            if epoch <= self.epoch:
                return {"ok": False, "reason": f"epoch {epoch} is not above {self.epoch}"}
            if not expired or now < self.hold_until:
                return {"ok": False, "reason": "the primary's lease has not expired"}
            log.warning("granting node %d the claim to epoch %d", node, epoch)
            return self._grant(node, epoch, now)
        return {"ok": False, "reason": "ops are renew, claim, status"}

    def _grant(self, node: int, epoch: int, now: float) -> dict:
        self.holder, self.epoch, self.lease_until = node, epoch, now + self.lease
        return {"ok": True, "lease_ms": round(self.lease * 1000), "epoch": epoch}

    def run(self) -> None:
        log.info("witness ready, leases of %d ms", round(self.lease * 1000))
        while not self._stopping:
            if not self.socket.poll(100):
                continue
            try:
                request = msgpack.unpackb(self.socket.recv(), raw=False)
                reply = self.answer(request) if isinstance(request, dict) else \
                    {"ok": False, "reason": "not a request"}
            except (ValueError, msgpack.UnpackException):
                reply = {"ok": False, "reason": "undecodable request"}
            self.socket.send(msgpack.packb(reply))
        self.socket.close(0)

    def stop(self) -> None:
        self._stopping = True


class WitnessClient:
    """A node's side: one request at a time, never blocking the node's loop."""

    def __init__(self, endpoint: str, timeout_ms: int = 300) -> None:
        self.endpoint = endpoint
        self.timeout = timeout_ms / 1000
        self.socket: zmq.Socket | None = None
        self.sent_at: float | None = None

    def _connect(self) -> None:
        if self.socket is not None:
            self.socket.close(0)
        self.socket = zmq.Context.instance().socket(zmq.REQ)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(self.endpoint)
        self.sent_at = None

    def ask(self, request: dict) -> bool:
        """Send a request unless one is outstanding; returns whether it was sent."""
        if self.socket is None:
            self._connect()
        if self.sent_at is not None:
            if time.monotonic() - self.sent_at < self.timeout:
                return False
            self._connect()                          # lazy pirate: drop the lost request
        self.socket.send(msgpack.packb(request))
        self.sent_at = time.monotonic()
        return True

    def answer(self) -> tuple[dict, float] | None:
        """The reply to the outstanding request and when that request was sent, if it came."""
        if self.socket is None or self.sent_at is None or not self.socket.poll(0):
            return None
        reply = msgpack.unpackb(self.socket.recv(), raw=False)
        sent, self.sent_at = self.sent_at, None
        return reply, sent

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close(0)
