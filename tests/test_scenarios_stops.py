"""Stops: triggering, the deterministic stop chain, trailing stops, collar at trigger.

The market price is the last trade price (the reference 100 before the first trade). A buy
stop is due when market >= stop, a sell stop when market <= stop. After each command that can
move the market, the oldest due stop (lowest priority) triggers and executes completely, then
the stops are evaluated again, until none is due.
"""
import pytest


def test_stop_buy_triggers_on_a_trade_and_trades_as_a_market_order(venue):
    venue.book("""
        SELL #1 10 @ 101
        SELL #2 50 @ 103
    """)
    venue.run(venue.buy(20, by=3, order_type="STOP", stop=101))        # #3
    venue.expect(venue.buy(10, 101), events="""
        ACCEPTED #4 BUY LIMIT GTC 10 @ 101
        TRADE #1 x #4 10 @ 101
        LEVEL SELL 0 @ 101 (0)
        TRIGGERED #3 stop 101 at 101
        TRADE #2 x #3 20 @ 103
        LEVEL SELL 30 @ 103
    """, book="""
        SELL #2 30 @ 103
    """)
    assert venue.account(3) == {"cash": 1_000_000 - 2_060, "reserved": 0}
    assert venue.position(3)["quantity"] == 20


def test_stop_sell_triggers_on_a_trade_at_its_stop(venue):
    venue.book("""
        BUY #1 10 @ 97
        BUY #2 50 @ 95
    """)
    venue.run(venue.sell(30, order_type="STOP", stop=97))              # #3
    venue.expect(venue.sell(10, 97, by=2), events="""
        ACCEPTED #4 SELL LIMIT GTC 10 @ 97
        TRADE #1 x #4 10 @ 97
        LEVEL BUY 0 @ 97 (0)
        TRIGGERED #3 stop 97 at 97
        TRADE #2 x #3 30 @ 95
        LEVEL BUY 20 @ 95
    """, book="""
        BUY #2 20 @ 95
    """)


def test_a_trade_that_does_not_reach_the_stop_leaves_it_dormant(venue):
    venue.book("""
        SELL #1 10 @ 101
        SELL #2 10 @ 102
    """)
    venue.run(venue.buy(20, by=3, order_type="STOP", stop=102))        # #3
    venue.expect(venue.buy(10, 101), events="""
        ACCEPTED #4 BUY LIMIT GTC 10 @ 101
        TRADE #1 x #4 10 @ 101
        LEVEL SELL 0 @ 101 (0)
    """, book="""
        SELL #2 10 @ 102
        STOP BUY #3 20 stop 102
    """)


def test_a_new_order_that_does_not_trade_triggers_nothing(venue):
    """Resting orders do not move the market; only trades do."""
    venue.run(venue.buy(20, by=3, order_type="STOP", stop=101))        # #1
    venue.expect(venue.sell(10, 101), events="""
        ACCEPTED #2 SELL LIMIT GTC 10 @ 101
        LEVEL SELL 10 @ 101
    """, book="""
        SELL #2 10 @ 101
        STOP BUY #1 20 stop 101
    """)


@pytest.mark.parametrize("stop", [100, 99])
def test_stop_whose_condition_holds_at_entry_triggers_immediately(venue, stop):
    """Market 100 (the reference): a buy stop at or below it is due at once."""
    venue.book("""
        SELL #1 10 @ 101
        SELL #2 10 @ 102
    """)
    venue.expect(venue.buy(15, by=3, order_type="STOP", stop=stop), events=f"""
        ACCEPTED #3 BUY STOP GTC 15 stop {stop}
        TRIGGERED #3 stop {stop} at 100
        TRADE #1 x #3 10 @ 101
        LEVEL SELL 0 @ 101 (0)
        TRADE #2 x #3 5 @ 102
        LEVEL SELL 5 @ 102
    """, book="""
        SELL #2 5 @ 102
    """)
    assert venue.account(3) == {"cash": 1_000_000 - 1_520, "reserved": 0}


def test_stop_limit_due_at_entry_rests_its_remainder(venue):
    venue.book("""
        BUY #1 10 @ 99
    """)
    venue.expect(venue.sell(30, 98, order_type="STOP_LIMIT", stop=100), events="""
        ACCEPTED #2 SELL STOP_LIMIT GTC 30 @ 98 stop 100
        TRIGGERED #2 stop 100 at 100
        TRADE #1 x #2 10 @ 99
        LEVEL BUY 0 @ 99 (0)
        LEVEL SELL 20 @ 98
    """, book="""
        SELL #2 20 @ 98
    """)


