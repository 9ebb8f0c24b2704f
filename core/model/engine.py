"""The reference model: the executable specification of the business-logic processor.

Plain Python, written to be read. The numba kernel (``core.kernel``) must produce exactly the
same events and the same canonical state for every command stream; the hypothesis tests hold
it to that. This model is never on the production path.

Order of events for one command
===============================
* Every command yields at least one event; a refused command yields exactly one ``REJECTED``.
* ``NEW_ORDER``: ``ORDER_ACCEPTED``, then its trades (each ``TRADE``, and one ``BOOK_LEVEL``
  per opposite level it touched, after that level's trades), then either the ``BOOK_LEVEL`` of
  the level it rests on or the ``ORDER_CANCELLED`` of its remainder; then triggered stops.
* Removing an order from the book (cancel, expiry, reducing modify) emits its own event first,
  then the ``BOOK_LEVEL`` of the level it left.

Stops (the deterministic chain)
===============================
The *market price* of an instrument is its last trade price, or its configured reference price
before the first trade. After each command that could move it (a trade, or a new or modified
stop), the engine repeats: take the dormant stop of that instrument that joined its stop list
earliest whose condition holds (buy: market >= stop; sell: market <=
stop), trigger it and execute it completely (its trades may move the market); until no dormant
stop's condition holds. One stop at a time, oldest first, re-evaluated after each. Trailing stops
move at every trade print: a sell's stop rises to ``price - trail`` and a buy's falls to
``price + trail`` (trail = ``trail_ticks * tick_size``), never the other way.

Reservations (pre-trade risk)
=============================
A buy reserves ``buy_reservation(reserve_price, leaves, max(maker, taker fee))``: its worst-case
cost including fee. ``reserve_price`` is the limit price for LIMIT and STOP_LIMIT; for MARKET the
collar's upper bound at entry; for STOP and TRAILING_STOP the collar's upper bound around the
(initial) stop price. A buy never trades above its reserve price, so a fill never costs more than
the reservation it frees. A sell reserves its quantity against the position (``open_sell``).

Self-match is allowed: an account may trade with itself; both sides settle (and pay fees) as
usual, maker first, then taker.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..canonical import (ACCOUNT, CLIENT_ORDER_ID, HEADER, INSTRUMENT, ORDER, POSITION,
                         CanonicalState, buy_reservation)
from ..codes import ResultCode as R
from ..config import Capacities
from ..enums import (AccountStatus, AccountType, AssetClass, CommandKind, EventKind,
                     InstrumentStatus, OrderPhase, OrderType, Side, TimeInForce)
from ..integers import (BPS, MAX_CASH, MAX_COLLAR_BPS, MAX_FEE_BPS, MAX_NOTIONAL, MAX_POSITION,
                        MAX_PRICE, MAX_QUANTITY, MAX_TRAIL_TICKS, NO_ID)
from ..records import EVENT, command_fields
from .book import Book, Order

SYMBOL_LEN = 12


@dataclass
class Instrument:
    instrument: int
    symbol: bytes
    asset_class: int
    tick_size: int
    lot_size: int
    collar_bps: int
    maker_fee_bps: int
    taker_fee_bps: int
    reference_price: int
    last_price: int = 0
    status: int = InstrumentStatus.TRADING
    units_deposited: int = 0

    @property
    def market_price(self) -> int:
        return self.last_price or self.reference_price

    @property
    def max_fee_bps(self) -> int:
        return max(self.maker_fee_bps, self.taker_fee_bps)

    def band(self, around: int) -> int:
        return around * self.collar_bps // BPS

    def collar_high(self, around: int) -> int:
        return min(around + self.band(around), MAX_PRICE)

    def collar_low(self, around: int) -> int:
        return max(around - self.band(around), 1)


@dataclass
class Account:
    account: int
    account_type: int
    status: int = AccountStatus.ACTIVE
    cash: int = 0
    reserved: int = 0
    max_order_quantity: int = MAX_QUANTITY
    max_order_notional: int = MAX_NOTIONAL
    position_limit: int = MAX_POSITION

    @property
    def available(self) -> int:
        return self.cash - self.reserved


@dataclass
class Position:
    account: int
    instrument: int
    quantity: int = 0
    cost_basis: int = 0      #: signed: the cost of the open quantity (negative when short)
    realized_pnl: int = 0    #: excluding fees
    open_buy: int = 0
    open_sell: int = 0
    fees_paid: int = 0
    position_limit: int = -1  #: -1: use the account's default


def _valid_symbol(raw: bytes) -> bool:
    """1-12 printable ASCII characters (no spaces), zero padded."""
    text = raw.rstrip(b"\0")
    return 0 < len(text) <= SYMBOL_LEN and b"\0" not in text and all(0x21 <= c <= 0x7E
                                                                      for c in text)


class ReferenceModel:
    """Processes command batches into event batches, exactly as the kernel must."""

    def __init__(self, capacities: Capacities | None = None) -> None:
        self.cap = capacities or Capacities()
        self.instruments: dict[int, Instrument] = {}
        self.accounts: dict[int, Account] = {}
        self.positions: dict[tuple[int, int], Position] = {}
        self.orders: dict[int, Order] = {}              # live orders; ids ascend in insertion
        self.books: dict[int, Book] = {}
        self.stops: dict[int, dict[int, Order]] = {}     # per instrument, in priority order
        self.client_ids: dict[tuple[int, int], int] = {}  # outcome: order id, or -code
        self.last_seq = 0
        self.next_order_id = 1
        self.next_trade_id = 1
        self.day = 0
        self.fee_income = 0
        self.cash_deposited = 0
        self.cash_withdrawn = 0
        self._events: list[dict] = []
        self._cmd: np.void | None = None

    # ------------------------------------------------------------------ driving
    def process(self, commands: np.ndarray) -> np.ndarray:
        """Apply a batch of COMMAND records in order; return their EVENT records."""
        self._events = []
        handlers = {
            CommandKind.NEW_ORDER: self._new_order, CommandKind.CANCEL: self._cancel,
            CommandKind.MODIFY: self._modify, CommandKind.MASS_CANCEL: self._mass_cancel,
            CommandKind.DEPOSIT_CASH: self._deposit_cash,
            CommandKind.WITHDRAW_CASH: self._withdraw_cash,
            CommandKind.DEPOSIT_POSITION: self._deposit_position,
            CommandKind.WITHDRAW_POSITION: self._withdraw_position,
            CommandKind.SET_ACCOUNT_LIMITS: self._set_account_limits,
            CommandKind.SET_POSITION_LIMIT: self._set_position_limit,
            CommandKind.ADD_INSTRUMENT: self._add_instrument,
            CommandKind.ADD_ACCOUNT: self._add_account,
            CommandKind.SET_ACCOUNT_STATUS: self._set_account_status,
            CommandKind.SET_INSTRUMENT_STATUS: self._set_instrument_status,
            CommandKind.END_OF_DAY: self._end_of_day,
        }
        for cmd in commands:
            self._cmd = cmd
            self.last_seq = int(cmd["seq"])
            handler = handlers.get(int(cmd["kind"]))
            if handler is None:
                self._reject(R.UNKNOWN_COMMAND)
            else:
                handler(cmd)
        out = np.zeros(len(self._events), EVENT)
        for row, fields in zip(out, self._events):
            for name, value in fields.items():
                row[name] = value
        return out

    def _emit(self, kind: EventKind, **fields) -> None:
        fields.update(seq=int(self._cmd["seq"]), ts=int(self._cmd["ts"]), kind=kind)
        self._events.append(fields)

    def _reject(self, code: R) -> None:
        """One REJECTED event echoing the ids the refused command carried."""
        cmd = self._cmd
        kind = int(cmd["kind"])
        names = command_fields(CommandKind(kind)) if kind in CommandKind._value2member_map_ \
            else ()
        self._emit(EventKind.REJECTED, command_kind=kind, code=code,
                   account=int(cmd["account"]) if "account" in names else NO_ID,
                   instrument=int(cmd["instrument"]) if "instrument" in names else NO_ID,
                   order_id=int(cmd["order_id"]) if "order_id" in names else 0,
                   client_order_id=int(cmd["client_order_id"]) if "client_order_id" in names
                   else 0)

    # ------------------------------------------------------------------ helpers
    def _position(self, account: int, instrument: int) -> Position:
        """The position, or a detached all-zero one when none exists yet."""
        return self.positions.get((account, instrument)) or Position(account, instrument)

    def _positions_full(self, account: int, instrument: int) -> bool:
        return (account, instrument) not in self.positions and \
            len(self.positions) >= self.cap.positions

    def _ensure_position(self, account: int, instrument: int) -> Position:
        key = (account, instrument)
        if key not in self.positions:
            self.positions[key] = Position(account, instrument)
        return self.positions[key]

    def _limit(self, account: Account, position: Position) -> int:
        own = position.position_limit
        return own if own >= 0 else account.position_limit

    def _required(self, order: Order, leaves: int) -> int:
        if not order.is_buy:
            return 0
        return buy_reservation(order.reserve_price, leaves,
                               self.instruments[order.instrument].max_fee_bps)

    # ------------------------------------------------------------------ NEW_ORDER
    def _new_order(self, c: np.void) -> None:
        account_id, instrument_id = int(c["account"]), int(c["instrument"])
        client_id = int(c["client_order_id"])
        account = self.accounts.get(account_id)
        if account is None:
            return self._reject(R.UNKNOWN_ACCOUNT)
        if client_id <= 0:
            return self._reject(R.INVALID_CLIENT_ORDER_ID)
        key = (account_id, client_id)
        if key in self.client_ids:
            return self._duplicate(key, instrument_id)
        if len(self.client_ids) >= self.cap.client_order_ids:
            return self._reject(R.CLIENT_ORDER_ID_TABLE_FULL)
        code, order = self._vet_new_order(c, account)
        if code != R.OK:
            self.client_ids[key] = -int(code)
            return self._reject(code)

        order.order_id = self.next_order_id
        self.next_order_id += 1
        self.client_ids[key] = order.order_id
        self.orders[order.order_id] = order
        position = self._ensure_position(account_id, instrument_id)
        account.reserved += self._required(order, order.leaves)
        if order.is_buy:
            position.open_buy += order.leaves
        else:
            position.open_sell += order.leaves
        self._emit(EventKind.ORDER_ACCEPTED, account=account_id, instrument=instrument_id,
                   order_id=order.order_id, client_order_id=client_id, side=order.side,
                   order_type=order.order_type, time_in_force=order.time_in_force,
                   trail_ticks=order.trail_ticks, price=order.price,
                   stop_price=order.stop_price, quantity=order.leaves)

        instrument = self.instruments[instrument_id]
        if order.order_type == OrderType.LIMIT:
            self._execute(order, order.price)
        elif order.order_type == OrderType.MARKET:
            market = instrument.market_price
            self._execute(order, instrument.collar_high(market) if order.is_buy
                          else instrument.collar_low(market))
        else:
            self._add_dormant(order)
        self._run_stops(instrument_id)

    def _vet_new_order(self, c: np.void, account: Account) -> tuple[R, Order | None]:
        """Validation, then pre-trade risk, then capacity. Returns (code, the order to be)."""
        side, otype, tif = int(c["side"]), int(c["order_type"]), int(c["time_in_force"])
        qty, price, stop = int(c["quantity"]), int(c["price"]), int(c["stop_price"])
        trail = int(c["trail_ticks"])
        if account.status != AccountStatus.ACTIVE:
            return R.ACCOUNT_SUSPENDED, None
        instrument = self.instruments.get(int(c["instrument"]))
        if instrument is None:
            return R.UNKNOWN_INSTRUMENT, None
        if side not in (Side.BUY, Side.SELL):
            return R.INVALID_SIDE, None
        if otype not in OrderType._value2member_map_:
            return R.INVALID_ORDER_TYPE, None
        if tif not in TimeInForce._value2member_map_:
            return R.INVALID_TIME_IN_FORCE, None
        is_stop = otype in (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP)
        if is_stop and tif in (TimeInForce.IOC, TimeInForce.FOK):
            return R.TIME_IN_FORCE_NOT_ALLOWED, None
        if not 0 < qty <= MAX_QUANTITY:
            return R.INVALID_QUANTITY, None
        if qty % instrument.lot_size:
            return R.QUANTITY_OFF_LOT, None
        has_limit = otype in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        if has_limit:
            if not 0 < price <= MAX_PRICE:
                return R.INVALID_PRICE, None
            if price % instrument.tick_size:
                return R.PRICE_OFF_TICK, None
        elif price != 0:
            return R.INVALID_PRICE, None
        if otype in (OrderType.STOP, OrderType.STOP_LIMIT):
            if not 0 < stop <= MAX_PRICE:
                return R.INVALID_STOP_PRICE, None
            if stop % instrument.tick_size:
                return R.STOP_PRICE_OFF_TICK, None
        elif stop != 0:
            return R.INVALID_STOP_PRICE, None
        if otype == OrderType.TRAILING_STOP:
            if not 0 < trail <= MAX_TRAIL_TICKS:
                return R.INVALID_TRAIL, None
        elif trail != 0:
            return R.INVALID_TRAIL, None
        if instrument.status != InstrumentStatus.TRADING:
            return R.INSTRUMENT_HALTED, None

        market = instrument.market_price
        buy = side == Side.BUY
        if otype == OrderType.TRAILING_STOP:
            distance = trail * instrument.tick_size
            stop = market + distance if buy else market - distance
            if not 0 < stop <= MAX_PRICE:
                return R.INVALID_TRAIL, None
        if otype == OrderType.LIMIT and not (
                instrument.collar_low(market) <= price <= instrument.collar_high(market)):
            return R.PRICE_OUTSIDE_COLLAR, None
        if qty > account.max_order_quantity:
            return R.MAX_ORDER_QUANTITY_EXCEEDED, None
        check_price = price if has_limit else (market if otype == OrderType.MARKET else stop)
        if check_price * qty > account.max_order_notional:
            return R.MAX_ORDER_NOTIONAL_EXCEEDED, None
        position = self._position(account.account, instrument.instrument)
        limit = self._limit(account, position)
        if buy:
            if position.quantity + position.open_buy + qty > limit:
                return R.POSITION_LIMIT_EXCEEDED, None
        else:
            if account.account_type == AccountType.CASH and \
                    position.quantity - position.open_sell < qty:
                return R.INSUFFICIENT_POSITION, None
            if position.quantity - position.open_sell - qty < -limit:
                return R.POSITION_LIMIT_EXCEEDED, None
        reserve_price = 0
        if buy:
            reserve_price = {OrderType.LIMIT: price, OrderType.STOP_LIMIT: price,
                             OrderType.MARKET: instrument.collar_high(market)}.get(
                otype, instrument.collar_high(stop))
            need = buy_reservation(reserve_price, qty, instrument.max_fee_bps)
            if need > account.available:
                return R.INSUFFICIENT_FUNDS, None
        if self._positions_full(account.account, instrument.instrument):
            return R.POSITION_TABLE_FULL, None
        if len(self.orders) >= self.cap.orders:
            return R.ORDER_TABLE_FULL, None
        order = Order(order_id=0, client_order_id=int(c["client_order_id"]),
                      account=account.account, instrument=instrument.instrument,
                      side=Side(side), order_type=OrderType(otype),
                      time_in_force=TimeInForce(tif), price=price, stop_price=stop,
                      trail_ticks=trail, reserve_price=reserve_price, leaves=qty)
        return R.OK, order

    def _duplicate(self, key: tuple[int, int], instrument_id: int) -> None:
        """A client order id seen before today: answer with the original outcome, do nothing."""
        outcome = self.client_ids[key]
        live = self.orders.get(outcome) if outcome > 0 else None
        self._emit(EventKind.DUPLICATE_ORDER, account=key[0], instrument=instrument_id,
                   client_order_id=key[1], order_id=max(outcome, 0),
                   code=0 if outcome > 0 else -outcome, live=int(live is not None),
                   leaves_quantity=live.leaves if live else 0,
                   cum_quantity=live.cum if live else 0)

    # ------------------------------------------------------------------ execution
    def _execute(self, order: Order, limit: int) -> None:
        """Trade a live order that is in no queue as the aggressor up to ``limit``; then rest
        its remainder or cancel it (IOC, FOK, and orders that never rest)."""
        book = self.books[order.instrument]
        if order.time_in_force == TimeInForce.FOK and not self._fillable(book, order, limit):
            return self._cancel_order(order, R.FOK_NOT_FILLABLE)
        for level in book.levels_crossing(order.side, limit):
            for maker in list(level.queue):
                if order.leaves == 0:
                    break
                self._trade(maker, order, level.price, min(order.leaves, maker.leaves))
                if maker.leaves == 0:
                    book.remove(maker)
                    self._close(maker)
            self._emit_level(order.instrument, Side.SELL if order.is_buy else Side.BUY,
                             level.price, book)
            if order.leaves == 0:
                break
        if order.leaves == 0:
            self._close(order)
        elif order.never_rests:
            self._cancel_order(order, R.MARKET_REMAINDER)
        elif order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            self._cancel_order(order, R.IOC_REMAINDER)
        else:
            self._rest(order)

    def _fillable(self, book: Book, order: Order, limit: int) -> bool:
        available = 0
        for level in book.levels_crossing(order.side, limit):
            available += level.quantity
            if available >= order.leaves:
                return True
        return False

    def _rest(self, order: Order) -> None:
        book = self.books[order.instrument]
        if not book.has_level(order.side, order.price) and \
                sum(b.level_count() for b in self.books.values()) >= self.cap.levels:
            return self._cancel_order(order, R.BOOK_FULL_REMAINDER)
        order.phase = OrderPhase.RESTING
        book.add(order)
        self._emit_level(order.instrument, order.side, order.price, book)

    def _emit_level(self, instrument: int, side: Side, price: int, book: Book) -> None:
        level = book.side(side).get(price)
        self._emit(EventKind.BOOK_LEVEL, instrument=instrument, side=side, price=price,
                   level_quantity=level.quantity if level else 0,
                   order_count=len(level.queue) if level else 0)

    def _trade(self, maker: Order, taker: Order, price: int, qty: int) -> None:
        instrument = self.instruments[maker.instrument]
        notional = price * qty
        maker_fee = notional * instrument.maker_fee_bps // BPS
        taker_fee = notional * instrument.taker_fee_bps // BPS
        for order in (maker, taker):
            order.leaves -= qty
            order.cum += qty
        self._emit(EventKind.TRADE, instrument=maker.instrument, trade_id=self.next_trade_id,
                   aggressor_side=taker.side, price=price, quantity=qty,
                   maker_order_id=maker.order_id, taker_order_id=taker.order_id,
                   maker_account=maker.account, taker_account=taker.account,
                   maker_leaves=maker.leaves, taker_leaves=taker.leaves,
                   maker_fee=maker_fee, taker_fee=taker_fee)
        self.next_trade_id += 1
        self._settle(maker, price, qty, maker_fee)
        self._settle(taker, price, qty, taker_fee)
        self.fee_income += maker_fee + taker_fee
        instrument.last_price = price
        self._trail(instrument, price)

    def _settle(self, order: Order, price: int, qty: int, fee: int) -> None:
        """Move cash and units for one side of a fill (``order.leaves`` already reduced)."""
        account = self.accounts[order.account]
        position = self.positions[(order.account, order.instrument)]
        if order.is_buy:
            account.reserved -= self._required(order, order.leaves + qty) - \
                self._required(order, order.leaves)
            account.cash -= price * qty + fee
            position.open_buy -= qty
            self._apply_fill(position, qty, price)
        else:
            account.cash += price * qty - fee
            position.open_sell -= qty
            self._apply_fill(position, -qty, price)
        position.fees_paid += fee

    @staticmethod
    def _apply_fill(position: Position, signed_qty: int, price: int) -> None:
        """Average-cost accounting: closing quantity realizes P&L against the average cost
        (rounded down), opening quantity adds to the cost basis."""
        held = position.quantity
        if held == 0 or (held > 0) == (signed_qty > 0):
            position.quantity += signed_qty
            position.cost_basis += signed_qty * price
            return
        closing = min(abs(signed_qty), abs(held))
        removed = abs(position.cost_basis) * closing // abs(held)
        if held > 0:   # selling out of a long
            position.realized_pnl += price * closing - removed
            position.cost_basis -= removed
            position.quantity -= closing
        else:          # buying back a short
            position.realized_pnl += removed - price * closing
            position.cost_basis += removed
            position.quantity += closing
        opening = abs(signed_qty) - closing
        if opening:
            sign = 1 if signed_qty > 0 else -1
            position.quantity += sign * opening
            position.cost_basis += sign * opening * price

    # ------------------------------------------------------------------ stops
    def _add_dormant(self, order: Order) -> None:
        order.phase = OrderPhase.DORMANT
        self.stops.setdefault(order.instrument, {})[order.order_id] = order

    def _trail(self, instrument: Instrument, price: int) -> None:
        for order in self.stops.get(instrument.instrument, {}).values():
            if order.order_type != OrderType.TRAILING_STOP:
                continue
            distance = order.trail_ticks * instrument.tick_size
            if order.is_buy:
                order.stop_price = min(order.stop_price, price + distance)
            else:
                order.stop_price = max(order.stop_price, price - distance)

    def _run_stops(self, instrument_id: int) -> None:
        instrument = self.instruments[instrument_id]
        stops = self.stops.get(instrument_id, {})
        while True:
            market = instrument.market_price
            due = next((o for o in stops.values() if
                        (market >= o.stop_price if o.is_buy else market <= o.stop_price)), None)
            if due is None:
                return
            del stops[due.order_id]
            self._emit(EventKind.STOP_TRIGGERED, account=due.account, instrument=instrument_id,
                       order_id=due.order_id, client_order_id=due.client_order_id,
                       stop_price=due.stop_price, last_price=market)
            if due.order_type == OrderType.STOP_LIMIT:
                if instrument.collar_low(market) <= due.price <= instrument.collar_high(market):
                    self._execute(due, due.price)
                else:
                    self._cancel_order(due, R.COLLAR_AT_TRIGGER)
            elif due.is_buy:
                self._execute(due, min(due.reserve_price, instrument.collar_high(market)))
            else:
                self._execute(due, instrument.collar_low(market))

    # ------------------------------------------------------------------ ending orders
    def _release(self, order: Order) -> None:
        """Give back what the order's open quantity had reserved."""
        account = self.accounts[order.account]
        position = self.positions[(order.account, order.instrument)]
        account.reserved -= self._required(order, order.leaves)
        if order.is_buy:
            position.open_buy -= order.leaves
        else:
            position.open_sell -= order.leaves

    def _unqueue(self, order: Order) -> bool:
        """Take the order out of its book level or stop list. True if it was in the book."""
        if order.order_id in self.stops.get(order.instrument, {}):
            del self.stops[order.instrument][order.order_id]
            return False
        book = self.books[order.instrument]
        level = book.side(order.side).get(order.price)
        if level is not None and order in level.queue:
            book.remove(order)
            return True
        return False

    def _close(self, order: Order) -> None:
        del self.orders[order.order_id]

    def _end_order(self, order: Order, kind: EventKind, **fields) -> None:
        """Remove a live order: release, emit ``kind``, then the BOOK_LEVEL it left.

        ``leaves_quantity`` reports the open quantity that ended, unless ``fields`` says
        otherwise (a modify that ends an order reports 0: nothing is left of it)."""
        in_book = self._unqueue(order)
        self._release(order)
        event = dict(account=order.account, instrument=order.instrument,
                     order_id=order.order_id, client_order_id=order.client_order_id,
                     leaves_quantity=order.leaves, cum_quantity=order.cum)
        event.update(fields)
        self._emit(kind, **event)
        if in_book:
            self._emit_level(order.instrument, order.side, order.price,
                             self.books[order.instrument])
        self._close(order)

    def _cancel_order(self, order: Order, reason: R) -> None:
        self._end_order(order, EventKind.ORDER_CANCELLED, code=reason)

    # ------------------------------------------------------------------ CANCEL / MODIFY
    def _locate(self, c: np.void) -> tuple[R, Order | None]:
        """Find the live order a cancel or modify names: by order id, else by client id."""
        order_id, client_id = int(c["order_id"]), int(c["client_order_id"])
        if order_id != 0:
            order = self.orders.get(order_id)
            if order is None:
                return (R.ORDER_NOT_LIVE if 0 < order_id < self.next_order_id
                        else R.UNKNOWN_ORDER), None
            if order.account != int(c["account"]):
                return R.NOT_ORDER_OWNER, None
            return R.OK, order
        if client_id != 0:
            outcome = self.client_ids.get((int(c["account"]), client_id), 0)
            if outcome <= 0:
                return R.UNKNOWN_ORDER, None
            order = self.orders.get(outcome)
            return (R.OK, order) if order else (R.ORDER_NOT_LIVE, None)
        return R.INVALID_ORDER_REFERENCE, None

    def _cancel(self, c: np.void) -> None:
        if int(c["account"]) not in self.accounts:
            return self._reject(R.UNKNOWN_ACCOUNT)
        code, order = self._locate(c)
        if code != R.OK:
            return self._reject(code)
        self._cancel_order(order, R.CANCELLED_BY_CLIENT)

    def _modify(self, c: np.void) -> None:
        account = self.accounts.get(int(c["account"]))
        if account is None:
            return self._reject(R.UNKNOWN_ACCOUNT)
        code, order = self._locate(c)
        if code == R.OK:
            code = self._vet_modify(c, account, order)
        if code != R.OK:
            return self._reject(code)
        instrument = self.instruments[order.instrument]
        new_total, new_price, new_stop = int(c["quantity"]), int(c["price"]), int(c["stop_price"])
        if order.phase == OrderPhase.RESTING or order.order_type == OrderType.TRAILING_STOP:
            new_stop = order.stop_price
        if order.order_type in (OrderType.STOP, OrderType.TRAILING_STOP):
            new_price = order.price

        if new_total <= order.cum:
            return self._end_order(order, EventKind.ORDER_REPLACED, priority_kept=0,
                                   price=order.price, stop_price=order.stop_price,
                                   quantity=new_total, leaves_quantity=0)

        new_leaves = new_total - order.cum
        keep = new_price == order.price and new_stop == order.stop_price and \
            new_leaves <= order.leaves
        position = self.positions[(order.account, order.instrument)]
        new_reserve = self._modified_reserve_price(order, instrument, new_price, new_stop)
        account.reserved -= self._required(order, order.leaves)
        delta = new_leaves - order.leaves
        if order.is_buy:
            position.open_buy += delta
        else:
            position.open_sell += delta
        was_in_book = False if keep else self._unqueue(order)
        old_price = order.price
        order.price, order.stop_price, order.reserve_price = new_price, new_stop, new_reserve
        order.leaves = new_leaves
        account.reserved += self._required(order, order.leaves)
        self._emit(EventKind.ORDER_REPLACED, account=order.account, instrument=order.instrument,
                   order_id=order.order_id, client_order_id=order.client_order_id,
                   priority_kept=int(keep), price=order.price, stop_price=order.stop_price,
                   quantity=new_total, leaves_quantity=order.leaves, cum_quantity=order.cum)
        book = self.books[order.instrument]
        if keep:
            if order.phase == OrderPhase.RESTING:
                self._emit_level(order.instrument, order.side, order.price, book)
        else:
            if was_in_book:
                self._emit_level(order.instrument, order.side, old_price, book)
            if order.phase == OrderPhase.RESTING:
                self._execute(order, order.price)
            else:
                self._add_dormant(order)
        self._run_stops(order.instrument)

    @staticmethod
    def _modified_reserve_price(order: Order, instrument: Instrument, price: int,
                                stop: int) -> int:
        if not order.is_buy or order.order_type == OrderType.TRAILING_STOP:
            return order.reserve_price
        if order.order_type == OrderType.STOP:
            return instrument.collar_high(stop)
        return price

    def _vet_modify(self, c: np.void, account: Account, order: Order) -> R:
        instrument = self.instruments[order.instrument]
        new_total, price, stop = int(c["quantity"]), int(c["price"]), int(c["stop_price"])
        if account.status != AccountStatus.ACTIVE:
            return R.ACCOUNT_SUSPENDED
        if instrument.status != InstrumentStatus.TRADING:
            return R.INSTRUMENT_HALTED
        if not 0 < new_total <= MAX_QUANTITY:
            return R.INVALID_QUANTITY
        if new_total % instrument.lot_size:
            return R.QUANTITY_OFF_LOT
        resting = order.phase == OrderPhase.RESTING
        takes_price = resting or order.order_type == OrderType.STOP_LIMIT
        takes_stop = not resting and order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        if takes_price:
            if not 0 < price <= MAX_PRICE:
                return R.INVALID_PRICE
            if price % instrument.tick_size:
                return R.PRICE_OFF_TICK
        elif price != 0:
            return R.INVALID_PRICE
        if takes_stop:
            if not 0 < stop <= MAX_PRICE:
                return R.INVALID_STOP_PRICE
            if stop % instrument.tick_size:
                return R.STOP_PRICE_OFF_TICK
        elif stop != 0:
            return R.INVALID_STOP_PRICE
        if new_total <= order.cum:
            return R.OK          # the modify ends the order: nothing more to check

        new_price = price if takes_price else order.price
        new_stop = stop if takes_stop else order.stop_price
        market = instrument.market_price
        if resting and new_price != order.price and not (
                instrument.collar_low(market) <= new_price <= instrument.collar_high(market)):
            return R.PRICE_OUTSIDE_COLLAR
        old_total = order.leaves + order.cum
        if new_total > old_total and new_total > account.max_order_quantity:
            return R.MAX_ORDER_QUANTITY_EXCEEDED
        check_old = order.price if order.price else order.stop_price
        check_new = new_price if new_price else new_stop
        if check_new * new_total > check_old * old_total and \
                check_new * new_total > account.max_order_notional:
            return R.MAX_ORDER_NOTIONAL_EXCEEDED
        position = self.positions[(order.account, order.instrument)]
        limit = self._limit(account, position)
        delta = new_total - order.cum - order.leaves
        if delta > 0:
            if order.is_buy:
                if position.quantity + position.open_buy + delta > limit:
                    return R.POSITION_LIMIT_EXCEEDED
            else:
                if account.account_type == AccountType.CASH and \
                        position.quantity - position.open_sell < delta:
                    return R.INSUFFICIENT_POSITION
                if position.quantity - position.open_sell - delta < -limit:
                    return R.POSITION_LIMIT_EXCEEDED
        if order.is_buy:
            reserve = self._modified_reserve_price(order, instrument, new_price, new_stop)
            need = buy_reservation(reserve, new_total - order.cum, instrument.max_fee_bps) - \
                self._required(order, order.leaves)
            if need > account.available:
                return R.INSUFFICIENT_FUNDS
        return R.OK

    # ------------------------------------------------------------------ MASS_CANCEL / EOD
    def _mass_cancel(self, c: np.void) -> None:
        account_id, instrument_id = int(c["account"]), int(c["instrument"])
        if account_id not in self.accounts:
            return self._reject(R.UNKNOWN_ACCOUNT)
        if instrument_id != NO_ID and instrument_id not in self.instruments:
            return self._reject(R.UNKNOWN_INSTRUMENT)
        doomed = [o for o in self.orders.values() if o.account == account_id and
                  instrument_id in (NO_ID, o.instrument)]
        for order in doomed:
            self._cancel_order(order, R.CANCELLED_BY_MASS_CANCEL)
        self._emit(EventKind.MASS_CANCELLED, account=account_id, instrument=instrument_id,
                   order_count=len(doomed))

    def _end_of_day(self, c: np.void) -> None:
        """Expire every DAY order (in order id order), forget the day's client order ids of
        orders no longer live, and start the next trading day."""
        expiring = [o for o in self.orders.values() if o.time_in_force == TimeInForce.DAY]
        for order in expiring:
            self._end_order(order, EventKind.ORDER_EXPIRED)
        self.client_ids = {k: v for k, v in self.client_ids.items() if v in self.orders}
        self.day += 1
        self._emit(EventKind.DAY_ENDED, day=self.day, order_count=len(expiring))

    # ------------------------------------------------------------------ admin
    def _add_instrument(self, c: np.void) -> None:
        iid = int(c["instrument"])
        symbol = bytes(c["symbol"])  # numpy drops the trailing NUL padding
        tick, lot, ref = int(c["tick_size"]), int(c["lot_size"]), int(c["reference_price"])
        collar = int(c["collar_bps"])
        maker, taker = int(c["maker_fee_bps"]), int(c["taker_fee_bps"])
        checks = (
            (lambda: iid < 0, R.INVALID_ID),
            (lambda: iid >= self.cap.instruments, R.INSTRUMENT_TABLE_FULL),
            (lambda: iid in self.instruments, R.INSTRUMENT_EXISTS),
            (lambda: not _valid_symbol(symbol), R.INVALID_SYMBOL),
            (lambda: any(i.symbol == symbol for i in self.instruments.values()),
             R.DUPLICATE_SYMBOL),
            (lambda: int(c["asset_class"]) not in AssetClass._value2member_map_,
             R.INVALID_ASSET_CLASS),
            (lambda: not 0 < tick <= MAX_PRICE, R.INVALID_TICK_SIZE),
            (lambda: not 0 < lot <= MAX_QUANTITY, R.INVALID_LOT_SIZE),
            (lambda: not 0 < ref <= MAX_PRICE or ref % tick != 0, R.INVALID_REFERENCE_PRICE),
            (lambda: not 0 < collar <= MAX_COLLAR_BPS, R.INVALID_COLLAR),
            (lambda: not (0 <= maker <= MAX_FEE_BPS and 0 <= taker <= MAX_FEE_BPS),
             R.INVALID_FEE),
        )
        for failed, code in checks:
            if failed():
                return self._reject(code)
        self.instruments[iid] = Instrument(
            instrument=iid, symbol=symbol, asset_class=int(c["asset_class"]),
            tick_size=tick, lot_size=lot, collar_bps=collar, maker_fee_bps=maker,
            taker_fee_bps=taker, reference_price=ref)
        self.books[iid] = Book()
        self._emit(EventKind.INSTRUMENT_ADDED, instrument=iid, symbol=symbol,
                   asset_class=int(c["asset_class"]), collar_bps=collar, maker_fee_bps=maker,
                   taker_fee_bps=taker, tick_size=tick, lot_size=lot, reference_price=ref)

    def _add_account(self, c: np.void) -> None:
        aid, kind = int(c["account"]), int(c["account_type"])
        if aid < 0:
            return self._reject(R.INVALID_ID)
        if aid >= self.cap.accounts:
            return self._reject(R.ACCOUNT_TABLE_FULL)
        if aid in self.accounts:
            return self._reject(R.ACCOUNT_EXISTS)
        if kind not in AccountType._value2member_map_:
            return self._reject(R.INVALID_ACCOUNT_TYPE)
        self.accounts[aid] = Account(aid, kind)
        self._emit(EventKind.ACCOUNT_ADDED, account=aid, account_type=kind)

    def _deposit_cash(self, c: np.void) -> None:
        account, amount = self.accounts.get(int(c["account"])), int(c["amount"])
        if account is None:
            return self._reject(R.UNKNOWN_ACCOUNT)
        if not 0 < amount <= MAX_CASH:
            return self._reject(R.INVALID_AMOUNT)
        if self.cash_deposited - self.cash_withdrawn + amount > MAX_CASH:
            return self._reject(R.CASH_LIMIT_EXCEEDED)
        account.cash += amount
        self.cash_deposited += amount
        self._emit(EventKind.CASH_MOVED, account=account.account, amount=amount,
                   cash_balance=account.cash)

    def _withdraw_cash(self, c: np.void) -> None:
        account, amount = self.accounts.get(int(c["account"])), int(c["amount"])
        if account is None:
            return self._reject(R.UNKNOWN_ACCOUNT)
        if not 0 < amount <= MAX_CASH:
            return self._reject(R.INVALID_AMOUNT)
        if amount > account.available:
            return self._reject(R.INSUFFICIENT_FUNDS)
        account.cash -= amount
        self.cash_withdrawn += amount
        self._emit(EventKind.CASH_MOVED, account=account.account, amount=-amount,
                   cash_balance=account.cash)

    def _deposit_position(self, c: np.void) -> None:
        aid, iid = int(c["account"]), int(c["instrument"])
        qty, cost = int(c["quantity"]), int(c["amount"])
        if aid not in self.accounts:
            return self._reject(R.UNKNOWN_ACCOUNT)
        if iid not in self.instruments:
            return self._reject(R.UNKNOWN_INSTRUMENT)
        if not 0 < qty <= MAX_QUANTITY:
            return self._reject(R.INVALID_QUANTITY)
        if not 0 <= cost <= qty * MAX_PRICE:
            return self._reject(R.INVALID_AMOUNT)
        position = self._position(aid, iid)
        if position.quantity < 0:
            return self._reject(R.POSITION_IS_SHORT)
        if position.quantity + position.open_buy + qty > MAX_POSITION:
            return self._reject(R.POSITION_LIMIT_EXCEEDED)
        if self._positions_full(aid, iid):
            return self._reject(R.POSITION_TABLE_FULL)
        position = self._ensure_position(aid, iid)
        position.quantity += qty
        position.cost_basis += cost
        self.instruments[iid].units_deposited += qty
        self._emit(EventKind.POSITION_MOVED, account=aid, instrument=iid, amount=cost,
                   quantity=qty, position_quantity=position.quantity)

    def _withdraw_position(self, c: np.void) -> None:
        aid, iid, qty = int(c["account"]), int(c["instrument"]), int(c["quantity"])
        if aid not in self.accounts:
            return self._reject(R.UNKNOWN_ACCOUNT)
        if iid not in self.instruments:
            return self._reject(R.UNKNOWN_INSTRUMENT)
        if not 0 < qty <= MAX_QUANTITY:
            return self._reject(R.INVALID_QUANTITY)
        position = self._position(aid, iid)
        if position.quantity - position.open_sell < qty:
            return self._reject(R.INSUFFICIENT_POSITION)
        removed = position.cost_basis * qty // position.quantity
        position.cost_basis -= removed
        position.quantity -= qty
        self.instruments[iid].units_deposited -= qty
        self._emit(EventKind.POSITION_MOVED, account=aid, instrument=iid, amount=-removed,
                   quantity=-qty, position_quantity=position.quantity)

    def _set_account_limits(self, c: np.void) -> None:
        account = self.accounts.get(int(c["account"]))
        qty, notional = int(c["max_order_quantity"]), int(c["max_order_notional"])
        limit = int(c["position_limit"])
        if account is None:
            return self._reject(R.UNKNOWN_ACCOUNT)
        if not (0 < qty <= MAX_QUANTITY and 0 < notional <= MAX_NOTIONAL and
                0 <= limit <= MAX_POSITION):
            return self._reject(R.INVALID_LIMIT)
        account.max_order_quantity, account.max_order_notional = qty, notional
        account.position_limit = limit
        self._emit(EventKind.ACCOUNT_LIMITS_SET, account=account.account, max_order_quantity=qty,
                   max_order_notional=notional, position_limit=limit)

    def _set_position_limit(self, c: np.void) -> None:
        aid, iid, limit = int(c["account"]), int(c["instrument"]), int(c["position_limit"])
        if aid not in self.accounts:
            return self._reject(R.UNKNOWN_ACCOUNT)
        if iid not in self.instruments:
            return self._reject(R.UNKNOWN_INSTRUMENT)
        if not -1 <= limit <= MAX_POSITION:
            return self._reject(R.INVALID_LIMIT)
        if self._positions_full(aid, iid):
            return self._reject(R.POSITION_TABLE_FULL)
        self._ensure_position(aid, iid).position_limit = limit
        self._emit(EventKind.POSITION_LIMIT_SET, account=aid, instrument=iid,
                   position_limit=limit)

    def _set_account_status(self, c: np.void) -> None:
        account, status = self.accounts.get(int(c["account"])), int(c["account_status"])
        if account is None:
            return self._reject(R.UNKNOWN_ACCOUNT)
        if status not in AccountStatus._value2member_map_:
            return self._reject(R.INVALID_STATUS)
        account.status = status
        self._emit(EventKind.ACCOUNT_STATUS_CHANGED, account=account.account,
                   account_status=status)

    def _set_instrument_status(self, c: np.void) -> None:
        instrument = self.instruments.get(int(c["instrument"]))
        status = int(c["instrument_status"])
        if instrument is None:
            return self._reject(R.UNKNOWN_INSTRUMENT)
        if status not in InstrumentStatus._value2member_map_:
            return self._reject(R.INVALID_STATUS)
        instrument.status = status
        self._emit(EventKind.INSTRUMENT_STATUS_CHANGED, instrument=instrument.instrument,
                   instrument_status=status)

    # ------------------------------------------------------------------ canonical state
    def canonical_state(self) -> CanonicalState:
        header = np.array([(self.last_seq, self.next_order_id, self.next_trade_id,
                            self.day, self.fee_income, self.cash_deposited,
                            self.cash_withdrawn)], HEADER)
        instruments = np.array(
            [(i.instrument, i.symbol, i.asset_class, i.status, i.collar_bps, i.maker_fee_bps,
              i.taker_fee_bps, i.tick_size, i.lot_size, i.reference_price, i.last_price,
              i.units_deposited) for _, i in sorted(self.instruments.items())], INSTRUMENT)
        accounts = np.array(
            [(a.account, a.account_type, a.status, a.cash, a.reserved, a.max_order_quantity,
              a.max_order_notional, a.position_limit) for _, a in sorted(self.accounts.items())],
            ACCOUNT)
        positions = np.array(
            [(p.account, p.instrument, p.quantity, p.cost_basis, p.realized_pnl, p.open_buy,
              p.open_sell, p.fees_paid, p.position_limit)
             for _, p in sorted(self.positions.items())], POSITION)
        orders = np.array(
            [(o.order_id, o.client_order_id, o.account, o.instrument, o.side, o.order_type,
              o.time_in_force, o.phase, o.price, o.stop_price, o.trail_ticks, o.reserve_price,
              o.leaves, o.cum, self._queue_position(o)) for _, o in sorted(self.orders.items())],
            ORDER)
        client_ids = np.array([(a, cid, v) for (a, cid), v in sorted(self.client_ids.items())],
                              CLIENT_ORDER_ID)
        return CanonicalState(header, instruments, accounts, positions, orders, client_ids)

    def _queue_position(self, order: Order) -> int:
        if order.phase == OrderPhase.DORMANT:
            return list(self.stops[order.instrument]).index(order.order_id)
        return self.books[order.instrument].side(order.side)[order.price].queue.index(order)

    def state_hash(self) -> bytes:
        return self.canonical_state().digest()
