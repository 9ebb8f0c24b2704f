"""Bad input: every malformed command is refused with one specific REJECTED event and changes
nothing else.

"Nothing else": the instruments, accounts, positions and orders tables are byte-identical
before and after, and so is the header apart from ``last_seq``. A NEW_ORDER refused after its
client order id was read is remembered (so a retry is answered as a duplicate): its
(account, client order id) row records minus the code; no other client id row changes.
"""
from __future__ import annotations

import numpy as np
import pytest

from core import commands as C
from core.codes import ResultCode as R
from core.enums import CommandKind, EventKind, OrderType, Side, TimeInForce
from core.integers import MAX_CASH, MAX_POSITION, MAX_PRICE, MAX_QUANTITY, MAX_TRAIL_TICKS, \
    NO_ID
from core.records import COMMAND, command_fields

from .venue import ACME, Venue

FIVE = 1          # tick 5, lot 10, reference 100
BIG = 2           # tick 4096, reference 4096: a trail of MAX_TRAIL_TICKS puts the stop past
#                   MAX_PRICE
I64_MAX, I64_MIN = 2**63 - 1, -2**63
I32_MAX, I32_MIN = 2**31 - 1, -2**31


@pytest.fixture
def market(venue) -> Venue:
    """The ACME venue plus FIVE and BIG, and orders in every state (ACME's market is 101):

    #1 account 2 BUY 10 @ 99 on ACME, resting (client id 901)
    #2 account 1 SELL 10 @ 101, filled by #3 account 3 BUY 10 @ 101 (902, 903)
    client id 904 of account 2: rejected (PRICE_OUTSIDE_COLLAR)
    #4 account 2 BUY 10 @ 100 on FIVE, resting (905)
    #5 account 3 BUY STOP stop 105 on ACME, dormant (906)
    #6 account 2 BUY 10 @ 98, cancelled (907)
    #7 account 2 BUY STOP stop 110 on FIVE, dormant (908)
    """
    v = venue
    assert v.run(C.add_instrument(FIVE, "FIVE", tick_size=5, lot_size=10,
                                  reference_price=100)) == ["INSTRUMENT 1 FIVE"]
    assert v.run(C.add_instrument(BIG, "BIG", tick_size=4096, lot_size=1,
                                  reference_price=4096)) == ["INSTRUMENT 2 BIG"]
    setup = [
        (C.new_order(2, ACME, Side.BUY, 10, 99, client_order_id=901), "ACCEPTED #1"),
        (C.new_order(1, ACME, Side.SELL, 10, 101, client_order_id=902), "ACCEPTED #2"),
        (C.new_order(3, ACME, Side.BUY, 10, 101, client_order_id=903), "ACCEPTED #3"),
        (C.new_order(2, ACME, Side.BUY, 10, 120, client_order_id=904), "REJECTED"),
        (C.new_order(2, FIVE, Side.BUY, 10, 100, client_order_id=905), "ACCEPTED #4"),
        (C.new_order(3, ACME, Side.BUY, 10, order_type=OrderType.STOP, stop_price=105,
                     client_order_id=906), "ACCEPTED #5"),
        (C.new_order(2, ACME, Side.BUY, 10, 98, client_order_id=907), "ACCEPTED #6"),
        (C.cancel(2, 6), "CANCELLED #6"),
        (C.new_order(2, FIVE, Side.BUY, 10, order_type=OrderType.STOP, stop_price=110,
                     client_order_id=908), "ACCEPTED #7"),
    ]
    for command, first in setup:
        events = v.run(command)
        assert events[0].startswith(first), events
    assert v.book_lines() == ["BUY #1 10 @ 99", "STOP BUY #5 10 stop 105"]
    return v


def order(account=2, instrument=ACME, side=Side.BUY, quantity=10, price=99, *,
          client_order_id=5000, order_type=OrderType.LIMIT, time_in_force=TimeInForce.GTC,
          stop_price=0, trail_ticks=0):
    return C.new_order(account, instrument, side, quantity, price,
                       client_order_id=client_order_id, order_type=order_type,
                       time_in_force=time_in_force, stop_price=stop_price,
                       trail_ticks=trail_ticks)


