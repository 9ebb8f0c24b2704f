"""The journal on disk: one LMDB environment per node.

Databases inside the environment:

* ``batches``: big-endian first sequence number -> batch record (``journal.format``);
* ``meta``: ``format``, ``node_id``, ``epoch``, ``last_seq`` (8-byte big-endian integers) and
  ``config`` (JSON: the engine configuration the history was produced under);
* ``checkpoints``: big-endian sequence number -> 32-byte state hash recorded at that point.

Durability policies: ``fsync`` (default) commits each batch with a full sync before
``append`` returns; ``async`` lets the OS write back later (safe against a process crash,
not against power loss; for development). Batches are written with MDB_APPEND. When the
memory map fills up it is doubled, up to ``max_map_size``; past that, and on a full disk,
``append`` raises ``JournalError`` and nothing of the batch is stored.
"""
from __future__ import annotations

import errno
import struct
from pathlib import Path
from typing import Iterator

import lmdb

from .base import Journal
from .format import FORMAT_VERSION, Batch, JournalError, batch_key

DURABILITY = ("fsync", "async")
_SCAN_CHUNK = 256   # batches per read transaction, so long scans never pin old pages


def _int(value: int) -> bytes:
    return value.to_bytes(8, "big", signed=True)


_META = struct.Struct("<II8xQI92xQQ")   # magic, version, map size, page size, last page, txn id
_LMDB_MAGIC = 0xBEEFC0DE


def preflight(path: Path) -> None:
    """Refuse a damaged ``data.mdb`` before LMDB maps it.

    LMDB trusts its file: a truncated one makes the process die of SIGBUS on first access
    instead of raising. So read both meta pages (page header 16 bytes, then the meta record)
    and check that the file holds every page the newest valid meta page says is in use."""
    data = path / "data.mdb"
    if not data.is_file():
        return
    size = data.stat().st_size
    with data.open("rb") as f:
        head = f.read(16 + _META.size)
        if len(head) < 16 + _META.size:
            raise JournalError(f"{data} is truncated to {size} bytes (not an LMDB file)")
        magic, _, _, page_size, _, _ = _META.unpack_from(head, 16)
        if magic != _LMDB_MAGIC or page_size < 512 or page_size & (page_size - 1):
            raise JournalError(f"{data} is not an LMDB file (bad meta page)")
        f.seek(page_size)
        second = f.read(16 + _META.size)
    metas = [_META.unpack_from(head, 16)]
    if len(second) == len(head):
        metas.append(_META.unpack_from(second, 16))
    valid = [m for m in metas if m[0] == _LMDB_MAGIC]
    _, _, _, _, last_page, _ = max(valid, key=lambda m: m[5])
    needed = (last_page + 1) * page_size
    if size < needed:
        raise JournalError(f"{data} is truncated: LMDB needs {needed} bytes, the file has "
                           f"{size}; restore it from the standby or a copy")


