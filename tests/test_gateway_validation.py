"""Validation before sequencing: every refusal has its code, accepted requests become exactly
the engine's command records, and (differential, against the reference model) the gateway
refuses a command only when the engine would refuse it too, with the same code."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import commands as C
from core.codes import ResultCode as R
from core.config import Capacities
from core.enums import AccountType, EventKind, OrderType, Side, TimeInForce
from core.integers import MAX_PRICE, MAX_QUANTITY, MAX_TRAIL_TICKS
from core.model import ReferenceModel
from gateways.codes import GatewayCode as G
from gateways.engine_link import pack
from gateways.protocol import Rejection, Request
from gateways.sessions import SessionTable
from gateways.validation import (ORDER_TYPES, SIDES, TIMES_IN_FORCE, Command, ReferenceData,
                                 Validator)

REFERENCE = ReferenceData.from_reply({"seq": 9, "instruments": [
    {"instrument": 0, "symbol": "ACME", "tick_size": 5, "lot_size": 10, "status": 1},
    {"instrument": 3, "symbol": "BOLT", "tick_size": 1, "lot_size": 1, "status": 1}]})
TABLE = SessionTable(rate=10, burst=10, default_heartbeat_ms=1000)
ONE = TABLE.open(b"one", "k1", frozenset({1}), 0.0)
TWO = TABLE.open(b"two", "k2", frozenset({1, 2}), 0.0)


def validator(known: dict | None = None) -> Validator:
    known = known or {}
    return Validator(REFERENCE, lambda a, o, c: known.get((a, o, c)))


def order(**fields) -> dict:
    return {"type": "new_order", "symbol": "ACME", "side": "buy", "quantity": 20,
            "price": 1000, "client_order_id": 9, **fields}


def check(body: dict, session=ONE, v: Validator | None = None):
    return (v or validator()).command(Request(body["type"], 4, body), session)


def refused(result, code) -> Rejection:
    assert isinstance(result, Rejection), result
    assert result.code == code, result.message()
    assert result.req == 4 and result.message()["text"]
    return result


def test_accepted_requests_become_the_engines_own_records():
    made = [check(order(order_type="stop_limit", stop_price=995, time_in_force="gtc")),
            check(order(side="sell", order_type="trailing_stop", price=0, trail_ticks=3,
                        time_in_force="day")),
            check(order(order_type="market", price=0, time_in_force="ioc")),
            check({"type": "cancel", "order_id": 12}),
            check({"type": "cancel", "client_order_id": 77}),
            check({"type": "modify", "order_id": 12, "quantity": 30, "price": 1005}),
            check({"type": "mass_cancel", "symbol": "BOLT"}),
            check({"type": "mass_cancel"})]
    assert all(isinstance(m, Command) for m in made)
    expected = C.batch(
        C.new_order(1, 0, Side.BUY, 20, 1000, client_order_id=9,
                    order_type=OrderType.STOP_LIMIT, stop_price=995),
        C.new_order(1, 0, Side.SELL, 20, 0, client_order_id=9,
                    order_type=OrderType.TRAILING_STOP, trail_ticks=3,
                    time_in_force=TimeInForce.DAY),
        C.new_order(1, 0, Side.BUY, 20, 0, client_order_id=9, order_type=OrderType.MARKET,
                    time_in_force=TimeInForce.IOC),
        C.cancel(1, order_id=12), C.cancel(1, client_order_id=77),
        C.modify(1, 12, quantity=30, price=1005), C.mass_cancel(1, 3), C.mass_cancel(1))
    assert pack(made).tobytes() == expected.tobytes()


def test_defaults_limit_and_day():
    made = check(order())
    assert made.order_type == OrderType.LIMIT and made.time_in_force == TimeInForce.DAY


@pytest.mark.parametrize("fields, code", [
    ({"client_order_id": 0}, R.INVALID_CLIENT_ORDER_ID),
    ({"client_order_id": -5}, R.INVALID_CLIENT_ORDER_ID),
    ({"client_order_id": 2**63}, R.INVALID_CLIENT_ORDER_ID),
    ({"symbol": "NOPE"}, R.UNKNOWN_INSTRUMENT),
    ({"side": "BUY"}, R.INVALID_SIDE),
    ({"order_type": "iceberg"}, R.INVALID_ORDER_TYPE),
    ({"time_in_force": "gtd"}, R.INVALID_TIME_IN_FORCE),
    ({"order_type": "stop", "price": 0, "stop_price": 990, "time_in_force": "ioc"},
     R.TIME_IN_FORCE_NOT_ALLOWED),
    ({"quantity": 0}, R.INVALID_QUANTITY),
    ({"quantity": MAX_QUANTITY + 1}, R.INVALID_QUANTITY),
    ({"quantity": 2**64 - 1}, R.INVALID_QUANTITY),
    ({"quantity": 25}, R.QUANTITY_OFF_LOT),
    ({"price": 0}, R.INVALID_PRICE),
    ({"price": -5}, R.INVALID_PRICE),
    ({"price": MAX_PRICE + 1}, R.INVALID_PRICE),
    ({"price": 1001}, R.PRICE_OFF_TICK),
    ({"order_type": "market", "price": 1000}, R.INVALID_PRICE),
    ({"order_type": "stop", "price": 0}, R.INVALID_STOP_PRICE),
    ({"order_type": "stop", "price": 0, "stop_price": 991}, R.STOP_PRICE_OFF_TICK),
    ({"stop_price": 995}, R.INVALID_STOP_PRICE),
    ({"order_type": "trailing_stop", "price": 0}, R.INVALID_TRAIL),
    ({"order_type": "trailing_stop", "price": 0, "trail_ticks": MAX_TRAIL_TICKS + 1},
     R.INVALID_TRAIL),
    ({"trail_ticks": 2}, R.INVALID_TRAIL),
    ({"account": 2}, G.ACCOUNT_NOT_AUTHORISED),
])
def test_new_order_refusals(fields, code):
    refused(check(order(**fields)), code)


def test_account_rules():
    assert check(order(account=2), TWO).account == 2
    refused(check(order(), TWO), G.MISSING_FIELD)        # two accounts: say which
    refused(check(order(account=3), TWO), G.ACCOUNT_NOT_AUTHORISED)
    refused(check({"type": "cancel", "account": 5, "order_id": 1}), G.ACCOUNT_NOT_AUTHORISED)


def test_no_reference_data_yet_means_engine_unavailable():
    refused(Validator(None).command(Request("new_order", 4, order()), ONE),
            G.ENGINE_UNAVAILABLE)


@pytest.mark.parametrize("body", [
    {"type": "cancel"}, {"type": "cancel", "order_id": 1, "client_order_id": 2},
    {"type": "cancel", "order_id": -1}, {"type": "cancel", "client_order_id": 2**64 - 1},
    {"type": "modify", "quantity": 10},
])
def test_an_order_is_named_by_exactly_one_id(body):
    refused(check(body), R.INVALID_ORDER_REFERENCE)


def test_modify_checks_lot_and_tick_when_the_order_is_known():
    known = validator({(1, 12, 0): 0})
    refused(check({"type": "modify", "order_id": 12, "quantity": 25}, v=known),
            R.QUANTITY_OFF_LOT)
    refused(check({"type": "modify", "order_id": 12, "quantity": 20, "price": 1003}, v=known),
            R.PRICE_OFF_TICK)
    refused(check({"type": "modify", "order_id": 12, "quantity": 20, "stop_price": 2},
                  v=known), R.STOP_PRICE_OFF_TICK)
    assert isinstance(check({"type": "modify", "order_id": 13, "quantity": 25,
                             "price": 1003}, v=known), Command)     # unknown: engine decides
    refused(check({"type": "modify", "order_id": 13, "quantity": 0}), R.INVALID_QUANTITY)
    refused(check({"type": "modify", "order_id": 13, "quantity": 5, "price": -1}),
            R.INVALID_PRICE)


def test_order_status_reference():
    v = validator()
    assert v.order_reference(Request("order_status", 1, {"client_order_id": 4}), ONE) == \
        (1, 0, 4)
    assert v.order_reference(Request("order_status", 1, {"order_id": 4}), ONE) == (1, 4, 0)
    assert v.order_reference(Request("order_status", 1, {}), ONE).code == \
        R.INVALID_ORDER_REFERENCE
    assert v.order_reference(Request("order_status", 1, {"order_id": 4, "account": 2}),
                             ONE).code == G.ACCOUNT_NOT_AUTHORISED


def test_reference_data_replies():
    with pytest.raises(ValueError):
        ReferenceData.from_reply({"error": "no"})
    with pytest.raises(ValueError):
        ReferenceData.from_reply({"instruments": [{"symbol": "X"}]})
    with pytest.raises(ValueError):
        ReferenceData.from_reply({"instruments": [{"instrument": 1, "symbol": "X",
                                                   "tick_size": 0, "lot_size": 1,
                                                   "status": 1}]})


# ---------------------------------------------------------------- differential
def model_venue(*extra) -> ReferenceModel:
    model = ReferenceModel(Capacities(instruments=8, accounts=8, orders=64, positions=32,
                                      client_order_ids=256))
    model.process(C.stamp(C.batch(
        C.add_instrument(0, "ACME", tick_size=5, lot_size=10, reference_price=1000,
                         collar_bps=10_000),
        C.add_instrument(3, "BOLT", tick_size=1, lot_size=1, reference_price=50),
        C.add_account(1, AccountType.MARGIN), C.deposit_cash(1, 10**15), *extra), 1))
    return model


def raw_new_order(body: dict) -> np.ndarray | None:
    """What the engine would get if the gateway let ``body`` through unexamined (None when
    a value cannot even be written into the record)."""
    fields = dict(side=SIDES.get(body["side"], 0),
                  order_type=ORDER_TYPES.get(body.get("order_type", "limit"), 0),
                  time_in_force=TIMES_IN_FORCE.get(body.get("time_in_force", "day"), 0),
                  instrument=REFERENCE.by_symbol[body["symbol"]].instrument
                  if body["symbol"] in REFERENCE.by_symbol else 7,
                  quantity=body["quantity"], price=body.get("price", 0),
                  stop_price=body.get("stop_price", 0), trail_ticks=body.get("trail_ticks", 0),
                  client_order_id=body["client_order_id"])
    for name in ("quantity", "price", "stop_price", "client_order_id"):
        if not -2**63 <= fields[name] < 2**63:
            return None
    if not -2**31 <= fields["trail_ticks"] < 2**31:
        return None
    return C.new_order(1, fields.pop("instrument"), fields.pop("side"), fields.pop("quantity"),
                       **fields)


def engine_outcome(model: ReferenceModel, command: np.ndarray) -> int:
    command = C.stamp(command.copy(), model.last_seq + 1)
    events = model.process(command)
    return int(events["code"][0]) if events["kind"][0] == EventKind.REJECTED else 0


edge_ints = st.sampled_from([0, 1, -1, 5, 10, 20, 995, 1000, 1003, MAX_QUANTITY,
                             MAX_QUANTITY + 1, MAX_PRICE, MAX_PRICE + 1, MAX_TRAIL_TICKS,
                             MAX_TRAIL_TICKS + 1, 2**63 - 1, 2**63, -2**63]) | \
    st.integers(-10**4, 10**4)
STATELESS = {R.INVALID_CLIENT_ORDER_ID, R.UNKNOWN_INSTRUMENT, R.INVALID_SIDE,
             R.INVALID_ORDER_TYPE, R.INVALID_TIME_IN_FORCE, R.TIME_IN_FORCE_NOT_ALLOWED,
             R.INVALID_QUANTITY, R.QUANTITY_OFF_LOT, R.INVALID_PRICE, R.PRICE_OFF_TICK,
             R.INVALID_STOP_PRICE, R.STOP_PRICE_OFF_TICK, R.INVALID_TRAIL}


@st.composite
def new_orders(draw):
    body = {"type": "new_order",
            "symbol": draw(st.sampled_from(["ACME", "BOLT", "NOPE"])),
            "side": draw(st.sampled_from(["buy", "sell", "hold"])),
            "quantity": draw(edge_ints), "client_order_id": draw(edge_ints)}
    for name, choices in (("order_type", [*ORDER_TYPES, "iceberg"]),
                          ("time_in_force", [*TIMES_IN_FORCE, "gtd"])):
        if draw(st.booleans()):
            body[name] = draw(st.sampled_from(choices))
    for name in ("price", "stop_price", "trail_ticks"):
        if draw(st.booleans()):
            body[name] = draw(edge_ints)
    return body


@settings(max_examples=600, deadline=None)
@given(new_orders())
def test_the_gateway_refuses_a_new_order_only_as_the_engine_would(body):
    result = check(body)
    command = raw_new_order(body)
    if command is None:                        # not even representable: must be refused
        assert isinstance(result, Rejection)
        return
    outcome = engine_outcome(model_venue(), command)
    if isinstance(result, Rejection):
        assert outcome == result.code, (body, result.message(), R(outcome).name)
    else:
        stateful_trail = outcome == R.INVALID_TRAIL and result.order_type == \
            OrderType.TRAILING_STOP            # the trail put the stop at <= 0 from the market
        assert outcome not in STATELESS or stateful_trail, (body, R(outcome).name)
        assert pack([result]).tobytes() == command.tobytes()


@settings(max_examples=300, deadline=None)
@given(quantity=edge_ints, price=st.none() | edge_ints, stop=st.none() | edge_ints)
def test_the_gateway_refuses_a_modify_of_a_resting_order_only_as_the_engine_would(
        quantity, price, stop):
    body = {"type": "modify", "order_id": 1, "quantity": quantity}
    if price is not None:
        body["price"] = price
    if stop is not None:
        body["stop_price"] = stop
    result = check(body, v=validator({(1, 1, 0): 0}))
    if not all(-2**63 <= v < 2**63 for v in (quantity, price or 0, stop or 0)):
        assert isinstance(result, Rejection)
        return
    model = model_venue(C.new_order(1, 0, Side.BUY, 20, 1000, client_order_id=1))
    outcome = engine_outcome(model, C.modify(1, 1, quantity=quantity, price=price or 0,
                                             stop_price=stop or 0))
    if isinstance(result, Rejection):      # (the code may differ: the gateway cannot know
        assert outcome != 0, body          # whether the order rests or waits as a stop)
