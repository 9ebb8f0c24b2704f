"""An engine node: one process that is a primary or a hot standby (``replication.roles``).

Ports (every node binds all four, whatever its role, so a promoted standby needs no rebind):

* **command port** (ROUTER, ``replication.command_port``): validated commands in, their events
  out; only a primary accepts commands, others answer NOT_PRIMARY;
* **replication port** (ROUTER, ``replication.protocol``): a primary streams batches to its
  standby here (``replication.standby_link``);
* **event port** (PUB, ``replication.event_stream``): a primary publishes every batch's events
  once the batch is durable and applied; gateways and feeds build everything they send on it;
* **control port** (REP, msgpack maps): ``status`` (``hash: true`` adds the state hash),
  ``snapshot``, ``stop``, ``promote``, ``fence {epoch}``, ``rejoin {primary}``; and, for
  gateways and feeds, ``events {from_seq, limit}`` (gap recovery from the event history),
  ``reference`` (instruments and accounts), ``books {depth}``, ``orders {account}``.

A **primary** runs the pipeline (``core.pipeline``): it drains every request that has arrived,
cuts a batch, sends it to the standby, journals it, waits for the standby's acknowledgement in
``sync`` mode, applies it and replies. A **standby** follows its primary
(``replication.primary_link``): it journals, acknowledges and applies every batch, silently.

``promote`` raises the epoch, journals it and makes a standby a primary. A primary that learns
of a higher epoch (``fence``, or a message from a promoted node) stops accepting commands;
``rejoin`` makes it follow the new primary, dropping whatever it journaled that was never
replicated. On start a node recovers from its newest valid snapshot and its journal tail; on a
clean stop it records the final state hash as a checkpoint.

Snapshots are taken at every multiple of ``snapshot_every`` (the engine pauses only to copy its
arrays; hashing and writing run on a background thread). Because batches are replicated whole,
primary and standby snapshot at the same sequence numbers: the primary sends each snapshot's
state hash, and the standby compares it with its own. That is the divergence check, and it
costs the hot path nothing. A journal failure stops the node
(fail-stop): nothing of the failing batch was applied or acknowledged.
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
from journal.format import Batch
from journal.lmdb_journal import LmdbJournal
from journal.recovery import recover
from journal.snapshots import SnapshotStore, SnapshotWriter, capture

from . import queries
from .event_stream import DEFAULT_HISTORY, EventHistory, EventPublisher
from .command_port import (ProtocolError, Status, decode_request, encode_error,
                           encode_events)
from .primary_link import PrimaryLink
from .roles import Event, Role, RoleMachine
from .standby_link import StandbyLink, StandbyWaitAbandoned
from .witness import WitnessClient

log = logging.getLogger("ringex.node")


class NodeRefused(RuntimeError):
    """The node cannot start in the role it was asked to take."""


@dataclass
class NodeConfig:
    data_dir: Path
    role: str = "primary"                     #: how to start: primary or standby
    command_endpoint: str = "tcp://127.0.0.1:7001"
    control_endpoint: str = "tcp://127.0.0.1:7002"
    replication_endpoint: str = "tcp://127.0.0.1:7003"
    event_endpoint: str = "tcp://127.0.0.1:7004"
    event_history: int = DEFAULT_HISTORY      #: events kept in memory for gap recovery
    primary_endpoint: str | None = None       #: a standby's primary (its replication port)
    replication: str = "sync"                 #: sync, async or none
    on_standby_loss: str = "async"            #: in sync mode: async (alarm) or stop
    sync_timeout_ms: int = 1000
    peer_timeout_ms: int = 1500
    heartbeat_ms: int = 100
    capacities: Capacities = field(default_factory=Capacities)
    durability: str = "fsync"
    node_id: int = 1
    max_batch: int = 4096
    max_delay_us: int = 0                     #: 0: cut as soon as the input is drained
    snapshot_every: int = 1_000_000           #: snapshot at multiples of this seq; 0: never
    snapshot_retain: int = 3
    witness_endpoint: str | None = None       #: automatic failover through a witness
    lease_ms: int = 1000
    lease_margin_ms: int = 200


class AckRouter:
    """Output stage: each request's events go back to the producer that sent it."""

    def __init__(self, socket: zmq.Socket) -> None:
        self.socket = socket

    def on_batch(self, cut: Cut, events: np.ndarray) -> None:
        for index, request in enumerate(cut.requests):
            mine = events_of(cut, events, index)
            frames = encode_events(request.request_id, cut.first_seq + request.offset, mine)
            self.socket.send_multipart([request.producer, *frames], copy=False)


