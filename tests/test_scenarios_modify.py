"""MODIFY: priority rules, marketable modifies, ending an order, dormant stops, references.

``quantity`` in a modify is the new *total* (filled + open), as in FIX. An order keeps its
queue priority only when its price (and stop) are unchanged and its open quantity does not
grow; otherwise it leaves its queue and joins again at the back (and may trade at once).
"""
import pytest

from core import commands as C


def test_reducing_quantity_at_the_same_price_keeps_priority(venue):
    venue.book("""
        BUY #1 50 @ 99
        BUY #2 30 @ 99
    """)
    venue.expect(C.modify(2, 1, quantity=20, price=99), events="""
        REPLACED #1 20 @ 99 keeps priority
        LEVEL BUY 50 @ 99 (2)
    """, book="""
        BUY #1 20 @ 99
        BUY #2 30 @ 99
    """)
    assert venue.account(2) == {"cash": 1_000_000, "reserved": 50 * 99}
    assert venue.position(2)["open_buy"] == 50


def test_same_quantity_same_price_keeps_priority(venue):
    venue.book("""
        SELL #1 50 @ 101
        SELL #2 30 @ 101
    """)
    venue.expect(C.modify(1, 1, quantity=50, price=101), events="""
        REPLACED #1 50 @ 101 keeps priority
        LEVEL SELL 80 @ 101 (2)
    """, book="""
        SELL #1 50 @ 101
        SELL #2 30 @ 101
    """)


def test_raising_quantity_loses_priority(venue):
    venue.book("""
        BUY #1 50 @ 99
        BUY #2 30 @ 99
    """)
    venue.expect(C.modify(2, 1, quantity=60, price=99), events="""
        REPLACED #1 60 @ 99
        LEVEL BUY 30 @ 99
        LEVEL BUY 90 @ 99 (2)
    """, book="""
        BUY #2 30 @ 99
        BUY #1 60 @ 99
    """)
    assert venue.account(2) == {"cash": 1_000_000, "reserved": 90 * 99}
    assert venue.position(2)["open_buy"] == 90


def test_changing_price_loses_priority_even_when_moving_back(venue):
    venue.book("""
        SELL #1 50 @ 101
        SELL #2 30 @ 101
    """)
    venue.expect(C.modify(1, 1, quantity=50, price=102), events="""
        REPLACED #1 50 @ 102
        LEVEL SELL 30 @ 101
        LEVEL SELL 50 @ 102
    """, book="""
        SELL #1 50 @ 102
        SELL #2 30 @ 101
    """)
    venue.expect(C.modify(1, 1, quantity=40, price=101), events="""
        REPLACED #1 40 @ 101
        LEVEL SELL 0 @ 102 (0)
        LEVEL SELL 70 @ 101 (2)
    """, book="""
        SELL #2 30 @ 101
        SELL #1 40 @ 101
    """)


def test_priority_kept_is_seen_by_the_next_aggressor(venue):
    venue.book("""
        BUY #1 50 @ 99
        BUY #2 30 @ 99
        BUY #3 30 @ 99
    """)
    venue.run(C.modify(2, 1, quantity=40, price=99))    # keeps its place
    venue.run(C.modify(2, 2, quantity=35, price=99))    # loses it
    assert venue.book_lines() == ["BUY #1 40 @ 99", "BUY #3 30 @ 99", "BUY #2 35 @ 99"]
    venue.expect(venue.sell(50, 99), events="""
        ACCEPTED #4 SELL LIMIT GTC 50 @ 99
        TRADE #1 x #4 40 @ 99
        TRADE #3 x #4 10 @ 99
        LEVEL BUY 55 @ 99 (2)
    """, book="""
        BUY #3 20 @ 99
        BUY #2 35 @ 99
    """)


def test_modify_that_makes_the_order_marketable_trades_at_once(venue):
    venue.book("""
        SELL #1 20 @ 101
        SELL #2 20 @ 102
        BUY  #3 50 @ 99
    """)
    venue.expect(C.modify(2, 3, quantity=50, price=101), events="""
        REPLACED #3 50 @ 101
        LEVEL BUY 0 @ 99 (0)
        TRADE #1 x #3 20 @ 101
        LEVEL SELL 0 @ 101 (0)
        LEVEL BUY 30 @ 101
    """, book="""
        SELL #2 20 @ 102
        BUY #3 30 @ 101
    """)
    assert venue.account(2) == {"cash": 1_000_000 - 2_020, "reserved": 30 * 101}


