"""NEW_ORDER, CANCEL, MODIFY and MASS_CANCEL in the kernel.

Each handler mirrors the method of the same name in ``core.model.engine``, check for check and
event for event; read that file for the rules. Handlers take the command record ``c`` and the
event buffer, and return the buffer.
"""
import numpy as np

from ..codes import ResultCode as R
from ..enums import AccountStatus, AccountType, EventKind, InstrumentStatus, OrderPhase, \
    OrderType, Side, TimeInForce
from ..integers import MAX_PRICE, MAX_QUANTITY, MAX_TRAIL_TICKS, NO_ID, buy_reservation, \
    collar_high, collar_low
from . import events, tables
from .jit import kernel
from .matching import execute
from .orders import allocate, cancel_order, emit_level_after, end_order, find_live, \
    live_row, market_price, max_fee_bps, orders_full, register, required, reserve, unqueue
from .state import Sc
from .stops import add_dormant, run_stops


# ---------------------------------------------------------------- lookups shared with admin
@kernel
def account_exists(st, a):
    return 0 <= a < st.scalars[Sc.ACCOUNT_ROWS] and st.accounts.exists[a] != 0


@kernel
def instrument_exists(st, i):
    return 0 <= i < st.scalars[Sc.INSTRUMENT_ROWS] and st.instruments.exists[i] != 0


@kernel
def position_key(a, i):
    return (np.int64(a) << 32) | i


@kernel
def position_row(st, a, i):
    return tables.get(st.position_index, position_key(a, i), 0, -1)


@kernel
def positions_full(st, a, i):
    return position_row(st, a, i) < 0 and tables.is_full(st.position_index)


@kernel
def ensure_position(st, a, i):
    p = position_row(st, a, i)
    if p >= 0:
        return p
    p = st.scalars[Sc.POSITIONS_USED]
    st.scalars[Sc.POSITIONS_USED] = p + 1
    pos = st.positions
    pos.account[p] = a
    pos.instrument[p] = i
    pos.position_limit[p] = -1
    tables.put(st.position_index, position_key(a, i), 0, p, 0)
    return p


@kernel
def effective_limit(st, a, p):
    own = st.positions.position_limit[p] if p >= 0 else -1
    return own if own >= 0 else st.accounts.position_limit[a]


@kernel
def _held(st, p):
    """(quantity, open_buy, open_sell) of position row ``p``, zeros when it does not exist."""
    if p < 0:
        return 0, 0, 0
    pos = st.positions
    return pos.quantity[p], pos.open_buy[p], pos.open_sell[p]


