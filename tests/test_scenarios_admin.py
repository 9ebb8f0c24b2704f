"""Administration: end of day, duplicate client order ids, halt/resume, mass cancel, cash and
securities movements, reference data, and full tables."""
import numpy as np
import pytest

from core import commands as C
from core.config import Capacities
from core.enums import AccountType, Side
from core.integers import MAX_CASH

from .venue import ACME, Venue

BETA = 1


def add_beta(venue):
    assert venue.run(C.add_instrument(BETA, "BETA", tick_size=1, lot_size=1,
                                      reference_price=50)) == ["INSTRUMENT 1 BETA"]


def beta_buy(venue, qty, price, by=2, **kw):
    return C.new_order(by, BETA, Side.BUY, qty, price, client_order_id=venue.next_client_id(),
                       **kw)


# ------------------------------------------------------------------------------ END_OF_DAY
def test_end_of_day_expires_day_orders_in_order_id_order_and_keeps_gtc(venue):
    venue.book("""
        SELL #1 10 @ 104 DAY
        BUY  #2 20 @ 99 DAY
        BUY  #3 30 @ 99 GTC
        SELL #4 40 @ 103 GTC
    """)
    venue.run(venue.buy(5, by=3, order_type="STOP", stop=105, tif="DAY"))        # #5
    venue.run(venue.sell(5, order_type="STOP", stop=95, tif="GTC"))              # #6
    venue.run(venue.sell(5, 94, order_type="STOP_LIMIT", stop=95, tif="DAY"))    # #7
    venue.book("""
        BUY #8 40 @ 99 DAY
    """)
    venue.expect(C.end_of_day(), events="""
        EXPIRED #1 10
        LEVEL SELL 0 @ 104 (0)
        EXPIRED #2 20
        LEVEL BUY 70 @ 99 (2)
        EXPIRED #5 5
        EXPIRED #7 5
        EXPIRED #8 40
        LEVEL BUY 30 @ 99
        DAY_ENDED 1 expired 5
    """, book="""
        SELL #4 40 @ 103
        BUY #3 30 @ 99
        STOP SELL #6 5 stop 95
    """)
    assert venue.account(2) == {"cash": 1_000_000, "reserved": 30 * 99}
    assert venue.account(3) == {"cash": 1_000_000, "reserved": 0}
    assert venue.position(1)["open_sell"] == 40 + 5
    assert venue.engine.canonical_state().header["day"][0] == 1


def test_end_of_day_reports_what_was_left_of_a_partly_filled_order(venue):
    venue.book("""
        BUY #1 50 @ 99 DAY
    """)
    venue.run(venue.sell(20, 99))
    events = venue.process(C.end_of_day())
    assert [(int(e["order_id"]), int(e["leaves_quantity"]), int(e["cum_quantity"]))
            for e in events[:1]] == [(1, 30, 20)]
    assert venue.run(C.end_of_day()) == ["DAY_ENDED 2 expired 0"]


def test_client_order_id_of_a_closed_order_can_be_reused_after_end_of_day(venue):
    venue.run(venue.buy(10, 99, client_order_id=501))                  # #1 GTC, stays live
    venue.run(venue.buy(10, 98, client_order_id=502, tif="DAY"))      # #2 expires
    venue.run(venue.buy(10, 97, client_order_id=503))                  # #3 cancelled
    venue.run(C.cancel(2, 3))
    venue.run(venue.buy(10, 111, client_order_id=504))                 # rejected
    # the same day, every one of them is a duplicate
    for cid in (501, 502, 503, 504):
        assert venue.run(venue.buy(1, 95, client_order_id=cid))[0].startswith("DUPLICATE")
    venue.run(C.end_of_day())
    venue.expect(venue.buy(1, 95, client_order_id=501), events="""
        DUPLICATE #1 live 10
    """)
    venue.expect(venue.buy(1, 95, client_order_id=502), events="""
        ACCEPTED #4 BUY LIMIT GTC 1 @ 95
        LEVEL BUY 1 @ 95
    """)
    venue.expect(venue.buy(1, 95, client_order_id=503), events="""
        ACCEPTED #5 BUY LIMIT GTC 1 @ 95
        LEVEL BUY 2 @ 95 (2)
    """)
    venue.expect(venue.buy(1, 95, client_order_id=504), events="""
        ACCEPTED #6 BUY LIMIT GTC 1 @ 95
        LEVEL BUY 3 @ 95 (3)
    """)


