"""Matching scenarios: book before / command / events / book after, for both engines."""


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
