"""Order types and times in force: book before / command / events / book after.

ACME: tick 1, reference 100, collar 10 % (90..110 until the first trade moves the market).
"""
import pytest

from core import commands as C
from .venue import ACME


# ---------------------------------------------------------------------------------- MARKET
def test_market_buy_sweeps_up_to_the_collar_high_and_cancels_the_rest(venue):
    venue.book("""
        SELL #1 50 @ 105
        SELL #2 50 @ 110
    """)
    venue.expect(venue.buy(150, order_type="MARKET"), events="""
        ACCEPTED #3 BUY MARKET GTC 150
        TRADE #1 x #3 50 @ 105
        LEVEL SELL 0 @ 105 (0)
        TRADE #2 x #3 50 @ 110
        LEVEL SELL 0 @ 110 (0)
        CANCELLED #3 MARKET_REMAINDER 50
    """, book="")
    assert venue.account(2) == {"cash": 1_000_000 - 5_250 - 5_500, "reserved": 0}
    assert venue.position(2)["open_buy"] == 0


def test_market_sell_sweeps_down_to_the_collar_low(venue):
    venue.book("""
        BUY #1 20 @ 95
        BUY #2 20 @ 90
    """)
    venue.expect(venue.sell(30, order_type="MARKET"), events="""
        ACCEPTED #3 SELL MARKET GTC 30
        TRADE #1 x #3 20 @ 95
        LEVEL BUY 0 @ 95 (0)
        TRADE #2 x #3 10 @ 90
        LEVEL BUY 10 @ 90
    """, book="""
        BUY #2 10 @ 90
    """)
    assert venue.position(1)["open_sell"] == 0


def test_market_order_ignores_liquidity_outside_the_collar_around_the_last_trade(venue):
    """After a trade at 90 the collar is 81..99: a market buy does not reach the ask at 101
    (entered while the market was 100) and never rests."""
    venue.book("""
        SELL #1 10 @ 90
        SELL #2 50 @ 95
        SELL #3 50 @ 101
    """)
    venue.run(venue.buy(10, 90))          # #4 trades at 90: the market is now 90
    venue.expect(venue.buy(200, order_type="MARKET"), events="""
        ACCEPTED #5 BUY MARKET GTC 200
        TRADE #2 x #5 50 @ 95
        LEVEL SELL 0 @ 95 (0)
        CANCELLED #5 MARKET_REMAINDER 150
    """, book="""
        SELL #3 50 @ 101
    """)


def test_market_order_on_an_empty_book_is_cancelled_at_once(venue):
    venue.expect(venue.sell(10, order_type="MARKET", tif="DAY"), events="""
        ACCEPTED #1 SELL MARKET DAY 10
        CANCELLED #1 MARKET_REMAINDER 10
    """, book="")
    assert venue.position(1)["open_sell"] == 0


def test_market_fok_not_fillable_inside_the_collar_trades_nothing(venue):
    venue.book("""
        SELL #1 50 @ 105
        SELL #2 50 @ 110
    """)
    venue.expect(venue.buy(101, order_type="MARKET", tif="FOK"), events="""
        ACCEPTED #3 BUY MARKET FOK 101
        CANCELLED #3 FOK_NOT_FILLABLE 101
    """, book="""
        SELL #2 50 @ 110
        SELL #1 50 @ 105
    """)
    assert venue.account(2) == {"cash": 1_000_000, "reserved": 0}


def test_market_fok_that_can_fill_fills_completely(venue):
    venue.book("""
        SELL #1 50 @ 105
        SELL #2 50 @ 110
    """)
    venue.expect(venue.buy(100, order_type="MARKET", tif="FOK"), events="""
        ACCEPTED #3 BUY MARKET FOK 100
        TRADE #1 x #3 50 @ 105
        LEVEL SELL 0 @ 105 (0)
        TRADE #2 x #3 50 @ 110
        LEVEL SELL 0 @ 110 (0)
    """, book="")


def test_market_ioc_behaves_like_a_market_order(venue):
    venue.book("""
        BUY #1 20 @ 99
    """)
    venue.expect(venue.sell(30, order_type="MARKET", tif="IOC"), events="""
        ACCEPTED #2 SELL MARKET IOC 30
        TRADE #1 x #2 20 @ 99
        LEVEL BUY 0 @ 99 (0)
        CANCELLED #2 MARKET_REMAINDER 10
    """, book="")


# ---------------------------------------------------------------------------------- LIMIT
@pytest.mark.parametrize("tif", ["DAY", "GTC"])
def test_limit_day_and_gtc_rest(venue, tif):
    venue.expect(venue.buy(10, 99, tif=tif), events=f"""
        ACCEPTED #1 BUY LIMIT {tif} 10 @ 99
        LEVEL BUY 10 @ 99
    """, book="""
        BUY #1 10 @ 99
    """)
    state = venue.engine.canonical_state()
    assert state.orders["time_in_force"].tolist() == [{"DAY": 1, "GTC": 2}[tif]]


