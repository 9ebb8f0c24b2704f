"""Pre-trade risk: one test per rejection code, and the cash and unit reservations.

A buy reserves its worst-case cost, ``reserve_price x leaves + max(maker, taker) fee``; a sell
reserves its quantity against the position (``open_sell``). Accounts of the venue: 1 and 2 are
cash accounts with 1,000,000 and 1,000 ACME, 3 is a margin account with 1,000,000 and no
units, 4 is a cash account with 1,000.
"""
import pytest

from core import commands as C
from core.enums import AccountStatus
from core.integers import MAX_NOTIONAL, MAX_POSITION, MAX_QUANTITY

from .venue import ACME, Venue


def limits(account, *, qty=MAX_QUANTITY, notional=MAX_NOTIONAL, position=MAX_POSITION):
    return C.set_account_limits(account, max_order_quantity=qty, max_order_notional=notional,
                                position_limit=position)


def test_account_suspended(venue):
    venue.book("""
        BUY #1 10 @ 99
    """)
    assert venue.run(C.set_account_status(2)) == ["ACCOUNT 2 SUSPENDED"]
    venue.expect(venue.buy(10, 98), events="""
        REJECTED NEW_ORDER ACCOUNT_SUSPENDED
    """)
    venue.expect(C.modify(2, 1, quantity=5, price=99), events="""
        REJECTED MODIFY ACCOUNT_SUSPENDED
    """, book="""
        BUY #1 10 @ 99
    """)
    # a suspended account's resting orders still trade, and it may still cancel
    venue.expect(venue.sell(4, 99), events="""
        ACCEPTED #2 SELL LIMIT GTC 4 @ 99
        TRADE #1 x #2 4 @ 99
        LEVEL BUY 6 @ 99
    """)
    venue.expect(C.cancel(2, 1), events="""
        CANCELLED #1 CANCELLED_BY_CLIENT 6
        LEVEL BUY 0 @ 99 (0)
    """)
    assert venue.run(C.set_account_status(2, AccountStatus.ACTIVE)) == ["ACCOUNT 2 ACTIVE"]
    venue.expect(venue.buy(10, 98), events="""
        ACCEPTED #3 BUY LIMIT GTC 10 @ 98
        LEVEL BUY 10 @ 98
    """)


def test_instrument_halted(venue):
    venue.book("""
        SELL #1 10 @ 101
    """)
    assert venue.run(C.halt(ACME)) == ["INSTRUMENT 0 HALTED"]
    venue.expect(venue.buy(10, 101), events="""
        REJECTED NEW_ORDER INSTRUMENT_HALTED
    """, book="""
        SELL #1 10 @ 101
    """)


@pytest.mark.parametrize("side, price, accepted", [
    ("buy", 111, False), ("buy", 110, True), ("buy", 90, True), ("buy", 89, False),
    ("sell", 89, False), ("sell", 90, True), ("sell", 110, True), ("sell", 111, False),
])
def test_price_outside_collar(venue, side, price, accepted):
    events = venue.run(getattr(venue, side)(10, price))
    if accepted:
        assert events == [f"ACCEPTED #1 {side.upper()} LIMIT GTC 10 @ {price}",
                          f"LEVEL {side.upper()} 10 @ {price}"]
    else:
        assert events == ["REJECTED NEW_ORDER PRICE_OUTSIDE_COLLAR"]


def test_collar_follows_the_last_trade(venue):
    """After a trade at 105 the collar is 95 .. 115 (band 105 x 10 % = 10, rounded down)."""
    venue.book("""
        SELL #1 10 @ 105
    """)
    venue.run(venue.buy(10, 105))
    assert venue.run(venue.buy(1, 94)) == ["REJECTED NEW_ORDER PRICE_OUTSIDE_COLLAR"]
    assert venue.run(venue.sell(1, 116)) == ["REJECTED NEW_ORDER PRICE_OUTSIDE_COLLAR"]
    assert venue.run(venue.sell(1, 115))[0] == "ACCEPTED #3 SELL LIMIT GTC 1 @ 115"
    assert venue.run(venue.buy(1, 95))[0] == "ACCEPTED #4 BUY LIMIT GTC 1 @ 95"


def test_max_order_quantity_exceeded(venue):
    venue.run(limits(2, qty=100))
    venue.expect(venue.buy(101, 99), events="""
        REJECTED NEW_ORDER MAX_ORDER_QUANTITY_EXCEEDED
    """, book="")
    venue.expect(venue.buy(100, 99), events="""
        ACCEPTED #1 BUY LIMIT GTC 100 @ 99
        LEVEL BUY 100 @ 99
    """)
    venue.expect(C.modify(2, 1, quantity=101, price=99), events="""
        REJECTED MODIFY MAX_ORDER_QUANTITY_EXCEEDED
    """)


