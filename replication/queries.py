"""Read-only queries a node answers on its control port, for gateways and feeds.

Each takes the request map and returns a reply map (msgpack-ready: ints, strings, bytes, lists,
maps); a bad request gets ``{"error": text}``, never an exception. The node adds ``seq`` and
``epoch`` (the state the answer describes) to every good reply of a state query.

* ``events {from_seq, limit}``: the events of the commands from ``from_seq`` on, out of the
  node's in-memory history (``replication.event_stream.EventHistory``): ``{epoch, first_seq,
  last_seq, events}`` with ``events`` the raw EVENT records of seqs ``first_seq..last_seq``
  (``last_seq`` = ``first_seq - 1``: nothing newer yet), or ``{error: "too_old", oldest_seq}``.
* ``reference``: instruments and accounts, what a gateway validates against.
* ``books {depth}``: every instrument's price levels (all, or the best ``depth``), ``[price, quantity, orders]``.
* ``orders {account}``: an account's live orders (resting, or stops waiting to trigger).

The state queries build the canonical state (``core.canonical``), which costs time in
proportion to the whole state: they are for joiners and resyncs, not for every message.
"""
from __future__ import annotations

import numpy as np

from core.canonical import CanonicalState
from core.enums import OrderPhase, Side

from .event_stream import MAX_REPLAY, EventHistory

MAX_DEPTH = 2**31 - 1     #: the default: every level


def _int(request: dict, name: str, low: int, high: int, default: int | None = None):
    value = request.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}")
    return value


def events(history: EventHistory, request: dict, epoch: int) -> dict:
    try:
        from_seq = _int(request, "from_seq", 1, 2**62)
        limit = _int(request, "limit", 1, MAX_REPLAY, MAX_REPLAY)
    except ValueError as e:
        return {"error": str(e)}
    found = history.since(from_seq, limit)
    if found is None:
        return {"error": "too_old", "oldest_seq": history.oldest_seq}
    last_seq, records = found
    return {"epoch": epoch, "first_seq": from_seq, "last_seq": last_seq,
            "events": records.tobytes()}


def _symbol(raw: bytes) -> str:
    return raw.decode("ascii", "replace")


def reference(state: CanonicalState, request: dict) -> dict:
    instruments = [
        {"instrument": int(i["instrument"]), "symbol": _symbol(i["symbol"]),
         "asset_class": int(i["asset_class"]), "status": int(i["status"]),
         "tick_size": int(i["tick_size"]), "lot_size": int(i["lot_size"]),
         "collar_bps": int(i["collar_bps"]), "reference_price": int(i["reference_price"]),
         "last_price": int(i["last_price"])}
        for i in state.instruments]
    accounts = [{"account": int(a["account"]), "account_type": int(a["account_type"]),
                 "status": int(a["status"])} for a in state.accounts]
    return {"instruments": instruments, "accounts": accounts}


def _levels(resting: np.ndarray, side: Side, depth: int) -> list[list[int]]:
    mine = resting[resting["side"] == side]
    if not len(mine):
        return []
    prices, inverse = np.unique(mine["price"], return_inverse=True)
    counts = np.bincount(inverse, minlength=len(prices))
    totals = np.zeros(len(prices), np.int64)
    np.add.at(totals, inverse, mine["leaves"])
    order = np.arange(len(prices))[::-1] if side == Side.BUY else np.arange(len(prices))
    return [[int(prices[k]), int(totals[k]), int(counts[k])] for k in order[:depth]]


def books(state: CanonicalState, request: dict) -> dict:
    try:
        depth = _int(request, "depth", 1, MAX_DEPTH, MAX_DEPTH)
    except ValueError as e:
        return {"error": str(e)}
    resting = state.orders[state.orders["phase"] == OrderPhase.RESTING]
    out = []
    for i in state.instruments:
        mine = resting[resting["instrument"] == i["instrument"]]
        out.append({"instrument": int(i["instrument"]), "symbol": _symbol(i["symbol"]),
                    "bids": _levels(mine, Side.BUY, depth),
                    "asks": _levels(mine, Side.SELL, depth),
                    "last_price": int(i["last_price"])})
    return {"books": out}


ORDER_FIELDS = ("order_id", "client_order_id", "instrument", "side", "order_type",
                "time_in_force", "price", "stop_price", "leaves", "cum", "phase")


def orders(state: CanonicalState, request: dict) -> dict:
    try:
        account = _int(request, "account", 0, 2**31 - 1)
    except ValueError as e:
        return {"error": str(e)}
    mine = state.orders[state.orders["account"] == account]
    return {"account": account,
            "orders": [{name: int(o[name]) for name in ORDER_FIELDS} for o in mine]}


#: the queries answered from the BLP's state (``events`` is answered from the history)
STATE_QUERIES = {"reference": reference, "books": books, "orders": orders}
