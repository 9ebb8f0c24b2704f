"""An engine node: one process holding the pipeline (``core.pipeline``) behind two sockets.

* the **command port** (ROUTER, ``replication.command_port``): validated commands in, their
  events out, each reply sent only once its commands are durable;
* the **control port** (REP, msgpack maps): ``{"op": "status"}``, ``{"op": "snapshot"}``,
  ``{"op": "stop"}``; ``status`` with ``"hash": true`` also computes the state hash.

The loop batches naturally: it drains every request that has arrived, cuts a batch, makes it
durable and applies it; while that happens, new requests queue in ZeroMQ and form the next
batch. On start the node recovers from its newest valid snapshot and the journal tail; on a
clean stop it records the final state hash as a checkpoint. Snapshots are taken every
``snapshot_every`` commands: the loop pauses only to copy the arrays.

A journal failure (full disk, I/O error) stops the node (fail-stop): nothing of the failing
batch was applied or acknowledged, and producers get no reply for it.
"""
from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
import numpy as np
import zmq

from core.blp import warm_up
from core.config import Capacities
from core.pipeline import Pipeline, events_of
from core.sequencer import Cut, Sequencer
from journal.lmdb_journal import LmdbJournal
from journal.recovery import recover
from journal.snapshots import SnapshotStore, SnapshotWriter, capture

from .command_port import ProtocolError, decode_request, encode_error, encode_events

log = logging.getLogger("ringex.node")


@dataclass
class NodeConfig:
    data_dir: Path
    command_endpoint: str = "tcp://127.0.0.1:7001"
    control_endpoint: str = "tcp://127.0.0.1:7002"
    capacities: Capacities = field(default_factory=Capacities)
    durability: str = "fsync"
    node_id: int = 1
    max_batch: int = 4096
    max_delay_us: int = 0          #: 0: cut as soon as the input is drained (natural batching)
    snapshot_every: int = 1_000_000  #: commands between snapshots; 0: never
    snapshot_retain: int = 3


class AckRouter:
    """Output stage: each request's events go back to the producer that sent it."""

    def __init__(self, socket: zmq.Socket) -> None:
        self.socket = socket

    def on_batch(self, cut: Cut, events: np.ndarray) -> None:
        for index, request in enumerate(cut.requests):
            mine = events_of(cut, events, index)
            frames = encode_events(request.request_id, cut.first_seq + request.offset, mine)
            self.socket.send_multipart([request.producer, *frames], copy=False)


