"""Snapshots: the BLP's arrays at a sequence number, so recovery replays only the tail.

File format 1 (``snapshot-<seq, 20 digits>.rxs``)::

    8 bytes   magic b"RXSNAP01"
    4 bytes   header length H (little-endian)
    H bytes   JSON header: format, seq, epoch, journal_hash (hex: the hash of the journal batch
              that ends at seq), state_hash (hex), created_ns, capacities, and for each array
              its name, dtype, shape and byte offset in the file
    ...       the arrays, each starting on a 64-byte boundary
    32 bytes  blake2b-256 of everything before it

A snapshot is written to a temporary file, fsynced and renamed into place, so a crash leaves
either the whole file or none. ``journal_hash`` anchors the snapshot to the history it was
taken from: recovery only uses a snapshot whose anchor matches the journal's own batch.
Taking a snapshot from a running engine costs it one copy of its arrays (``capture``); hashing
and writing happen on a background thread (``SnapshotWriter``).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from core.canonical import CanonicalState
from core.config import Capacities
from core.kernel.export import canonical_state
from core.kernel.state import from_arrays

from .format import JournalError

MAGIC = b"RXSNAP01"
FORMAT = 1
ALIGN = 64


class SnapshotError(JournalError):
    """A snapshot file is damaged, of another format, or cannot be written."""


@dataclass
class Snapshot:
    path: Path
    seq: int
    epoch: int
    journal_hash: bytes
    state_hash: bytes
    capacities: Capacities
    arrays: dict[str, np.ndarray]


def capture(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A private copy of the BLP's arrays: the only pause a snapshot imposes on the engine."""
    return {name: array.copy() for name, array in arrays.items()}


def state_hash_of(arrays: dict[str, np.ndarray]) -> bytes:
    return canonical_state_of(arrays).digest()


def canonical_state_of(arrays: dict[str, np.ndarray]) -> CanonicalState:
    return canonical_state(from_arrays(arrays))


def _name(seq: int) -> str:
    return f"snapshot-{seq:020d}.rxs"


_NAME = re.compile(r"snapshot-(\d+)\.rxs")