def test_stop_chain_oldest_due_stop_first_reevaluated_after_each(venue):
    """A trade at 102 makes #6 (stop 102) and #7 (stop 101) due; #5 (stop 104, the oldest of
    all) is not. The oldest due stop, #6, goes first although #7's stop is lower; its trade at
    103 leaves only #7 due; #7's trade at 105 makes #5 due, which trades last."""
    venue.book("""
        SELL #1 10 @ 102
        SELL #2 10 @ 103
        SELL #3 10 @ 105
        SELL #4 10 @ 108
    """)
    for stop in (104, 102, 101):                                        # #5, #6, #7
        venue.run(venue.buy(10, by=3, order_type="STOP", stop=stop))
    assert venue.book_lines()[-3:] == [
        "STOP BUY #5 10 stop 104", "STOP BUY #6 10 stop 102", "STOP BUY #7 10 stop 101"]
    venue.expect(venue.buy(10, 102), events="""
        ACCEPTED #8 BUY LIMIT GTC 10 @ 102
        TRADE #1 x #8 10 @ 102
        LEVEL SELL 0 @ 102 (0)
        TRIGGERED #6 stop 102 at 102
        TRADE #2 x #6 10 @ 103
        LEVEL SELL 0 @ 103 (0)
        TRIGGERED #7 stop 101 at 103
        TRADE #3 x #7 10 @ 105
        LEVEL SELL 0 @ 105 (0)
        TRIGGERED #5 stop 104 at 105
        TRADE #4 x #5 10 @ 108
        LEVEL SELL 0 @ 108 (0)
    """, book="")
    assert venue.position(3)["quantity"] == 30
    assert venue.account(3) == {"cash": 1_000_000 - 1_030 - 1_050 - 1_080, "reserved": 0}
    assert venue.engine.canonical_state().instruments[0]["last_price"] == 108


def test_stop_chain_of_sells_runs_down_the_bids(venue):
    venue.book("""
        BUY #1 10 @ 99
        BUY #2 10 @ 97
        BUY #3 10 @ 95
    """)
    venue.run(venue.sell(10, order_type="STOP", stop=97))              # #4
    venue.run(venue.sell(10, order_type="STOP", stop=99))              # #5
    venue.expect(venue.sell(10, 99, by=2), events="""
        ACCEPTED #6 SELL LIMIT GTC 10 @ 99
        TRADE #1 x #6 10 @ 99
        LEVEL BUY 0 @ 99 (0)
        TRIGGERED #5 stop 99 at 99
        TRADE #2 x #5 10 @ 97
        LEVEL BUY 0 @ 97 (0)
        TRIGGERED #4 stop 97 at 97
        TRADE #3 x #4 10 @ 95
        LEVEL BUY 0 @ 95 (0)
    """, book="")


def test_stop_chain_triggered_stop_that_finds_no_liquidity_still_lets_the_chain_finish(venue):
    venue.book("""
        SELL #1 10 @ 101
    """)
    venue.run(venue.buy(10, by=3, order_type="STOP", stop=101))        # #2
    venue.run(venue.buy(10, by=3, order_type="STOP", stop=101))        # #3
    venue.expect(venue.buy(5, 101), events="""
        ACCEPTED #4 BUY LIMIT GTC 5 @ 101
        TRADE #1 x #4 5 @ 101
        LEVEL SELL 5 @ 101
        TRIGGERED #2 stop 101 at 101
        TRADE #1 x #2 5 @ 101
        LEVEL SELL 0 @ 101 (0)
        CANCELLED #2 MARKET_REMAINDER 5
        TRIGGERED #3 stop 101 at 101
        CANCELLED #3 MARKET_REMAINDER 10
    """, book="")
    assert venue.account(3) == {"cash": 1_000_000 - 505, "reserved": 0}
    assert venue.position(3)["open_buy"] == 0