def test_max_order_notional_exceeded(venue):
    venue.run(limits(2, notional=10_000))
    venue.expect(venue.buy(100, 101), events="""
        REJECTED NEW_ORDER MAX_ORDER_NOTIONAL_EXCEEDED
    """, book="")
    venue.expect(venue.sell(100, 101, by=2), events="""
        REJECTED NEW_ORDER MAX_ORDER_NOTIONAL_EXCEEDED
    """, book="")
    venue.expect(venue.buy(100, 100), events="""
        ACCEPTED #1 BUY LIMIT GTC 100 @ 100
        LEVEL BUY 100 @ 100
    """)


def test_max_order_notional_of_market_and_stop_orders(venue):
    """A market order is checked at the market price, a stop at its stop price."""
    venue.run(limits(2, notional=10_000))
    assert venue.run(venue.sell(101, by=2, order_type="MARKET")) == \
        ["REJECTED NEW_ORDER MAX_ORDER_NOTIONAL_EXCEEDED"]
    assert venue.run(venue.sell(100, by=2, order_type="MARKET"))[0] == \
        "ACCEPTED #1 SELL MARKET GTC 100"
    assert venue.run(venue.buy(100, order_type="STOP", stop=101)) == \
        ["REJECTED NEW_ORDER MAX_ORDER_NOTIONAL_EXCEEDED"]
    assert venue.run(venue.sell(100, by=2, order_type="STOP", stop=99)) == \
        ["ACCEPTED #2 SELL STOP GTC 100 stop 99"]
    # a stop-limit is checked at its limit price
    assert venue.run(venue.buy(100, 101, order_type="STOP_LIMIT", stop=102)) == \
        ["REJECTED NEW_ORDER MAX_ORDER_NOTIONAL_EXCEEDED"]
    assert venue.run(venue.buy(100, 100, order_type="STOP_LIMIT", stop=102)) == \
        ["ACCEPTED #3 BUY STOP_LIMIT GTC 100 @ 100 stop 102"]


def test_position_limit_exceeded_by_the_account_default(venue):
    """Account 2 holds 1000; its limit 1100 counts open buys too."""
    venue.run(limits(2, position=1_100))
    venue.expect(venue.buy(101, 99), events="""
        REJECTED NEW_ORDER POSITION_LIMIT_EXCEEDED
    """, book="")
    venue.expect(venue.buy(60, 99), events="""
        ACCEPTED #1 BUY LIMIT GTC 60 @ 99
        LEVEL BUY 60 @ 99
    """)
    venue.expect(venue.buy(41, 98), events="""
        REJECTED NEW_ORDER POSITION_LIMIT_EXCEEDED
    """)
    venue.expect(venue.buy(40, 98), events="""
        ACCEPTED #2 BUY LIMIT GTC 40 @ 98
        LEVEL BUY 40 @ 98
    """)


def test_position_limit_per_position_override(venue):
    venue.run(limits(2, position=1_100))
    assert venue.run(C.set_position_limit(2, ACME, 2_000)) == \
        ["POSITION_LIMIT account 2 instrument 0 2000"]
    venue.expect(venue.buy(1_000, 99), events="""
        ACCEPTED #1 BUY LIMIT GTC 1000 @ 99
        LEVEL BUY 1000 @ 99
    """)
    venue.expect(venue.buy(1, 99), events="""
        REJECTED NEW_ORDER POSITION_LIMIT_EXCEEDED
    """)
    # -1 goes back to the account's default (1100), which the open buys already exceed
    venue.run(C.set_position_limit(2, ACME, -1))
    venue.run(C.cancel(2, 1))
    assert venue.run(venue.buy(101, 99)) == ["REJECTED NEW_ORDER POSITION_LIMIT_EXCEEDED"]
    # a tighter override binds even under a looser default
    venue.run(C.set_position_limit(2, ACME, 1_000))
    assert venue.run(venue.buy(1, 99)) == ["REJECTED NEW_ORDER POSITION_LIMIT_EXCEEDED"]


def test_position_limit_on_the_short_side(venue):
    """Margin account 3 may sell short down to -limit, open sells included."""
    venue.run(limits(3, position=50))
    assert venue.run(venue.sell(51, 101, by=3)) == ["REJECTED NEW_ORDER POSITION_LIMIT_EXCEEDED"]
    assert venue.run(venue.sell(30, 101, by=3))[0] == "ACCEPTED #1 SELL LIMIT GTC 30 @ 101"
    assert venue.run(venue.sell(21, 102, by=3)) == ["REJECTED NEW_ORDER POSITION_LIMIT_EXCEEDED"]
    assert venue.run(venue.sell(20, 102, by=3))[0] == "ACCEPTED #2 SELL LIMIT GTC 20 @ 102"
    assert venue.position(3)["open_sell"] == 50


