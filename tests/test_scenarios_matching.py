"""Matching scenarios: book before / command / events / book after, for both engines."""

from core import commands as C
from core.enums import AccountType, Side
from core.integers import MAX_CASH, MAX_PRICE

from .venue import Venue


def test_limit_buy_sweeps_two_levels_and_rests_the_rest(venue):
    venue.book("""
        SELL #1 100 @ 102
        SELL #2  50 @ 101
        SELL #3  30 @ 101
        BUY  #4  70 @  99
    """)
    venue.expect(venue.buy(200, 102), events="""
        ACCEPTED #5 BUY LIMIT GTC 200 @ 102
        TRADE #2 x #5 50 @ 101
        TRADE #3 x #5 30 @ 101
        LEVEL SELL 0 @ 101 (0)
        TRADE #1 x #5 100 @ 102
        LEVEL SELL 0 @ 102 (0)
        LEVEL BUY 20 @ 102
    """, book="""
        BUY #5 20 @ 102
        BUY #4 70 @ 99
    """)


def test_sell_sweeps_bids_best_first_and_partially_fills_the_last_maker(venue):
    venue.book("""
        BUY #1 40 @ 99
        BUY #2 30 @ 98
        BUY #3 50 @ 97
        BUY #4 20 @ 96
    """)
    venue.expect(venue.sell(100, 97), events="""
        ACCEPTED #5 SELL LIMIT GTC 100 @ 97
        TRADE #1 x #5 40 @ 99
        LEVEL BUY 0 @ 99 (0)
        TRADE #2 x #5 30 @ 98
        LEVEL BUY 0 @ 98 (0)
        TRADE #3 x #5 30 @ 97
        LEVEL BUY 20 @ 97
    """, book="""
        BUY #3 20 @ 97
        BUY #4 20 @ 96
    """)


def test_aggressor_stops_at_its_limit_and_rests_the_remainder(venue):
    venue.book("""
        SELL #1 30 @ 103
        SELL #2 20 @ 101
    """)
    venue.expect(venue.buy(50, 102), events="""
        ACCEPTED #3 BUY LIMIT GTC 50 @ 102
        TRADE #2 x #3 20 @ 101
        LEVEL SELL 0 @ 101 (0)
        LEVEL BUY 30 @ 102
    """, book="""
        SELL #1 30 @ 103
        BUY #3 30 @ 102
    """)


def test_fifo_within_a_level_oldest_maker_first(venue):
    venue.book("""
        SELL #1 30 @ 101
        SELL #2 40 @ 101
        SELL #3 50 @ 101
    """)
    venue.expect(venue.buy(60, 101), events="""
        ACCEPTED #4 BUY LIMIT GTC 60 @ 101
        TRADE #1 x #4 30 @ 101
        TRADE #2 x #4 30 @ 101
        LEVEL SELL 60 @ 101 (2)
    """, book="""
        SELL #2 10 @ 101
        SELL #3 50 @ 101
    """)


def test_fifo_is_time_priority_not_size(venue):
    """A small order that arrived first is filled before a bigger one that came later."""
    venue.book("""
        BUY #1 5 @ 99
        BUY #2 500 @ 99
    """)
    venue.expect(venue.sell(5, 99), events="""
        ACCEPTED #3 SELL LIMIT GTC 5 @ 99
        TRADE #1 x #3 5 @ 99
        LEVEL BUY 500 @ 99
    """, book="""
        BUY #2 500 @ 99
    """)


def test_aggressive_buy_trades_at_the_makers_price(venue):
    """Price improvement: the aggressor's limit 105 is only a bound; trades print at 101."""
    venue.book("""
        SELL #1 100 @ 101
    """)
    venue.expect(venue.buy(100, 105), events="""
        ACCEPTED #2 BUY LIMIT GTC 100 @ 105
        TRADE #1 x #2 100 @ 101
        LEVEL SELL 0 @ 101 (0)
    """, book="")
    assert venue.account(2) == {"cash": 1_000_000 - 10_100, "reserved": 0}
    assert venue.account(1) == {"cash": 1_000_000 + 10_100, "reserved": 0}
    assert venue.engine.canonical_state().instruments[0]["last_price"] == 101