class LmdbJournal(Journal):
    def __init__(self, path: str | Path, *, durability: str = "fsync", node_id: int = 0,
                 map_size: int = 1 << 30, max_map_size: int = 1 << 40,
                 readonly: bool = False) -> None:
        super().__init__()
        if durability not in DURABILITY:
            raise JournalError(f"durability must be one of {DURABILITY}, not {durability!r}")
        self.path = Path(path)
        self.readonly = readonly
        self._max_map = max_map_size
        if readonly and not (self.path / "data.mdb").is_file():
            raise JournalError(f"no journal at {self.path}")
        preflight(self.path)
        if not readonly:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise JournalError(f"cannot create journal directory {self.path}: "
                                   f"{e.strerror}") from e
        self._env = self._open_env(map_size, durability)
        try:
            self._batches = self._env.open_db(b"batches", create=not readonly)
            self._meta = self._env.open_db(b"meta", create=not readonly)
            self._marks = self._env.open_db(b"checkpoints", create=not readonly)
            fmt = self._get_meta("format")
            if fmt is None and not readonly:
                self._put_meta("format", FORMAT_VERSION)
                self._put_meta("node_id", node_id)
            elif fmt != FORMAT_VERSION:
                raise JournalError(f"{self.path} holds journal format {fmt}; this build "
                                   f"reads format {FORMAT_VERSION}")
            self._open_tail()
        except lmdb.Error as e:
            self._abandon()
            raise JournalError(f"{self.path} is not a ringex journal: {e}") from e
        except Exception:
            self._abandon()
            raise

    def _abandon(self) -> None:
        self._env.close()
        self._env = None

    def _open_env(self, map_size: int, durability: str) -> lmdb.Environment:
        options = dict(map_size=map_size, max_dbs=4, subdir=True, readonly=self.readonly,
                       create=not self.readonly, sync=durability == "fsync", metasync=True,
                       map_async=False, max_readers=64)
        try:
            return lmdb.open(str(self.path), **options)
        except lmdb.Error as e:
            if self.readonly:   # e.g. a read-only copy: read without the lock file
                try:
                    return lmdb.open(str(self.path), lock=False, **options)
                except lmdb.Error:
                    pass
            raise JournalError(f"cannot open journal at {self.path}: {e}") from e

    @property
    def node_id(self) -> int:
        return int(self._get_meta("node_id") or 0)

    # ------------------------------------------------------------ writing with map growth
    def _write(self, action) -> None:
        if self.readonly:
            raise JournalError(f"journal at {self.path} is open read-only")
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    action(txn)
                return
            except lmdb.MapFullError:
                size = self._env.info()["map_size"]
                if size * 2 > self._max_map:
                    raise JournalError(f"journal map full at {size} bytes (max_map_size "
                                       f"{self._max_map}); nothing of this write was stored")
                self._env.set_mapsize(size * 2)
            except lmdb.Error as e:
                full = "No space left" in str(e) or getattr(e, "errno", None) == errno.ENOSPC
                raise JournalError(("disk full: " if full else "journal write failed: ") +
                                   f"{e}; nothing of this write was stored") from e

    def _store(self, batch: Batch, epoch: int) -> None:
        def put(txn: lmdb.Transaction) -> None:
            if not txn.put(batch_key(batch.first_seq), batch.raw, db=self._batches,
                           append=True, overwrite=False):
                raise JournalError(f"seq {batch.first_seq} is already journaled")
            txn.put(b"epoch", _int(epoch), db=self._meta)
            txn.put(b"last_seq", _int(batch.last_seq), db=self._meta)
        self._write(put)

    def _delete_from(self, first_seq: int, epoch: int) -> int:
        removed = 0

        def delete(txn: lmdb.Transaction) -> None:
            nonlocal removed
            cursor = txn.cursor(db=self._batches)
            if cursor.set_range(batch_key(first_seq)):
                while cursor.delete():
                    removed += 1
            txn.put(b"last_seq", _int(first_seq - 1), db=self._meta)
        self._write(delete)
        return removed

    def _put_meta(self, key: str, value: int) -> None:
        self._write(lambda txn: txn.put(key.encode(), _int(value), db=self._meta))

    def _get_blob(self, key: str) -> bytes | None:
        with self._env.begin() as txn:
            return txn.get(key.encode(), db=self._meta)

    def _put_blob(self, key: str, value: bytes) -> None:
        self._write(lambda txn: txn.put(key.encode(), value, db=self._meta))

    def _put_checkpoint(self, seq: int, state_hash: bytes) -> None:
        self._write(lambda txn: txn.put(batch_key(seq), state_hash, db=self._marks))

    # ------------------------------------------------------------ reading
    def _get_meta(self, key: str) -> int | None:
        with self._env.begin() as txn:
            value = txn.get(key.encode(), db=self._meta)
        return int.from_bytes(value, "big", signed=True) if value is not None else None

    def _load(self, first_seq: int) -> bytes | None:
        with self._env.begin() as txn:
            return txn.get(batch_key(first_seq), db=self._batches)

    def _scan(self, from_key: int) -> Iterator[tuple[int, bytes]]:
        key = batch_key(from_key)
        while True:
            chunk = []
            with self._env.begin() as txn:
                cursor = txn.cursor(db=self._batches)
                if not cursor.set_range(key):
                    return
                for k, v in cursor:
                    chunk.append((int.from_bytes(k, "big"), v))
                    if len(chunk) == _SCAN_CHUNK:
                        break
            yield from chunk
            if len(chunk) < _SCAN_CHUNK:
                return
            key = batch_key(chunk[-1][0] + 1)

    def _containing(self, seq: int) -> tuple[int, bytes] | None:
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._batches)
            key = batch_key(seq)
            if cursor.set_range(key):
                if cursor.key() == key:
                    return seq, cursor.value()
                if not cursor.prev():
                    return None
            elif not cursor.last():
                return None
            return int.from_bytes(cursor.key(), "big"), cursor.value()

    def _last_stored(self) -> tuple[int, bytes] | None:
        with self._env.begin() as txn:
            cursor = txn.cursor(db=self._batches)
            if not cursor.last():
                return None
            return int.from_bytes(cursor.key(), "big"), cursor.value()

    def _checkpoints(self) -> list[tuple[int, bytes]]:
        with self._env.begin() as txn:
            return [(int.from_bytes(k, "big"), v) for k, v in txn.cursor(db=self._marks)]

    # ------------------------------------------------------------ lifecycle
    def copy_to(self, destination: str | Path) -> None:
        """A consistent copy of the whole environment (safe while a writer is running)."""
        Path(destination).mkdir(parents=True, exist_ok=True)
        self._env.copy(str(destination))

    def flush(self) -> None:
        """Force everything committed so far to disk (useful under ``async``)."""
        if not self.readonly:
            self._env.sync(True)

    def close(self) -> None:
        if self._env is not None:
            self.flush()
            self._env.close()
            self._env = None