def _fsync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SnapshotStore:
    """The snapshots of one node, newest kept, older ones pruned beyond ``retain``."""

    def __init__(self, directory: str | Path, retain: int = 3) -> None:
        self.directory = Path(directory)
        self.retain = max(1, retain)

    def paths(self) -> list[Path]:
        """Snapshot files, newest (highest sequence number) first; files whose names are not
        ``snapshot-<digits>.rxs`` are not snapshots and are ignored."""
        if not self.directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.directory.glob("snapshot-*.rxs")
                 if (m := _NAME.fullmatch(p.name))]
        return [p for _, p in sorted(found, reverse=True)]

    def write(self, seq: int, epoch: int, journal_hash: bytes, state_hash: bytes,
              capacities: Capacities, arrays: dict[str, np.ndarray]) -> Path:
        """Write a snapshot durably, then prune old ones. Returns its path."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SnapshotError(f"cannot create snapshot directory {self.directory}: "
                                f"{e.strerror}") from e
        layout, offset = [], 0
        for name, array in arrays.items():
            offset = -(-offset // ALIGN) * ALIGN
            layout.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape),
                           "offset": offset})
            offset += array.nbytes
        header = {"format": FORMAT, "seq": seq, "epoch": epoch,
                  "journal_hash": journal_hash.hex(), "state_hash": state_hash.hex(),
                  "created_ns": time.time_ns(), "capacities": capacities.as_dict(),
                  "arrays": layout}
        head = json.dumps(header).encode()
        prefix = MAGIC + len(head).to_bytes(4, "little") + head
        base = -(-len(prefix) // ALIGN) * ALIGN
        final = self.directory / _name(seq)
        temporary = final.with_suffix(".tmp")
        digest = hashlib.blake2b(digest_size=32)
        try:
            with open(temporary, "wb") as f:
                def put(data) -> None:
                    f.write(data)
                    digest.update(data)
                put(prefix + bytes(base - len(prefix)))
                written = 0
                for entry, array in zip(layout, arrays.values()):
                    put(bytes(entry["offset"] - written))
                    put(np.ascontiguousarray(array).data)
                    written = entry["offset"] + array.nbytes
                f.write(digest.digest())
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, final)
            _fsync_directory(self.directory)
        except OSError as e:
            temporary.unlink(missing_ok=True)
            raise SnapshotError(f"cannot write snapshot {final}: {e.strerror}") from e
        for old in self.paths()[self.retain:]:
            old.unlink(missing_ok=True)
        return final

    def load(self, path: str | Path) -> Snapshot:
        """Read and verify one snapshot file; raises SnapshotError on any damage."""
        path = Path(path)
        try:
            raw = bytearray(path.read_bytes())
        except OSError as e:
            raise SnapshotError(f"cannot read snapshot {path}: {e.strerror}") from e
        if len(raw) < len(MAGIC) + 4 + 32 or raw[:len(MAGIC)] != MAGIC:
            raise SnapshotError(f"{path} is not a ringex snapshot")
        body = memoryview(raw)[:-32]
        if hashlib.blake2b(body, digest_size=32).digest() != bytes(raw[-32:]):
            raise SnapshotError(f"{path} is damaged (checksum mismatch)")
        size = int.from_bytes(raw[8:12], "little")
        try:
            header = json.loads(bytes(raw[12:12 + size]))
        except ValueError as e:
            raise SnapshotError(f"{path} has an unreadable header") from e
        if header.get("format") != FORMAT:
            raise SnapshotError(f"{path} is snapshot format {header.get('format')}; this "
                                f"build reads format {FORMAT}")
        base = -(-(12 + size) // ALIGN) * ALIGN
        arrays = {}
        for entry in header["arrays"]:
            dtype = np.dtype(entry["dtype"])
            count = int(np.prod(entry["shape"], dtype=np.int64))
            arrays[entry["name"]] = np.frombuffer(
                raw, dtype, count, base + entry["offset"]).reshape(entry["shape"])
        return Snapshot(path, header["seq"], header["epoch"],
                        bytes.fromhex(header["journal_hash"]),
                        bytes.fromhex(header["state_hash"]),
                        Capacities.from_dict(header["capacities"]), arrays)

    def newest(self, max_seq: int | None = None,
               accept: Callable[[Snapshot], bool] = lambda s: True,
               on_skip: Callable[[Path, str], None] = lambda p, why: None) -> Snapshot | None:
        """The newest snapshot at or below ``max_seq`` that loads and that ``accept`` takes.
        Damaged or refused ones, and stray files named like snapshots, are reported to
        ``on_skip`` and passed over."""
        if self.directory.is_dir():
            for path in sorted(self.directory.glob("snapshot-*.rxs")):
                if not _NAME.fullmatch(path.name):
                    on_skip(path, "is not named snapshot-<sequence number>.rxs")
        for path in self.paths():
            seq = int(_NAME.fullmatch(path.name).group(1))
            if max_seq is not None and seq > max_seq:
                on_skip(path, f"is past seq {max_seq}, where this rebuild stops")
                continue
            try:
                snapshot = self.load(path)
            except SnapshotError as e:
                on_skip(path, str(e))
                continue
            if accept(snapshot):
                return snapshot
            on_skip(path, "does not belong to this journal's history")
        return None


class SnapshotWriter:
    """Hashes and writes captured arrays on a background thread, one snapshot at a time."""

    def __init__(self, store: SnapshotStore) -> None:
        self.store = store
        self._busy = threading.Lock()

    def submit(self, seq: int, epoch: int, journal_hash: bytes, capacities: Capacities,
               arrays: dict[str, np.ndarray]) -> Future | None:
        """Start writing; returns a Future of ``(path, state_hash)``, or None if a write is
        already in progress. The caller records the checkpoint from its own thread."""
        if not self._busy.acquire(blocking=False):
            return None
        future: Future = Future()

        def work() -> None:
            try:
                state_hash = state_hash_of(arrays)
                path = self.store.write(seq, epoch, journal_hash, state_hash, capacities, arrays)
                future.set_result((path, state_hash))
            except BaseException as e:   # reported through the future
                future.set_exception(e)
            finally:
                self._busy.release()
        threading.Thread(target=work, name=f"snapshot-{seq}", daemon=True).start()
        return future
