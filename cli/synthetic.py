"""A synthetic trading day in LOBSTER's format, for symbols (or machines) without LOBSTER data.

``synthetic_day`` simulates one instrument's full-depth book by price-time priority and writes
what happened as LOBSTER would: submissions, partial cancellations, deletions, and the
executions of resting orders (one message per maker filled, all at the aggressor's time,
followed by the rest of the aggressor when it enters the book), with an orderbook row of the
top ``levels`` after every message. ``cli.lobster`` then converts it exactly as it converts
NASDAQ's files, so demo traffic takes one path whatever its source.

The market: orders arrive with exponential gaps; submissions sit at or behind the touch
(sometimes improving the spread), sizes mostly round lots; deletions pick a live order at
random; aggressors take from the other side, more often against a price that has drifted far
from the reference, so the price wanders but stays near it; the number of live orders is
steered towards ``target_orders``. Like a real day it opens on a book built before the first
message (whose orders the messages then refer to by ids never submitted in the file).
Deterministic: the same spec gives the same day in every process.
"""
from __future__ import annotations

import random
import zlib
from dataclasses import dataclass

from core.enums import Side

from .lobster import (DELETION, EXECUTION, PARTIAL_CANCEL, SUBMISSION, BookRow, Message,
                      Resting, ShadowBook)


@dataclass(frozen=True)
class SyntheticSpec:
    symbol: str
    reference_price: int         #: 1/10,000 USD, a multiple of ``tick``
    messages: int = 20_000
    seed: int = 1
    tick: int = 100              #: one cent
    levels: int = 10             #: depth of the orderbook rows
    mean_gap_ms: float = 250.0   #: mean time between messages
    target_orders: int = 300
    opening_levels: int = 12     #: levels per side in the opening book (some below ``levels``)


class _Market:
    def __init__(self, spec: SyntheticSpec) -> None:
        self.spec = spec
        self.rng = random.Random(zlib.crc32(f"{spec.symbol}/{spec.seed}".encode()))
        self.book = ShadowBook()
        self.ids: list[int] = []            #: live order ids, for picking one at random
        self.where: dict[int, int] = {}     #: id -> index in ids
        self.next_id = 1_000_000 + spec.seed * 10_000_000
        self.out: list[Message] = []
        self.rows: list[BookRow] = []
        self.t = 0

    # -- bookkeeping
    def _add(self, side: int, price: int, size: int) -> int:
        order_id = self.next_id
        self.next_id += 1
        self.book.rest(Resting(0, order_id, side, price, size, order_id))
        self.where[order_id] = len(self.ids)
        self.ids.append(order_id)
        return order_id

    def _forget(self, order_id: int) -> None:
        at = self.where.pop(order_id)
        last = self.ids.pop()
        if last != order_id:
            self.ids[at] = last
            self.where[last] = at

    def _order(self, order_id: int) -> Resting:
        return self.book.live[(0, order_id)]

    def best(self, side: int) -> int | None:
        top = self.book.top(side, 1)
        return top[0][0] if top else None

    def _log(self, kind: int, order_id: int, size: int, price: int, side: int) -> None:
        self.out.append(Message(self.t, kind, order_id, size, price,
                                1 if side == Side.BUY else -1))

    def _row(self) -> None:
        depth = self.spec.levels
        self.rows.append(BookRow(self.book.top(Side.SELL, depth), self.book.top(Side.BUY, depth)))

    # -- the opening book and the events
    def open(self) -> None:
        """The book built before the session, then the first message and its row."""
        spec, rng = self.spec, self.rng
        for k in range(1, spec.opening_levels + 1):
            for _ in range(rng.randint(1, 3)):
                self._add(Side.BUY, spec.reference_price - k * spec.tick, self._size())
                self._add(Side.SELL, spec.reference_price + k * spec.tick, self._size())
        self.submit()
        self._row()

    def _size(self) -> int:
        rng = self.rng
        if rng.random() < 0.15:
            return rng.randint(1, 99)
        return 100 * rng.choice((1, 1, 1, 1, 2, 2, 3, 5))

    def submit(self) -> None:
        spec, rng = self.spec, self.rng
        side = rng.choice((Side.BUY, Side.SELL))
        own, other = self.best(side), self.best(Side.SELL if side == Side.BUY else Side.BUY)
        step = -spec.tick if side == Side.BUY else spec.tick
        if own is None:
            anchor = other if other is not None else spec.reference_price
            price = anchor + step
        elif other is not None and abs(other - own) > spec.tick and rng.random() < 0.15:
            price = own - step                       # improve the spread by a tick
        else:
            price = own + step * min(int(rng.expovariate(0.35)), 30)
        size = self._size()
        self._log(SUBMISSION, self._add(side, price, size), size, price, side)

    def delete(self) -> None:
        order = self._order(self.rng.choice(self.ids))
        self._log(DELETION, order.client_order_id, order.leaves, order.price, order.side)
        self.book.cancel(order)
        self._forget(order.client_order_id)

    def partial_cancel(self) -> bool:
        order = self._order(self.rng.choice(self.ids))
        if order.leaves < 2:
            return False
        size = self.rng.randint(1, order.leaves - 1)
        self._log(PARTIAL_CANCEL, order.client_order_id, size, order.price, order.side)
        self.book.reduce(order, size)
        return True

    def execute(self) -> bool:
        """An aggressor sweeps the other side; False when that side is too thin."""
        spec, rng = self.spec, self.rng
        bid, ask = self.best(Side.BUY), self.best(Side.SELL)
        if bid is None or ask is None:
            return False
        drift = ((bid + ask) / 2 - spec.reference_price) / spec.reference_price
        buy = rng.random() < min(max(0.5 - 25 * drift, 0.15), 0.85)
        resting = Side.SELL if buy else Side.BUY
        levels = self.book.levels(resting)
        available = sum(o.leaves for _, queue in levels for o in queue)
        size = min(self._size() * rng.choice((1, 1, 1, 2, 4)), available - 1)
        if size <= 0:
            return False
        left, worst = size, None
        for price, queue in levels:
            for maker in queue:
                q = min(left, maker.leaves)
                self._log(EXECUTION, maker.client_order_id, q, price, resting)
                self.book.reduce(maker, q)
                if not maker.leaves:
                    self._forget(maker.client_order_id)
                left -= q
                worst = price
                if not left:
                    break
            if not left:
                break
        if not self.book.quantity(resting, worst) and rng.random() < 0.3:
            # the aggressor emptied its last level: its rest enters the book there
            side = Side.BUY if buy else Side.SELL
            size = self._size()
            self._log(SUBMISSION, self._add(side, worst, size), size, worst, side)
        return True

    def step(self) -> None:
        spec, rng = self.spec, self.rng
        self.t += max(1_000, int(rng.expovariate(1 / (spec.mean_gap_ms * 1e6))))
        start = len(self.out)
        full = len(self.ids) > spec.target_orders
        u = rng.random()
        if u < 0.13:
            done = self.execute()
        elif u < 0.15:
            done = self.partial_cancel()
        elif u < (0.58 if full else 0.42) and self.ids:
            self.delete()
            done = True
        else:
            done = False
        if not done:
            self.submit()
        for _ in range(len(self.out) - start):
            self._row()


def synthetic_day(spec: SyntheticSpec) -> tuple[list[Message], list[BookRow]]:
    """``spec.messages`` (or a few more: a sweep's messages stay together) messages and their
    orderbook rows, times in nanoseconds from the session start."""
    market = _Market(spec)
    market.open()
    while len(market.out) < spec.messages:
        market.step()
    return market.out, market.rows