def test_insufficient_position_for_a_cash_account(venue):
    venue.expect(venue.sell(1_001, 101), events="""
        REJECTED NEW_ORDER INSUFFICIENT_POSITION
    """, book="")
    venue.expect(venue.sell(600, 101), events="""
        ACCEPTED #1 SELL LIMIT GTC 600 @ 101
        LEVEL SELL 600 @ 101
    """)
    # 600 of the 1000 are already promised to the resting sell
    venue.expect(venue.sell(401, 102), events="""
        REJECTED NEW_ORDER INSUFFICIENT_POSITION
    """)
    venue.expect(venue.sell(400, 102), events="""
        ACCEPTED #2 SELL LIMIT GTC 400 @ 102
        LEVEL SELL 400 @ 102
    """)
    assert venue.position(1)["open_sell"] == 1_000
    venue.expect(C.modify(1, 2, quantity=401, price=102), events="""
        REJECTED MODIFY INSUFFICIENT_POSITION
    """)


def test_insufficient_position_when_holding_nothing(venue):
    venue.expect(venue.sell(1, 101, by=4), events="""
        REJECTED NEW_ORDER INSUFFICIENT_POSITION
    """, book="")
    assert venue.run(venue.sell(1, by=4, order_type="STOP", stop=95)) == \
        ["REJECTED NEW_ORDER INSUFFICIENT_POSITION"]


def test_margin_account_may_sell_short(venue):
    venue.book("""
        BUY #1 100 @ 99
    """)
    venue.expect(venue.sell(150, 99, by=3), events="""
        ACCEPTED #2 SELL LIMIT GTC 150 @ 99
        TRADE #1 x #2 100 @ 99
        LEVEL BUY 0 @ 99 (0)
        LEVEL SELL 50 @ 99
    """)
    assert venue.position(3) == {"quantity": -100, "cost_basis": -9_900, "realized_pnl": 0,
                                 "open_buy": 0, "open_sell": 50, "fees_paid": 0}
    assert venue.account(3) == {"cash": 1_000_000 + 9_900, "reserved": 0}


def test_insufficient_funds(venue):
    """Account 4 has 1,000: 10 @ 100 is all it can afford."""
    venue.expect(venue.buy(11, 100, by=4), events="""
        REJECTED NEW_ORDER INSUFFICIENT_FUNDS
    """, book="")
    venue.expect(venue.buy(10, 100, by=4), events="""
        ACCEPTED #1 BUY LIMIT GTC 10 @ 100
        LEVEL BUY 10 @ 100
    """)
    assert venue.account(4) == {"cash": 1_000, "reserved": 1_000}
    venue.expect(venue.buy(1, 90, by=4), events="""
        REJECTED NEW_ORDER INSUFFICIENT_FUNDS
    """)


def test_insufficient_funds_counts_the_fee(engine_name):
    """With a 50 bps fee, 10 @ 100 needs 1000 + 5: more than account 4's 1000."""
    venue = Venue(engine_name, maker_fee_bps=0, taker_fee_bps=50)
    assert venue.run(venue.buy(10, 100, by=4)) == ["REJECTED NEW_ORDER INSUFFICIENT_FUNDS"]
    assert venue.run(venue.buy(9, 100, by=4))[0] == "ACCEPTED #1 BUY LIMIT GTC 9 @ 100"
    assert venue.account(4) == {"cash": 1_000, "reserved": 900 + 4}


# ------------------------------------------------------------------------------- reservations
def test_resting_buy_reserves_price_times_quantity_plus_max_fee(engine_name):
    venue = Venue(engine_name, maker_fee_bps=10, taker_fee_bps=20)
    venue.run(venue.buy(100, 99))
    # 9900 + 9900 x 20 bps = 9900 + 19 (rounded down)
    assert venue.account(2) == {"cash": 1_000_000, "reserved": 9_919}
    assert venue.position(2)["open_buy"] == 100


def test_reservation_released_on_fill(venue):
    venue.run(venue.buy(100, 99))                                      # #1
    assert venue.account(2) == {"cash": 1_000_000, "reserved": 9_900}
    venue.run(venue.sell(40, 99))
    assert venue.account(2) == {"cash": 1_000_000 - 3_960, "reserved": 5_940}
    assert venue.position(2)["open_buy"] == 60
    venue.run(venue.sell(60, 99))
    assert venue.account(2) == {"cash": 1_000_000 - 9_900, "reserved": 0}
    assert venue.position(2)["open_buy"] == 0