class EngineNode:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        data = Path(config.data_dir)
        self.journal = LmdbJournal(data / "journal", durability=config.durability,
                                   node_id=config.node_id)
        self.journal.set_config({"capacities": config.capacities.as_dict()})
        self.snapshots = SnapshotStore(data / "snapshots", retain=config.snapshot_retain)
        warm_up()
        recovered = recover(self.journal, self.snapshots)
        for path, why in recovered.skipped_snapshots:
            log.warning("snapshot %s not used: %s", path.name, why)
        log.info("recovered to seq %d in %.3f s (snapshot %s, %d commands replayed)",
                 recovered.last_seq, recovered.seconds,
                 recovered.snapshot.seq if recovered.snapshot else "none",
                 recovered.replayed_commands)
        last = self.journal.last_batch
        last_ts = int(last.commands["ts"][-1]) if last else 0
        self.sequencer = Sequencer(self.journal.last_seq + 1, last_ts,
                                   max_batch=config.max_batch,
                                   max_delay_ns=config.max_delay_us * 1000)
        self.context = zmq.Context.instance()
        self.commands = self.context.socket(zmq.ROUTER)
        self.commands.setsockopt(zmq.LINGER, 0)
        self.commands.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.commands.bind(config.command_endpoint)
        self.control = self.context.socket(zmq.REP)
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.bind(config.control_endpoint)
        self.pipeline = Pipeline(self.sequencer, self.journal, recovered.blp,
                                 [AckRouter(self.commands)])
        self.writer = SnapshotWriter(self.snapshots)
        self._snapshot_future = None
        self._since_snapshot = 0
        self._stopping = False
        self.started = time.time()
        self.processed = 0

    # ------------------------------------------------------------ the loop
    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        poller = zmq.Poller()
        poller.register(self.commands, zmq.POLLIN)
        poller.register(self.control, zmq.POLLIN)
        log.info("node %d ready: commands %s, control %s, last seq %d",
                 self.config.node_id, self.config.command_endpoint,
                 self.config.control_endpoint, self.journal.last_seq)
        try:
            while not self._stopping:
                wait = self.sequencer.wait_ns()
                timeout = 100 if wait is None else -(-wait // 1_000_000)
                ready = dict(poller.poll(timeout))
                if self.commands in ready:
                    self._drain_commands()
                self._process_due()
                if self.control in ready:
                    self._serve_control()
                self._check_snapshot()
        finally:
            self._shutdown()

    def stop(self) -> None:
        self._stopping = True

    def _drain_commands(self) -> None:
        while True:
            try:
                frames = self.commands.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return
            producer, body = frames[0], frames[1:]
            try:
                request_id, commands = decode_request(body)
            except ProtocolError as e:
                self.commands.send_multipart([producer, *encode_error(0, e.status, str(e))])
                continue
            self.pipeline.offer(producer, request_id, commands)

    def _process_due(self) -> None:
        if self.sequencer.pending and (self.config.max_delay_us == 0 or self.sequencer.due()):
            done = self.pipeline.flush()
            self.processed += done
            self._since_snapshot += done
            every = self.config.snapshot_every
            if every and self._since_snapshot >= every:
                self.take_snapshot()

    # ------------------------------------------------------------ snapshots
    def take_snapshot(self) -> bool:
        """Copy the arrays now; hash and write them in the background."""
        blp = self.pipeline.blp
        future = self.writer.submit(blp.last_seq, self.journal.epoch, self.journal.last_hash,
                                    blp.capacities, capture(blp.arrays()))
        if future is None:
            return False
        self._snapshot_future = (blp.last_seq, future)
        self._since_snapshot = 0
        return True

    def _check_snapshot(self, wait: bool = False) -> None:
        if self._snapshot_future is None:
            return
        seq, future = self._snapshot_future
        if not wait and not future.done():
            return
        self._snapshot_future = None
        try:
            path, state_hash = future.result()
        except Exception as e:
            log.error("snapshot at seq %d failed: %s", seq, e)
            return
        self.journal.record_checkpoint(seq, state_hash)
        log.info("snapshot at seq %d written to %s", seq, path.name)

    # ------------------------------------------------------------ control
    def status(self, with_hash: bool = False) -> dict:
        out = {"role": "primary", "node_id": self.config.node_id, "epoch": self.journal.epoch,
               "last_seq": self.journal.last_seq, "journal_hash": self.journal.last_hash.hex(),
               "processed": self.processed, "uptime_s": round(time.time() - self.started, 3),
               "durability": self.config.durability,
               "snapshots": [p.name for p in self.snapshots.paths()]}
        if with_hash:
            out["state_hash"] = self.pipeline.blp.state_hash().hex()
        return out

    def _serve_control(self) -> None:
        try:
            request = msgpack.unpackb(self.control.recv(), raw=False)
            op = request.get("op") if isinstance(request, dict) else None
        except (ValueError, msgpack.UnpackException):
            op = None
        if op == "status":
            reply = self.status(bool(request.get("hash")))
        elif op == "snapshot":
            self.pipeline.flush()
            started = self.take_snapshot()
            self._check_snapshot(wait=True)
            reply = {"ok": started, "seq": self.pipeline.blp.last_seq}
        elif op == "stop":
            self.stop()
            reply = {"ok": True}
        else:
            reply = {"error": "unknown request; ops are status, snapshot, stop"}
        self.control.send(msgpack.packb(reply))

    def _shutdown(self) -> None:
        try:
            if self.pipeline.stopped is None:
                self.pipeline.flush()
                self._check_snapshot(wait=True)
                blp = self.pipeline.blp
                if blp.last_seq:
                    self.journal.record_checkpoint(blp.last_seq, blp.state_hash())
                log.info("stopped cleanly at seq %d", self.journal.last_seq)
        finally:
            self.journal.close()
            self.commands.close(0)
            self.control.close(0)


def control_request(endpoint: str, request: dict, timeout_ms: int = 5_000) -> dict:
    """Send one control request to a node and return its reply (raises TimeoutError)."""
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    try:
        socket.send(msgpack.packb(request))
        if not socket.poll(timeout_ms):
            raise TimeoutError(f"no answer from {endpoint}")
        return msgpack.unpackb(socket.recv(), raw=False)
    finally:
        socket.close(0)