def test_duplicate_of_an_accepted_live_order(venue):
    venue.run(venue.buy(50, 99, client_order_id=700))                  # #1
    venue.run(venue.sell(20, 99))
    before = venue.engine.canonical_state()
    events = venue.process(venue.sell(5, 101, client_order_id=700, by=2))
    assert len(events) == 1
    e = events[0]
    assert (int(e["order_id"]), int(e["code"]), int(e["live"]), int(e["leaves_quantity"]),
            int(e["cum_quantity"]), int(e["account"]), int(e["client_order_id"])) \
        == (1, 0, 1, 30, 20, 2, 700)
    after = venue.engine.canonical_state()
    for table in ("orders", "accounts", "positions", "client_order_ids"):
        assert np.array_equal(getattr(before, table), getattr(after, table)), table


def test_duplicate_of_a_filled_order(venue):
    venue.run(venue.buy(50, 99, client_order_id=700))
    venue.run(venue.sell(50, 99))
    venue.expect(venue.buy(50, 99, client_order_id=700), events="""
        DUPLICATE #1
    """, book="")


def test_duplicate_of_a_rejected_order_repeats_the_rejection(venue):
    venue.run(venue.buy(50, 120, client_order_id=700))
    # even a now perfectly valid order is answered with the original outcome
    venue.expect(venue.buy(50, 99, client_order_id=700), events="""
        DUPLICATE PRICE_OUTSIDE_COLLAR
    """, book="")
    events = venue.process(venue.buy(50, 99, client_order_id=700))
    assert (int(events[0]["order_id"]), int(events[0]["code"]), int(events[0]["live"])) \
        == (0, 202, 0)


def test_duplicate_is_per_account(venue):
    venue.run(venue.buy(50, 99, client_order_id=700, by=2))
    assert venue.run(venue.buy(50, 98, client_order_id=700, by=3)) == [
        "ACCEPTED #2 BUY LIMIT GTC 50 @ 98", "LEVEL BUY 50 @ 98"]


# ------------------------------------------------------------------------------ halt / resume
def test_halt_and_resume(venue):
    venue.book("""
        SELL #1 10 @ 101
        BUY #2 10 @ 99
    """)
    venue.expect(C.halt(ACME), events="INSTRUMENT 0 HALTED")
    venue.expect(venue.buy(10, 101), events="REJECTED NEW_ORDER INSTRUMENT_HALTED")
    venue.expect(C.modify(2, 2, quantity=10, price=101),
                 events="REJECTED MODIFY INSTRUMENT_HALTED")
    # the book stays; cancels still work while halted
    venue.expect(C.cancel(2, 2), events="""
        CANCELLED #2 CANCELLED_BY_CLIENT 10
        LEVEL BUY 0 @ 99 (0)
    """, book="""
        SELL #1 10 @ 101
    """)
    venue.expect(C.resume(ACME), events="INSTRUMENT 0 TRADING")
    venue.expect(venue.buy(10, 101), events="""
        ACCEPTED #3 BUY LIMIT GTC 10 @ 101
        TRADE #1 x #3 10 @ 101
        LEVEL SELL 0 @ 101 (0)
    """, book="")


def test_halt_of_one_instrument_leaves_the_other_trading(venue):
    add_beta(venue)
    venue.run(C.halt(ACME))
    assert venue.run(beta_buy(venue, 10, 50)) == ["ACCEPTED #1 BUY LIMIT GTC 10 @ 50",
                                                  "LEVEL BUY 10 @ 50"]