def stop(**kw):
    return order(**{"price": 0, "order_type": OrderType.STOP, "stop_price": 105, **kw})


def stop_limit(**kw):
    return order(**{"price": 101, "order_type": OrderType.STOP_LIMIT, "stop_price": 105,
                    **kw})


def trailing(**kw):
    return order(**{"price": 0, "order_type": OrderType.TRAILING_STOP, "trail_ticks": 3,
                    **kw})


def instrument_status(instrument: int, status: int) -> np.ndarray:
    record = C.halt(instrument)
    record["instrument_status"] = status
    return record


def market_order(**kw):
    return order(**{"price": 0, "order_type": OrderType.MARKET, **kw})


def unknown_kind(kind: int) -> np.ndarray:
    record = np.zeros(1, COMMAND)
    record.view(np.uint8)[17:] = 0xAB          # garbage where a body would be
    record["kind"] = kind
    return record


def assert_refused(venue: Venue, command: np.ndarray, code: R) -> None:
    """``command`` yields exactly one REJECTED with ``code``, echoing the command's ids, and
    changes nothing but last_seq (and, for a vetted NEW_ORDER, its client id's outcome)."""
    before = venue.engine.canonical_state()
    events = venue.process(command)
    after = venue.engine.canonical_state()

    assert len(events) == 1, events
    e = events[0]
    assert int(e["kind"]) == EventKind.REJECTED
    assert R(int(e["code"])) == code
    kind = int(command["kind"][0])
    assert int(e["command_kind"]) == kind
    names = command_fields(CommandKind(kind)) if kind in CommandKind._value2member_map_ else ()
    for name, absent in (("account", NO_ID), ("instrument", NO_ID), ("order_id", 0),
                         ("client_order_id", 0)):
        want = int(command[name][0]) if name in names else absent
        assert int(e[name]) == want, name
    assert int(e["seq"]) == venue.seq

    for table in ("instruments", "accounts", "positions", "orders"):
        assert np.array_equal(getattr(before, table), getattr(after, table)), table
    assert int(after.header["last_seq"][0]) == venue.seq
    for name in before.header.dtype.names:
        if name != "last_seq":
            assert before.header[name][0] == after.header[name][0], name

    remembered = (kind == CommandKind.NEW_ORDER and
                  code not in (R.UNKNOWN_ACCOUNT, R.INVALID_CLIENT_ORDER_ID,
                               R.CLIENT_ORDER_ID_TABLE_FULL) and
                  not _known_client_id(before, command))
    if remembered:
        new = after.client_order_ids[~np.isin(after.client_order_ids, before.client_order_ids)]
        assert len(after.client_order_ids) == len(before.client_order_ids) + 1
        assert [tuple(int(x) for x in row) for row in new] == [
            (int(command["account"][0]), int(command["client_order_id"][0]), -int(code))]
    else:
        assert np.array_equal(before.client_order_ids, after.client_order_ids)


def _known_client_id(state, command) -> bool:
    ids = state.client_order_ids
    return bool(np.any((ids["account"] == command["account"][0]) &
                       (ids["client_order_id"] == command["client_order_id"][0])))