def test_limit_ioc_fills_what_it_can_and_cancels_the_rest(venue):
    venue.book("""
        SELL #1 30 @ 101
        SELL #2 30 @ 103
    """)
    venue.expect(venue.buy(50, 102, tif="IOC"), events="""
        ACCEPTED #3 BUY LIMIT IOC 50 @ 102
        TRADE #1 x #3 30 @ 101
        LEVEL SELL 0 @ 101 (0)
        CANCELLED #3 IOC_REMAINDER 20
    """, book="""
        SELL #2 30 @ 103
    """)
    assert venue.account(2) == {"cash": 1_000_000 - 3_030, "reserved": 0}
    assert venue.position(2)["open_buy"] == 0


def test_limit_ioc_that_cannot_trade_is_cancelled_whole(venue):
    venue.book("""
        SELL #1 30 @ 101
    """)
    venue.expect(venue.buy(50, 100, tif="IOC"), events="""
        ACCEPTED #2 BUY LIMIT IOC 50 @ 100
        CANCELLED #2 IOC_REMAINDER 50
    """, book="""
        SELL #1 30 @ 101
    """)


def test_limit_ioc_filled_completely_has_no_cancel(venue):
    venue.book("""
        BUY #1 30 @ 99
    """)
    venue.expect(venue.sell(30, 99, tif="IOC"), events="""
        ACCEPTED #2 SELL LIMIT IOC 30 @ 99
        TRADE #1 x #2 30 @ 99
        LEVEL BUY 0 @ 99 (0)
    """, book="")


@pytest.mark.parametrize("qty, limit", [
    (81, 102),   # 80 available up to 102
    (60, 101),   # 130 on the book, but only 50 at or below 101
])
def test_limit_fok_not_fillable_trades_nothing(venue, qty, limit):
    venue.book("""
        SELL #1 50 @ 101
        SELL #2 30 @ 102
        SELL #3 50 @ 103
    """)
    venue.expect(venue.buy(qty, limit, tif="FOK"), events=f"""
        ACCEPTED #4 BUY LIMIT FOK {qty} @ {limit}
        CANCELLED #4 FOK_NOT_FILLABLE {qty}
    """, book="""
        SELL #3 50 @ 103
        SELL #2 30 @ 102
        SELL #1 50 @ 101
    """)
    assert venue.account(2) == {"cash": 1_000_000, "reserved": 0}
    assert venue.engine.canonical_state().header["next_trade_id"][0] == 1


def test_limit_fok_fills_across_levels(venue):
    venue.book("""
        SELL #1 50 @ 101
        SELL #2 30 @ 102
        SELL #3 50 @ 103
    """)
    venue.expect(venue.buy(80, 102, tif="FOK"), events="""
        ACCEPTED #4 BUY LIMIT FOK 80 @ 102
        TRADE #1 x #4 50 @ 101
        LEVEL SELL 0 @ 101 (0)
        TRADE #2 x #4 30 @ 102
        LEVEL SELL 0 @ 102 (0)
    """, book="""
        SELL #3 50 @ 103
    """)


def test_sell_fok_fills_exactly_the_bids_available(venue):
    venue.book("""
        BUY #1 10 @ 99
        BUY #2 10 @ 99
        BUY #3 10 @ 98
    """)
    venue.expect(venue.sell(25, 98, tif="FOK"), events="""
        ACCEPTED #4 SELL LIMIT FOK 25 @ 98
        TRADE #1 x #4 10 @ 99
        TRADE #2 x #4 10 @ 99
        LEVEL BUY 0 @ 99 (0)
        TRADE #3 x #4 5 @ 98
        LEVEL BUY 5 @ 98
    """, book="""
        BUY #3 5 @ 98
    """)


# ---------------------------------------------------------------------------------- stops
def test_stop_order_waits_dormant(venue):
    venue.expect(venue.buy(10, by=3, order_type="STOP", stop=105), events="""
        ACCEPTED #1 BUY STOP GTC 10 stop 105
    """, book="""
        STOP BUY #1 10 stop 105
    """)
    # a stop buy reserves against the collar around its stop: 105 + 10 = 115
    assert venue.account(3) == {"cash": 1_000_000, "reserved": 1_150}
    assert venue.position(3)["open_buy"] == 10


def test_stop_limit_order_waits_dormant(venue):
    venue.expect(venue.sell(10, 94, order_type="STOP_LIMIT", stop=95, tif="DAY"), events="""
        ACCEPTED #1 SELL STOP_LIMIT DAY 10 @ 94 stop 95
    """, book="""
        STOP_LIMIT SELL #1 10 stop 95 @ 94
    """)
    assert venue.position(1)["open_sell"] == 10


