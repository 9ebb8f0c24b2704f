"""The kernel's state: struct-of-arrays tables, preallocated from ``Capacities``.

Every table is a ``NamedTuple`` of NumPy arrays, one array per field, indexed by a row number.
Rows of ``instruments`` and ``accounts`` are their ids; ``positions``, ``orders`` and
``levels`` are pools whose rows are found through the hash tables (``core.kernel.tables``).
These arrays *own* the state: snapshots, the canonical export and the integrity checks read
them directly. The kernel reaches the same memory through a handle (``core.kernel.handle``)
in which every column is a raw pointer, so table access costs no reference counting.

Linked structures use row numbers and -1 for "none":

* a price level's FIFO queue: ``levels.head/tail`` and ``orders.prev/next``;
* an instrument's stop list, in priority order: ``instruments.stop_head/stop_tail`` and the
  same ``orders.prev/next`` (an order is in a level or in the stop list, never both);
* an account's live orders, in order-id order: ``accounts.order_head/order_tail`` and
  ``orders.account_prev/account_next``;
* free rows of ``orders`` and ``levels``: a stack through ``orders.next`` / ``levels.head``.

``orders.level`` says where an order is: a level row (>= 0), ``NOT_QUEUED`` (-1: live but in
neither, which only happens within one command) or ``IN_STOP_LIST`` (-2).

Each book side (``book = instrument * 2 + side - 1``) is a sorted run of ``(key, level)`` pairs
in one shared arena, best price last, so the best level is popped in O(1) and levels near the
top are inserted with a short shift. ``key`` is the price for bids and minus the price for asks.
Runs grow by doubling; when the arena's end is reached the runs are compacted (see
``core.kernel.book``). The arena is sized so that compaction always makes room.

Adding a field to a table is adding one array here (and to the canonical export if it is
logical state): this is the "room in the layout" for settlement and fees to come.
"""
from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numpy as np

from ..config import Capacities
from .tables import Table, new_table

SYMBOL_LEN = 12
NOT_QUEUED = -1
IN_STOP_LIST = -2
MIN_RUN = 8   #: the smallest run a book side gets in the arena


class Sc(IntEnum):
    """Indices into ``State.scalars``: counters, free-list heads, and the capacities."""
    LAST_SEQ = 0
    NEXT_ORDER_ID = 1
    NEXT_TRADE_ID = 2
    DAY = 3
    FEE_INCOME = 4
    CASH_DEPOSITED = 5
    CASH_WITHDRAWN = 6
    LIVE_ORDERS = 7
    ORDER_FREE = 8        #: top of the free-row stack of ``orders`` (-1: full)
    LEVEL_FREE = 9
    LEVELS_USED = 10
    POSITIONS_USED = 11
    ARENA_TOP = 12        #: first arena slot never handed out since the last compaction
    INSTRUMENT_ROWS = 13  #: capacities, fixed at allocation
    ACCOUNT_ROWS = 14
    ORDER_ROWS = 15
    LEVEL_ROWS = 16
    POSITION_ROWS = 17
    BOOK_SIDES = 18
    ARENA_SLOTS = 19
    COUNT = 20


class Ctx(IntEnum):
    """Indices into ``State.ctx``: per-command scratch, not part of the logical state."""
    EVENTS = 0   #: events written so far in this batch
    SEQ = 1      #: the command being processed
    TS = 2
    COUNT = 3


class Instruments(NamedTuple):
    exists: np.ndarray
    symbol: np.ndarray          # uint8[n, 12], zero padded
    asset_class: np.ndarray
    status: np.ndarray
    collar_bps: np.ndarray
    maker_fee_bps: np.ndarray
    taker_fee_bps: np.ndarray
    tick_size: np.ndarray
    lot_size: np.ndarray
    reference_price: np.ndarray
    last_price: np.ndarray      # 0 until the first trade
    units_deposited: np.ndarray
    stop_head: np.ndarray
    stop_tail: np.ndarray
    trailing_stops: np.ndarray  # how many dormant trailing stops (skip the scan when 0)
    stops_unchecked: np.ndarray  # 1 when a trade or a new stop may have made a stop due


