"""Writing event records from the kernel.

Every emitter claims the next record of the batch's event buffer, zeroes it, fills the header
from ``st.ctx`` (the current command's seq and ts) and the body, and returns the buffer. The
buffer doubles when full, so a command may emit any number of events; callers always continue
with the returned buffer (``ev = emit_x(st, ev, ...)``).
"""
import numpy as np

from ..enums import EventKind
from ..records import COMMAND_LAYOUTS, EVENT, EVENT_WORDS
from .intrinsics import as_records
from .jit import kernel
from .state import Ctx, SYMBOL_LEN


def _kinds_with(field: str) -> np.ndarray:
    table = np.zeros(256, np.bool_)
    for kind, layout in COMMAND_LAYOUTS.items():
        table[kind] = any(name == field for name, _, _ in layout)
    return table


# Which command kinds carry which id, so a rejection echoes exactly what the command had.
_HAS_ACCOUNT = _kinds_with("account")
_HAS_INSTRUMENT = _kinds_with("instrument")
_HAS_ORDER_ID = _kinds_with("order_id")
_HAS_CLIENT_ID = _kinds_with("client_order_id")
_SYMBOL_AT = EVENT.fields["symbol"][1]
_CMD_SYMBOL_AT = 28
NO_ID = -1


@kernel
def _claim(st, ev, kind):
    i = st.ctx[Ctx.EVENTS]
    if i == ev.shape[0]:
        bigger = np.zeros(2 * ev.shape[0] + 16, ev.dtype)
        bigger[:i] = ev[:i]
        ev = as_records(bigger)
    words = ev.view(np.int64)
    words[i * EVENT_WORDS:(i + 1) * EVENT_WORDS] = 0
    st.ctx[Ctx.EVENTS] = i + 1
    ev[i].seq = st.ctx[Ctx.SEQ]
    ev[i].ts = st.ctx[Ctx.TS]
    ev[i].kind = kind
    return ev, i


@kernel
def rejected(st, ev, c, code):
    ev, i = _claim(st, ev, EventKind.REJECTED)
    r = ev[i]
    kind = c.kind
    r.command_kind = kind
    r.code = code
    r.account = c.account if _HAS_ACCOUNT[kind] else NO_ID
    r.instrument = c.instrument if _HAS_INSTRUMENT[kind] else NO_ID
    r.order_id = c.order_id if _HAS_ORDER_ID[kind] else 0
    r.client_order_id = c.client_order_id if _HAS_CLIENT_ID[kind] else 0
    return ev


@kernel
def _order_ids(st, r, o):
    orders = st.orders
    r.account = orders.account[o]
    r.instrument = orders.instrument[o]
    r.order_id = orders.order_id[o]
    r.client_order_id = orders.client_order_id[o]


@kernel
def accepted(st, ev, o):
    ev, i = _claim(st, ev, EventKind.ORDER_ACCEPTED)
    r = ev[i]
    orders = st.orders
    _order_ids(st, r, o)
    r.side = orders.side[o]
    r.order_type = orders.order_type[o]
    r.time_in_force = orders.time_in_force[o]
    r.trail_ticks = orders.trail_ticks[o]
    r.price = orders.price[o]
    r.stop_price = orders.stop_price[o]
    r.quantity = orders.leaves[o]
    return ev


@kernel
def trade(st, ev, trade_id, maker, taker, price, quantity, maker_fee, taker_fee):
    ev, i = _claim(st, ev, EventKind.TRADE)
    r = ev[i]
    orders = st.orders
    r.trade_id = trade_id
    r.instrument = orders.instrument[maker]
    r.aggressor_side = orders.side[taker]
    r.price = price
    r.quantity = quantity
    r.maker_order_id = orders.order_id[maker]
    r.taker_order_id = orders.order_id[taker]
    r.maker_account = orders.account[maker]
    r.taker_account = orders.account[taker]
    r.maker_leaves = orders.leaves[maker]
    r.taker_leaves = orders.leaves[taker]
    r.maker_fee = maker_fee
    r.taker_fee = taker_fee
    return ev


@kernel
def book_level(st, ev, instrument, side, price, quantity, count):
    ev, i = _claim(st, ev, EventKind.BOOK_LEVEL)
    r = ev[i]
    r.instrument = instrument
    r.side = side
    r.price = price
    r.level_quantity = quantity
    r.order_count = count
    return ev


@kernel
def order_ended(st, ev, kind, o, code):
    """ORDER_CANCELLED (with ``code``) or ORDER_EXPIRED: the open quantity that ended."""
    ev, i = _claim(st, ev, kind)
    r = ev[i]
    _order_ids(st, r, o)
    if kind == EventKind.ORDER_CANCELLED:
        r.code = code
    r.leaves_quantity = st.orders.leaves[o]
    r.cum_quantity = st.orders.cum[o]
    return ev


