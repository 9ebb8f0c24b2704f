"""Export the kernel's arrays into the canonical state (``core.canonical``).

Vectorized NumPy over the live rows of each table; the result is byte-identical to the reference
model's export of the same logical state.
"""
from __future__ import annotations

import numpy as np

from ..canonical import (ACCOUNT, CLIENT_ORDER_ID, HEADER, INSTRUMENT, ORDER, POSITION,
                         CanonicalState)
from .state import Sc, State


def _fill(dtype: np.dtype, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
    out = np.zeros(rows, dtype)
    for name in dtype.names:
        out[name] = columns[name]
    return out


def canonical_state(st: State) -> CanonicalState:
    sc = st.scalars
    header = np.array([(sc[Sc.LAST_SEQ], sc[Sc.NEXT_ORDER_ID], sc[Sc.NEXT_TRADE_ID],
                        sc[Sc.NEXT_PRIORITY], sc[Sc.DAY], sc[Sc.FEE_INCOME],
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
    columns = {name: getattr(orders, name)[rows] for name in ORDER.names}
    order_table = _fill(ORDER, columns, len(rows))

    ids = st.client_ids
    slots = np.flatnonzero(ids.used)
    slots = slots[np.lexsort((ids.key_b[slots], ids.key_a[slots]))]
    client_ids = _fill(CLIENT_ORDER_ID, {"account": ids.key_a[slots],
                                         "client_order_id": ids.key_b[slots],
                                         "outcome": ids.value[slots]}, len(slots))
    return CanonicalState(header, instruments, accounts, positions, order_table, client_ids)