def test_trailing_sell_stop_follows_rising_trades_never_back_then_triggers(venue):
    venue.run(venue.sell(10, order_type="TRAILING_STOP", trail=3))     # #1, stop 97
    venue.book("""
        SELL #2 10 @ 104 by 2
    """)
    venue.expect(venue.buy(10, 104, by=3), events="""
        ACCEPTED #3 BUY LIMIT GTC 10 @ 104
        TRADE #2 x #3 10 @ 104
        LEVEL SELL 0 @ 104 (0)
    """, book="""
        TRAILING_STOP SELL #1 10 stop 101
    """)
    # a lower trade at 102 does not move it back down (102 - 3 = 99 < 101)
    venue.book("""
        SELL #4 10 @ 102 by 2
    """)
    venue.expect(venue.buy(10, 102, by=3), events="""
        ACCEPTED #5 BUY LIMIT GTC 10 @ 102
        TRADE #4 x #5 10 @ 102
        LEVEL SELL 0 @ 102 (0)
    """, book="""
        TRAILING_STOP SELL #1 10 stop 101
    """)
    # a trade at 101 reaches the stop: it triggers and sells at market into the bids
    venue.book("""
        BUY #6 30 @ 95 by 3
        SELL #7 5 @ 101 by 2
    """)
    venue.expect(venue.buy(5, 101, by=3), events="""
        ACCEPTED #8 BUY LIMIT GTC 5 @ 101
        TRADE #7 x #8 5 @ 101
        LEVEL SELL 0 @ 101 (0)
        TRIGGERED #1 stop 101 at 101
        TRADE #6 x #1 10 @ 95
        LEVEL BUY 20 @ 95
    """, book="""
        BUY #6 20 @ 95
    """)


def test_trailing_buy_stop_follows_falling_trades_never_back_then_triggers(venue):
    venue.run(venue.buy(10, by=3, order_type="TRAILING_STOP", trail=2))  # #1, stop 102
    venue.book("""
        BUY #2 10 @ 96
    """)
    venue.run(venue.sell(10, 96))                                       # #3: market 96
    assert venue.book_lines() == ["TRAILING_STOP BUY #1 10 stop 98"]
    venue.book("""
        BUY #4 10 @ 97
    """)
    venue.run(venue.sell(10, 97))                                       # #5: 97 + 2 > 98
    assert venue.book_lines() == ["TRAILING_STOP BUY #1 10 stop 98"]
    venue.book("""
        SELL #6 20 @ 99
        SELL #7 5 @ 98
    """)
    venue.expect(venue.buy(5, 98), events="""
        ACCEPTED #8 BUY LIMIT GTC 5 @ 98
        TRADE #7 x #8 5 @ 98
        LEVEL SELL 0 @ 98 (0)
        TRIGGERED #1 stop 98 at 98
        TRADE #6 x #1 10 @ 99
        LEVEL SELL 10 @ 99
    """, book="""
        SELL #6 10 @ 99
    """)


def test_trailing_stop_moves_at_every_print_of_a_sweep(venue):
    """The stop follows each trade print, not just the last one: a sell sweep prints 104 then
    102, so the trailing sell's stop rises to 104 - 5 = 99 and stays there (102 - 5 = 97)."""
    venue.run(venue.sell(10, order_type="TRAILING_STOP", trail=5))     # #1, stop 95
    venue.book("""
        BUY #2 10 @ 104
        BUY #3 10 @ 102
    """)
    venue.run(venue.sell(20, 102, by=3))                                # prints 104, 102
    assert venue.book_lines() == ["TRAILING_STOP SELL #1 10 stop 99"]


def test_stops_are_evaluated_after_the_aggressor_has_finished(venue):
    """The stop at 101 is not triggered between the aggressor's fills: it triggers once the
    command's own trades are done, at the last price 102, behind the aggressor's resting
    remainder."""
    venue.book("""
        SELL #1 10 @ 101
        SELL #2 10 @ 102
        SELL #3 10 @ 103
    """)
    venue.run(venue.buy(10, by=3, order_type="STOP", stop=101))        # #4
    venue.expect(venue.buy(30, 102), events="""
        ACCEPTED #5 BUY LIMIT GTC 30 @ 102
        TRADE #1 x #5 10 @ 101
        LEVEL SELL 0 @ 101 (0)
        TRADE #2 x #5 10 @ 102
        LEVEL SELL 0 @ 102 (0)
        LEVEL BUY 10 @ 102
        TRIGGERED #4 stop 101 at 102
        TRADE #3 x #4 10 @ 103
        LEVEL SELL 0 @ 103 (0)
    """, book="""
        BUY #5 10 @ 102
    """)


