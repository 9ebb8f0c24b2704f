"""Order books in the kernel: price levels, their FIFO queues, and each side's sorted run.

A book side's run (see ``core.kernel.state``) is sorted ascending by key with the best level
last; ``key`` is the price for bids and minus the price for asks. Finding a level is a binary
search; the best level is the run's last slot.

Arena discipline: runs are handed out from ``ARENA_TOP`` upward and double when full, leaving
their old slots behind. When the top reaches the end, ``_compact`` slides every live run down
in offset order (never onto a run not yet moved) and trims each to at most twice its length.
After compaction at most ``2 * levels + MIN_RUN * sides`` slots are in use and a growing run
needs at most ``2 * levels`` more, which is why ``arena_size`` is ``4 * levels + MIN_RUN *
sides``: growing never fails.
"""
import numpy as np

from ..enums import Side
from .intrinsics import column
from .jit import kernel
from .state import MIN_RUN, NOT_QUEUED, Sc


@kernel
def book_of(instrument, side):
    return instrument * 2 + side - 1


@kernel
def sort_key(side, price):
    return price if side == Side.BUY else -price


@kernel
def _search(books, b, key):
    """Position in run ``b`` of the first key >= ``key`` (its length if none)."""
    lo = 0
    hi = books.length[b]
    base = books.offset[b]
    while lo < hi:
        mid = (lo + hi) >> 1
        if books.keys[base + mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel
def find_level(st, instrument, side, price):
    """The level row at ``price`` on that side, or -1."""
    books = st.books
    b = book_of(instrument, side)
    key = sort_key(side, price)
    pos = _search(books, b, key)
    if pos < books.length[b] and books.keys[books.offset[b] + pos] == key:
        return books.levels[books.offset[b] + pos]
    return -1


@kernel
def best_level(st, instrument, side):
    """The best level row on that side, or -1 when the side is empty."""
    books = st.books
    b = book_of(instrument, side)
    n = books.length[b]
    return books.levels[books.offset[b] + n - 1] if n > 0 else -1


@kernel
def level_at_depth(st, instrument, side, depth):
    """The level row ``depth`` places below the best (0 = best), or -1."""
    books = st.books
    b = book_of(instrument, side)
    n = books.length[b]
    return books.levels[books.offset[b] + n - 1 - depth] if depth < n else -1


@kernel
def _compact(st):
    books = st.books
    order = np.argsort(column(books.offset, st.scalars[Sc.BOOK_SIDES]), kind="mergesort")
    top = 0
    for b in order:
        capacity = books.capacity[b]
        if capacity == 0:
            continue
        n = books.length[b]
        src = books.offset[b]
        if src != top:
            for j in range(n):
                books.keys[top + j] = books.keys[src + j]
                books.levels[top + j] = books.levels[src + j]
        books.offset[b] = top
        books.capacity[b] = min(capacity, max(MIN_RUN, 2 * n))
        top += books.capacity[b]
    st.scalars[Sc.ARENA_TOP] = top


@kernel
def _grow(st, b):
    books = st.books
    if st.scalars[Sc.ARENA_TOP] + max(MIN_RUN, 2 * books.capacity[b]) > \
            st.scalars[Sc.ARENA_SLOTS]:
        _compact(st)
        if books.length[b] < books.capacity[b]:
            return
    want = max(MIN_RUN, 2 * books.capacity[b])
    top = st.scalars[Sc.ARENA_TOP]
    src = books.offset[b]
    for j in range(books.length[b]):
        books.keys[top + j] = books.keys[src + j]
        books.levels[top + j] = books.levels[src + j]
    books.offset[b] = top
    books.capacity[b] = want
    st.scalars[Sc.ARENA_TOP] = top + want


@kernel
def levels_full(st):
    return st.scalars[Sc.LEVELS_USED] >= st.scalars[Sc.LEVEL_ROWS]


@kernel
def open_level(st, instrument, side, price):
    """A new, empty level at ``price`` (the caller checked ``levels_full``)."""
    levels = st.levels
    books = st.books
    lv = st.scalars[Sc.LEVEL_FREE]
    st.scalars[Sc.LEVEL_FREE] = levels.head[lv]
    st.scalars[Sc.LEVELS_USED] += 1
    b = book_of(instrument, side)
    levels.price[lv] = price
    levels.quantity[lv] = 0
    levels.count[lv] = 0
    levels.head[lv] = -1
    levels.tail[lv] = -1
    levels.book[lv] = b
    if books.length[b] == books.capacity[b]:
        _grow(st, b)
    key = sort_key(side, price)
    pos = _search(books, b, key)
    base = books.offset[b]
    j = books.length[b]
    while j > pos:
        books.keys[base + j] = books.keys[base + j - 1]
        books.levels[base + j] = books.levels[base + j - 1]
        j -= 1
    books.keys[base + pos] = key
    books.levels[base + pos] = lv
    books.length[b] += 1
    return lv


@kernel
def close_level(st, lv):
    """Remove an empty level from its run and free its row."""
    levels = st.levels
    books = st.books
    b = levels.book[lv]
    side = (b & 1) + 1
    pos = _search(books, b, sort_key(side, levels.price[lv]))
    base = books.offset[b]
    n = books.length[b]
    for j in range(pos, n - 1):
        books.keys[base + j] = books.keys[base + j + 1]
        books.levels[base + j] = books.levels[base + j + 1]
    books.length[b] = n - 1
    levels.head[lv] = st.scalars[Sc.LEVEL_FREE]
    st.scalars[Sc.LEVEL_FREE] = lv
    st.scalars[Sc.LEVELS_USED] -= 1


@kernel
def enqueue(st, lv, o):
    """Append order ``o`` to the back of level ``lv``."""
    levels = st.levels
    orders = st.orders
    tail = levels.tail[lv]
    orders.prev[o] = tail
    orders.next[o] = -1
    if tail >= 0:
        orders.next[tail] = o
    else:
        levels.head[lv] = o
    levels.tail[lv] = o
    levels.count[lv] += 1
    levels.quantity[lv] += orders.leaves[o]
    orders.level[o] = lv


@kernel
def dequeue(st, o):
    """Unlink order ``o`` from its level; returns the level (which may now be empty)."""
    levels = st.levels
    orders = st.orders
    lv = orders.level[o]
    prev = orders.prev[o]
    nxt = orders.next[o]
    if prev >= 0:
        orders.next[prev] = nxt
    else:
        levels.head[lv] = nxt
    if nxt >= 0:
        orders.prev[nxt] = prev
    else:
        levels.tail[lv] = prev
    levels.count[lv] -= 1
    levels.quantity[lv] -= orders.leaves[o]
    orders.level[o] = NOT_QUEUED
    orders.prev[o] = -1
    orders.next[o] = -1
    return lv