# ----------------------------------------------------------------------------- NEW_ORDER
NEW_ORDER_CASES = [
    # unknown references
    ("instrument never added", order(instrument=3), R.UNKNOWN_INSTRUMENT),
    ("instrument at capacity", order(instrument=4), R.UNKNOWN_INSTRUMENT),
    ("instrument -1", order(instrument=-1), R.UNKNOWN_INSTRUMENT),
    ("instrument int32 max", order(instrument=I32_MAX), R.UNKNOWN_INSTRUMENT),
    ("instrument int32 min", order(instrument=I32_MIN), R.UNKNOWN_INSTRUMENT),
    ("account never added", order(account=0), R.UNKNOWN_ACCOUNT),
    ("account at capacity", order(account=8), R.UNKNOWN_ACCOUNT),
    ("account -1", order(account=-1), R.UNKNOWN_ACCOUNT),
    ("account int32 max", order(account=I32_MAX), R.UNKNOWN_ACCOUNT),
    ("account int32 min", order(account=I32_MIN), R.UNKNOWN_ACCOUNT),
    # client order id
    ("client id 0", order(client_order_id=0), R.INVALID_CLIENT_ORDER_ID),
    ("client id -1", order(client_order_id=-1), R.INVALID_CLIENT_ORDER_ID),
    ("client id int64 min", order(client_order_id=I64_MIN), R.INVALID_CLIENT_ORDER_ID),
    # enumerations
    ("side 0", order(side=0), R.INVALID_SIDE),
    ("side 3", order(side=3), R.INVALID_SIDE),
    ("side 255", order(side=255), R.INVALID_SIDE),
    ("order type 0", order(order_type=0), R.INVALID_ORDER_TYPE),
    ("order type 6", order(order_type=6), R.INVALID_ORDER_TYPE),
    ("order type 255", order(order_type=255), R.INVALID_ORDER_TYPE),
    ("tif 0", order(time_in_force=0), R.INVALID_TIME_IN_FORCE),
    ("tif 5", order(time_in_force=5), R.INVALID_TIME_IN_FORCE),
    ("tif 255", order(time_in_force=255), R.INVALID_TIME_IN_FORCE),
    # quantity
    ("quantity 0", order(quantity=0), R.INVALID_QUANTITY),
    ("quantity -1", order(quantity=-1), R.INVALID_QUANTITY),
    ("quantity above max", order(quantity=MAX_QUANTITY + 1), R.INVALID_QUANTITY),
    ("quantity int64 max", order(quantity=I64_MAX), R.INVALID_QUANTITY),
    ("quantity int64 min", order(quantity=I64_MIN), R.INVALID_QUANTITY),
    ("quantity 2**32 (wraps to 0 in int32)", order(quantity=2**32), R.INVALID_QUANTITY),
    ("quantity off lot", order(instrument=FIVE, quantity=15, price=100),
     R.QUANTITY_OFF_LOT),
    ("quantity max is valid, but over the position limit",
     order(quantity=MAX_QUANTITY, price=99), R.POSITION_LIMIT_EXCEEDED),
    ("market quantity above max", market_order(quantity=MAX_QUANTITY + 1),
     R.INVALID_QUANTITY),
    # price
    ("price 0", order(price=0), R.INVALID_PRICE),
    ("price -1", order(price=-1), R.INVALID_PRICE),
    ("price above max", order(price=MAX_PRICE + 1), R.INVALID_PRICE),
    ("price int64 max", order(price=I64_MAX), R.INVALID_PRICE),
    ("price int64 min", order(price=I64_MIN), R.INVALID_PRICE),
    ("price 2**32 + 99", order(price=2**32 + 99), R.INVALID_PRICE),
    ("price max is valid, but outside the collar", order(price=MAX_PRICE),
     R.PRICE_OUTSIDE_COLLAR),
    ("price off tick", order(instrument=FIVE, price=101), R.PRICE_OFF_TICK),
    ("price on a market order", market_order(price=99), R.INVALID_PRICE),
    ("price on a stop", stop(price=99), R.INVALID_PRICE),
    ("price on a trailing stop", trailing(price=99), R.INVALID_PRICE),
    ("stop-limit without price", stop_limit(price=0), R.INVALID_PRICE),
    ("stop-limit price int64 max", stop_limit(price=I64_MAX), R.INVALID_PRICE),
    ("stop-limit price off tick", stop_limit(instrument=FIVE, price=102, stop_price=110),
     R.PRICE_OFF_TICK),
    # stop price
    ("stop 0", stop(stop_price=0), R.INVALID_STOP_PRICE),
    ("stop -1", stop(stop_price=-1), R.INVALID_STOP_PRICE),
    ("stop above max", stop(stop_price=MAX_PRICE + 1), R.INVALID_STOP_PRICE),
    ("stop int64 max", stop(stop_price=I64_MAX), R.INVALID_STOP_PRICE),
    ("stop int64 min", stop(stop_price=I64_MIN), R.INVALID_STOP_PRICE),
    ("stop-limit stop 0", stop_limit(stop_price=0), R.INVALID_STOP_PRICE),
    ("stop off tick", stop(instrument=FIVE, stop_price=103), R.STOP_PRICE_OFF_TICK),
    ("stop-limit stop off tick", stop_limit(instrument=FIVE, price=100, stop_price=107),
     R.STOP_PRICE_OFF_TICK),
    ("stop on a limit order", order(stop_price=105), R.INVALID_STOP_PRICE),
    ("stop on a market order", market_order(stop_price=105), R.INVALID_STOP_PRICE),
    ("stop on a trailing stop", trailing(stop_price=105), R.INVALID_STOP_PRICE),
    # trail
    ("trail 0", trailing(trail_ticks=0), R.INVALID_TRAIL),
    ("trail -1", trailing(trail_ticks=-1), R.INVALID_TRAIL),
    ("trail above max", trailing(trail_ticks=MAX_TRAIL_TICKS + 1), R.INVALID_TRAIL),
    ("trail int32 max", trailing(trail_ticks=I32_MAX), R.INVALID_TRAIL),
    ("trail int32 min", trailing(trail_ticks=I32_MIN), R.INVALID_TRAIL),
    ("trail on a limit order", order(trail_ticks=3), R.INVALID_TRAIL),
    ("trail on a stop", stop(trail_ticks=3), R.INVALID_TRAIL),
    ("trailing sell stop at 0 (market 101)",
     trailing(account=1, side=Side.SELL, trail_ticks=101),
     R.INVALID_TRAIL),
    ("trailing buy stop past MAX_PRICE",
     trailing(account=3, instrument=BIG, trail_ticks=MAX_TRAIL_TICKS), R.INVALID_TRAIL),
    # stops may not be IOC/FOK
    ("stop IOC", stop(time_in_force=TimeInForce.IOC), R.TIME_IN_FORCE_NOT_ALLOWED),
    ("stop-limit FOK", stop_limit(time_in_force=TimeInForce.FOK),
     R.TIME_IN_FORCE_NOT_ALLOWED),
]


