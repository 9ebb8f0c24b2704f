"""The primary's end of the replication link: streams journaled batches to one standby.

It is the pipeline's ``Replicator`` (``core.pipeline``): ``send`` goes out before the primary's
own fsync, ``wait_acknowledged`` returns once the standby has journaled the batch (``sync``
mode) so the two fsyncs overlap.

Standby states::

    absent ──hello──▶ catching_up ──cursor reaches the journal's end──▶ live
      ▲                    │                                              │
      └──── no message for peer_timeout, or no ack within sync_timeout ───┘

While ``catching_up`` the link replays the primary's journal to the standby from where the
standby's history agrees with ours (``welcome``'s keep point), at most ``window`` unacknowledged
batches ahead; live batches are not sent separately then, because the cursor will read them
from the journal: the standby sees every batch once, in order. In ``sync`` mode acknowledgements
are awaited only from a ``live`` standby.

Losing the standby in ``sync`` mode follows ``on_loss``: ``async`` (default) carries on without
it and raises a loud alarm (``degraded`` in status, an error in the log) until it is live
again; ``stop`` accepts no new orders until it is back (the ``idle`` callback keeps serving
control requests and refusing commands meanwhile, and says when the node is stopping).
"""
from __future__ import annotations

import logging
import time
from collections import deque
from typing import Callable

import zmq

from journal.base import Journal
from journal.format import GENESIS_HASH, Batch

from . import protocol as P

log = logging.getLogger("ringex.replication")

MODES = ("sync", "async", "none")


class StandbyWaitAbandoned(RuntimeError):
    """The node is stopping while a batch waits for a lost standby (on_loss=stop): the batch
    is journaled here but was never applied or acknowledged; recovery applies it."""
LOSS_POLICIES = ("async", "stop")


