"""NASDAQ order flow from LOBSTER files, turned into the requests a client sends to ringex.

LOBSTER (lobsterdata.com) rebuilds a day of NASDAQ TotalView-ITCH into two files per ticker:
a *message* file (time, type, order id, size, price in 1/10,000 USD, direction) and an
*orderbook* file whose row i is the top L price levels after message i (see SOURCE.md and
LOBSTER_SampleFiles_ReadMe.txt beside the data). The files say what happened to resting
orders; aggressive orders never appear, only their executions. This module turns that into
what a participant would send to an exchange:

==========================  =============================================================
LOBSTER message             request
==========================  =============================================================
1 submission                a GTC limit order (the LOBSTER order id maps to an account and
                            a client order id)
2 partial cancellation      a modify lowering the order's total quantity (keeps priority),
                            or a cancel when nothing would remain
3 deletion                  a cancel
4 executions sharing a      ONE order from the other side: an IOC limit at the worst price
  time and a direction      of the run, or, when the next message is the rest of that
                            order entering the book, a GTC limit that trades and then rests
5 hidden execution,         nothing (they do not change the visible book); counted
6 cross, 7 halt
==========================  =============================================================

**The book is the real one.** ``Converter`` keeps a ``ShadowBook`` of the flow's own orders
by the engine's rules (price-time priority, trades at the resting price, an IOC's rest
cancelled, a reducing modify keeps its place), so it knows which of its orders are live and
how much rests at each price. The first orderbook row seeds the book; after every message
the top levels are compared with the next orderbook row, and where they differ (orders the
level-L file never showed: deeper orders revealed when a level empties, orders entered before
the open) the converter *resyncs*: it adds orders for missing quantity, trims surplus from the
back of the queue and cancels levels the real book does not have. Replayed alone on an empty
venue, the engine's top L levels then equal LOBSTER's after every message (tests check it).

A request names an account by its index in the flow (0 .. accounts-1) and a client order id
unique per account, from 1 (``ClientIds``); whoever sends it maps both onto real ones.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from core.enums import Side, TimeInForce
from core.model.book import Book

DUMMY_ASK = 9_999_999_999    #: LOBSTER's price of an empty ask level
DUMMY_BID = -9_999_999_999

SUBMISSION, PARTIAL_CANCEL, DELETION, EXECUTION, HIDDEN_EXECUTION, CROSS, HALT = range(1, 8)

# Request actions.
NEW, CANCEL, MODIFY, MASS_CANCEL = "new", "cancel", "modify", "mass_cancel"
# Why a request was made.
SEED, SUBMIT, REDUCE, DELETE, EXECUTE, RESYNC, DAY_END = (
    "seed", "submit", "reduce", "delete", "execute", "resync", "day_end")


class Message(NamedTuple):
    """One row of a LOBSTER message file; ``time_ns`` is nanoseconds after midnight."""
    time_ns: int
    type: int
    order_id: int
    size: int
    price: int
    direction: int      #: 1 buy, -1 sell; for executions the side of the resting order


Level = tuple[int, int]                    #: (price, size)


class BookRow(NamedTuple):
    """One orderbook row: occupied levels, best first (empty levels left out)."""
    asks: tuple[Level, ...]
    bids: tuple[Level, ...]


class Request(NamedTuple):
    """What a client sends. Prices are integers in 1/10,000 USD, quantities in shares.

    ``new``: a limit order (``side``, ``quantity``, ``price``, ``time_in_force`` GTC or IOC).
    ``modify``: ``quantity`` is the order's new *total* (filled + open, as in FIX), ``price``
    unchanged. ``cancel``: the order ``(account, client_order_id)``. ``mass_cancel``: every
    order of ``account`` in ``symbol`` (``client_order_id`` 0)."""
    time_ns: int          #: when to send it, nanoseconds after the flow started
    symbol: str
    action: str
    account: int          #: 0 .. accounts-1 in the flow
    client_order_id: int  #: unique per account over the whole flow, from 1
    side: int             #: core.enums.Side of the order concerned
    quantity: int
    price: int
    time_in_force: int    #: core.enums.TimeInForce for ``new``; 0 otherwise
    origin: str           #: why: seed, submit, reduce, delete, execute, resync, day_end


class ClientIds:
    """Client order ids, counted per account, shared by every symbol of a flow."""

    def __init__(self, accounts: int) -> None:
        if accounts < 1:
            raise ValueError("a flow needs at least one account")
        self.accounts = accounts
        self._last = [0] * accounts

    def next(self, account: int) -> int:
        self._last[account] += 1
        return self._last[account]


# ------------------------------------------------------------------------------------ files
@dataclass
class DayFiles:
    """The message and orderbook files of one ticker and day."""
    symbol: str
    messages: Path
    orderbook: Path
    start_ns: int          #: the session start the file name states (after midnight)
    end_ns: int            #: the session end the file name states
    levels: int


_NAME = re.compile(r"^(?P<symbol>[A-Z.]+)_(?P<date>\d{4}-\d\d-\d\d)_(?P<start>\d+)_(?P<end>\d+)"
                   r"_message_(?P<levels>\d+)\.csv$")


def find_days(folder: Path) -> dict[str, DayFiles]:
    """The complete days in ``folder`` (not its subfolders), by symbol: every
    ``SYMBOL_DATE_START_END_message_L.csv`` with its ``..._orderbook_L.csv``. When a symbol has
    several, the one with the most levels wins, then the earliest date."""
    found: dict[str, DayFiles] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*_message_*.csv")):
        match = _NAME.match(path.name)
        book = path.with_name(path.name.replace("_message_", "_orderbook_"))
        if not match or not book.is_file():
            continue
        day = DayFiles(match["symbol"], path, book, int(match["start"]) * 1_000_000,
                       int(match["end"]) * 1_000_000, int(match["levels"]))
        if day.symbol not in found or day.levels > found[day.symbol].levels:
            found[day.symbol] = day
    return found


def parse_time(text: str) -> int:
    """LOBSTER's seconds after midnight (up to 9 decimals) as exact integer nanoseconds."""
    seconds, _, fraction = text.partition(".")
    return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])


