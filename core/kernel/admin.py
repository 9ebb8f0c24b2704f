"""Reference data, cash and securities administration, limits, statuses, and END_OF_DAY.

Rare commands, but they run in the same kernel call as the hot path so a batch never has to be
split. Each handler mirrors the method of the same name in ``core.model.engine``.
"""
import numpy as np

from ..codes import ResultCode as R
from ..enums import AccountStatus, AccountType, AssetClass, EventKind, InstrumentStatus, \
    TimeInForce
from ..integers import MAX_CASH, MAX_COLLAR_BPS, MAX_FEE_BPS, MAX_NOTIONAL, MAX_POSITION, \
    MAX_PRICE, MAX_QUANTITY, mul_div
from . import events, tables
from .jit import kernel
from .order_entry import account_exists, ensure_position, instrument_exists, position_row, \
    positions_full
from .orders import end_order, live_row
from .state import SYMBOL_LEN, Sc

_CMD_SYMBOL_AT = 28


@kernel
def _symbol_ok(raw):
    """1-12 printable ASCII characters without spaces, then zero padding."""
    n = 0
    while n < SYMBOL_LEN and raw[n] != 0:
        if raw[n] < 0x21 or raw[n] > 0x7E:
            return False
        n += 1
    if n == 0:
        return False
    for j in range(n, SYMBOL_LEN):
        if raw[j] != 0:
            return False
    return True


@kernel
def _symbol_taken(st, raw):
    inst = st.instruments
    for i in range(st.scalars[Sc.INSTRUMENT_ROWS]):
        if inst.exists[i]:
            same = True
            for j in range(SYMBOL_LEN):
                if inst.symbol[i * SYMBOL_LEN + j] != raw[j]:
                    same = False
                    break
            if same:
                return True
    return False


@kernel
def _vet_instrument(st, c, raw):
    i = c.instrument
    tick, lot, ref = c.tick_size, c.lot_size, c.reference_price
    if i < 0:
        return R.INVALID_ID
    if i >= st.scalars[Sc.INSTRUMENT_ROWS]:
        return R.INSTRUMENT_TABLE_FULL
    if st.instruments.exists[i]:
        return R.INSTRUMENT_EXISTS
    if not _symbol_ok(raw):
        return R.INVALID_SYMBOL
    if _symbol_taken(st, raw):
        return R.DUPLICATE_SYMBOL
    if c.asset_class < AssetClass.EQUITY or c.asset_class > AssetClass.OPTION:
        return R.INVALID_ASSET_CLASS
    if not 0 < tick <= MAX_PRICE:
        return R.INVALID_TICK_SIZE
    if not 0 < lot <= MAX_QUANTITY:
        return R.INVALID_LOT_SIZE
    if not 0 < ref <= MAX_PRICE or ref % tick != 0:
        return R.INVALID_REFERENCE_PRICE
    if not 0 < c.collar_bps <= MAX_COLLAR_BPS:
        return R.INVALID_COLLAR
    if not (0 <= c.maker_fee_bps <= MAX_FEE_BPS and 0 <= c.taker_fee_bps <= MAX_FEE_BPS):
        return R.INVALID_FEE
    return R.OK


@kernel
def add_instrument(st, ev, cmds, k):
    c = cmds[k]
    base = k * cmds.itemsize + _CMD_SYMBOL_AT
    raw = cmds.view(np.uint8)[base:base + SYMBOL_LEN]
    code = _vet_instrument(st, c, raw)
    if code != R.OK:
        return events.rejected(st, ev, c, code)
    inst = st.instruments
    i = c.instrument
    inst.exists[i] = 1
    for j in range(SYMBOL_LEN):
        inst.symbol[i * SYMBOL_LEN + j] = raw[j]
    inst.asset_class[i] = c.asset_class
    inst.status[i] = InstrumentStatus.TRADING
    inst.collar_bps[i] = c.collar_bps
    inst.maker_fee_bps[i] = c.maker_fee_bps
    inst.taker_fee_bps[i] = c.taker_fee_bps
    inst.tick_size[i] = c.tick_size
    inst.lot_size[i] = c.lot_size
    inst.reference_price[i] = c.reference_price
    inst.last_price[i] = 0
    return events.instrument_added(st, ev, cmds, k)