def test_marketable_modify_triggers_stops(venue):
    venue.book("""
        SELL #1 20 @ 101
        SELL #2 20 @ 103
        BUY  #3 20 @ 99
    """)
    venue.run(venue.buy(10, by=3, order_type="STOP", stop=101))        # #4
    venue.expect(C.modify(2, 3, quantity=20, price=101), events="""
        REPLACED #3 20 @ 101
        LEVEL BUY 0 @ 99 (0)
        TRADE #1 x #3 20 @ 101
        LEVEL SELL 0 @ 101 (0)
        TRIGGERED #4 stop 101 at 101
        TRADE #2 x #4 10 @ 103
        LEVEL SELL 10 @ 103
    """, book="""
        SELL #2 10 @ 103
    """)


@pytest.mark.parametrize("total", [20, 10])
def test_modify_to_at_or_below_the_filled_quantity_ends_the_order(venue, total):
    venue.book("""
        BUY #1 50 @ 99
        BUY #2 10 @ 99
    """)
    venue.run(venue.sell(20, 99))                                       # #1: cum 20, leaves 30
    venue.expect(C.modify(2, 1, quantity=total, price=99), events=f"""
        REPLACED #1 {total} @ 99
        LEVEL BUY 10 @ 99
    """, book="""
        BUY #2 10 @ 99
    """)
    assert venue.account(2) == {"cash": 1_000_000 - 20 * 99, "reserved": 10 * 99}
    assert venue.position(2)["open_buy"] == 10
    events = venue.process(C.modify(2, 1, quantity=100, price=99))
    assert [int(e["code"]) for e in events] == [104]                    # ORDER_NOT_LIVE


def test_modify_ending_the_order_reports_leaves_zero_and_its_old_price(venue):
    venue.book("""
        SELL #1 50 @ 101
    """)
    venue.run(venue.buy(20, 101))
    events = venue.process(C.modify(1, 1, quantity=20, price=105))
    replaced = events[0]
    assert int(replaced["leaves_quantity"]) == 0
    assert int(replaced["cum_quantity"]) == 20
    assert int(replaced["quantity"]) == 20
    assert int(replaced["price"]) == 101
    assert int(replaced["priority_kept"]) == 0
    assert venue.book_lines() == []
    assert venue.position(1)["open_sell"] == 0


def test_modify_of_a_partially_filled_order_counts_the_filled_part(venue):
    """New total 40 with 20 filled leaves 20 open; the order keeps priority (leaves 30 -> 20)."""
    venue.book("""
        BUY #1 50 @ 99
        BUY #2 10 @ 99
    """)
    venue.run(venue.sell(20, 99))
    venue.expect(C.modify(2, 1, quantity=40, price=99), events="""
        REPLACED #1 40 @ 99 keeps priority
        LEVEL BUY 30 @ 99 (2)
    """, book="""
        BUY #1 20 @ 99
        BUY #2 10 @ 99
    """)


def test_modify_of_a_dormant_stop_changes_stop_and_reservation(venue):
    venue.run(venue.buy(10, by=3, order_type="STOP", stop=105))        # #1, reserve 115
    assert venue.account(3) == {"cash": 1_000_000, "reserved": 1_150}
    venue.expect(C.modify(3, 1, quantity=20, stop_price=104), events="""
        REPLACED #1 20 stop 104
    """, book="""
        STOP BUY #1 20 stop 104
    """)
    assert venue.account(3) == {"cash": 1_000_000, "reserved": 20 * 114}
    assert venue.position(3)["open_buy"] == 20


def test_modify_of_a_dormant_stop_priority_in_the_stop_list(venue):
    for stop in (105, 106, 107):
        venue.run(venue.buy(10, by=3, order_type="STOP", stop=stop))
    venue.expect(C.modify(3, 1, quantity=5, stop_price=105), events="""
        REPLACED #1 5 stop 105 keeps priority
    """, book="""
        STOP BUY #1 5 stop 105
        STOP BUY #2 10 stop 106
        STOP BUY #3 10 stop 107
    """)
    venue.expect(C.modify(3, 2, quantity=10, stop_price=108), events="""
        REPLACED #2 10 stop 108
    """, book="""
        STOP BUY #1 5 stop 105
        STOP BUY #3 10 stop 107
        STOP BUY #2 10 stop 108
    """)