def read_messages(path: Path) -> list[Message]:
    out = []
    with path.open() as f:
        for line in f:
            t, kind, order_id, size, price, direction = line.rstrip("\n").split(",")
            out.append(Message(parse_time(t), int(kind), int(order_id), int(size), int(price),
                               int(direction)))
    return out


def read_orderbook(path: Path) -> np.ndarray:
    """The orderbook file as an int64 array, one row per message, 4 columns per level."""
    table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape[1] % 4:
        raise ValueError(f"{path}: {table.shape[1]} columns is not 4 per level")
    return table


def book_row(values: Iterable[int]) -> BookRow:
    """Decode one orderbook row (ask price, ask size, bid price, bid size per level)."""
    v = [int(x) for x in values]
    asks = tuple((v[i], v[i + 1]) for i in range(0, len(v), 4)
                 if v[i + 1] > 0 and v[i] != DUMMY_ASK)
    bids = tuple((v[i + 2], v[i + 3]) for i in range(0, len(v), 4)
                 if v[i + 3] > 0 and v[i + 2] != DUMMY_BID)
    return BookRow(asks, bids)


def read_day(day: DayFiles) -> tuple[list[Message], list[BookRow]]:
    """Both files of a day, checked to have one orderbook row per message."""
    messages = read_messages(day.messages)
    table = read_orderbook(day.orderbook)
    if len(table) != len(messages):
        raise ValueError(f"{day.symbol}: {len(messages)} messages but {len(table)} book rows")
    return messages, [book_row(r) for r in table.tolist()]


# ------------------------------------------------------------------------------- the book
class Resting:
    """One of the flow's live orders, as the engine holds it."""
    __slots__ = ("account", "client_order_id", "side", "price", "leaves", "cum", "lobster_id")

    def __init__(self, account: int, client_order_id: int, side: int, price: int,
                 quantity: int, lobster_id: int) -> None:
        self.account, self.client_order_id = account, client_order_id
        self.side, self.price, self.leaves, self.cum = side, price, quantity, 0
        self.lobster_id = lobster_id       #: 0 for orders the converter made up (seed, resync)

    @property
    def total(self) -> int:
        return self.cum + self.leaves


class ShadowBook:
    """The flow's own orders in one instrument, matched by the engine's rules (the reference
    model's ``Book``: levels of FIFO queues, best first)."""

    def __init__(self) -> None:
        self.book = Book()
        self.live: dict[tuple[int, int], Resting] = {}   #: (account, client id) -> order

    def quantity(self, side: int, price: int) -> int:
        level = self.book.side(Side(side)).get(price)
        return level.quantity if level is not None else 0

    def levels(self, side: int) -> list[tuple[int, list[Resting]]]:
        """(price, queue) of one side, best first (a copy: safe to change the book while
        walking it)."""
        return [(price, list(level.queue)) for price, level in self.book.side(Side(side)).items()]

    def queue(self, side: int, price: int) -> list[Resting]:
        """The orders at one price, front of the queue first (a copy)."""
        level = self.book.side(Side(side)).get(price)
        return list(level.queue) if level is not None else []

    def top(self, side: int, depth: int) -> tuple[Level, ...]:
        out = []
        for price, level in self.book.side(Side(side)).items():
            if len(out) == depth:
                break
            out.append((price, level.quantity))
        return tuple(out)

    def execute(self, order: Resting, limit: int) -> int:
        """Trade ``order`` against the other side up to ``limit``; returns the quantity filled.
        The caller decides whether what is left rests (``rest``) or is cancelled (IOC)."""
        filled = 0
        aggressor = Side(order.side)
        for level in self.book.levels_crossing(aggressor, limit):
            while level.queue and order.leaves:
                maker = level.queue[0]
                q = min(order.leaves, maker.leaves)
                maker.leaves -= q
                maker.cum += q
                order.leaves -= q
                order.cum += q
                filled += q
                if not maker.leaves:
                    self._drop(maker)
            if not order.leaves:
                break
        return filled

    def rest(self, order: Resting) -> None:
        self.book.add(order)
        self.live[(order.account, order.client_order_id)] = order

    def reduce(self, order: Resting, by: int) -> None:
        """Lower the open quantity, keeping the place in the queue (0 left: gone)."""
        order.leaves -= by
        if order.leaves <= 0:
            self._drop(order)

    def cancel(self, order: Resting) -> None:
        self._drop(order)

    def _drop(self, order: Resting) -> None:
        """Out of the book for good: filled, cancelled or reduced to nothing (leaves 0)."""
        order.leaves = 0
        self.book.remove(order)
        del self.live[(order.account, order.client_order_id)]


