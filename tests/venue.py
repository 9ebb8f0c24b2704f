"""A small venue for scenario tests, readable as: book before / command / events / book after.

One instrument ACME (id 0): tick 1, lot 1, reference price 100, collar 10 % (90..110), no fees
unless a test asks. Accounts:

====  ======  ==========  =============================
id    type    cash        holdings
====  ======  ==========  =============================
1     cash    1,000,000   1,000 ACME (cost 100 each)
2     cash    1,000,000   1,000 ACME (cost 100 each)
3     margin  1,000,000   none
4     cash    1,000       none
====  ======  ==========  =============================

``Venue.book("SELL #1 100 @ 102 by 2", ...)`` places resting orders (checking each gets the
order id its label says); ``Venue.run(command)`` returns the command's events as text lines;
``Venue.book_lines()`` renders the book the way ``core.describe.describe_book`` does.
"""
from __future__ import annotations

import re
import textwrap

import numpy as np

from core import commands as C
from core.blp import BusinessLogicProcessor
from core.config import Capacities
from core.describe import describe_book, describe_event
from core.enums import AccountType, OrderType, Side, TimeInForce
from core.model import ReferenceModel

ACME = 0
CAPACITIES = Capacities(instruments=4, accounts=8, orders=64, positions=32,
                        client_order_ids=256)

_BOOK_LINE = re.compile(
    r"(?P<side>BUY|SELL)\s+#(?P<id>\d+)\s+(?P<qty>\d+)\s+@\s+(?P<price>\d+)"
    r"(?:\s+by\s+(?P<account>\d+))?(?:\s+(?P<tif>DAY|GTC))?$")


def lines(text: str) -> list[str]:
    """A table written in a triple-quoted string, as a list of normalized lines."""
    return [" ".join(line.split()) for line in textwrap.dedent(text).strip().splitlines()
            if line.strip()]


class Venue:
    def __init__(self, engine: str, *, maker_fee_bps: int = 0, taker_fee_bps: int = 0,
                 capacities: Capacities = CAPACITIES) -> None:
        self.engine = (BusinessLogicProcessor(capacities) if engine == "kernel"
                       else ReferenceModel(capacities))
        self.seq = 0
        self.client_id = 1000
        self.run(C.add_instrument(ACME, "ACME", tick_size=1, lot_size=1, reference_price=100,
                                  collar_bps=1000, maker_fee_bps=maker_fee_bps,
                                  taker_fee_bps=taker_fee_bps),
                 C.add_account(1), C.add_account(2), C.add_account(3, AccountType.MARGIN),
                 C.add_account(4),
                 C.deposit_cash(1, 1_000_000), C.deposit_cash(2, 1_000_000),
                 C.deposit_cash(3, 1_000_000), C.deposit_cash(4, 1_000),
                 C.deposit_position(1, ACME, 1000, 100_000),
                 C.deposit_position(2, ACME, 1000, 100_000))

    # ------------------------------------------------------------------ driving
    def next_client_id(self) -> int:
        self.client_id += 1
        return self.client_id

    def process(self, *records: np.ndarray) -> np.ndarray:
        batch = C.stamp(C.batch(*records), self.seq + 1, 1_000_000 * (self.seq + 1))
        self.seq += len(batch)
        return self.engine.process(batch)

    def run(self, *records: np.ndarray) -> list[str]:
        """Process commands; return their events as description lines."""
        return [describe_event(e) for e in self.process(*records)]

    def book(self, text: str) -> None:
        """Place resting limit orders written as ``SIDE #id qty @ price [by account] [DAY]``.

        Sells default to account 1 and buys to account 2 (both hold cash and ACME)."""
        for line in lines(text):
            m = _BOOK_LINE.match(line)
            assert m, f"cannot read book line {line!r}"
            side = Side[m["side"]]
            account = int(m["account"] or (1 if side == Side.SELL else 2))
            events = self.run(C.new_order(
                account, ACME, side, int(m["qty"]), int(m["price"]),
                client_order_id=self.next_client_id(),
                time_in_force=TimeInForce[m["tif"] or "GTC"]))
            assert events[0].startswith(f"ACCEPTED #{m['id']} "), (line, events)

    # ------------------------------------------------------------------ commands
    def buy(self, qty: int, price: int = 0, *, by: int = 2, tif: str = "GTC",
            order_type: str = "LIMIT", stop: int = 0, trail: int = 0,
            client_order_id: int | None = None) -> np.ndarray:
        return self._order(Side.BUY, qty, price, by, tif, order_type, stop, trail,
                           client_order_id)

    def sell(self, qty: int, price: int = 0, *, by: int = 1, tif: str = "GTC",
             order_type: str = "LIMIT", stop: int = 0, trail: int = 0,
             client_order_id: int | None = None) -> np.ndarray:
        return self._order(Side.SELL, qty, price, by, tif, order_type, stop, trail,
                           client_order_id)

    def _order(self, side, qty, price, by, tif, order_type, stop, trail, client_order_id):
        return C.new_order(by, ACME, side, qty, price,
                           client_order_id=client_order_id or self.next_client_id(),
                           order_type=OrderType[order_type],
                           time_in_force=TimeInForce[tif], stop_price=stop,
                           trail_ticks=trail)

    # ------------------------------------------------------------------ observing
    def book_lines(self) -> list[str]:
        return describe_book(self.engine.canonical_state(), ACME)

    def account(self, account: int) -> dict:
        rows = self.engine.canonical_state().accounts
        row = rows[rows["account"] == account][0]
        return {name: int(row[name]) for name in ("cash", "reserved")}

    def position(self, account: int) -> dict:
        rows = self.engine.canonical_state().positions
        row = rows[(rows["account"] == account) & (rows["instrument"] == ACME)]
        if not len(row):
            return {}
        return {name: int(row[0][name]) for name in
                ("quantity", "cost_basis", "realized_pnl", "open_buy", "open_sell",
                 "fees_paid")}

    def expect(self, command: np.ndarray, events: str, book: str | None = None) -> None:
        """Run ``command``; demand exactly ``events`` and, if given, the book after."""
        got = self.run(command)
        assert got == lines(events), "events:\n  " + "\n  ".join(got)
        if book is not None:
            after = self.book_lines()
            assert after == lines(book), "book after:\n  " + "\n  ".join(after)
