"""Hypothesis strategies for BLP command streams: mostly plausible, sometimes hostile.

Values are drawn around each instrument's reference price in ticks, so orders meet, trade,
trigger stops and hit collars; a minority of draws are malformed on purpose (off tick, off lot,
zero, negative, huge, unknown ids, invalid enums) to exercise every rejection path.
"""
from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from core import commands as C
from core.enums import AccountStatus, AccountType, OrderType, Side, TimeInForce
from core.integers import MAX_PRICE, MAX_QUANTITY, NO_ID

INT32 = st.integers(-2**31, 2**31 - 1)
INT64 = st.integers(-2**63, 2**63 - 1)


@dataclass(frozen=True)
class InstrumentSpec:
    instrument: int
    symbol: str
    tick: int
    lot: int
    reference_ticks: int
    collar_bps: int
    maker_fee_bps: int
    taker_fee_bps: int

    @property
    def reference(self) -> int:
        return self.reference_ticks * self.tick

    def command(self):
        return C.add_instrument(self.instrument, self.symbol, tick_size=self.tick,
                                lot_size=self.lot, reference_price=self.reference,
                                collar_bps=self.collar_bps, maker_fee_bps=self.maker_fee_bps,
                                taker_fee_bps=self.taker_fee_bps)


def instrument_specs(instrument: int) -> st.SearchStrategy[InstrumentSpec]:
    return st.builds(
        InstrumentSpec, instrument=st.just(instrument),
        symbol=st.just(f"SYM{instrument}"), tick=st.sampled_from([1, 5, 100]),
        lot=st.sampled_from([1, 1, 10, 100]), reference_ticks=st.integers(50, 2000),
        collar_bps=st.sampled_from([300, 1000, 2500, 10000]),
        maker_fee_bps=st.sampled_from([0, 0, 1, 10]),
        taker_fee_bps=st.sampled_from([0, 3, 25, 1000]))


def sometimes(likely: st.SearchStrategy, hostile: st.SearchStrategy,
              hostile_weight: int = 1, likely_weight: int = 12) -> st.SearchStrategy:
    """``likely`` most of the time, ``hostile`` with weight ``hostile_weight``.

    (Not ``st.one_of([likely] * n, ...)``: one_of drops duplicate branches, which silently
    turns any weighting into 50/50.) Shrinks towards ``likely``."""
    total = likely_weight + hostile_weight
    return st.integers(0, total - 1).flatmap(
        lambda k: likely if k < likely_weight else hostile)


def off_grid(step: int, up_to: int) -> st.SearchStrategy[int]:
    """Positive values that are not a multiple of ``step`` (nothing when step is 1)."""
    if step == 1:
        return st.nothing()
    return st.tuples(st.integers(0, max(1, up_to // step)), st.integers(1, step - 1)).map(
        lambda t: t[0] * step + t[1])


def price_for(spec: InstrumentSpec | None, spread_ticks: int = 12) -> st.SearchStrategy[int]:
    if spec is None:
        return st.integers(1, 10_000)
    near = st.integers(-spread_ticks, spread_ticks).map(
        lambda k: max(1, spec.reference_ticks + k) * spec.tick)
    hostile = st.one_of(st.just(0), st.integers(-10**6, -1), st.just(MAX_PRICE + 1),
                        off_grid(spec.tick, 2 * spec.reference),
                        st.integers(1, 4 * spec.reference_ticks).map(lambda k: k * spec.tick),
                        INT64)
    return sometimes(near, hostile, likely_weight=25)


def quantity_for(spec: InstrumentSpec | None) -> st.SearchStrategy[int]:
    lot = spec.lot if spec else 1
    good = st.integers(1, 12).map(lambda n: n * lot)
    hostile = st.one_of(st.just(0), st.integers(-1000, -1), st.just(MAX_QUANTITY + 1),
                        off_grid(lot, 10 * lot), INT64)
    return sometimes(good, hostile, likely_weight=25)


ORDER_TYPES = sometimes(
    st.sampled_from([OrderType.LIMIT] * 6 + [OrderType.MARKET, OrderType.STOP,
                                              OrderType.STOP_LIMIT, OrderType.TRAILING_STOP]),
    st.sampled_from([0, 6, 255]), likely_weight=30)
TIFS = sometimes(st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.DAY,
                                  TimeInForce.IOC, TimeInForce.FOK]),
                 st.sampled_from([0, 5, 200]), likely_weight=30)
SIDES = sometimes(st.sampled_from([Side.BUY, Side.SELL]), st.sampled_from([0, 3, 255]),
                  likely_weight=30)
ACCOUNT_TYPES = sometimes(st.sampled_from([AccountType.CASH, AccountType.MARGIN]),
                          st.sampled_from([0, 3]))
ACCOUNT_STATUSES = sometimes(st.sampled_from([AccountStatus.ACTIVE, AccountStatus.SUSPENDED]),
                             st.sampled_from([0, 9]))


@st.composite
def new_orders(draw, accounts: list[int], specs: dict[int, InstrumentSpec], client_ids):
    account = draw(sometimes(st.sampled_from(accounts), st.one_of(st.just(NO_ID), INT32),
                             likely_weight=30))
    instrument = draw(sometimes(st.sampled_from(sorted(specs)), st.one_of(st.just(99), INT32),
                                likely_weight=30))
    spec = specs.get(instrument)
    order_type = draw(ORDER_TYPES)
    has_limit = order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    has_stop = order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
    price = draw(price_for(spec)) if has_limit else draw(
        sometimes(st.just(0), price_for(spec), likely_weight=40))
    stop = draw(price_for(spec, 6)) if has_stop else draw(
        sometimes(st.just(0), price_for(spec), likely_weight=40))
    trail = draw(sometimes(st.integers(1, 8), st.one_of(st.just(0), st.integers(-5, -1),
                                                        st.just(2**20 + 1), INT32))) \
        if order_type == OrderType.TRAILING_STOP else draw(sometimes(st.just(0), INT32,
                                                                     likely_weight=40))
    dormant_first = order_type in (OrderType.STOP, OrderType.STOP_LIMIT,
                                   OrderType.TRAILING_STOP)
    tif = draw(sometimes(st.sampled_from([TimeInForce.DAY, TimeInForce.GTC]), TIFS, 1, 6)
               if dormant_first else TIFS)
    return C.new_order(account, instrument, draw(SIDES), draw(quantity_for(spec)), price,
                       client_order_id=draw(client_ids), order_type=order_type,
                       time_in_force=tif, stop_price=stop, trail_ticks=trail)