# ---------------------------------------------------------------- NEW_ORDER
@kernel
def _vet_new_order(st, c):
    """(code, reserve price, stop price) for a new order; see ReferenceModel._vet_new_order."""
    a = c.account
    accounts = st.accounts
    inst = st.instruments
    if accounts.status[a] != AccountStatus.ACTIVE:
        return R.ACCOUNT_SUSPENDED, 0, 0
    i = c.instrument
    if not instrument_exists(st, i):
        return R.UNKNOWN_INSTRUMENT, 0, 0
    side, otype, tif = c.side, c.order_type, c.time_in_force
    qty, price, stop, trail = c.quantity, c.price, c.stop_price, c.trail_ticks
    if side != Side.BUY and side != Side.SELL:
        return R.INVALID_SIDE, 0, 0
    if otype < OrderType.MARKET or otype > OrderType.TRAILING_STOP:
        return R.INVALID_ORDER_TYPE, 0, 0
    if tif < TimeInForce.DAY or tif > TimeInForce.FOK:
        return R.INVALID_TIME_IN_FORCE, 0, 0
    is_stop = otype == OrderType.STOP or otype == OrderType.STOP_LIMIT or \
        otype == OrderType.TRAILING_STOP
    if is_stop and (tif == TimeInForce.IOC or tif == TimeInForce.FOK):
        return R.TIME_IN_FORCE_NOT_ALLOWED, 0, 0
    if not 0 < qty <= MAX_QUANTITY:
        return R.INVALID_QUANTITY, 0, 0
    if qty % inst.lot_size[i] != 0:
        return R.QUANTITY_OFF_LOT, 0, 0
    tick = inst.tick_size[i]
    has_limit = otype == OrderType.LIMIT or otype == OrderType.STOP_LIMIT
    if has_limit:
        if not 0 < price <= MAX_PRICE:
            return R.INVALID_PRICE, 0, 0
        if price % tick != 0:
            return R.PRICE_OFF_TICK, 0, 0
    elif price != 0:
        return R.INVALID_PRICE, 0, 0
    if otype == OrderType.STOP or otype == OrderType.STOP_LIMIT:
        if not 0 < stop <= MAX_PRICE:
            return R.INVALID_STOP_PRICE, 0, 0
        if stop % tick != 0:
            return R.STOP_PRICE_OFF_TICK, 0, 0
    elif stop != 0:
        return R.INVALID_STOP_PRICE, 0, 0
    if otype == OrderType.TRAILING_STOP:
        if not 0 < trail <= MAX_TRAIL_TICKS:
            return R.INVALID_TRAIL, 0, 0
    elif trail != 0:
        return R.INVALID_TRAIL, 0, 0
    if inst.status[i] != InstrumentStatus.TRADING:
        return R.INSTRUMENT_HALTED, 0, 0

    market = market_price(st, i)
    collar = inst.collar_bps[i]
    buy = side == Side.BUY
    if otype == OrderType.TRAILING_STOP:
        stop = market + trail * tick if buy else market - trail * tick
        if not 0 < stop <= MAX_PRICE:
            return R.INVALID_TRAIL, 0, 0
    if otype == OrderType.LIMIT and not (
            collar_low(market, collar) <= price <= collar_high(market, collar)):
        return R.PRICE_OUTSIDE_COLLAR, 0, 0
    if qty > accounts.max_order_quantity[a]:
        return R.MAX_ORDER_QUANTITY_EXCEEDED, 0, 0
    check_price = price if has_limit else (market if otype == OrderType.MARKET else stop)
    if check_price * qty > accounts.max_order_notional[a]:
        return R.MAX_ORDER_NOTIONAL_EXCEEDED, 0, 0
    p = position_row(st, a, i)
    held, open_buy, open_sell = _held(st, p)
    limit = effective_limit(st, a, p)
    if buy:
        if held + open_buy + qty > limit:
            return R.POSITION_LIMIT_EXCEEDED, 0, 0
    else:
        if accounts.account_type[a] == AccountType.CASH and held - open_sell < qty:
            return R.INSUFFICIENT_POSITION, 0, 0
        if held - open_sell - qty < -limit:
            return R.POSITION_LIMIT_EXCEEDED, 0, 0
    reserve_price = 0
    if buy:
        if has_limit:
            reserve_price = price
        elif otype == OrderType.MARKET:
            reserve_price = collar_high(market, collar)
        else:
            reserve_price = collar_high(stop, collar)
        need = buy_reservation(reserve_price, qty, max_fee_bps(st, i))
        if need > accounts.cash[a] - accounts.reserved[a]:
            return R.INSUFFICIENT_FUNDS, 0, 0
    if positions_full(st, a, i):
        return R.POSITION_TABLE_FULL, 0, 0
    if orders_full(st):
        return R.ORDER_TABLE_FULL, 0, 0
    return R.OK, reserve_price, stop


@kernel
def new_order(st, ev, c):
    a = c.account
    cid = c.client_order_id
    if not account_exists(st, a):
        return events.rejected(st, ev, c, R.UNKNOWN_ACCOUNT)
    if cid <= 0:
        return events.rejected(st, ev, c, R.INVALID_CLIENT_ORDER_ID)
    slot = tables.find(st.client_ids, a, cid)
    if slot >= 0:
        outcome = tables.value_at(st.client_ids, slot)
        return events.duplicate(st, ev, a, c.instrument, cid, outcome,
                                live_row(st, outcome, tables.value2_at(st.client_ids, slot)))
    if tables.is_full(st.client_ids):
        return events.rejected(st, ev, c, R.CLIENT_ORDER_ID_TABLE_FULL)
    code, reserve_price, stop = _vet_new_order(st, c)
    if code != R.OK:
        tables.put(st.client_ids, a, cid, -code, -1)
        return events.rejected(st, ev, c, code)

    orders = st.orders
    i = c.instrument
    o = allocate(st)
    order_id = st.scalars[Sc.NEXT_ORDER_ID]
    st.scalars[Sc.NEXT_ORDER_ID] = order_id + 1
    orders.order_id[o] = order_id
    orders.client_order_id[o] = cid
    orders.account[o] = a
    orders.instrument[o] = i
    orders.side[o] = c.side
    orders.order_type[o] = c.order_type
    orders.time_in_force[o] = c.time_in_force
    orders.price[o] = c.price
    orders.stop_price[o] = stop
    orders.trail_ticks[o] = c.trail_ticks
    orders.reserve_price[o] = reserve_price
    orders.leaves[o] = c.quantity
    orders.cum[o] = 0
    orders.phase[o] = OrderPhase.DORMANT
    orders.position[o] = ensure_position(st, a, i)
    tables.put(st.client_ids, a, cid, order_id, o)
    register(st, o)
    reserve(st, o)
    ev = events.accepted(st, ev, o)

    otype = c.order_type
    if otype == OrderType.LIMIT:
        ev = execute(st, ev, o, c.price)
    elif otype == OrderType.MARKET:
        market = market_price(st, i)
        collar = st.instruments.collar_bps[i]
        if c.side == Side.BUY:
            ev = execute(st, ev, o, collar_high(market, collar))
        else:
            ev = execute(st, ev, o, collar_low(market, collar))
    else:
        add_dormant(st, o)
    return run_stops(st, ev, i)