def test_aggressive_sell_trades_at_the_makers_price(venue):
    venue.book("""
        BUY #1 100 @ 104
    """)
    venue.expect(venue.sell(60, 92), events="""
        ACCEPTED #2 SELL LIMIT GTC 60 @ 92
        TRADE #1 x #2 60 @ 104
        LEVEL BUY 40 @ 104
    """, book="""
        BUY #1 40 @ 104
    """)
    assert venue.account(1)["cash"] == 1_000_000 + 60 * 104
    assert venue.position(1)["quantity"] == 940


def test_partial_fill_of_the_maker_keeps_its_place(venue):
    venue.book("""
        SELL #1 100 @ 101
        SELL #2 100 @ 101
    """)
    venue.expect(venue.buy(40, 101), events="""
        ACCEPTED #3 BUY LIMIT GTC 40 @ 101
        TRADE #1 x #3 40 @ 101
        LEVEL SELL 160 @ 101 (2)
    """, book="""
        SELL #1 60 @ 101
        SELL #2 100 @ 101
    """)
    venue.expect(venue.buy(70, 101), events="""
        ACCEPTED #4 BUY LIMIT GTC 70 @ 101
        TRADE #1 x #4 60 @ 101
        TRADE #2 x #4 10 @ 101
        LEVEL SELL 90 @ 101
    """, book="""
        SELL #2 90 @ 101
    """)
    assert venue.position(1)["open_sell"] == 90
    assert venue.position(1)["quantity"] == 890


def test_trade_settles_cash_units_and_cost_basis(venue):
    venue.book("""
        SELL #1 100 @ 105
    """)
    venue.expect(venue.buy(100, 105, by=3), events="""
        ACCEPTED #2 BUY LIMIT GTC 100 @ 105
        TRADE #1 x #2 100 @ 105
        LEVEL SELL 0 @ 105 (0)
    """, book="")
    # seller: long 1000 at average 100, sells 100 at 105: realizes 500
    assert venue.position(1) == {"quantity": 900, "cost_basis": 90_000, "realized_pnl": 500,
                                 "open_buy": 0, "open_sell": 0, "fees_paid": 0}
    assert venue.position(3) == {"quantity": 100, "cost_basis": 10_500, "realized_pnl": 0,
                                 "open_buy": 0, "open_sell": 0, "fees_paid": 0}
    assert venue.account(1) == {"cash": 1_010_500, "reserved": 0}
    assert venue.account(3) == {"cash": 989_500, "reserved": 0}


def test_self_match_is_allowed_and_settles_both_sides_with_fees(engine_name):
    """Self-match is ALLOWED (the spec has no self-trade prevention): account 1's buy trades
    with account 1's own resting sell. Both sides settle as usual, maker first, then taker, and
    each side pays its own fee: the account ends with the same units, loses both fees in cash,
    and its cost basis is re-struck at the trade price."""
    venue = Venue(engine_name, maker_fee_bps=10, taker_fee_bps=20)
    venue.book("""
        SELL #1 100 @ 100 by 1
    """)
    venue.expect(venue.buy(100, 100, by=1), events="""
        ACCEPTED #2 BUY LIMIT GTC 100 @ 100
        TRADE #1 x #2 100 @ 100 fees 10/20
        LEVEL SELL 0 @ 100 (0)
    """, book="")
    assert venue.account(1) == {"cash": 1_000_000 - 10 - 20, "reserved": 0}
    # sell 100 out of 1000 @ avg 100 realizes 0, then buy 100 @ 100 re-opens them
    assert venue.position(1) == {"quantity": 1000, "cost_basis": 100_000, "realized_pnl": 0,
                                 "open_buy": 0, "open_sell": 0, "fees_paid": 30}
    assert venue.engine.canonical_state().header["fee_income"][0] == 30


def test_self_match_in_the_middle_of_a_sweep(venue):
    """The aggressor trades with its own account's order in FIFO turn, like any other."""
    venue.book("""
        SELL #1 10 @ 101 by 1
        SELL #2 10 @ 101 by 2
        SELL #3 10 @ 101 by 1
    """)
    venue.expect(venue.buy(25, 101, by=2), events="""
        ACCEPTED #4 BUY LIMIT GTC 25 @ 101
        TRADE #1 x #4 10 @ 101
        TRADE #2 x #4 10 @ 101
        TRADE #3 x #4 5 @ 101
        LEVEL SELL 5 @ 101
    """, book="""
        SELL #3 5 @ 101
    """)
    # account 2 bought 25 and sold 10 of them to itself
    assert venue.account(2) == {"cash": 1_000_000 - 15 * 101, "reserved": 0}
    assert venue.position(2)["quantity"] == 1015
    assert venue.account(1) == {"cash": 1_000_000 + 15 * 101, "reserved": 0}