@pytest.mark.parametrize("command, code", [c[1:] for c in NEW_ORDER_CASES],
                         ids=[c[0] for c in NEW_ORDER_CASES])
def test_new_order_refused(market, command, code):
    assert_refused(market, command.copy(), code)


def test_new_order_refusal_is_remembered_for_its_client_id(market):
    assert_refused(market, order(price=0, client_order_id=6000), R.INVALID_PRICE)
    # the retry (even a valid one) is answered with the original outcome
    events = market.process(order(price=99, client_order_id=6000))
    assert len(events) == 1
    assert (int(events[0]["kind"]), int(events[0]["code"]), int(events[0]["order_id"])) == \
        (EventKind.DUPLICATE_ORDER, R.INVALID_PRICE, 0)


def test_trailing_sell_stop_at_one_is_accepted(market):
    """The boundary of the trail case above: the market is 101 (the trade of #2 and #3), so a
    trail of 100 puts the stop at 1."""
    events = market.run(trailing(account=1, side=Side.SELL, trail_ticks=100))
    assert events == ["ACCEPTED #8 SELL TRAILING_STOP GTC 10 stop 1 trail 100"]


# ----------------------------------------------------------------------------- CANCEL
CANCEL_CASES = [
    ("unknown account", C.cancel(7, 1), R.UNKNOWN_ACCOUNT),
    ("account -1", C.cancel(-1, 1), R.UNKNOWN_ACCOUNT),
    ("order id never issued", C.cancel(2, 999), R.UNKNOWN_ORDER),
    ("next order id", C.cancel(2, 8), R.UNKNOWN_ORDER),
    ("order id -1", C.cancel(2, -1), R.UNKNOWN_ORDER),
    ("order id int64 max", C.cancel(2, I64_MAX), R.UNKNOWN_ORDER),
    ("order id int64 min", C.cancel(2, I64_MIN), R.UNKNOWN_ORDER),
    ("client id never used", C.cancel(2, client_order_id=5555), R.UNKNOWN_ORDER),
    ("client id of a rejected order", C.cancel(2, client_order_id=904), R.UNKNOWN_ORDER),
    ("another account's client id", C.cancel(3, client_order_id=901), R.UNKNOWN_ORDER),
    ("negative client id", C.cancel(2, client_order_id=-901), R.UNKNOWN_ORDER),
    ("another account's order", C.cancel(3, 1), R.NOT_ORDER_OWNER),
    ("another account's stop", C.cancel(2, 5), R.NOT_ORDER_OWNER),
    ("filled order", C.cancel(1, 2), R.ORDER_NOT_LIVE),
    ("filled order by client id", C.cancel(1, client_order_id=902), R.ORDER_NOT_LIVE),
    ("filled order of another account", C.cancel(2, 3), R.ORDER_NOT_LIVE),
    ("cancelled order", C.cancel(2, 6), R.ORDER_NOT_LIVE),
    ("cancelled order by client id", C.cancel(2, client_order_id=907), R.ORDER_NOT_LIVE),
    ("neither order id nor client id", C.cancel(2), R.INVALID_ORDER_REFERENCE),
]


