"""Export the kernel's arrays into the canonical state (``core.canonical``).

Vectorized NumPy over the live rows of each table; the result is byte-identical to the reference
model's export of the same logical state.
"""
from __future__ import annotations

import numpy as np

from ..canonical import (ACCOUNT, CLIENT_ORDER_ID, HEADER, INSTRUMENT, ORDER, POSITION,
                         CanonicalState)
from .jit import entry
from .state import Sc, State
from .tables import entries


@entry
def _queue_positions(order_rows, level_head, stop_head, order_next):
    """Each order row's position in its queue: FIFO level queue, or its instrument's stop
    list (rows in neither stay -1)."""
    position = np.full(order_rows, -1, np.int64)
    for heads in (level_head, stop_head):
        for h in range(heads.shape[0]):
            o = heads[h]
            rank = 0
            while o >= 0:
                position[o] = rank
                rank += 1
                o = order_next[o]
    return position


def _fill(dtype: np.dtype, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
    out = np.zeros(rows, dtype)
    for name in dtype.names:
        out[name] = columns[name]
    return out


def canonical_state(st: State) -> CanonicalState:
    sc = st.scalars
    header = np.array([(sc[Sc.LAST_SEQ], sc[Sc.NEXT_ORDER_ID], sc[Sc.NEXT_TRADE_ID],
                        sc[Sc.DAY], sc[Sc.FEE_INCOME],
                        sc[Sc.CASH_DEPOSITED], sc[Sc.CASH_WITHDRAWN])], HEADER)

    inst = st.instruments
    rows = np.flatnonzero(inst.exists)
    symbols = np.ascontiguousarray(inst.symbol[rows]).view("S12").reshape(-1)
    instruments = _fill(INSTRUMENT, {
        "instrument": rows, "symbol": symbols, "asset_class": inst.asset_class[rows],
        "status": inst.status[rows], "collar_bps": inst.collar_bps[rows],
        "maker_fee_bps": inst.maker_fee_bps[rows], "taker_fee_bps": inst.taker_fee_bps[rows],
        "tick_size": inst.tick_size[rows], "lot_size": inst.lot_size[rows],
        "reference_price": inst.reference_price[rows], "last_price": inst.last_price[rows],
        "units_deposited": inst.units_deposited[rows]}, len(rows))

    acc = st.accounts
    rows = np.flatnonzero(acc.exists)
    accounts = _fill(ACCOUNT, {
        "account": rows, "account_type": acc.account_type[rows], "status": acc.status[rows],
        "cash": acc.cash[rows], "reserved": acc.reserved[rows],
        "max_order_quantity": acc.max_order_quantity[rows],
        "max_order_notional": acc.max_order_notional[rows],
        "position_limit": acc.position_limit[rows]}, len(rows))

    pos = st.positions
    used = int(sc[Sc.POSITIONS_USED])
    rows = np.lexsort((pos.instrument[:used], pos.account[:used]))
    positions = _fill(POSITION, {name: getattr(pos, name)[rows] for name in POSITION.names},
                      len(rows))

    orders = st.orders
    live = np.flatnonzero(orders.order_id)
    rows = live[np.argsort(orders.order_id[live], kind="stable")]
    levels_in_use = np.where(st.levels.count > 0, st.levels.head, -1).astype(np.int32)
    queue_position = _queue_positions(len(orders.order_id), levels_in_use,
                                      st.instruments.stop_head, orders.next)
    columns = {name: getattr(orders, name)[rows] for name in ORDER.names if name != "priority"}
    columns["priority"] = queue_position[rows]
    order_table = _fill(ORDER, columns, len(rows))

    rows = entries(st.client_ids)
    rows = rows[np.lexsort((rows[:, 1], rows[:, 0]))]
    client_ids = _fill(CLIENT_ORDER_ID, {"account": rows[:, 0], "client_order_id": rows[:, 1],
                                         "outcome": rows[:, 2]}, len(rows))
    return CanonicalState(header, instruments, accounts, positions, order_table, client_ids)
