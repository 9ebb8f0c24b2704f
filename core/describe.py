"""One-line, human-readable descriptions of events and books (tests, audit, logs).

Orders are written ``#<order id>``; prices and quantities are the raw integers of the records.
"""
from __future__ import annotations

import numpy as np

from .canonical import CanonicalState
from .codes import ResultCode
from .enums import (AccountStatus, AccountType, CommandKind, EventKind, InstrumentStatus,
                    OrderPhase, OrderType, Side, TimeInForce)


def _name(enum, value: int) -> str:
    try:
        return enum(value).name
    except ValueError:
        return str(value)


def describe_event(e: np.void) -> str:
    kind = int(e["kind"])
    k = EventKind
    if kind == k.ORDER_ACCEPTED:
        otype = _name(OrderType, int(e["order_type"]))
        text = (f"ACCEPTED #{e['order_id']} {_name(Side, int(e['side']))} {otype} "
                f"{_name(TimeInForce, int(e['time_in_force']))} {e['quantity']}")
        if e["price"]:
            text += f" @ {e['price']}"
        if e["stop_price"]:
            text += f" stop {e['stop_price']}"
        if e["trail_ticks"]:
            text += f" trail {e['trail_ticks']}"
        return text
    if kind == k.REJECTED:
        return (f"REJECTED {_name(CommandKind, int(e['command_kind']))} "
                f"{_name(ResultCode, int(e['code']))}")
    if kind == k.TRADE:
        text = (f"TRADE #{e['maker_order_id']} x #{e['taker_order_id']} "
                f"{e['quantity']} @ {e['price']}")
        if e["maker_fee"] or e["taker_fee"]:
            text += f" fees {e['maker_fee']}/{e['taker_fee']}"
        return text
    if kind == k.BOOK_LEVEL:
        text = f"LEVEL {_name(Side, int(e['side']))} {e['level_quantity']} @ {e['price']}"
        return text + (f" ({e['order_count']})" if e["order_count"] != 1 else "")
    if kind == k.ORDER_CANCELLED:
        return f"CANCELLED #{e['order_id']} {_name(ResultCode, int(e['code']))} " \
               f"{e['leaves_quantity']}"
    if kind == k.ORDER_REPLACED:
        text = f"REPLACED #{e['order_id']} {e['quantity']}"
        if e["price"]:
            text += f" @ {e['price']}"
        if e["stop_price"]:
            text += f" stop {e['stop_price']}"
        return text + (" keeps priority" if e["priority_kept"] else "")
    if kind == k.ORDER_EXPIRED:
        return f"EXPIRED #{e['order_id']} {e['leaves_quantity']}"
    if kind == k.STOP_TRIGGERED:
        return f"TRIGGERED #{e['order_id']} stop {e['stop_price']} at {e['last_price']}"
    if kind == k.DUPLICATE_ORDER:
        code = int(e["code"])
        outcome = f"#{e['order_id']}" if e["order_id"] else _name(ResultCode, code)
        return f"DUPLICATE {outcome}" + (f" live {e['leaves_quantity']}" if e["live"] else "")
    if kind == k.MASS_CANCELLED:
        return f"MASS_CANCELLED {e['order_count']}"
    if kind == k.DAY_ENDED:
        return f"DAY_ENDED {e['day']} expired {e['order_count']}"
    if kind == k.CASH_MOVED:
        return f"CASH account {e['account']} {e['amount']:+d} = {e['cash_balance']}"
    if kind == k.POSITION_MOVED:
        return (f"UNITS account {e['account']} instrument {e['instrument']} "
                f"{e['quantity']:+d} = {e['position_quantity']}")
    if kind == k.INSTRUMENT_ADDED:
        return f"INSTRUMENT {e['instrument']} {e['symbol'].decode()}"
    if kind == k.ACCOUNT_ADDED:
        return f"ACCOUNT {e['account']} {_name(AccountType, int(e['account_type']))}"
    if kind == k.ACCOUNT_LIMITS_SET:
        return f"LIMITS account {e['account']}"
    if kind == k.POSITION_LIMIT_SET:
        return f"POSITION_LIMIT account {e['account']} instrument {e['instrument']} " \
               f"{e['position_limit']}"
    if kind == k.INSTRUMENT_STATUS_CHANGED:
        return f"INSTRUMENT {e['instrument']} " \
               f"{_name(InstrumentStatus, int(e['instrument_status']))}"
    if kind == k.ACCOUNT_STATUS_CHANGED:
        return f"ACCOUNT {e['account']} {_name(AccountStatus, int(e['account_status']))}"
    return f"EVENT {kind}"


def describe_book(state: CanonicalState, instrument: int) -> list[str]:
    """The instrument's resting orders as a price ladder (asks high to low, then bids high to
    low; queue order within a price), followed by its dormant stops in priority order."""
    orders = state.orders[state.orders["instrument"] == instrument]
    resting = orders[orders["phase"] == OrderPhase.RESTING]
    lines = []
    for side in (Side.SELL, Side.BUY):
        mine = resting[resting["side"] == side]
        mine = mine[np.lexsort((mine["priority"], -mine["price"]))]
        for o in mine:
            lines.append(f"{side.name} #{o['order_id']} {o['leaves']} @ {o['price']}")
    dormant = orders[orders["phase"] == OrderPhase.DORMANT]
    for o in dormant[np.argsort(dormant["priority"])]:
        otype = _name(OrderType, int(o["order_type"]))
        text = f"{otype} {_name(Side, int(o['side']))} #{o['order_id']} {o['leaves']} " \
               f"stop {o['stop_price']}"
        lines.append(text + (f" @ {o['price']}" if o["price"] else ""))
    return lines


def top_of_book(state: CanonicalState, instrument: int) -> dict:
    """Best bid and ask (price and total quantity; 0 when a side is empty) of one instrument."""
    orders = state.orders[(state.orders["instrument"] == instrument) &
                          (state.orders["phase"] == OrderPhase.RESTING)]
    out = {}
    for side, name, best in ((Side.BUY, "bid", np.max), (Side.SELL, "ask", np.min)):
        mine = orders[orders["side"] == side]
        price = int(best(mine["price"])) if len(mine) else 0
        out[name] = price
        out[f"{name}_quantity"] = int(mine["leaves"][mine["price"] == price].sum()) if price else 0
    return out