# ---------------------------------------------------------------- CANCEL / MODIFY
@kernel
def _locate(st, c):
    """(code, row) of the live order a cancel or modify names."""
    order_id = c.order_id
    cid = c.client_order_id
    if order_id != 0:
        o = find_live(st, order_id)
        if o < 0:
            if 0 < order_id < st.scalars[Sc.NEXT_ORDER_ID]:
                return R.ORDER_NOT_LIVE, -1
            return R.UNKNOWN_ORDER, -1
        if st.orders.account[o] != c.account:
            return R.NOT_ORDER_OWNER, -1
        return R.OK, o
    if cid != 0:
        slot = tables.find(st.client_ids, c.account, cid)
        outcome = tables.value_at(st.client_ids, slot) if slot >= 0 else 0
        if outcome <= 0:
            return R.UNKNOWN_ORDER, -1
        o = live_row(st, outcome, tables.value2_at(st.client_ids, slot))
        if o < 0:
            return R.ORDER_NOT_LIVE, -1
        return R.OK, o
    return R.INVALID_ORDER_REFERENCE, -1


@kernel
def cancel(st, ev, c):
    if not account_exists(st, c.account):
        return events.rejected(st, ev, c, R.UNKNOWN_ACCOUNT)
    code, o = _locate(st, c)
    if code != R.OK:
        return events.rejected(st, ev, c, code)
    return cancel_order(st, ev, o, R.CANCELLED_BY_CLIENT)


@kernel
def _modified_reserve_price(st, o, new_price, new_stop):
    orders = st.orders
    if orders.side[o] != Side.BUY or orders.order_type[o] == OrderType.TRAILING_STOP:
        return orders.reserve_price[o]
    if orders.order_type[o] == OrderType.STOP:
        return collar_high(new_stop, st.instruments.collar_bps[orders.instrument[o]])
    return new_price


@kernel
def _vet_modify(st, c, o):
    orders = st.orders
    accounts = st.accounts
    inst = st.instruments
    a = c.account
    i = orders.instrument[o]
    new_total, price, stop = c.quantity, c.price, c.stop_price
    if accounts.status[a] != AccountStatus.ACTIVE:
        return R.ACCOUNT_SUSPENDED
    if inst.status[i] != InstrumentStatus.TRADING:
        return R.INSTRUMENT_HALTED
    if not 0 < new_total <= MAX_QUANTITY:
        return R.INVALID_QUANTITY
    if new_total % inst.lot_size[i] != 0:
        return R.QUANTITY_OFF_LOT
    tick = inst.tick_size[i]
    otype = orders.order_type[o]
    resting = orders.phase[o] == OrderPhase.RESTING
    takes_price = resting or otype == OrderType.STOP_LIMIT
    takes_stop = (not resting) and (otype == OrderType.STOP or otype == OrderType.STOP_LIMIT)
    if takes_price:
        if not 0 < price <= MAX_PRICE:
            return R.INVALID_PRICE
        if price % tick != 0:
            return R.PRICE_OFF_TICK
    elif price != 0:
        return R.INVALID_PRICE
    if takes_stop:
        if not 0 < stop <= MAX_PRICE:
            return R.INVALID_STOP_PRICE
        if stop % tick != 0:
            return R.STOP_PRICE_OFF_TICK
    elif stop != 0:
        return R.INVALID_STOP_PRICE
    cum = orders.cum[o]
    leaves = orders.leaves[o]
    if new_total <= cum:
        return R.OK

    new_price = price if takes_price else orders.price[o]
    new_stop = stop if takes_stop else orders.stop_price[o]
    market = market_price(st, i)
    collar = inst.collar_bps[i]
    if resting and new_price != orders.price[o] and not (
            collar_low(market, collar) <= new_price <= collar_high(market, collar)):
        return R.PRICE_OUTSIDE_COLLAR
    old_total = leaves + cum
    if new_total > old_total and new_total > accounts.max_order_quantity[a]:
        return R.MAX_ORDER_QUANTITY_EXCEEDED
    check_old = orders.price[o] if orders.price[o] != 0 else orders.stop_price[o]
    check_new = new_price if new_price != 0 else new_stop
    if check_new * new_total > check_old * old_total and \
            check_new * new_total > accounts.max_order_notional[a]:
        return R.MAX_ORDER_NOTIONAL_EXCEEDED
    p = orders.position[o]
    held, open_buy, open_sell = _held(st, p)
    limit = effective_limit(st, a, p)
    delta = new_total - cum - leaves
    buy = orders.side[o] == Side.BUY
    if delta > 0:
        if buy:
            if held + open_buy + delta > limit:
                return R.POSITION_LIMIT_EXCEEDED
        else:
            if accounts.account_type[a] == AccountType.CASH and held - open_sell < delta:
                return R.INSUFFICIENT_POSITION
            if held - open_sell - delta < -limit:
                return R.POSITION_LIMIT_EXCEEDED
    if buy:
        new_reserve = _modified_reserve_price(st, o, new_price, new_stop)
        need = buy_reservation(new_reserve, new_total - cum, max_fee_bps(st, i)) - \
            required(st, o, leaves)
        if need > accounts.cash[a] - accounts.reserved[a]:
            return R.INSUFFICIENT_FUNDS
    return R.OK