class StandbyLink:
    def __init__(self, socket: zmq.Socket, journal: Journal, *, node_id: int, mode: str = "sync",
                 on_loss: str = "async", sync_timeout_ms: int = 1000, peer_timeout_ms: int = 1500,
                 heartbeat_ms: int = 100, window: int = 64,
                 idle: Callable[[], bool] = lambda: True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if mode not in MODES or on_loss not in LOSS_POLICIES:
            raise ValueError(f"mode must be one of {MODES}, on_loss one of {LOSS_POLICIES}")
        self.socket = socket
        self.journal = journal
        self.node_id = node_id
        self.mode = mode
        self.on_loss = on_loss
        self.sync_timeout = sync_timeout_ms / 1000
        self.peer_timeout = peer_timeout_ms / 1000
        self.heartbeat = heartbeat_ms / 1000
        self.window = window
        self.idle = idle
        self.clock = clock
        self.state = "absent"
        self.peer: bytes | None = None
        self.peer_node: int | None = None
        self.cursor = 0
        self.acked = 0
        self._unacked: deque[tuple[int, float]] = deque()   # (last seq of a sent batch, when)
        self._last_heard = 0.0
        self._last_beat = 0.0
        self.alarm: str | None = None if mode != "sync" else \
            "no standby connected: acknowledged commands are durable on this node only"
        self.diverged: dict | None = None
        self.higher_epoch: int | None = None
        self.standby_seq = 0

    # ------------------------------------------------------------ incoming
    def poll(self) -> None:
        """Handle every message that has arrived (never blocks)."""
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                message, _ = P.decode(frames[1:])
            except P.ProtocolError as e:
                log.warning("dropped a replication message: %s", e)
                continue
            self._handle(frames[0], message)

    def _handle(self, peer: bytes, message: dict) -> None:
        if message["epoch"] > self.journal.epoch:
            self.higher_epoch = message["epoch"]          # someone was promoted: fence us
            return
        kind = message["t"]
        if kind == P.HELLO:
            self._welcome(peer, message)
            return
        if peer != self.peer:
            return                                       # a standby we no longer talk to
        self._last_heard = self.clock()
        if kind == P.ACK:
            self.acked = max(self.acked, message["seq"])
            while self._unacked and self._unacked[0][0] <= self.acked:
                self._unacked.popleft()
        elif kind == P.HEARTBEAT:
            self.standby_seq = message["seq"]
        elif kind == P.DIVERGED:
            self.diverged = {k: message[k] for k in ("seq", "ours", "theirs")}
            log.error("standby %s reports a state hash mismatch at seq %d", self.peer_node,
                      message["seq"])

    def _epoch_end(self, epoch: int) -> int:
        """The last sequence number this journal holds from epochs up to ``epoch``."""
        for batch in self.journal.batches():
            if batch.epoch > epoch:
                return batch.first_seq - 1
        return self.journal.last_seq

    def _welcome(self, peer: bytes, hello: dict) -> None:
        keep = min(hello["last_seq"], self.journal.last_seq)
        if hello["epoch"] < self.journal.epoch:
            keep = min(keep, self._epoch_end(hello["epoch"]))
        ours = self.journal.batch_containing(keep) if keep > 0 else None
        if keep > 0 and (ours is None or ours.last_seq != keep):
            return self._refuse(peer, f"seq {keep} does not end a batch here")
        keep_hash = ours.hash if ours is not None else GENESIS_HASH
        if keep == hello["last_seq"] and bytes(hello["last_hash"]) != keep_hash:
            return self._refuse(peer, f"the histories differ at seq {keep}")
        if self.peer is not None and self.peer != peer:
            log.warning("standby %s replaced by node %s", self.peer_node, hello["node"])
        self.peer, self.peer_node = peer, hello["node"]
        self.state = "catching_up"
        self.cursor = keep + 1
        self.acked = keep
        self._unacked.clear()
        self._last_heard = self.clock()
        self._send(P.WELCOME, node=self.node_id, keep_seq=keep, keep_hash=keep_hash)
        log.info("standby node %s connected at seq %d (we are at %d): catching up",
                 self.peer_node, keep, self.journal.last_seq)

    def _refuse(self, peer: bytes, reason: str) -> None:
        log.error("refused a standby: %s", reason)
        self.socket.send_multipart([peer, *P.encode(P.REFUSE, self.journal.epoch,
                                                    reason=reason)])

    # ------------------------------------------------------------ outgoing
    def _send(self, kind: str, raw: bytes | None = None, **fields) -> None:
        self.socket.send_multipart([self.peer, *P.encode(kind, self.journal.epoch, raw,
                                                         **fields)], copy=False)

    def _send_batch(self, batch: Batch, live: bool) -> None:
        self._send(P.BATCH, batch.raw, live=live)
        self._unacked.append((batch.last_seq, self.clock()))

    def pump(self) -> None:
        """Catch-up sending, heartbeats and loss detection; call it every loop iteration."""
        now = self.clock()
        if self.peer is not None and now - self._last_heard > self.peer_timeout:
            self._lose(f"no word from the standby for {self.peer_timeout:.1f} s")
        while self.state == "catching_up" and len(self._unacked) < self.window:
            batch = self.journal.batch_containing(self.cursor)
            if batch is None:
                self.state = "live"
                self.alarm = None
                log.info("standby node %s is live at seq %d", self.peer_node, self.cursor - 1)
                break
            self._send_batch(batch, live=False)
            self.cursor = batch.last_seq + 1
        if self.peer is not None and now - self._last_beat >= self.heartbeat:
            self._last_beat = now
            self._send(P.HEARTBEAT, seq=self.journal.last_seq, live=self.state == "live")

    def send(self, batch: Batch) -> None:
        """Pipeline hook, before the primary's own fsync: stream a live batch."""
        if self.state == "live":
            self._send_batch(batch, live=True)

    def wait_acknowledged(self, batch: Batch) -> None:
        """Pipeline hook, after the primary's fsync: in sync mode, wait for the standby."""
        if self.mode != "sync" or self.state != "live":
            return
        deadline = self.clock() + self.sync_timeout
        while self.acked < batch.last_seq and self.state == "live":
            remaining = deadline - self.clock()
            if remaining <= 0:
                self._lose(f"no acknowledgement of seq {batch.last_seq} within "
                           f"{self.sync_timeout:.1f} s")
                break
            if self.socket.poll(max(1, int(remaining * 1000))):
                self.poll()
        if self.on_loss == "stop":
            while self.acked < batch.last_seq:        # accept no orders until it is back
                if not self.idle():
                    raise StandbyWaitAbandoned(f"stopped while seq {batch.last_seq} waited "
                                               f"for the standby")
                if self.socket.poll(50):
                    self.poll()
                self.pump()

    def send_checkpoint(self, seq: int, state_hash: bytes) -> None:
        if self.state == "live":
            self._send(P.CHECKPOINT, seq=seq, hash=state_hash)

    def _lose(self, reason: str) -> None:
        """Give up on the standby. We also stop talking to it (no heartbeats), so it soon
        notices, says hello again and is caught up from where it is."""
        was = self.state
        self.state = "absent"
        self.peer = None
        self._unacked.clear()
        if self.mode == "sync" and was != "absent":
            self.alarm = f"standby lost ({reason}); " + (
                "continuing without it (async)" if self.on_loss == "async"
                else "accepting no orders until it is back")
            log.error("REPLICATION DEGRADED: %s", self.alarm)

    # ------------------------------------------------------------ reporting
    def status(self) -> dict:
        now = self.clock()
        return {"mode": self.mode, "standby": self.state, "standby_node": self.peer_node,
                "acked_seq": self.acked,
                "lag_commands": max(0, self.journal.last_seq - self.acked)
                if self.state != "absent" else None,
                "lag_batches": len(self._unacked) if self.state == "live" else None,
                "lag_seconds": round(now - self._unacked[0][1], 6) if self._unacked else 0.0,
                "alarm": self.alarm, "diverged": self.diverged}
