"""The kernel against the reference model: same random command streams, same everything.

A hypothesis state machine builds a market (instruments, accounts, cash, holdings), then drives
both implementations with the same stream of every command kind — valid and hostile — in
batches of random size. After each batch it demands byte-identical events, identical
canonical state (so identical balances and state hashes), and every invariant on both sides.

Runs ``RINGEX_MODEL_EXAMPLES`` examples (default 1000, the CI figure).
"""
from __future__ import annotations

import os

import numpy as np
from hypothesis import HealthCheck, event, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from core import commands as C
from core.blp import BusinessLogicProcessor
from core.canonical import check_invariants
from core.config import Capacities
from core.codes import ResultCode
from core.enums import AccountType, EventKind, OrderPhase, OrderType, Side, TimeInForce
from core.integers import MAX_CASH, NO_ID
from core.model import ReferenceModel
from core.records import COMMAND, event_as_dict
from core.kernel.integrity import structural_problems

from .strategies import (ACCOUNT_STATUSES, ACCOUNT_TYPES, INT32, INT64, instrument_specs,
                         new_orders, price_for, quantity_for, sometimes)

_CODED = [EventKind.REJECTED, EventKind.ORDER_CANCELLED]
EXAMPLES = int(os.environ.get("RINGEX_MODEL_EXAMPLES", "1000"))


def describe_difference(model_events: np.ndarray, kernel_events: np.ndarray) -> str:
    for i, (m, k) in enumerate(zip(model_events, kernel_events)):
        if m.tobytes() != k.tobytes():
            return f"event {i}:\n model  {event_as_dict(m)}\n kernel {event_as_dict(k)}"
    return f"event counts differ: model {len(model_events)}, kernel {len(kernel_events)}"