@kernel
def add_account(st, ev, c):
    a = c.account
    accounts = st.accounts
    if a < 0:
        return events.rejected(st, ev, c, R.INVALID_ID)
    if a >= st.scalars[Sc.ACCOUNT_ROWS]:
        return events.rejected(st, ev, c, R.ACCOUNT_TABLE_FULL)
    if accounts.exists[a]:
        return events.rejected(st, ev, c, R.ACCOUNT_EXISTS)
    if c.account_type != AccountType.CASH and c.account_type != AccountType.MARGIN:
        return events.rejected(st, ev, c, R.INVALID_ACCOUNT_TYPE)
    accounts.exists[a] = 1
    accounts.account_type[a] = c.account_type
    accounts.status[a] = AccountStatus.ACTIVE
    accounts.max_order_quantity[a] = MAX_QUANTITY
    accounts.max_order_notional[a] = MAX_NOTIONAL
    accounts.position_limit[a] = MAX_POSITION
    return events.account_added(st, ev, a, c.account_type)


@kernel
def deposit_cash(st, ev, c):
    a = c.account
    amount = c.amount
    if not account_exists(st, a):
        return events.rejected(st, ev, c, R.UNKNOWN_ACCOUNT)
    if not 0 < amount <= MAX_CASH:
        return events.rejected(st, ev, c, R.INVALID_AMOUNT)
    sc = st.scalars
    if sc[Sc.CASH_DEPOSITED] - sc[Sc.CASH_WITHDRAWN] + amount > MAX_CASH:
        return events.rejected(st, ev, c, R.CASH_LIMIT_EXCEEDED)
    st.accounts.cash[a] += amount
    sc[Sc.CASH_DEPOSITED] += amount
    return events.cash_moved(st, ev, a, amount, st.accounts.cash[a])


@kernel
def withdraw_cash(st, ev, c):
    a = c.account
    amount = c.amount
    if not account_exists(st, a):
        return events.rejected(st, ev, c, R.UNKNOWN_ACCOUNT)
    if not 0 < amount <= MAX_CASH:
        return events.rejected(st, ev, c, R.INVALID_AMOUNT)
    accounts = st.accounts
    if amount > accounts.cash[a] - accounts.reserved[a]:
        return events.rejected(st, ev, c, R.INSUFFICIENT_FUNDS)
    accounts.cash[a] -= amount
    st.scalars[Sc.CASH_WITHDRAWN] += amount
    return events.cash_moved(st, ev, a, -amount, accounts.cash[a])


@kernel
def deposit_position(st, ev, c):
    a, i, qty, cost = c.account, c.instrument, c.quantity, c.amount
    if not account_exists(st, a):
        return events.rejected(st, ev, c, R.UNKNOWN_ACCOUNT)
    if not instrument_exists(st, i):
        return events.rejected(st, ev, c, R.UNKNOWN_INSTRUMENT)
    if not 0 < qty <= MAX_QUANTITY:
        return events.rejected(st, ev, c, R.INVALID_QUANTITY)
    if not 0 <= cost <= qty * MAX_PRICE:
        return events.rejected(st, ev, c, R.INVALID_AMOUNT)
    p = position_row(st, a, i)
    held = st.positions.quantity[p] if p >= 0 else 0
    open_buy = st.positions.open_buy[p] if p >= 0 else 0
    if held < 0:
        return events.rejected(st, ev, c, R.POSITION_IS_SHORT)
    if held + open_buy + qty > MAX_POSITION:
        return events.rejected(st, ev, c, R.POSITION_LIMIT_EXCEEDED)
    if positions_full(st, a, i):
        return events.rejected(st, ev, c, R.POSITION_TABLE_FULL)
    p = ensure_position(st, a, i)
    st.positions.quantity[p] += qty
    st.positions.cost_basis[p] += cost
    st.instruments.units_deposited[i] += qty
    return events.position_moved(st, ev, a, i, cost, qty, st.positions.quantity[p])


