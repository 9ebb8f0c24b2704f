"""Price-time matching in the kernel (mirrors ``ReferenceModel._execute``).

``execute`` takes a live order that is in no queue and trades it as the aggressor against the
opposite side, best level first and FIFO within a level, at each maker's price, while the level
price does not cross ``limit``. Then the remainder rests (LIMIT, STOP_LIMIT with DAY/GTC), or is
cancelled: IOC/FOK remainder, or any remainder of an order that never rests.
"""
from ..codes import ResultCode
from ..enums import OrderPhase, Side, TimeInForce
from . import events
from .book import best_level, close_level, dequeue, enqueue, find_level, level_at_depth, \
    levels_full, open_level
from .jit import kernel
from .orders import cancel_order, close, never_rests
from .settlement import trade


@kernel
def _crosses(side, limit, level_price):
    return level_price <= limit if side == Side.BUY else level_price >= limit


@kernel
def fillable(st, o, limit):
    """Could order ``o`` fill completely now, trading no worse than ``limit``?"""
    orders = st.orders
    side = orders.side[o]
    opposite = Side.SELL if side == Side.BUY else Side.BUY
    want = orders.leaves[o]
    have = 0
    depth = 0
    while True:
        lv = level_at_depth(st, orders.instrument[o], opposite, depth)
        if lv < 0 or not _crosses(side, limit, st.levels.price[lv]):
            return False
        have += st.levels.quantity[lv]
        if have >= want:
            return True
        depth += 1


@kernel
def rest(st, ev, o):
    """Put the remainder of ``o`` at the back of its price level (cancel it if no level
    can be opened)."""
    orders = st.orders
    i = orders.instrument[o]
    side = orders.side[o]
    price = orders.price[o]
    lv = find_level(st, i, side, price)
    if lv < 0:
        if levels_full(st):
            return cancel_order(st, ev, o, ResultCode.BOOK_FULL_REMAINDER)
        lv = open_level(st, i, side, price)
    orders.phase[o] = OrderPhase.RESTING
    enqueue(st, lv, o)
    levels = st.levels
    return events.book_level(st, ev, i, side, price, levels.quantity[lv], levels.count[lv])


@kernel
def execute(st, ev, o, limit):
    orders = st.orders
    levels = st.levels
    i = orders.instrument[o]
    side = orders.side[o]
    opposite = Side.SELL if side == Side.BUY else Side.BUY
    if orders.time_in_force[o] == TimeInForce.FOK and not fillable(st, o, limit):
        return cancel_order(st, ev, o, ResultCode.FOK_NOT_FILLABLE)
    while orders.leaves[o] > 0:
        lv = best_level(st, i, opposite)
        if lv < 0:
            break
        price = levels.price[lv]
        if not _crosses(side, limit, price):
            break
        maker = levels.head[lv]
        while maker >= 0 and orders.leaves[o] > 0:
            following = orders.next[maker]
            ev = trade(st, ev, maker, o, price, min(orders.leaves[o], orders.leaves[maker]))
            if orders.leaves[maker] == 0:
                dequeue(st, maker)
                close(st, maker)
            maker = following
        ev = events.book_level(st, ev, i, opposite, price, levels.quantity[lv], levels.count[lv])
        if levels.count[lv] == 0:
            close_level(st, lv)
    if orders.leaves[o] == 0:
        close(st, o)
    elif never_rests(st, o):
        ev = cancel_order(st, ev, o, ResultCode.MARKET_REMAINDER)
    elif orders.time_in_force[o] == TimeInForce.IOC or orders.time_in_force[o] == TimeInForce.FOK:
        ev = cancel_order(st, ev, o, ResultCode.IOC_REMAINDER)
    else:
        ev = rest(st, ev, o)
    return ev