def test_reservation_released_on_cancel(venue):
    venue.run(venue.buy(100, 99))
    venue.expect(C.cancel(2, 1), events="""
        CANCELLED #1 CANCELLED_BY_CLIENT 100
        LEVEL BUY 0 @ 99 (0)
    """)
    assert venue.account(2) == {"cash": 1_000_000, "reserved": 0}
    assert venue.position(2)["open_buy"] == 0


def test_reservation_released_on_expiry(venue):
    venue.run(venue.buy(100, 99, tif="DAY"))
    venue.run(venue.buy(10, by=3, order_type="STOP", stop=105, tif="DAY"))
    assert venue.account(3)["reserved"] == 1_150
    venue.expect(C.end_of_day(), events="""
        EXPIRED #1 100
        LEVEL BUY 0 @ 99 (0)
        EXPIRED #2 10
        DAY_ENDED 1 expired 2
    """)
    assert venue.account(2) == {"cash": 1_000_000, "reserved": 0}
    assert venue.account(3) == {"cash": 1_000_000, "reserved": 0}
    assert venue.position(2)["open_buy"] == 0
    assert venue.position(3)["open_buy"] == 0


def test_price_improvement_releases_the_surplus(venue):
    """Buy 100 @ 105 fills 40 at 101: it pays 4040, and only 60 x 105 stay reserved."""
    venue.book("""
        SELL #1 40 @ 101
    """)
    venue.expect(venue.buy(100, 105, by=3), events="""
        ACCEPTED #2 BUY LIMIT GTC 100 @ 105
        TRADE #1 x #2 40 @ 101
        LEVEL SELL 0 @ 101 (0)
        LEVEL BUY 60 @ 105
    """)
    assert venue.account(3) == {"cash": 1_000_000 - 4_040, "reserved": 6_300}


def test_price_improvement_with_fees_releases_the_surplus(engine_name):
    venue = Venue(engine_name, maker_fee_bps=10, taker_fee_bps=20)
    venue.book("""
        SELL #1 40 @ 101
    """)
    venue.run(venue.buy(100, 105, by=3))
    # paid 4040 + 8 taker fee; 60 x 105 = 6300 + 12 fee reserved
    assert venue.account(3) == {"cash": 1_000_000 - 4_048, "reserved": 6_312}


def test_market_buy_reserves_against_the_collar_high(venue):
    """Account 4 (1,000) cannot market-buy 10 even though asks at 95 would cost 950: the
    market buy reserves 10 x 110 (the collar high). 9 x 110 = 990 fits."""
    venue.book("""
        SELL #1 20 @ 95
    """)
    venue.expect(venue.buy(10, by=4, order_type="MARKET"), events="""
        REJECTED NEW_ORDER INSUFFICIENT_FUNDS
    """)
    venue.expect(venue.buy(9, by=4, order_type="MARKET"), events="""
        ACCEPTED #2 BUY MARKET GTC 9
        TRADE #1 x #2 9 @ 95
        LEVEL SELL 11 @ 95
    """)
    assert venue.account(4) == {"cash": 1_000 - 855, "reserved": 0}
    assert venue.position(4)["quantity"] == 9


def test_stop_buy_reserves_against_the_collar_high_around_its_stop(venue):
    """A stop buy at 101 reserves at 101 + 10 = 111 per unit: account 4 (1,000) affords 9."""
    assert venue.run(venue.buy(10, by=4, order_type="STOP", stop=101)) == \
        ["REJECTED NEW_ORDER INSUFFICIENT_FUNDS"]
    venue.run(venue.buy(9, by=4, order_type="STOP", stop=101))
    assert venue.account(4) == {"cash": 1_000, "reserved": 999}
    assert venue.run(venue.buy(1, by=4, order_type="STOP", stop=101)) == \
        ["REJECTED NEW_ORDER INSUFFICIENT_FUNDS"]


def test_open_buy_and_open_sell_on_the_position(venue):
    venue.run(venue.buy(100, 99))
    venue.run(venue.sell(50, 101, by=2))
    venue.run(venue.sell(20, by=2, order_type="STOP", stop=95))
    assert venue.position(2) == {"quantity": 1_000, "cost_basis": 100_000, "realized_pnl": 0,
                                 "open_buy": 100, "open_sell": 70, "fees_paid": 0}
    venue.run(venue.sell(30, 99, by=3))                                 # fills 30 of the buy
    venue.run(venue.buy(10, 101, by=3))                                 # fills 10 of the sell
    # account 2 bought 30 @ 99 (1030 units, cost 102,970), then sold 10 @ 101 at an average
    # cost of 102,970 x 10 // 1030 = 999, realizing 1010 - 999 = 11
    assert venue.position(2) == {"quantity": 1_020, "cost_basis": 101_971, "realized_pnl": 11,
                                 "open_buy": 70, "open_sell": 60, "fees_paid": 0}