# ------------------------------------------------------------------------------ mass cancel
def test_mass_cancel_of_an_account(venue):
    venue.book("""
        SELL #1 10 @ 101 by 1
        BUY  #2 20 @ 99 by 2
        BUY  #3 30 @ 98 by 2
        BUY  #4 40 @ 99 by 3
    """)
    venue.run(venue.buy(5, by=2, order_type="STOP", stop=105))        # #5
    venue.expect(C.mass_cancel(2), events="""
        CANCELLED #2 CANCELLED_BY_MASS_CANCEL 20
        LEVEL BUY 40 @ 99
        CANCELLED #3 CANCELLED_BY_MASS_CANCEL 30
        LEVEL BUY 0 @ 98 (0)
        CANCELLED #5 CANCELLED_BY_MASS_CANCEL 5
        MASS_CANCELLED 3
    """, book="""
        SELL #1 10 @ 101
        BUY #4 40 @ 99
    """)
    assert venue.account(2) == {"cash": 1_000_000, "reserved": 0}
    assert venue.position(2)["open_buy"] == 0
    venue.expect(C.mass_cancel(2), events="MASS_CANCELLED 0")


def test_mass_cancel_of_an_account_and_instrument(venue):
    add_beta(venue)
    venue.book("""
        BUY #1 20 @ 99
    """)
    venue.run(beta_buy(venue, 10, 50))                                  # #2
    venue.run(beta_buy(venue, 10, 49))                                  # #3
    venue.run(beta_buy(venue, 10, 48, by=3))                            # #4
    venue.book("""
        BUY #5 20 @ 98
    """)
    venue.expect(C.mass_cancel(2, BETA), events="""
        CANCELLED #2 CANCELLED_BY_MASS_CANCEL 10
        LEVEL BUY 0 @ 50 (0)
        CANCELLED #3 CANCELLED_BY_MASS_CANCEL 10
        LEVEL BUY 0 @ 49 (0)
        MASS_CANCELLED 2
    """, book="""
        BUY #1 20 @ 99
        BUY #5 20 @ 98
    """)
    assert [int(o["order_id"]) for o in venue.engine.canonical_state().orders] == [1, 4, 5]
    assert venue.account(2) == {"cash": 1_000_000, "reserved": 20 * 99 + 20 * 98}
    m = venue.process(C.mass_cancel(2, BETA))[0]
    assert (int(m["account"]), int(m["instrument"]), int(m["order_count"])) == (2, BETA, 0)


def test_mass_cancel_of_thousands_of_orders_in_one_command(engine_name):
    """One command may produce far more events than any fixed buffer guess (here 5001)."""
    caps = Capacities(instruments=2, accounts=5, orders=3_000, positions=8,
                      client_order_ids=3_000)
    venue = Venue(engine_name, capacities=caps)
    venue.run(C.add_instrument(BETA, "BETA", tick_size=1, lot_size=1, reference_price=100_000))
    venue.process(*[C.new_order(3, BETA, Side.SELL, 1, 100_000 + i, client_order_id=1 + i)
                    for i in range(2_500)])
    events = venue.run(C.mass_cancel(3))
    assert len(events) == 5_001
    assert events[:4] == ["CANCELLED #1 CANCELLED_BY_MASS_CANCEL 1", "LEVEL SELL 0 @ 100000 (0)",
                          "CANCELLED #2 CANCELLED_BY_MASS_CANCEL 1", "LEVEL SELL 0 @ 100001 (0)"]
    assert events[-3:] == ["CANCELLED #2500 CANCELLED_BY_MASS_CANCEL 1",
                           "LEVEL SELL 0 @ 102499 (0)", "MASS_CANCELLED 2500"]
    assert venue.engine.canonical_state().orders.size == 0


def test_mass_cancel_rejections(venue):
    venue.expect(C.mass_cancel(7), events="REJECTED MASS_CANCEL UNKNOWN_ACCOUNT")
    venue.expect(C.mass_cancel(2, 3), events="REJECTED MASS_CANCEL UNKNOWN_INSTRUMENT")


