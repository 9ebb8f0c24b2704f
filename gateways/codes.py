"""Rejection codes a client sees, with their names and texts.

One number space for clients: codes below 900 are the engine's ``core.codes.ResultCode`` (the
gateway uses the very same code when its check is the one the engine would make, e.g.
``PRICE_OFF_TICK``), codes 900..999 are the gateway's own (``GatewayCode``): the message, the
session or the link to the engine was refused before anything reached the engine.

``describe(code)`` gives ``(reason, text)``: ``reason`` is the code's upper-case name, stable and
meant for programs; ``text`` is a sentence for people and may be reworded.
"""
from __future__ import annotations

from enum import IntEnum

from core.codes import ResultCode as R


class GatewayCode(IntEnum):
    """Refusals decided by the gateway; nothing of the request reached the engine."""
    MALFORMED = 900                #: not one msgpack map in one frame
    UNSUPPORTED_VERSION = 901
    UNKNOWN_TYPE = 902
    MISSING_FIELD = 903
    WRONG_TYPE = 904
    UNKNOWN_FIELD = 905
    OUT_OF_RANGE = 906             #: a protocol field (req, heartbeat_ms, a string's length)
    TOO_LARGE = 907                #: a batch frame with too many requests
    NOT_LOGGED_ON = 910
    LOGON_FAILED = 911
    ALREADY_LOGGED_ON = 912
    ACCOUNT_NOT_AUTHORISED = 913
    RATE_LIMITED = 914
    ENGINE_UNAVAILABLE = 920       #: no primary reachable, or no reference data yet
    ENGINE_BUSY = 921              #: too many requests waiting for the engine
    ENGINE_REFUSED = 922           #: the engine refused the request as malformed
    INTERNAL_ERROR = 999           #: a bug in the gateway; the request was not forwarded


GATEWAY_TEXTS: dict[GatewayCode, str] = {
    GatewayCode.MALFORMED: "the frame is not a single msgpack map",
    GatewayCode.UNSUPPORTED_VERSION: "unsupported protocol version; this gateway speaks v1",
    GatewayCode.UNKNOWN_TYPE: "unknown message type",
    GatewayCode.MISSING_FIELD: "a required field is missing",
    GatewayCode.WRONG_TYPE: "a field has the wrong type",
    GatewayCode.UNKNOWN_FIELD: "the message has a field its type does not define",
    GatewayCode.OUT_OF_RANGE: "a protocol field is out of range",
    GatewayCode.TOO_LARGE: "the batch holds too many requests",
    GatewayCode.NOT_LOGGED_ON: "log on first",
    GatewayCode.LOGON_FAILED: "unknown or revoked API key",
    GatewayCode.ALREADY_LOGGED_ON: "this connection is already logged on",
    GatewayCode.ACCOUNT_NOT_AUTHORISED: "this session's API key may not trade that account",
    GatewayCode.RATE_LIMITED: "request rate limit exceeded; the request was not forwarded",
    GatewayCode.ENGINE_UNAVAILABLE: "the engine is not reachable now; the request was not "
                                    "forwarded",
    GatewayCode.ENGINE_BUSY: "too many requests are waiting for the engine; the request was "
                             "not forwarded",
    GatewayCode.ENGINE_REFUSED: "the engine refused the request as malformed",
    GatewayCode.INTERNAL_ERROR: "internal gateway error; the request was not forwarded",
}