class Accounts(NamedTuple):
    exists: np.ndarray
    account_type: np.ndarray
    status: np.ndarray
    cash: np.ndarray
    reserved: np.ndarray
    max_order_quantity: np.ndarray
    max_order_notional: np.ndarray
    position_limit: np.ndarray
    order_head: np.ndarray
    order_tail: np.ndarray


class Positions(NamedTuple):
    account: np.ndarray
    instrument: np.ndarray
    quantity: np.ndarray
    cost_basis: np.ndarray
    realized_pnl: np.ndarray
    open_buy: np.ndarray
    open_sell: np.ndarray
    fees_paid: np.ndarray
    position_limit: np.ndarray  # -1: the account's default


class Orders(NamedTuple):
    order_id: np.ndarray        # 0 on a free row
    client_order_id: np.ndarray
    price: np.ndarray
    stop_price: np.ndarray
    reserve_price: np.ndarray
    leaves: np.ndarray
    cum: np.ndarray
    account: np.ndarray
    instrument: np.ndarray
    position: np.ndarray        # row in ``positions``
    trail_ticks: np.ndarray
    level: np.ndarray           # level row, NOT_QUEUED or IN_STOP_LIST
    prev: np.ndarray
    next: np.ndarray
    account_prev: np.ndarray
    account_next: np.ndarray
    side: np.ndarray
    order_type: np.ndarray
    time_in_force: np.ndarray
    phase: np.ndarray


class Levels(NamedTuple):
    price: np.ndarray
    quantity: np.ndarray
    count: np.ndarray
    head: np.ndarray
    tail: np.ndarray
    book: np.ndarray


class Books(NamedTuple):
    offset: np.ndarray          # per book side: where its run starts in the arena
    capacity: np.ndarray
    length: np.ndarray
    keys: np.ndarray            # arena: sort keys, ascending within a run
    levels: np.ndarray          # arena: level rows, parallel to ``keys``


class State(NamedTuple):
    scalars: np.ndarray
    ctx: np.ndarray
    instruments: Instruments
    accounts: Accounts
    positions: Positions
    orders: Orders
    levels: Levels
    books: Books
    order_index: Table      # order id -> order row (live orders)
    client_ids: Table       # (account, client order id) -> (order id or -code, order row)
    position_index: Table   # pack(account, instrument) -> position row


TABLE_TYPES = {"instruments": Instruments, "accounts": Accounts, "positions": Positions,
               "orders": Orders, "levels": Levels, "books": Books, "order_index": Table,
               "client_ids": Table, "position_index": Table}

_FIELD_TYPES = {
    Instruments: dict(exists="u1", asset_class="u1", status="u1", collar_bps="i4",
                      maker_fee_bps="i4", taker_fee_bps="i4", tick_size="i8", lot_size="i8",
                      reference_price="i8", last_price="i8", units_deposited="i8",
                      stop_head="i4", stop_tail="i4", trailing_stops="i4",
                      stops_unchecked="u1"),
    Accounts: dict(exists="u1", account_type="u1", status="u1", cash="i8", reserved="i8",
                   max_order_quantity="i8", max_order_notional="i8", position_limit="i8",
                   order_head="i4", order_tail="i4"),
    Positions: dict(account="i4", instrument="i4", quantity="i8", cost_basis="i8",
                    realized_pnl="i8", open_buy="i8", open_sell="i8", fees_paid="i8",
                    position_limit="i8"),
    Orders: dict(order_id="i8", client_order_id="i8", price="i8",
                 stop_price="i8", reserve_price="i8", leaves="i4", cum="i4", account="i4",
                 instrument="i4", position="i4", trail_ticks="i4", level="i4", prev="i4",
                 next="i4", account_prev="i4", account_next="i4", side="u1", order_type="u1",
                 time_in_force="u1", phase="u1"),
    Levels: dict(price="i8", quantity="i8", count="i4", head="i4", tail="i4", book="i4"),
}