def _socket(context: zmq.Context, kind: int, endpoint: str) -> zmq.Socket:
    socket = context.socket(kind)
    socket.setsockopt(zmq.LINGER, 0)
    socket.bind(endpoint)
    return socket


class EngineNode:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        data = Path(config.data_dir)
        self.journal = LmdbJournal(data / "journal", durability=config.durability,
                                   node_id=config.node_id)
        self.journal.set_config({"capacities": config.capacities.as_dict()})
        self.snapshots = SnapshotStore(data / "snapshots", retain=config.snapshot_retain)
        warm_up()
        self.blp = self._recover()
        self.context = zmq.Context.instance()
        self.commands = _socket(self.context, zmq.ROUTER, config.command_endpoint)
        self.control = _socket(self.context, zmq.REP, config.control_endpoint)
        self.replication = _socket(self.context, zmq.ROUTER, config.replication_endpoint)
        self.events = _socket(self.context, zmq.PUB, config.event_endpoint)
        self.events.setsockopt(zmq.SNDHWM, 100_000)
        self.history = EventHistory(config.event_history)
        self.history.reset(self.blp.last_seq + 1)
        self.publisher = EventPublisher(self.events, self.history, lambda: self.journal.epoch)
        self.roles = RoleMachine()
        self.pipeline: Pipeline | None = None
        self.standby_link: StandbyLink | None = None
        self.primary_link: PrimaryLink | None = None
        self.writer = SnapshotWriter(self.snapshots)
        self._snapshot_future = None
        self._snapshot_due_at = self._next_multiple(self.blp.last_seq)
        self._stopping = False
        self.started = time.time()
        self.processed = 0
        self.witness = WitnessClient(config.witness_endpoint) if config.witness_endpoint \
            else None
        self.lease_until = 0.0       #: monotonic time our lease ends (witness mode)
        self._had_lease = False
        self._last_witness_ask = 0.0
        if config.role == "primary":
            self._become_primary(Event.START_PRIMARY)
        elif config.role == "standby":
            if not config.primary_endpoint:
                raise ValueError("a standby needs the primary's replication endpoint")
            self._follow(Event.START_STANDBY, config.primary_endpoint)
        else:
            raise ValueError(f"role must be primary or standby, not {config.role!r}")

    def _recover(self):
        recovered = recover(self.journal, self.snapshots)
        for path, why in recovered.skipped_snapshots:
            log.warning("snapshot %s not used: %s", path.name, why)
        log.info("recovered to seq %d in %.3f s (snapshot %s, %d commands replayed)",
                 recovered.last_seq, recovered.seconds,
                 recovered.snapshot.seq if recovered.snapshot else "none",
                 recovered.replayed_commands)
        return recovered.blp

    # ------------------------------------------------------------ roles
    def _become_primary(self, event: Event) -> None:
        if self.journal.fenced_by > self.journal.epoch:
            raise NodeRefused(f"this node was fenced: epoch {self.journal.fenced_by} exists "
                              f"(ours is {self.journal.epoch}); start it as a standby of the "
                              f"current primary to rejoin")
        self.roles.fire(event)
        last = self.journal.last_batch
        last_ts = int(last.commands["ts"][-1]) if last else 0
        sequencer = Sequencer(self.journal.last_seq + 1, last_ts,
                              max_batch=self.config.max_batch,
                              max_delay_ns=self.config.max_delay_us * 1000)
        self.standby_link = None
        if self.config.replication != "none":
            self.standby_link = StandbyLink(
                self.replication, self.journal, node_id=self.config.node_id,
                mode=self.config.replication, on_loss=self.config.on_standby_loss,
                sync_timeout_ms=self.config.sync_timeout_ms,
                peer_timeout_ms=self.config.peer_timeout_ms,
                heartbeat_ms=self.config.heartbeat_ms, idle=self._idle_while_stopped)
        self.pipeline = Pipeline(sequencer, self.journal, self.blp,
                                 [AckRouter(self.commands), self.publisher],
                                 replicator=self.standby_link)
        log.info("node %d is PRIMARY in epoch %d at seq %d (replication %s)",
                 self.config.node_id, self.journal.epoch, self.journal.last_seq,
                 self.config.replication)

    def _follow(self, event: Event, primary_endpoint: str) -> None:
        self.roles.fire(event)
        self.pipeline = None
        self.standby_link = None
        self.primary_link = PrimaryLink(
            self.context, primary_endpoint, self.journal, node_id=self.config.node_id,
            apply=self._apply, rebuild=self._rebuild,
            heartbeat_ms=self.config.heartbeat_ms, peer_timeout_ms=self.config.peer_timeout_ms)
        log.info("node %d is a STANDBY following %s", self.config.node_id, primary_endpoint)

    def _apply(self, batch: Batch) -> None:
        events = self.blp.process_view(batch.commands)   # kept, not published: silent standby
        self.history.append(batch.first_seq, batch.last_seq, events)
        self._count(batch.count)

    def _rebuild(self) -> None:
        self.blp = self._recover()
        self._snapshot_due_at = self._next_multiple(self.blp.last_seq)
        self.history.reset(self.blp.last_seq + 1)

    def promote(self) -> dict:
        """Standby -> primary: a new epoch, journaled before the first command of it."""
        if self.roles.role is not Role.STANDBY:
            return {"error": f"a {self.roles.role.value} node cannot be promoted"}
        self.primary_link.close()
        self.primary_link = None
        epoch = self.journal.epoch + 1
        self.journal.set_epoch(epoch)
        log.warning("PROMOTED: node %d starts epoch %d at seq %d", self.config.node_id, epoch,
                    self.journal.last_seq)
        self._become_primary(Event.PROMOTE)
        return {"ok": True, "epoch": epoch, "seq": self.journal.last_seq}

    def fence(self, epoch: int) -> dict:
        """Another node holds a higher epoch: stop accepting commands."""
        if epoch <= self.journal.epoch:
            return {"error": f"epoch {epoch} is not above ours ({self.journal.epoch})"}
        if self.roles.role is Role.PRIMARY and self.pipeline is not None and self._lease_ok():
            self.pipeline.flush()
        self._fence(Event.HIGHER_EPOCH_SEEN, f"epoch {epoch} exists")
        return {"ok": True, "role": self.roles.role.value}

    def _fence(self, event: Event, why: str) -> None:
        self.roles.fire(event)
        self.journal.mark_fenced(self.journal.epoch + 1)
        self.pipeline = None           # anything still pending is never acknowledged
        self.standby_link = None
        log.warning("FENCED (%s): node %d accepts no more commands", why, self.config.node_id)

    # ------------------------------------------------------------ the witness (optional)
    def _lease_ok(self) -> bool:
        return self.witness is None or time.monotonic() < self.lease_until

    def _tend_witness(self) -> None:
        """Primary: renew the lease, fence on refusal or lapse. Standby: claim the next
        epoch once the primary is lost, and promote when granted."""
        now = time.monotonic()
        answer = self.witness.answer()
        role = self.roles.role
        if answer is not None:
            reply, sent = answer
            if reply.get("ok"):
                self.lease_until = sent + (reply["lease_ms"] - self.config.lease_margin_ms) / 1000
                self._had_lease = True
                if role is Role.STANDBY:
                    log.warning("the witness granted epoch %d", reply["epoch"])
                    self.promote()
                    return
            elif role is Role.PRIMARY and self._had_lease:
                return self._fence(Event.LEASE_LOST, f"witness: {reply.get('reason')}")
        if role is Role.PRIMARY:
            if self._had_lease and now >= self.lease_until:
                return self._fence(Event.LEASE_LOST, "lease expired")
            if now - self._last_witness_ask >= self.config.heartbeat_ms / 1000:
                if self.witness.ask({"op": "renew", "node": self.config.node_id,
                                     "epoch": self.journal.epoch}):
                    self._last_witness_ask = now
        elif role is Role.STANDBY and self.primary_link is not None and \
                self.primary_link.primary_lost:
            if now - self._last_witness_ask >= self.config.heartbeat_ms / 1000:
                if self.witness.ask({"op": "claim", "node": self.config.node_id,
                                     "epoch": self.journal.epoch + 1}):
                    self._last_witness_ask = now

    def rejoin(self, primary_endpoint: str) -> dict:
        if not self.roles.can(Event.REJOIN):
            return {"error": f"a {self.roles.role.value} node cannot rejoin"}
        if self.pipeline is not None:
            self.pipeline.flush()
        self._follow(Event.REJOIN, primary_endpoint)
        return {"ok": True, "role": self.roles.role.value}

    # ------------------------------------------------------------ the loop
    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        log.info("node %d ready: commands %s, control %s, replication %s, events %s",
                 self.config.node_id, self.config.command_endpoint,
                 self.config.control_endpoint, self.config.replication_endpoint,
                 self.config.event_endpoint)
        try:
            while not self._stopping:
                self._step()
        except StandbyWaitAbandoned as e:
            log.warning("%s", e)
        finally:
            self._shutdown()

    def stop(self) -> None:
        self._stopping = True

    def _step(self) -> None:
        poller = zmq.Poller()
        poller.register(self.commands, zmq.POLLIN)
        poller.register(self.control, zmq.POLLIN)
        poller.register(self.replication, zmq.POLLIN)
        if self.primary_link is not None:
            poller.register(self.primary_link.socket, zmq.POLLIN)
        wait = self.pipeline.sequencer.wait_ns() if self.pipeline else None
        timeout = min(self.config.heartbeat_ms, 100) if wait is None else -(-wait // 1_000_000)
        if self.witness is not None:
            timeout = min(timeout, 20)
        ready = dict(poller.poll(timeout))
        if self.witness is not None:
            self._tend_witness()
        if self.commands in ready:
            self._drain_commands()
        if self.pipeline is not None and self._lease_ok():
            self._process_due()
            if self.accepting:
                self.publisher.heartbeat_if_idle(self.blp.last_seq)
        if self.standby_link is not None:
            self.standby_link.poll()
            self.standby_link.pump()
            if self.standby_link.higher_epoch is not None:
                self.fence(self.standby_link.higher_epoch)
        elif self.replication in ready:
            self._drop(self.replication)
        if self.primary_link is not None:
            self.primary_link.poll()
            self.primary_link.pump()
            link = self.primary_link.state
            if link == "live" and self.roles.role is Role.CATCHING_UP:
                self.roles.fire(Event.CAUGHT_UP)
                log.info("standby caught up at seq %d", self.journal.last_seq)
            elif link == "catching_up" and self.roles.role is Role.STANDBY:
                self.roles.fire(Event.FELL_BEHIND)   # (a silent primary is not "behind":
                                                     # that standby can still be promoted)
        if self.control in ready:
            self._serve_control()
        self._check_snapshot()

    @staticmethod
    def _drop(socket: zmq.Socket) -> None:
        while True:
            try:
                socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return

    @property
    def accepting(self) -> bool:
        if not self.roles.accepts_commands or self.pipeline is None:
            return False
        link = self.standby_link
        return not (link is not None and link.mode == "sync" and link.on_loss == "stop"
                    and link.state != "live")

    def _drain_commands(self) -> None:
        while True:
            try:
                frames = self.commands.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            producer, body = frames[0], frames[1:]
            try:
                request_id, commands = decode_request(body)
            except ProtocolError as e:
                self.commands.send_multipart([producer, *encode_error(0, e.status, str(e))])
                continue
            if not self.accepting:
                if self.roles.accepts_commands:
                    status, why = Status.UNAVAILABLE, (
                        f"node {self.config.node_id} accepts no orders while its standby is "
                        f"lost (on_standby_loss=stop)")
                else:
                    status, why = Status.NOT_PRIMARY, (
                        f"node {self.config.node_id} is {self.roles.role.value}; send "
                        f"commands to the primary")
                self.commands.send_multipart([producer, *encode_error(request_id, status, why)])
                continue
            self.pipeline.offer(producer, request_id, commands)

    def _idle_while_stopped(self) -> bool:
        """While a sync primary waits for a lost standby (on_loss=stop): serve control,
        refuse commands. Returns False once the node should stop waiting (it is stopping)."""
        if self.control.poll(0):
            self._serve_control()
        if self.commands.poll(0):
            self._drain_commands()
        return not self._stopping

    def _process_due(self) -> None:
        sequencer = self.pipeline.sequencer
        if sequencer.pending and (self.config.max_delay_us == 0 or sequencer.due()):
            self._count(self.pipeline.flush())

    def _next_multiple(self, seq: int) -> int | None:
        every = self.config.snapshot_every
        return (seq // every + 1) * every if every else None

    def _count(self, commands: int) -> None:
        """After each applied batch: snapshot when it crossed a multiple of snapshot_every.

        Batches are replicated whole, so primary and standby cross the same multiples at the
        same batch boundaries: both snapshot (and hash) at the same sequence numbers, which is
        how the standby proves it has not diverged without hashing on the hot path."""
        self.processed += commands
        due = self._snapshot_due_at
        if due is not None and self.blp.last_seq >= due:
            self._snapshot_due_at = self._next_multiple(self.blp.last_seq)
            self.take_snapshot()

    # ------------------------------------------------------------ snapshots
    def take_snapshot(self) -> bool:
        """Copy the arrays now; hash and write them in the background."""
        self._check_snapshot()          # record a finished one before starting the next
        future = self.writer.submit(self.blp.last_seq, self.journal.epoch,
                                    self.journal.last_hash, self.blp.capacities,
                                    capture(self.blp.arrays()))
        if future is None:
            log.warning("snapshot at seq %d skipped: the previous one is still being written",
                        self.blp.last_seq)
            return False
        self._snapshot_future = (self.blp.last_seq, future)
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
        if self.standby_link is not None:
            self.standby_link.send_checkpoint(seq, state_hash)
        elif self.primary_link is not None:
            self.primary_link.own_checkpoint(seq, state_hash)

    # ------------------------------------------------------------ control
    def status(self, with_hash: bool = False) -> dict:
        out = {"role": self.roles.role.value, "node_id": self.config.node_id,
               "epoch": self.journal.epoch, "last_seq": self.journal.last_seq,
               "applied_seq": self.blp.last_seq, "accepting": self.accepting,
               "journal_hash": self.journal.last_hash.hex(), "processed": self.processed,
               "uptime_s": round(time.time() - self.started, 3),
               "durability": self.config.durability,
               "snapshots": [p.name for p in self.snapshots.paths()],
               "endpoints": {"commands": self.config.command_endpoint,
                             "control": self.config.control_endpoint,
                             "replication": self.config.replication_endpoint,
                             "events": self.config.event_endpoint},
               "event_history": {"oldest_seq": self.history.oldest_seq,
                                 "next_seq": self.history.next_seq}}
        if self.witness is not None:
            out["witness"] = {"endpoint": self.config.witness_endpoint,
                              "lease_left_ms": max(0, round(
                                  (self.lease_until - time.monotonic()) * 1000))}
        if self.standby_link is not None:
            out["replication"] = self.standby_link.status()
        elif self.primary_link is not None:
            out["replication"] = self.primary_link.status()
        else:
            out["replication"] = {"mode": self.config.replication if self.pipeline else "off"}
        if with_hash:
            out["state_hash"] = self.blp.state_hash().hex()
        return out

    def _serve_control(self) -> None:
        try:
            request = msgpack.unpackb(self.control.recv(), raw=False)
            op = request.get("op") if isinstance(request, dict) else None
        except (ValueError, msgpack.UnpackException):
            request, op = {}, None
        if op == "status":
            reply = self.status(bool(request.get("hash")))
        elif op == "snapshot":
            if self.pipeline is not None:
                self.pipeline.flush()
            started = self.take_snapshot()
            self._check_snapshot(wait=True)
            reply = {"ok": started, "seq": self.blp.last_seq}
        elif op == "stop":
            self.stop()
            reply = {"ok": True}
        elif op == "promote":
            reply = self.promote()
        elif op == "fence" and isinstance(request.get("epoch"), int):
            reply = self.fence(request["epoch"])
        elif op == "rejoin" and isinstance(request.get("primary"), str):
            reply = self.rejoin(request["primary"])
        elif op == "events":
            reply = queries.events(self.history, request, self.journal.epoch)
        elif op in queries.STATE_QUERIES:
            reply = self._query(op, request)
        else:
            reply = {"error": "unknown request; ops are status, snapshot, stop, promote, "
                              "fence {epoch}, rejoin {primary}, events {from_seq, limit}, "
                              "reference, books {depth}, orders {account}"}
        self.control.send(msgpack.packb(reply))

    def _query(self, op: str, request: dict) -> dict:
        """A read-only state query (``replication.queries``), as of ``blp.last_seq``."""
        reply = queries.STATE_QUERIES[op](self.blp.canonical_state(), request)
        if "error" not in reply:
            reply.update(seq=self.blp.last_seq, epoch=self.journal.epoch)
        return reply

    def _shutdown(self) -> None:
        try:
            if self.pipeline is not None and self.pipeline.stopped is None:
                self.pipeline.flush()
            self._check_snapshot(wait=True)
            if self.blp.last_seq and self.blp.last_seq == self.journal.last_seq:
                self.journal.record_checkpoint(self.blp.last_seq, self.blp.state_hash())
            log.info("stopped at seq %d as %s", self.journal.last_seq, self.roles.role.value)
        finally:
            self.journal.close()
            for socket in (self.commands, self.control, self.replication, self.events):
                socket.close(0)
            if self.primary_link is not None:
                self.primary_link.close()
            if self.witness is not None:
                self.witness.close()
