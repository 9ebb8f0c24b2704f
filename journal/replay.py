"""Replaying history for audits and drills: rebuild state up to a point, comparing as we go.

``replay`` rebuilds the BLP (from the newest usable snapshot, or from the first command) up to
a sequence number or a time, and on the way computes the state hash at every checkpoint the
node recorded (and every ``checkpoint_every`` commands), reporting whether each matches.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from core.blp import BusinessLogicProcessor

from .base import Journal
from .format import Batch
from .recovery import recover
from .snapshots import SnapshotStore


@dataclass
class Checkpoint:
    seq: int
    computed: bytes
    recorded: bytes | None     #: what the node recorded at this seq, if anything

    @property
    def verdict(self) -> str:
        if self.recorded is None:
            return "computed"
        return "match" if self.recorded == self.computed else "MISMATCH"


@dataclass
class ReplayReport:
    blp: BusinessLogicProcessor
    last_seq: int
    state_hash: bytes
    seconds: float
    replayed_commands: int
    snapshot_seq: int | None
    chain_verified_to: int | None
    checkpoints: list[Checkpoint] = field(default_factory=list)
    skipped_snapshots: list = field(default_factory=list)

    @property
    def mismatches(self) -> list[Checkpoint]:
        return [c for c in self.checkpoints if c.verdict == "MISMATCH"]


def seq_at_time(journal: Journal, ts_ns: int) -> int:
    """The last sequence number whose command was stamped at or before ``ts_ns`` (0: none)."""
    last = 0
    for batch in journal.batches():
        stamps = batch.commands["ts"]
        if stamps[0] > ts_ns:
            break
        last = batch.first_seq + int(np.searchsorted(stamps, ts_ns, "right")) - 1
    return last


def replay(journal: Journal, snapshots: SnapshotStore | None, *, to_seq: int | None = None,
           to_time_ns: int | None = None, verify: bool = False, checkpoint_every: int = 0,
           on_progress: Callable[[int], None] | None = None) -> ReplayReport:
    """Rebuild the state as of ``to_seq`` (or ``to_time_ns``); see the module docstring."""
    began = time.perf_counter()
    verified = journal.verify() if verify else None
    if to_time_ns is not None:
        to_seq = seq_at_time(journal, to_time_ns)
    recorded = dict(journal.checkpoints())
    found: list[Checkpoint] = []
    since = [0]
    holder: dict = {}

    def on_batch(batch: Batch, replayed: int) -> None:
        blp = holder["blp"]
        since[0] += batch.count
        at = blp.last_seq
        if at in recorded or (checkpoint_every and since[0] >= checkpoint_every):
            found.append(Checkpoint(at, blp.state_hash(), recorded.get(at)))
            since[0] = 0
        if on_progress is not None:
            on_progress(batch.count)

    recovered = recover(journal, snapshots, to_seq=to_seq, on_batch=on_batch,
                        on_start=lambda blp: holder.update(blp=blp))
    blp = recovered.blp
    final = blp.state_hash()
    if not found or found[-1].seq != blp.last_seq:
        found.append(Checkpoint(blp.last_seq, final, recorded.get(blp.last_seq)))
    return ReplayReport(blp, blp.last_seq, final, time.perf_counter() - began,
                        recovered.replayed_commands,
                        recovered.snapshot.seq if recovered.snapshot else None, verified,
                        found, recovered.skipped_snapshots)
