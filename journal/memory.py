"""An in-memory journal for tests and tools: the same contract as the LMDB one, no disk."""
from __future__ import annotations

import bisect
from typing import Iterator

from .base import Journal
from .format import Batch


class MemoryJournal(Journal):
    def __init__(self) -> None:
        super().__init__()
        self._keys: list[int] = []
        self._raw: dict[int, bytes] = {}
        self._meta: dict[str, int] = {}
        self._marks: dict[int, bytes] = {}
        self._blobs: dict[str, bytes] = {}
        self._open_tail()

    def _store(self, batch: Batch, epoch: int) -> None:
        self._keys.append(batch.first_seq)
        self._raw[batch.first_seq] = batch.raw
        self._meta.update(epoch=epoch, last_seq=batch.last_seq)

    def _load(self, first_seq: int) -> bytes | None:
        return self._raw.get(first_seq)

    def _scan(self, from_key: int) -> Iterator[tuple[int, bytes]]:
        for key in self._keys[bisect.bisect_left(self._keys, from_key):]:
            yield key, self._raw[key]

    def _containing(self, seq: int) -> tuple[int, bytes] | None:
        at = bisect.bisect_right(self._keys, seq) - 1
        return (self._keys[at], self._raw[self._keys[at]]) if at >= 0 else None

    def _last_stored(self) -> tuple[int, bytes] | None:
        return (self._keys[-1], self._raw[self._keys[-1]]) if self._keys else None

    def _delete_from(self, first_seq: int, epoch: int) -> int:
        cut = bisect.bisect_left(self._keys, first_seq)
        doomed = self._keys[cut:]
        del self._keys[cut:]
        for key in doomed:
            del self._raw[key]
        return len(doomed)

    def _get_meta(self, key: str) -> int | None:
        return self._meta.get(key)

    def _put_meta(self, key: str, value: int) -> None:
        self._meta[key] = value

    def _get_blob(self, key: str) -> bytes | None:
        return self._blobs.get(key)

    def _put_blob(self, key: str, value: bytes) -> None:
        self._blobs[key] = value

    def _put_checkpoint(self, seq: int, state_hash: bytes) -> None:
        self._marks[seq] = state_hash

    def _checkpoints(self) -> list[tuple[int, bytes]]:
        return sorted(self._marks.items())

    def close(self) -> None:
        pass
