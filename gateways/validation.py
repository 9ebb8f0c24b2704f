"""Validation before sequencing: a checked request becomes an engine ``Command``, or a
``Rejection`` that never reaches the journal.

What is checked here needs no engine state beyond reference data (``ReferenceData``, from the
engine's ``reference`` control op): the account is one the session's key may trade, the symbol
is known, enumerations are spelled right, integers are inside the bounds of
``core.integers``, prices sit on the instrument's tick and quantities on its lot, and each order
type carries exactly the prices it needs. The checks mirror the engine's own stateless checks,
in the engine's order and with the engine's result codes (``core.codes.ResultCode``), so a
request is refused here only when the engine would refuse it too. What needs state (funds,
positions, collars, halts, the order being live) is the engine's to decide.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

from core.codes import ResultCode as R
from core.enums import CommandKind, OrderType, Side, TimeInForce
from core.integers import MAX_PRICE, MAX_QUANTITY, MAX_TRAIL_TICKS, NO_ID

from .codes import GatewayCode as G
from .protocol import Rejection, Request
from .sessions import Session

MAX_ID = 2**63 - 1

SIDES = {"buy": Side.BUY, "sell": Side.SELL}
ORDER_TYPES = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP,
               "stop_limit": OrderType.STOP_LIMIT, "trailing_stop": OrderType.TRAILING_STOP}
TIMES_IN_FORCE = {"day": TimeInForce.DAY, "gtc": TimeInForce.GTC, "ioc": TimeInForce.IOC,
                  "fok": TimeInForce.FOK}
SIDE_NAMES = {v: k for k, v in SIDES.items()}
ORDER_TYPE_NAMES = {v: k for k, v in ORDER_TYPES.items()}
TIME_IN_FORCE_NAMES = {v: k for k, v in TIMES_IN_FORCE.items()}
_LIMIT_TYPES = (OrderType.LIMIT, OrderType.STOP_LIMIT)
_STOP_TYPES = (OrderType.STOP, OrderType.STOP_LIMIT)
_DORMANT_TYPES = (OrderType.STOP, OrderType.STOP_LIMIT, OrderType.TRAILING_STOP)


class Command(NamedTuple):
    """One validated engine command, field names as in ``core.records`` (unused ones 0)."""
    kind: int
    account: int
    instrument: int = 0
    side: int = 0
    order_type: int = 0
    time_in_force: int = 0
    trail_ticks: int = 0
    client_order_id: int = 0
    order_id: int = 0
    price: int = 0
    stop_price: int = 0
    quantity: int = 0


@dataclass(frozen=True)
class Instrument:
    instrument: int
    symbol: str
    tick_size: int
    lot_size: int
    status: int


@dataclass(frozen=True)
class ReferenceData:
    """Instruments as of engine sequence number ``seq``, kept current between queries by the
    events that change them (``add``, ``set_status``)."""
    seq: int
    by_symbol: dict[str, Instrument]
    by_id: dict[int, Instrument]

    @classmethod
    def from_reply(cls, reply: dict) -> "ReferenceData":
        """From a ``reference`` control reply; raises ValueError on a malformed one."""
        if not isinstance(reply, dict) or "error" in reply or \
                not isinstance(reply.get("instruments"), list):
            raise ValueError(f"not a reference reply: {str(reply)[:200]}")
        by_symbol, by_id = {}, {}
        for entry in reply["instruments"]:
            try:
                item = Instrument(int(entry["instrument"]), str(entry["symbol"]),
                                  int(entry["tick_size"]), int(entry["lot_size"]),
                                  int(entry["status"]))
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"malformed instrument in reference reply: {e}") from None
            if item.tick_size <= 0 or item.lot_size <= 0:
                raise ValueError(f"instrument {item.symbol} has tick or lot size <= 0")
            by_symbol[item.symbol] = item
            by_id[item.instrument] = item
        return cls(int(reply.get("seq", 0)), by_symbol, by_id)

    def add(self, item: Instrument) -> None:
        self.by_symbol[item.symbol] = item
        self.by_id[item.instrument] = item

    def set_status(self, instrument: int, status: int) -> None:
        item = self.by_id.get(instrument)
        if item is not None:
            self.add(replace(item, status=status))


#: (account, order_id, client_order_id) -> the instrument of that order if the gateway knows it
OrderInstrument = Callable[[int, int, int], "int | None"]


class Validator:
    """Turns checked requests of a session into commands. Reference data is swapped in
    whole (``reference``) whenever the gateway learns newer."""

    def __init__(self, reference: ReferenceData | None = None,
                 order_instrument: OrderInstrument | None = None) -> None:
        self.reference = reference
        self.order_instrument = order_instrument or (lambda account, order_id, clordid: None)

    def command(self, request: Request, session: Session) -> Command | Rejection:
        """The engine command for an order-flow request (new_order, cancel, modify,
        mass_cancel), or why not."""
        check = _CHECKS[request.type]
        try:
            return check(self, request.body, session)
        except _Refused as refused:
            clordid = request.body.get("client_order_id")
            return Rejection(refused.code, refused.detail, request.req, request.type,
                             clordid if type(clordid) is int and 0 <= clordid <= MAX_ID
                             else None)

    def order_reference(self, request: Request, session: Session
                        ) -> tuple[int, int, int] | Rejection:
        """(account, order_id, client_order_id) of an order_status request, or why not."""
        try:
            account = self._account(request.body, session)
            return (account, *self._order_ref(request.body))
        except _Refused as refused:
            return Rejection(refused.code, refused.detail, request.req, request.type)

    # ------------------------------------------------------------ pieces
    def _account(self, body: dict, session: Session) -> int:
        account = body.get("account", session.default_account)
        if account is None:
            raise _Refused(G.MISSING_FIELD, "account (this key may trade several accounts)")
        if account not in session.accounts:
            raise _Refused(G.ACCOUNT_NOT_AUTHORISED, f"account {account}")
        return account

    def _instrument(self, symbol: str) -> Instrument:
        if self.reference is None:
            raise _Refused(G.ENGINE_UNAVAILABLE, "no reference data from the engine yet")
        instrument = self.reference.by_symbol.get(symbol)
        if instrument is None:
            raise _Refused(R.UNKNOWN_INSTRUMENT, f"{symbol[:40]!r}")
        return instrument

    @staticmethod
    def _order_ref(body: dict) -> tuple[int, int]:
        order_id = body.get("order_id", 0)
        clordid = body.get("client_order_id", 0)
        if (order_id != 0) == (clordid != 0):
            raise _Refused(R.INVALID_ORDER_REFERENCE, "give order_id or client_order_id")
        if not 0 <= order_id <= MAX_ID or not 0 <= clordid <= MAX_ID:
            raise _Refused(R.INVALID_ORDER_REFERENCE, f"ids are in 1..{MAX_ID}")
        return order_id, clordid

    # ------------------------------------------------------------ requests
    def _new_order(self, body: dict, session: Session) -> Command:
        account = self._account(body, session)
        clordid = body["client_order_id"]
        if not 0 < clordid <= MAX_ID:
            raise _Refused(R.INVALID_CLIENT_ORDER_ID, f"got {clordid}")
        instrument = self._instrument(body["symbol"])
        side = SIDES.get(body["side"])
        if side is None:
            raise _Refused(R.INVALID_SIDE, f"got {body['side'][:40]!r}")
        otype = ORDER_TYPES.get(body.get("order_type", "limit"))
        if otype is None:
            raise _Refused(R.INVALID_ORDER_TYPE, f"got {body['order_type'][:40]!r}")
        tif = TIMES_IN_FORCE.get(body.get("time_in_force", "day"))
        if tif is None:
            raise _Refused(R.INVALID_TIME_IN_FORCE, f"got {body['time_in_force'][:40]!r}")
        if otype in _DORMANT_TYPES and tif in (TimeInForce.IOC, TimeInForce.FOK):
            raise _Refused(R.TIME_IN_FORCE_NOT_ALLOWED, f"{ORDER_TYPE_NAMES[otype]} with "
                                                        f"{TIME_IN_FORCE_NAMES[tif]}")
        quantity = body["quantity"]
        _quantity(quantity, instrument)
        price = body.get("price", 0)
        if otype in _LIMIT_TYPES:
            _price(price, instrument, R.INVALID_PRICE, R.PRICE_OFF_TICK, "price")
        elif price != 0:
            raise _Refused(R.INVALID_PRICE, f"a {ORDER_TYPE_NAMES[otype]} order has no price")
        stop = body.get("stop_price", 0)
        if otype in _STOP_TYPES:
            _price(stop, instrument, R.INVALID_STOP_PRICE, R.STOP_PRICE_OFF_TICK, "stop_price")
        elif stop != 0:
            raise _Refused(R.INVALID_STOP_PRICE,
                           f"a {ORDER_TYPE_NAMES[otype]} order has no stop_price")
        trail = body.get("trail_ticks", 0)
        if otype == OrderType.TRAILING_STOP:
            if not 0 < trail <= MAX_TRAIL_TICKS:
                raise _Refused(R.INVALID_TRAIL, f"got {trail}")
        elif trail != 0:
            raise _Refused(R.INVALID_TRAIL, f"a {ORDER_TYPE_NAMES[otype]} order has no "
                                            f"trail_ticks")
        return Command(CommandKind.NEW_ORDER, account, instrument.instrument, side, otype, tif,
                       trail, clordid, 0, price, stop, quantity)

    def _cancel(self, body: dict, session: Session) -> Command:
        account = self._account(body, session)
        order_id, clordid = self._order_ref(body)
        return Command(CommandKind.CANCEL, account, order_id=order_id, client_order_id=clordid)

    def _modify(self, body: dict, session: Session) -> Command:
        account = self._account(body, session)
        order_id, clordid = self._order_ref(body)
        known = self.order_instrument(account, order_id, clordid)
        instrument = self.reference.by_id.get(known) if known is not None and \
            self.reference is not None else None
        quantity = body["quantity"]
        _quantity(quantity, instrument)
        price, stop = body.get("price", 0), body.get("stop_price", 0)
        if price != 0:
            _price(price, instrument, R.INVALID_PRICE, R.PRICE_OFF_TICK, "price")
        if stop != 0:
            _price(stop, instrument, R.INVALID_STOP_PRICE, R.STOP_PRICE_OFF_TICK, "stop_price")
        return Command(CommandKind.MODIFY, account, order_id=order_id, client_order_id=clordid,
                       price=price, stop_price=stop, quantity=quantity)

    def _mass_cancel(self, body: dict, session: Session) -> Command:
        account = self._account(body, session)
        instrument = self._instrument(body["symbol"]).instrument if "symbol" in body else NO_ID
        return Command(CommandKind.MASS_CANCEL, account, instrument)


class _Refused(Exception):
    def __init__(self, code: int, detail: str) -> None:
        self.code = code
        self.detail = detail


def _quantity(quantity: int, instrument: Instrument | None) -> None:
    if not 0 < quantity <= MAX_QUANTITY:
        raise _Refused(R.INVALID_QUANTITY, f"got {quantity}")
    if instrument is not None and quantity % instrument.lot_size:
        raise _Refused(R.QUANTITY_OFF_LOT, f"{quantity} is not a multiple of lot "
                                           f"{instrument.lot_size} of {instrument.symbol}")


def _price(price: int, instrument: Instrument | None, invalid: R, off_tick: R,
           name: str) -> None:
    if not 0 < price <= MAX_PRICE:
        raise _Refused(invalid, f"{name} {price} is not in 1..{MAX_PRICE}")
    if instrument is not None and price % instrument.tick_size:
        raise _Refused(off_tick, f"{name} {price} is not a multiple of tick "
                                 f"{instrument.tick_size} of {instrument.symbol}")


_CHECKS = {"new_order": Validator._new_order, "cancel": Validator._cancel,
           "modify": Validator._modify, "mass_cancel": Validator._mass_cancel}
ORDER_FLOW = frozenset(_CHECKS)