@kernel
def modify(st, ev, c):
    if not account_exists(st, c.account):
        return events.rejected(st, ev, c, R.UNKNOWN_ACCOUNT)
    code, o = _locate(st, c)
    if code == R.OK:
        code = _vet_modify(st, c, o)
    if code != R.OK:
        return events.rejected(st, ev, c, code)
    orders = st.orders
    i = orders.instrument[o]
    otype = orders.order_type[o]
    resting = orders.phase[o] == OrderPhase.RESTING
    new_total, new_price, new_stop = c.quantity, c.price, c.stop_price
    if resting or otype == OrderType.TRAILING_STOP:
        new_stop = orders.stop_price[o]
    if otype == OrderType.STOP or otype == OrderType.TRAILING_STOP:
        new_price = orders.price[o]
    cum = orders.cum[o]
    if new_total <= cum:
        return end_order(st, ev, o, EventKind.ORDER_REPLACED, 0, new_total)

    leaves = orders.leaves[o]
    new_leaves = new_total - cum
    keep = new_price == orders.price[o] and new_stop == orders.stop_price[o] and \
        new_leaves <= leaves
    new_reserve = _modified_reserve_price(st, o, new_price, new_stop)
    a = orders.account[o]
    p = orders.position[o]
    st.accounts.reserved[a] -= required(st, o, leaves)
    delta = new_leaves - leaves
    if orders.side[o] == Side.BUY:
        st.positions.open_buy[p] += delta
    else:
        st.positions.open_sell[p] += delta
    left = -1
    if keep:
        if resting:
            st.levels.quantity[orders.level[o]] += delta
    else:
        left = unqueue(st, o)
    orders.price[o] = new_price
    orders.stop_price[o] = new_stop
    orders.reserve_price[o] = new_reserve
    orders.leaves[o] = new_leaves
    st.accounts.reserved[a] += required(st, o, new_leaves)
    ev = events.replaced(st, ev, o, 1 if keep else 0, new_total, new_leaves)
    if keep:
        if resting:
            lv = orders.level[o]
            ev = events.book_level(st, ev, i, orders.side[o], new_price,
                                   st.levels.quantity[lv], st.levels.count[lv])
    else:
        if left >= 0:
            ev = emit_level_after(st, ev, o, left)
        if resting:
            ev = execute(st, ev, o, new_price)
        else:
            add_dormant(st, o)
    return run_stops(st, ev, i)


# ---------------------------------------------------------------- MASS_CANCEL
@kernel
def mass_cancel(st, ev, c):
    a = c.account
    i = c.instrument
    if not account_exists(st, a):
        return events.rejected(st, ev, c, R.UNKNOWN_ACCOUNT)
    if i != NO_ID and not instrument_exists(st, i):
        return events.rejected(st, ev, c, R.UNKNOWN_INSTRUMENT)
    orders = st.orders
    doomed = []
    o = st.accounts.order_head[a]
    while o >= 0:
        if i == NO_ID or orders.instrument[o] == i:
            doomed.append(o)
        o = orders.account_next[o]
    for o in doomed:
        ev = cancel_order(st, ev, o, R.CANCELLED_BY_MASS_CANCEL)
    return events.mass_cancelled(st, ev, a, i, len(doomed))
