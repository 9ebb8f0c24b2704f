"""Open-addressing hash tables in the kernel, and their plain-Python readers.

A table is a row-major array of slots, ``width`` int64 cells each, so one probe reads one
cache line:

* width 2: ``[key, value]``, for one-integer keys (order id -> row; packed account and
  instrument -> position row);
* width 4: ``[key_a, key_b, value, value2]``, for (account, client order id) -> (outcome, row).

A slot is empty when its first cell is ``EMPTY`` (every key used here is >= 0). Linear probing
with backward-shift deletion (no tombstones, so lookups never degrade). The number of slots is
exactly what the load factor asks (no rounding up to a power of two, which would cost up to
twice the memory): a hash is mapped to a slot by multiply-shift range reduction. ``meta`` holds ``[count, limit, slots, width]``; callers check ``is_full`` before
inserting a new key. The layout never influences an outcome, only ``find``'s answer does.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .intrinsics import prefetch
from .jit import kernel

EMPTY = -1
COUNT, LIMIT, SLOTS, WIDTH = 0, 1, 2, 3

_MUL_A = np.uint64(0x9E3779B97F4A7C15)
_MUL_B = np.uint64(0xC2B2AE3D27D4EB4F)
_SHIFT = np.uint64(29)
_HALF = np.uint64(32)


class Table(NamedTuple):
    cells: np.ndarray   # int64[slots, width]; in the kernel a pointer to its first cell
    meta: np.ndarray    # int64[4]: count, limit, slots, width


def new_table(limit: int, width: int, load: float) -> Table:
    """An empty table for up to ``limit`` entries, at most ``load`` full."""
    slots = max(16, int(np.ceil(limit / load)))
    cells = np.zeros((slots, width), np.int64)
    cells[:, 0] = EMPTY
    return Table(cells, np.array([0, limit, slots, width], np.int64))


def pack(high: int, low: int) -> int:
    """Two non-negative ints below 2**31 as one key."""
    return (high << 32) | low


# ---------------------------------------------------------------- kernel side
@kernel
def _home(t, key_a, key_b):
    h = np.uint64(key_a) * _MUL_A + np.uint64(key_b) * _MUL_B
    h ^= h >> _SHIFT
    h *= _MUL_A
    h ^= h >> _SHIFT
    return np.int64(((h >> _HALF) * np.uint64(t.meta[SLOTS])) >> _HALF)


@kernel
def _next(t, slot):
    slot += 1
    return 0 if slot == t.meta[SLOTS] else slot


@kernel
def _probe(t, key_a, key_b):
    """The slot holding the key, or else the empty slot that ends its probe run (where it
    would go)."""
    width = t.meta[WIDTH]
    slot = _home(t, key_a, key_b)
    while True:
        base = slot * width
        first = t.cells[base]
        if first == EMPTY or (first == key_a and (width == 2 or t.cells[base + 1] == key_b)):
            return slot
        slot = _next(t, slot)


@kernel
def find(t, key_a, key_b):
    """The slot holding the key, or -1 (for width-2 tables ``key_b`` must be 0)."""
    slot = _probe(t, key_a, key_b)
    return -1 if t.cells[slot * t.meta[WIDTH]] == EMPTY else slot


@kernel
def prefetch_key(t, key_a, key_b):
    """Start loading the slot where a lookup of this key begins (a hint, see handle.py)."""
    prefetch(t.cells, _home(t, key_a, key_b) * t.meta[WIDTH])


@kernel
def value_at(t, slot):
    return t.cells[slot * t.meta[WIDTH] + t.meta[WIDTH] // 2]


@kernel
def value2_at(t, slot):
    return t.cells[slot * 4 + 3]


@kernel
def get(t, key_a, key_b, default):
    slot = find(t, key_a, key_b)
    return value_at(t, slot) if slot >= 0 else default


@kernel
def is_full(t):
    return t.meta[COUNT] >= t.meta[LIMIT]


@kernel
def put(t, key_a, key_b, value, value2):
    """Insert or overwrite (``value2`` is ignored by width-2 tables). The caller has checked
    ``is_full`` for a new key."""
    width = t.meta[WIDTH]
    base = _probe(t, key_a, key_b) * width
    if t.cells[base] == EMPTY:
        t.meta[COUNT] += 1
    t.cells[base] = key_a
    if width == 2:
        t.cells[base + 1] = value
    else:
        t.cells[base + 1] = key_b
        t.cells[base + 2] = value
        t.cells[base + 3] = value2


@kernel
def remove(t, key_a, key_b):
    """Delete the key if present, shifting later entries of its probe run back."""
    hole = find(t, key_a, key_b)
    if hole < 0:
        return
    width = t.meta[WIDTH]
    probe = hole
    while True:
        probe = _next(t, probe)
        base = probe * width
        if t.cells[base] == EMPTY:
            break
        key_b = t.cells[base + 1] if width == 4 else 0
        home = _home(t, t.cells[base], key_b)
        # The entry at ``probe`` may move into ``hole`` unless its home lies cyclically in
        # (hole, probe]: then moving it would put it before its home.
        if hole <= probe:
            stays = hole < home <= probe
        else:
            stays = home > hole or home <= probe
        if stays:
            continue
        for k in range(width):
            t.cells[hole * width + k] = t.cells[base + k]
        hole = probe
    t.cells[hole * width] = EMPTY
    for k in range(1, width):
        t.cells[hole * width + k] = 0
    t.meta[COUNT] -= 1


@kernel
def clear(t):
    width = t.meta[WIDTH]
    for s in range(t.meta[SLOTS]):
        t.cells[s * width] = EMPTY
        for k in range(1, width):
            t.cells[s * width + k] = 0
    t.meta[COUNT] = 0


# ---------------------------------------------------------------- Python side (owner arrays)
def entries(table: Table) -> np.ndarray:
    """The used slots' cells, as rows of the owner array."""
    return table.cells[table.cells[:, 0] != EMPTY]


def lookup(table: Table, key_a: int, key_b: int = 0) -> int | None:
    """Plain-Python lookup for checks and tools (slow: scans the used slots)."""
    rows = entries(table)
    match = rows[:, 0] == key_a
    if table.cells.shape[1] == 4:
        match &= rows[:, 1] == key_b
    found = rows[match]
    return int(found[0, table.cells.shape[1] // 2]) if len(found) else None
