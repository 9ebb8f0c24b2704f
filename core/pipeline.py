"""The engine's stages, wired in one place.

::

                 offer          cut                append + fsync            process_view
   producers ──────────▶ Sequencer ──────▶ Journal ─────────────────▶ BLP ──────────────▶ outputs
   (requests of          seq numbers,      (durable;   ┊ Replicator:        one thread,       acks to
    validated            timestamps,        group       ┊ sent to the        deterministic      producers,
    commands)            batch cut by       commit)     ┊ standby before     kernel             market data,
                         size or time                   ┊ the fsync, ack                        drop copy, ...
                                                        ┊ awaited after it

A batch reaches the BLP and the output stages only once it is durable: journaled here, and (in
``sync`` replication) journaled by the standby too. Sending to the standby happens before the
local fsync so the two overlap. If journaling fails the pipeline raises and stops: nothing of
that batch was applied or acknowledged, and the node must not go on (fail-stop).

Output stages see each batch once, after the BLP, in the order given: ``on_batch(cut,
events)``, where ``events`` is valid only during the call.
"""
from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from .blp import BusinessLogicProcessor
from .sequencer import Cut, Sequencer


class JournalStage(Protocol):
    """``journal.base.Journal``: ``prepare`` encodes the next batch, ``commit`` makes it
    durable, ``append`` does both."""

    def append(self, commands: np.ndarray): ...

    def prepare(self, commands: np.ndarray): ...

    def commit(self, batch): ...


class Replicator(Protocol):
    """Streams journaled batches to a standby (``replication``)."""

    def send(self, batch) -> None: ...

    def wait_acknowledged(self, batch) -> None: ...


class OutputStage(Protocol):
    def on_batch(self, cut: Cut, events: np.ndarray) -> None: ...


class PipelineStopped(RuntimeError):
    """The pipeline hit an unrecoverable error (e.g. the journal failed) and refuses work."""


class Pipeline:
    def __init__(self, sequencer: Sequencer, journal: JournalStage, blp: BusinessLogicProcessor,
                 outputs: Sequence[OutputStage] = (), replicator: Replicator | None = None,
                 ) -> None:
        self.sequencer = sequencer
        self.journal = journal
        self.blp = blp
        self.outputs = list(outputs)
        self.replicator = replicator
        self.stopped: Exception | None = None

    def offer(self, producer, request_id: int, commands: np.ndarray) -> None:
        """Queue a request's commands, cutting a batch first if they would not fit."""
        if self.stopped is not None:
            raise PipelineStopped(f"pipeline stopped: {self.stopped}")
        if len(commands) > self.sequencer.room:
            self.flush()
        self.sequencer.offer(producer, request_id, commands)

    def flush_due(self) -> int:
        """Process the pending batch if it is due; returns how many commands were processed."""
        return self.flush() if self.sequencer.due() else 0

    def flush(self) -> int:
        """Sequence, journal (and replicate), apply and publish whatever is pending."""
        if self.sequencer.pending == 0:
            return 0
        cut = self.sequencer.cut()
        try:
            self._make_durable(cut.commands)
        except Exception as e:
            self.stopped = e
            raise
        events = self.blp.process_view(cut.commands)
        for stage in self.outputs:
            stage.on_batch(cut, events)
        return len(cut.commands)

    def _make_durable(self, commands: np.ndarray) -> None:
        if self.replicator is None:
            self.journal.append(commands)
            return
        batch = self.journal.prepare(commands)   # the standby gets the very bytes we journal
        self.replicator.send(batch)
        self.journal.commit(batch)
        self.replicator.wait_acknowledged(batch)


def events_of(cut: Cut, events: np.ndarray, request_index: int) -> np.ndarray:
    """The slice of a batch's events caused by one of its requests (events are in seq order)."""
    request = cut.requests[request_index]
    first = cut.first_seq + request.offset
    seqs = events["seq"]
    lo = int(np.searchsorted(seqs, first, "left"))
    hi = int(np.searchsorted(seqs, first + request.count, "left"))
    return events[lo:hi]