# -------------------------------------------------------------------------- the converter
@dataclass
class Counts:
    """What a conversion saw and did."""
    messages: Counter = field(default_factory=Counter)   #: LOBSTER message type -> count
    requests: Counter = field(default_factory=Counter)   #: origin -> requests
    unknown_orders: int = 0     #: type 2/3 messages naming an order not live in the book

    def merge(self, other: "Counts") -> None:
        self.messages.update(other.messages)
        self.requests.update(other.requests)
        self.unknown_orders += other.unknown_orders


class Converter:
    """LOBSTER messages of one symbol -> requests, keeping a ``ShadowBook`` in step.

    ``seed(row, t)`` puts the opening book in; then ``apply(messages, row, remainder)`` for
    each message, or for a run of executions that share a time and a side (``steps`` groups
    them); ``row`` is the orderbook row after the last message covered, showing ``depth``
    levels per side (a side showing fewer has no more). Accounts: a LOBSTER order's account
    is its id modulo ``ids.accounts``; the orders the converter makes up (seed, resync,
    aggressors) go round the accounts in turn."""

    def __init__(self, symbol: str, ids: ClientIds, start_ns: int = 0, depth: int = 1) -> None:
        self.symbol = symbol
        self.depth = depth           #: levels per side in the orderbook rows
        self.ids = ids
        self.start_ns = start_ns
        self.book = ShadowBook()
        self.by_lobster_id: dict[int, Resting] = {}
        self.counts = Counts()
        self._turn = 0
        self._out: list[Request] = []
        self._t = 0

    # -- the requests
    def _emit(self, action: str, order: Resting, quantity: int, origin: str,
              tif: int = 0) -> None:
        self._out.append(Request(self._t, self.symbol, action, order.account,
                                 order.client_order_id, order.side, quantity, order.price, tif,
                                 origin))
        self.counts.requests[origin] += 1

    def _new_order(self, side: int, price: int, quantity: int, origin: str,
                   lobster_id: int = 0, tif: int = TimeInForce.GTC) -> Resting:
        if lobster_id:
            account = lobster_id % self.ids.accounts
        else:
            account = self._turn
            self._turn = (self._turn + 1) % self.ids.accounts
        order = Resting(account, self.ids.next(account), side, price, quantity, lobster_id)
        self._emit(NEW, order, quantity, origin, tif)
        self.book.execute(order, price)
        if order.leaves and tif == TimeInForce.GTC:
            self.book.rest(order)
            if lobster_id:
                self.by_lobster_id[lobster_id] = order
        return order

    def _cancel(self, order: Resting, origin: str) -> None:
        self._emit(CANCEL, order, 0, origin)
        self.book.cancel(order)

    def _reduce(self, order: Resting, by: int, origin: str) -> None:
        if by >= order.leaves:
            return self._cancel(order, origin)
        self._emit(MODIFY, order, order.total - by, origin)
        self.book.reduce(order, by)

    def _live(self, lobster_id: int) -> Resting | None:
        order = self.by_lobster_id.get(lobster_id)
        if order is not None and not order.leaves:
            del self.by_lobster_id[lobster_id]
            return None
        return order

    # -- the steps
    def seed(self, row: BookRow, time_ns: int) -> list[Request]:
        """The opening book: one order per level of ``row``."""
        self._t = time_ns - self.start_ns
        for side, levels in ((Side.SELL, row.asks), (Side.BUY, row.bids)):
            for price, size in levels:
                self._new_order(side, price, size, SEED)
        return self._take()

    def apply(self, messages: list[Message], row: BookRow,
              remainder: Message | None = None) -> list[Request]:
        """Requests for ``messages`` (one message, or a run of executions sharing a time and
        a side), then a resync to ``row``, the orderbook row after the last message covered.
        ``remainder``: the submission that follows a run of executions and is the rest of
        their aggressor (see ``is_remainder``); it becomes part of the aggressor's order."""
        first = messages[0]
        self._t = first.time_ns - self.start_ns
        for m in messages:
            self.counts.messages[m.type] += 1
        if first.type == SUBMISSION:
            self._new_order(Side.BUY if first.direction == 1 else Side.SELL, first.price,
                            first.size, SUBMIT, lobster_id=first.order_id)
        elif first.type in (PARTIAL_CANCEL, DELETION):
            order = self._live(first.order_id)
            if order is None:
                self.counts.unknown_orders += 1
            elif first.type == DELETION:
                self._cancel(order, DELETE)
            else:
                self._reduce(order, first.size, REDUCE)
        elif first.type == EXECUTION:
            self._executions(messages, remainder)
        self._resync(row)
        return self._take()

    def _executions(self, run: list[Message], remainder: Message | None) -> None:
        resting = Side.BUY if run[0].direction == 1 else Side.SELL
        aggressor = Side.SELL if resting == Side.BUY else Side.BUY
        needed = Counter()
        for m in run:
            needed[m.price] += m.size
        for price, size in needed.items():     # levels the run reveals as it sweeps
            missing = size - self.book.quantity(resting, price)
            if missing > 0:
                self._new_order(resting, price, missing, RESYNC)
        total = sum(needed.values())
        if remainder is not None:
            self.counts.messages[SUBMISSION] += 1
            self._new_order(aggressor, remainder.price, total + remainder.size, EXECUTE,
                            lobster_id=remainder.order_id)
        else:
            worst = max(needed) if aggressor == Side.BUY else min(needed)
            self._new_order(aggressor, worst, total, EXECUTE, tif=TimeInForce.IOC)

    def _resync(self, row: BookRow) -> None:
        """Make the book's visible levels equal ``row``: stale levels first (on both sides,
        so that nothing added can cross), then quantities level by level."""
        plan = ((Side.SELL, row.asks), (Side.BUY, row.bids))
        for side, visible in plan:
            prices = {p for p, _ in visible}
            # a side showing fewer levels than the file's depth is shown whole
            worst = visible[-1][0] if len(visible) == self.depth else None
            for price, queue in self.book.levels(side):
                if worst is not None and ((price > worst) if side == Side.SELL
                                          else (price < worst)):
                    break
                if price not in prices:
                    for order in queue:
                        self._cancel(order, RESYNC)
        for side, visible in plan:
            for price, size in visible:
                have = self.book.quantity(side, price)
                if have < size:
                    self._new_order(side, price, size - have, RESYNC)
                elif have > size:
                    surplus = have - size
                    for order in reversed(self.book.queue(side, price)):
                        cut = min(surplus, order.leaves)
                        self._reduce(order, cut, RESYNC)
                        surplus -= cut
                        if not surplus:
                            break

    def _take(self) -> list[Request]:
        out, self._out = self._out, []
        return out


