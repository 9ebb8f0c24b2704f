"""Dormant stop orders and the trigger chain (mirrors ``ReferenceModel._run_stops``).

Repeat: find the oldest dormant stop of the instrument whose condition holds at the market
price (buy: market >= stop; sell: market <= stop); trigger it and execute it completely; until
none holds. STOP and TRAILING_STOP execute as market orders within the collar (a buy never
above its reserve price); STOP_LIMIT executes as a limit order if its limit is inside the
collar, otherwise it is cancelled.
"""
from ..codes import ResultCode
from ..enums import OrderPhase, OrderType, Side
from ..integers import collar_high, collar_low
from . import events
from .jit import kernel
from .matching import execute
from .orders import cancel_order, market_price, stop_append, stop_unlink, take_priority


@kernel
def add_dormant(st, o):
    st.orders.phase[o] = OrderPhase.DORMANT
    st.orders.priority[o] = take_priority(st)
    stop_append(st, o)


@kernel
def _first_due(st, instrument, market):
    orders = st.orders
    o = st.instruments.stop_head[instrument]
    while o >= 0:
        stop = orders.stop_price[o]
        if (market >= stop) if orders.side[o] == Side.BUY else (market <= stop):
            return o
        o = orders.next[o]
    return -1


@kernel
def run_stops(st, ev, instrument):
    orders = st.orders
    collar = st.instruments.collar_bps[instrument]
    while True:
        market = market_price(st, instrument)
        o = _first_due(st, instrument, market)
        if o < 0:
            return ev
        stop_unlink(st, o)
        ev = events.stop_triggered(st, ev, o, market)
        if orders.order_type[o] == OrderType.STOP_LIMIT:
            price = orders.price[o]
            if collar_low(market, collar) <= price <= collar_high(market, collar):
                ev = execute(st, ev, o, price)
            else:
                ev = cancel_order(st, ev, o, ResultCode.COLLAR_AT_TRIGGER)
        elif orders.side[o] == Side.BUY:
            ev = execute(st, ev, o, min(orders.reserve_price[o], collar_high(market, collar)))
        else:
            ev = execute(st, ev, o, collar_low(market, collar))
