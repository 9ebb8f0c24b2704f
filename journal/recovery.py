"""Rebuilding the BLP from durable history: the newest valid snapshot, then the journal tail.

``recover`` is what a node does on start, what ``ringex replay`` and ``ringex drill`` do, and
what the tests compare against the live engine. The rules:

* the configuration (capacities) comes from the journal, because it decides outcomes;
* a snapshot is used only if it loads cleanly (checksum, format) and is anchored to this
  journal: the journal's batch ending at the snapshot's seq must have the snapshot's
  ``journal_hash``. Damaged or foreign snapshots are passed over (reported, never trusted);
* the tail after the snapshot is read batch by batch with every hash and link checked; a broken
  chain stops recovery with a ``ChainError`` naming the first bad sequence number;
* replay can stop at a sequence number (inside a batch too).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core.blp import BusinessLogicProcessor
from core.config import Capacities

from .base import Journal
from .format import Batch, JournalError
from .snapshots import Snapshot, SnapshotStore


class RecoveryError(JournalError):
    """Recovery is impossible as asked (e.g. no configuration recorded in the journal)."""


@dataclass
class Recovered:
    blp: BusinessLogicProcessor
    snapshot: Snapshot | None
    replayed_commands: int
    seconds: float
    skipped_snapshots: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def last_seq(self) -> int:
        return self.blp.last_seq


def journal_capacities(journal: Journal) -> Capacities:
    config = journal.config
    if not config or "capacities" not in config:
        raise RecoveryError("the journal records no engine configuration (capacities)")
    return Capacities.from_dict(config["capacities"])


def anchored(journal: Journal, snapshot: Snapshot) -> bool:
    """Does the snapshot belong to this journal's history?"""
    if snapshot.seq == 0:
        return True
    batch = journal.batch_containing(snapshot.seq)
    return batch is not None and batch.last_seq == snapshot.seq and \
        batch.hash == snapshot.journal_hash


def recover(journal: Journal, snapshots: SnapshotStore | None = None, *,
            to_seq: int | None = None,
            on_start: Callable[[BusinessLogicProcessor], None] | None = None,
            on_batch: Callable[[Batch, int], None] | None = None) -> Recovered:
    """Rebuild the BLP as of ``to_seq`` (default: the journal's end).

    ``on_start(blp)`` sees the BLP before the tail is replayed; ``on_batch(batch,
    commands_applied)`` is called after each replayed batch (progress bars, checkpoints)."""
    began = time.perf_counter()
    capacities = journal_capacities(journal)
    target = journal.last_seq if to_seq is None else min(to_seq, journal.last_seq)
    skipped: list[tuple[Path, str]] = []
    snapshot = None
    if snapshots is not None:
        snapshot = snapshots.newest(
            max_seq=target,
            accept=lambda s: s.capacities == capacities and anchored(journal, s),
            on_skip=lambda path, why: skipped.append((path, why)))
    blp = BusinessLogicProcessor.from_arrays(capacities, snapshot.arrays, copy=False) \
        if snapshot else BusinessLogicProcessor(capacities)
    if on_start is not None:
        on_start(blp)
    replayed = 0
    for batch in journal.batches(from_seq=blp.last_seq + 1, to_seq=target):
        commands = batch.commands
        if batch.last_seq > target:
            commands = commands[:target - batch.first_seq + 1]
        blp.process_view(commands)
        replayed += len(commands)
        if on_batch is not None:
            on_batch(batch, replayed)
    if blp.last_seq != target:
        raise JournalError(f"replay reached seq {blp.last_seq}, not {target}")
    return Recovered(blp, snapshot, replayed, time.perf_counter() - began, skipped)