class Step(NamedTuple):
    """The requests for one message (or a run of executions) and the index of the last
    message they cover: the book should now equal ``rows[last]``."""
    last: int
    requests: list[Request]


def is_remainder(run: list[Message], following: Message | None) -> bool:
    """Whether ``following`` is the rest of the order that caused the executions ``run``:
    a submission at the same time, on the aggressor's side, priced at or through every
    price the run traded at."""
    if following is None or following.type != SUBMISSION or \
            following.time_ns != run[0].time_ns or following.direction != -run[0].direction:
        return False
    prices = [m.price for m in run]
    return following.price >= max(prices) if following.direction == 1 else \
        following.price <= min(prices)


def steps(converter: Converter, messages: list[Message], rows: list[BookRow]) -> Iterator[Step]:
    """Seed from the first row (the book after message 0, which the seed stands for), then
    convert message after message, grouping runs of executions that share a time and a side
    (with the rest of their aggressor, when it entered the book)."""
    if not messages:
        return
    converter.counts.messages[messages[0].type] += 1
    yield Step(0, converter.seed(rows[0], messages[0].time_ns))
    i, n = 1, len(messages)
    while i < n:
        m = messages[i]
        j = i + 1
        remainder = None
        if m.type == EXECUTION:
            while j < n and messages[j].type == EXECUTION and \
                    messages[j].time_ns == m.time_ns and messages[j].direction == m.direction:
                j += 1
            if j < n and is_remainder(messages[i:j], messages[j]):
                remainder = messages[j]
        last = j if remainder is not None else j - 1
        yield Step(last, converter.apply(messages[i:j], rows[last], remainder))
        i = last + 1
