"""Working with a node's data directory when the node is not running (or from a copy).

A node's data directory holds ``journal/`` (the LMDB environment) and ``snapshots/``. Tools
accept either that directory or the journal directory itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .format import JournalError
from .lmdb_journal import LmdbJournal
from .recovery import recover
from .snapshots import SnapshotStore, capture, state_hash_of


@dataclass(frozen=True)
class DataDir:
    journal: Path
    snapshots: Path


def resolve(path: str | Path) -> DataDir:
    """Find the journal and the snapshots from a data directory or a journal directory."""
    path = Path(path)
    if (path / "journal" / "data.mdb").is_file():
        return DataDir(path / "journal", path / "snapshots")
    if (path / "data.mdb").is_file():
        return DataDir(path, path.parent / "snapshots")
    raise JournalError(f"no journal in {path} (expected {path}/journal/data.mdb or "
                       f"{path}/data.mdb)")


def open_readonly(path: str | Path) -> tuple[LmdbJournal, SnapshotStore]:
    where = resolve(path)
    return LmdbJournal(where.journal, readonly=True), SnapshotStore(where.snapshots)


def snapshot_offline(path: Path, snapshot_dir: Path | None = None) -> tuple[Path, int, bytes]:
    """Rebuild the latest state from a journal and write a snapshot of it."""
    journal, store = open_readonly(path)
    with journal:
        if snapshot_dir is not None:
            store = SnapshotStore(snapshot_dir, retain=store.retain)
        recovered = recover(journal, store)
        blp = recovered.blp
        arrays = capture(blp.arrays())
        state_hash = state_hash_of(arrays)
        written = store.write(blp.last_seq, journal.epoch,
                              journal.last_hash if blp.last_seq else bytes(32), state_hash,
                              blp.capacities, arrays)
    return written, blp.last_seq, state_hash
