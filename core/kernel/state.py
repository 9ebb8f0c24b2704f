"""The kernel's state: struct-of-arrays tables, preallocated from ``Capacities``.

Every table is a ``NamedTuple`` of NumPy arrays, one array per field, indexed by a row number.
Numba compiles ``st.orders.price[o]`` to a plain load, and the whole ``State`` is one argument.
Rows of ``instruments`` and ``accounts`` are their ids; ``positions``, ``orders`` and
``levels`` are pools whose rows are found through the hash tables (``core.kernel.tables``).

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

The kernel receives the state as a ``StateRef``: a numba StructRef holding the same tables, so
a call passes one pointer instead of ~90 array descriptors (which made every function cost
seconds to compile and microseconds to call). Python code keeps using the ``State`` tuple; both
see the same memory.

Adding a field to a table is adding one array here (and to the canonical export if it is
logical state): this is the "room in the layout" for settlement and fees to come.
"""
from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

import numpy as np
from numba.core import types
from numba.experimental import structref

from ..config import Capacities
from .jit import entry

SYMBOL_LEN = 12
NOT_QUEUED = -1
IN_STOP_LIST = -2
MIN_RUN = 8   #: the smallest run a book side gets in the arena


class Sc(IntEnum):
    """Indices into ``State.scalars``."""
    LAST_SEQ = 0
    NEXT_ORDER_ID = 1
    NEXT_TRADE_ID = 2
    NEXT_PRIORITY = 3
    DAY = 4
    FEE_INCOME = 5
    CASH_DEPOSITED = 6
    CASH_WITHDRAWN = 7
    LIVE_ORDERS = 8
    ORDER_FREE = 9        #: top of the free-row stack of ``orders`` (-1: full)
    LEVEL_FREE = 10
    LEVELS_USED = 11
    POSITIONS_USED = 12
    ARENA_TOP = 13        #: first arena slot never handed out since the last compaction
    COUNT = 14


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
    priority: np.ndarray
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


class Table(NamedTuple):
    """An open-addressing hash table from (key_a, key_b) to value; see ``core.kernel.tables``.

    ``meta[0]`` is the number of entries, ``meta[1]`` the most it may hold."""
    key_a: np.ndarray
    key_b: np.ndarray
    value: np.ndarray
    used: np.ndarray
    meta: np.ndarray


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
    client_ids: Table       # (account, client order id) -> order id, or -code if rejected
    position_index: Table   # (account, instrument) -> position row


@structref.register
class StateRefType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class StateRef(structref.StructRefProxy):
    """The kernel's handle on a ``State`` (see the module docstring)."""

    def __new__(cls, *tables):
        return _new_state_ref(*tables)


structref.define_constructor(StateRef, StateRefType, list(State._fields))
structref.define_boxing(StateRefType, StateRef)


@entry
def _new_state_ref(scalars, ctx, instruments, accounts, positions, orders, levels, books,
                   order_index, client_ids, position_index):
    return StateRef(scalars, ctx, instruments, accounts, positions, orders, levels, books,
                    order_index, client_ids, position_index)


def kernel_handle(state: State) -> StateRef:
    """The StructRef the kernel functions take, sharing ``state``'s arrays."""
    return StateRef(*state)


_FIELD_TYPES = {
    Instruments: dict(exists="u1", asset_class="u1", status="u1", collar_bps="i4",
                      maker_fee_bps="i4", taker_fee_bps="i4", tick_size="i8", lot_size="i8",
                      reference_price="i8", last_price="i8", units_deposited="i8",
                      stop_head="i4", stop_tail="i4", trailing_stops="i4"),
    Accounts: dict(exists="u1", account_type="u1", status="u1", cash="i8", reserved="i8",
                   max_order_quantity="i8", max_order_notional="i8", position_limit="i8",
                   order_head="i4", order_tail="i4"),
    Positions: dict(account="i4", instrument="i4", quantity="i8", cost_basis="i8",
                    realized_pnl="i8", open_buy="i8", open_sell="i8", fees_paid="i8",
                    position_limit="i8"),
    Orders: dict(order_id="i8", client_order_id="i8", priority="i8", price="i8",
                 stop_price="i8", reserve_price="i8", leaves="i4", cum="i4", account="i4",
                 instrument="i4", position="i4", trail_ticks="i4", level="i4", prev="i4",
                 next="i4", account_prev="i4", account_next="i4", side="u1", order_type="u1",
                 time_in_force="u1", phase="u1"),
    Levels: dict(price="i8", quantity="i8", count="i4", head="i4", tail="i4", book="i4"),
}


def _table_of(cls, rows: int, **overrides) -> NamedTuple:
    arrays = {}
    for name, dtype in _FIELD_TYPES[cls].items():
        arrays[name] = np.zeros(rows, dtype)
    arrays.update(overrides)
    return cls(**arrays)


def _hash_table(max_entries: int) -> Table:
    slots = 1 << max(4, (2 * max_entries - 1).bit_length())   # load factor <= 1/2
    return Table(np.zeros(slots, np.int64), np.zeros(slots, np.int64), np.zeros(slots, np.int64),
                 np.zeros(slots, np.uint8), np.array([0, max_entries], np.int64))


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
    scalars[Sc.NEXT_ORDER_ID] = scalars[Sc.NEXT_TRADE_ID] = scalars[Sc.NEXT_PRIORITY] = 1
    scalars[Sc.ORDER_FREE] = 0
    scalars[Sc.LEVEL_FREE] = 0
    return State(scalars=scalars, ctx=np.zeros(Ctx.COUNT, np.int64),
                 instruments=instruments, accounts=accounts,
                 positions=_table_of(Positions, capacities.positions),
                 orders=orders, levels=levels, books=books,
                 order_index=_hash_table(n_orders),
                 client_ids=_hash_table(capacities.client_order_ids),
                 position_index=_hash_table(capacities.positions))


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
    for name, cls in State.__annotations__.items():
        if name in arrays:
            parts[name] = arrays[name]
        else:
            table_cls = {"Instruments": Instruments, "Accounts": Accounts,
                         "Positions": Positions, "Orders": Orders, "Levels": Levels,
                         "Books": Books, "Table": Table}[cls]
            parts[name] = table_cls(**{f: arrays[f"{name}.{f}"] for f in table_cls._fields})
    return State(**parts)
