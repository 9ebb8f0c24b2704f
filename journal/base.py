"""The journal contract, and the chain-keeping logic every backend shares.

A journal is an append-only sequence of batches (``journal.format``) plus a little metadata.
Backends (LMDB on disk, in memory for tests) implement only storage primitives; this base class
owns every rule, so one contract test suite covers them all:

* ``append`` takes stamped commands continuing exactly at ``last_seq + 1``, chains them to the
  last batch, and returns once the batch is durable under the backend's policy;
* ``append_batch`` stores a batch made elsewhere (by the primary, for a standby) after checking
  its hash and its link to our last batch;
* ``batches`` yields verified batches in order, checking every link;
* the epoch only rises; ``truncate_after`` drops a tail (a rejoining old primary's unreplicated
  batches) and never anything at or below a sequence number it is told to keep;
* checkpoints record the BLP's state hash at a sequence number, for replays to compare against.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Iterator

import numpy as np

from .format import GENESIS_HASH, Batch, ChainError, JournalError, check_link, decode, encode


class Journal(ABC):
    """Append-only batches with a hash chain. One writer; not thread-safe."""

    readonly = False

    def __init__(self) -> None:
        self._last: Batch | None = None

    # ------------------------------------------------------------ storage primitives
    @abstractmethod
    def _store(self, batch: Batch, epoch: int) -> None:
        """Durably add ``batch`` and set the metadata epoch and last seq, atomically."""

    @abstractmethod
    def _load(self, first_seq: int) -> bytes | None:
        """The raw batch stored under ``first_seq``, or None."""

    @abstractmethod
    def _scan(self, from_key: int) -> Iterator[tuple[int, bytes]]:
        """(first_seq, raw) of every batch with first_seq >= from_key, ascending."""

    @abstractmethod
    def _containing(self, seq: int) -> tuple[int, bytes] | None:
        """(first_seq, raw) of the batch with the greatest first_seq <= seq, or None."""

    @abstractmethod
    def _last_stored(self) -> tuple[int, bytes] | None:
        """(first_seq, raw) of the last batch, or None when empty."""

    @abstractmethod
    def _delete_from(self, first_seq: int, epoch: int) -> int:
        """Remove every batch with first_seq >= ``first_seq``; returns how many."""

    @abstractmethod
    def _get_meta(self, key: str) -> int | None: ...

    @abstractmethod
    def _put_meta(self, key: str, value: int) -> None: ...

    @abstractmethod
    def _get_blob(self, key: str) -> bytes | None: ...

    @abstractmethod
    def _put_blob(self, key: str, value: bytes) -> None: ...

    @abstractmethod
    def _put_checkpoint(self, seq: int, state_hash: bytes) -> None: ...

    @abstractmethod
    def _checkpoints(self) -> list[tuple[int, bytes]]: ...

    @abstractmethod
    def close(self) -> None: ...

    # ------------------------------------------------------------ state
    def _open_tail(self) -> None:
        """Load and verify the last batch; call once storage is ready."""
        last = self._last_stored()
        self._last = decode(last[1], last[0]) if last else None
        if self._get_meta("epoch") is None and not self.readonly:
            self._put_meta("epoch", 1)

    @property
    def last_seq(self) -> int:
        return self._last.last_seq if self._last else 0

    @property
    def last_hash(self) -> bytes:
        return self._last.hash if self._last else GENESIS_HASH

    @property
    def last_batch(self) -> Batch | None:
        return self._last

    @property
    def epoch(self) -> int:
        return int(self._get_meta("epoch") or 1)

    @property
    def fenced_by(self) -> int:
        """The highest epoch this node was told exists while it was primary (0: never)."""
        return int(self._get_meta("fenced_by") or 0)

    def mark_fenced(self, epoch: int) -> None:
        """Remember, durably, that ``epoch`` exists: a restart must not make us primary."""
        self._put_meta("fenced_by", max(epoch, self.fenced_by))

    def set_epoch(self, epoch: int) -> None:
        """Enter a new leadership term (promotion, or learning of one). Never goes back."""
        if epoch < self.epoch:
            raise JournalError(f"epoch cannot go back from {self.epoch} to {epoch}")
        self._put_meta("epoch", epoch)

    @property
    def config(self) -> dict | None:
        """The engine configuration this history was produced under (e.g. capacities, which
        decide outcomes: a full table refuses a command). Set once, when the journal is new."""
        raw = self._get_blob("config")
        return json.loads(raw) if raw is not None else None

    def set_config(self, config: dict) -> None:
        """Record the configuration; refuse a different one for an existing history."""
        current = self.config
        if current is not None and current != config:
            raise JournalError(f"this journal was written with {current}, not {config}; "
                               f"replay it with its own configuration")
        if current is None:
            self._put_blob("config", json.dumps(config, sort_keys=True).encode())

    # ------------------------------------------------------------ writing
    def append(self, commands: np.ndarray) -> Batch:
        """Journal stamped commands as one batch under the current epoch."""
        return self.commit(self.prepare(commands))

    def prepare(self, commands: np.ndarray) -> Batch:
        """The batch record ``append`` would write next (to send it to a standby first)."""
        if len(commands) and int(commands["seq"][0]) != self.last_seq + 1:
            raise JournalError(f"batch starts at seq {int(commands['seq'][0])}, journal "
                               f"continues at {self.last_seq + 1}")
        return encode(self.epoch, commands, self.last_hash)

    def commit(self, batch: Batch) -> Batch:
        """Durably store a batch from ``prepare`` (nothing may be journaled in between)."""
        if batch.first_seq != self.last_seq + 1 or batch.prev_hash != self.last_hash:
            raise JournalError(f"batch {batch.first_seq} was not prepared on this journal's "
                               f"current end")
        self._store(batch, self.epoch)
        self._last = batch
        return batch

    def append_batch(self, batch: Batch) -> Batch:
        """Journal a batch another node made, after verifying it and its link to ours."""
        verified = decode(batch.raw, batch.first_seq)
        check_link(self._last, verified)
        epoch = max(self.epoch, verified.epoch)
        self._store(verified, epoch)
        self._last = verified
        return verified

    def truncate_after(self, seq: int) -> int:
        """Drop every batch after ``seq`` (which must end a batch, or be 0); returns how many.

        Used by a former primary that rejoins: its unreplicated tail was never acknowledged."""
        if seq >= self.last_seq:
            return 0
        found = self._containing(seq) if seq > 0 else None
        keep = decode(found[1], found[0]) if found else None
        if (keep.last_seq if keep else 0) != seq:
            raise JournalError(f"seq {seq} is not a batch boundary")
        removed = self._delete_from(seq + 1, self.epoch)
        self._last = keep
        return removed

    # ------------------------------------------------------------ reading
    def batch_containing(self, seq: int) -> Batch | None:
        found = self._containing(seq)
        if not found:
            return None
        batch = decode(found[1], found[0])
        return batch if batch.first_seq <= seq <= batch.last_seq else None

    def batches(self, from_seq: int = 1, to_seq: int | None = None) -> Iterator[Batch]:
        """Verified batches covering ``from_seq`` .. ``to_seq`` in order, every link checked
        (the first one against the batch before it, when there is one)."""
        if from_seq > self.last_seq:
            return
        start = self._containing(from_seq) if from_seq > 1 else None
        previous: Batch | None = None
        if start is not None and start[0] > 1:
            before = self._containing(start[0] - 1)
            previous = decode(before[1], before[0]) if before else None
            if previous is None:
                raise ChainError(start[0], "the batch before it is missing")
        first_key = start[0] if start else 1
        for first_seq, raw in self._scan(first_key):
            if to_seq is not None and first_seq > to_seq:
                return                # (not even read: damage beyond to_seq does not matter)
            batch = decode(raw, first_seq)
            check_link(previous, batch)
            yield batch
            previous = batch
        if previous is not None and previous.last_seq != self.last_seq:
            raise ChainError(previous.last_seq + 1, "batches missing before the end")

    def verify(self) -> int:
        """Check the whole chain from the first batch; returns the last sequence number."""
        last = 0
        for batch in self.batches():
            last = batch.last_seq
        if last != self.last_seq:
            raise ChainError(last + 1, "the chain ends before the journal's last batch")
        return last

    # ------------------------------------------------------------ checkpoints
    def record_checkpoint(self, seq: int, state_hash: bytes) -> None:
        """Remember the BLP's state hash after applying ``seq``."""
        self._put_checkpoint(seq, state_hash)

    def checkpoints(self) -> list[tuple[int, bytes]]:
        """Recorded (seq, state hash) pairs, ascending by seq."""
        return self._checkpoints()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