def test_modify_of_a_stop_limit_changes_price_and_stop(venue):
    venue.run(venue.sell(10, 95, order_type="STOP_LIMIT", stop=96))    # #1
    venue.expect(C.modify(1, 1, quantity=10, price=93, stop_price=94), events="""
        REPLACED #1 10 @ 93 stop 94
    """, book="""
        STOP_LIMIT SELL #1 10 stop 94 @ 93
    """)


def test_modify_of_a_dormant_stop_to_a_due_stop_triggers_it(venue):
    venue.book("""
        SELL #1 10 @ 102
    """)
    venue.run(venue.buy(10, by=3, order_type="STOP", stop=105))        # #2
    venue.expect(C.modify(3, 2, quantity=10, stop_price=100), events="""
        REPLACED #2 10 stop 100
        TRIGGERED #2 stop 100 at 100
        TRADE #1 x #2 10 @ 102
        LEVEL SELL 0 @ 102 (0)
    """, book="")
    assert venue.account(3) == {"cash": 1_000_000 - 1_020, "reserved": 0}


def test_modify_of_a_trailing_stop_changes_only_its_quantity(venue):
    venue.run(venue.sell(10, order_type="TRAILING_STOP", trail=3))     # #1, stop 97
    venue.expect(C.modify(1, 1, quantity=30), events="""
        REPLACED #1 30 stop 97
    """, book="""
        TRAILING_STOP SELL #1 30 stop 97
    """)
    events = venue.run(C.modify(1, 1, quantity=30, stop_price=98))
    assert events == ["REJECTED MODIFY INVALID_STOP_PRICE"]


def test_modify_by_client_order_id(venue):
    venue.run(venue.buy(50, 99, client_order_id=777))                  # #1
    venue.expect(C.modify(2, client_order_id=777, quantity=40, price=98), events="""
        REPLACED #1 40 @ 98
        LEVEL BUY 0 @ 99 (0)
        LEVEL BUY 40 @ 98
    """, book="""
        BUY #1 40 @ 98
    """)
    events = venue.process(C.modify(2, client_order_id=777, quantity=30, price=98))
    assert int(events[0]["order_id"]) == 1
    assert int(events[0]["client_order_id"]) == 777


def test_modify_by_another_accounts_client_order_id_is_unknown(venue):
    """Client order ids are per account: account 3's 777 is not account 2's."""
    venue.run(venue.buy(50, 99, client_order_id=777))
    venue.expect(C.modify(3, client_order_id=777, quantity=40, price=98), events="""
        REJECTED MODIFY UNKNOWN_ORDER
    """, book="""
        BUY #1 50 @ 99
    """)


@pytest.mark.parametrize("by_client_id", [False, True])
def test_modify_of_a_filled_order_is_not_live(venue, by_client_id):
    venue.run(venue.buy(50, 99, client_order_id=777))                  # #1
    venue.run(venue.sell(50, 99))
    command = (C.modify(2, client_order_id=777, quantity=60, price=99) if by_client_id
               else C.modify(2, 1, quantity=60, price=99))
    venue.expect(command, events="""
        REJECTED MODIFY ORDER_NOT_LIVE
    """, book="")


def test_modify_of_another_accounts_order(venue):
    venue.book("""
        BUY #1 50 @ 99 by 2
    """)
    events = venue.process(C.modify(3, 1, quantity=10, price=99))
    assert len(events) == 1
    assert (int(events[0]["code"]), int(events[0]["account"]), int(events[0]["order_id"])) \
        == (105, 3, 1)                                                  # NOT_ORDER_OWNER
    assert venue.book_lines() == ["BUY #1 50 @ 99"]


def test_modify_that_raises_beyond_the_funds_is_rejected_and_changes_nothing(venue):
    venue.run(venue.buy(5, 99, by=4))                                   # reserves 495 of 1000
    venue.expect(C.modify(4, 1, quantity=11, price=99), events="""
        REJECTED MODIFY INSUFFICIENT_FUNDS
    """, book="""
        BUY #1 5 @ 99
    """)
    venue.expect(C.modify(4, 1, quantity=10, price=100), events="""
        REPLACED #1 10 @ 100
        LEVEL BUY 0 @ 99 (0)
        LEVEL BUY 10 @ 100
    """)
    assert venue.account(4) == {"cash": 1_000, "reserved": 1_000}


def test_modify_price_outside_the_collar_is_rejected(venue):
    venue.run(venue.buy(5, 99))
    venue.expect(C.modify(2, 1, quantity=5, price=111), events="""
        REJECTED MODIFY PRICE_OUTSIDE_COLLAR
    """, book="""
        BUY #1 5 @ 99
    """)