ENGINE_TEXTS: dict[R, str] = {
    R.OK: "ok",
    R.UNKNOWN_COMMAND: "unknown command",
    R.UNKNOWN_ACCOUNT: "unknown account",
    R.UNKNOWN_INSTRUMENT: "unknown instrument (symbol)",
    R.UNKNOWN_ORDER: "no such order",
    R.ORDER_NOT_LIVE: "the order is already filled, cancelled or expired",
    R.NOT_ORDER_OWNER: "the order belongs to another account",
    R.INVALID_CLIENT_ORDER_ID: "client_order_id must be an integer in 1..2**63-1",
    R.INVALID_SIDE: "side must be 'buy' or 'sell'",
    R.INVALID_ORDER_TYPE: "order_type must be market, limit, stop, stop_limit or trailing_stop",
    R.INVALID_TIME_IN_FORCE: "time_in_force must be day, gtc, ioc or fok",
    R.TIME_IN_FORCE_NOT_ALLOWED: "stop orders cannot be ioc or fok",
    R.INVALID_QUANTITY: "quantity must be an integer in 1..2**30-1",
    R.QUANTITY_OFF_LOT: "quantity is not a multiple of the instrument's lot size",
    R.INVALID_PRICE: "price must be an integer in 1..2**32-1 for limit and stop_limit orders, "
                     "and absent (or 0) otherwise",
    R.PRICE_OFF_TICK: "price is not a multiple of the instrument's tick size",
    R.INVALID_STOP_PRICE: "stop_price must be an integer in 1..2**32-1 for stop and stop_limit "
                          "orders, and absent (or 0) otherwise",
    R.STOP_PRICE_OFF_TICK: "stop_price is not a multiple of the instrument's tick size",
    R.INVALID_TRAIL: "trail_ticks must be in 1..2**20 for trailing_stop orders (and put the "
                     "stop above 0), and absent (or 0) otherwise",
    R.INVALID_ORDER_REFERENCE: "name the order by exactly one of order_id and client_order_id",
    R.INVALID_AMOUNT: "invalid amount",
    R.INVALID_LIMIT: "invalid limit",
    R.INVALID_ID: "invalid id",
    R.ACCOUNT_SUSPENDED: "the account is suspended",
    R.INSTRUMENT_HALTED: "the instrument is halted",
    R.PRICE_OUTSIDE_COLLAR: "price is outside the instrument's price collar",
    R.MAX_ORDER_QUANTITY_EXCEEDED: "quantity is above the account's maximum order quantity",
    R.MAX_ORDER_NOTIONAL_EXCEEDED: "price x quantity is above the account's maximum order "
                                   "notional",
    R.POSITION_LIMIT_EXCEEDED: "the order could take the position past its limit",
    R.INSUFFICIENT_POSITION: "a cash account may only sell what it holds",
    R.INSUFFICIENT_FUNDS: "not enough available cash for the order and its worst-case fee",
    R.CANCELLED_BY_CLIENT: "cancelled on request (or by cancel-on-disconnect)",
    R.CANCELLED_BY_MASS_CANCEL: "cancelled by a mass cancel",
    R.IOC_REMAINDER: "the unfilled rest of an immediate-or-cancel order",
    R.FOK_NOT_FILLABLE: "a fill-or-kill order that could not fill completely; nothing traded",
    R.MARKET_REMAINDER: "a market order found no more liquidity inside the price collar",
    R.COLLAR_AT_TRIGGER: "a triggered stop-limit order whose limit is outside the price collar",
    R.BOOK_FULL_REMAINDER: "no free price level to rest the remainder on",
    R.INSTRUMENT_EXISTS: "the instrument exists",
    R.ACCOUNT_EXISTS: "the account exists",
    R.INVALID_SYMBOL: "invalid symbol",
    R.DUPLICATE_SYMBOL: "duplicate symbol",
    R.INVALID_ASSET_CLASS: "invalid asset class",
    R.INVALID_TICK_SIZE: "invalid tick size",
    R.INVALID_LOT_SIZE: "invalid lot size",
    R.INVALID_REFERENCE_PRICE: "invalid reference price",
    R.INVALID_COLLAR: "invalid collar",
    R.INVALID_FEE: "invalid fee",
    R.INVALID_ACCOUNT_TYPE: "invalid account type",
    R.INVALID_STATUS: "invalid status",
    R.CASH_LIMIT_EXCEEDED: "the venue's cash limit would be exceeded",
    R.POSITION_IS_SHORT: "securities cannot be deposited onto a short position",
    R.INSTRUMENT_TABLE_FULL: "the engine's instrument table is full",
    R.ACCOUNT_TABLE_FULL: "the engine's account table is full",
    R.ORDER_TABLE_FULL: "the engine's order table is full",
    R.POSITION_TABLE_FULL: "the engine's position table is full",
    R.CLIENT_ORDER_ID_TABLE_FULL: "the engine's client order id table is full for today",
}


def describe(code: int) -> tuple[str, str]:
    """(reason, text) of any code a client can see; an unknown number gets a generic pair."""
    if code >= 900:
        try:
            known = GatewayCode(code)
        except ValueError:
            return f"CODE_{code}", f"gateway code {code}"
        return known.name, GATEWAY_TEXTS[known]
    try:
        engine = R(code)
    except ValueError:
        return f"CODE_{code}", f"engine code {code}"
    return engine.name, ENGINE_TEXTS[engine]