class KernelMatchesModel(RuleBasedStateMachine):
    capacities = Capacities(instruments=4, accounts=6, orders=40, positions=20,
                            client_order_ids=120)

    def __init__(self) -> None:
        super().__init__()
        self.model = ReferenceModel(self.capacities)
        self.kernel = BusinessLogicProcessor(self.capacities)
        self.pending: list[np.ndarray] = []
        self.seq = 0
        self.ts = 1_700_000_000_000_000_000
        self.specs: dict = {}
        self.accounts: list[int] = []
        self.order_ids: list[int] = [1]
        self.client_ids = sometimes(st.integers(1, 60), st.integers(-3, 0), likely_weight=40)

    # ------------------------------------------------------------ plumbing
    def submit(self, record: np.ndarray) -> None:
        self.pending.append(record)

    def flush(self) -> None:
        if not self.pending:
            return
        batch = C.batch(*self.pending)
        self.pending = []
        batch = C.stamp(batch, self.seq + 1, self.ts, 1000)
        self.seq += len(batch)
        self.ts += 1000 * len(batch)
        model_events = self.model.process(batch)
        kernel_events = self.kernel.process(batch)
        assert model_events.tobytes() == kernel_events.tobytes(), \
            describe_difference(model_events, kernel_events)
        for kind in set(model_events["kind"].tolist()):
            event(f"event {EventKind(kind).name}")
        for code in set(model_events["code"][np.isin(model_events["kind"], _CODED)].tolist()):
            event(f"code {ResultCode(code).name}")
        accepted = model_events[model_events["kind"] == EventKind.ORDER_ACCEPTED]
        self.order_ids.extend(int(i) for i in accepted["order_id"])
        self.order_ids = self.order_ids[-40:]

    def order_ref(self, data):
        return data.draw(sometimes(st.sampled_from(self.order_ids),
                                   st.one_of(st.just(0), INT64, st.integers(1, 200))))

    def account(self, data):
        return data.draw(sometimes(st.sampled_from(self.accounts),
                                   st.one_of(st.just(NO_ID), INT32), likely_weight=20))

    def instrument(self, data, allow_all: bool = False):
        hostile = st.one_of(st.just(99), INT32, st.just(NO_ID) if allow_all else st.just(77))
        return data.draw(sometimes(st.sampled_from(sorted(self.specs)), hostile,
                                   likely_weight=20))

    # ------------------------------------------------------------ the market
    @initialize(data=st.data(), n_instruments=st.integers(1, 3), n_accounts=st.integers(2, 5))
    def open_market(self, data, n_instruments, n_accounts):
        for i in range(n_instruments):
            spec = data.draw(instrument_specs(i))
            self.specs[i] = spec
            self.submit(spec.command())
        for a in range(n_accounts):
            kind = AccountType.MARGIN if a % 2 else AccountType.CASH
            self.accounts.append(a)
            self.submit(C.add_account(a, kind))
            self.submit(C.deposit_cash(a, data.draw(st.sampled_from([10**6, 10**8, 10**12]))))
            for i, spec in self.specs.items():
                self.submit(C.deposit_position(a, i, spec.lot * data.draw(st.integers(0, 40))
                                               or spec.lot, cost_basis=spec.reference))
        self.flush()

    # ------------------------------------------------------------ order flow
    def live_order(self, data):
        """A live order of the model (the oracle), or None."""
        live = list(self.model.orders.values())
        return data.draw(st.sampled_from(live)) if live else None

    @rule(data=st.data())
    def new_order(self, data):
        self.submit(data.draw(new_orders(self.accounts, self.specs, self.client_ids)))

    @rule(data=st.data())
    def new_order_again(self, data):   # weight the stream towards orders
        self.new_order(data)

    @rule(data=st.data())
    def new_order_once_more(self, data):
        self.new_order(data)

    @rule(data=st.data())
    def aggress(self, data):
        """An order that crosses the model's best opposite price: trades, sweeps, stops."""
        instrument = data.draw(st.sampled_from(sorted(self.specs)))
        spec = self.specs[instrument]
        side = data.draw(st.sampled_from([Side.BUY, Side.SELL]))
        best = self.model.books[instrument].best(Side.SELL if side == Side.BUY else Side.BUY)
        if best is None:   # supply liquidity first: a resting order on the empty side
            offset = data.draw(st.integers(0, 4)) * spec.tick
            price = spec.reference + offset if side == Side.BUY else spec.reference - offset
            quantity = spec.lot * data.draw(st.integers(1, 10))
            return self.submit(C.new_order(
                data.draw(st.sampled_from(self.accounts)), instrument,
                Side.SELL if side == Side.BUY else Side.BUY, quantity, price,
                client_order_id=data.draw(self.client_ids)))
        through = data.draw(st.integers(0, 3)) * spec.tick
        price = best.price + through if side == Side.BUY else max(spec.tick,
                                                                   best.price - through)
        order_type = data.draw(st.sampled_from([OrderType.LIMIT] * 4 + [OrderType.MARKET]))
        quantity = max(spec.lot, data.draw(st.integers(1, 2 * best.quantity)) // spec.lot
                       * spec.lot)
        self.submit(C.new_order(
            data.draw(st.sampled_from(self.accounts)), instrument, side, quantity,
            price if order_type == OrderType.LIMIT else 0,
            client_order_id=data.draw(self.client_ids), order_type=order_type,
            time_in_force=data.draw(st.sampled_from(list(TimeInForce)))))

    @rule(data=st.data())
    def cancel(self, data):
        order = self.live_order(data)
        how = data.draw(st.integers(0, 5))
        if order is not None and how < 3:
            if how == 0:
                self.submit(C.cancel(order.account, client_order_id=order.client_order_id))
            else:
                self.submit(C.cancel(order.account, order_id=order.order_id))
        elif how == 3:
            self.submit(C.cancel(self.account(data), order_id=self.order_ref(data)))
        else:
            self.submit(C.cancel(self.account(data), client_order_id=data.draw(
                sometimes(self.client_ids, INT64))))

    @rule(data=st.data())
    def modify(self, data):
        """Mostly a well-formed modify of a live order (any phase and type); sometimes not."""
        order = self.live_order(data)
        if order is None or data.draw(st.integers(0, 4)) == 0:
            spec = self.specs.get(data.draw(st.sampled_from(sorted(self.specs))))
            self.submit(C.modify(self.account(data), order_id=self.order_ref(data),
                                 quantity=data.draw(quantity_for(spec)),
                                 price=data.draw(price_for(spec)),
                                 stop_price=data.draw(sometimes(st.just(0), price_for(spec)))))
            return
        spec = self.specs[order.instrument]
        resting = order.phase == OrderPhase.RESTING
        takes_price = resting or order.order_type == OrderType.STOP_LIMIT
        takes_stop = not resting and order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        total = order.leaves + order.cum
        quantity = data.draw(st.one_of(
            st.just(total), st.integers(1, total + 5 * spec.lot).map(
                lambda q: max(spec.lot, q // spec.lot * spec.lot)), quantity_for(spec)))
        price = data.draw(st.one_of(st.just(order.price), price_for(spec))) if takes_price \
            else data.draw(sometimes(st.just(0), price_for(spec)))
        stop = data.draw(st.one_of(st.just(order.stop_price), price_for(spec, 6))) \
            if takes_stop else data.draw(sometimes(st.just(0), price_for(spec)))
        if data.draw(st.booleans()):
            self.submit(C.modify(order.account, order_id=order.order_id, quantity=quantity,
                                 price=price, stop_price=stop))
        else:
            self.submit(C.modify(order.account, client_order_id=order.client_order_id,
                                 quantity=quantity, price=price, stop_price=stop))

    @rule(data=st.data())
    def modify_again(self, data):
        self.modify(data)

    # ------------------------------------------------------------ administration
    ADMIN_WEIGHTS = (("cash", 4), ("holdings", 3), ("limits", 2), ("statuses", 2),
                     ("reference_data", 2), ("mass_cancel", 2), ("end_of_day", 1),
                     ("unknown_command", 1))

    @rule(data=st.data())
    def administration(self, data):
        """One admin command; hypothesis picks rules uniformly, so this one rule weighs them."""
        names = [name for name, weight in self.ADMIN_WEIGHTS for _ in range(weight)]
        getattr(self, data.draw(st.sampled_from(names)))(data)

    def mass_cancel(self, data):
        self.submit(C.mass_cancel(self.account(data), self.instrument(data, allow_all=True)))

    def cash(self, data):
        amount = data.draw(sometimes(st.integers(1, 10**12),
                                     st.one_of(st.just(0), INT64, st.just(MAX_CASH + 1))))
        make = C.deposit_cash if data.draw(st.booleans()) else C.withdraw_cash
        self.submit(make(self.account(data), amount))

    def holdings(self, data):
        instrument = self.instrument(data)
        spec = self.specs.get(instrument)
        qty = data.draw(quantity_for(spec))
        if data.draw(st.booleans()):
            cost = data.draw(sometimes(st.integers(0, 10**9), INT64))
            self.submit(C.deposit_position(self.account(data), instrument, qty, cost))
        else:
            self.submit(C.withdraw_position(self.account(data), instrument, qty))

    def limits(self, data):
        if data.draw(st.booleans()):
            self.submit(C.set_account_limits(
                self.account(data),
                max_order_quantity=data.draw(sometimes(st.integers(1, 2000), INT64)),
                max_order_notional=data.draw(sometimes(st.integers(1, 10**10), INT64)),
                position_limit=data.draw(sometimes(st.integers(0, 3000), INT64))))
        else:
            self.submit(C.set_position_limit(self.account(data), self.instrument(data),
                                             data.draw(sometimes(st.integers(-1, 500), INT64))))

    def statuses(self, data):
        choice = data.draw(st.integers(0, 2))
        if choice == 0:
            self.submit(C.halt(self.instrument(data)))
        elif choice == 1:
            self.submit(C.resume(self.instrument(data)))
        else:
            record = C.set_account_status(self.account(data))
            record["account_status"] = data.draw(ACCOUNT_STATUSES)
            self.submit(record)

    def reference_data(self, data):
        if data.draw(st.booleans()):
            spec = data.draw(instrument_specs(data.draw(st.integers(-1, 5))))
            record = spec.command()
            if data.draw(st.integers(0, 3)) == 0:   # a hostile field
                field = data.draw(st.sampled_from(["tick_size", "lot_size", "reference_price",
                                                   "collar_bps", "maker_fee_bps",
                                                   "asset_class", "symbol"]))
                bad = {"symbol": st.sampled_from([b"", b"A B", b"A\x00B", b"SYM0"]),
                       "collar_bps": st.integers(0, 65535),
                       "maker_fee_bps": st.integers(-32768, 32767),
                       "asset_class": st.integers(0, 255)}.get(field, INT64)
                record[field] = data.draw(bad)
            self.submit(record)
        else:
            record = C.add_account(data.draw(st.integers(-1, 8)))
            record["account_type"] = data.draw(ACCOUNT_TYPES)
            self.submit(record)

    def end_of_day(self, data):
        self.submit(C.end_of_day())

    def unknown_command(self, data):
        record = np.zeros(1, COMMAND)
        record["kind"] = data.draw(st.integers(16, 255))
        self.submit(record)

    # ------------------------------------------------------------ checking
    @precondition(lambda self: self.pending)
    @rule()
    def process_batch(self):
        self.flush()

    @invariant()
    def same_state_and_invariants_hold(self):
        if self.pending:
            return
        model_state = self.model.canonical_state()
        kernel_state = self.kernel.canonical_state()
        for name in model_state.TABLES:
            assert np.array_equal(getattr(model_state, name), getattr(kernel_state, name)), name
        assert self.model.state_hash() == self.kernel.state_hash()
        assert check_invariants(kernel_state) == []
        assert structural_problems(self.kernel.state) == []

    def teardown(self):
        self.flush()
        self.same_state_and_invariants_hold()


class KernelMatchesModelWithTightTables(KernelMatchesModel):
    """The same, with tables small enough that every 'table full' path is taken."""
    capacities = Capacities(instruments=3, accounts=4, orders=6, positions=7,
                            client_order_ids=14, price_levels=3)


_settings = settings(max_examples=EXAMPLES, stateful_step_count=100, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                            HealthCheck.filter_too_much])
TestKernelMatchesModel = KernelMatchesModel.TestCase
TestKernelMatchesModel.settings = _settings
TestKernelMatchesModelWithTightTables = KernelMatchesModelWithTightTables.TestCase
TestKernelMatchesModelWithTightTables.settings = settings(
    _settings, max_examples=max(EXAMPLES // 4, 50))