def test_fees_maker_and_taker_rounded_down(engine_name):
    """maker 10 bps, taker 25 bps. Notional 33 x 101 = 3333: maker fee 3 (3.333), taker fee 8
    (8.3325). The resting buy reserved notional + max fee = 3333 + 8."""
    venue = Venue(engine_name, maker_fee_bps=10, taker_fee_bps=25)
    venue.book("""
        BUY #1 33 @ 101
    """)
    assert venue.account(2) == {"cash": 1_000_000, "reserved": 3_341}
    venue.expect(venue.sell(33, 101), events="""
        ACCEPTED #2 SELL LIMIT GTC 33 @ 101
        TRADE #1 x #2 33 @ 101 fees 3/8
        LEVEL BUY 0 @ 101 (0)
    """, book="")
    # the buyer (maker) pays 3333 + 3; the seller (taker) receives 3333 - 8
    assert venue.account(2) == {"cash": 1_000_000 - 3_333 - 3, "reserved": 0}
    assert venue.account(1) == {"cash": 1_000_000 + 3_333 - 8, "reserved": 0}
    assert venue.position(2)["fees_paid"] == 3
    assert venue.position(1)["fees_paid"] == 8
    assert venue.engine.canonical_state().header["fee_income"][0] == 11


def test_fees_accumulate_per_trade(engine_name):
    """Fees are computed per fill, each rounded down: two fills of 50 @ 101 (5050 each) at
    taker 25 bps pay 12 + 12 = 24, not 25 on the 10100 total."""
    venue = Venue(engine_name, maker_fee_bps=10, taker_fee_bps=25)
    venue.book("""
        SELL #1 50 @ 101
        SELL #2 50 @ 101 by 2
    """)
    venue.expect(venue.buy(100, 101, by=3), events="""
        ACCEPTED #3 BUY LIMIT GTC 100 @ 101
        TRADE #1 x #3 50 @ 101 fees 5/12
        TRADE #2 x #3 50 @ 101 fees 5/12
        LEVEL SELL 0 @ 101 (0)
    """, book="")
    assert venue.account(3) == {"cash": 1_000_000 - 10_100 - 24, "reserved": 0}
    assert venue.account(1) == {"cash": 1_000_000 + 5_050 - 5, "reserved": 0}
    assert venue.account(2) == {"cash": 1_000_000 + 5_050 - 5, "reserved": 0}
    assert venue.position(3)["fees_paid"] == 24
    assert venue.engine.canonical_state().header["fee_income"][0] == 34


def test_fees_on_the_largest_notionals_are_exact(engine_name):
    """A notional near 2**59 at the maximum fee (1000 bps) and an odd one (999 bps): the fee
    is floor(notional x bps / 10000) exactly, with no int64 overflow on the way."""
    venue = Venue(engine_name)
    venue.run(C.add_instrument(1, "HUGE", tick_size=1, lot_size=1, reference_price=MAX_PRICE,
                               collar_bps=10_000, maker_fee_bps=1_000, taker_fee_bps=999))
    venue.run(C.deposit_cash(3, MAX_CASH - 3_001_000))
    venue.run(C.add_account(5, AccountType.MARGIN))
    qty = 2**27
    notional = MAX_PRICE * qty
    maker_fee, taker_fee = notional // 10, notional * 999 // 10_000
    venue.run(C.new_order(5, 1, Side.SELL, qty, MAX_PRICE, client_order_id=1))
    venue.expect(C.new_order(3, 1, Side.BUY, qty, MAX_PRICE, client_order_id=2), events=f"""
        ACCEPTED #2 BUY LIMIT GTC {qty} @ {MAX_PRICE}
        TRADE #1 x #2 {qty} @ {MAX_PRICE} fees {maker_fee}/{taker_fee}
        LEVEL SELL 0 @ {MAX_PRICE} (0)
    """)
    assert venue.account(3) == {"cash": MAX_CASH - 2_001_000 - notional - taker_fee,
                                "reserved": 0}
    assert venue.account(5) == {"cash": notional - maker_fee, "reserved": 0}
    assert venue.engine.canonical_state().header["fee_income"][0] == maker_fee + taker_fee
