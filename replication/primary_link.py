"""The standby's end of the replication link: follows one primary.

For every batch the primary streams, in order: journal it (verifying its hash and its link to
our last batch, fsync per our durability policy), acknowledge it, then apply it to our own BLP,
whose events go nowhere (a standby's outputs are silent until it is promoted). So the standby's
state is always current (hot), and an acknowledgement means the batch is durable here.

On connecting it says ``hello`` (our epoch, last seq and hash) until welcomed. ``welcome`` says
how much of our history the primary shares: anything after that point is a tail this node
journaled as a former primary and never replicated (so, in sync mode, never acknowledged to
anyone); it is dropped, and the state rebuilt, before catching up.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

import zmq

from journal.base import Journal
from journal.format import Batch, ChainError, JournalError, decode

from . import protocol as P

log = logging.getLogger("ringex.replication")


class RefusedByPrimary(JournalError):
    """The primary cannot reconcile this node's history; its data must be rebuilt."""


class PrimaryLink:
    def __init__(self, context: zmq.Context, endpoint: str, journal: Journal, *, node_id: int,
                 apply: Callable[[Batch], None], rebuild: Callable[[], None],
                 heartbeat_ms: int = 100, peer_timeout_ms: int = 1500,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.endpoint = endpoint
        self.journal = journal
        self.node_id = node_id
        self.apply = apply
        self.rebuild = rebuild
        self.heartbeat = heartbeat_ms / 1000
        self.peer_timeout = peer_timeout_ms / 1000
        self.clock = clock
        self.socket = context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.state = "connecting"
        self.primary_node: int | None = None
        self.primary_seq = 0
        self.applied = journal.last_seq
        self.diverged: dict | None = None
        self.checks_passed = 0
        self._theirs: dict[int, bytes] = {}      # the primary's checkpoints, by seq
        self._ours: dict[int, bytes] = {}        # our own, from our snapshots
        self._last_heard = self.clock()
        self._last_beat = 0.0
        self._last_hello = 0.0

    def close(self) -> None:
        self.socket.close(0)

    def _send(self, kind: str, **fields) -> None:
        self.socket.send_multipart(P.encode(kind, self.journal.epoch, **fields))

    # ------------------------------------------------------------ incoming
    def poll(self) -> None:
        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                message, raw = P.decode(frames)
            except P.ProtocolError as e:
                log.warning("dropped a message from the primary: %s", e)
                continue
            self._handle(message, raw)

    def _handle(self, message: dict, raw: bytes | None) -> None:
        kind = message["t"]
        if message["epoch"] < self.journal.epoch:
            log.warning("ignored %s from a primary of epoch %d (ours is %d)", kind,
                        message["epoch"], self.journal.epoch)
            return
        self._last_heard = self.clock()
        if kind == P.REFUSE:
            raise RefusedByPrimary(f"the primary refused this node: {message['reason']}")
        if kind == P.WELCOME:
            self._welcomed(message)
        elif self.state == "connecting":
            return                                 # nothing counts before the welcome
        elif kind == P.BATCH:
            self._batch(message, raw)
        elif kind == P.CHECKPOINT:
            self._theirs[message["seq"]] = bytes(message["hash"])
            self._check()
        elif kind == P.HEARTBEAT:
            self.primary_seq = message["seq"]
            if message["live"] and self.state == "catching_up" and \
                    self.applied >= message["seq"]:
                self.state = "live"

    def _welcomed(self, welcome: dict) -> None:
        keep = welcome["keep_seq"]
        if keep < self.journal.last_seq:
            mine = self.journal.batch_containing(keep) if keep > 0 else None
            if keep > 0 and (mine is None or mine.last_seq != keep or
                             mine.hash != bytes(welcome["keep_hash"])):
                raise RefusedByPrimary(f"our history differs from the primary's at seq {keep}")
            dropped = self.journal.truncate_after(keep)
            log.warning("dropped %d batch(es) after seq %d that were never replicated",
                        dropped, keep)
            self.rebuild()
        if welcome["epoch"] > self.journal.epoch:
            self.journal.set_epoch(welcome["epoch"])
        self.primary_node = welcome["node"]
        self.applied = self.journal.last_seq
        self.state = "catching_up"
        log.info("following primary node %s (epoch %d) from seq %d", self.primary_node,
                 self.journal.epoch, keep)

    def _batch(self, message: dict, raw: bytes) -> None:
        try:
            batch = decode(raw)
            if batch.last_seq <= self.journal.last_seq:
                return                              # already have it (a re-send)
            self.journal.append_batch(batch)        # verifies hash and link; durable after
        except ChainError as e:
            log.warning("batch refused (%s): asking the primary to resynchronise", e)
            self.resync()
            return
        self._send(P.ACK, seq=batch.last_seq)
        self.apply(batch)
        self.applied = batch.last_seq
        if message["live"]:
            self.state = "live"

    def own_checkpoint(self, seq: int, state_hash: bytes) -> None:
        """Our own state hash at ``seq`` (from our snapshot at the same seq as the primary's)."""
        self._ours[seq] = state_hash
        self._check()

    def _check(self) -> None:
        """Compare every checkpoint both we and the primary have hashed."""
        for seq in sorted(set(self._theirs) & set(self._ours)):
            theirs, ours = self._theirs.pop(seq), self._ours.pop(seq)
            if ours == theirs:
                self.checks_passed += 1
                continue
            self.diverged = {"seq": seq, "ours": ours.hex(), "theirs": theirs.hex()}
            log.error("STATE DIVERGED from the primary at seq %d: ours %s, theirs %s", seq,
                      ours.hex()[:16], theirs.hex()[:16])
            self._send(P.DIVERGED, seq=seq, ours=ours, theirs=theirs)
        for stale in [s for s in self._theirs if s < self.applied - 10_000_000]:
            del self._theirs[stale]                 # never snapshotted here: not comparable

    def resync(self) -> None:
        """Start over with a hello: the primary catches us up from our last batch."""
        self.state = "connecting"
        self._last_hello = 0.0

    # ------------------------------------------------------------ outgoing
    def pump(self) -> None:
        now = self.clock()
        if self.state != "connecting" and now - self._last_heard > self.peer_timeout:
            log.warning("no word from the primary for %.1f s: saying hello again",
                        self.peer_timeout)
            self.resync()
        if self.state == "connecting" and now - self._last_hello >= 0.25:
            self._last_hello = now
            self._send(P.HELLO, node=self.node_id, last_seq=self.journal.last_seq,
                       last_hash=self.journal.last_hash)
        elif self.state != "connecting" and now - self._last_beat >= self.heartbeat:
            self._last_beat = now
            self._send(P.HEARTBEAT, seq=self.journal.last_seq, applied=self.applied)

    @property
    def primary_lost(self) -> bool:
        return self.clock() - self._last_heard > self.peer_timeout

    def status(self) -> dict:
        return {"following": self.endpoint, "link": self.state, "primary_node": self.primary_node,
                "primary_seq": self.primary_seq,
                "lag_commands": max(0, self.primary_seq - self.applied),
                "heard_ago_s": round(self.clock() - self._last_heard, 3),
                "hash_checks_passed": self.checks_passed, "diverged": self.diverged}