@kernel
def withdraw_position(st, ev, c):
    a, i, qty = c.account, c.instrument, c.quantity
    if not account_exists(st, a):
        return events.rejected(st, ev, c, R.UNKNOWN_ACCOUNT)
    if not instrument_exists(st, i):
        return events.rejected(st, ev, c, R.UNKNOWN_INSTRUMENT)
    if not 0 < qty <= MAX_QUANTITY:
        return events.rejected(st, ev, c, R.INVALID_QUANTITY)
    p = position_row(st, a, i)
    pos = st.positions
    if p < 0 or pos.quantity[p] - pos.open_sell[p] < qty:
        return events.rejected(st, ev, c, R.INSUFFICIENT_POSITION)
    removed = mul_div(pos.cost_basis[p], qty, pos.quantity[p])
    pos.cost_basis[p] -= removed
    pos.quantity[p] -= qty
    st.instruments.units_deposited[i] -= qty
    return events.position_moved(st, ev, a, i, -removed, -qty, pos.quantity[p])


@kernel
def set_account_limits(st, ev, c):
    a = c.account
    qty, notional, limit = c.max_order_quantity, c.max_order_notional, c.position_limit
    if not account_exists(st, a):
        return events.rejected(st, ev, c, R.UNKNOWN_ACCOUNT)
    if not (0 < qty <= MAX_QUANTITY and 0 < notional <= MAX_NOTIONAL and
            0 <= limit <= MAX_POSITION):
        return events.rejected(st, ev, c, R.INVALID_LIMIT)
    st.accounts.max_order_quantity[a] = qty
    st.accounts.max_order_notional[a] = notional
    st.accounts.position_limit[a] = limit
    return events.account_limits_set(st, ev, a, qty, notional, limit)


@kernel
def set_position_limit(st, ev, c):
    a, i, limit = c.account, c.instrument, c.position_limit
    if not account_exists(st, a):
        return events.rejected(st, ev, c, R.UNKNOWN_ACCOUNT)
    if not instrument_exists(st, i):
        return events.rejected(st, ev, c, R.UNKNOWN_INSTRUMENT)
    if not -1 <= limit <= MAX_POSITION:
        return events.rejected(st, ev, c, R.INVALID_LIMIT)
    if positions_full(st, a, i):
        return events.rejected(st, ev, c, R.POSITION_TABLE_FULL)
    st.positions.position_limit[ensure_position(st, a, i)] = limit
    return events.position_limit_set(st, ev, a, i, limit)


@kernel
def set_account_status(st, ev, c):
    a, status = c.account, c.account_status
    if not account_exists(st, a):
        return events.rejected(st, ev, c, R.UNKNOWN_ACCOUNT)
    if status != AccountStatus.ACTIVE and status != AccountStatus.SUSPENDED:
        return events.rejected(st, ev, c, R.INVALID_STATUS)
    st.accounts.status[a] = status
    return events.account_status_changed(st, ev, a, status)


@kernel
def set_instrument_status(st, ev, c):
    i, status = c.instrument, c.instrument_status
    if not instrument_exists(st, i):
        return events.rejected(st, ev, c, R.UNKNOWN_INSTRUMENT)
    if status != InstrumentStatus.TRADING and status != InstrumentStatus.HALTED:
        return events.rejected(st, ev, c, R.INVALID_STATUS)
    st.instruments.status[i] = status
    return events.instrument_status_changed(st, ev, i, status)


@kernel
def _forget_closed_client_ids(st):
    """Keep only client order ids whose order is still live (a new day starts)."""
    t = st.client_ids
    keep = []
    for s in range(t.meta[tables.SLOTS]):
        base = s * 4
        if t.cells[base] != tables.EMPTY and \
                live_row(st, t.cells[base + 2], t.cells[base + 3]) >= 0:
            keep.append((t.cells[base], t.cells[base + 1], t.cells[base + 2],
                         t.cells[base + 3]))
    tables.clear(t)
    for key_a, key_b, order_id, row in keep:
        tables.put(t, key_a, key_b, order_id, row)


@kernel
def end_of_day(st, ev):
    orders = st.orders
    ids = []
    rows = []
    for o in range(st.scalars[Sc.ORDER_ROWS]):
        if orders.order_id[o] != 0 and orders.time_in_force[o] == TimeInForce.DAY:
            ids.append(orders.order_id[o])
            rows.append(o)
    order = np.argsort(np.array(ids, dtype=np.int64))
    for j in order:
        ev = end_order(st, ev, rows[j], EventKind.ORDER_EXPIRED, 0, 0)
    _forget_closed_client_ids(st)
    st.scalars[Sc.DAY] += 1
    return events.day_ended(st, ev, st.scalars[Sc.DAY], len(rows))
