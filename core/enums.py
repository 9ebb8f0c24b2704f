"""The small closed vocabularies of the BLP.

Every value here is stored in a command, an event or the state, so the numbers are part of the
journal format: never renumber a member, only add new ones. All are ``IntEnum`` so that numba
compiles them to integer constants.
"""
from enum import IntEnum


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    MARKET = 1          #: trades at once within the price collar, never rests
    LIMIT = 2
    STOP = 3            #: dormant until the last trade crosses the stop price, then a market order
    STOP_LIMIT = 4      #: dormant until triggered, then a limit order
    TRAILING_STOP = 5   #: a stop whose stop price follows the last trade price by ``trail_ticks``


class TimeInForce(IntEnum):
    DAY = 1   #: expires at the next END_OF_DAY command
    GTC = 2   #: good till cancelled
    IOC = 3   #: immediate or cancel: fills what it can, cancels the rest
    FOK = 4   #: fill or kill: fills completely at once or not at all


class OrderPhase(IntEnum):
    """Where a live order is: dormant in the stop list, or resting in the order book."""
    DORMANT = 1
    RESTING = 2


class AssetClass(IntEnum):
    EQUITY = 1
    BOND = 2
    FUTURE = 3
    OPTION = 4


class InstrumentStatus(IntEnum):
    TRADING = 1
    HALTED = 2


class AccountType(IntEnum):
    CASH = 1     #: buys are paid from cash; no short sales
    MARGIN = 2   #: may sell short within its position limit (margin requirements come later)


class AccountStatus(IntEnum):
    ACTIVE = 1
    SUSPENDED = 2   #: new orders and modifies are rejected; cancels still work


class CommandKind(IntEnum):
    NEW_ORDER = 1
    CANCEL = 2
    MODIFY = 3
    MASS_CANCEL = 4
    DEPOSIT_CASH = 5
    WITHDRAW_CASH = 6
    DEPOSIT_POSITION = 7
    WITHDRAW_POSITION = 8
    SET_ACCOUNT_LIMITS = 9
    SET_POSITION_LIMIT = 10
    ADD_INSTRUMENT = 11
    ADD_ACCOUNT = 12
    SET_ACCOUNT_STATUS = 13
    SET_INSTRUMENT_STATUS = 14
    END_OF_DAY = 15


class EventKind(IntEnum):
    ORDER_ACCEPTED = 1
    REJECTED = 2   #: any command refused, with its result code
    TRADE = 3
    ORDER_CANCELLED = 4
    ORDER_REPLACED = 5
    ORDER_EXPIRED = 6
    STOP_TRIGGERED = 7
    BOOK_LEVEL = 8
    DUPLICATE_ORDER = 9
    MASS_CANCELLED = 10
    INSTRUMENT_ADDED = 11
    ACCOUNT_ADDED = 12
    CASH_MOVED = 13
    POSITION_MOVED = 14
    ACCOUNT_LIMITS_SET = 15
    POSITION_LIMIT_SET = 16
    INSTRUMENT_STATUS_CHANGED = 17
    ACCOUNT_STATUS_CHANGED = 18
    DAY_ENDED = 19
