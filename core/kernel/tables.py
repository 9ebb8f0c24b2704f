"""Open-addressing hash tables from a pair of int64 keys to an int64 value.

Linear probing in a power-of-two array kept at most half full, with backward-shift deletion (no
tombstones, so lookups never degrade). The layout of a table never influences an outcome: only
``find``'s answer does. ``meta[0]`` counts entries; ``meta[1]`` is the configured maximum, and
callers check ``is_full`` before inserting.
"""
import numpy as np

from .jit import entry

_MUL_A = np.uint64(0x9E3779B97F4A7C15)
_MUL_B = np.uint64(0xC2B2AE3D27D4EB4F)
_SHIFT = np.uint64(29)


@entry
def _home(table, key_a, key_b):
    h = np.uint64(key_a) * _MUL_A + np.uint64(key_b) * _MUL_B
    h ^= h >> _SHIFT
    h *= _MUL_A
    h ^= h >> _SHIFT
    return np.int64(h & np.uint64(table.used.shape[0] - 1))


@entry
def find(table, key_a, key_b):
    """The slot holding (key_a, key_b), or -1."""
    mask = table.used.shape[0] - 1
    slot = _home(table, key_a, key_b)
    while table.used[slot]:
        if table.key_a[slot] == key_a and table.key_b[slot] == key_b:
            return slot
        slot = (slot + 1) & mask
    return -1


@entry
def get(table, key_a, key_b, default):
    slot = find(table, key_a, key_b)
    return table.value[slot] if slot >= 0 else default


@entry
def is_full(table):
    return table.meta[0] >= table.meta[1]


@entry
def put(table, key_a, key_b, value):
    """Insert or overwrite. The caller has checked ``is_full`` for a new key."""
    mask = table.used.shape[0] - 1
    slot = _home(table, key_a, key_b)
    while table.used[slot]:
        if table.key_a[slot] == key_a and table.key_b[slot] == key_b:
            table.value[slot] = value
            return
        slot = (slot + 1) & mask
    table.used[slot] = 1
    table.key_a[slot] = key_a
    table.key_b[slot] = key_b
    table.value[slot] = value
    table.meta[0] += 1


@entry
def remove(table, key_a, key_b):
    """Delete the key if present, shifting later entries of its probe run back."""
    hole = find(table, key_a, key_b)
    if hole < 0:
        return
    mask = table.used.shape[0] - 1
    probe = hole
    while True:
        probe = (probe + 1) & mask
        if not table.used[probe]:
            break
        home = _home(table, table.key_a[probe], table.key_b[probe])
        # The entry at ``probe`` may move into ``hole`` unless its home lies cyclically in
        # (hole, probe]: then moving it would put it before its home.
        if hole <= probe:
            stays = hole < home <= probe
        else:
            stays = home > hole or home <= probe
        if stays:
            continue
        table.key_a[hole] = table.key_a[probe]
        table.key_b[hole] = table.key_b[probe]
        table.value[hole] = table.value[probe]
        hole = probe
    table.used[hole] = 0
    table.key_a[hole] = 0
    table.key_b[hole] = 0
    table.value[hole] = 0
    table.meta[0] -= 1


@entry
def clear(table):
    table.used[:] = 0
    table.key_a[:] = 0
    table.key_b[:] = 0
    table.value[:] = 0
    table.meta[0] = 0