def test_stop_limit_triggered_outside_the_collar_is_cancelled(venue):
    """The stop-limit's limit 90 was fine at entry (no collar check for a dormant order), but
    at the trigger the market is 105 and the collar 95..115."""
    venue.book("""
        SELL #1 10 @ 105
    """)
    venue.run(venue.buy(10, 90, by=3, order_type="STOP_LIMIT", stop=101))  # #2
    assert venue.account(3) == {"cash": 1_000_000, "reserved": 900}
    venue.expect(venue.buy(10, 105), events="""
        ACCEPTED #3 BUY LIMIT GTC 10 @ 105
        TRADE #1 x #3 10 @ 105
        LEVEL SELL 0 @ 105 (0)
        TRIGGERED #2 stop 101 at 105
        CANCELLED #2 COLLAR_AT_TRIGGER 10
    """, book="")
    assert venue.account(3) == {"cash": 1_000_000, "reserved": 0}
    assert venue.position(3)["open_buy"] == 0


def test_stop_limit_above_the_collar_due_at_entry_is_cancelled_at_once(venue):
    venue.expect(venue.buy(10, 120, by=3, order_type="STOP_LIMIT", stop=100), events="""
        ACCEPTED #1 BUY STOP_LIMIT GTC 10 @ 120 stop 100
        TRIGGERED #1 stop 100 at 100
        CANCELLED #1 COLLAR_AT_TRIGGER 10
    """, book="")
    assert venue.account(3) == {"cash": 1_000_000, "reserved": 0}


def test_stop_limit_inside_the_collar_trades_as_a_limit_and_rests(venue):
    venue.book("""
        SELL #1 10 @ 101
        SELL #2 10 @ 102
        SELL #3 10 @ 104
    """)
    venue.run(venue.buy(30, 102, by=3, order_type="STOP_LIMIT", stop=101))  # #4
    venue.expect(venue.buy(10, 101), events="""
        ACCEPTED #5 BUY LIMIT GTC 10 @ 101
        TRADE #1 x #5 10 @ 101
        LEVEL SELL 0 @ 101 (0)
        TRIGGERED #4 stop 101 at 101
        TRADE #2 x #4 10 @ 102
        LEVEL SELL 0 @ 102 (0)
        LEVEL BUY 20 @ 102
    """, book="""
        SELL #3 10 @ 104
        BUY #4 20 @ 102
    """)
    assert venue.account(3) == {"cash": 1_000_000 - 1_020, "reserved": 2_040}


def test_triggered_stop_buy_never_trades_above_its_reserve_price(venue):
    """The stop buy (stop 101) reserved at 111, the collar high around its stop. Triggered by
    a jump to 108 (collar high 118), it still stops at 111: the ask at 116 is left alone."""
    venue.book("""
        SELL #1 10 @ 106
    """)
    venue.run(venue.buy(10, 106))                                       # #2: market 106
    venue.book("""
        SELL #3 10 @ 116
        SELL #4 10 @ 100
    """)
    venue.run(venue.buy(10, 100))                                       # #5: market 100
    venue.book("""
        SELL #6 10 @ 108
        SELL #7 10 @ 110
    """)
    venue.run(venue.buy(20, by=3, order_type="STOP", stop=101))        # #8
    assert venue.account(3) == {"cash": 1_000_000, "reserved": 2_220}
    venue.expect(venue.buy(10, 108), events="""
        ACCEPTED #9 BUY LIMIT GTC 10 @ 108
        TRADE #6 x #9 10 @ 108
        LEVEL SELL 0 @ 108 (0)
        TRIGGERED #8 stop 101 at 108
        TRADE #7 x #8 10 @ 110
        LEVEL SELL 0 @ 110 (0)
        CANCELLED #8 MARKET_REMAINDER 10
    """, book="""
        SELL #3 10 @ 116
    """)
    assert venue.account(3) == {"cash": 1_000_000 - 1_100, "reserved": 0}


def test_triggered_stop_sell_trades_down_to_the_collar_low_around_the_trigger(venue):
    """A triggered stop sell is a market sell: collar low around the market at the trigger
    (97 - 9 = 88), so it reaches a bid at 89 entered when the market was 98."""
    venue.book("""
        BUY #1 10 @ 98
    """)
    venue.run(venue.sell(10, 98))                                       # #2: market 98
    venue.book("""
        BUY #3 10 @ 89
        BUY #4 10 @ 97
    """)
    venue.run(venue.sell(20, order_type="STOP", stop=97))              # #5
    venue.expect(venue.sell(10, 97, by=3), events="""
        ACCEPTED #6 SELL LIMIT GTC 10 @ 97
        TRADE #4 x #6 10 @ 97
        LEVEL BUY 0 @ 97 (0)
        TRIGGERED #5 stop 97 at 97
        TRADE #3 x #5 10 @ 89
        LEVEL BUY 0 @ 89 (0)
        CANCELLED #5 MARKET_REMAINDER 10
    """, book="")