# ------------------------------------------------------------------------------ cash
def test_cash_deposit_and_withdrawal(venue):
    venue.expect(C.deposit_cash(4, 500), events="CASH account 4 +500 = 1500")
    venue.expect(C.withdraw_cash(4, 300), events="CASH account 4 -300 = 1200")
    venue.expect(C.withdraw_cash(4, 1_200), events="CASH account 4 -1200 = 0")
    venue.expect(C.withdraw_cash(4, 1), events="REJECTED WITHDRAW_CASH INSUFFICIENT_FUNDS")
    header = venue.engine.canonical_state().header[0]
    assert int(header["cash_deposited"]) == 3_001_500
    assert int(header["cash_withdrawn"]) == 1_500


def test_reserved_cash_cannot_be_withdrawn(venue):
    venue.run(venue.buy(9, 100, by=4))                                  # reserves 900
    venue.expect(C.withdraw_cash(4, 101), events="REJECTED WITHDRAW_CASH INSUFFICIENT_FUNDS")
    venue.expect(C.withdraw_cash(4, 100), events="CASH account 4 -100 = 900")
    assert venue.account(4) == {"cash": 900, "reserved": 900}


def test_cash_limit_exceeded(venue):
    """The venue's net deposits may not pass MAX_CASH (3,001,000 are already in)."""
    room = MAX_CASH - 3_001_000
    venue.expect(C.deposit_cash(3, room + 1), events="REJECTED DEPOSIT_CASH CASH_LIMIT_EXCEEDED")
    venue.expect(C.deposit_cash(3, room), events=f"CASH account 3 +{room} = {room + 1_000_000}")
    venue.expect(C.deposit_cash(4, 1), events="REJECTED DEPOSIT_CASH CASH_LIMIT_EXCEEDED")
    venue.expect(C.withdraw_cash(4, 10), events="CASH account 4 -10 = 990")
    venue.expect(C.deposit_cash(4, 10), events="CASH account 4 +10 = 1000")


# ------------------------------------------------------------------------------ securities
def test_securities_deposit_and_withdrawal(venue):
    venue.expect(C.deposit_position(3, ACME, 100, 9_000),
                 events="UNITS account 3 instrument 0 +100 = 100")
    assert venue.position(3)["cost_basis"] == 9_000
    venue.expect(C.withdraw_position(3, ACME, 40), events="UNITS account 3 instrument 0 -40 = 60")
    assert venue.position(3)["cost_basis"] == 5_400
    units = venue.engine.canonical_state().instruments[0]["units_deposited"]
    assert units == 2_060


def test_securities_withdrawal_of_units_promised_to_a_sell(venue):
    venue.run(venue.sell(900, 101))
    venue.expect(C.withdraw_position(1, ACME, 101),
                 events="REJECTED WITHDRAW_POSITION INSUFFICIENT_POSITION")
    venue.expect(C.withdraw_position(1, ACME, 100),
                 events="UNITS account 1 instrument 0 -100 = 900")
    venue.expect(C.withdraw_position(4, ACME, 1),
                 events="REJECTED WITHDRAW_POSITION INSUFFICIENT_POSITION")


def test_securities_cannot_be_deposited_onto_a_short_position(venue):
    venue.book("""
        BUY #1 50 @ 99
    """)
    venue.run(venue.sell(50, 99, by=3))                                 # 3 is short 50
    assert venue.position(3)["quantity"] == -50
    venue.expect(C.deposit_position(3, ACME, 100),
                 events="REJECTED DEPOSIT_POSITION POSITION_IS_SHORT")
    assert venue.position(3)["quantity"] == -50


# ------------------------------------------------------------------------------ reference data
def test_add_instrument_and_account(venue):
    venue.expect(C.add_instrument(3, "ZED.B", tick_size=5, lot_size=10, reference_price=200,
                                  collar_bps=500, maker_fee_bps=1_000, taker_fee_bps=0),
                 events="INSTRUMENT 3 ZED.B")
    row = venue.engine.canonical_state().instruments[-1]
    assert (int(row["instrument"]), int(row["tick_size"]), int(row["lot_size"]),
            int(row["reference_price"]), int(row["collar_bps"]), int(row["maker_fee_bps"]),
            int(row["last_price"])) == (3, 5, 10, 200, 500, 1_000, 0)
    venue.expect(C.add_account(0, AccountType.MARGIN), events="ACCOUNT 0 MARGIN")
    venue.expect(C.add_account(7), events="ACCOUNT 7 CASH")