@pytest.mark.parametrize("command, code", [c[1:] for c in CANCEL_CASES],
                         ids=[c[0] for c in CANCEL_CASES])
def test_cancel_refused(market, command, code):
    assert_refused(market, command.copy(), code)


# ----------------------------------------------------------------------------- MODIFY
MODIFY_CASES = [
    ("unknown account", C.modify(7, 1, quantity=10, price=99), R.UNKNOWN_ACCOUNT),
    ("unknown order", C.modify(2, 999, quantity=10, price=99), R.UNKNOWN_ORDER),
    ("unknown client id", C.modify(2, client_order_id=5555, quantity=10, price=99),
     R.UNKNOWN_ORDER),
    ("another account's order", C.modify(3, 1, quantity=10, price=99), R.NOT_ORDER_OWNER),
    ("filled order", C.modify(1, 2, quantity=20, price=101), R.ORDER_NOT_LIVE),
    ("filled order by client id", C.modify(3, client_order_id=903, quantity=20, price=101),
     R.ORDER_NOT_LIVE),
    ("cancelled order", C.modify(2, 6, quantity=10, price=98), R.ORDER_NOT_LIVE),
    ("no reference", C.modify(2, quantity=10, price=99), R.INVALID_ORDER_REFERENCE),
    ("quantity 0", C.modify(2, 1, quantity=0, price=99), R.INVALID_QUANTITY),
    ("quantity -1", C.modify(2, 1, quantity=-1, price=99), R.INVALID_QUANTITY),
    ("quantity above max", C.modify(2, 1, quantity=MAX_QUANTITY + 1, price=99),
     R.INVALID_QUANTITY),
    ("quantity int64 max", C.modify(2, 1, quantity=I64_MAX, price=99), R.INVALID_QUANTITY),
    ("quantity int64 min", C.modify(2, 1, quantity=I64_MIN, price=99), R.INVALID_QUANTITY),
    ("quantity off lot", C.modify(2, 4, quantity=15, price=100), R.QUANTITY_OFF_LOT),
    ("price 0 on a resting order", C.modify(2, 1, quantity=10), R.INVALID_PRICE),
    ("price -1", C.modify(2, 1, quantity=10, price=-1), R.INVALID_PRICE),
    ("price above max", C.modify(2, 1, quantity=10, price=MAX_PRICE + 1), R.INVALID_PRICE),
    ("price int64 min", C.modify(2, 1, quantity=10, price=I64_MIN), R.INVALID_PRICE),
    ("price off tick", C.modify(2, 4, quantity=10, price=101), R.PRICE_OFF_TICK),
    ("price outside collar (market 101)", C.modify(2, 1, quantity=10, price=112),
     R.PRICE_OUTSIDE_COLLAR),
    ("stop on a resting order", C.modify(2, 1, quantity=10, price=99, stop_price=105),
     R.INVALID_STOP_PRICE),
    ("price on a stop", C.modify(3, 5, quantity=10, price=99, stop_price=105),
     R.INVALID_PRICE),
    ("stop 0 on a stop", C.modify(3, 5, quantity=10), R.INVALID_STOP_PRICE),
    ("stop int64 max on a stop", C.modify(3, 5, quantity=10, stop_price=I64_MAX),
     R.INVALID_STOP_PRICE),
    ("stop off tick", C.modify(2, 7, quantity=10, stop_price=111), R.STOP_PRICE_OFF_TICK),
]


