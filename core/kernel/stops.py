"""Dormant stop orders and the trigger chain (mirrors ``ReferenceModel._run_stops``).

Repeat: find the oldest dormant stop of the instrument whose condition holds at the market
price (buy: market >= stop; sell: market <= stop); trigger it and execute it completely; until
none holds. STOP and TRAILING_STOP execute as market orders within the collar (a buy never
above its reserve price); STOP_LIMIT executes as a limit order if its limit is inside the
collar, otherwise it is cancelled.

After every command no dormant stop is due, so a scan can only find one after a trade (the
market moved) or after a stop joined the list; ``stops_unchecked`` says whether either
happened, and the scan is skipped otherwise. The outcome is the model's, which always scans.
"""
from ..codes import ResultCode
from ..enums import OrderPhase, OrderType, Side
from ..integers import collar_high, collar_low
from . import events
from .jit import kernel
from .matching import execute
from .orders import cancel_order, market_price, stop_append, stop_unlink


@kernel
def add_dormant(st, o):
    st.orders.phase[o] = OrderPhase.DORMANT
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
    inst = st.instruments
    collar = inst.collar_bps[instrument]
    while inst.stops_unchecked[instrument]:
        inst.stops_unchecked[instrument] = 0
        market = market_price(st, instrument)
        o = _first_due(st, instrument, market)
        if o < 0:
            return ev
        inst.stops_unchecked[instrument] = 1    # executing it may make another one due
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
    return ev