INSTRUMENT_OK = dict(tick_size=1, lot_size=1, reference_price=100, collar_bps=1000,
                     maker_fee_bps=0, taker_fee_bps=0)


@pytest.mark.parametrize("instrument, symbol, changes, code", [
    (0, "NEW", {}, "INSTRUMENT_EXISTS"),
    (1, "ACME", {}, "DUPLICATE_SYMBOL"),
    (1, "", {}, "INVALID_SYMBOL"),
    (1, "A B", {}, "INVALID_SYMBOL"),
    (1, "A\x01", {}, "INVALID_SYMBOL"),
    (1, b"A\0B", {}, "INVALID_SYMBOL"),
    (1, b"\xe9T", {}, "INVALID_SYMBOL"),
    (1, "NEW", {"tick_size": 0}, "INVALID_TICK_SIZE"),
    (1, "NEW", {"tick_size": -5}, "INVALID_TICK_SIZE"),
    (1, "NEW", {"tick_size": 2**32}, "INVALID_TICK_SIZE"),
    (1, "NEW", {"lot_size": 0}, "INVALID_LOT_SIZE"),
    (1, "NEW", {"lot_size": 2**30}, "INVALID_LOT_SIZE"),
    (1, "NEW", {"reference_price": 0}, "INVALID_REFERENCE_PRICE"),
    (1, "NEW", {"reference_price": -100}, "INVALID_REFERENCE_PRICE"),
    (1, "NEW", {"reference_price": 2**32}, "INVALID_REFERENCE_PRICE"),
    (1, "NEW", {"tick_size": 5, "reference_price": 101}, "INVALID_REFERENCE_PRICE"),
    (1, "NEW", {"collar_bps": 0}, "INVALID_COLLAR"),
    (1, "NEW", {"collar_bps": 10_001}, "INVALID_COLLAR"),
    (1, "NEW", {"maker_fee_bps": -1}, "INVALID_FEE"),
    (1, "NEW", {"taker_fee_bps": 1_001}, "INVALID_FEE"),
    (1, "NEW", {"asset_class": 0}, "INVALID_ASSET_CLASS"),
    (1, "NEW", {"asset_class": 5}, "INVALID_ASSET_CLASS"),
    (-1, "NEW", {}, "INVALID_ID"),
    (4, "NEW", {}, "INSTRUMENT_TABLE_FULL"),
    (2**31 - 1, "NEW", {}, "INSTRUMENT_TABLE_FULL"),
])
def test_add_instrument_rejections(venue, instrument, symbol, changes, code):
    before = venue.engine.canonical_state()
    fields = {**INSTRUMENT_OK, **changes}
    venue.expect(C.add_instrument(instrument, symbol, **fields),
                 events=f"REJECTED ADD_INSTRUMENT {code}")
    assert np.array_equal(before.instruments, venue.engine.canonical_state().instruments)


@pytest.mark.parametrize("account, account_type, code", [
    (1, AccountType.CASH, "ACCOUNT_EXISTS"),
    (4, AccountType.MARGIN, "ACCOUNT_EXISTS"),
    (5, 0, "INVALID_ACCOUNT_TYPE"),
    (5, 3, "INVALID_ACCOUNT_TYPE"),
    (-1, AccountType.CASH, "INVALID_ID"),
    (8, AccountType.CASH, "ACCOUNT_TABLE_FULL"),
    (2**31 - 1, AccountType.CASH, "ACCOUNT_TABLE_FULL"),
])
def test_add_account_rejections(venue, account, account_type, code):
    before = venue.engine.canonical_state()
    venue.expect(C.add_account(account, account_type), events=f"REJECTED ADD_ACCOUNT {code}")
    assert np.array_equal(before.accounts, venue.engine.canonical_state().accounts)