@pytest.mark.parametrize("command, code", [c[1:] for c in MODIFY_CASES],
                         ids=[c[0] for c in MODIFY_CASES])
def test_modify_refused(market, command, code):
    assert_refused(market, command.copy(), code)


# ----------------------------------------------------------------------------- admin
ADMIN_CASES = [
    ("deposit cash: unknown account", C.deposit_cash(7, 10), R.UNKNOWN_ACCOUNT),
    ("deposit cash 0", C.deposit_cash(2, 0), R.INVALID_AMOUNT),
    ("deposit cash -1", C.deposit_cash(2, -1), R.INVALID_AMOUNT),
    ("deposit cash above MAX_CASH", C.deposit_cash(2, MAX_CASH + 1), R.INVALID_AMOUNT),
    ("deposit cash int64 max", C.deposit_cash(2, I64_MAX), R.INVALID_AMOUNT),
    ("deposit cash int64 min", C.deposit_cash(2, I64_MIN), R.INVALID_AMOUNT),
    ("withdraw cash: unknown account", C.withdraw_cash(-1, 10), R.UNKNOWN_ACCOUNT),
    ("withdraw cash 0", C.withdraw_cash(2, 0), R.INVALID_AMOUNT),
    ("withdraw cash int64 min", C.withdraw_cash(2, I64_MIN), R.INVALID_AMOUNT),
    ("withdraw cash int64 max", C.withdraw_cash(2, I64_MAX), R.INVALID_AMOUNT),
    ("withdraw more than available", C.withdraw_cash(2, 1_000_000), R.INSUFFICIENT_FUNDS),
    ("deposit units: unknown account", C.deposit_position(7, ACME, 10), R.UNKNOWN_ACCOUNT),
    ("deposit units: unknown instrument", C.deposit_position(2, 3, 10),
     R.UNKNOWN_INSTRUMENT),
    ("deposit units 0", C.deposit_position(2, ACME, 0), R.INVALID_QUANTITY),
    ("deposit units -5", C.deposit_position(2, ACME, -5), R.INVALID_QUANTITY),
    ("deposit units above max", C.deposit_position(2, ACME, MAX_QUANTITY + 1),
     R.INVALID_QUANTITY),
    ("deposit units int64 min", C.deposit_position(2, ACME, I64_MIN), R.INVALID_QUANTITY),
    ("deposit units negative cost", C.deposit_position(2, ACME, 10, -1), R.INVALID_AMOUNT),
    ("deposit units cost above qty x MAX_PRICE",
     C.deposit_position(2, ACME, 10, 10 * MAX_PRICE + 1), R.INVALID_AMOUNT),
    ("deposit units cost int64 max", C.deposit_position(2, ACME, 10, I64_MAX),
     R.INVALID_AMOUNT),
    ("deposit units past MAX_POSITION", C.deposit_position(2, ACME, MAX_QUANTITY),
     R.POSITION_LIMIT_EXCEEDED),
    ("withdraw units: unknown account", C.withdraw_position(7, ACME, 1), R.UNKNOWN_ACCOUNT),
    ("withdraw units: unknown instrument", C.withdraw_position(2, -1, 1),
     R.UNKNOWN_INSTRUMENT),
    ("withdraw units 0", C.withdraw_position(2, ACME, 0), R.INVALID_QUANTITY),
    ("withdraw units int64 max", C.withdraw_position(2, ACME, I64_MAX), R.INVALID_QUANTITY),
    ("withdraw units int64 min", C.withdraw_position(2, ACME, I64_MIN), R.INVALID_QUANTITY),
    ("withdraw units never held", C.withdraw_position(4, ACME, 1), R.INSUFFICIENT_POSITION),
    ("withdraw more units than held", C.withdraw_position(1, ACME, 991),
     R.INSUFFICIENT_POSITION),
    ("limits: unknown account", C.set_account_limits(
        7, max_order_quantity=1, max_order_notional=1, position_limit=1), R.UNKNOWN_ACCOUNT),
    ("limits: quantity 0", C.set_account_limits(
        2, max_order_quantity=0, max_order_notional=1, position_limit=1), R.INVALID_LIMIT),
    ("limits: quantity above max", C.set_account_limits(
        2, max_order_quantity=MAX_QUANTITY + 1, max_order_notional=1, position_limit=1),
     R.INVALID_LIMIT),
    ("limits: notional 0", C.set_account_limits(
        2, max_order_quantity=1, max_order_notional=0, position_limit=1), R.INVALID_LIMIT),
    ("limits: notional int64 max", C.set_account_limits(
        2, max_order_quantity=1, max_order_notional=I64_MAX, position_limit=1),
     R.INVALID_LIMIT),
    ("limits: position -1", C.set_account_limits(
        2, max_order_quantity=1, max_order_notional=1, position_limit=-1), R.INVALID_LIMIT),
    ("limits: position above max", C.set_account_limits(
        2, max_order_quantity=1, max_order_notional=1, position_limit=MAX_POSITION + 1),
     R.INVALID_LIMIT),
    ("position limit: unknown account", C.set_position_limit(7, ACME, 1), R.UNKNOWN_ACCOUNT),
    ("position limit: unknown instrument", C.set_position_limit(2, 3, 1),
     R.UNKNOWN_INSTRUMENT),
    ("position limit -2", C.set_position_limit(2, ACME, -2), R.INVALID_LIMIT),
    ("position limit above max", C.set_position_limit(2, ACME, MAX_POSITION + 1),
     R.INVALID_LIMIT),
    ("position limit int64 min", C.set_position_limit(2, ACME, I64_MIN), R.INVALID_LIMIT),
    ("account status: unknown account", C.set_account_status(7), R.UNKNOWN_ACCOUNT),
    ("account status 0", C.set_account_status(2, 0), R.INVALID_STATUS),
    ("account status 3", C.set_account_status(2, 3), R.INVALID_STATUS),
    ("instrument status: unknown instrument", C.halt(3), R.UNKNOWN_INSTRUMENT),
    ("instrument status: unknown instrument -1", C.resume(-1), R.UNKNOWN_INSTRUMENT),
    ("instrument status 0", instrument_status(ACME, 0), R.INVALID_STATUS),
    ("instrument status 3", instrument_status(ACME, 3), R.INVALID_STATUS),
    ("mass cancel: unknown account", C.mass_cancel(7), R.UNKNOWN_ACCOUNT),
    ("mass cancel: unknown instrument", C.mass_cancel(2, 3), R.UNKNOWN_INSTRUMENT),
    ("mass cancel: instrument -2", C.mass_cancel(2, -2), R.UNKNOWN_INSTRUMENT),
]


