"""Result codes: every business outcome of the BLP that is not plain success.

One ``IntEnum`` for the whole engine (as exchange-core's ``CommandResultCode``). The hundreds
digit names the stage that decided the outcome, so a dashboard can group them without a table:

====  ==========  ============================================================================
0     success
1xx   validation  the command is malformed or names something that does not exist
2xx   risk        well formed, but pre-trade risk or the market's state refuses it
3xx   matching    outcomes of matching: why an accepted order ended without (fully) trading
4xx   admin       reference data and cash administration
5xx   capacity    a configured table is full; the command is refused, the engine keeps running
====  ==========  ============================================================================

Codes are stored in events and in the journal-derived state: never renumber, only add.
"""
from enum import IntEnum


class ResultCode(IntEnum):
    OK = 0

    # 1xx validation
    UNKNOWN_COMMAND = 100
    UNKNOWN_ACCOUNT = 101
    UNKNOWN_INSTRUMENT = 102
    UNKNOWN_ORDER = 103
    ORDER_NOT_LIVE = 104           #: the order existed but is filled, cancelled or expired
    NOT_ORDER_OWNER = 105          #: the order belongs to another account
    INVALID_CLIENT_ORDER_ID = 106  #: client order ids are positive integers
    INVALID_SIDE = 107
    INVALID_ORDER_TYPE = 108
    INVALID_TIME_IN_FORCE = 109
    TIME_IN_FORCE_NOT_ALLOWED = 110  #: e.g. IOC/FOK on a stop order, which must wait dormant
    INVALID_QUANTITY = 111         #: zero, negative or above MAX_QUANTITY
    QUANTITY_OFF_LOT = 112
    INVALID_PRICE = 113            #: zero, negative, above MAX_PRICE, or given where none belongs
    PRICE_OFF_TICK = 114
    INVALID_STOP_PRICE = 115
    STOP_PRICE_OFF_TICK = 116
    INVALID_TRAIL = 117            #: trail_ticks out of range, or a trail that puts the stop at <= 0
    INVALID_ORDER_REFERENCE = 118  #: a cancel/modify that names neither an order id nor a client id
    INVALID_AMOUNT = 119
    INVALID_LIMIT = 120
    INVALID_ID = 121               #: a negative instrument or account id in an ADD command

    # 2xx risk and market state
    ACCOUNT_SUSPENDED = 200
    INSTRUMENT_HALTED = 201
    PRICE_OUTSIDE_COLLAR = 202
    MAX_ORDER_QUANTITY_EXCEEDED = 203
    MAX_ORDER_NOTIONAL_EXCEEDED = 204
    POSITION_LIMIT_EXCEEDED = 205
    INSUFFICIENT_POSITION = 206    #: a cash account may only sell what it holds (no naked shorts)
    INSUFFICIENT_FUNDS = 207

    # 3xx matching outcomes (cancel reasons)
    CANCELLED_BY_CLIENT = 300
    CANCELLED_BY_MASS_CANCEL = 301
    IOC_REMAINDER = 302            #: the unfilled rest of an IOC order
    FOK_NOT_FILLABLE = 303         #: a FOK order that could not fill completely; nothing traded
    MARKET_REMAINDER = 304         #: a market order found no more liquidity inside the collar
    COLLAR_AT_TRIGGER = 305        #: a triggered stop-limit whose limit lies outside the collar
    BOOK_FULL_REMAINDER = 306      #: no free price level to rest the remainder on

    # 4xx admin
    INSTRUMENT_EXISTS = 400
    ACCOUNT_EXISTS = 401
    INVALID_SYMBOL = 402
    DUPLICATE_SYMBOL = 403
    INVALID_ASSET_CLASS = 404
    INVALID_TICK_SIZE = 405
    INVALID_LOT_SIZE = 406
    INVALID_REFERENCE_PRICE = 407
    INVALID_COLLAR = 408
    INVALID_FEE = 409
    INVALID_ACCOUNT_TYPE = 410
    INVALID_STATUS = 411
    CASH_LIMIT_EXCEEDED = 412      #: the deposit would take the venue's total cash past MAX_CASH
    POSITION_IS_SHORT = 413        #: securities cannot be deposited onto a short position

    # 5xx capacity
    INSTRUMENT_TABLE_FULL = 500    #: the instrument id is not below the configured capacity
    ACCOUNT_TABLE_FULL = 501       #: the account id is not below the configured capacity
    ORDER_TABLE_FULL = 502
    POSITION_TABLE_FULL = 503
    CLIENT_ORDER_ID_TABLE_FULL = 504

    @property
    def stage(self) -> str:
        """The stage that produced this code: ok, validation, risk, matching, admin, capacity."""
        return _STAGES[self.value // 100]


_STAGES = {0: "ok", 1: "validation", 2: "risk", 3: "matching", 4: "admin", 5: "capacity"}
