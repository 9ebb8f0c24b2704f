"""One trade in the kernel: the event, fees, cash, positions, last price and trailing stops.

Mirrors ``ReferenceModel._trade`` / ``_settle`` / ``_apply_fill`` / ``_trail``: maker settles
first, then taker; positions use average cost with realized P&L rounded down.
"""
from ..enums import OrderType, Side
from ..integers import fee_for, mul_div
from . import events
from .jit import kernel
from .orders import required
from .state import Sc


@kernel
def apply_fill(positions, p, signed_qty, price):
    """Average-cost position accounting for a fill of ``signed_qty`` (buy > 0) at ``price``."""
    held = positions.quantity[p]
    if held == 0 or (held > 0) == (signed_qty > 0):
        positions.quantity[p] = held + signed_qty
        positions.cost_basis[p] += signed_qty * price
        return
    closing = min(abs(signed_qty), abs(held))
    removed = mul_div(abs(positions.cost_basis[p]), closing, abs(held))
    if held > 0:
        positions.realized_pnl[p] += price * closing - removed
        positions.cost_basis[p] -= removed
        positions.quantity[p] = held - closing
    else:
        positions.realized_pnl[p] += removed - price * closing
        positions.cost_basis[p] += removed
        positions.quantity[p] = held + closing
    opening = abs(signed_qty) - closing
    if opening > 0:
        sign = 1 if signed_qty > 0 else -1
        positions.quantity[p] += sign * opening
        positions.cost_basis[p] += sign * opening * price


@kernel
def _settle(st, o, price, qty, fee):
    """Cash and units for one side of a fill; ``leaves`` has already been reduced."""
    orders = st.orders
    accounts = st.accounts
    positions = st.positions
    a = orders.account[o]
    p = orders.position[o]
    if orders.side[o] == Side.BUY:
        leaves = orders.leaves[o]
        accounts.reserved[a] -= required(st, o, leaves + qty) - required(st, o, leaves)
        accounts.cash[a] -= price * qty + fee
        positions.open_buy[p] -= qty
        apply_fill(positions, p, qty, price)
    else:
        accounts.cash[a] += price * qty - fee
        positions.open_sell[p] -= qty
        apply_fill(positions, p, -qty, price)
    positions.fees_paid[p] += fee


@kernel
def _trail(st, instrument, price):
    """Move every dormant trailing stop of ``instrument`` after a print at ``price``."""
    orders = st.orders
    distance_per_tick = st.instruments.tick_size[instrument]
    o = st.instruments.stop_head[instrument]
    while o >= 0:
        if orders.order_type[o] == OrderType.TRAILING_STOP:
            distance = orders.trail_ticks[o] * distance_per_tick
            if orders.side[o] == Side.BUY:
                orders.stop_price[o] = min(orders.stop_price[o], price + distance)
            else:
                orders.stop_price[o] = max(orders.stop_price[o], price - distance)
        o = orders.next[o]


@kernel
def trade(st, ev, maker, taker, price, qty):
    """Fill ``qty`` between a resting maker and the aggressing taker at the maker's price."""
    orders = st.orders
    inst = st.instruments
    i = orders.instrument[maker]
    notional = price * qty
    maker_fee = fee_for(notional, inst.maker_fee_bps[i])
    taker_fee = fee_for(notional, inst.taker_fee_bps[i])
    orders.leaves[maker] -= qty
    orders.cum[maker] += qty
    orders.leaves[taker] -= qty
    orders.cum[taker] += qty
    st.levels.quantity[orders.level[maker]] -= qty
    trade_id = st.scalars[Sc.NEXT_TRADE_ID]
    st.scalars[Sc.NEXT_TRADE_ID] = trade_id + 1
    ev = events.trade(st, ev, trade_id, maker, taker, price, qty, maker_fee, taker_fee)
    _settle(st, maker, price, qty, maker_fee)
    _settle(st, taker, price, qty, taker_fee)
    st.scalars[Sc.FEE_INCOME] += maker_fee + taker_fee
    inst.last_price[i] = price
    inst.stops_unchecked[i] = 1
    if inst.trailing_stops[i] > 0:
        _trail(st, i, price)
    return ev