@pytest.mark.parametrize("command, code", [c[1:] for c in ADMIN_CASES],
                         ids=[c[0] for c in ADMIN_CASES])
def test_admin_command_refused(market, command, code):
    assert_refused(market, command.copy(), code)


# ----------------------------------------------------------------------------- unknown kind
@pytest.mark.parametrize("kind", [0, 16, 99, 255])
def test_unknown_command_kind(market, kind):
    """An unknown kind carries no known fields: the REJECTED echoes no ids (NO_ID / 0)."""
    assert_refused(market, unknown_kind(kind), R.UNKNOWN_COMMAND)
    assert market.run(unknown_kind(kind)) == [f"REJECTED {kind} UNKNOWN_COMMAND"]


def test_a_refused_command_in_a_batch_does_not_disturb_its_neighbours(market):
    events = market.run(order(price=98, client_order_id=7001), unknown_kind(0),
                        order(price=0, client_order_id=7002),
                        order(price=98, client_order_id=7003))
    assert events == [
        "ACCEPTED #8 BUY LIMIT GTC 10 @ 98",
        "LEVEL BUY 10 @ 98",
        "REJECTED 0 UNKNOWN_COMMAND",
        "REJECTED NEW_ORDER INVALID_PRICE",
        "ACCEPTED #9 BUY LIMIT GTC 10 @ 98",
        "LEVEL BUY 20 @ 98 (2)",
    ]
