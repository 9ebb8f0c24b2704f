"""The reference model's order book for one instrument: price levels of FIFO queues.

Plain Python on ``sortedcontainers``; written for clarity, not speed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from sortedcontainers import SortedDict

from ..enums import OrderPhase, OrderType, Side, TimeInForce


@dataclass(eq=False)
class Order:
    """A live order. ``leaves`` is what remains open; ``cum`` what has traded."""
    order_id: int
    client_order_id: int
    account: int
    instrument: int
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    price: int            #: limit price (LIMIT, STOP_LIMIT); 0 otherwise
    stop_price: int       #: STOP, STOP_LIMIT, TRAILING_STOP (moves with the market); 0 otherwise
    trail_ticks: int      #: TRAILING_STOP only
    reserve_price: int    #: buys: the highest price this order may ever pay; sells: 0
    leaves: int
    cum: int = 0
    phase: OrderPhase = OrderPhase.DORMANT

    @property
    def is_buy(self) -> bool:
        return self.side == Side.BUY

    @property
    def never_rests(self) -> bool:
        """MARKET, STOP and TRAILING_STOP orders trade at once when live and never rest."""
        return self.order_type in (OrderType.MARKET, OrderType.STOP, OrderType.TRAILING_STOP)


@dataclass
class Level:
    price: int
    queue: list[Order] = field(default_factory=list)

    @property
    def quantity(self) -> int:
        return sum(o.leaves for o in self.queue)


class Book:
    """Both sides of one instrument's book. Best first: highest bid, lowest ask."""

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict(lambda price: -price)
        self.asks: SortedDict = SortedDict()

    def side(self, side: Side) -> SortedDict:
        return self.bids if side == Side.BUY else self.asks

    def opposite(self, side: Side) -> SortedDict:
        return self.asks if side == Side.BUY else self.bids

    def best(self, side: Side) -> Level | None:
        levels = self.side(side)
        return levels.peekitem(0)[1] if levels else None

    def levels_crossing(self, aggressor: Side, limit: int) -> Iterator[Level]:
        """Opposite levels an aggressor with ``limit`` may trade with, best first (a snapshot)."""
        for price, level in list(self.opposite(aggressor).items()):
            if (price > limit) if aggressor == Side.BUY else (price < limit):
                return
            yield level

    def add(self, order: Order) -> Level:
        """Append ``order`` to the back of its price level, creating the level if needed."""
        levels = self.side(order.side)
        level = levels.get(order.price)
        if level is None:
            level = levels[order.price] = Level(order.price)
        level.queue.append(order)
        return level

    def remove(self, order: Order) -> Level:
        """Take ``order`` out of its level, dropping the level when it empties."""
        levels = self.side(order.side)
        level = levels[order.price]
        level.queue.remove(order)
        if not level.queue:
            del levels[order.price]
        return level

    def has_level(self, side: Side, price: int) -> bool:
        return price in self.side(side)

    def level_count(self) -> int:
        return len(self.bids) + len(self.asks)