def test_dormant_stops_do_not_show_in_the_price_levels(venue):
    venue.book("""
        SELL #1 10 @ 101
        BUY #2 10 @ 99
    """)
    venue.run(venue.buy(10, by=3, order_type="STOP", stop=105))
    venue.run(venue.sell(10, 98, order_type="STOP_LIMIT", stop=97))
    assert venue.book_lines() == [
        "SELL #1 10 @ 101",
        "BUY #2 10 @ 99",
        "STOP BUY #3 10 stop 105",
        "STOP_LIMIT SELL #4 10 stop 97 @ 98",
    ]


@pytest.mark.parametrize("side, stop", [("sell", 97), ("buy", 103)])
def test_trailing_stop_entry_sets_its_stop_from_the_market(venue, side, stop):
    """A trailing stop's initial stop is the market price (the reference 100 before any
    trade) minus (sell) or plus (buy) trail_ticks x tick."""
    order = getattr(venue, side)(10, by=3, order_type="TRAILING_STOP", trail=3)
    name = side.upper()
    venue.expect(order, events=f"""
        ACCEPTED #1 {name} TRAILING_STOP GTC 10 stop {stop} trail 3
    """, book=f"""
        TRAILING_STOP {name} #1 10 stop {stop}
    """)


def test_trailing_stop_entry_uses_the_last_trade_price(venue):
    venue.book("""
        SELL #1 10 @ 104
    """)
    venue.run(venue.buy(10, 104))         # market 104
    venue.expect(venue.sell(10, order_type="TRAILING_STOP", trail=5), events="""
        ACCEPTED #3 SELL TRAILING_STOP GTC 10 stop 99 trail 5
    """, book="""
        TRAILING_STOP SELL #3 10 stop 99
    """)


def test_trailing_stop_buy_reserves_against_the_collar_around_its_initial_stop(venue):
    venue.run(venue.buy(10, by=3, order_type="TRAILING_STOP", trail=3))
    # stop 103, collar high 103 + 10 = 113
    assert venue.account(3) == {"cash": 1_000_000, "reserved": 1_130}


@pytest.mark.parametrize("order_type", ["STOP", "STOP_LIMIT", "TRAILING_STOP"])
@pytest.mark.parametrize("tif", ["IOC", "FOK"])
def test_stop_orders_cannot_be_ioc_or_fok(venue, order_type, tif):
    price = 101 if order_type == "STOP_LIMIT" else 0
    stop = 0 if order_type == "TRAILING_STOP" else 105
    trail = 2 if order_type == "TRAILING_STOP" else 0
    venue.book("""
        SELL #1 10 @ 105
    """)
    before = venue.engine.canonical_state()
    venue.expect(venue.buy(10, price, tif=tif, order_type=order_type, stop=stop, trail=trail),
                 events="""
        REJECTED NEW_ORDER TIME_IN_FORCE_NOT_ALLOWED
    """, book="""
        SELL #1 10 @ 105
    """)
    after = venue.engine.canonical_state()
    assert after.orders.tobytes() == before.orders.tobytes()
    assert after.accounts.tobytes() == before.accounts.tobytes()


@pytest.mark.parametrize("tif", ["DAY", "GTC"])
@pytest.mark.parametrize("order_type", ["STOP", "STOP_LIMIT", "TRAILING_STOP"])
def test_stop_orders_accept_day_and_gtc(venue, order_type, tif):
    price = 101 if order_type == "STOP_LIMIT" else 0
    stop = 0 if order_type == "TRAILING_STOP" else 105
    trail = 2 if order_type == "TRAILING_STOP" else 0
    events = venue.run(venue.buy(10, price, tif=tif, order_type=order_type, stop=stop,
                                 trail=trail, by=3))
    assert len(events) == 1
    assert events[0].startswith(f"ACCEPTED #1 BUY {order_type} {tif} 10")


def test_rejected_order_takes_no_order_id(venue):
    venue.expect(venue.buy(10, 111), events="""
        REJECTED NEW_ORDER PRICE_OUTSIDE_COLLAR
    """)
    venue.expect(venue.buy(10, 99), events="""
        ACCEPTED #1 BUY LIMIT GTC 10 @ 99
        LEVEL BUY 10 @ 99
    """)


def test_accepted_event_echoes_the_client_order_id(venue):
    events = venue.process(C.new_order(2, ACME, 1, 10, 99, client_order_id=4242))
    assert [int(e["client_order_id"]) for e in events] == [4242, 0]
    assert int(events[0]["order_id"]) == 1