@kernel
def replaced(st, ev, o, priority_kept, total, leaves):
    ev, i = _claim(st, ev, EventKind.ORDER_REPLACED)
    r = ev[i]
    _order_ids(st, r, o)
    r.priority_kept = priority_kept
    r.price = st.orders.price[o]
    r.stop_price = st.orders.stop_price[o]
    r.quantity = total
    r.leaves_quantity = leaves
    r.cum_quantity = st.orders.cum[o]
    return ev


@kernel
def stop_triggered(st, ev, o, market):
    ev, i = _claim(st, ev, EventKind.STOP_TRIGGERED)
    r = ev[i]
    _order_ids(st, r, o)
    r.stop_price = st.orders.stop_price[o]
    r.last_price = market
    return ev


@kernel
def duplicate(st, ev, account, instrument, client_order_id, outcome, live_row):
    ev, i = _claim(st, ev, EventKind.DUPLICATE_ORDER)
    r = ev[i]
    r.account = account
    r.instrument = instrument
    r.client_order_id = client_order_id
    if outcome > 0:
        r.order_id = outcome
    else:
        r.code = -outcome
    if live_row >= 0:
        r.live = 1
        r.leaves_quantity = st.orders.leaves[live_row]
        r.cum_quantity = st.orders.cum[live_row]
    return ev


@kernel
def mass_cancelled(st, ev, account, instrument, count):
    ev, i = _claim(st, ev, EventKind.MASS_CANCELLED)
    ev[i].account = account
    ev[i].instrument = instrument
    ev[i].order_count = count
    return ev


@kernel
def day_ended(st, ev, day, count):
    ev, i = _claim(st, ev, EventKind.DAY_ENDED)
    ev[i].day = day
    ev[i].order_count = count
    return ev


@kernel
def instrument_added(st, ev, cmds, k):
    c = cmds[k]
    ev, i = _claim(st, ev, EventKind.INSTRUMENT_ADDED)
    r = ev[i]
    r.instrument = c.instrument
    r.asset_class = c.asset_class
    r.collar_bps = c.collar_bps
    r.maker_fee_bps = c.maker_fee_bps
    r.taker_fee_bps = c.taker_fee_bps
    r.tick_size = c.tick_size
    r.lot_size = c.lot_size
    r.reference_price = c.reference_price
    out = ev.view(np.uint8)
    src = cmds.view(np.uint8)
    base_out = i * ev.itemsize + _SYMBOL_AT
    base_src = k * cmds.itemsize + _CMD_SYMBOL_AT
    for j in range(SYMBOL_LEN):
        out[base_out + j] = src[base_src + j]
    return ev


@kernel
def account_added(st, ev, account, account_type):
    ev, i = _claim(st, ev, EventKind.ACCOUNT_ADDED)
    ev[i].account = account
    ev[i].account_type = account_type
    return ev


@kernel
def cash_moved(st, ev, account, amount, balance):
    ev, i = _claim(st, ev, EventKind.CASH_MOVED)
    ev[i].account = account
    ev[i].amount = amount
    ev[i].cash_balance = balance
    return ev


@kernel
def position_moved(st, ev, account, instrument, amount, quantity, position_quantity):
    ev, i = _claim(st, ev, EventKind.POSITION_MOVED)
    r = ev[i]
    r.account = account
    r.instrument = instrument
    r.amount = amount
    r.quantity = quantity
    r.position_quantity = position_quantity
    return ev


@kernel
def account_limits_set(st, ev, account, max_quantity, max_notional, position_limit):
    ev, i = _claim(st, ev, EventKind.ACCOUNT_LIMITS_SET)
    r = ev[i]
    r.account = account
    r.max_order_quantity = max_quantity
    r.max_order_notional = max_notional
    r.position_limit = position_limit
    return ev


@kernel
def position_limit_set(st, ev, account, instrument, position_limit):
    ev, i = _claim(st, ev, EventKind.POSITION_LIMIT_SET)
    ev[i].account = account
    ev[i].instrument = instrument
    ev[i].position_limit = position_limit
    return ev


@kernel
def account_status_changed(st, ev, account, status):
    ev, i = _claim(st, ev, EventKind.ACCOUNT_STATUS_CHANGED)
    ev[i].account = account
    ev[i].account_status = status
    return ev


@kernel
def instrument_status_changed(st, ev, instrument, status):
    ev, i = _claim(st, ev, EventKind.INSTRUMENT_STATUS_CHANGED)
    ev[i].instrument = instrument
    ev[i].instrument_status = status
    return ev