def _table_of(cls, rows: int, **overrides) -> NamedTuple:
    arrays = {name: np.zeros(rows, dtype) for name, dtype in _FIELD_TYPES[cls].items()}
    arrays.update(overrides)
    return cls(**arrays)


def arena_size(capacities: Capacities) -> int:
    """Arena slots that guarantee compaction always makes room (see core.kernel.book)."""
    return 4 * capacities.levels + MIN_RUN * 2 * capacities.instruments


def allocate(capacities: Capacities) -> State:
    """A fresh, empty state for the given capacities."""
    n_orders, n_levels = capacities.orders, capacities.levels
    orders = _table_of(Orders, n_orders, next=np.arange(1, n_orders + 1, dtype=np.int32))
    orders.next[-1] = -1
    orders.level[:] = NOT_QUEUED
    levels = _table_of(Levels, n_levels, head=np.arange(1, n_levels + 1, dtype=np.int32))
    levels.head[-1] = -1
    instruments = _table_of(Instruments, capacities.instruments,
                            symbol=np.zeros((capacities.instruments, SYMBOL_LEN), np.uint8))
    instruments.stop_head[:] = -1
    instruments.stop_tail[:] = -1
    accounts = _table_of(Accounts, capacities.accounts)
    accounts.order_head[:] = -1
    accounts.order_tail[:] = -1
    sides = 2 * capacities.instruments
    arena = arena_size(capacities)
    books = Books(np.zeros(sides, np.int64), np.zeros(sides, np.int64), np.zeros(sides, np.int64),
                  np.zeros(arena, np.int64), np.zeros(arena, np.int32))
    scalars = np.zeros(Sc.COUNT, np.int64)
    scalars[Sc.NEXT_ORDER_ID] = scalars[Sc.NEXT_TRADE_ID] = 1
    scalars[Sc.INSTRUMENT_ROWS] = capacities.instruments
    scalars[Sc.ACCOUNT_ROWS] = capacities.accounts
    scalars[Sc.ORDER_ROWS] = n_orders
    scalars[Sc.LEVEL_ROWS] = n_levels
    scalars[Sc.POSITION_ROWS] = capacities.positions
    scalars[Sc.BOOK_SIDES] = sides
    scalars[Sc.ARENA_SLOTS] = arena
    return State(scalars=scalars, ctx=np.zeros(Ctx.COUNT, np.int64),
                 instruments=instruments, accounts=accounts,
                 positions=_table_of(Positions, capacities.positions),
                 orders=orders, levels=levels, books=books,
                 order_index=new_table(n_orders, width=2, load=0.5),
                 client_ids=new_table(capacities.client_order_ids, width=4, load=0.35),
                 position_index=new_table(capacities.positions, width=2, load=0.5))


def state_arrays(state: State) -> dict[str, np.ndarray]:
    """Every array of the state by a dotted name (``orders.price``): for snapshots."""
    out: dict[str, np.ndarray] = {}
    for name, value in state._asdict().items():
        if isinstance(value, np.ndarray):
            out[name] = value
        else:
            for field, array in value._asdict().items():
                out[f"{name}.{field}"] = array
    return out


def from_arrays(arrays: dict[str, np.ndarray]) -> State:
    """Rebuild a ``State`` from ``state_arrays`` output (arrays are used as given)."""
    parts: dict[str, object] = {}
    for name in State._fields:
        cls = TABLE_TYPES.get(name)
        parts[name] = arrays[name] if cls is None else \
            cls(**{f: arrays[f"{name}.{f}"] for f in cls._fields})
    return State(**parts)
