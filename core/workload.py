"""A deterministic command stream shaped like exchange-core's published benchmark mix.

exchange-core's benchmark (README): 9 % GTC orders, 3 % IOC orders, 6 % cancels, 82 % moves;
about 6 % of messages trade; 1,000 accounts. We keep those proportions, carve a little of the
IOC and move share out for market orders, quantity reductions and a few stops (stop,
stop-limit, trailing), and spread the flow over ~100 instruments with ~10,000 resting orders
in steady state.

How the generator knows which orders are live: it runs its own small price-time simulation of
every book (``_Sim``: FIFO levels, the collar, market orders, the stop trigger chain and
trailing stops, the same rules as ``core.model.engine``) and only ever cancels or moves orders
its simulation says are live. Cancels and modifies name orders by ``(account,
client_order_id)`` with ``order_id = 0``, so no engine order id is needed. Accounts are
funded far beyond what the stream can spend and cash accounts get holdings in every
instrument, so risk checks pass; the benchmark counts the engine's actual outcomes, which
show how close the simulation is (rejections should be ~0).

All random numbers are drawn up front with a seeded ``numpy`` generator (vectorized); the loop
only consumes them, so a stream depends only on ``StreamSpec``. Setup (instruments, accounts,
deposits, and the initial book build up to the target order count) is a separate prefix.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field

import numpy as np
from sortedcontainers import SortedList

from core.enums import AccountType, AssetClass, CommandKind, OrderType, Side, TimeInForce
from core.records import COMMAND

BPS = 10_000
TICK = 100                  #: price increment: 1 cent with a minor unit of 1/10,000 USD
COLLAR_BPS = 1_000          #: 10 %
MAKER_FEE_BPS = 1
TAKER_FEE_BPS = 2
CASH_PER_ACCOUNT = 10**13   #: $1bn each; 1,000 accounts stay far below MAX_CASH (2**60)
HOLDING = 1_000_000         #: units each cash account holds in every instrument

# Categories of generated commands (for printing the mix).
GTC, IOC, MARKET, STOP, STOP_LIMIT, TRAILING, CANCEL, MOVE, REDUCE = range(9)
CATEGORY_NAMES = ["new GTC limit", "new IOC limit", "new market (IOC)", "new stop",
                  "new stop-limit", "new trailing stop", "cancel", "modify: move price",
                  "modify: reduce quantity"]

#: Target shares of the steady-state stream (exchange-core: 9 / 3 / 6 / 82).
DEFAULT_MIX = {GTC: 0.090, IOC: 0.025, MARKET: 0.005, STOP: 0.001, STOP_LIMIT: 0.001,
               TRAILING: 0.001, CANCEL: 0.060, MOVE: 0.807, REDUCE: 0.010}


@dataclass(frozen=True)
class StreamSpec:
    commands: int = 2_000_000        #: order commands after the setup prefix
    accounts: int = 1_000
    instruments: int = 100
    target_orders: int = 10_000      #: resting orders the generator steers towards
    cash_account_share: float = 0.2  #: the rest are margin accounts (may sell short)
    aggressive_gtc: float = 0.10     #: share of GTC orders priced to cross the spread
    aggressive_move: float = 0.02    #: share of moves priced to cross the spread
    aggressor_size_divisor: int = 4  #: IOC/market/crossing GTC quantity: 1 + (1..100) // this
    seed: int = 20_240_601
    mix: dict = field(default_factory=lambda: dict(DEFAULT_MIX))

    def describe(self) -> dict:
        out = asdict(self)
        out["mix"] = {CATEGORY_NAMES[k]: v for k, v in self.mix.items()}
        return out


@dataclass
class Stream:
    spec: StreamSpec
    setup: np.ndarray        #: COMMAND records: admin, deposits, initial book build
    main: np.ndarray         #: COMMAND records: the timed steady-state stream
    setup_categories: np.ndarray   #: category per setup command (255: admin)
    categories: np.ndarray   #: category per main command
    sim_resting_end: int     #: resting orders the generator's simulation ends with
    sim_dormant_end: int
    sim_trades: int          #: trades (fills) the simulation saw in the main stream
    seconds: float           #: generation time

    @property
    def new_orders(self) -> int:
        return int(np.count_nonzero(self.setup["kind"] == CommandKind.NEW_ORDER) +
                   np.count_nonzero(self.main["kind"] == CommandKind.NEW_ORDER))

    def mix(self) -> list[tuple[str, int, float]]:
        counts = np.bincount(self.categories, minlength=len(CATEGORY_NAMES))
        n = max(len(self.categories), 1)
        return [(name, int(c), c / n) for name, c in zip(CATEGORY_NAMES, counts)]


# ---------------------------------------------------------------------------------- simulation
def _collar_high(ref: int) -> int:
    return min(ref + ref * COLLAR_BPS // BPS, 2**32 - 1)


def _collar_low(ref: int) -> int:
    return max(ref - ref * COLLAR_BPS // BPS, 1)


class _Order:
    __slots__ = ("account", "cid", "inst", "side", "otype", "price", "stop", "trail",
                 "reserve", "leaves", "cum", "slot")

    def __init__(self, account, cid, inst, side, otype, price, stop, trail, reserve, qty):
        self.account, self.cid, self.inst, self.side = account, cid, inst, side
        self.otype, self.price, self.stop, self.trail = otype, price, stop, trail
        self.reserve, self.leaves, self.cum, self.slot = reserve, qty, 0, -1


class _Side:
    __slots__ = ("prices", "levels")

    def __init__(self) -> None:
        self.prices = SortedList()   # ascending; best bid is last, best ask first
        self.levels: dict[int, deque] = {}


class _Pool:
    """A set of orders with O(1) insert, remove and uniform random pick."""

    def __init__(self) -> None:
        self.items: list[_Order] = []

    def add(self, o: _Order) -> None:
        o.slot = len(self.items)
        self.items.append(o)

    def remove(self, o: _Order) -> None:
        items = self.items
        last = items.pop()
        if last is not o:
            items[o.slot] = last
            last.slot = o.slot
        o.slot = -1

    def __len__(self) -> int:
        return len(self.items)


class _Sim:
    """The generator's model of every book: enough of the engine's rules to know, exactly,
    which of its orders are live and where the best prices are."""

    def __init__(self, reference: list[int]) -> None:
        n = len(reference)
        self.reference = reference
        self.last = [0] * n
        self.books = [(None, _Side(), _Side()) for _ in range(n)]   # index by side 1/2
        self.stops: list[list[_Order]] = [[] for _ in range(n)]
        self.trailing = [0] * n
        self.resting = _Pool()
        self.dormant = _Pool()
        self.trades = 0

    def market(self, i: int) -> int:
        return self.last[i] or self.reference[i]

    def best(self, i: int, side: int) -> int:
        """Best price on a side, or 0 when empty."""
        prices = self.books[i][side].prices
        if not prices:
            return 0
        return prices[-1] if side == Side.BUY else prices[0]

    # -- matching
    def execute(self, o: _Order, limit: int) -> None:
        buy = o.side == Side.BUY
        opp = self.books[o.inst][Side.SELL if buy else Side.BUY]
        prices, levels = opp.prices, opp.levels
        while o.leaves > 0 and prices:
            p = prices[0] if buy else prices[-1]
            if (p > limit) if buy else (p < limit):
                break
            queue = levels[p]
            while queue and o.leaves > 0:
                m = queue[0]
                q = min(o.leaves, m.leaves)
                m.leaves -= q
                m.cum += q
                o.leaves -= q
                o.cum += q
                self.trades += 1
                self.last[o.inst] = p
                if self.trailing[o.inst]:
                    self._trail(o.inst, p)
                if m.leaves == 0:
                    queue.popleft()
                    self.resting.remove(m)
            if not queue:
                del levels[p]
                prices.remove(p)
        if o.leaves > 0 and o.otype in (OrderType.LIMIT, OrderType.STOP_LIMIT) and \
                o.reserve >= 0:   # reserve < 0 marks IOC
            self.rest(o)

    def rest(self, o: _Order) -> None:
        side = self.books[o.inst][o.side]
        queue = side.levels.get(o.price)
        if queue is None:
            queue = side.levels[o.price] = deque()
            side.prices.add(o.price)
        queue.append(o)
        self.resting.add(o)

    def unrest(self, o: _Order) -> None:
        side = self.books[o.inst][o.side]
        queue = side.levels[o.price]
        queue.remove(o)
        if not queue:
            del side.levels[o.price]
            side.prices.remove(o.price)
        self.resting.remove(o)

    # -- stops
    def add_dormant(self, o: _Order) -> None:
        self.stops[o.inst].append(o)
        self.dormant.add(o)
        if o.otype == OrderType.TRAILING_STOP:
            self.trailing[o.inst] += 1

    def remove_dormant(self, o: _Order) -> None:
        self.stops[o.inst].remove(o)
        self.dormant.remove(o)
        if o.otype == OrderType.TRAILING_STOP:
            self.trailing[o.inst] -= 1

    def _trail(self, i: int, price: int) -> None:
        for o in self.stops[i]:
            if o.otype == OrderType.TRAILING_STOP:
                d = o.trail * TICK
                o.stop = min(o.stop, price + d) if o.side == Side.BUY else max(o.stop, price - d)

    def run_stops(self, i: int) -> None:
        stops = self.stops[i]
        while stops:
            market = self.market(i)
            due = None
            for o in stops:
                if (market >= o.stop) if o.side == Side.BUY else (market <= o.stop):
                    due = o
                    break
            if due is None:
                return
            self.remove_dormant(due)
            if due.otype == OrderType.STOP_LIMIT:
                if _collar_low(market) <= due.price <= _collar_high(market):
                    self.execute(due, due.price)
            elif due.side == Side.BUY:
                self.execute(due, min(due.reserve, _collar_high(market)))
            else:
                self.execute(due, _collar_low(market))


# ---------------------------------------------------------------------------------- generation
class _Columns:
    """Per-field Python lists, turned into one COMMAND array at the end (vectorized)."""
    NAMES = ("kind", "side", "order_type", "time_in_force", "account", "instrument",
             "trail_ticks", "client_order_id", "price", "stop_price", "quantity", "category")

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, kind, side=0, otype=0, tif=0, account=0, inst=0, trail=0, cid=0, price=0,
            stop=0, qty=0, category=0) -> None:
        self.rows.append((kind, side, otype, tif, account, inst, trail, cid, price, stop, qty,
                          category))

    def to_records(self) -> tuple[np.ndarray, np.ndarray]:
        out = np.zeros(len(self.rows), COMMAND)
        if not self.rows:
            return out, np.zeros(0, np.uint8)
        table = np.array(self.rows, dtype=np.int64)
        for j, name in enumerate(self.NAMES[:-1]):
            out[name] = table[:, j]
        return out, table[:, -1].astype(np.uint8)


def _setup_admin(spec: StreamSpec, rng: np.random.Generator) -> tuple[np.ndarray, list[int],
                                                                        np.ndarray]:
    """ADD_INSTRUMENT, ADD_ACCOUNT, DEPOSIT_CASH, DEPOSIT_POSITION records (vectorized)."""
    ni, na = spec.instruments, spec.accounts
    ref_ticks = rng.integers(5_000, 20_001, ni)          # $50 .. $200
    reference = (ref_ticks * TICK).astype(np.int64)
    cash_accounts = np.flatnonzero(rng.random(na) < spec.cash_account_share)
    n_pos = len(cash_accounts) * ni
    total = ni + 2 * na + n_pos
    out = np.zeros(total, COMMAND)
    at = 0
    inst = out[at:at + ni]
    inst["kind"] = CommandKind.ADD_INSTRUMENT
    inst["instrument"] = np.arange(ni)
    inst["symbol"] = [f"SYM{i:04d}".encode() for i in range(ni)]
    inst["asset_class"] = AssetClass.EQUITY
    inst["tick_size"] = TICK
    inst["lot_size"] = 1
    inst["reference_price"] = reference
    inst["collar_bps"] = COLLAR_BPS
    inst["maker_fee_bps"] = MAKER_FEE_BPS
    inst["taker_fee_bps"] = TAKER_FEE_BPS
    at += ni
    acc = out[at:at + na]
    acc["kind"] = CommandKind.ADD_ACCOUNT
    acc["account"] = np.arange(na)
    types = np.full(na, AccountType.MARGIN, np.uint8)
    types[cash_accounts] = AccountType.CASH
    acc["account_type"] = types
    at += na
    dep = out[at:at + na]
    dep["kind"] = CommandKind.DEPOSIT_CASH
    dep["account"] = np.arange(na)
    dep["amount"] = CASH_PER_ACCOUNT
    at += na
    pos = out[at:at + n_pos]
    pos["kind"] = CommandKind.DEPOSIT_POSITION
    pos["account"] = np.repeat(cash_accounts, ni)
    pos["instrument"] = np.tile(np.arange(ni), len(cash_accounts))
    pos["quantity"] = HOLDING
    pos["amount"] = HOLDING * np.tile(reference, len(cash_accounts))
    return out, [int(r) for r in reference], types


def generate(spec: StreamSpec, progress=None) -> Stream:
    t0 = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    admin, reference, _ = _setup_admin(spec, rng)
    sim = _Sim(reference)
    ni, na = spec.instruments, spec.accounts
    next_cid = [1] * na
    target = spec.target_orders

    # Everything random, drawn up front. Index k serves command k (setup build, then main).
    build = target
    total = build + spec.commands
    cats = np.fromiter(spec.mix.keys(), np.int64)
    probs = np.fromiter(spec.mix.values(), float)
    kinds = rng.choice(cats, size=total, p=probs / probs.sum()).tolist()
    kinds[:build] = [GTC] * build
    accounts = rng.integers(0, na, total).tolist()
    insts = rng.integers(0, ni, total).tolist()
    sides = rng.integers(1, 3, total).tolist()
    depth = np.minimum(rng.geometric(0.12, total) - 1, 60).tolist()   # ticks from the touch
    cross = rng.integers(0, 3, total).tolist()                       # ticks through the touch
    qtys = rng.integers(1, 101, total).tolist()
    picks = rng.random(total).tolist()
    coins = rng.random(total).tolist()

    def passive_price(i: int, side: int, k: int) -> int:
        bid, ask = sim.best(i, Side.BUY), sim.best(i, Side.SELL)
        market = sim.market(i)
        if bid and ask:   # the mid, rounded down for buys and up for sells
            centre_lo = (bid + ask) // (2 * TICK) * TICK
            centre_hi = -(-(bid + ask) // (2 * TICK)) * TICK
        else:
            centre_lo = centre_hi = market
        if side == Side.BUY:
            price = centre_lo - k * TICK
            if ask:
                price = min(price, ask - TICK)
        else:
            price = centre_hi + k * TICK
            if bid:
                price = max(price, bid + TICK)
        return clamp(price, market)

    def crossing_price(i: int, side: int, j: int) -> int:
        market = sim.market(i)
        opp = sim.best(i, Side.SELL if side == Side.BUY else Side.BUY) or market
        return clamp(opp + j * TICK if side == Side.BUY else opp - j * TICK, market)

    def clamp(price: int, market: int) -> int:
        lo = -(-_collar_low(market) // TICK) * TICK
        hi = _collar_high(market) // TICK * TICK
        return min(max(price, lo), hi)

    cols = _Columns()
    NEW, CAN, MOD = CommandKind.NEW_ORDER, CommandKind.CANCEL, CommandKind.MODIFY
    trades_at_main = 0
    for k in range(total):
        if k == build:
            trades_at_main = sim.trades
        if progress and k % 500_000 == 0 and k:
            progress(k, total)
        cat = kinds[k]
        n_live = len(sim.resting)
        if cat == GTC and n_live > 1.05 * target:
            cat = CANCEL
        elif cat == CANCEL and n_live < target:
            cat = GTC
        if cat in (CANCEL, MOVE, REDUCE) and n_live == 0:
            cat = GTC

        if cat == CANCEL:
            n_dormant = len(sim.dormant)
            u = picks[k] * (n_live + n_dormant)
            if u >= n_live:
                o = sim.dormant.items[min(int(u - n_live), n_dormant - 1)]
                sim.remove_dormant(o)
            else:
                o = sim.resting.items[int(u)]
                sim.unrest(o)
            cols.add(CAN, account=o.account, cid=o.cid, category=CANCEL)
            continue

        if cat == MOVE or cat == REDUCE:
            o = sim.resting.items[int(picks[k] * n_live)]
            i = o.inst
            if cat == REDUCE and o.leaves > 1:
                new_leaves = max(1, o.leaves - max(1, qtys[k] * o.leaves // 200))
                cols.add(MOD, account=o.account, cid=o.cid, price=o.price,
                         qty=o.cum + new_leaves, category=REDUCE)
                o.leaves = new_leaves          # keeps its place in the queue
                sim.run_stops(i)
                continue
            cat = MOVE
            if coins[k] < spec.aggressive_move:
                price = crossing_price(i, o.side, cross[k])
            else:
                price = passive_price(i, o.side, depth[k])
            if price == o.price:
                step = -TICK if o.side == Side.BUY else TICK
                price = clamp(price + step, sim.market(i))
                if price == o.price:
                    price = clamp(price - step, sim.market(i))
            cols.add(MOD, account=o.account, cid=o.cid, price=price, qty=o.cum + o.leaves,
                     category=MOVE)
            if price != o.price:
                sim.unrest(o)
                o.price = price
                o.reserve = price if o.side == Side.BUY else 0
                sim.execute(o, price)
            sim.run_stops(i)
            continue

        # A new order.
        a, i, side, qty = accounts[k], insts[k], sides[k], qtys[k]
        cid = next_cid[a]
        next_cid[a] = cid + 1
        market = sim.market(i)
        buy = side == Side.BUY
        if cat in (IOC, MARKET) or (cat == GTC and k >= build and
                                    coins[k] < spec.aggressive_gtc):
            qty = 1 + qty // spec.aggressor_size_divisor   # takers smaller than makers
        if cat == GTC:
            if k >= build and coins[k] < spec.aggressive_gtc:
                price = crossing_price(i, side, cross[k])
            else:
                price = passive_price(i, side, depth[k])
            o = _Order(a, cid, i, side, OrderType.LIMIT, price, 0, 0, price if buy else 0, qty)
            cols.add(NEW, side, OrderType.LIMIT, TimeInForce.GTC, a, i, 0, cid, price, 0, qty,
                     GTC)
            sim.execute(o, price)
        elif cat == IOC:
            price = crossing_price(i, side, cross[k])
            o = _Order(a, cid, i, side, OrderType.LIMIT, price, 0, 0, -1, qty)
            cols.add(NEW, side, OrderType.LIMIT, TimeInForce.IOC, a, i, 0, cid, price, 0, qty,
                     IOC)
            sim.execute(o, price)
        elif cat == MARKET:
            o = _Order(a, cid, i, side, OrderType.MARKET, 0, 0, 0,
                       _collar_high(market) if buy else 0, qty)
            cols.add(NEW, side, OrderType.MARKET, TimeInForce.IOC, a, i, 0, cid, 0, 0, qty,
                     MARKET)
            sim.execute(o, _collar_high(market) if buy else _collar_low(market))
        else:   # stops: 1 .. 12 ticks away from the market, on the side that has not happened
            away = (1 + depth[k] % 12) * TICK
            stop = clamp(market + away if buy else market - away, market)
            if cat == STOP:
                o = _Order(a, cid, i, side, OrderType.STOP, 0, stop, 0,
                           _collar_high(stop) if buy else 0, qty)
                cols.add(NEW, side, OrderType.STOP, TimeInForce.GTC, a, i, 0, cid, 0, stop, qty,
                         STOP)
            elif cat == STOP_LIMIT:
                price = stop + cross[k] * TICK if buy else stop - cross[k] * TICK
                o = _Order(a, cid, i, side, OrderType.STOP_LIMIT, price, stop, 0,
                           price if buy else 0, qty)
                cols.add(NEW, side, OrderType.STOP_LIMIT, TimeInForce.GTC, a, i, 0, cid, price,
                         stop, qty, STOP_LIMIT)
            else:
                trail = 1 + depth[k] % 12
                stop = market + trail * TICK if buy else market - trail * TICK
                o = _Order(a, cid, i, side, OrderType.TRAILING_STOP, 0, stop, trail,
                           _collar_high(stop) if buy else 0, qty)
                cols.add(NEW, side, OrderType.TRAILING_STOP, TimeInForce.GTC, a, i, trail, cid,
                         0, 0, qty, TRAILING)
            sim.add_dormant(o)
        sim.run_stops(i)

    records, categories = cols.to_records()
    setup = np.zeros(len(admin) + build, COMMAND)
    setup[:len(admin)] = admin
    setup[len(admin):] = records[:build]
    main = np.ascontiguousarray(records[build:])
    setup_cats = np.concatenate([np.full(len(admin), 255, np.uint8), categories[:build]])
    _stamp(setup, 1)
    _stamp(main, len(setup) + 1)
    return Stream(spec, setup, main, setup_cats, categories[build:], len(sim.resting),
                  len(sim.dormant), sim.trades - trades_at_main, time.perf_counter() - t0)


def _stamp(commands: np.ndarray, first_seq: int) -> None:
    commands["seq"] = np.arange(first_seq, first_seq + len(commands), dtype=np.int64)
    commands["ts"] = 1_700_000_000_000_000_000 + 1_000 * commands["seq"]