# ------------------------------------------------------------------------------ capacities
def small(engine_name, **caps):
    base = dict(instruments=2, accounts=5, orders=64, positions=32, client_order_ids=256)
    return Venue(engine_name, capacities=Capacities(**{**base, **caps}))


def test_order_table_full(engine_name):
    venue = small(engine_name, orders=2)
    venue.book("""
        SELL #1 10 @ 101
        BUY #2 10 @ 99
    """)
    # even an order that would fill at once needs a row while it matches
    venue.expect(venue.buy(10, 101), events="REJECTED NEW_ORDER ORDER_TABLE_FULL",
                 book="""
        SELL #1 10 @ 101
        BUY #2 10 @ 99
    """)
    venue.run(C.cancel(2, 2))
    venue.expect(venue.buy(10, 101), events="""
        ACCEPTED #3 BUY LIMIT GTC 10 @ 101
        TRADE #1 x #3 10 @ 101
        LEVEL SELL 0 @ 101 (0)
    """)


def test_position_table_full(engine_name):
    venue = small(engine_name, positions=2)          # accounts 1 and 2 hold ACME
    venue.expect(venue.buy(10, 99, by=3), events="REJECTED NEW_ORDER POSITION_TABLE_FULL")
    venue.expect(C.deposit_position(3, ACME, 10), events="""
        REJECTED DEPOSIT_POSITION POSITION_TABLE_FULL
    """)
    venue.expect(C.set_position_limit(3, ACME, 10),
                 events="REJECTED SET_POSITION_LIMIT POSITION_TABLE_FULL")
    # existing positions still work
    venue.expect(venue.buy(10, 99, by=2), events="""
        ACCEPTED #1 BUY LIMIT GTC 10 @ 99
        LEVEL BUY 10 @ 99
    """)
    assert len(venue.engine.canonical_state().positions) == 2


def test_client_order_id_table_full(engine_name):
    venue = small(engine_name, client_order_ids=2)
    venue.run(venue.buy(10, 99, client_order_id=1))
    venue.run(venue.buy(10, 120, client_order_id=2))                    # rejected, still kept
    venue.expect(venue.buy(10, 98, client_order_id=3),
                 events="REJECTED NEW_ORDER CLIENT_ORDER_ID_TABLE_FULL")
    # a duplicate is still answered
    venue.expect(venue.buy(10, 98, client_order_id=2), events="DUPLICATE PRICE_OUTSIDE_COLLAR")
    assert len(venue.engine.canonical_state().client_order_ids) == 2
    # the end of day forgets the ids of orders no longer live
    venue.run(C.end_of_day())
    venue.expect(venue.buy(10, 98, client_order_id=3), events="""
        ACCEPTED #2 BUY LIMIT GTC 10 @ 98
        LEVEL BUY 10 @ 98
    """)


def test_book_full_remainder(engine_name):
    venue = small(engine_name, price_levels=2)
    venue.book("""
        SELL #1 10 @ 101
        BUY #2 10 @ 99
        BUY #3 10 @ 99
    """)
    venue.expect(venue.buy(10, 98), events="""
        ACCEPTED #4 BUY LIMIT GTC 10 @ 98
        CANCELLED #4 BOOK_FULL_REMAINDER 10
    """, book="""
        SELL #1 10 @ 101
        BUY #2 10 @ 99
        BUY #3 10 @ 99
    """)
    assert venue.account(2) == {"cash": 1_000_000, "reserved": 20 * 99}
    # trading first and then needing a new level: the traded part stands
    venue.expect(venue.buy(15, 102), events="""
        ACCEPTED #5 BUY LIMIT GTC 15 @ 102
        TRADE #1 x #5 10 @ 101
        LEVEL SELL 0 @ 101 (0)
        LEVEL BUY 5 @ 102
    """)
    venue.expect(venue.sell(5, 103), events="""
        ACCEPTED #6 SELL LIMIT GTC 5 @ 103
        CANCELLED #6 BOOK_FULL_REMAINDER 5
    """)
