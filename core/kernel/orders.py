"""Live orders in the kernel: their rows, lists, reservations, and how an order ends.

An order is *registered* when accepted (order index, its account's list) and *closed* when it
has ended (filled, cancelled, expired); ``end_order`` is the one path for ending an order that
still has open quantity: out of its queue, reservation released, event, book level, closed.
"""
from ..enums import EventKind, OrderType, Side
from ..integers import buy_reservation
from . import events, tables
from .book import close_level, dequeue
from .jit import kernel
from .state import IN_STOP_LIST, NOT_QUEUED, Sc


@kernel
def orders_full(st):
    return st.scalars[Sc.ORDER_FREE] < 0


@kernel
def market_price(st, instrument):
    """The last trade price, or the configured reference price before the first trade."""
    last = st.instruments.last_price[instrument]
    return last if last > 0 else st.instruments.reference_price[instrument]


@kernel
def max_fee_bps(st, instrument):
    return max(st.instruments.maker_fee_bps[instrument], st.instruments.taker_fee_bps[instrument])


@kernel
def required(st, o, leaves):
    """Cash order ``o`` needs reserved while ``leaves`` are open (0 for sells)."""
    if st.orders.side[o] != Side.BUY:
        return 0
    return buy_reservation(st.orders.reserve_price[o], leaves,
                           max_fee_bps(st, st.orders.instrument[o]))


@kernel
def never_rests(st, o):
    t = st.orders.order_type[o]
    return t == OrderType.MARKET or t == OrderType.STOP or t == OrderType.TRAILING_STOP


@kernel
def allocate(st):
    """Pop a free order row (the caller checked ``orders_full``)."""
    o = st.scalars[Sc.ORDER_FREE]
    st.scalars[Sc.ORDER_FREE] = st.orders.next[o]
    st.orders.next[o] = -1
    st.orders.prev[o] = -1
    st.orders.level[o] = NOT_QUEUED
    return o


@kernel
def register(st, o):
    """Make a filled-in row a live order: index it and append it to its account's list."""
    orders = st.orders
    accounts = st.accounts
    a = orders.account[o]
    tables.put(st.order_index, orders.order_id[o], 0, o, 0)
    tail = accounts.order_tail[a]
    orders.account_prev[o] = tail
    orders.account_next[o] = -1
    if tail >= 0:
        orders.account_next[tail] = o
    else:
        accounts.order_head[a] = o
    accounts.order_tail[a] = o
    st.scalars[Sc.LIVE_ORDERS] += 1


@kernel
def close(st, o):
    """Forget an order that has ended and is in no queue; its row becomes free."""
    orders = st.orders
    accounts = st.accounts
    a = orders.account[o]
    tables.remove(st.order_index, orders.order_id[o], 0)
    prev = orders.account_prev[o]
    nxt = orders.account_next[o]
    if prev >= 0:
        orders.account_next[prev] = nxt
    else:
        accounts.order_head[a] = nxt
    if nxt >= 0:
        orders.account_prev[nxt] = prev
    else:
        accounts.order_tail[a] = prev
    orders.order_id[o] = 0
    orders.level[o] = NOT_QUEUED
    orders.prev[o] = -1
    orders.next[o] = st.scalars[Sc.ORDER_FREE]
    st.scalars[Sc.ORDER_FREE] = o
    st.scalars[Sc.LIVE_ORDERS] -= 1


@kernel
def find_live(st, order_id):
    """The row of the live order with this id, or -1."""
    return tables.get(st.order_index, order_id, 0, -1)


@kernel
def live_row(st, order_id, row):
    """``row`` if the live order ``order_id`` is still there (rows are reused), else -1."""
    return row if order_id > 0 and row >= 0 and st.orders.order_id[row] == order_id else -1


@kernel
def reserve(st, o):
    """Reserve cash (buys) and open quantity for a newly accepted order's leaves."""
    orders = st.orders
    p = orders.position[o]
    st.accounts.reserved[orders.account[o]] += required(st, o, orders.leaves[o])
    if orders.side[o] == Side.BUY:
        st.positions.open_buy[p] += orders.leaves[o]
    else:
        st.positions.open_sell[p] += orders.leaves[o]


@kernel
def release(st, o):
    """Give back what the order's open quantity had reserved."""
    orders = st.orders
    p = orders.position[o]
    st.accounts.reserved[orders.account[o]] -= required(st, o, orders.leaves[o])
    if orders.side[o] == Side.BUY:
        st.positions.open_buy[p] -= orders.leaves[o]
    else:
        st.positions.open_sell[p] -= orders.leaves[o]


@kernel
def stop_append(st, o):
    """Append ``o`` to the back of its instrument's stop list."""
    orders = st.orders
    inst = st.instruments
    i = orders.instrument[o]
    tail = inst.stop_tail[i]
    orders.prev[o] = tail
    orders.next[o] = -1
    if tail >= 0:
        orders.next[tail] = o
    else:
        inst.stop_head[i] = o
    inst.stop_tail[i] = o
    inst.stops_unchecked[i] = 1
    orders.level[o] = IN_STOP_LIST
    if orders.order_type[o] == OrderType.TRAILING_STOP:
        inst.trailing_stops[i] += 1


@kernel
def stop_unlink(st, o):
    orders = st.orders
    inst = st.instruments
    i = orders.instrument[o]
    prev = orders.prev[o]
    nxt = orders.next[o]
    if prev >= 0:
        orders.next[prev] = nxt
    else:
        inst.stop_head[i] = nxt
    if nxt >= 0:
        orders.prev[nxt] = prev
    else:
        inst.stop_tail[i] = prev
    orders.level[o] = NOT_QUEUED
    orders.prev[o] = -1
    orders.next[o] = -1
    if orders.order_type[o] == OrderType.TRAILING_STOP:
        inst.trailing_stops[i] -= 1


@kernel
def unqueue(st, o):
    """Take ``o`` out of its level or stop list. Returns the level row it left, or -1.

    A level left empty is closed; its row is returned anyway (its price is still readable)
    so the caller can report it."""
    where = st.orders.level[o]
    if where >= 0:
        lv = dequeue(st, o)
        if st.levels.count[lv] == 0:
            close_level(st, lv)
        return lv
    if where == IN_STOP_LIST:
        stop_unlink(st, o)
    return -1


@kernel
def emit_level_after(st, ev, o, lv):
    """The BOOK_LEVEL of level ``lv`` that order ``o`` just left (empty if it was closed)."""
    orders = st.orders
    levels = st.levels
    return events.book_level(st, ev, orders.instrument[o], orders.side[o], levels.price[lv],
                             levels.quantity[lv], levels.count[lv])


@kernel
def end_order(st, ev, o, kind, code, new_total):
    """End a live order that still has open quantity.

    ``kind`` is ORDER_CANCELLED (with ``code``), ORDER_EXPIRED, or ORDER_REPLACED (a modify
    to ``new_total`` at or below what has filled). Emits that event, then the BOOK_LEVEL of
    the level the order left, if it was resting."""
    lv = unqueue(st, o)
    release(st, o)
    if kind == EventKind.ORDER_REPLACED:
        ev = events.replaced(st, ev, o, 0, new_total, 0)
    else:
        ev = events.order_ended(st, ev, kind, o, code)
    if lv >= 0:
        ev = emit_level_after(st, ev, o, lv)
    close(st, o)
    return ev


@kernel
def cancel_order(st, ev, o, reason):
    return end_order(st, ev, o, EventKind.ORDER_CANCELLED, reason, 0)

